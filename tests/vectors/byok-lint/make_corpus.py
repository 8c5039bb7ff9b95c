#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the structural .byok linter corpus and its manifest.json (deterministic).

Every file is a .byok file with exactly one defect (or none, for good-*). The ciphertexts are
seeded random bytes of realistic lengths: no key exists for them, so the corpus holds no key
material at all. The defects that need keys (tampered parts, wrong KEK, key types inside) are
made by tests/unit/lint_test.cpp at run time with keys it generates.

Run from anywhere: python3 tests/vectors/byok-lint/make_corpus.py
"""
import base64
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = "0123456789abcdef0123456789abcdef"
KV_KID = "https://contoso.vault.azure.net/keys/KEKforBYOK/" + VERSION
MHSM_KID = "https://contoso-hsm.managedhsm.azure.net/keys/KEKforBYOK/" + VERSION
GENERATOR = "keyport lint corpus; no HSM (seeded random ciphertext)"

rng = random.Random(20240607)


def random_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def b64url(data, pad=False):
    text = base64.urlsafe_b64encode(data).decode()
    return text if pad else text.rstrip("=")


# An RSA-2048 target (1,216-byte PKCS#8 -> 1,224-byte KWP part) under a 2048-bit KEK, and an
# AES-256 target (40-byte KWP part) under a 2048-bit KEK. 1,480 is not a multiple of 3, so its
# base64 has padding when padded.
RSA_CT = random_bytes(256 + 1224)
AES_CT = random_bytes(256 + 40)


def doc(schema="1.0.0", kid=KV_KID, alg="dir", enc="CKM_RSA_AES_KEY_WRAP", ct=None,
        generator=GENERATOR):
    return {
        "schema_version": schema,
        "header": {"kid": kid, "alg": alg, "enc": enc},
        "ciphertext": b64url(RSA_CT) if ct is None else ct,
        "generator": generator,
    }


def text(d):
    return json.dumps(d, indent=2, ensure_ascii=False) + "\n"


def without(d, *path):
    d = json.loads(json.dumps(d))
    target = d
    for p in path[:-1]:
        target = target[p]
    del target[path[-1]]
    return d


def with_value(d, value, *path):
    d = json.loads(json.dumps(d))
    target = d
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return d


GOOD = text(doc())
CT = b64url(RSA_CT)
STD_CT = base64.b64encode(RSA_CT).decode().rstrip("=")
assert "+" in STD_CT or "/" in STD_CT


def last_char_with_trailing_bits(ct):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(ct[-1]) | 1  # len % 4 == 2: only the top 2 of 6 bits are data
    return ct[:-1] + alphabet[value]


assert len(CT) % 4 == 2

# name -> (contents, expected code or None, severity, reader accepts, defect)
CASES = [
    ("good-key-vault-rsa2048.byok", GOOD, None, None, True,
     "none: RSA-2048-sized ciphertext for a Key Vault KEK"),
    ("good-managed-hsm-aes256.byok", text(doc(kid=MHSM_KID, ct=b64url(AES_CT))), None, None, True,
     "none: AES-256-sized ciphertext for a Managed HSM KEK"),
    ("good-compact.byok", json.dumps(doc(), separators=(",", ":")), None, None, True,
     "none: one line, no trailing newline"),
    ("bom.byok", "\ufeff" + GOOD, "BYOK-JSON-BOM", "warning", True, "UTF-8 byte order mark"),
    ("truncated.byok", GOOD[: len(GOOD) // 2], "BYOK-JSON-SYNTAX", "error", False,
     "cut in the middle of the ciphertext"),
    ("empty.byok", "", "BYOK-JSON-SYNTAX", "error", False, "empty file"),
    ("whitespace-only.byok", " \n\t\n", "BYOK-JSON-SYNTAX", "error", False, "only whitespace"),
    ("trailing-comma.byok", GOOD.replace(GENERATOR + '"', GENERATOR + '",'), "BYOK-JSON-SYNTAX",
     "error", False, "comma after the last member"),
    ("comment.byok", "// made by hand\n" + GOOD, "BYOK-JSON-SYNTAX", "error", False,
     "a // comment"),
    ("not-utf8.byok", None, "BYOK-JSON-SYNTAX", "error", False,
     "an invalid UTF-8 byte in the generator string"),
    ("deep-nesting.byok", text(with_value(doc(), json.loads("[" * 70 + "]" * 70), "generator")),
     "BYOK-JSON-SYNTAX", "error", False, "generator nested 70 arrays deep (limit 64)"),
    ("two-documents.byok", GOOD + "{}\n", "BYOK-JSON-SYNTAX", "error", False,
     "a second JSON value after the object"),
    ("top-array.byok", "[" + GOOD.strip() + "]\n", "BYOK-NOT-OBJECT", "error", False,
     "the object inside an array"),
    ("top-string.byok", '"' + CT + '"\n', "BYOK-NOT-OBJECT", "error", False,
     "only the ciphertext string"),
    ("duplicate-top-ciphertext.byok",
     GOOD.replace('  "generator"', '  "ciphertext": "' + CT + '",\n  "generator"'),
     "BYOK-JSON-DUPLICATE", "error", False, "ciphertext twice at the top level"),
    ("duplicate-header-kid.byok",
     GOOD.replace('    "alg"', '    "kid": "' + KV_KID + '",\n    "alg"'),
     "BYOK-JSON-DUPLICATE", "error", False, "kid twice in the header"),
    ("schema-2.0.byok", text(doc(schema="2.0")), "BYOK-SCHEMA-VERSION", "error", False,
     "schema_version 2.0"),
    ("schema-1.0.byok", text(doc(schema="1.0")), "BYOK-SCHEMA-VERSION", "error", False,
     "schema_version 1.0 (the release-response blob's)"),
    ("schema-number.byok", text(with_value(doc(), 1.0, "schema_version")), "BYOK-MEMBER-TYPE",
     "error", False, "schema_version as a number"),
    ("missing-schema-version.byok", text(without(doc(), "schema_version")),
     "BYOK-MEMBER-MISSING", "error", False, "no schema_version"),
    ("missing-header.byok", text(without(doc(), "header")), "BYOK-MEMBER-MISSING", "error", False,
     "no header"),
    ("missing-kid.byok", text(without(doc(), "header", "kid")), "BYOK-MEMBER-MISSING", "error",
     False, "no header.kid"),
    ("missing-alg.byok", text(without(doc(), "header", "alg")), "BYOK-MEMBER-MISSING", "error",
     False, "no header.alg"),
    ("missing-enc.byok", text(without(doc(), "header", "enc")), "BYOK-MEMBER-MISSING", "error",
     False, "no header.enc"),
    ("missing-ciphertext.byok", text(without(doc(), "ciphertext")), "BYOK-MEMBER-MISSING",
     "error", False, "no ciphertext"),
    ("header-array.byok", text(with_value(doc(), [KV_KID, "dir", "CKM_RSA_AES_KEY_WRAP"],
                                          "header")),
     "BYOK-MEMBER-TYPE", "error", False, "header as an array"),
    ("header-string.byok", text(with_value(doc(), "dir", "header")), "BYOK-MEMBER-TYPE", "error",
     False, "header as a string"),
    ("kid-number.byok", text(with_value(doc(), 42, "header", "kid")), "BYOK-MEMBER-TYPE",
     "error", False, "kid as a number"),
    ("ciphertext-number.byok", text(with_value(doc(), 12345, "ciphertext")), "BYOK-MEMBER-TYPE",
     "error", False, "ciphertext as a number"),
    ("ciphertext-null.byok", text(with_value(doc(), None, "ciphertext")), "BYOK-MEMBER-TYPE",
     "error", False, "ciphertext null"),
    ("generator-number.byok", text(with_value(doc(), 2, "generator")), "BYOK-MEMBER-TYPE",
     "error", False, "generator as a number"),
    ("extra-top-member.byok", text(with_value(doc(), "prod", "tag")), "BYOK-MEMBER-UNKNOWN",
     "error", False, "an extra top-level member"),
    ("extra-header-member.byok", text(with_value(doc(), "JWE", "header", "cty")),
     "BYOK-MEMBER-UNKNOWN", "error", False, "an extra header member"),
    ("alg-rsa-oaep.byok", text(doc(alg="RSA-OAEP")), "BYOK-ALG", "error", False,
     "alg RSA-OAEP instead of dir"),
    ("enc-a256kw.byok", text(doc(enc="A256KW")), "BYOK-ENC-UNKNOWN", "error", False,
     "enc A256KW (a JWE algorithm)"),
    ("enc-lowercase.byok", text(doc(enc="ckm_rsa_aes_key_wrap")), "BYOK-ENC-UNKNOWN", "error",
     False, "enc in lower case"),
    ("enc-sha256.byok", text(doc(enc="RSA_AES_KEY_WRAP_256")), "BYOK-ENC-UNDOCUMENTED",
     "warning", True, "enc RSA_AES_KEY_WRAP_256 in an import file"),
    ("kid-unversioned.byok", text(doc(kid="https://contoso.vault.azure.net/keys/KEKforBYOK")),
     "BYOK-KID-UNVERSIONED", "error", False, "kid without a version"),
    ("kid-http.byok", text(doc(kid=KV_KID.replace("https://", "http://"))), "BYOK-KID-HTTP",
     "error", False, "kid over http"),
    ("kid-short-version.byok", text(doc(kid=KV_KID[:-4])), "BYOK-KID-SHAPE", "error", False,
     "kid version of 28 characters"),
    ("kid-name-only.byok", text(doc(kid="KEKforBYOK")), "BYOK-KID-SHAPE", "error", False,
     "kid is only the KEK name"),
    ("kid-query.byok", text(doc(kid=KV_KID + "?api-version=7.4")), "BYOK-KID-SHAPE", "error",
     False, "kid with a query string"),
    ("kid-host-unknown.byok",
     text(doc(kid="https://vault.example.test/keys/KEKforBYOK/" + VERSION)),
     "BYOK-KID-HOST-UNKNOWN", "warning", True, "kid on a host that is not Azure's"),
    ("generator-missing.byok", text(without(doc(), "generator")), "BYOK-GENERATOR-MISSING",
     "info", True, "no generator"),
    ("generator-empty.byok", text(doc(generator="")), "BYOK-GENERATOR-MISSING", "info", True,
     "empty generator"),
    ("ct-padded.byok", text(doc(ct=b64url(RSA_CT, pad=True))), "BYOK-CT-PADDING", "warning", True,
     "base64url with '=' padding (as Securosys Primus writes it)"),
    ("ct-std-alphabet.byok", text(doc(ct=STD_CT)), "BYOK-CT-STDB64", "warning", False,
     "standard base64 alphabet"),
    ("ct-whitespace.byok",
     text(doc(ct="\n".join(CT[i:i + 64] for i in range(0, len(CT), 64)))), "BYOK-CT-ENCODING",
     "error", False, "line breaks every 64 characters"),
    ("ct-bad-char.byok", text(doc(ct=CT[:100] + "." + CT[101:])), "BYOK-CT-ENCODING", "error",
     False, "a '.' inside the ciphertext"),
    ("ct-impossible-length.byok", text(doc(ct=CT[:-1])), "BYOK-CT-ENCODING", "error", False,
     "one character short (length % 4 == 1)"),
    ("ct-mid-padding.byok", text(doc(ct=CT[:200] + "==" + CT[200:])), "BYOK-CT-ENCODING",
     "error", False, "'==' in the middle"),
    ("ct-trailing-bits.byok", text(doc(ct=last_char_with_trailing_bits(CT))), "BYOK-CT-ENCODING",
     "error", False, "non-zero unused bits in the last character"),
    ("ct-empty.byok", text(doc(ct="")), "BYOK-CT-SHORT", "error", False, "empty ciphertext"),
    ("ct-short.byok", text(doc(ct=b64url(random_bytes(100)))), "BYOK-CT-SHORT", "error", True,
     "100-byte ciphertext"),
    ("ct-odd-length.byok", text(doc(ct=b64url(random_bytes(1483)))), "BYOK-KWP-LENGTH", "error",
     True, "1,483 bytes: no split leaves a KWP part that is a multiple of 8"),
    ("ct-no-plausible-split.byok", text(doc(ct=b64url(random_bytes(856)))), "BYOK-RSA-LENGTH",
     "warning", True, "856 bytes: no KEK size leaves the KWP part of a supported key"),
]


def main():
    manifest = []
    for name, contents, code, severity, reader_accepts, defect in CASES:
        path = os.path.join(HERE, name)
        if name == "not-utf8.byok":
            data = GOOD.replace(GENERATOR, GENERATOR + "\x00MARK").encode()
            data = data.replace(b"\x00MARK", b"\xff")
        else:
            data = contents.encode("utf-8")
        with open(path, "wb") as f:
            f.write(data)
        manifest.append({"file": name, "code": code, "severity": severity,
                         "reader_accepts": reader_accepts, "defect": defect})
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"wrote {len(CASES)} files and manifest.json to {HERE}")


if __name__ == "__main__":
    main()
