// SPDX-License-Identifier: Apache-2.0
// Key rotation against keyport's simulated vault, driven by the official Azure SDK for JavaScript
// (@azure/keyvault-keys, written by Microsoft, not by keyport):
//
//   1. KeyClient.getKeyRotationPolicy of a key without a policy: Key Vault's default;
//   2. updateKeyRotationPolicy (Rotate 30 days after creation, new versions expire in 90 days),
//      read back; a policy Key Vault refuses (P1D) is refused with 400 BadParameter;
//   3. the vault's clock moved with `keyport vault clock --advance` (the running server follows
//      the folder's settings): after 29 days one version, after 31 days two (the policy rotated);
//   4. rotateKey: a third version on demand, with the policy's expiry;
//   5. the first versions still work: CryptographyClient.verify of a signature made before the
//      rotations (and Node's own crypto agrees), unwrapKey of a key wrapped before them.
//
// Environment (set by run_rotation.sh): VAULT_URL, VAULT_TOKEN_FILE, NODE_EXTRA_CA_CERTS,
// VAULT_DATA (the server's folder), KEYPORT_BIN.
import { execFileSync } from "node:child_process";
import { createHash, createPublicKey, randomBytes, verify as nodeVerify } from "node:crypto";
import { readFileSync } from "node:fs";

import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { need, check } from "./lib.mjs";

const url = need("VAULT_URL");
const token = readFileSync(need("VAULT_TOKEN_FILE"), "utf8").trim();
const data = need("VAULT_DATA");
const keyport = need("KEYPORT_BIN");
need("NODE_EXTRA_CA_CERTS");

const credential = {
  async getToken() {
    return { token, expiresOnTimestamp: Date.now() + 3600 * 1000 };
  },
};
const clientOptions = { disableChallengeResourceVerification: true };
const DAY = 86400 * 1000;

function advanceClock(duration) {
  const out = execFileSync(keyport, ["vault", "clock", "--data", data, "--advance", duration,
    "--json"], { env: process.env });
  return JSON.parse(out.toString()).now * 1000;
}

async function versionsOf(client, name) {
  const versions = [];
  for await (const p of client.listPropertiesOfKeyVersions(name)) {
    versions.push(p);
  }
  return versions;
}

