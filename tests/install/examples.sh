# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sourced by tests/install/run_install.sh (a `cmake --install` prefix) and tests/deb/run_deb.sh
# (the installed Debian packages): examples/c and examples/cmake built against an installed
# keyport as its users build them, then run on a SoftHSM2 token folder of their own.
#
#   check_examples SRC WORK PREFIX LIBDIR VERSION [SANITIZER_FLAGS]
#
# PREFIX is what find_package searches (CMAKE_PREFIX_PATH), LIBDIR holds keyport.pc under
# pkgconfig/ and libkeyport.so.0 (the examples get it as their rpath), VERSION is the CLI's
# version that keyport.pc must match. Uses fail() and $what from the caller.
# shellcheck disable=SC2154
check_examples() {
  local src=$1 work=$2 prefix=$3 libdir=$4 version=$5 san=${6:-} python=/usr/bin/python3
  # pkg-config, C99, warnings as errors.
  export PKG_CONFIG_PATH="$libdir/pkgconfig"
  [ "$(pkg-config --modversion keyport)" = "$version" ] ||
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
}
