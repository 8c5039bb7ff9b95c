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
what="azure-sdk interop"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(cd "$here/../../.." && pwd)
interop_prepare "${1:?usage: run.sh KEYPORT_BINARY WORK_DIR}" "${2:?usage: run.sh KEYPORT_BINARY WORK_DIR}"

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

# The vault listens on 127.0.0.1, which no challenge resource can cover (the SDK's check is turned
# off in byok_flow.mjs); the challenge names Azure's resource, which the script checks it was asked.
serve_vault --flavor key-vault --challenge-resource azure

status=0
env VAULT_URL="$url" VAULT_TOKEN_FILE="$work/vault/admin.token" \
  NODE_EXTRA_CA_CERTS="$work/vault/tls/ca.pem" VAULT_ACCESS_LOG="$work/access.log" \
  KEYPORT_BIN="$keyport" ONPREM_PIN_FILE="$work/pin" WORK_DIR="$work" \
  ONPREM_EC_PUB="$work/sdk-ec.pub.der" ONPREM_RSA_PUB="$work/sdk-rsa.pub.der" \
  node "$here/byok_flow.mjs" || status=$?

finish_vault
[ "$status" -eq 0 ] || fail "byok_flow.mjs exited with $status"
require_clean_exit
