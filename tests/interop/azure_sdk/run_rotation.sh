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
what="azure-sdk rotation interop"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_prepare "${1:?usage: run_rotation.sh KEYPORT_BINARY WORK_DIR}" "${2:?usage: run_rotation.sh KEYPORT_BINARY WORK_DIR}"

# The vault server gets its own SoftHSM library instance (own-folder mode), on a free port.
serve_vault --flavor key-vault

status=0
env VAULT_URL="$url" VAULT_TOKEN_FILE="$work/vault/admin.token" VAULT_DATA="$work/vault" \
  NODE_EXTRA_CA_CERTS="$work/vault/tls/ca.pem" KEYPORT_BIN="$keyport" \
  node "$here/rotation.mjs" || status=$?

finish_vault
[ "$status" -eq 0 ] || fail "rotation.mjs exited with $status"
grep -q "op=RotateKey" "$work/access.log" || fail "the access log shows no RotateKey"
require_clean_exit
