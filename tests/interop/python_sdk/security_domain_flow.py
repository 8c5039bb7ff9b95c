# SPDX-License-Identifier: Apache-2.0
"""The Managed HSM security domain against keyport's simulated Managed HSM, driven by Microsoft's
own code: Debian 12's azure-cli 2.45 (python3-azure-cli), whose `az keyvault security-domain`
commands are the functions of azure/cli/command_modules/keyvault/custom.py called here
(security_domain_download, security_domain_init_recovery, security_domain_restore_blob,
security_domain_upload), with its vendored data-plane client (azure_keyvault_t1 v7_2
KeyVaultClient, msrest) making the REST calls and its security_domain package doing the
cryptography (Shamir shares over GF(257), SP 800-108, A256CBC-HS512 JWEs). keyport wrote none of it.

Debian's `az` itself cannot run these commands: the vendored client's package imports the legacy
azure-keyvault 1.x, which Debian does not ship (docs/vault.md). The v7_2 client and the models are
therefore loaded from their files without that package's __init__; `cmd.get_models` hands
custom.py those model classes. Nothing else stands between Microsoft's code and the vault.

Phases (run_security_domain.sh runs each against its own un-activated `vault serve`, all sharing
one storage folder, a work folder for files):

  a  - before activation every other operation answers 403 (KeyClient, KeyVaultBackupClient);
     az's download with 2 certificates or a quorum of 1 is refused by az; the download with three
     certificates and quorum 2 activates the HSM and writes the file; a second download answers
     409; keys are made and signed with, and a full backup is taken.
  b  - a new HSM: init-recovery writes the exchange certificate; upload with two of the three
     private keys (az makes the restore blob) activates it; the full restore brings the keys back;
     a signature made in HSM a verifies (pyca/cryptography) against the restored key, and the
     restored key signs.
  c  - refusals on a third HSM: a restore blob with one altered byte is refused (400) and leaves
     it un-activated (keys still 403); a blob made for another exchange key is refused; az refuses
     to make a blob from one private key (quorum 2).

Environment: VAULT_URL, VAULT_TOKEN_FILE, VAULT_CA, STORAGE_DIR, WORK_DIR, PHASE.
"""
import base64
import hashlib
import importlib.util
import json
import os
import sys

from azure.core.exceptions import HttpResponseError
from azure.keyvault.administration import KeyVaultBackupClient
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
import datetime

from interop_lib import TokenCredential, check, expect_http_error, need

import azure.cli.command_modules.keyvault as kv_module
from azure.cli.command_modules.keyvault import custom
from knack.util import CLIError
from msrest.authentication import BasicTokenAuthentication

url = need("VAULT_URL")
ca = need("VAULT_CA")
storage = need("STORAGE_DIR")
work = need("WORK_DIR")
phase = need("PHASE")
token_file = need("VAULT_TOKEN_FILE")
options = dict(verify_challenge_resource=False, connection_verify=ca)
credential = TokenCredential(token_file)
keys = KeyClient(url, credential, **options)
backups = KeyVaultBackupClient(url, credential, **options)
container = "https://sdacct.blob.core.windows.net/backups"
sas = "sv=2024-08-04&ss=b&srt=co&sp=rwdlac&sig=keyport-simulated"


def load_vendored_v7_2():
    """azure-cli's vendored security-domain client package, without the parent package that
    imports the legacy azure-keyvault 1.x."""
    root = os.path.join(os.path.dirname(kv_module.__file__), "vendored_sdks", "azure_keyvault_t1",
                        "v7_2")
    spec = importlib.util.spec_from_file_location(
        "kp_vendored_v7_2", os.path.join(root, "__init__.py"), submodule_search_locations=[root])
    module = importlib.util.module_from_spec(spec)
    sys.modules["kp_vendored_v7_2"] = module
    spec.loader.exec_module(module)
    return module


v7_2 = load_vendored_v7_2()
models = sys.modules["kp_vendored_v7_2.models"]


