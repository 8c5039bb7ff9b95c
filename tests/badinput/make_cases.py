#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes tests/badinput/cases.json and tests/badinput/inputs/*: the bad-input corpus (issue 7).
# Each case is one malformed input to the keyport CLI or to the vault's REST API, with the error
# it must produce (exit code, or HTTP status + Key Vault error code). The checked-in files are the
# corpus; this script is how they were made (run it again after editing, then review the diff).
#
# CLI placeholders, filled in by tests/badinput/badinput_test.cpp:
#   {in} this case's input file   {out} an output path that must still not exist afterwards
#   {kek} a valid KEK (SPKI PEM)  {kid} the vault KEK's kid   {byok} a valid .byok for that KEK
#   {vault} --url URL --token-file F --ca-file F of the running vault server
#   {policy} a valid release policy  {authority} a trusted-authorities file  {work} the run folder
import base64, json, os, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = os.path.join(HERE, "inputs")
FUZZ = os.path.join(HERE, "..", "fuzz")
cases = []

def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def put(name, data):
    path = os.path.join(INPUTS, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return name

def cli(cid, args, exit_code, text=None, input_name=None, data=None, note="", known_issue=""):
    c = {"id": cid, "kind": "cli", "args": args, "exit": exit_code}
    if known_issue: c["known_issue"] = known_issue
    if data is not None:
        c["input"] = put(input_name or cid, data)
    elif input_name:
        c["input"] = input_name
    if text: c["stderr_contains"] = text
    if note: c["note"] = note
    cases.append(c)

def rest(cid, method, path, status, code, body=None, ctype="application/json", body_b64=None, code_override=None,
         repeat=None, auth="admin", note="", known_issue="", token=None):
    c = {"id": cid, "kind": "rest", "method": method, "path": path, "status": status, "code": code_override or code,
         "content_type": ctype, "auth": auth}
    if token is not None: c["token"] = token
    if known_issue: c["known_issue"] = known_issue
    if body is not None: c["body"] = body if isinstance(body, str) else json.dumps(body)
    if body_b64 is not None: c["body_b64"] = body_b64
    if repeat is not None: c["body_repeat"] = repeat
    if note: c["note"] = note
    cases.append(c)

shutil.rmtree(INPUTS, ignore_errors=True)
os.makedirs(INPUTS)

KID = "https://contoso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef"
good_byok = {"schema_version": "1.0.0",
             "header": {"kid": KID, "alg": "dir", "enc": "CKM_RSA_AES_KEY_WRAP"},
             "ciphertext": b64u(os.urandom(256 + 40)), "generator": "badinput corpus"}
def byok_variant(**changes):
    d = json.loads(json.dumps(good_byok))
    for k, v in changes.items():
        if k.startswith("h_"):
            if v is None: d["header"].pop(k[2:], None)
            else: d["header"][k[2:]] = v
        elif v is None: d.pop(k, None)
        else: d[k] = v
    return json.dumps(d)

# ---- .byok files: byok inspect (exit 3 on errors) -------------------------------------------------
byoks = {
    "empty": "", "not-json": "hello", "top-array": "[]", "top-string": '"x"', "null": "null",
    "truncated": byok_variant()[:-10],
    "schema-2": byok_variant(schema_version="2.0.0"),
    "schema-number": byok_variant(schema_version=1),
    "no-header": byok_variant(header=None),
    "header-array": byok_variant(header=[]),
    "kid-unversioned": byok_variant(h_kid="https://contoso.vault.azure.net/keys/KEK"),
    "kid-http": byok_variant(h_kid=KID.replace("https", "http")),
    "kid-traversal": byok_variant(h_kid="https://contoso.vault.azure.net/keys/../../etc/passwd/0123456789abcdef0123456789abcdef"),
    "kid-unicode-host": byok_variant(h_kid="https://cont\u043eso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef"),
    "kid-number": byok_variant(h_kid=5),
    "alg-rsa-oaep": byok_variant(h_alg="RSA-OAEP"),
    "enc-a256kw": byok_variant(h_enc="A256KW"),
    "enc-lowercase": byok_variant(h_enc="ckm_rsa_aes_key_wrap"),
    "ciphertext-number": byok_variant(ciphertext=12),
    "ciphertext-empty": byok_variant(ciphertext=""),
    "ciphertext-std-alphabet": byok_variant(ciphertext=base64.b64encode(os.urandom(296)).decode()),
    "ciphertext-short": byok_variant(ciphertext=b64u(os.urandom(100))),
    # 256 + 40 bytes under a Key Vault kid: the KWP part can only be an AES-256 key (BYOK-KWP-TARGET).
    "key-vault-aes-length": byok_variant(ciphertext=b64u(os.urandom(296))),
    "ciphertext-bad-char": byok_variant(ciphertext="AAAA*AAA"),
    "unknown-member": byok_variant(extra=1),
    "bom": "\ufeff" + byok_variant(),
    "nul-byte": byok_variant()[:20] + "\0" + byok_variant()[20:],
    "rtl-override-kid": byok_variant(h_kid="https://contoso.vault.azure.net/keys/KE\u202eK/0123456789abcdef0123456789abcdef"),
    "deep": '{"schema_version":"1.0.0","header":' + '{"a":' * 300 + "1" + "}" * 300 + "}",
}
dup = byok_variant().replace('"schema_version": "1.0.0"', '"schema_version": "1.0.0", "schema_version": "1.0.0"')
byoks["duplicate-member"] = dup
byoks["invalid-utf8"] = None
for name, text in byoks.items():
    data = text if text is not None else b'{"schema_version":"1.0.0","generator":"\xff\xfe"}'
    cli("byok-inspect-" + name, ["byok", "inspect", "--strict", "{in}"], 3, data=data, input_name="byok-" + name + ".byok")

# ---- the same files offered to the vault: vault import (the vault refuses with BadParameter) ----
for name in ["empty", "not-json", "truncated", "schema-2", "kid-traversal", "alg-rsa-oaep",
             "ciphertext-short", "duplicate-member", "bom", "invalid-utf8"]:
    cli("vault-import-" + name, ["vault", "import", "{vault}", "--name", "imported", "--byok", "{in}"], 3,
        input_name="byok-" + name + ".byok")

# ---- KEK files: byok export --kek ------------------------------------------------------------
for f in sorted(os.listdir(os.path.join(FUZZ, "kek_corpus"))):
    if "refused" not in f and f != "empty-refused":
        continue
    data = open(os.path.join(FUZZ, "kek_corpus", f), "rb").read()
    # An EC, AES or 1024-bit KEK is well formed but unusable for Azure: 8 (unsupported by target).
    code = 8 if any(k in f for k in ("ec-p256", "jwk-oct", "rsa1024")) else 3
    cli("export-kek-" + f.split(".")[0], ["byok", "export", "--token", "onprem", "--key", "app-ec", "--kek", "{in}",
        "--kid", KID, "-o", "{out}"], code, data=data, input_name="kek-" + f)
cli("export-kek-missing-file", ["byok", "export", "--token", "onprem", "--key", "app-ec", "--kek", "{work}/no-such-kek.pem",
    "--kid", KID, "-o", "{out}"], 5)
cli("export-kek-is-folder", ["byok", "export", "--token", "onprem", "--key", "app-ec", "--kek", "{work}",
    "--kid", KID, "-o", "{out}"], 3)

# ---- kids, targets, enc values: byok export -----------------------------------------------------
bad_kids = {
    "unversioned": "https://contoso.vault.azure.net/keys/KEK",
    "http": KID.replace("https", "http"),
    "query": KID + "?x=1",
    "empty": "",
    "traversal": "https://contoso.vault.azure.net/keys/../KEK/0123456789abcdef0123456789abcdef",
    "spaces": "https://contoso.vault.azure.net/keys/K E K/0123456789abcdef0123456789abcdef",
    "unicode": "https://contoso.vault.azure.net/keys/K\u00e9K/0123456789abcdef0123456789abcdef",
    "unknown-host": "https://example.com/keys/KEK/0123456789abcdef0123456789abcdef",
    "short-version": "https://contoso.vault.azure.net/keys/KEK/0123",
}
for n, kid in bad_kids.items():
    cli("export-kid-" + n, ["byok", "export", "--token", "onprem", "--key", "app-ec", "--kek", "{kek}",
        "--kid", kid, "-o", "{out}"], 3)
for n, enc in {"unknown": "CKM_AES_KEY_WRAP", "lowercase": "ckm_rsa_aes_key_wrap", "empty": ""}.items():
    cli("export-enc-" + n, ["byok", "export", "--token", "onprem", "--key", "app-ec", "--kek", "{kek}",
        "--kid", KID, "--enc", enc, "-o", "{out}"], 3)

# ---- PKCS#11 URIs and token/key names -------------------------------------------------------
bad_uris = {
    "unknown-attribute": "pkcs11:token=onprem;flavour=x",
    "bad-percent": "pkcs11:token=on%zzprem",
    "truncated-percent": "pkcs11:token=onprem%4",
    "duplicate-attribute": "pkcs11:token=onprem;token=onprem",
    "nul-escape": "pkcs11:token=onp%00rem",
    "pin-value": "pkcs11:token=onprem?pin-value=2222&pin-value=1",
    "bad-type": "pkcs11:token=onprem;type=bogus",
    "bad-id": "pkcs11:token=onprem;id=%zz",
}
for n, uri in bad_uris.items():
    cli("export-uri-" + n, ["byok", "export", "--token", uri, "--key", "app-ec", "--kek", "{kek}",
        "--kid", KID, "-o", "{out}"], 3)
cli("export-token-unknown", ["byok", "export", "--token", "nosuch", "--key", "app-ec", "--kek", "{kek}",
    "--kid", KID, "-o", "{out}"], 5)
cli("export-key-unknown", ["byok", "export", "--token", "onprem", "--key", "nosuch", "--kek", "{kek}",
    "--kid", KID, "-o", "{out}"], 5)
cli("export-key-traversal-label", ["byok", "export", "--token", "onprem", "--key", "../../etc/passwd", "--kek", "{kek}",
    "--kid", KID, "-o", "{out}"], 5)
cli("export-key-rtl-label", ["byok", "export", "--token", "onprem", "--key", "app\u202e-ec", "--kek", "{kek}",
    "--kid", KID, "-o", "{out}"], 5)
cli("export-output-exists", ["byok", "export", "--token", "onprem", "--key", "app-ec", "--kek", "{kek}",
    "--kid", KID, "-o", "{work}/existing.byok"], 6, note="a file that exists is never overwritten without --force")
cli("export-output-folder-missing", ["byok", "export", "--token", "onprem", "--key", "app-ec", "--kek", "{kek}",
    "--kid", KID, "-o", "{work}/no/such/folder/x.byok"], 5)

# ---- key generate --------------------------------------------------------------------------------
for n, t in {"rsa-1024": "rsa-1024", "unknown": "dsa-2048", "empty": "", "underscore": "rsa_2048", "unicode": "ec-p\u0662\u0665\u0666"}.items():
    cli("keygen-type-" + n, ["key", "generate", "--token", "onprem", "--type", t, "--label", "new"], 3)
for n, i in {"odd-hex": "abc", "not-hex": "zz", "space": "00 11"}.items():
    cli("keygen-id-" + n, ["key", "generate", "--token", "onprem", "--type", "ec-p256", "--label", "new", "--id", i], 3)
cli("keygen-label-exists", ["key", "generate", "--token", "onprem", "--type", "ec-p256", "--label", "app-ec"], 6)

# ---- PIN sources -------------------------------------------------------------------------------
for n, src in {"scheme": "cmd:cat /etc/passwd", "env-empty-name": "env:", "env-unset": "env:KEYPORT_BADINPUT_UNSET",
               "file-missing": "file:{work}/no-such-pin", "pipe": "|cat pin"}.items():
    # A pin-source that is not env: or file: is a file path (RFC 7512); unset or missing: 5.
    code = 3 if n == "pipe" else 5
    cli("pin-source-" + n, ["key", "list", "--token", "onprem", "--pin-source", src], code)
cli("pin-wrong", ["key", "list", "--token", "onprem", "--pin-source", "file:{in}"], 7, data="0000\n", input_name="pin-wrong.txt")
cli("pin-empty-file", ["key", "list", "--token", "onprem", "--pin-source", "file:{in}"], 3, data="", input_name="pin-empty.txt")

# ---- usage errors ---------------------------------------------------------------------------
cli("usage-unknown-command", ["frobnicate"], 2)
cli("usage-unknown-option", ["key", "list", "--frobnicate"], 2)
cli("usage-missing-required", ["byok", "inspect"], 2)
cli("usage-no-key-choice", ["byok", "export", "--token", "onprem"], 3)
cli("usage-option-needs-value", ["byok", "inspect", "--kek"], 2)

# ---- release policies: policy lint ---------------------------------------------------------------
for f in sorted(os.listdir(os.path.join(FUZZ, "policy_corpus"))):
    if not f.startswith("refused-"):
        continue
    data = open(os.path.join(FUZZ, "policy_corpus", f), "rb").read()
    cli("policy-lint-" + f.split(".")[0], ["policy", "lint", "{in}"], 3, data=data, input_name="policy-" + f)
cli("policy-lint-bom", ["policy", "lint", "{in}"], 3, data="\ufeff{}", input_name="policy-bom.json")
cli("policy-lint-huge-number", ["policy", "lint", "{in}"], 3,
    data='{"version":"1.0.0","anyOf":[{"authority":"https://a","allOf":[{"claim":"x","greater":1e999}]}]}',
    input_name="policy-huge-number.json")

# ---- attestation tokens: policy check (9: denied or invalid token) --------------------------------
for f in sorted(os.listdir(os.path.join(FUZZ, "attestation_corpus"))):
    if not (f.endswith("refused.jwt") or f in ("expired.jwt", "not-yet-valid.jwt", "foreign-iss.jwt", "no-exp.jwt", "no-runtime-keys.jwt")):
        continue
    data = open(os.path.join(FUZZ, "attestation_corpus", f), "rb").read()
    cli("policy-check-" + f.split(".")[0], ["policy", "check", "--policy", "{policy}", "--token", "{in}",
        "--authority-jwks", "{authority}", "--now", "1800000000"], 9, data=data, input_name="token-" + f)

# ---- envelope files: envelope info -----------------------------------------------------------------
for f in sorted(os.listdir(os.path.join(FUZZ, "envelope_header_corpus"))):
    if "refused" not in f:
        continue
    data = open(os.path.join(FUZZ, "envelope_header_corpus", f), "rb").read()
    cli("envelope-info-" + f.split(".")[0], ["envelope", "info", "{in}"], 3, data=data, input_name="envelope-" + f)

# ---- vault CLI against the server ----------------------------------------------------------------
for n, name in {"slash": "a/b", "dot-dot": "..", "too-long": "k" * 128, "unicode": "cl\u00e9", "space": "a b",
                "sql": "x';DROP TABLE keys;--", "empty": ""}.items():
    cli("vault-create-name-" + n, ["vault", "create-key", "{vault}", "--name", name, "--kty", "EC-HSM"], 3)
cli("vault-create-bad-size", ["vault", "create-key", "{vault}", "--name", "newkey", "--kty", "RSA-HSM", "--size", "1000"], 3)
cli("vault-create-bad-curve", ["vault", "create-key", "{vault}", "--name", "newkey", "--kty", "EC-HSM", "--curve", "P-999"], 3)
cli("vault-create-exists", ["vault", "create-key", "{vault}", "--name", "KEK", "--kek"], 0,
    note="Key Vault semantics: create on an existing name adds a version; kept out (exit 0 changes state)")
cases.pop()  # (documented above: not a bad input)
cli("vault-sign-bad-alg", ["vault", "sign", "{vault}", "--name", "signer", "--alg", "HS256", "--digest", "00" * 32], 3)
cli("vault-sign-bad-digest", ["vault", "sign", "{vault}", "--name", "signer", "--alg", "ES256", "--digest", "zz"], 3)
cli("vault-sign-short-digest", ["vault", "sign", "{vault}", "--name", "signer", "--alg", "ES256", "--digest", "00"], 3)
cli("vault-sign-missing-key", ["vault", "sign", "{vault}", "--name", "nosuch", "--alg", "ES256", "--digest", "00" * 32], 5)
cli("vault-get-missing", ["vault", "get", "{vault}", "--name", "nosuch"], 5)
cli("vault-import-jwk-garbage", ["vault", "import", "{vault}", "--name", "imported", "--jwk", "{in}"], 3,
    data='{"kty":"RSA","n":"AQAB"}', input_name="jwk-garbage.json")
cli("vault-bad-token", ["vault", "list", "--url", "{url}", "--token-file", "{in}", "--ca-file", "{ca}"], 7,
    data="not-a-valid-token-at-all-xxxxxxxx\n", input_name="token-wrong.txt")

# ---- byok wrap (key files) ---------------------------------------------------------------------
for n, data in {"empty": b"", "garbage": b"\x30\x82\xff\xff", "pem-truncated": b"-----BEGIN PRIVATE KEY-----\nMIIB\n",
                "aes-wrong-length": b"00112233", "public-key": open(os.path.join(FUZZ, "kek_corpus", "rsa2048-spki.pem"), "rb").read()}.items():
    cli("byok-wrap-" + n, ["byok", "wrap", "--key", "{in}", "--kek", "{kek}", "--kid", KID, "-o", "{out}"], 3,
        data=data, input_name="keyfile-" + n)

# ============================== REST ===============================================================
A = "?api-version=7.5"
sign_ok = {"alg": "ES256", "value": b64u(b"\1" * 32)}
for n, ct in {"text-plain": "text/plain", "none": "", "xml": "application/xml", "form": "application/x-www-form-urlencoded",
              "json-typo": "application/jsn", "multipart": "multipart/form-data; boundary=x"}.items():
    rest("ctype-" + n, "POST", "/keys/signer/sign" + A, 400, "BadParameter", body=sign_ok, ctype=ct)
rest("ctype-json-charset-ok-but-bad-body", "POST", "/keys/signer/sign" + A, 400, "BadParameter", body="{", ctype="application/json; charset=utf-8")
bodies = {
    "empty": "", "whitespace": "   ", "truncated": '{"alg":"ES256","val', "array": "[]", "string": '"x"', "number": "5",
    "null": "null", "duplicate": '{"alg":"ES256","alg":"ES256","value":"AA"}', "trailing-garbage": '{"alg":"ES256"} x',
    "comment": '{/*c*/"alg":"ES256"}', "single-quotes": "{'alg':'ES256'}", "nan": '{"alg":"ES256","value":NaN}',
    "deep": '{"a":' * 200 + "1" + "}" * 200, "bom": "\ufeff{}",
    "alg-number": '{"alg":256,"value":"AA"}', "alg-unknown": '{"alg":"XS256","value":"AA"}',
    "alg-none": '{"alg":"none","value":"AA"}', "alg-hmac": '{"alg":"HS256","value":"AA"}',
    "value-missing": '{"alg":"ES256"}', "value-number": '{"alg":"ES256","value":1}',
    "value-padded": '{"alg":"ES256","value":"AQ=="}', "value-std-alphabet": '{"alg":"ES256","value":"+/+/"}',
    "value-short-digest": '{"alg":"ES256","value":"AQ"}', "value-nul": '{"alg":"ES256","value":"A\\u0000A"}',
    "alg-lone-surrogate": '{"alg":"ES\\ud800256","value":"AA"}',
    "alg-wrong-case": '{"alg":"es256","value":"' + b64u(b"\1" * 32) + '"}',
    "alg-for-rsa": '{"alg":"RS256","value":"' + b64u(b"\1" * 32) + '"}',
}
for n, body in bodies.items():
    rest("sign-body-" + n, "POST", "/keys/signer/sign" + A, 400, "BadParameter", body=body)
rest("sign-body-invalid-utf8", "POST", "/keys/signer/sign" + A, 400, "BadParameter",
     body_b64=base64.b64encode(b'{"alg":"ES256","value":"\xff\xfe"}').decode())
rest("sign-body-oversize", "POST", "/keys/signer/sign" + A, 413, "BadParameter",
     repeat={"prefix": '{"alg":"ES256","value":"', "fill": "A", "count": 1100000, "suffix": '"}'}, code_override="RequestEntityTooLarge",
     note="beyond --max-body (1 MiB): 413 before the body is parsed")
rest("sign-body-big-but-allowed", "POST", "/keys/signer/sign" + A, 400, "BadParameter",
     repeat={"prefix": '{"alg":"ES256","value":"', "fill": "A", "count": 900000, "suffix": '"}'})
# create
create_bad = {
    "kty-missing": {"key_size": 2048}, "kty-unknown": {"kty": "DSA"}, "kty-number": {"kty": 3},
    "rsa-size-small": {"kty": "RSA-HSM", "key_size": 1024}, "rsa-size-odd": {"kty": "RSA-HSM", "key_size": 2049},
    "rsa-size-string": {"kty": "RSA-HSM", "key_size": "2048"}, "rsa-size-negative": {"kty": "RSA-HSM", "key_size": -2048},
    "rsa-size-huge": {"kty": "RSA-HSM", "key_size": 18446744073709551616},
    "rsa-size-float": {"kty": "RSA-HSM", "key_size": 2048.5},
    "ec-curve-unknown": {"kty": "EC-HSM", "crv": "P-999"}, "ec-curve-lower": {"kty": "EC-HSM", "crv": "p-256"},
    "key-ops-unknown": {"kty": "EC-HSM", "crv": "P-256", "key_ops": ["fly"]},
    "key-ops-string": {"kty": "EC-HSM", "crv": "P-256", "key_ops": "sign"},
    "attributes-array": {"kty": "EC-HSM", "crv": "P-256", "attributes": []},
    "enabled-string": {"kty": "EC-HSM", "crv": "P-256", "attributes": {"enabled": "yes"}},
    "exp-string": {"kty": "EC-HSM", "crv": "P-256", "attributes": {"exp": "tomorrow"}},
    "exp-negative": {"kty": "EC-HSM", "crv": "P-256", "attributes": {"exp": -1}},
    "nbf-past-year-9999": {"kty": "EC-HSM", "crv": "P-256", "attributes": {"nbf": 253402300800}},
    "exp-past-int64": {"kty": "EC-HSM", "crv": "P-256", "attributes": {"exp": 18446744073709551615}},
    "tags-nested": {"kty": "EC-HSM", "crv": "P-256", "tags": {"a": {"b": 1}}},
    "tags-too-many": {"kty": "EC-HSM", "crv": "P-256", "tags": {"t%d" % i: "v" for i in range(20)}},
    "tag-value-long": {"kty": "EC-HSM", "crv": "P-256", "tags": {"a": "v" * 300}},
    "exportable-without-policy": {"kty": "RSA-HSM", "key_size": 2048, "attributes": {"exportable": True}},
    "policy-garbage": {"kty": "RSA-HSM", "key_size": 2048, "attributes": {"exportable": True},
                       "release_policy": {"data": "!!!", "contentType": "application/json; charset=utf-8"}},
    "policy-not-a-policy": {"kty": "RSA-HSM", "key_size": 2048, "attributes": {"exportable": True},
                            "release_policy": {"data": b64u(b'{"version":"9"}')}},
}
for n, body in create_bad.items():
    rest("create-" + n, "POST", "/keys/newkey/create" + A, 400, "BadParameter", body=body)
# key names in paths
for n, name in {"dot": ".", "underscore": "a_b", "unicode": "cl%C3%A9", "long": "k" * 128, "percent-slash": "a%2Fb",
                "sql": "x'%3BDROP%20TABLE%20keys%3B--", "nul": "a%00b", "space": "a%20b"}.items():
    # %2F is decoded before routing: the name becomes more path segments, which match no route.
    st, code = (404, "NotFound") if n == "percent-slash" else (400, "BadParameter")
    rest("create-name-" + n, "POST", "/keys/" + name + "/create" + A, st, code, body={"kty": "EC-HSM", "crv": "P-256"})
rest("get-traversal", "GET", "/keys/..%2F..%2Fvault.db" + A, 404, "NotFound")
rest("get-missing", "GET", "/keys/nosuch" + A, 404, "KeyNotFound")
rest("get-bad-version", "GET", "/keys/signer/..%2F..%2Fx" + A, 404, "NotFound")
rest("get-unknown-version", "GET", "/keys/signer/00000000000000000000000000000000" + A, 404, "KeyNotFound")
# routing, api-version, auth
rest("api-version-missing", "GET", "/keys/signer", 400, "BadParameter")
rest("api-version-unknown", "GET", "/keys/signer?api-version=1.0", 400, "BadParameter")
rest("api-version-empty", "GET", "/keys/signer?api-version=", 400, "BadParameter")
rest("api-version-no-such-preview", "GET", "/keys/signer?api-version=7.1-preview", 400, "BadParameter")
# features newer than the requested api-version (rotation and release: 7.3-preview)
rest("api-version-rotate-7.2", "POST", "/keys/signer/rotate?api-version=7.2", 400, "BadParameter")
rest("api-version-release-7.2", "POST", "/keys/signer/release?api-version=7.2", 400, "BadParameter",
     body={"target": "x"})
rest("api-version-deletedkeys-2015", "GET", "/deletedkeys?api-version=2015-06-01", 400, "BadParameter")
rest("api-version-exportable-7.2", "POST", "/keys/newkey/create?api-version=7.2", 400, "BadParameter",
     body={"kty": "RSA-HSM", "attributes": {"exportable": True}})
# a NUL byte in a body: refused whole, not read up to the NUL
rest("body-nul-byte", "POST", "/keys/newkey/create" + A, 400, "BadParameter",
     body_b64=base64.b64encode(b'{"kty":"EC-HSM"}\x00{"kty":"RSA-HSM"}').decode())
rest("route-unknown", "GET", "/secrets/x" + A, 404, "NotFound")
rest("route-method", "DELETE", "/keys/signer/sign" + A, 405, "MethodNotAllowed")
rest("route-deep", "GET", "/keys/a/b/c/d/e" + A, 404, "NotFound")
rest("auth-missing", "GET", "/keys" + A, 401, "Unauthorized", auth="none")
rest("auth-wrong", "GET", "/keys" + A, 401, "Unauthorized", auth="wrong")
rest("auth-not-bearer", "GET", "/keys" + A, 401, "Unauthorized", auth="basic")
rest("list-maxresults-zero", "GET", "/keys" + A + "&maxresults=0", 400, "BadParameter")
rest("list-maxresults-text", "GET", "/keys" + A + "&maxresults=ten", 400, "BadParameter")
rest("list-skiptoken-garbage", "GET", "/keys" + A + "&$skiptoken=%%%", 400, "BadParameter")
# import
import_bad = {
    "no-key": {"hsm": True}, "key-string": {"key": "x"},
    "key-hsm-not-base64": {"key": {"kty": "RSA-HSM", "key_hsm": "***"}},
    "key-hsm-not-byok": {"key": {"kty": "RSA-HSM", "key_hsm": b64u(b"hello")}},
    "key-hsm-wrong-kid": {"key": {"kty": "RSA-HSM", "key_hsm": b64u(byok_variant().encode())}},
    "key-hsm-kty-mismatch": {"key": {"kty": "oct-HSM", "key_hsm": b64u(byok_variant().encode())}},
    "jwk-rsa-no-d": {"key": {"kty": "RSA", "n": b64u(b"\1" * 256), "e": "AQAB"}},
    "jwk-oct-short": {"key": {"kty": "oct", "k": b64u(b"\1" * 5)}},
    "jwk-ec-off-curve": {"key": {"kty": "EC", "crv": "P-256", "x": b64u(b"\1" * 32), "y": b64u(b"\2" * 32), "d": b64u(b"\3" * 32)}},
}
for n, body in import_bad.items():
    rest("import-" + n, "PUT", "/keys/imported" + A, 400, "BadParameter", body=body)
# update
for n, body in {"enabled-string": {"attributes": {"enabled": "no"}}, "ops-unknown": {"key_ops": ["x"]},
                "tags-array": {"tags": []}}.items():
    rest("update-" + n, "PATCH", "/keys/signer" + A, 400, "BadParameter", body=body)
# crypto on the wrong key type or with bad parameters
rest("encrypt-ec-key", "POST", "/keys/signer/encrypt" + A, 403, "Forbidden", body={"alg": "RSA-OAEP", "value": "AA"},
     note="an operation outside the key's key_ops: 403 KeyOperationForbidden")
rest("decrypt-alg-unknown", "POST", "/keys/rsa/decrypt" + A, 400, "BadParameter", body={"alg": "ROT13", "value": "AA"})
rest("decrypt-garbage", "POST", "/keys/rsa/decrypt" + A, 400, "BadParameter", body={"alg": "RSA-OAEP", "value": b64u(b"\1" * 256)})
rest("decrypt-wrong-length", "POST", "/keys/rsa/decrypt" + A, 400, "BadParameter", body={"alg": "RSA-OAEP", "value": b64u(b"\1" * 10)})
rest("wrapkey-no-value", "POST", "/keys/rsa/wrapkey" + A, 400, "BadParameter", body={"alg": "RSA-OAEP"})
rest("encrypt-too-long", "POST", "/keys/rsa/encrypt" + A, 400, "BadParameter", body={"alg": "RSA-OAEP", "value": b64u(b"\1" * 300)})
# Release: a malformed request is 400; anything wrong with the token or the key is one uniform 403.
rest("release-target-garbage", "POST", "/keys/signer/release" + A, 403, "Forbidden", body={"target": "x.y.z"})
rest("release-no-target", "POST", "/keys/signer/release" + A, 400, "BadParameter", body={"nonce": "n"})
rest("release-target-number", "POST", "/keys/signer/release" + A, 400, "BadParameter", body={"target": 5})
rest("release-target-empty", "POST", "/keys/signer/release" + A, 400, "BadParameter", body={"target": ""})
rest("release-enc-unknown", "POST", "/keys/signer/release" + A, 400, "BadParameter", body={"target": "x.y.z", "enc": "A256KW"})
rest("release-nonce-object", "POST", "/keys/signer/release" + A, 400, "BadParameter", body={"target": "x.y.z", "nonce": {}})
rest("release-missing-key", "POST", "/keys/nosuch/release" + A, 404, "KeyNotFound", body={"target": "x.y.z"})

# Bearer tokens shaped as managed-identity JWTs the vault did not sign (vault/identity.h).
def jwt(header, claims, sig=b"\0" * 32):
    return b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode()) + "." + b64u(sig)
