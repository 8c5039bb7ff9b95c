#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The hand-made BYOK route admins take today with OpenSC's pkcs11-tool and the openssl CLI, for
# comparison in bench/export_bench only. It is NOT a safe procedure: pkcs11-tool 0.23 cannot
# RSA-OAEP-wrap inside the token (C_WrapKey returns CKR_ARGUMENTS_BAD) and cannot wrap private
# keys at all, so the ephemeral AES key must be readable (not sensitive) and is written to disk in
# clear. It works only for AES targets.
#
#   handmade_route.sh MODULE TOKEN_LABEL PIN_FILE KEK.pem TARGET_ID_HEX WORKDIR COUNT
set -euo pipefail
module=$1 token=$2 pin_file=$3 kek=$4 target_id=$5 work=$6 count=$7
pin=$(cat "$pin_file")
p11=(pkcs11-tool --module "$module" --token-label "$token" --login --pin "$pin")
mkdir -p "$work"
kid="https://contoso.managedhsm.azure.net/keys/KEK/0123456789abcdef0123456789abcdef"
for i in $(seq 1 "$count"); do
  d="$work/$i"
  mkdir -p "$d"
  "${p11[@]}" --keygen --key-type AES:32 --label "eph-$i" --id ee01 --extractable >/dev/null 2>&1
  "${p11[@]}" --wrap -m 0x210A --id ee01 --application-id "$target_id" -o "$d/kwp.bin" >/dev/null 2>&1
  "${p11[@]}" --read-object --type secrkey --id ee01 -o "$d/eph.bin" >/dev/null 2>&1
  openssl pkeyutl -encrypt -pubin -inkey "$kek" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 \
    -in "$d/eph.bin" -out "$d/oaep.bin"
  "${p11[@]}" --delete-object --type secrkey --id ee01 >/dev/null 2>&1
  ct=$(cat "$d/oaep.bin" "$d/kwp.bin" | basenc --base64url -w0 | tr -d '=')
  printf '{"schema_version":"1.0.0","header":{"kid":"%s","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"%s","generator":"pkcs11-tool+openssl"}\n' \
    "$kid" "$ct" > "$d/key.byok"
  rm -f "$d/eph.bin"
done
