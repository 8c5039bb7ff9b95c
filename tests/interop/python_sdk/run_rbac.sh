#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver of rbac_flow.py (label interop): Debian's azure.keyvault.administration
# (KeyVaultAccessControlClient, KeyVaultSettingsClient) against `keyport vault serve` on a
# managed-hsm folder: Managed HSM local RBAC and settings.
#
#   tests/interop/python_sdk/run_rbac.sh KEYPORT_BINARY WORK_DIR
#
# The vault is named https://kphsm.localhost:PORT (its challenge, with --challenge-resource self,
# names https://localhost:PORT, which the SDK accepts); rbac_flow.py maps that host to 127.0.0.1.
# Fails, never skips, when Python or the SDK is missing.
set -euo pipefail
what="python-sdk rbac interop"
py_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$py_dir/../azure_sdk/lib.sh"
keyport=${1:?usage: run_rbac.sh KEYPORT_BINARY WORK_DIR}
work=${2:?usage: run_rbac.sh KEYPORT_BINARY WORK_DIR}
python=/usr/bin/python3

[ -x "$python" ] || fail "$python is missing: run scripts/setup.sh"
"$python" -c "import azure.keyvault.administration, azure.keyvault.keys" 2>/dev/null ||
  fail "the Azure SDK for Python is missing: run scripts/setup.sh (it installs Debian's python3-azure)"
echo "$what: $("$python" -c 'import azure.keyvault.administration as a; print("azure-keyvault-administration", a.__version__)')"

rm -rf "$work"
mkdir -p "$work"
umask 077

port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="https://kphsm.localhost:$port"
"$keyport" -q vault init --data "$work/vault" --flavor managed-hsm --name kphsm --base-url "$base" >/dev/null

admin_token=$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')
ci_token=$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')
printf '%s\n' "$admin_token" >"$work/admin.token"
printf '%s\n' "$ci_token" >"$work/ci.token"
cat >"$work/vault/access.json" <<JSON
{
  "tokens": {
    "$admin_token": {"name": "admin", "permissions": ["get", "list", "create", "import", "update",
      "delete", "recover", "purge", "sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey",
      "release", "rotate", "getrotationpolicy", "setrotationpolicy", "backup", "restore"]},
    "$ci_token": {"name": "ci", "permissions": []}
  }
}
JSON

"$keyport" vault serve --data "$work/vault" --listen "127.0.0.1:$port" \
  --challenge-resource self --access-log "$work/access.log" \
  >"$work/server.out" 2>"$work/server.err" &
server=$!
wait_for_server
grep -q "local RBAC initialised: 2" "$work/server.out" || fail "the server did not initialise Managed HSM local RBAC"

status=0
env -i PATH=/usr/bin:/bin HOME="$work" VAULT_URL="$base" \
  ADMIN_TOKEN_FILE="$work/admin.token" CI_TOKEN_FILE="$work/ci.token" \
  REQUESTS_CA_BUNDLE="$work/vault/tls/ca.pem" \
  "$python" "$py_dir/rbac_flow.py" || status=$?

finish_vault
[ "$status" -eq 0 ] || { cat "$work/server.err" >&2; fail "rbac_flow.py exited with $status"; }
grep -q "caller=admin .*op=RoleAssignments_Create" "$work/access.log" || fail "the access log shows no RoleAssignments_Create by admin"
[ "$server_status" -eq 0 ] || { cat "$work/server.err" >&2; fail "the vault server exited with $server_status after SIGTERM"; }
echo "$what: passed"
