# SPDX-License-Identifier: Apache-2.0
"""Opens a .byok file with pyca/cryptography, which keyport does not use: RSA-OAEP (the hash of
the file's enc) of the transfer key, then AES key wrap with padding (RFC 5649) of the key.

    python3 check_byok.py FILE.byok KEK_PRIVATE.pem {rsa|ec|aes}

Prints what it found and exits 0 when the plaintext is a key of that kind (PKCS#8 that
cryptography loads for rsa and ec, tolerating the zero padding SoftHSM 2.6.1 adds; 16, 24 or 32
bytes for aes)."""
import base64
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

path, kek_path, kind = sys.argv[1:4]
with open(path, encoding="utf-8") as f:
    doc = json.load(f)
with open(kek_path, "rb") as f:
    kek = serialization.load_pem_private_key(f.read(), password=None)
enc = doc["header"]["enc"]
hash_alg = {"CKM_RSA_AES_KEY_WRAP": hashes.SHA1(), "RSA_AES_KEY_WRAP_256": hashes.SHA256(),
            "RSA_AES_KEY_WRAP_384": hashes.SHA384()}[enc]
ct = doc["ciphertext"]
blob = base64.urlsafe_b64decode(ct + "=" * (-len(ct) % 4))
k = kek.key_size // 8
transfer = kek.decrypt(blob[:k], padding.OAEP(mgf=padding.MGF1(hash_alg), algorithm=hash_alg,
                                              label=None))
plain = aes_key_unwrap_with_padding(transfer, blob[k:])
if kind == "aes":
    ok = len(plain) in (16, 24, 32)
else:
    body = plain.rstrip(b"\0") if plain.endswith(b"\0") else plain
    key = None
    for cut in range(len(plain), len(body) - 1, -1):  # the DER, then any zero padding after it
        try:
            key = serialization.load_der_private_key(plain[:cut], password=None)
            break
        except ValueError:
            continue
    ok = key is not None and isinstance(key, rsa.RSAPrivateKey if kind == "rsa" else
                                        ec.EllipticCurvePrivateKey)
print(f"check_byok: {path}: enc {enc}, {len(plain)} plaintext bytes, {kind}: {'ok' if ok else 'WRONG'}")
sys.exit(0 if ok else 1)
