#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver of mhsm_crypto.mjs (label interop): the official Azure SDK for JavaScript runs AES
# encrypt/decrypt, AES key wrap and getRandomBytes against a Managed HSM flavoured
# `keyport vault serve`.
#
#   tests/interop/azure_sdk/run_mhsm.sh KEYPORT_BINARY WORK_DIR
#
# Fails, never skips, when node or the SDK is missing.
set -euo pipefail
what="azure-sdk managed-hsm interop"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_prepare "${1:?usage: run_mhsm.sh KEYPORT_BINARY WORK_DIR}" "${2:?usage: run_mhsm.sh KEYPORT_BINARY WORK_DIR}"

serve_vault --flavor managed-hsm

status=0
env VAULT_URL="$url" VAULT_TOKEN_FILE="$work/vault/admin.token" \
  NODE_EXTRA_CA_CERTS="$work/vault/tls/ca.pem" \
  node "$here/mhsm_crypto.mjs" || status=$?

finish_vault
[ "$status" -eq 0 ] || fail "mhsm_crypto.mjs exited with $status"
for op in Encrypt Decrypt WrapKey UnwrapKey GetRandomBytes GetKeyAttestation; do
  grep -q "op=$op" "$work/access.log" || fail "the access log shows no $op"
done
require_clean_exit
