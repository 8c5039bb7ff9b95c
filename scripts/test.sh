#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's test command (and all of CI: .ci/run runs exactly this). Three stages:
#   suite  installs what is missing (scripts/setup.sh), builds in ./build, runs the whole CTest
#          suite (the fuzz replay tests included) but the soak test (scripts/soak.sh runs that);
#   fuzz   installs clang and libFuzzer (setup.sh fuzz), builds the fuzz targets in ./build-fuzz (clang,
#          ASan + UBSan) and fuzzes each for KEYPORT_FUZZ_SECONDS (default 20) from its corpus
#          (scripts/fuzz.sh); skipped with a note if clang or libFuzzer is still missing;
#   asan   builds everything again in ./build-asan with AddressSanitizer + UndefinedBehaviorSanitizer
#          and runs the whole suite there but the soak test (LeakSanitizer suppressions:
#          tests/hardening/lsan.supp).
# KEYPORT_TEST_STAGES picks stages (default all three, "suite fuzz asan"; "suite" alone is the
# quick local run). Extra arguments go to cmake for the normal build. Every stage runs even when an
# earlier one failed; the exit status is 1 when any failed. Prints each stage's verdict and minutes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KEYPORT_BUILD_DIR:-$root/build}
asan_build=${KEYPORT_ASAN_BUILD_DIR:-$root/build-asan}
stages=${KEYPORT_TEST_STAGES:-suite fuzz asan}
jobs=$(nproc)
summary=()
failed=0

stage_time() {  # NAME START STATUS
  local mins verdict=ok
  mins=$(awk -v s="$2" -v e="$(date +%s)" 'BEGIN { printf "%.1f", (e - s) / 60 }')
  if [ "$3" -ne 0 ]; then
    verdict=FAILED
    failed=1
  fi
  summary+=("$1: $verdict, ${mins} min")
  echo "test.sh: stage $1: $verdict after ${mins} min"
}

has_stage() { [[ " $stages " == *" $1 "* ]]; }

if has_stage fuzz; then
  "$root/scripts/setup.sh" fuzz  # clang and libFuzzer too
else
  "$root/scripts/setup.sh"
fi

if has_stage suite; then
  t=$(date +%s)
  st=0
  # The soak (80 s of load; scripts/soak.sh) runs apart: see docs/threat-model.md T15.
  # Every test has its own TIMEOUT (a hang guard; CTest's --timeout would only set a default).
  "$root/scripts/build.sh" -DKEYPORT_WERROR=ON "$@" && (cd "$build" && ctest --output-on-failure -j "$jobs" -LE soak) || st=$?
  stage_time suite "$t" "$st"
fi

if has_stage fuzz; then
  t=$(date +%s)
  st=0
  "$root/scripts/fuzz.sh" "${KEYPORT_FUZZ_SECONDS:-20}" || st=$?
  stage_time fuzz "$t" "$st"
fi

if has_stage asan; then
  t=$(date +%s)
  st=0
  gen=()
  command -v ninja >/dev/null && [ ! -f "$asan_build/Makefile" ] && gen=(-G Ninja)
  # -O1 -g1 (line tables: ASan's stack traces keep file:line): compiles 2.4-3.2 times faster than
  # RelWithDebInfo's -O2 -g, measured on vault.cpp and a vault test file with ASan + UBSan.
  cmake -S "$root" -B "$asan_build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DKEYPORT_SANITIZE="address;undefined" -DKEYPORT_BUILD_BENCH=OFF -DKEYPORT_WERROR=ON >/dev/null || st=$?
  # Sanitizer builds triple every hang guard (KEYPORT_TEST_TIME_SCALE, tests/CMakeLists.txt).
  # LeakSanitizer on, with suppressions for SoftHSM/OpenSSL/p11-kit internals only.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/hardening/lsan.supp:print_suppressions=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
  # The soak test is left out here: its memory-growth check measures keyport, not ASan's
  # quarantine (which grows by design); it runs in the suite stage.
  if [ "$st" -eq 0 ]; then
    cmake --build "$asan_build" -j "$jobs" &&
      (cd "$asan_build" && ctest --output-on-failure -j "$jobs" -LE soak) || st=$?
  fi
  stage_time asan "$t" "$st"
fi

printf 'test.sh: %s\n' "${summary[@]}"
exit "$failed"
