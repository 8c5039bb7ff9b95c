#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver of backup_flow.py (label interop): Debian's Azure SDK for Python
# (azure-keyvault-administration's KeyVaultBackupClient) runs a Managed HSM full backup, a full
# restore and a selective key restore against `keyport vault serve --flavor managed-hsm
# --backup-storage DIR`.
#
#   tests/interop/python_sdk/run_backup.sh KEYPORT_BINARY WORK_DIR
#
# Fails, never skips, when Python or the SDK is missing.
set -euo pipefail
what="python-sdk backup interop"
py_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$py_dir/../azure_sdk/lib.sh"
keyport=${1:?usage: run_backup.sh KEYPORT_BINARY WORK_DIR}
work=${2:?usage: run_backup.sh KEYPORT_BINARY WORK_DIR}
python=/usr/bin/python3
[ -x "$python" ] || fail "$python is missing: run scripts/setup.sh"
"$python" -c "import azure.keyvault.administration, azure.keyvault.keys, cryptography" 2>/dev/null ||
  fail "the Azure SDK for Python is missing: run scripts/setup.sh (it installs Debian's python3-azure)"
echo "$what: $("$python" -c 'import azure.keyvault.administration as a; print("azure-keyvault-administration", a.__version__)')"
rm -rf "$work"
mkdir -p "$work/storage/pyacct.blob.core.windows.net/backups"
umask 077

"$keyport" vault serve --data "$work/vault" --flavor managed-hsm --listen 127.0.0.1:0 \
  --backup-storage "$work/storage" --access-log "$work/access.log" \
  >"$work/server.out" 2>"$work/server.err" &
server=$!
wait_for_server
url=$("$python" -c "import json; print(json.load(open('$work/vault/server.json'))['url'])")
echo "$what: vault at $url"

status=0
env VAULT_URL="$url" VAULT_TOKEN_FILE="$work/vault/admin.token" VAULT_CA="$work/vault/tls/ca.pem" \
  STORAGE_DIR="$work/storage" "$python" "$py_dir/backup_flow.py" || status=$?

finish_vault
[ "$status" -eq 0 ] || fail "backup_flow.py exited with $status"
for op in FullBackup FullBackupStatus FullRestoreOperation SelectiveKeyRestoreOperation RestoreStatus; do
  grep -q "op=$op" "$work/access.log" || fail "the access log shows no $op"
done
[ "$server_status" -eq 0 ] || { cat "$work/server.err" >&2; fail "the vault server exited with $server_status after SIGTERM"; }
echo "$what: passed"
