#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds keyport in ./build (or $KEYPORT_BUILD_DIR). Extra args go to cmake.
# KEYPORT_BUILD_TARGETS="keyport ..." builds only those targets (the demo builds the CLI alone).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KEYPORT_BUILD_DIR:-$root/build}
gen=()
command -v ninja >/dev/null && [ ! -f "$build/Makefile" ] && gen=(-G Ninja)
cmake -S "$root" -B "$build" "${gen[@]}" "$@" >/dev/null
targets=()
for t in ${KEYPORT_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "$(nproc)" "${targets[@]}"
