/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lint_byok: checks a .byok file offline before it is uploaded, through libkeyport's C API.
 *
 *   lint_byok FILE.byok [KEK_FILE]
 *
 * Prints the report (JSON, as `keyport byok inspect --json`) and exits 0 when it has no error,
 * 3 when it has errors (the CLI's "bad input" code), or the failure's status.
 *
 * Build:  cc lint_byok.c $(pkg-config --cflags --libs keyport) -o lint_byok
 */
#include <keyport/keyport.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned char* slurp(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  unsigned char* buf = NULL;
  size_t cap = 0;
  size_t n = 0;
  size_t got;
  if (f == NULL) {
    return NULL;
  }
  do {
    if (n == cap) {
      unsigned char* bigger = realloc(buf, cap = cap * 2 + 4096);
      if (bigger == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = bigger;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  fclose(f);
  *len = n;
  return buf;
}

int main(int argc, char** argv) {
  unsigned char* file;
  unsigned char* kek = NULL;
  size_t file_len = 0;
  size_t kek_len = 0;
  size_t errors = 0;
  size_t warnings = 0;
  char* report = NULL;
  kp_error* err = NULL;
  kp_status st;

  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: lint_byok FILE.byok [KEK_FILE]\n");
    return 2;
  }
  if ((file = slurp(argv[1], &file_len)) == NULL) {
    fprintf(stderr, "lint_byok: cannot read %s\n", argv[1]);
    return 5;
  }
  if (argc == 3 && (kek = slurp(argv[2], &kek_len)) == NULL) {
    fprintf(stderr, "lint_byok: cannot read %s\n", argv[2]);
    free(file);
    return 5;
  }
  st = kp_byok_inspect(file, file_len, kek, kek_len, &report, &errors, &warnings, NULL, &err);
  free(file);
  free(kek);
  if (st != KP_OK) {
    fprintf(stderr, "lint_byok: %s\n", kp_error_message(err));
    kp_error_free(err);
    return (int)st;
  }
  printf("%s\n", report);
  kp_free(report);
  fprintf(stderr, "lint_byok: %zu error(s), %zu warning(s)\n", errors, warnings);
  return errors == 0 ? 0 : KP_ERR_BAD_INPUT;
}
