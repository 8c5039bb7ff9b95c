#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver of release_flow.mjs (label interop): the official Azure SDK for JavaScript releases
# a key from `keyport vault serve` to keyport's SIMULATED attestation authority and enclave.
#
#   tests/interop/azure_sdk/run_release.sh KEYPORT_BINARY WORK_DIR
#
# Makes a fresh WORK_DIR with a simulated authority (keyport attest init) and an enclave runtime
# key (keyport enclave keygen), starts the vault server on a free port trusting that authority,
# runs the Node script, and stops the server (SIGTERM; it must exit 0). Fails, never skips, when
# node or the SDK is missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
keyport=${1:?usage: run_release.sh KEYPORT_BINARY WORK_DIR}
work=${2:?usage: run_release.sh KEYPORT_BINARY WORK_DIR}

fail() {
  echo "azure-sdk release interop: FAILED: $*" >&2
  exit 1
}
command -v node >/dev/null ||
  fail "node is not installed: run scripts/setup.sh (Debian's nodejs and npm, then npm ci in tests/interop/azure_sdk)"
[ -f "$here/node_modules/@azure/keyvault-keys/package.json" ] ||
  fail "the Azure SDK is not installed in tests/interop/azure_sdk/node_modules: run scripts/setup.sh"

rm -rf "$work"
mkdir -p "$work"
umask 077

"$keyport" -q attest init --data "$work/maa" >/dev/null
"$keyport" -q enclave keygen -o "$work/runtime.key" --pub "$work/runtime.pub" >/dev/null

"$keyport" vault serve --data "$work/vault" --listen 127.0.0.1:0 --flavor key-vault \
  --trusted-authorities "$work/maa/trusted-authorities.json" \
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
echo "azure-sdk release interop: vault at $url"

status=0
env VAULT_URL="$url" VAULT_TOKEN_FILE="$work/vault/admin.token" \
  NODE_EXTRA_CA_CERTS="$work/vault/tls/ca.pem" KEYPORT_BIN="$keyport" WORK_DIR="$work" \
  AUTHORITY_DIR="$work/maa" RUNTIME_KEY="$work/runtime.key" RUNTIME_PUB="$work/runtime.pub" \
  node "$here/release_flow.mjs" || status=$?

# The npm jose library (panva/jose) verifies the vault's release JWS on its own.
jose_status=0
if [ "$status" -eq 0 ]; then
  node "$here/../jose/verify_release.mjs" "$work/release.json" "sdk-nonce-1" || jose_status=$?
fi

kill -TERM "$server"
server_status=0
wait "$server" || server_status=$?
trap - EXIT
echo "azure-sdk release interop: vault access log:"
sed 's/^/  /' "$work/access.log"
[ "$status" -eq 0 ] || fail "release_flow.mjs exited with $status"
[ "$jose_status" -eq 0 ] || fail "jose could not verify the release JWS (verify_release.mjs exited with $jose_status)"
[ "$server_status" -eq 0 ] || { cat "$work/server.err" >&2; fail "the vault server exited with $server_status after SIGTERM"; }
echo "azure-sdk release interop: passed"
