#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver (label install): keyport as a user installs and embeds it.
#
#   tests/install/run_install.sh BUILD_DIR WORK_DIR [SANITIZER_FLAGS]
#
# 1. `cmake --install BUILD_DIR --prefix WORK_DIR/prefix`: the CLI, libkeyport.so.0 and .a, the
#    header, keyport.pc, the CMake package, the man pages (`man -w keyport` finds them), the bash
#    completion (it completes a subcommand) and the docs land where they should;
# 2. examples/c built against the installed prefix twice: with pkg-config (cc, C99, -Werror) and
#    as the consumer project examples/cmake (find_package(keyport CONFIG), the shared and the
#    static library);
# 3. the examples run on a SoftHSM2 token folder of their own: keys generated and exported to
#    .byok files that pyca/cryptography opens (tests/install/check_byok.py), the linter example
#    passes them and refuses garbage, an existing file is never replaced.
# SANITIZER_FLAGS (e.g. -fsanitize=address,undefined) are added when the build was sanitized.
set -euo pipefail
what="install"
fail() {
  echo "$what: FAILED: $*" >&2
  exit 1
}
build=${1:?usage: run_install.sh BUILD_DIR WORK_DIR [SANITIZER_FLAGS]}
work=${2:?usage: run_install.sh BUILD_DIR WORK_DIR [SANITIZER_FLAGS]}
san=${3:-}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log" >&2; fail "cmake --install"; }
libdir=$(cd "$prefix" && dirname "$(find . -name libkeyport.so.0 -print -quit)")
[ -n "$libdir" ] && [ "$libdir" != "." ] || fail "libkeyport.so.0 was not installed"
libdir="$prefix/${libdir#./}"
for f in bin/keyport include/keyport/keyport.h share/doc/keyport/README.md share/doc/keyport/embedding.md; do
  [ -e "$prefix/$f" ] || fail "$f was not installed"
done
for f in libkeyport.so libkeyport.a pkgconfig/keyport.pc cmake/keyport/keyportConfig.cmake \
  cmake/keyport/keyportConfigVersion.cmake; do
  [ -e "$libdir/$f" ] || fail "${libdir#"$prefix"/}/$f was not installed"
done
[ "$(readlink "$libdir/libkeyport.so")" = libkeyport.so.0 ] || fail "libkeyport.so does not point at libkeyport.so.0"
# (outputs captured first: `cmd | grep -q` under pipefail fails when grep stops reading early)
headers=$(objdump -p "$libdir/libkeyport.so.0")
grep -q "SONAME *libkeyport.so.0" <<<"$headers" || fail "the SONAME is not libkeyport.so.0"
version=$("$prefix/bin/keyport" --version)
grep -q "^keyport " <<<"$version" || fail "the installed keyport --version says: $version"
for page in keyport keyport-token keyport-key keyport-byok keyport-vault; do
  [ -e "$prefix/share/man/man1/$page.1" ] || fail "the man page $page(1) was not installed"
done
found=$(MANPATH="$prefix/share/man" man -w keyport 2>/dev/null) || fail "man -w keyport finds no page"
[ "$found" = "$prefix/share/man/man1/keyport.1" ] || fail "man -w keyport finds $found"
completion="$prefix/share/bash-completion/completions/keyport"
[ -e "$completion" ] || fail "the bash completion was not installed"
completed=$(PATH="$prefix/bin:$PATH" bash -c 'source "$1"; COMP_WORDS=(keyport vault security-domain ""); COMP_CWORD=3; _keyport; echo "${COMPREPLY[*]}"' _ "$completion")
[ "$completed" = "download init-recovery restore-blob upload status" ] ||
  fail "bash completion of 'keyport vault security-domain ' gives: $completed"
echo "$what: installed into $prefix (libdir ${libdir#"$prefix"/}), man pages and bash completion"

# shellcheck source=tests/install/examples.sh
source "$src/tests/install/examples.sh"
check_examples "$src" "$work" "$prefix" "$libdir" "$(awk '{print $2}' <<<"$version")" "$san"
echo "$what: passed"
