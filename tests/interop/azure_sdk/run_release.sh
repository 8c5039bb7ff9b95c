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
what="azure-sdk release interop"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_prepare "${1:?usage: run_release.sh KEYPORT_BINARY WORK_DIR}" "${2:?usage: run_release.sh KEYPORT_BINARY WORK_DIR}"

"$keyport" -q attest init --data "$work/maa" >/dev/null
"$keyport" -q enclave keygen -o "$work/runtime.key" --pub "$work/runtime.pub" >/dev/null

serve_vault --flavor key-vault --trusted-authorities "$work/maa/trusted-authorities.json"

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

finish_vault
[ "$status" -eq 0 ] || fail "release_flow.mjs exited with $status"
[ "$jose_status" -eq 0 ] || fail "jose could not verify the release JWS (verify_release.mjs exited with $jose_status)"
require_clean_exit
