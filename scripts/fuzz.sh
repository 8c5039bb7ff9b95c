#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and fuzzes each for
# SECONDS (default 60) starting from its seed corpus. New inputs go to build-fuzz/corpus/<target>/
# (the seed corpora in tests/fuzz/ are not modified); crashes to build-fuzz/crashes/<target>/.
#   scripts/fuzz.sh [SECONDS] [TARGET ...]
# Exit status: 0 when no target found anything, 1 otherwise. Prints executions per target.
# Targets run in parallel, one per core (KEYPORT_FUZZ_JOBS=N sets how many).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
shift || true
build=${KEYPORT_FUZZ_BUILD_DIR:-$root/build-fuzz}
cc=$(command -v clang-14 || command -v clang || true)
cxx=$(command -v clang++-14 || command -v clang++ || true)
if [ -z "$cc" ] || [ -z "$cxx" ]; then
  echo "fuzz: clang is not installed (apt-get install clang libclang-rt-14-dev); skipping" >&2
  exit 0
fi
rt=$("$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a)
if [ ! -f "$rt" ]; then
  echo "fuzz: libFuzzer is not installed (apt-get install libclang-rt-14-dev); skipping" >&2
  exit 0
fi
gen=()
command -v ninja >/dev/null && [ ! -f "$build/Makefile" ] && gen=(-G Ninja)
CC=$cc CXX=$cxx cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKEYPORT_BUILD_FUZZERS=ON -DKEYPORT_SANITIZE="address;undefined" -DKEYPORT_BUILD_BENCH=OFF \
  -DKEYPORT_WERROR=ON >/dev/null
mapfile -t lines < "$build/fuzz-targets.txt"
targets=()
for l in "${lines[@]}"; do
  [ -n "$l" ] || continue
  name=${l%%:*}
  if [ $# -eq 0 ] || [[ " $* " == *" $name "* ]]; then targets+=("$l"); fi
done
names=()
for l in "${targets[@]}"; do names+=("keyport_fuzz_${l%%:*}"); done
# A full fuzz run also builds the CLI and libkeyport.so with clang (-Werror): with the fuzz targets,
# every part of the product is then compiled by clang as well as by g++ in CI.
[ $# -eq 0 ] && names+=(keyport keyport_shared)
cmake --build "$build" -j "$(nproc)" --target "${names[@]}"
jobs=${KEYPORT_FUZZ_JOBS:-$(nproc)}
fuzz_one() {  # LINE: fuzzes one target; prints its verdict; exit 1 on a finding
  local name=${1%%:*} seeds log execs
  IFS=, read -r -a seeds <<<"${1#*:}"
  mkdir -p "$build/corpus/$name" "$build/crashes/$name"
  log="$build/fuzz-$name.log"
  if "$build/tests/fuzz/keyport_fuzz_$name" "$build/corpus/$name" "${seeds[@]}" -max_total_time="$seconds" \
      -artifact_prefix="$build/crashes/$name/" -print_final_stats=1 >"$log" 2>&1; then
    execs=$(grep -E "stat::number_of_executed_units" "$log" | awk '{print $2}')
    echo "fuzz: $name: ${execs:-?} executions in ${seconds}s, no finding"
  else
    echo "fuzz: $name: FINDING (see $log and $build/crashes/$name/)" >&2
    return 1
  fi
}
status=0
running=0
for l in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  fuzz_one "$l" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
