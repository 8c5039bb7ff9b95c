#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Standalone smoke test of the keyport quirk module (tests/modules/quirk). Builds the module and
# smoke.c with gcc into a temp folder, makes its own SoftHSM token folder there with
# softhsm-config/init-tokens.sh (never the system one), then checks every quirk with pkcs11-tool
# and smoke.c. Prints "N passed, N failed" at the end; exit status 0 only if nothing failed.
#
#   tests/modules/quirk/smoke.sh [--valgrind] [--keep]
#
# Environment: CC (default gcc). Needs softhsm2, opensc (pkcs11-tool), libssl-dev, libp11-kit-dev
# (and valgrind for --valgrind).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
use_valgrind=0
keep=0
for a in "$@"; do
  case "$a" in
    --valgrind) use_valgrind=1 ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--valgrind] [--keep]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/keyport-quirk-smoke.XXXXXX")
cleanup() { if [ "$keep" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

cc=${CC:-gcc}
cflags=(-std=c99 -Wall -Wextra -Werror -O1 -g -I/usr/include/p11-kit-1)
"$cc" "${cflags[@]}" -pedantic -fPIC -shared -fvisibility=hidden -o "$work/libkeyport_quirk_pkcs11.so" \
  "$here/quirk_pkcs11.c" -lcrypto -ldl -lpthread
"$cc" "${cflags[@]}" -o "$work/smoke" "$here/smoke.c" -lcrypto -ldl -lpthread
mod="$work/libkeyport_quirk_pkcs11.so"

exported=$(nm -D --defined-only "$mod" | awk '{print $3}' | tr '\n' ' ')

"$root/softhsm-config/init-tokens.sh" "$work/softhsm" quirk:1234:5678 >/dev/null
export SOFTHSM2_CONF="$work/softhsm/softhsm2.conf"
export SMOKE_PIN=5678
unset KEYPORT_QUIRKS KEYPORT_QUIRK_PIN KEYPORT_QUIRK_SO_PIN KEYPORT_QUIRK_TARGET

passed=0
failed=0
ok() { echo "PASS $1"; passed=$((passed + 1)); }
ko() { echo "FAIL $1"; failed=$((failed + 1)); }

[ "$exported" = "C_GetFunctionList " ] && ok "only C_GetFunctionList exported" ||
  ko "exported symbols: $exported"

p11() { pkcs11-tool --module "$mod" --token-label quirk "$@" 2>&1; }

# pkcs11-tool: the library info, the mechanism list with native-rsa-aes, hide, alias.
out=$(pkcs11-tool --module "$mod" -I 2>&1)
grep -q "keyport quirk module (ver 0.1)" <<<"$out" && grep -q "keyport tests" <<<"$out" &&
  ok "pkcs11-tool -I names the quirk module" || ko "pkcs11-tool -I: $out"
out=$(p11 -M)
grep -qi "mechtype-0x1054" <<<"$out" && ko "0x1054 listed without native-rsa-aes" ||
  ok "pkcs11-tool -M: no 0x1054 without quirks"
grep -q "^  AES-ECB," <<<"$out" && ok "pkcs11-tool -M: AES-ECB listed without quirks" ||
  ko "AES-ECB missing: $out"
out=$(KEYPORT_QUIRKS=native-rsa-aes p11 -M)
grep -Eq "mechtype-0x1054, keySize=\{2048,4096\}, wrap, unwrap" <<<"$out" &&
  ok "pkcs11-tool -M lists 0x1054 with native-rsa-aes" || ko "native-rsa-aes -M: $out"
out=$(KEYPORT_QUIRKS=hide=0x1081:0x210A p11 -M)
if grep -q "^  AES-ECB," <<<"$out" || grep -qi "mechtype-0x210A" <<<"$out"; then
  ko "hide=0x1081:0x210A still lists them: $out"
else
  grep -q "AES-CBC" <<<"$out" && ok "pkcs11-tool -M hides AES-ECB and 0x210A with hide=" ||
    ko "hide: $out"
fi
out=$(KEYPORT_QUIRKS=alias=0x80000171:0x210A p11 -M)
grep -Eqi "mechtype-0x80000171, keySize=\{1,[0-9]+\}, wrap, unwrap" <<<"$out" &&
  ok "pkcs11-tool -M lists alias 0x80000171 with 0x210A's info" || ko "alias -M: $out"
out=$(KEYPORT_QUIRKS=native-rsa-aes,no-such-quirk p11 -M || true)
grep -q "unknown quirk 'no-such-quirk'" <<<"$out" && grep -q "CKR_ARGUMENTS_BAD" <<<"$out" &&
  ok "unknown quirk: C_Initialize CKR_ARGUMENTS_BAD and a stderr line" || ko "unknown: $out"
out=$(KEYPORT_QUIRKS=hide=0xzz p11 -M || true)
grep -q "CKR_ARGUMENTS_BAD" <<<"$out" && ok "malformed hide= refused" || ko "hide=0xzz: $out"
out=$(KEYPORT_QUIRKS=no-login p11 -M || true)
grep -q "needs KEYPORT_QUIRK_PIN" <<<"$out" && ok "no-login without KEYPORT_QUIRK_PIN refused" ||
  ko "no-login no PIN: $out"
out=$(KEYPORT_QUIRKS=nul-padded pkcs11-tool --module "$mod" -T 2>&1)
grep -q "token label *: quirk$" <<<"$out" && ok "pkcs11-tool -T with nul-padded" ||
  ko "nul-padded -T: $out"
out=$(KEYPORT_QUIRK_PIN=5678 KEYPORT_QUIRKS=no-login p11 -T)
grep -A3 "token label *: quirk$" <<<"$out" | grep -q "login required" &&
  ko "no-login still says login required: $out" || ok "pkcs11-tool -T: no-login clears login required"
out=$(KEYPORT_QUIRKS=pin-pad p11 -T)
grep -q "PIN pad present" <<<"$out" && ok "pkcs11-tool -T: pin-pad shows a PIN pad" ||
  ko "pin-pad -T: $out"

n=0
run() { # run TEST QUIRKS [VAR=VALUE ...]: smoke.c's TEST with KEYPORT_QUIRKS=QUIRKS
  local name=$1 quirks=$2
  shift 2
  n=$((n + 1))
  local cmd=("$work/smoke" "$mod" "$name")
  if [ "$use_valgrind" = 1 ]; then
    cmd=(valgrind -q --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite
      --error-exitcode=99 "${cmd[@]}")
  fi
  local log="$work/run$n-$name.log" rc=0
  echo "-- smoke $name with KEYPORT_QUIRKS=$quirks"
  env KEYPORT_QUIRKS="$quirks" "$@" "${cmd[@]}" >"$log" 2>&1 || rc=$?
  grep -E "^(PASS|FAIL)" "$log" | sed "s/^/  /" || true
  passed=$((passed + $(grep -c "^PASS" "$log" || true)))
  failed=$((failed + $(grep -c "^FAIL" "$log" || true)))
  if [ "$rc" != 0 ] && ! grep -q "^FAIL" "$log"; then
    ko "$name exited $rc"
    cat "$log"
  fi
  if [ "$use_valgrind" = 1 ]; then
    # Any memory error or definite leak in the process counts (SoftHSM 2.6.1 shows none here).
    if [ "$rc" = 99 ] || grep -q "^==[0-9]*== " "$log"; then
      ko "$name: valgrind reports an error or a definite leak"
      grep "^==[0-9]*== " "$log" | head -80
    else
      ok "$name: valgrind clean"
    fi
  fi
}

run setup ""
run plain ""
run rsa-aes native-rsa-aes
run rsa-aes-unwrap native-rsa-aes
run pad-pkcs7 pad-pkcs7,alias=0x80000171:0x210A
run hide hide=0x210A:0x1081:0x1080,alias=0x80000171:0x210A
run init-args init-args=configdir=/tmp/smoke-nssdb
run no-batch no-batch
run ulong-exact ulong-exact
run no-login no-login KEYPORT_QUIRK_PIN=5678
run pin-pad pin-pad KEYPORT_QUIRK_PIN=5678
run nul-padded nul-padded
# Quirks combine.
run rsa-aes native-rsa-aes,no-batch,ulong-exact,nul-padded
run rsa-aes-unwrap native-rsa-aes,pad-pkcs7,ulong-exact
run no-batch no-batch,native-rsa-aes,pin-pad KEYPORT_QUIRK_PIN=5678

# pkcs11-tool sees the private object (made by "setup") without a PIN under no-login.
out=$(KEYPORT_QUIRK_PIN=5678 KEYPORT_QUIRKS=no-login p11 -O --type data)
grep -q "smoke-private" <<<"$out" && ok "pkcs11-tool -O sees a private object under no-login" ||
  ko "no-login -O: $out"
out=$(p11 -O --type data)
grep -q "smoke-private" <<<"$out" && ko "private object visible without login and quirks" ||
  ok "pkcs11-tool -O without quirks and PIN does not see it"
out=$(KEYPORT_QUIRK_PIN=5678 KEYPORT_QUIRKS=pin-pad p11 --login -O --type data)
grep -q "smoke-private" <<<"$out" && ok "pkcs11-tool --login on the PIN pad (no PIN typed)" ||
  ko "pin-pad --login -O: $out"

echo "quirk smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