MI_CLAIMS = {"aud": "https://127.0.0.1", "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
             "iat": 1, "nbf": 1, "exp": 4102444800, "tid": "00000000-0000-0000-0000-000000000000",
             "oid": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "appid": "11111111-1111-4111-8111-111111111111"}
rest("auth-jwt-alg-none", "GET", "/keys" + A, 401, "Unauthorized", auth="token",
     token=jwt({"alg": "none", "typ": "JWT"}, MI_CLAIMS, b""))
rest("auth-jwt-forged", "GET", "/keys" + A, 401, "Unauthorized", auth="token",
     token=jwt({"alg": "HS256", "typ": "JWT", "kid": "x"}, MI_CLAIMS))
rest("auth-jwt-rs256", "GET", "/keys" + A, 401, "Unauthorized", auth="token",
     token=jwt({"alg": "RS256", "typ": "JWT"}, MI_CLAIMS, b"\1" * 256))
rest("auth-jwt-long", "GET", "/keys" + A, 401, "Unauthorized", auth="token",
     token=jwt({"alg": "HS256"}, dict(MI_CLAIMS, pad="x" * 5000)))

# The managed-identity endpoint (`vault serve --identity-listen`): OAuth errors, never a token.
def identity(cid, method, path, status, error, headers=None, body=None):
    c = {"id": cid, "kind": "identity", "method": method, "path": path, "status": status, "error": error,
         "headers": headers or {}}
    if body is not None: c["body"] = body
    cases.append(c)
