#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver of security_domain_flow.py (label interop): Microsoft's own security-domain code
# from Debian's azure-cli (python3-azure-cli: az keyvault security-domain download,
# init-recovery, restore-blob, upload) against three un-activated `keyport vault serve
# --flavor managed-hsm` HSMs in turn (phase a activates the first and takes a full backup, b
# brings its domain into a second and restores the backup there, c is refused altered blobs),
# with Debian's azure-keyvault-keys and -administration and pyca/cryptography around it.
#
#   tests/interop/python_sdk/run_security_domain.sh KEYPORT_BINARY WORK_DIR
#
# Fails, never skips, when Python, the SDK or azure-cli's keyvault module is missing.
set -euo pipefail
what="python security-domain interop"
py_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$py_dir/../azure_sdk/lib.sh"
keyport=${1:?usage: run_security_domain.sh KEYPORT_BINARY WORK_DIR}
root=${2:?usage: run_security_domain.sh KEYPORT_BINARY WORK_DIR}
python=/usr/bin/python3
[ -x "$python" ] || fail "$python is missing: run scripts/setup.sh"
"$python" -c "import azure.keyvault.administration, azure.keyvault.keys, cryptography" 2>/dev/null ||
  fail "the Azure SDK for Python is missing: run scripts/setup.sh (it installs Debian's python3-azure)"
"$python" -c "import azure.cli.command_modules.keyvault.custom, msrest, msrestazure" 2>/dev/null ||
  fail "azure-cli's keyvault module is missing: run scripts/setup.sh (it installs Debian's python3-azure-cli)"
echo "$what: $(dpkg-query -W -f='python3-azure-cli ${Version}' python3-azure-cli 2>/dev/null || echo 'python3-azure-cli')"
rm -rf "$root"
mkdir -p "$root/files" "$root/storage/sdacct.blob.core.windows.net/backups"
umask 077

for phase in a b c; do
  work="$root/hsm-$phase"
  mkdir -p "$work"
  "$keyport" -q vault init --data "$work/vault" --flavor managed-hsm --name "sd$phase" \
    --require-activation >/dev/null
  "$keyport" vault serve --data "$work/vault" --listen 127.0.0.1:0 \
    --backup-storage "$root/storage" --access-log "$work/access.log" \
    >"$work/server.out" 2>"$work/server.err" &
  server=$!
  wait_for_server
  url=$("$python" -c "import json; print(json.load(open('$work/vault/server.json'))['url'])")
  echo "$what: phase $phase: HSM at $url"
  status=0
  env PHASE="$phase" VAULT_URL="$url" VAULT_TOKEN_FILE="$work/vault/admin.token" \
    VAULT_CA="$work/vault/tls/ca.pem" STORAGE_DIR="$root/storage" WORK_DIR="$root/files" \
    "$python" "$py_dir/security_domain_flow.py" || status=$?
  finish_vault
  [ "$status" -eq 0 ] || { cat "$work/server.err" >&2; fail "phase $phase: security_domain_flow.py exited with $status"; }
  [ "$server_status" -eq 0 ] || { cat "$work/server.err" >&2; fail "phase $phase: the vault server exited with $server_status after SIGTERM"; }
done
grep -Eq "POST /securitydomain/download\?\S+ 202 .*op=HSMSecurityDomain_Download" "$root/hsm-a/access.log" || fail "the access log of HSM a shows no accepted download"
grep -Eq "POST /securitydomain/upload\?\S+ 202 .*op=HSMSecurityDomain_Upload" "$root/hsm-b/access.log" || fail "the access log of HSM b shows no accepted upload"
grep -Eq "POST /securitydomain/upload\?\S+ 400 .*op=HSMSecurityDomain_Upload" "$root/hsm-c/access.log" || fail "the access log of HSM c shows no refused upload"
echo "$what: passed"
