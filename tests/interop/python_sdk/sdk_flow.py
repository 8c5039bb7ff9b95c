# SPDX-License-Identifier: Apache-2.0
"""The Azure SDK for Python (Debian 12's python3-azure) against `keyport vault serve`.

Run by run.sh, which starts the vault (base URL https://kpvault.localhost:PORT) with its
managed-identity endpoint. The SDK runs with its defaults: no api-version, no challenge override,
credentials from environment variables only. Every wrapped key the vault receives is made here
with python `cryptography`, and every answer that can be checked without the vault is.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from urllib.parse import urlparse

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.keys import (
    JsonWebKey,
    KeyClient,
    KeyReleasePolicy,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
)
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.keywrap import (
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from interop_lib import check, expect_http_error, need, resolve_to_loopback


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


URL = need("VAULT_URL")
WORK = need("WORK_DIR")
KEYPORT = need("KEYPORT_BIN")
DATA = need("VAULT_DATA")
HOST = urlparse(URL).hostname

# The vault's name resolves to this machine, as an /etc/hosts line would make it.
resolve_to_loopback(HOST)

IDENTITY = {}
with open(need("IDENTITY_ENV"), encoding="utf-8") as f:
    for line in f:
        name, _, value = line.strip().partition("=")
        if name:
            IDENTITY[name] = value
READER_CLIENT_ID = "22222222-2222-4222-8222-222222222222"
LEAVER_CLIENT_ID = "33333333-3333-4333-8333-333333333333"
PLATFORM_VARS = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET",
                 "AZURE_POD_IDENTITY_AUTHORITY_HOST")


def environment(*names):
    """Exactly these identity variables, as the hosting platform would set them."""
    for n in PLATFORM_VARS:
        os.environ.pop(n, None)
    for n in names:
        os.environ[n] = IDENTITY[n]


def keyport(*args):
    subprocess.run([KEYPORT, "-q", *args], check=True, stdout=subprocess.DEVNULL)


def byok_blob(kek_public, kek_id, private_key):
    """A .byok file made with python `cryptography` (RSA-OAEP-SHA1 + AES-KWP, as Azure specifies)."""
    pkcs8 = private_key.private_bytes(serialization.Encoding.DER,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    transfer = os.urandom(32)
    wrapped = kek_public.encrypt(transfer, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                                        algorithm=hashes.SHA1(), label=None))
    blob = wrapped + aes_key_wrap_with_padding(transfer, pkcs8)
    return json.dumps({"schema_version": "1.0.0",
                       "header": {"kid": kek_id, "alg": "dir", "enc": "CKM_RSA_AES_KEY_WRAP"},
                       "ciphertext": b64u(blob),
                       "generator": "python cryptography (keyport interop test)"}).encode()


def rsa_public(jwk):
    return rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"),
                                int.from_bytes(jwk.n, "big")).public_key()


def main():
    # 1. DefaultAzureCredential over the App Service endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER).
    environment("IDENTITY_ENDPOINT", "IDENTITY_HEADER")
    credential = DefaultAzureCredential()
    client = KeyClient(URL, credential)
    kek = client.create_rsa_key("py-kek", size=2048, hardware_protected=True,
                                key_operations=["import"])
    check(kek.key_type == "RSA-HSM" and kek.key_operations == ["import"],
          "create_rsa_key made an RSA-HSM KEK for import")
    check(kek.id.startswith(URL + "/keys/py-kek/"), f"the KEK's kid is under the vault URL ({kek.id})")

    # 2. BYOK import of a file keyport did not write.
    target = ec.generate_private_key(ec.SECP256R1())
    imported = client.import_key("py-ec", JsonWebKey(
        kty="EC-HSM", crv="P-256", key_ops=["sign", "verify"],
        t=byok_blob(rsa_public(kek.key), kek.id, target)))
    numbers = target.public_key().public_numbers()
    check(int.from_bytes(imported.key.x, "big") == numbers.x and
          int.from_bytes(imported.key.y, "big") == numbers.y,
          "import_key of a cryptography-made .byok gives the same EC public key")
    rsa_target = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_imported = client.import_key("py-rsa", JsonWebKey(
        kty="RSA-HSM", key_ops=["wrapKey", "unwrapKey", "sign", "verify"],
        t=byok_blob(rsa_public(kek.key), kek.id, rsa_target)))
    check(int.from_bytes(rsa_imported.key.n, "big") == rsa_target.public_key().public_numbers().n,
          "import_key of an RSA .byok gives the same modulus")

    # 3. get and list.
    got = client.get_key("py-ec")
    check(got.id == imported.id, "get_key returns the imported version")
    names = sorted(p.name for p in client.list_properties_of_keys())
    check(names == ["py-ec", "py-kek", "py-rsa"], f"list_properties_of_keys lists {names}")
    versions = list(client.list_properties_of_key_versions("py-ec"))
    check(len(versions) == 1, "one version of py-ec")

    # 4. sign in the vault, verify with cryptography and with the vault.
    digest = hashlib.sha256(b"signed by the simulated vault").digest()
    crypto = CryptographyClient(imported, credential)
    signed = crypto.sign(SignatureAlgorithm.es256, digest)
    check(len(signed.signature) == 64, "ES256 signatures are r||s of 64 bytes")
    r = int.from_bytes(signed.signature[:32], "big")
    s = int.from_bytes(signed.signature[32:], "big")
    target.public_key().verify(utils.encode_dss_signature(r, s), digest,
                               ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    check(True, "cryptography verifies the vault's ES256 signature")
    remote = CryptographyClient(imported.id, credential)  # a kid only: the vault verifies
    check(remote.verify(SignatureAlgorithm.es256, digest, signed.signature).is_valid,
          "the vault verifies its signature")
    bad = bytearray(signed.signature)
    bad[5] ^= 1
    check(not remote.verify(SignatureAlgorithm.es256, digest, bytes(bad)).is_valid,
          "the vault refuses a changed signature")

    # 5. wrap and unwrap: wrapped here with cryptography, unwrapped in the vault, and back.
    aes = os.urandom(32)
    wrapped_here = rsa_target.public_key().encrypt(
        aes, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    rsa_crypto = CryptographyClient(rsa_imported.id, credential)
    check(rsa_crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped_here).key == aes,
          "the vault unwraps what cryptography wrapped (RSA-OAEP-256)")
    wrapped_there = rsa_crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, aes).encrypted_key
    check(rsa_target.decrypt(wrapped_there, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                         algorithm=hashes.SHA256(), label=None)) == aes,
          "cryptography unwraps what the vault wrapped")

    # 6. rotation policy and rotate.
    policy = client.update_key_rotation_policy("py-ec", KeyRotationPolicy(
        lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate,
                                                    time_after_create="P30D")],
        expires_in="P90D"))
    check(policy.expires_in == "P90D", "update_key_rotation_policy stores expires_in")
    read = client.get_key_rotation_policy("py-ec")
    check(read.lifetime_actions[0].time_after_create == "P30D",
          "get_key_rotation_policy reads the rotate action back")
    ec_key = client.create_ec_key("py-rotated", curve="P-256", hardware_protected=True)
    rotated = client.rotate_key("py-rotated")
    check(rotated.properties.version != ec_key.properties.version, "rotate_key makes a new version")
    check(len(list(client.list_properties_of_key_versions("py-rotated"))) == 2,
          "the rotated key has two versions")

    # 7. release to the simulated attestation.
    authority = json.load(open(os.path.join(need("AUTHORITY_DIR"), "authority.json")))["url"]
    release_policy = {"version": "1.0.0", "anyOf": [{"authority": authority, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": False}]}]}
    exportable = client.create_rsa_key("py-skr", size=2048, hardware_protected=True,
                                       exportable=True,
                                       release_policy=KeyReleasePolicy(
                                           json.dumps(release_policy).encode()))
    check(exportable.properties.exportable, "create_rsa_key made an exportable key")
    token_file = os.path.join(WORK, "attestation.jwt")
    keyport("attest", "token", "--authority", need("AUTHORITY_DIR"), "--runtime-key",
            need("RUNTIME_PUB"), "--type", "sevsnpvm", "-o", token_file, "--force")
    released = client.release_key("py-skr", open(token_file).read().strip(), nonce="py-nonce")
    header64, payload64, _ = released.value.split(".")
    payload = json.loads(unb64u(payload64))
    check(payload["request"]["nonce"] == "py-nonce", "the release echoes the nonce")
    key_hsm = json.loads(unb64u(payload["response"]["key"]["key"]["key_hsm"]))
    blob = unb64u(key_hsm["ciphertext"])
    runtime = serialization.load_pem_private_key(open(need("RUNTIME_KEY"), "rb").read(), None)
    size = runtime.key_size // 8
    transfer = runtime.decrypt(blob[:size], padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                                         algorithm=hashes.SHA1(), label=None))
    pkcs8 = aes_key_unwrap_with_padding(transfer, blob[size:])
    released_key = serialization.load_der_private_key(pkcs8, None)
    check(released_key.public_key().public_numbers().n == int.from_bytes(exportable.key.n, "big"),
          "cryptography unwraps the released key with the enclave's key: same modulus")

    # 8. Other hosting platforms: IMDS (AZURE_POD_IDENTITY_AUTHORITY_HOST), Cloud Shell
    # (MSI_ENDPOINT), Azure ML (MSI_ENDPOINT + MSI_SECRET).
    for names, platform in ((("AZURE_POD_IDENTITY_AUTHORITY_HOST",), "IMDS"),
                            (("MSI_ENDPOINT",), "Cloud Shell"),
                            (("MSI_ENDPOINT", "MSI_SECRET"), "Azure ML")):
        environment(*names)
        other = KeyClient(URL, ManagedIdentityCredential())
        check(other.get_key("py-ec").id == imported.id, f"ManagedIdentityCredential via {platform}")

    # 9. Refusals.
    environment("IDENTITY_ENDPOINT", "IDENTITY_HEADER")
    # BackupKey / RestoreKey: backup, delete, purge, restore the same key (versions, attributes,
    # tags); a restore over an existing name (409) and of a tampered blob (400) are refused.
    first = client.create_ec_key("py-backup", curve="P-256", hardware_protected=True,
                                 tags={"team": "pay"})
    second = client.create_ec_key("py-backup", curve="P-256", hardware_protected=True,
                                  tags={"team": "pay", "v": "2"})
    client.update_key_properties("py-backup", first.properties.version, enabled=False)

    def version_rows(name):
        return sorted((p.version, p.enabled, p.created_on, p.expires_on, p.tags or {})
                      for p in client.list_properties_of_key_versions(name))

    before = version_rows("py-backup")
    blob = client.backup_key("py-backup")
    check(isinstance(blob, bytes) and len(blob) > 100, f"backup_key returned {len(blob)} bytes")
    expect_http_error(lambda: client.restore_key_backup(blob), 409,
                      "restore_key_backup over the existing name")
    client.begin_delete_key("py-backup").wait()
    client.purge_deleted_key("py-backup")
    restored = client.restore_key_backup(blob)
    check(restored.id == second.id, f"the restored key has the same kid ({restored.id})")
    check(restored.properties.tags == {"team": "pay", "v": "2"}, "the restored key has its tags")
    check(version_rows("py-backup") == before, "every version with its attributes is back")
    digest = hashlib.sha256(b"restored").digest()
    sig = CryptographyClient(restored, credential).sign(SignatureAlgorithm.es256, digest).signature
    nums = ec.EllipticCurvePublicNumbers(int.from_bytes(second.key.x, "big"),
                                         int.from_bytes(second.key.y, "big"), ec.SECP256R1())
    nums.public_key().verify(
        utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
        digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    check(True, "cryptography verifies a signature of the restored key with the old public key")
    tampered = bytearray(blob)
    tampered[len(tampered) // 2] ^= 0x01
    client.begin_delete_key("py-backup").wait()
    client.purge_deleted_key("py-backup")
    bad = expect_http_error(lambda: client.restore_key_backup(bytes(tampered)), 400,
                            "restore_key_backup of a tampered blob")
    check(bad.error.code == "BadParameter", f"the tampered blob's error code is {bad.error.code}")
    expect_http_error(lambda: client.get_key("py-backup"), 404,
                      "nothing was restored from the tampered blob")
    garbage = JsonWebKey(kty="EC-HSM", crv="P-256", t=b'{"schema_version":"1.0.0"}')
    expect_http_error(lambda: client.import_key("py-bad", garbage), 400, "a bad blob is refused")
    other_kek = client.create_rsa_key("py-kek2", size=2048, hardware_protected=True,
                                      key_operations=["import"])
    wrong = json.loads(byok_blob(rsa_public(other_kek.key), kek.id,
                                 ec.generate_private_key(ec.SECP256R1())))
    expect_http_error(lambda: client.import_key("py-wrong-kid", JsonWebKey(
        kty="EC-HSM", crv="P-256", t=json.dumps(wrong).encode())), 400,
        "a blob wrapped to another KEK than its kid names is refused")
    reader = KeyClient(URL, ManagedIdentityCredential(client_id=READER_CLIENT_ID))
    check(reader.get_key("py-ec").id == imported.id, "the reader identity may get")
    denied = expect_http_error(lambda: reader.create_ec_key("py-denied", curve="P-256"), 403,
                               "the reader identity may not create")
    check("reader" in denied.message, "the 403 names the identity")

    # An identity removed from the access file loses its tokens at once.
    leaver_credential = ManagedIdentityCredential(client_id=LEAVER_CLIENT_ID)
    leaver = KeyClient(URL, leaver_credential)
    check(leaver.get_key("py-ec").id == imported.id, "the leaver identity may get")
    access_path = os.path.join(DATA, "access.json")
    access = json.load(open(access_path))
    del access["identities"]["leaver"]
    with open(access_path + ".new", "w") as f:
        json.dump(access, f)
    os.replace(access_path + ".new", access_path)
    expect_http_error(lambda: leaver.get_key("py-ec"), 401,
                      "a removed identity's cached token is refused")

    # An expired token: fetched now, presented after the vault's clock moved past its exp.
    request = urllib.request.Request(
        IDENTITY["IDENTITY_ENDPOINT"] + "?api-version=2019-08-01&resource=" +
        URL.replace("kpvault.", "", 1),
        headers={"X-IDENTITY-HEADER": IDENTITY["IDENTITY_HEADER"]})
    issued = json.load(urllib.request.urlopen(request))
    check(issued["token_type"] == "Bearer" and issued["access_token"].count(".") == 2,
          "the App Service endpoint answers a JWT-shaped Bearer token")

    class Fixed:
        def get_token(self, *scopes, **kwargs):
            return AccessToken(issued["access_token"], int(issued["expires_on"]))

    keyport("vault", "clock", "--data", DATA, "--advance", "PT2H")
    stale = KeyClient(URL, Fixed())
    try:
        stale.get_key("py-ec")
        raise AssertionError("check failed: an expired token was accepted")
    except ClientAuthenticationError as e:
        check(e.status_code == 401 and "expired" in e.message,
              f"an expired token gets 401 ({e.message.splitlines()[0]})")
    keyport("vault", "clock", "--data", DATA, "--reset")
    print("sdk_flow: all checks passed", flush=True)


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, HttpResponseError) as e:
        print(f"sdk_flow: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
