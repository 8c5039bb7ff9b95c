// SPDX-License-Identifier: Apache-2.0
// Secure Key Release against keyport's simulated vault, driven by the official Azure SDK for
// JavaScript (@azure/keyvault-keys, written by Microsoft, not by keyport), and checked with
// Node's own crypto (OpenSSL underneath, none of keyport's code):
//
//   1. KeyClient.createRsaKey with exportable: true and a SEV-SNP releasePolicy; getKey shows
//      both back;
//   2. `keyport attest token` (the SIMULATED attestation authority) mints a token carrying the
//      enclave's runtime key;
//   3. KeyClient.releaseKey with a nonce: the answer's JWS verifies with the x5c leaf, the leaf
//      with the vault CA; the payload echoes the nonce and the key; key_hsm unwraps with the
//      runtime private key (RSA-OAEP SHA-1 + AES-KWP, Node crypto) to a private key whose
//      public part is the SDK's key; a signature made with it verifies through
//      CryptographyClient.verify;
//   4. a token with x-ms-sevsnpvm-is-debuggable: true gets 403 Forbidden from releaseKey, and
//      the error tells nothing about why.
//
// Environment (set by run_release.sh): VAULT_URL, VAULT_TOKEN_FILE, NODE_EXTRA_CA_CERTS (the
// vault CA), KEYPORT_BIN, WORK_DIR, AUTHORITY_DIR, RUNTIME_KEY, RUNTIME_PUB.
import { execFileSync } from "node:child_process";
import {
  X509Certificate,
  constants,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  sign as nodeSign,
  verify as nodeVerify,
  createHash,
} from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { need, check } from "./lib.mjs";

const url = need("VAULT_URL");
const token = readFileSync(need("VAULT_TOKEN_FILE"), "utf8").trim();
const work = need("WORK_DIR");
const keyport = need("KEYPORT_BIN");
const authorityDir = need("AUTHORITY_DIR");
const caPem = readFileSync(need("NODE_EXTRA_CA_CERTS"), "utf8");
const runtimeKey = createPrivateKey(readFileSync(need("RUNTIME_KEY")));
const runtimePub = need("RUNTIME_PUB");

const credential = {
  async getToken() {
    return { token, expiresOnTimestamp: Date.now() + 3600 * 1000 };
  },
};
const clientOptions = { disableChallengeResourceVerification: true };

const b64u = (s) => Buffer.from(s, "base64url");

function mint(name, claims) {
  const out = join(work, `${name}.jwt`);
  const args = ["-q", "attest", "token", "--authority", authorityDir, "--runtime-key", runtimePub,
    "--type", "sevsnpvm", "-o", out, "--force"];
  if (claims) {
    const file = join(work, `${name}.claims.json`);
    writeFileSync(file, JSON.stringify(claims));
    args.push("--claims", file);
  }
  execFileSync(keyport, args, { stdio: ["ignore", "inherit", "inherit"] });
  return readFileSync(out, "utf8").trim();
}

// RFC 5649 unwrap with OpenSSL's id-aes256-wrap-pad through Node.
function kwpUnwrap(kek, wrapped) {
  const d = createDecipheriv("id-aes256-wrap-pad", kek, Buffer.from("A65959A6", "hex"));
  return Buffer.concat([d.update(wrapped), d.final()]);
}

// A DER SEQUENCE's own length (SoftHSM pads PKCS#8 inside KWP with zero bytes).
function derLength(buf) {
  if (buf[0] !== 0x30) {
    throw new Error("not a DER SEQUENCE");
  }
  if (buf[1] < 0x80) {
    return 2 + buf[1];
  }
  const n = buf[1] & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) {
    len = len * 256 + buf[2 + i];
  }
  return 2 + n + len;
}

