// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the benchmarks: a private SoftHSM token folder, timing, medians, output.
// Benchmarks print ratios against a baseline measured in the same run; they assert nothing.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace keyport::bench {

inline double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Reads "--name N" pairs of argv into the integers named in `options`; other arguments are ignored.
inline void int_options(int argc, char** argv,
                        std::initializer_list<std::pair<std::string_view, int*>> options) {
  for (int i = 1; i + 1 < argc; i += 2) {
    for (const auto& [name, value] : options) {
      if (name == argv[i]) {
        *value = std::atoi(argv[i + 1]);
      }
    }
  }
}

// Runs `a` and `b` alternately in `rounds` rounds of `per_round` calls each and returns the median
// seconds per call of each, so that drift (CPU frequency, page cache) hits both alike.
struct Pair {
  double a = 0;
  double b = 0;
};
inline Pair alternate(int rounds, int per_round, const std::function<void()>& a,
                      const std::function<void()>& b) {
  std::vector<double> ta, tb;
  for (int r = 0; r < rounds; ++r) {
    double t0 = now_seconds();
    for (int i = 0; i < per_round; ++i)
      a();
    double t1 = now_seconds();
    for (int i = 0; i < per_round; ++i)
      b();
    double t2 = now_seconds();
    ta.push_back((t1 - t0) / per_round);
    tb.push_back((t2 - t1) / per_round);
  }
  return {median(ta), median(tb)};
}

// Creates DIR with SoftHSM tokens via softhsm-config/init-tokens.sh and points SOFTHSM2_CONF at it.
// `tokens` is "label:sopin:pin ...". Exits the process on failure.
inline void make_token_folder(const std::filesystem::path& dir, const std::string& tokens) {
  std::filesystem::remove_all(dir);
  std::string cmd = std::string(KEYPORT_SOURCE_DIR) + "/softhsm-config/init-tokens.sh " +
                    dir.string() + " " + tokens + " >/dev/null";
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "bench: cannot create token folder %s\n", dir.c_str());
    std::exit(1);
  }
  ::setenv("SOFTHSM2_CONF", (dir / "softhsm2.conf").c_str(), 1);
}

// This process's resident memory (VmRSS of /proc/self/status) in KiB, or -1.
inline long vm_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "bench: %s\n", what.c_str());
  std::exit(1);
}

// The value of `r`, or the end of the benchmark naming `what` and the error.
template <typename T>
T must(Result<T> r, const char* what) {
  if (!r) {
    die(std::string(what) + ": " + r.error().describe());
  }
  return std::move(*r);
}

}  // namespace keyport::bench