async function main() {
  const client = new KeyClient(url, credential, clientOptions);
  const ec = await client.createEcKey("sdk-rot-ec", { hsm: true, curve: "P-256" });
  const rsa = await client.createRsaKey("sdk-rot-rsa", { hsm: true, keySize: 2048 });

  // 1. The default policy.
  const def = await client.getKeyRotationPolicy("sdk-rot-ec");
  check(def.lifetimeActions?.length === 1 && def.lifetimeActions[0].action === "Notify" &&
    def.lifetimeActions[0].timeBeforeExpiry === "P30D",
  `a key without a policy has Key Vault's default (${JSON.stringify(def.lifetimeActions)})`);

  // 2. Set, read back, and a refusal.
  const policy = { lifetimeActions: [{ action: "Rotate", timeAfterCreate: "P30D" }], expiresIn: "P90D" };
  const set = await client.updateKeyRotationPolicy("sdk-rot-ec", policy);
  check(set.lifetimeActions[0].action === "Rotate" && set.lifetimeActions[0].timeAfterCreate === "P30D" &&
    set.expiresIn === "P90D", "updateKeyRotationPolicy stored Rotate after P30D, expiresIn P90D");
  check(set.id === `${url}/keys/sdk-rot-ec/rotationpolicy`, `the policy's id (${set.id})`);
  check(set.createdOn instanceof Date && set.updatedOn instanceof Date,
    "the SDK reads createdOn and updatedOn as dates");
  await client.updateKeyRotationPolicy("sdk-rot-rsa", policy);
  const read = await client.getKeyRotationPolicy("sdk-rot-ec");
  check(JSON.stringify(read.lifetimeActions) === JSON.stringify(set.lifetimeActions) &&
    read.expiresIn === "P90D", "getKeyRotationPolicy reads the same policy back");
  let refused = null;
  try {
    await client.updateKeyRotationPolicy("sdk-rot-ec",
      { lifetimeActions: [{ action: "Rotate", timeAfterCreate: "P1D" }] });
  } catch (e) {
    refused = e;
  }
  check(refused?.statusCode === 400 && refused?.code === "BadParameter",
    `a rotation sooner than 7 days is refused with 400 BadParameter (${refused?.message})`);

  // Data that must stay readable under the first versions.
  const digest = createHash("sha256").update("signed before the rotation").digest();
  const ecV1 = new CryptographyClient(ec.id, credential, clientOptions);
  const sig = await ecV1.sign("ES256", digest);
  const dek = randomBytes(32);
  const rsaV1 = new CryptographyClient(rsa.id, credential, clientOptions);
  const wrapped = await rsaV1.wrapKey("RSA-OAEP", dek);

  // 3. The clock moves; the running server rotates when the policy is due.
  advanceClock("P29D");
  check((await versionsOf(client, "sdk-rot-ec")).length === 1, "after 29 days: still one version");
  const now = advanceClock("P2D");
  const after = await versionsOf(client, "sdk-rot-ec");
  check(after.length === 2, `after 31 days: the policy made a second version (${after.length})`);
  check((await versionsOf(client, "sdk-rot-rsa")).length === 2, "the RSA key rotated too");
  const latest = await client.getKey("sdk-rot-ec");
  check(latest.properties.version !== ec.properties.version, "getKey returns the new version");
  check(Math.abs(latest.properties.expiresOn.getTime() - (now + 90 * DAY)) < 120 * 1000,
    `the new version expires 90 days after the vault's now (${latest.properties.expiresOn.toISOString()})`);
  check(latest.properties.hsmPlatform === "2", "the new version is on hsmPlatform 2");

  // 4. rotateKey on demand.
  const third = await client.rotateKey("sdk-rot-ec");
  check(third.keyType === "EC-HSM" && third.key.crv === "P-256" &&
    third.properties.version !== latest.properties.version,
  `rotateKey made a third EC-HSM P-256 version (${third.properties.version})`);
  check((await versionsOf(client, "sdk-rot-ec")).length === 3, "three versions now");

  // 5. The first versions still verify and unwrap.
  const verified = await ecV1.verify("ES256", digest, sig.result);
  check(verified.result === true, "version 1 still verifies its signature (CryptographyClient.verify)");
  const v1 = await client.getKey("sdk-rot-ec", { version: ec.properties.version });
  const pub = createPublicKey({
    key: { kty: "EC", crv: "P-256", x: Buffer.from(v1.key.x).toString("base64url"),
      y: Buffer.from(v1.key.y).toString("base64url") },
    format: "jwk",
  });
  check(nodeVerify("sha256", Buffer.from("signed before the rotation"),
    { key: pub, dsaEncoding: "ieee-p1363" }, Buffer.from(sig.result)),
  "Node's crypto verifies the old signature with version 1's public key");
  const unwrapped = await rsaV1.unwrapKey("RSA-OAEP", wrapped.result);
  check(Buffer.compare(Buffer.from(unwrapped.result), dek) === 0,
    "version 1 of the RSA key still unwraps what it wrapped before the rotation");
  const rsaLatest = new CryptographyClient((await client.getKey("sdk-rot-rsa")).id, credential, clientOptions);
  let wrongKey = null;
  try {
    await rsaLatest.unwrapKey("RSA-OAEP", wrapped.result);
  } catch (e) {
    wrongKey = e;
  }
  check(wrongKey?.statusCode === 400, "the new RSA version cannot unwrap it (another key)");
  console.log("rotation interop: all checks passed");
}

main().catch((e) => {
  console.error(`rotation interop failed: ${e.stack || e}`);
  process.exit(1);
});
