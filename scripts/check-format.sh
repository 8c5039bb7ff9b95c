#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One formatting style: every C and C++ source of the project (.clang-format at the root) passes
# `clang-format --dry-run -Werror`. Prints the files that do not; exit 1 when there is one.
# The suite runs it (CTest "format: ..."); `clang-format -i FILE` fixes a file.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
command -v clang-format >/dev/null || {
  echo "check-format: clang-format is missing (scripts/setup.sh installs it)" >&2
  exit 1
}
# clang-format names each file it would change in its warnings ("FILE:LINE:COL: error: ...").
bad=$(find . \( -path './build*' -o -path '*/node_modules' -o -path './.git' \) -prune -o \
  -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.c' -o -name '*.hpp' \) -print0 |
  xargs -0 -n 25 -P "$(nproc)" clang-format --dry-run -Werror 2>&1 |
  sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*clang-format.*/\1/p' | sort -u || true)
if [ -n "$bad" ]; then
  printf 'not clang-formatted: %s\n' $bad
  exit 1
fi
echo "check-format: every C and C++ source is clang-formatted"
