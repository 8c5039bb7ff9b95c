#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver of backup_flow.mjs (label interop): the official Azure SDK for JavaScript backs up,
# deletes, purges and restores a key against `keyport vault serve`, and sees tampered blobs and
# existing names refused.
#
#   tests/interop/azure_sdk/run_backup.sh KEYPORT_BINARY WORK_DIR
#
# Fails, never skips, when node or the SDK is missing.
set -euo pipefail
what="azure-sdk backup interop"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
interop_prepare "${1:?usage: run_backup.sh KEYPORT_BINARY WORK_DIR}" "${2:?usage: run_backup.sh KEYPORT_BINARY WORK_DIR}"

# The vault server gets its own SoftHSM library instance (own-folder mode), on a free port.
serve_vault --flavor key-vault

status=0
env VAULT_URL="$url" VAULT_TOKEN_FILE="$work/vault/admin.token" VAULT_DATA="$work/vault" \
  NODE_EXTRA_CA_CERTS="$work/vault/tls/ca.pem" KEYPORT_BIN="$keyport" \
  node "$here/backup_flow.mjs" || status=$?

finish_vault
[ "$status" -eq 0 ] || fail "backup_flow.mjs exited with $status"
grep -q "op=BackupKey" "$work/access.log" || fail "the access log shows no BackupKey"
grep -q "op=RestoreKey" "$work/access.log" || fail "the access log shows no RestoreKey"
require_clean_exit