class Cmd:
    """What custom.py asks of az's command object: the data-plane model classes."""

    def get_models(self, *names, **kwargs):
        found = [getattr(models, n) for n in names]
        return found[0] if len(found) == 1 else found


def sd_client():
    with open(token_file, encoding="utf-8") as f:
        token = f.readline().strip()
    client = v7_2.KeyVaultClient(BasicTokenAuthentication({"access_token": token}))
    client.config.connection.verify = ca
    return client


cmd = Cmd()
client = sd_client()
az = dict(hsm_name=None, vault_base_url=url)


def path(name):
    return os.path.join(work, name)


def make_wrapping_key(name):
    """An RSA-2048 key and a self-signed certificate, as `openssl req -newkey rsa:2048 -x509`
    makes them (<name>.key, <name>.cer)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    with open(path(name + ".key"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(path(name + ".cer"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def expect_cli_error(call, what):
    try:
        call()
    except CLIError as e:
        check(True, f"{what}: az refuses ({e})")
        return
    raise AssertionError(f"check failed: {what}: az accepted it")


def not_activated(what):
    e = expect_http_error(lambda: keys.get_key("anything"), 403, what)
    check("not activated" in e.message, f"{what}: the error says the HSM is not activated")


if phase == "a":
    not_activated("before activation GetKey")
    expect_http_error(lambda: backups.begin_backup(container, sas).result(), 403,
                      "before activation a full backup")
    for name in ("k0", "k1", "k2"):
        make_wrapping_key(name)
    certs = [path(n + ".cer") for n in ("k0", "k1", "k2")]
    expect_cli_error(lambda: custom.security_domain_download(
        cmd, client, sd_wrapping_keys=certs[:2], security_domain_file=path("sd-two.json"),
        sd_quorum=2, **az), "a download with two certificates")
    expect_cli_error(lambda: custom.security_domain_download(
        cmd, client, sd_wrapping_keys=certs, security_domain_file=path("sd-one.json"),
        sd_quorum=1, **az), "a download with quorum 1")
    status = custom.security_domain_download(
        cmd, client, sd_wrapping_keys=certs, security_domain_file=path("sd.json"), sd_quorum=2,
        **az)
    check(status is not None and status.status in ("Success", "Succeeded"),
          f"az keyvault security-domain download finished: {status.status}")
    with open(path("sd.json"), encoding="utf-8") as f:
        sd = json.load(f)
    check(sd["SharedKeys"]["required"] == 2 and len(sd["SharedKeys"]["enc_shares"]) == 3
          and sd["SharedKeys"]["key_algorithm"] == "shamir_share"
          and sd["EncData"]["kdf"] == "sp108_kdf",
          "the security domain holds 3 shares, quorum 2")
    try:
        custom.security_domain_download(cmd, client, sd_wrapping_keys=certs,
                                        security_domain_file=path("sd-again.json"), sd_quorum=2,
                                        **az)
        raise AssertionError("check failed: a second download succeeded")
    except Exception as e:  # the vendored client raises KeyVaultErrorException
        check("409" in str(getattr(e, "response", "")) or "already activated" in str(e),
              f"a second download is refused ({type(e).__name__})")
    check(not os.path.exists(path("sd-again.json")), "and writes no file")

    made = keys.create_rsa_key("sdkey", size=2048, hardware_protected=True)
    digest = hashlib.sha256(b"signed in the first HSM").digest()
    signature = CryptographyClient(made, credential, **options).sign(SignatureAlgorithm.rs256,
                                                                     digest)
    with open(path("signature.json"), "w", encoding="utf-8") as f:
        json.dump({"kid": made.id, "signature": base64.b64encode(signature.signature).decode()}, f)
    result = backups.begin_backup(container, sas, _polling_interval=1).result()
    check(result.folder_url.startswith(container + "/mhsm-"), f"full backup: {result.folder_url}")
    with open(path("backup-folder.txt"), "w", encoding="utf-8") as f:
        f.write(result.folder_url)

elif phase == "b":
    not_activated("a new HSM before upload: GetKey")
    custom.security_domain_init_recovery(client, sd_exchange_key=path("exchange-b.cer"), **az)
    with open(path("exchange-b.cer"), "rb") as f:
        exchange = x509.load_pem_x509_certificate(f.read())
    check(exchange.public_key().key_size >= 2048, "init-recovery wrote the exchange certificate")
    status = custom.security_domain_upload(
        cmd, client, sd_file=path("sd.json"), sd_exchange_key=path("exchange-b.cer"),
        sd_wrapping_keys=[path("k2.key"), path("k0.key")], **az)
    check(status is not None and status.status in ("Success", "Succeeded"),
          f"az keyvault security-domain upload (k2 and k0 of 3) finished: {status.status}")
    with open(path("backup-folder.txt"), encoding="utf-8") as f:
        folder_url = f.read().strip()
    backups.begin_restore(folder_url, sas, _polling_interval=1).result()
    restored = keys.get_key("sdkey")
    with open(path("signature.json"), encoding="utf-8") as f:
        signed = json.load(f)
    check(restored.id.rsplit("/", 1)[-1] == signed["kid"].rsplit("/", 1)[-1],
          "the full restore brought back the key of the first HSM (same version)")
    public = rsa.RSAPublicNumbers(int.from_bytes(restored.key.e, "big"),
                                  int.from_bytes(restored.key.n, "big")).public_key()
    digest = hashlib.sha256(b"signed in the first HSM").digest()
    from cryptography.hazmat.primitives.asymmetric import utils
    public.verify(base64.b64decode(signed["signature"]), digest, padding.PKCS1v15(),
                  utils.Prehashed(hashes.SHA256()))
    check(True, "cryptography verifies the first HSM's signature with the restored key")
    again = CryptographyClient(restored, credential, **options).sign(SignatureAlgorithm.rs256,
                                                                     digest)
    public.verify(again.signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    check(True, "the restored key signs in the new HSM and cryptography verifies it")

elif phase == "c":
    custom.security_domain_init_recovery(client, sd_exchange_key=path("exchange-c.cer"), **az)
    expect_cli_error(lambda: custom.security_domain_restore_blob(
        path("sd.json"), path("exchange-c.cer"), [path("k1.key")], path("blob-one.json")),
        "a restore blob from one private key (quorum 2)")
    custom.security_domain_restore_blob(path("sd.json"), path("exchange-c.cer"),
                                        [path("k1.key"), path("k2.key")], path("blob-c.json"))
    with open(path("blob-c.json"), encoding="utf-8") as f:
        blob = json.load(f)
    check(set(blob) == {"EncData", "WrappedKey"}, "az restore-blob made a blob for HSM c")

    def upload(value):
        client.upload(vault_base_url=url, security_domain=models.SecurityDomainObject(value=value))

    jwe = blob["EncData"]["data"][0]["compact_jwe"].split(".")
    ciphertext = bytearray(base64.urlsafe_b64decode(jwe[3] + "=" * (-len(jwe[3]) % 4)))
    ciphertext[5] ^= 0x01
    jwe[3] = base64.urlsafe_b64encode(bytes(ciphertext)).decode().rstrip("=")
    altered = json.loads(json.dumps(blob))
    altered["EncData"]["data"][0]["compact_jwe"] = ".".join(jwe)
    for what, value in (("a blob with one altered byte", altered),
                        ("a blob for another exchange key",
                         dict(blob, WrappedKey=dict(blob["WrappedKey"], x5t_256="AAAA")))):
        try:
            upload(json.dumps(value))
            raise AssertionError(f"check failed: {what} was accepted")
        except Exception as e:
            status = getattr(getattr(e, "response", None), "status_code", None)
            check(status == 400, f"{what} is refused: HTTP {status}")
    not_activated("after the refused uploads the HSM is still not activated: GetKey")
    pending = client.upload_pending(vault_base_url=url)
    check(pending.status == "Failed", f"the upload status says Failed: {pending.status_details}")

else:
    sys.exit(f"unknown PHASE {phase}")
