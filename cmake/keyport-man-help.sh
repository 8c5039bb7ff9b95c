#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# What help2man reads for one man page (cmake/KeyportManPages.cmake): the help of `keyport` or of
# `keyport GROUP`, followed for a group by the help of each of its subcommands under a heading of
# its own ("keyport GROUP SUB:"), so that one page documents the whole group.
#
#   keyport-man-help.sh KEYPORT_BINARY GROUP|"" --help|--version
set -eu
bin=$1
group=$2
shift 2
if [ "${1:-}" = "--version" ]; then
  exec "$bin" --version
fi
if [ -z "$group" ]; then
  exec "$bin" --help
fi
"$bin" "$group" --help
subs=$("$bin" "$group" --help | awk '/^Subcommands:/ { on = 1; next } /^[^ ]/ { on = 0 } on && /^  [a-z]/ { print $1 }')
for sub in $subs; do
  printf '\nkeyport %s %s:\n' "$group" "$sub"
  "$bin" "$group" "$sub" --help | sed 's/^/  /'
done
