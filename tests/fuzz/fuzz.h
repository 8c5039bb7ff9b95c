// SPDX-License-Identifier: Apache-2.0
// Shared by every fuzz target. A target is one file defining LLVMFuzzerTestOneInput; it is built
// twice: always as a replay program that CTest runs over tests/fuzz/<target>_corpus/ (replay.cpp),
// and with clang and -DKEYPORT_BUILD_FUZZERS=ON as a libFuzzer binary (scripts/fuzz.sh).
// Invariants a target checks abort the process, which both libFuzzer and the replay report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#define KEYPORT_FUZZ_CHECK(cond)                                                               \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (false)

// Inputs larger than this are ignored (each target documents why its limit fits).
#define KEYPORT_FUZZ_MAX_LEN(n) \
  do {                          \
    if (size > (n))             \
      return 0;                 \
  } while (false)

namespace keyport::fuzz {
inline std::span<const std::uint8_t> input(const std::uint8_t* data, std::size_t size) {
  return {data, size};
}
}  // namespace keyport::fuzz
