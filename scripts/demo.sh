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
#   5. a summary table;
#   6. the same keys into the simulated vault (build/demo/vault-kv, build/demo/vault-mhsm): the vault
#      makes its KEK (keyport vault init + create-key --kek), `vault download` writes its public key,
#      the token exports each key to it, `vault import` takes each file; RSA and EC keys sign in the
#      vault and OpenSSL verifies the signature with the on-prem public key (the vault's copy,
#      accepted only when its SHA-256 equals the token's own fingerprint of the key); AES keys go to
#      a Managed HSM flavoured vault and are proven with
#      wrapKey/unwrapKey (imported twice: what one version wraps the other unwraps; a key the vault
#      made itself cannot).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KEYPORT_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
# The demo runs the CLI only: the test suite and the benchmarks are not built here.
KEYPORT_BUILD_TARGETS=keyport "$root/scripts/build.sh" >/dev/null
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

echo
echo "== the simulated vault: KEKs made in the vault, keys imported, used and checked"
kv=(--data "$demo/vault-kv")
mhsm=(--data "$demo/vault-mhsm")
"$keyport" -q vault init "${kv[@]}" --flavor key-vault --name keyport-demo >/dev/null
"$keyport" -q vault init "${mhsm[@]}" --flavor managed-hsm --name keyport-demo-mhsm >/dev/null
# RSA-3072 KEKs (--kek alone makes RSA-4096, as Azure's examples do; 3072 keeps the demo quick).
kv_kek_kid=$("$keyport" vault create-key "${kv[@]}" --name KEK --kek --size 3072 --json | jq -r .key.kid)
mhsm_kek_kid=$("$keyport" vault create-key "${mhsm[@]}" --name KEK --kek --size 3072 --json | jq -r .key.kid)
"$keyport" -q vault download "${kv[@]}" --name KEK -o vault-kv-kek.pem
"$keyport" -q vault download "${mhsm[@]}" --name KEK -o vault-mhsm-kek.pem
printf 'pay 100 to Bob\n' > message.txt
vault_failures=0
vrows=()
for t in "${types[@]}"; do
  if [[ $t == aes-* ]]; then where=("${mhsm[@]}") kek=vault-mhsm-kek.pem kid=$mhsm_kek_kid; else where=("${kv[@]}") kek=vault-kv-kek.pem kid=$kv_kek_kid; fi
  f="out/vault-$t.byok"
  "$keyport" -q byok export --token onprem --key "demo-$t" --kek "$kek" --kid "$kid" -o "$f" "${pin[@]}" >/dev/null
  case $t in
    rsa-*) kty=(--kty RSA) ;;
    ec-p256) kty=(--kty EC --curve P-256) alg=ES256 md=sha256 ;;
    ec-p384) kty=(--kty EC --curve P-384) alg=ES384 md=sha384 ;;
    ec-p521) kty=(--kty EC --curve P-521) alg=ES512 md=sha512 ;;
    ec-p256k) kty=(--kty EC --curve P-256K) alg=ES256K md=sha256 ;;
    aes-*) kty=(--kty oct) ;;
  esac
  [[ $t == rsa-* ]] && alg=RS256 md=sha256
  name="demo-$t"
  imported=$("$keyport" vault import "${where[@]}" --name "$name" --byok "$f" "${kty[@]}" --json | jq -r .key.kid)
  verdict=FAILED proof=-
  if [[ $t == aes-* ]]; then
    # Imported a second time: a second version holding the same key material.
    bits=${t#aes-}
    "$keyport" -q vault import "${where[@]}" --name "$name" --byok "$f" "${kty[@]}" >/dev/null
    versions=($("$keyport" vault versions "${where[@]}" --name "$name" --json | jq -r '.value[].kid | split("/") | last'))
    openssl rand -out "out/dek-$t.bin" 32
    "$keyport" -q vault wrap-key "${where[@]}" --name "$name" --version "${versions[0]}" --alg "A${bits}KW" --in "out/dek-$t.bin" -o "out/dek-$t.wrapped" >/dev/null
    "$keyport" -q vault unwrap-key "${where[@]}" --name "$name" --version "${versions[1]}" --alg "A${bits}KW" --in "out/dek-$t.wrapped" -o "out/dek-$t.unwrapped" >/dev/null
    "$keyport" -q vault create-key "${where[@]}" --name "other-$t" --kty oct-HSM --size "$bits" >/dev/null
    if cmp -s "out/dek-$t.bin" "out/dek-$t.unwrapped" &&
      ! "$keyport" -q vault unwrap-key "${where[@]}" --name "other-$t" --alg "A${bits}KW" --in "out/dek-$t.wrapped" >/dev/null 2>&1; then
      verdict=ok proof="A${bits}KW v1->v2"
    fi
  else
    "$keyport" -q vault sign "${kv[@]}" --name "$name" --alg "$alg" --in message.txt -o "out/vault-$t.sig" --der >/dev/null
    # The public key as the vault gives it (az keyvault key download), accepted only when its
    # SHA-256 is the on-prem token's own fingerprint of the key (keys.json, read before any export).
    "$keyport" -q vault download "${kv[@]}" --name "$name" -o "out/vault-$t.pub.pem" >/dev/null
    in_vault=$(openssl pkey -pubin -in "out/vault-$t.pub.pem" -outform DER | sha256sum | cut -c1-64)
    in_token=$(jq -r --arg l "demo-$t" '.keys[] | select(.label == $l) | .public_key_sha256' keys.json)
    if [[ -n $in_token && $in_vault == "$in_token" ]] &&
      openssl dgst "-$md" -verify "out/vault-$t.pub.pem" -signature "out/vault-$t.sig" message.txt >/dev/null; then
      verdict=ok proof="$alg by OpenSSL"
    fi
  fi
  [[ $verdict == ok ]] || vault_failures=$((vault_failures + 1))
  vault=keyport-demo
  [[ $t == aes-* ]] && vault=keyport-demo-mhsm
  vrows+=("$(printf '%-9s %-18s %-48s %-16s %s' "$t" "$vault" "${imported##*/keys/}" "$proof" "$verdict")")
done
echo
printf '%-9s %-18s %-48s %-16s %s\n' TYPE VAULT "IMPORTED (name/version)" PROOF RESULT
printf '%s\n' "${vrows[@]}"
echo
if [[ $vault_failures -ne 0 ]]; then
  echo "demo: $vault_failures key(s) did not work in the simulated vault" >&2
  exit 1
fi
echo "demo: all ${#types[@]} keys imported into the simulated vault and proven there"

# --- Secure Key Release (helper skr; docs/skr.md) -------------------------------------------------
# 7. A key with a SEV-SNP release policy is created exportable in the simulated vault and released
#    to a SIMULATED enclave: the SIMULATED attestation authority (keyport attest) mints a token
#    carrying the enclave's runtime key, the vault checks token and policy and wraps the key to that
#    runtime key inside its token, the enclave verifies the signed answer against the vault CA and
#    unwraps; it signs, and the signature verifies with the vault's public key (OpenSSL). A token
#    with x-ms-sevsnpvm-is-debuggable: true is refused (exit 9) and releases nothing.
echo
echo "== Secure Key Release: SIMULATED attestation authority and enclave"
skr="$demo/skr"
mkdir -p "$skr"
"$keyport" -q attest init --data "$skr/maa" >/dev/null
"$keyport" -q vault trust "${kv[@]}" --from "$skr/maa" >/dev/null
"$keyport" -q enclave keygen -o "$skr/runtime.key" --pub "$skr/runtime.pub" >/dev/null
authority=$(jq -r .url "$skr/maa/authority.json")
cat >"$skr/policy.json" <<JSON
{"version": "1.0.0",
 "anyOf": [{"authority": "$authority",
            "allOf": [{"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
                      {"claim": "x-ms-compliance-status", "equals": "azure-compliant-uvm"},
                      {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": "false"},
                      {"claim": "x-ms-sevsnpvm-vmpl", "equals": "0"}]}]}
JSON
"$keyport" -q policy lint "$skr/policy.json"
"$keyport" -q vault create-key "${kv[@]}" --name skr-demo --kty RSA-HSM --size 2048 \
  --ops sign verify --policy "$skr/policy.json" >/dev/null
"$keyport" -q attest token --authority "$skr/maa" --runtime-key "$skr/runtime.pub" --type sevsnpvm \
  -o "$skr/good.jwt" >/dev/null
"$keyport" policy check --policy "$skr/policy.json" --token "$skr/good.jwt" --authority-jwks "$skr/maa" |
  sed 's/^/  /'
"$keyport" -q vault release "${kv[@]}" --name skr-demo --token "$skr/good.jwt" --nonce demo-nonce \
  -o "$skr/release.json" >/dev/null
"$keyport" enclave unwrap --release "$skr/release.json" --vault-ca "$demo/vault-kv/tls/ca.pem" \
  --nonce demo-nonce --runtime-key "$skr/runtime.key" -o "$skr/released.pem" | sed 's/^/  /'
echo "released to the enclave and used there" >"$skr/message.txt"
openssl dgst -sha256 -sign "$skr/released.pem" -out "$skr/enclave.sig" "$skr/message.txt"
"$keyport" -q vault download "${kv[@]}" --name skr-demo -o "$skr/vault-key.pem" >/dev/null
skr_ok=1
if openssl dgst -sha256 -verify "$skr/vault-key.pem" -signature "$skr/enclave.sig" "$skr/message.txt" >/dev/null; then
  echo "  the enclave's signature verifies with the vault's public key (OpenSSL)"
else
  echo "  the enclave's signature does NOT verify with the vault's public key" >&2
  skr_ok=0
fi
echo '{"x-ms-sevsnpvm-is-debuggable": true}' >"$skr/debug-claims.json"
"$keyport" -q attest token --authority "$skr/maa" --runtime-key "$skr/runtime.pub" --type sevsnpvm \
  --claims "$skr/debug-claims.json" -o "$skr/debug.jwt" >/dev/null
set +e
"$keyport" -q vault release "${kv[@]}" --name skr-demo --token "$skr/debug.jwt" -o "$skr/refused.json" 2>"$skr/refused.err"
refused=$?
set -e
if [[ $refused -eq 9 && ! -e "$skr/refused.json" ]]; then
  echo "  a debuggable token is refused (exit 9, nothing written): $(cat "$skr/refused.err")"
else
  echo "  a debuggable token was NOT refused (exit $refused)" >&2
  skr_ok=0
fi
[[ $skr_ok -eq 1 ]] || { echo "demo: Secure Key Release failed" >&2; exit 1; }
echo "demo: Secure Key Release: released to the attested (SIMULATED) enclave, used there, refused to a debuggable one"
