#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command: installs what is missing, builds, and runs the main job end to end
# on the embedded default, a SoftHSM token under build/demo (never the system token folder):
#
#   1. an "on-prem" token and one portable key of each of the ten supported types;
#   2. a KEK (RSA-3072, made with OpenSSL: it stands in for the vault's RSA-HSM KEK);
#   3. each key exported to a .byok file inside the token (AES to Managed HSM, the rest to Key Vault);
#   4. each file verified offline: unwrapped with the KEK's private key (keyport byok inspect) and
#      matched against the token's own fingerprint of the key (public-key SHA-256, or the AES KCV);
#   5. a summary table.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KEYPORT_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
keyport="$build/cli/keyport"

demo="$build/demo"
rm -rf "$demo"
mkdir -p "$demo/out"
cd "$demo"
umask 077

echo "== on-prem token (SoftHSM, $demo/hsm)"
eval "$("$root/softhsm-config/init-tokens.sh" "$demo/hsm" "onprem:$(openssl rand -hex 8):$(openssl rand -hex 8 | tee pin)")"
# The PIN lives in a 0600 file and reaches keyport through --pin-source, never through argv.
pin=(--pin-source "file:$demo/pin")

echo "== KEK (stand-in for the vault's RSA-HSM key, made with OpenSSL)"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out kek.key 2>/dev/null
openssl pkey -in kek.key -pubout -out kek.pem
version=$(openssl rand -hex 16)
kv_kid="https://keyport-demo.vault.azure.net/keys/KEK/$version"
mhsm_kid="https://keyport-demo.managedhsm.azure.net/keys/KEK/$version"

types=(rsa-2048 rsa-3072 rsa-4096 ec-p256 ec-p384 ec-p521 ec-p256k aes-128 aes-192 aes-256)
echo "== generating ${#types[@]} portable keys in the token"
for t in "${types[@]}"; do
  "$keyport" -q key generate --token onprem --type "$t" --label "demo-$t" "${pin[@]}" >/dev/null
done
"$keyport" key list --token onprem "${pin[@]}" --json > keys.json

echo "== exporting each key inside the token"
for t in "${types[@]}"; do
  kid=$kv_kid
  [[ $t == aes-* ]] && kid=$mhsm_kid
  "$keyport" -q byok export --token onprem --key "demo-$t" --kek kek.pem --kid "$kid" \
    -o "out/demo-$t.byok" "${pin[@]}" --json > "out/demo-$t.export.json"
done

echo "== verifying each file (unwrap with the KEK private key, compare with the token's fingerprint)"
failures=0
rows=()
for t in "${types[@]}"; do
  f="out/demo-$t.byok"
  # --kek-private exists for test rigs like this one: a real KEK's private key never leaves the vault.
  "$keyport" byok inspect "$f" --kek-private kek.key --json > "out/demo-$t.inspect.json" 2>>inspect.log || true
  if [[ $t == aes-* ]]; then field=kcv label=kcv; else field=public_key_sha256 label=sha256; fi
  in_token=$(jq -r --arg l "demo-$t" --arg f "$field" '.keys[] | select(.label == $l) | .[$f]' keys.json)
  in_file=$(jq -r --arg f "$field" '.key[$f] // empty' "out/demo-$t.inspect.json")
  unwrapped=$(jq -r '.key.type // "?"' "out/demo-$t.inspect.json")
  errors=$(jq -r '.counts.error' "out/demo-$t.inspect.json")
  warnings=$(jq -r '[.findings[] | select(.severity == "warning") | .code] | join(",")' "out/demo-$t.inspect.json")
  verdict=ok
  if [[ -z $in_file || $in_file != "$in_token" || $unwrapped != "$t" || $errors != 0 ]]; then
    verdict=FAILED
    failures=$((failures + 1))
  fi
  target=$(jq -r '.target' "out/demo-$t.export.json")
  rows+=("$(printf '%-9s %-12s %6s  %-8s %-18s %-7s %s' "$t" "$target" "$(stat -c %s "$f")" "$label" "${in_file:0:16}" "$verdict" "${warnings:--}")")
done

echo
printf '%-9s %-12s %6s  %-8s %-18s %-7s %s\n' TYPE TARGET BYTES MATCH FINGERPRINT RESULT WARNINGS
printf '%s\n' "${rows[@]}"
echo
echo "files in $demo/out; the az import command for each is in out/*.export.json (az_command)"
if [[ $failures -ne 0 ]]; then
  echo "demo: $failures file(s) did not verify" >&2
  exit 1
fi
echo "demo: all ${#types[@]} keys exported inside the token and verified"
