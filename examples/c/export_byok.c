/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export_byok: a key in a PKCS#11 token to an Azure BYOK transfer file, through libkeyport's C API.
 *
 *   export_byok [--generate SPEC] TOKEN KEY_LABEL KEK_FILE KID OUT.byok
 *
 * TOKEN is a token label or a PKCS#11 URI; the user PIN comes from the environment variable
 * KEYPORT_PIN (never from the command line); the module is $KEYPORT_MODULE (a path or a p11-kit
 * name), else libkeyport's default. With --generate the key is made first (SPEC: RSA-3072,
 * EC-P256, AES-256, ...). KEK_FILE is the vault's key-exchange key (PEM, DER or JWK) and KID its
 * key identifier. The file is written atomically and never over an existing one.
 *
 * Build:  cc export_byok.c $(pkg-config --cflags --libs keyport) -o export_byok
 */
#include <keyport/keyport.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char* what, kp_status st, kp_error* err) {
  fprintf(stderr, "export_byok: %s: %s (status %d)\n", what, kp_error_message(err), (int)st);
  kp_error_free(err);
  return (int)st;
}

static unsigned char* read_file(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  unsigned char* buf = NULL;
  long n;
  if (f == NULL) {
    return NULL;
  }
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
    buf = malloc((size_t)n);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
      free(buf);
      buf = NULL;
    }
    *len = (size_t)n;
  }
  fclose(f);
  return buf;
}

int main(int argc, char** argv) {
  const char* generate = NULL;
  kp_module* module = NULL;
  kp_token* token = NULL;
  kp_byok* byok = NULL;
  kp_error* err = NULL;
  kp_export_options opts;
  unsigned char* kek;
  size_t kek_len = 0;
  char* info = NULL;
  kp_status st;
  int a = 1;

  if (argc > 2 && strcmp(argv[1], "--generate") == 0) {
    generate = argv[2];
    a = 3;
  }
  if (argc - a != 5) {
    fprintf(stderr, "usage: export_byok [--generate SPEC] TOKEN KEY_LABEL KEK_FILE KID OUT.byok\n");
    return 2;
  }
  kek = read_file(argv[a + 2], &kek_len);
  if (kek == NULL) {
    fprintf(stderr, "export_byok: cannot read %s\n", argv[a + 2]);
    return 5;
  }
  printf("libkeyport %s (ABI %d)\n", kp_version(), kp_abi_version());
  if ((st = kp_module_open(getenv("KEYPORT_MODULE"), NULL, &module, &err)) != KP_OK) {
    free(kek);
    return fail("module", st, err);
  }
  if ((st = kp_token_open(module, argv[a], "env:KEYPORT_PIN", NULL, NULL, &token, &err)) != KP_OK) {
    free(kek);
    kp_module_close(module);
    return fail("token", st, err);
  }
  if (generate != NULL &&
      (st = kp_key_generate(token, generate, argv[a + 1], NULL, &err)) != KP_OK) {
    free(kek);
    kp_token_close(token);
    kp_module_close(module);
    return fail("generate", st, err);
  }
  memset(&opts, 0, sizeof opts);
  opts.struct_size = sizeof opts;
  opts.key = argv[a + 1];
  opts.kek = kek;
  opts.kek_len = kek_len;
  opts.kid = argv[a + 3];
  st = kp_export_byok(token, &opts, &byok, &err);
  free(kek);
  kp_token_close(token);
  kp_module_close(module);
  if (st != KP_OK) {
    return fail("export", st, err);
  }
  if ((st = kp_byok_write(byok, argv[a + 4], 0, &err)) != KP_OK) {
    kp_byok_free(byok);
    return fail("write", st, err);
  }
  if (kp_byok_info(byok, &info, &err) == KP_OK) {
    printf("%s\n", info);
    kp_free(info);
  }
  kp_byok_free(byok);
  return 0;
}
