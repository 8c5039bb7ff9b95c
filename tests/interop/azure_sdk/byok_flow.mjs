// SPDX-License-Identifier: Apache-2.0
// The BYOK flow against keyport's simulated vault, driven by the official Azure SDK for
// JavaScript (@azure/keyvault-keys, written by Microsoft, not by keyport):
//
//   1. KeyClient.createRsaKey: an import-only RSA-HSM key exchange key (KEK); getKey reads it back
//      and its public key is written as SPKI PEM (what `az keyvault key download` writes);
//   2. `keyport byok export` wraps on-prem keys (an EC P-256 and an RSA-2048 key in a SoftHSM
//      token) to that KEK with the kid the SDK returned;
//   3. KeyClient.importKey with the SDK's JsonWebKey field `t` (sent as key_hsm);
//   4. getKey, listPropertiesOfKeys;
//   5. CryptographyClient.sign and .verify (ES256, RS256), and the signatures checked with Node's
//      own crypto against the on-prem public keys.
//
// Authentication is the SDK's own challenge flow: the first request of each client goes without a
// token, the vault answers 401 with a Bearer challenge, the SDK asks the credential for a token and
// retries. The credential counts its getToken calls; the vault's access log shows the 401s.
//
// Environment (set by run.sh): VAULT_URL, VAULT_TOKEN_FILE, NODE_EXTRA_CA_CERTS (the vault CA),
// VAULT_ACCESS_LOG, KEYPORT_BIN, SOFTHSM2_CONF, ONPREM_PIN_FILE, WORK_DIR, ONPREM_EC_PUB and
// ONPREM_RSA_PUB (DER SubjectPublicKeyInfo read from the on-prem token with pkcs11-tool).
import { execFileSync } from "node:child_process";
import { createHash, createPublicKey, verify as nodeVerify } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { need, check } from "./lib.mjs";

const url = need("VAULT_URL");
const token = readFileSync(need("VAULT_TOKEN_FILE"), "utf8").trim();
const work = need("WORK_DIR");
const keyport = need("KEYPORT_BIN");
need("NODE_EXTRA_CA_CERTS");

// A tiny TokenCredential: hands out the access-file token and counts the calls.
const calls = [];
const credential = {
  async getToken(scopes, options) {
    calls.push({ scopes: [].concat(scopes), tenantId: options?.tenantId });
    return { token, expiresOnTimestamp: Date.now() + 3600 * 1000 };
  },
};
const clientOptions = { disableChallengeResourceVerification: true };

function exportToKek(label, kekPem, kid, out) {
  execFileSync(
    keyport,
    ["-q", "byok", "export", "--token", "onprem", "--key", label, "--kek", kekPem, "--kid", kid,
      "--target", "key-vault", "-o", out, "--force", "--pin-source",
      `file:${need("ONPREM_PIN_FILE")}`],
    { stdio: ["ignore", "inherit", "inherit"], env: process.env },
  );
  return readFileSync(out);
}

