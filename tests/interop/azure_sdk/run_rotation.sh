#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver of rotation.mjs (label interop): the official Azure SDK for JavaScript reads and
# writes rotation policies and rotates keys against `keyport vault serve`, while
# `keyport vault clock --advance` moves the running server's clock through the folder's settings.
#
#   tests/interop/azure_sdk/run_rotation.sh KEYPORT_BINARY WORK_DIR
#
# Fails, never skips, when node or the SDK is missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
keyport=${1:?usage: run_rotation.sh KEYPORT_BINARY WORK_DIR}
work=${2:?usage: run_rotation.sh KEYPORT_BINARY WORK_DIR}

fail() {
  echo "azure-sdk rotation interop: FAILED: $*" >&2
  exit 1
}
command -v node >/dev/null ||
  fail "node is not installed: run scripts/setup.sh (it installs Debian's nodejs and npm, then npm ci in tests/interop/azure_sdk)"
[ -f "$here/node_modules/@azure/keyvault-keys/package.json" ] ||
  fail "the Azure SDK is not installed in tests/interop/azure_sdk/node_modules: run scripts/setup.sh"

rm -rf "$work"
mkdir -p "$work"
umask 077

# The vault server gets its own SoftHSM library instance (own-folder mode), on a free port.
"$keyport" vault serve --data "$work/vault" --listen 127.0.0.1:0 --flavor key-vault \
  --access-log "$work/access.log" >"$work/server.out" 2>"$work/server.err" &
server=$!
stop_server() {
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
}
trap stop_server EXIT
for _ in $(seq 1 600); do
  [ -s "$work/vault/server.json" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.out" "$work/server.err" >&2; fail "the vault server exited"; }
  sleep 0.05
done
[ -s "$work/vault/server.json" ] || fail "the vault server did not write server.json"
url=$(node -p "JSON.parse(require('fs').readFileSync('$work/vault/server.json','utf8')).url")
echo "azure-sdk rotation interop: vault at $url"

status=0
env VAULT_URL="$url" VAULT_TOKEN_FILE="$work/vault/admin.token" VAULT_DATA="$work/vault" \
  NODE_EXTRA_CA_CERTS="$work/vault/tls/ca.pem" KEYPORT_BIN="$keyport" \
  node "$here/rotation.mjs" || status=$?

kill -TERM "$server"
server_status=0
wait "$server" || server_status=$?
trap - EXIT
echo "azure-sdk rotation interop: vault access log:"
sed 's/^/  /' "$work/access.log"
[ "$status" -eq 0 ] || fail "rotation.mjs exited with $status"
grep -q "op=RotateKey" "$work/access.log" || fail "the access log shows no RotateKey"
[ "$server_status" -eq 0 ] || { cat "$work/server.err" >&2; fail "the vault server exited with $server_status after SIGTERM"; }
echo "azure-sdk rotation interop: passed"