TOKEN = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
identity("identity-imds-no-metadata", "GET", TOKEN, 400, "bad_request_102")
identity("identity-imds-unknown-client", "GET", TOKEN + "&client_id=99999999-9999-4999-8999-999999999999", 400,
         "invalid_request", {"Metadata": "true"})
identity("identity-imds-no-resource", "GET", "/metadata/identity/oauth2/token?api-version=2018-02-01", 400,
         "invalid_request", {"Metadata": "true"})
identity("identity-imds-two-selectors", "GET", TOKEN + "&client_id=a&object_id=b", 400, "invalid_request",
         {"Metadata": "true"})
identity("identity-imds-resource-control", "GET", TOKEN + "%1B%5B2J", 400, "invalid_resource", {"Metadata": "true"})
identity("identity-imds-post", "POST", TOKEN, 405, "invalid_request", {"Metadata": "true"}, "")
identity("identity-appservice-no-header", "GET", "/msi/token?api-version=2019-08-01&resource=x", 401,
         "unauthorized_client")
identity("identity-appservice-wrong-header", "GET", "/msi/token?api-version=2019-08-01&resource=x", 401,
         "unauthorized_client", {"X-IDENTITY-HEADER": "guess"})
identity("identity-shell-bad-form", "POST", "/msi/token", 400, "invalid_request", {"Metadata": "true"},
         "resource=%zz")
identity("identity-unknown-path", "GET", "/metadata/instance?api-version=2021-02-01", 404, "invalid_request",
         {"Metadata": "true"})

with open(os.path.join(HERE, "cases.json"), "w") as f:
    json.dump({"cases": cases}, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(len(cases), "cases:", sum(c["kind"] == "cli" for c in cases), "cli,", sum(c["kind"] == "rest" for c in cases), "rest,",
      sum(c["kind"] == "identity" for c in cases), "identity")
