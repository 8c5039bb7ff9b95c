#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver of byok_flow.mjs (label interop): the official Azure SDK for JavaScript against
# `keyport vault serve`.
#
#   tests/interop/azure_sdk/run.sh KEYPORT_BINARY WORK_DIR
#
# Makes a fresh WORK_DIR with an on-prem SoftHSM token (two portable keys), starts the vault server
# on a free port with a fresh data folder, runs the Node script with the URL, token file and CA in
# the environment, and stops the server (SIGTERM; it must exit 0). Fails, never skips, when node or
# the SDK is missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
keyport=${1:?usage: run.sh KEYPORT_BINARY WORK_DIR}
work=${2:?usage: run.sh KEYPORT_BINARY WORK_DIR}

fail() {
  echo "azure-sdk interop: FAILED: $*" >&2
  exit 1
}
command -v node >/dev/null ||
  fail "node is not installed: run scripts/setup.sh (it installs Debian's nodejs and npm, then npm ci in tests/interop/azure_sdk)"
[ -f "$here/node_modules/@azure/keyvault-keys/package.json" ] ||
  fail "the Azure SDK is not installed in tests/interop/azure_sdk/node_modules: run scripts/setup.sh (npm ci --prefix tests/interop/azure_sdk)"
echo "azure-sdk interop: node $(node --version), @azure/keyvault-keys $(node -p "require('$here/node_modules/@azure/keyvault-keys/package.json').version")"

rm -rf "$work"
mkdir -p "$work"
umask 077

# The on-prem HSM: a SoftHSM token in WORK_DIR, an EC P-256 and an RSA-2048 portable key.
eval "$("$root/softhsm-config/init-tokens.sh" "$work/hsm" onprem:1111:2222)"
printf 2222 >"$work/pin"
for spec in ec-p256:sdk-ec rsa-2048:sdk-rsa; do
  "$keyport" -q key generate --token onprem --type "${spec%%:*}" --label "${spec##*:}" \
    --pin-source "file:$work/pin" >/dev/null
  pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label onprem --read-object \
    --type pubkey --label "${spec##*:}" -o "$work/${spec##*:}.pub.der" >/dev/null 2>&1 ||
    fail "pkcs11-tool could not read the public key of ${spec##*:}"
done

# The vault, on a free port.
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
echo "azure-sdk interop: vault at $url"

status=0
env VAULT_URL="$url" VAULT_TOKEN_FILE="$work/vault/admin.token" \
  NODE_EXTRA_CA_CERTS="$work/vault/tls/ca.pem" VAULT_ACCESS_LOG="$work/access.log" \
  KEYPORT_BIN="$keyport" ONPREM_PIN_FILE="$work/pin" WORK_DIR="$work" \
  ONPREM_EC_PUB="$work/sdk-ec.pub.der" ONPREM_RSA_PUB="$work/sdk-rsa.pub.der" \
  node "$here/byok_flow.mjs" || status=$?

kill -TERM "$server"
server_status=0
wait "$server" || server_status=$?
trap - EXIT
echo "azure-sdk interop: vault access log:"
sed 's/^/  /' "$work/access.log"
[ "$status" -eq 0 ] || fail "byok_flow.mjs exited with $status"
[ "$server_status" -eq 0 ] || { cat "$work/server.err" >&2; fail "the vault server exited with $server_status after SIGTERM"; }
echo "azure-sdk interop: passed"
