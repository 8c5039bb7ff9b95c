/* SPDX-License-Identifier: Apache-2.0 */
/* Runs a command N times and prints the median wall time of a run (fork to exit, in ms) and the
 * largest peak RSS of a run (KiB, from wait4's rusage), for scripts/size-report.sh:
 *
 *   spawn_stats N COMMAND [ARG...]        ->  "MEDIAN_MS MAX_RSS_KIB"
 *
 * A small C parent, because a child forked from a big one (Python's subprocess) reports the
 * parent's resident set as its own peak until it execs. stdout of the command goes to /dev/null;
 * a run that does not exit 0 ends the measurement with exit status 1. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int by_value(const void* a, const void* b) {
  const double x = *(const double*)a;
  const double y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  if (argc < 3 || atoi(argv[1]) <= 0) {
    fprintf(stderr, "usage: spawn_stats N COMMAND [ARG...]\n");
    return 2;
  }
  const int n = atoi(argv[1]);
  double* ms = calloc((size_t)n, sizeof *ms);
  long max_rss = 0;
  if (ms == NULL) {
    return 1;
  }
  for (int i = 0; i < n; ++i) {
    struct timespec start;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    const pid_t pid = fork();
    if (pid < 0) {
      perror("spawn_stats: fork");
      return 1;
    }
    if (pid == 0) {
      if (freopen("/dev/null", "w", stdout) == NULL) {
        _exit(126);
      }
      execvp(argv[2], argv + 2);
      _exit(127);
    }
    int status = 0;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0) {
      perror("spawn_stats: wait4");
      return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "spawn_stats: %s failed (status %d)\n", argv[2], status);
      return 1;
    }
    ms[i] = (double)(end.tv_sec - start.tv_sec) * 1e3 + (double)(end.tv_nsec - start.tv_nsec) / 1e6;
    if (usage.ru_maxrss > max_rss) {
      max_rss = usage.ru_maxrss;
    }
  }
  qsort(ms, (size_t)n, sizeof *ms, by_value);
  printf("%.2f %ld\n", n % 2 == 1 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2, max_rss);
  free(ms);
  return 0;
}
