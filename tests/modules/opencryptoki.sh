#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# openCryptoki's soft token for keyport's module matrix, without touching the system's: run it as
#   unshare --mount --propagation private bash opencryptoki.sh KEYPORT WORK KEK_PEM
# In its own mount namespace it puts fresh folders over the places openCryptoki 3.8 has compiled
# in (/var/lib/opencryptoki, /etc/opencryptoki, /run for pkcsslotd's pid file and socket and the
# lock folder, /var/log/opencryptoki), starts pkcsslotd, initialises the soft token (slot 3),
# runs the keyport commands below and stops pkcsslotd by the PID it wrote. Each command's exit
# status, stdout and stderr go to WORK/steps/NAME.{rc,out,err}; the test reads them.
set -euo pipefail
keyport=$1
work=$2
kek=$3
so_pin=87654321
new_so=76543210
user_pin=12345678

mkdir -p "$work"/{lib/swtok/TOK_OBJ,etc,run/lock/opencryptoki,log,steps}
chgrp -R pkcs11 "$work"/lib "$work"/run/lock/opencryptoki
chmod -R 0770 "$work"/lib "$work"/run/lock/opencryptoki
cat >"$work/etc/opencryptoki.conf" <<'EOF'
version opencryptoki-3.1
slot 3
{
stdll = libpkcs11_sw.so
}
EOF
mkdir -p /var/log/opencryptoki
mount --bind "$work/lib" /var/lib/opencryptoki
mount --bind "$work/etc" /etc/opencryptoki
mount --bind "$work/run" /run
mount --bind "$work/log" /var/log/opencryptoki

pid=""
stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
}
trap stop EXIT

/usr/sbin/pkcsslotd
# It forks; the daemon writes its PID. A hang guard of 60 s (times KEYPORT_TEST_TIME_SCALE).
budget=$((60 * ${KEYPORT_TEST_TIME_SCALE:-1}))
start=$SECONDS
while [ ! -s /run/pkcsslotd.pid ] || [ ! -S /run/pkcsslotd.socket ]; do
  [ $((SECONDS - start)) -lt "$budget" ] || { echo "pkcsslotd did not start within $budget s" >&2; exit 1; }
  sleep 0.05
done
pid=$(cat /run/pkcsslotd.pid)

printf 'keyport-ock\n' | pkcsconf -c 3 -I -S "$so_pin" >"$work/steps/init.out" 2>&1
pkcsconf -c 3 -P -S "$so_pin" -n "$new_so" >>"$work/steps/init.out" 2>&1
pkcsconf -c 3 -u -S "$new_so" -n "$user_pin" >>"$work/steps/init.out" 2>&1

# Under LeakSanitizer (scripts/test.sh, stage asan): openCryptoki's soft token library keeps
# allocations for good (tests/hardening/lsan.supp). Malloc stacks are unwound in full so that the
# suppression sees the libopencryptoki.so frame under the token library, which C_Finalize unloads
# before the leak check runs.
if [ -n "${LSAN_OPTIONS:-}" ]; then
  export LSAN_OPTIONS="$LSAN_OPTIONS:fast_unwind_on_malloc=0"
fi

step() {  # NAME ARGS...
  local name=$1
  shift
  local rc=0
  env -u KEYPORT_PKCS11_MODULE -u KEYPORT_PKCS11_INIT_ARGS KEYPORT_PIN="$user_pin" \
    "$keyport" --module /usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so "$@" \
    >"$work/steps/$name.out" 2>"$work/steps/$name.err" </dev/null || rc=$?
  echo "$rc" >"$work/steps/$name.rc"
}

mkdir -p "$work/out"
step list-tokens token list --json
step info token info --token keyport-ock --doctor --json
step gen-rsa key generate --token keyport-ock --type rsa-2048 --label ock-rsa --json
step gen-ec key generate --token keyport-ock --type ec-p256 --label ock-ec --json
step gen-aes key generate --token keyport-ock --type aes-256 --label ock-aes --json
step list key list --token keyport-ock --json
step export byok export --token keyport-ock --key ock-rsa --kek "$kek" \
  --kid https://contoso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef \
  -o "$work/out/ock-rsa.byok" --json
step list-after key list --token keyport-ock --json
