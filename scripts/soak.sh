#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Load and soak of `keyport vault serve`: 8 clients of mixed operations, a warm-up
# (KEYPORT_SOAK_WARMUP_REQUESTS, default 33,000: the malloc arenas level off) and a measured window
# (KEYPORT_SOAK_REQUESTS, default 16,000), counted in requests so that a slow machine measures the
# same work as a fast one.
# Fails on any failed request or 5xx, resident memory growth of 5 % or more over the window, or
# more descriptors after the load than before. Prints the figures (also written to
# <build>/soak-figures.txt). Builds in ./build (or $KEYPORT_BUILD_DIR) first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KEYPORT_BUILD_DIR:-$root/build}
"$root/scripts/build.sh" >/dev/null
cd "$build"
rm -f soak-figures.txt
status=0
ctest -L soak --output-on-failure >soak-ctest.log 2>&1 || status=$?
cat soak-figures.txt 2>/dev/null || true
if [ "$status" -ne 0 ]; then
  grep -E "FAILED|with expansion|^ +[0-9.]+ <" -A2 soak-ctest.log || true
  echo "soak: FAILED (see $build/soak-ctest.log)"
fi
exit "$status"
