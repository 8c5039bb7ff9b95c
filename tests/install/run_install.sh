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
python=/usr/bin/python3
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
  [ -e "$libdir/$f" ] || fail "${libdir#$prefix/}/$f was not installed"
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
echo "$what: installed into $prefix (libdir ${libdir#$prefix/}), man pages and bash completion"

# pkg-config, C99, warnings as errors.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
[ "$(pkg-config --modversion keyport)" = "$(awk '{print $2}' <<<"$version")" ] ||
  fail "keyport.pc's version is not the CLI's"
mkdir -p "$work/pc"
for ex in export_byok lint_byok; do
  # shellcheck disable=SC2046,SC2086
  cc -std=c99 -Wall -Wextra -Werror -pedantic $san "$src/examples/c/$ex.c" \
    $(pkg-config --cflags --libs keyport) -Wl,-rpath,"$libdir" -o "$work/pc/$ex" ||
    fail "examples/c/$ex.c does not build with pkg-config"
done
echo "$what: examples/c built with pkg-config"

# The CMake package.
cmake -S "$src/examples/cmake" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "examples/cmake does not configure with find_package(keyport)"; }
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "examples/cmake does not build"; }
echo "$what: examples/cmake built with find_package(keyport CONFIG)"

# Run them on a token of their own.
"$src/softhsm-config/init-tokens.sh" "$work/tokens" example:1111:2222 >/dev/null
export SOFTHSM2_CONF="$work/tokens/softhsm2.conf" KEYPORT_PIN=2222
unset KEYPORT_MODULE
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$work/kek.key" 2>/dev/null
openssl pkey -in "$work/kek.key" -pubout -out "$work/kek.pem"
kv="https://example.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef"
hsm="https://example.managedhsm.azure.net/keys/kek/0123456789abcdef0123456789abcdef"
run_export() {  # BINARY SPEC LABEL KID KIND
  "$1" --generate "$2" example "$3" "$work/kek.pem" "$4" "$work/$3.byok" >"$work/$3.out" ||
    { cat "$work/$3.out" >&2; fail "$1 --generate $2"; }
  "$python" "$src/tests/install/check_byok.py" "$work/$3.byok" "$work/kek.key" "$5" ||
    fail "cryptography does not open $3.byok as $5"
}
run_export "$work/pc/export_byok" RSA-3072 pc-rsa "$kv" rsa
run_export "$work/consumer/export_byok" EC-P384 cmake-ec "$kv" ec
run_export "$work/pc/export_byok" AES-256 pc-aes "$hsm" aes
"$work/pc/lint_byok" "$work/pc-rsa.byok" "$work/kek.pem" >/dev/null 2>&1 || fail "lint_byok refuses a good file"
"$work/consumer/lint_byok_static" "$work/cmake-ec.byok" >/dev/null 2>&1 || fail "lint_byok (static) refuses a good file"
echo '{"schema_version": "1.0.0"}' >"$work/bad.byok"
rc=0
"$work/pc/lint_byok" "$work/bad.byok" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "lint_byok exits $rc for a broken file (want 3)"
before=$(sha256sum <"$work/pc-rsa.byok")
rc=0
"$work/pc/export_byok" example pc-rsa "$work/kek.pem" "$kv" "$work/pc-rsa.byok" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 6 ] || fail "export_byok over an existing file exits $rc (want 6)"
[ "$(sha256sum <"$work/pc-rsa.byok")" = "$before" ] || fail "an existing .byok file was changed"
rc=0
KEYPORT_PIN=0000 "$work/pc/export_byok" example pc-rsa "$work/kek.pem" "$kv" "$work/x.byok" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 7 ] || fail "a wrong PIN exits $rc (want 7)"
[ ! -e "$work/x.byok" ] || fail "a failed export left a file behind"
echo "$what: passed"
