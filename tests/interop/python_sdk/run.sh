#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver of sdk_flow.py (label interop): the Azure SDK for Python that Debian 12 ships
# (python3-azure: azure-keyvault-keys 4.8, azure-identity 1.13) against `keyport vault serve`
# with the SDK's defaults: no api-version, no challenge override, DefaultAzureCredential over
# keyport's managed-identity endpoint.
#
#   tests/interop/python_sdk/run.sh KEYPORT_BINARY WORK_DIR
#
# The vault is named https://kpvault.localhost:PORT (so that --challenge-resource self names
# https://localhost:PORT, which the SDK's challenge check accepts); sdk_flow.py maps that host to
# 127.0.0.1 inside its own process, as an /etc/hosts line would. Fails, never skips, when Python
# or the SDK is missing.
set -euo pipefail
what="python-sdk interop"
py_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# fail, wait_for_server and finish_vault, shared with the JavaScript drivers.
source "$py_dir/../azure_sdk/lib.sh"
keyport=${1:?usage: run.sh KEYPORT_BINARY WORK_DIR}
work=${2:?usage: run.sh KEYPORT_BINARY WORK_DIR}
# Debian's interpreter: the SDK is a Debian package (a pyenv or venv python on PATH lacks it).
python=/usr/bin/python3

[ -x "$python" ] || fail "$python is missing: run scripts/setup.sh"
"$python" -c "import azure.keyvault.keys, azure.identity, cryptography" 2>/dev/null ||
  fail "the Azure SDK for Python is missing: run scripts/setup.sh (it installs Debian's python3-azure)"
echo "$what: $("$python" -c 'import azure.keyvault.keys as k, azure.identity as i; print("azure-keyvault-keys", k.__version__, "azure-identity", i.__version__)')"

rm -rf "$work"
mkdir -p "$work"
umask 077

# A free port for the vault, chosen before init because the base URL names it.
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="https://kpvault.localhost:$port"
"$keyport" -q vault init --data "$work/vault" --name kpvault --base-url "$base" >/dev/null

# The access file: an admin token for the CLI, and three managed identities.
admin_token=$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')
printf '%s\n' "$admin_token" >"$work/admin.token"
cat >"$work/vault/access.json" <<EOF
{
  "tokens": {"$admin_token": {"name": "admin", "permissions": ["get", "list", "create", "import",
    "update", "delete", "recover", "purge", "sign", "verify", "encrypt", "decrypt", "wrapKey",
    "unwrapKey", "release", "rotate", "getrotationpolicy", "setrotationpolicy"]}},
  "identities": {
    "app": {"client_id": "11111111-1111-4111-8111-111111111111",
            "object_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "system_assigned": true,
            "permissions": ["get", "list", "create", "import", "update", "sign", "verify",
                            "wrapKey", "unwrapKey", "release", "rotate", "getrotationpolicy",
                            "setrotationpolicy", "delete", "purge", "backup", "restore"]},
    "reader": {"client_id": "22222222-2222-4222-8222-222222222222",
               "object_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "permissions": ["get", "list"]},
    "leaver": {"client_id": "33333333-3333-4333-8333-333333333333",
               "object_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc", "permissions": ["get", "list"]}
  }
}
EOF

"$keyport" -q attest init --data "$work/maa" >/dev/null
"$keyport" -q enclave keygen -o "$work/runtime.key" --pub "$work/runtime.pub" >/dev/null

"$keyport" vault serve --data "$work/vault" --listen "127.0.0.1:$port" \
  --identity-listen 127.0.0.1:0 --access-log "$work/access.log" \
  --trusted-authorities "$work/maa/trusted-authorities.json" \
  >"$work/server.out" 2>"$work/server.err" &
server=$!
wait_for_server
[ -s "$work/vault/identity.env" ] || fail "the server wrote no identity.env"
grep -q "^IDENTITY_ENDPOINT=http://127.0.0.1:" "$work/vault/identity.env" || fail "identity.env has no IDENTITY_ENDPOINT"
echo "$what: vault at $base, $(grep -c . "$work/vault/identity.env") identity variables"

status=0
env -i PATH=/usr/bin:/bin HOME="$work" \
  VAULT_URL="$base" VAULT_DATA="$work/vault" WORK_DIR="$work" KEYPORT_BIN="$keyport" \
  ADMIN_TOKEN_FILE="$work/admin.token" AUTHORITY_DIR="$work/maa" \
  RUNTIME_KEY="$work/runtime.key" RUNTIME_PUB="$work/runtime.pub" \
  IDENTITY_ENV="$work/vault/identity.env" REQUESTS_CA_BUNDLE="$work/vault/tls/ca.pem" \
  "$python" "$py_dir/sdk_flow.py" || status=$?

finish_vault
[ "$status" -eq 0 ] || { cat "$work/server.err" >&2; fail "sdk_flow.py exited with $status"; }
grep -q "caller=app .*op=ImportKey" "$work/access.log" || fail "the access log shows no ImportKey by identity app"
grep -q "identity=reader" "$work/access.log" || fail "the access log shows no token issued to identity reader"
grep -q "caller=app .*op=RestoreKey" "$work/access.log" || fail "the access log shows no RestoreKey by identity app"
[ "$server_status" -eq 0 ] || { cat "$work/server.err" >&2; fail "the vault server exited with $server_status after SIGTERM"; }
[ ! -e "$work/vault/identity.env" ] || fail "identity.env (it holds the endpoint's secret) is left behind"
echo "$what: passed"