async function main() {
  const client = new KeyClient(url, credential, clientOptions);

  // 1. The KEK, read back, its public key written as SPKI PEM.
  const kek = await client.createRsaKey("sdk-kek", { hsm: true, keySize: 2048, keyOps: ["import"] });
  check(kek.keyType === "RSA-HSM", `createRsaKey made an RSA-HSM key (${kek.keyType})`);
  check(JSON.stringify(kek.keyOperations) === JSON.stringify(["import"]),
    "the KEK's key_ops are exactly [\"import\"]");
  check(kek.id.startsWith(`${url}/keys/sdk-kek/`) && kek.properties.version.length === 32,
    `the KEK's kid is versioned and names the vault (${kek.id})`);
  const got = await client.getKey("sdk-kek");
  check(got.id === kek.id, "getKey returns the KEK's latest version");
  const kekPublic = createPublicKey({
    key: { kty: "RSA", n: Buffer.from(got.key.n).toString("base64url"),
      e: Buffer.from(got.key.e).toString("base64url") },
    format: "jwk",
  });
  check(kekPublic.asymmetricKeyDetails.modulusLength === 2048, "the KEK is RSA-2048");
  const kekPem = join(work, "sdk-kek.pem");
  writeFileSync(kekPem, kekPublic.export({ type: "spki", format: "pem" }));

  // 2 and 3. keyport wraps the on-prem keys to it; the SDK imports them (t = key_hsm).
  const imports = [
    { name: "sdk-ec", label: "sdk-ec", jwk: { kty: "EC-HSM", crv: "P-256" }, alg: "ES256",
      pub: need("ONPREM_EC_PUB") },
    { name: "sdk-rsa", label: "sdk-rsa", jwk: { kty: "RSA-HSM" }, alg: "RS256",
      pub: need("ONPREM_RSA_PUB") },
  ];
  for (const imp of imports) {
    const blob = exportToKek(imp.label, kekPem, kek.id, join(work, `${imp.name}.byok`));
    const key = await client.importKey(imp.name, { ...imp.jwk, t: blob }, { hardwareProtected: true });
    check(key.keyType === imp.jwk.kty, `importKey(${imp.name}) made an ${imp.jwk.kty} key`);
    imp.key = key;
  }

  // 4. getKey and listPropertiesOfKeys.
  const ec = await client.getKey("sdk-ec");
  const onpremEc = createPublicKey({ key: readFileSync(imports[0].pub), format: "der", type: "spki" });
  const onpremJwk = onpremEc.export({ format: "jwk" });
  check(Buffer.from(ec.key.x).toString("base64url") === onpremJwk.x &&
    Buffer.from(ec.key.y).toString("base64url") === onpremJwk.y,
    "the imported EC key's public point is the on-prem key's");
  const names = [];
  for await (const props of client.listPropertiesOfKeys()) {
    names.push(props.name);
  }
  names.sort();
  check(JSON.stringify(names) === JSON.stringify(["sdk-ec", "sdk-kek", "sdk-rsa"]),
    `listPropertiesOfKeys lists the three keys (${names.join(", ")})`);
  // Paging as the SDK does it: one key per page, following nextLink.
  let pages = 0;
  for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 1 })) {
    pages += page.length > 0 ? 1 : 0;
  }
  check(pages >= 1, `listPropertiesOfKeys().byPage() walked ${pages} page(s)`);

  // 5. Sign and verify inside the vault; verify again with Node against the on-prem keys.
  const message = Buffer.from("pay 100 to Bob, signed in the simulated vault\n");
  const digest = createHash("sha256").update(message).digest();
  for (const imp of imports) {
    const crypto = new CryptographyClient(imp.key, credential, clientOptions);
    const signed = await crypto.sign(imp.alg, digest);
    check(signed.keyID === imp.key.id, `${imp.alg} signature made by ${imp.name}`);
    const verified = await crypto.verify(imp.alg, digest, signed.result);
    check(verified.result === true, `the vault verifies the ${imp.alg} signature`);
    const tampered = Buffer.from(digest);
    tampered[0] ^= 1;
    const refused = await crypto.verify(imp.alg, tampered, signed.result);
    check(refused.result === false, `the vault refuses the ${imp.alg} signature for another digest`);
    const onprem = createPublicKey({ key: readFileSync(imp.pub), format: "der", type: "spki" });
    const ok = nodeVerify("sha256", message,
      imp.alg === "ES256" ? { key: onprem, dsaEncoding: "ieee-p1363" } : onprem,
      Buffer.from(signed.result));
    check(ok, `Node's crypto verifies the ${imp.alg} signature with the on-prem public key`);
  }

  // The challenge flow ran: the credential was asked for the vault's scope (one token per client:
  // the KeyClient and two CryptographyClients), and the vault answered 401s before that.
  check(calls.length >= 1, `the credential's getToken was called ${calls.length} time(s)`);
  check(calls.every((c) => c.scopes.includes("https://vault.azure.net/.default")),
    `getToken was asked for https://vault.azure.net/.default (${JSON.stringify(calls[0])})`);
  check(calls[0].tenantId === "00000000-0000-0000-0000-000000000000",
    "the tenant came from the challenge's authorization URL");
  const log = readFileSync(need("VAULT_ACCESS_LOG"), "utf8");
  const challenged = log.split("\n").filter((l) => l.includes("caller=- ") && / 401 /.test(l));
  check(challenged.length >= calls.length,
    `the vault challenged ${challenged.length} unauthenticated request(s) with 401`);
  const versions = new Set([...log.matchAll(/api-version=([0-9a-z.-]+)/g)].map((m) => m[1]));
  console.log(`the SDK sent api-version ${[...versions].join(", ")}`);
  check(!log.includes(token), "the access log never holds the token");
}

main().then(
  () => {
    console.log("byok_flow: all checks passed");
  },
  (e) => {
    console.error(`byok_flow: FAILED: ${e?.stack ?? e}`);
    if (e?.details) {
      console.error(`byok_flow: service error: ${JSON.stringify(e.details)}`);
    }
    process.exit(1);
  },
);