async function main() {
  const client = new KeyClient(url, credential, clientOptions);
  const authority = JSON.parse(readFileSync(join(authorityDir, "authority.json"), "utf8")).url;
  const policy = {
    version: "1.0.0",
    anyOf: [{
      authority,
      allOf: [
        { claim: "x-ms-attestation-type", equals: "sevsnpvm" },
        { claim: "x-ms-sevsnpvm-is-debuggable", equals: false },
      ],
    }],
  };

  // 1. An exportable key with a release policy.
  const key = await client.createRsaKey("sdk-skr", {
    hsm: true,
    keySize: 2048,
    keyOps: ["sign", "verify"],
    exportable: true,
    releasePolicy: { encodedPolicy: new TextEncoder().encode(JSON.stringify(policy)) },
  });
  check(key.properties.exportable === true, "createRsaKey made an exportable key");
  const got = await client.getKey("sdk-skr");
  check(JSON.parse(Buffer.from(got.properties.releasePolicy.encodedPolicy).toString("utf8"))
    .anyOf[0].authority === authority, "getKey returns the release policy as written");

  // 2-3. Release to the simulated enclave.
  const result = await client.releaseKey("sdk-skr", mint("good"), { nonce: "sdk-nonce-1" });
  check(typeof result.value === "string" && result.value.split(".").length === 3,
    "releaseKey answered a compact JWS");
  // For tests/interop/jose/verify_release.mjs (run_release.sh runs it next).
  writeFileSync(join(work, "release.json"), JSON.stringify(result));
  const [h64, p64, s64] = result.value.split(".");
  const header = JSON.parse(b64u(h64).toString("utf8"));
  const payload = JSON.parse(b64u(p64).toString("utf8"));
  check(header.alg === "RS256" && Array.isArray(header.x5c) && header.x5c.length >= 2,
    "the JWS header is RS256 with an x5c chain");
  const leaf = new X509Certificate(Buffer.from(header.x5c[0], "base64"));
  const ca = new X509Certificate(caPem);
  check(leaf.verify(ca.publicKey), "the x5c leaf is signed by the vault CA (Node X509Certificate)");
  check(leaf.checkIP("127.0.0.1") !== undefined, "the leaf is issued for the vault host 127.0.0.1");
  check(header["x5t#S256"] === createHash("sha256").update(leaf.raw).digest("base64url"),
    "x5t#S256 is the leaf's SHA-256 thumbprint");
  check(nodeVerify("sha256", Buffer.from(`${h64}.${p64}`), leaf.publicKey, b64u(s64)),
    "the JWS signature verifies with the leaf (Node crypto)");
  check(payload.request.nonce === "sdk-nonce-1", "the payload echoes the nonce");
  check(payload.request.enc === "CKM_RSA_AES_KEY_WRAP", "the default enc is CKM_RSA_AES_KEY_WRAP");
  const released = payload.response.key.key;
  check(released.kid === key.id, `the released key is the SDK's key (${released.kid})`);
  check(released.d === undefined, "no private member in clear");
  const keyHsm = JSON.parse(b64u(released.key_hsm).toString("utf8"));
  check(keyHsm.schema_version === "1.0" && keyHsm.header.alg === "dir",
    "key_hsm is {schema_version 1.0, header {kid, alg dir, enc}, ciphertext}");
  const blob = b64u(keyHsm.ciphertext);
  const modulusBytes = runtimeKey.asymmetricKeyDetails.modulusLength / 8;
  const aesKey = privateDecrypt({ key: runtimeKey, padding: constants.RSA_PKCS1_OAEP_PADDING,
    oaepHash: "sha1" }, blob.subarray(0, modulusBytes));
  check(aesKey.length === 32, "RSA-OAEP (SHA-1) gives the AES-256 transfer key");
  const pkcs8 = kwpUnwrap(aesKey, blob.subarray(modulusBytes));
  const priv = createPrivateKey({ key: pkcs8.subarray(0, derLength(pkcs8)), format: "der",
    type: "pkcs8" });
  const jwk = createPublicKey(priv).export({ format: "jwk" });
  check(jwk.n === Buffer.from(key.key.n).toString("base64url"),
    "the unwrapped private key belongs to the vault key (same modulus)");
  const data = Buffer.from("signed inside the simulated enclave");
  const signature = nodeSign("sha256", data, priv);
  const crypto = new CryptographyClient(key, credential, clientOptions);
  const verified = await crypto.verify("RS256", createHash("sha256").update(data).digest(),
    signature);
  check(verified.result === true, "CryptographyClient.verify accepts the enclave's signature");

  // 4. A debuggable environment is refused, and not told why.
  let refused;
  try {
    await client.releaseKey("sdk-skr", mint("debug", { "x-ms-sevsnpvm-is-debuggable": true }));
  } catch (e) {
    refused = e;
  }
  check(refused && refused.statusCode === 403, `a debuggable token gets 403 (${refused?.statusCode})`);
  check(refused.code === "Forbidden", `the error code is Forbidden (${refused.code})`);
  check(!String(refused.message).includes("debuggable"), "the error does not say why");
  console.log("release_flow: all checks passed");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
