// SPDX-License-Identifier: Apache-2.0
// BackupKey and RestoreKey against keyport's simulated vault, driven by the official Azure SDK for
// JavaScript (@azure/keyvault-keys, written by Microsoft, not by keyport):
//
//   1. a key of two versions with tags and a disabled first version; KeyClient.backupKey;
//   2. beginDeleteKey (polled to the end), purgeDeletedKey;
//   3. restoreKeyBackup: the same kid, attributes, tags and versions, and the restored key signs
//      so that Node's crypto verifies with the public key read before the backup;
//   4. restoreKeyBackup over the existing name: 409; of a blob with one flipped byte: 400.
//
// Environment (set by run_backup.sh): VAULT_URL, VAULT_TOKEN_FILE, NODE_EXTRA_CA_CERTS.
import { createHash, createPublicKey, verify as nodeVerify } from "node:crypto";

import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { need, check, refused, vaultSession } from "./lib.mjs";

const { url, credential, clientOptions } = vaultSession();

async function versionsOf(client, name) {
  const versions = [];
  for await (const p of client.listPropertiesOfKeyVersions(name)) {
    versions.push({ version: p.version, enabled: p.enabled, createdOn: p.createdOn?.getTime(),
      expiresOn: p.expiresOn?.getTime() ?? null, tags: p.tags ?? {} });
  }
  versions.sort((a, b) => a.version.localeCompare(b.version));
  return versions;
}

async function main() {
  const client = new KeyClient(url, credential, clientOptions);
  const name = "sdk-backup-ec";
  const v1 = await client.createEcKey(name, { hsm: true, curve: "P-256", tags: { team: "pay" } });
  const expiresOn = new Date(Math.floor(Date.now() / 1000 + 400 * 86400) * 1000);
  const v2 = await client.createEcKey(name, { hsm: true, curve: "P-256", tags: { team: "pay", v: "2" },
    expiresOn });
  await client.updateKeyProperties(name, v1.properties.version, { enabled: false });
  const before = await versionsOf(client, name);
  const latestBefore = await client.getKey(name);
  check(before.length === 2, "two versions before the backup");

  // 1. The backup: an opaque blob.
  const blob = await client.backupKey(name);
  check(blob instanceof Uint8Array && blob.length > 100, `backupKey returned ${blob.length} bytes`);

  // 2. Delete and purge.
  const poller = await client.beginDeleteKey(name);
  await poller.pollUntilDone();
  await refused(client.restoreKeyBackup(blob), 409, "restoreKeyBackup while the name is soft-deleted");
  await client.purgeDeletedKey(name);
  await refused(client.getKey(name), 404, "getKey after purge");

  // 3. Restore: the same key.
  const restored = await client.restoreKeyBackup(blob);
  check(restored.id === latestBefore.id, `the restored key has the same kid (${restored.id})`);
  check(JSON.stringify(restored.properties.tags) === JSON.stringify({ team: "pay", v: "2" }),
    "the restored key has its tags");
  check(restored.properties.expiresOn?.getTime() === expiresOn.getTime(),
    "the restored key has its expiry");
  const after = await versionsOf(client, name);
  check(JSON.stringify(after) === JSON.stringify(before),
    "every version with its attributes and tags is back");
  const crypto = new CryptographyClient(latestBefore.id, credential, clientOptions);
  const digest = createHash("sha256").update("backup interop").digest();
  const sig = await crypto.sign("ES256", digest);
  const pub = createPublicKey({ key: { kty: "EC", crv: "P-256",
    x: Buffer.from(v2.key.x).toString("base64url"), y: Buffer.from(v2.key.y).toString("base64url") },
  format: "jwk" });
  check(nodeVerify("sha256", Buffer.from("backup interop"), { key: pub, dsaEncoding: "ieee-p1363" },
    Buffer.from(sig.result)), "Node's crypto verifies a signature of the restored key");
  const v1Props = after.find((v) => v.version === v1.properties.version);
  check(v1Props?.enabled === false, "the first version is still disabled");

  // 4. Refusals.
  await refused(client.restoreKeyBackup(blob), 409, "restoreKeyBackup over the existing name");
  const tampered = Uint8Array.from(blob);
  tampered[Math.floor(tampered.length / 2)] ^= 0x01;
  await client.beginDeleteKey(name).then((p) => p.pollUntilDone());
  await client.purgeDeletedKey(name);
  const e = await refused(client.restoreKeyBackup(tampered), 400, "restoreKeyBackup of a tampered blob");
  check(e.code === "BadParameter", `the tampered blob's error code is BadParameter (${e.code})`);
  await refused(client.getKey(name), 404, "nothing was restored from the tampered blob");
  console.log("backup interop: all checks passed");
}

main().catch((e) => {
  console.error(`backup interop failed: ${e.stack || e}`);
  process.exit(1);
});
