# SPDX-License-Identifier: Apache-2.0
"""Managed HSM full backup, full restore and selective key restore against keyport's simulated
Managed HSM, driven by the Azure SDK for Python that Debian 12 ships (azure-keyvault-administration
4.3's KeyVaultBackupClient, azure-keyvault-keys 4.8's KeyClient; written by Microsoft, not by
keyport), with pyca/cryptography as the independent check:

  1. KeyClient makes an EC key (two versions, tags) and an oct-HSM key;
  2. KeyVaultBackupClient.begin_backup(container URL, SAS token): the poller follows the
     Azure-AsyncOperation route to Succeeded; the folder it names holds the manifest and a blob
     per key;
  3. begin_restore of the whole folder while the keys exist: the job fails with Conflict and
     nothing changes;
  4. the EC key deleted and purged, then begin_restore(folder, key_name=...): both versions come
     back with their tags, and a signature the first version made before the backup verifies
     with cryptography against the restored key;
  5. a container that does not exist: the job fails.

Environment (set by run_backup.sh): VAULT_URL, VAULT_TOKEN_FILE, VAULT_CA, STORAGE_DIR.
"""
import hashlib
import os

from azure.core.exceptions import HttpResponseError
from azure.keyvault.administration import KeyVaultBackupClient
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from interop_lib import TokenCredential, check, need


url = need("VAULT_URL")
ca = need("VAULT_CA")
storage = need("STORAGE_DIR")
options = dict(verify_challenge_resource=False, connection_verify=ca)
credential = TokenCredential(need("VAULT_TOKEN_FILE"))
keys = KeyClient(url, credential, **options)
backups = KeyVaultBackupClient(url, credential, **options)
container = "https://pyacct.blob.core.windows.net/backups"
sas = "sv=2024-08-04&ss=b&srt=co&sp=rwdlac&sig=keyport-simulated"

# 1. Keys.
first = keys.create_ec_key("pyback", curve="P-256", hardware_protected=True, tags={"team": "hsm"})
digest = hashlib.sha256(b"signed before the backup").digest()
signature = CryptographyClient(first, credential, **options).sign(SignatureAlgorithm.es256, digest)
second = keys.rotate_key("pyback")
keys.create_oct_key("pyaes", size=256, hardware_protected=True)
check(second.properties.version != first.properties.version, "the EC key has two versions")

# 2. Full backup.
poller = backups.begin_backup(container, sas, _polling_interval=1)
result = poller.result()
check(result.folder_url.startswith(container + "/mhsm-"), f"begin_backup finished: {result.folder_url}")
folder = result.folder_url[len(container) + 1:]
on_disk = os.path.join(storage, "pyacct.blob.core.windows.net", "backups", folder)
check(os.path.isfile(os.path.join(on_disk, "keyport-full-backup.json"))
      and sorted(os.listdir(os.path.join(on_disk, "keys"))) == ["pyaes.blob", "pyback.blob"],
      "the storage folder holds the manifest and one blob per key")

# 3. Full restore over existing keys: the job fails, nothing changes.
try:
    backups.begin_restore(result.folder_url, sas, _polling_interval=1).result()
    raise SystemExit("check failed: a full restore over existing keys succeeded")
except HttpResponseError as e:
    check("exists already" in str(e), "a full restore over existing keys fails (Conflict)")
check(len(list(keys.list_properties_of_key_versions("pyback"))) == 2, "the keys are untouched")

# 4. Delete, purge, selective restore.
keys.begin_delete_key("pyback").result()
keys.purge_deleted_key("pyback")
backups.begin_restore(result.folder_url, sas, key_name="pyback", _polling_interval=1).result()
restored = keys.get_key("pyback")
versions = sorted(p.version for p in keys.list_properties_of_key_versions("pyback"))
check(restored.properties.version == second.properties.version
      and versions == sorted([first.properties.version, second.properties.version])
      and restored.properties.tags == {"team": "hsm"},
      "selective restore brings back both versions and the tags")
old = keys.get_key("pyback", first.properties.version)
numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(old.key.x, "big"),
                                        int.from_bytes(old.key.y, "big"), ec.SECP256R1())
r = int.from_bytes(signature.signature[:32], "big")
s = int.from_bytes(signature.signature[32:], "big")
numbers.public_key().verify(utils.encode_dss_signature(r, s), digest,
                            ec.ECDSA(utils.Prehashed(hashes.SHA256())))
check(True, "cryptography verifies a pre-backup signature with the restored first version")

# 5. A container that does not exist.
try:
    backups.begin_backup("https://pyacct.blob.core.windows.net/nosuch", sas, _polling_interval=1).result()
    raise SystemExit("check failed: a backup to a missing container succeeded")
except HttpResponseError as e:
    check("does not exist" in str(e), "a backup to a missing container fails")
print("backup_flow.py: all checks passed")
