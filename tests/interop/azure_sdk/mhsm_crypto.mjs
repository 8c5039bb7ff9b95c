// SPDX-License-Identifier: Apache-2.0
// AES on a Managed HSM oct-HSM key and GetRandomBytes against keyport's simulated Managed HSM,
// driven by the official Azure SDK for JavaScript (@azure/keyvault-keys, written by Microsoft, not
// by keyport), with Node's own crypto as the independent check:
//
//   1. KeyClient.importKey of an oct-HSM key whose k the script knows, createOctKey of one it
//      does not;
//   2. CryptographyClient.encrypt with A256GCM and additional authenticated data: the HSM's
//      12-byte IV and 16-byte tag come back, Node's aes-256-gcm decrypts; Node's own GCM
//      ciphertext decrypts in the vault; a changed tag is refused with 400;
//   3. A256CBCPAD and A128CBC (the SDK makes the IV): Node's aes-*-cbc agrees both ways;
//   4. wrapKey/unwrapKey with CKM_AES_KEY_WRAP_PAD of 20 bytes (not a multiple of 8) and with
//      CKM_AES_KEY_WRAP: Node's id-aes256-wrap-pad / id-aes256-wrap give the same bytes;
//   5. KeyClient.getRandomBytes: the count asked for, and 129 refused;
//   6. KeyClient.getKeyAttestation of an EC key (SIMULATED attestation): Node's X509Certificate
//      checks the certificate against the vault CA, Node's crypto.verify the statements' RS256
//      signatures, and the public statement hashes the SPKI Node makes of the key's JWK.
//
// Environment (set by run_mhsm.sh): VAULT_URL, VAULT_TOKEN_FILE, NODE_EXTRA_CA_CERTS.
import {
  X509Certificate, createCipheriv, createDecipheriv, createHash, createPublicKey, randomBytes,
  verify as nodeVerify,
} from "node:crypto";
import { readFileSync } from "node:fs";

import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { need, check, refused, vaultSession } from "./lib.mjs";

const { url, credential, clientOptions } = vaultSession();
const keys = new KeyClient(url, credential, clientOptions);

function nodeCipher(name, key, iv, data, { aad, tag, decrypt, padding = true } = {}) {
  const c = decrypt ? createDecipheriv(name, key, iv) : createCipheriv(name, key, iv);
  c.setAutoPadding(padding);
  if (aad) {
    c.setAAD(aad);
  }
  if (tag) {
    c.setAuthTag(tag);
  }
  const out = Buffer.concat([c.update(data), c.final()]);
  return decrypt || !name.endsWith("gcm") ? out : { ct: out, tag: c.getAuthTag() };
}

// 1. Keys.
const k256 = randomBytes(32);
const k128 = randomBytes(16);
const known = await keys.importKey("known", { kty: "oct-HSM", k: k256 });
check(known.keyType === "oct-HSM" && !known.key.k, "importKey of an oct-HSM key keeps k inside");
const known128 = await keys.importKey("known128", { kty: "oct-HSM", k: k128 });
const generated = await keys.createOctKey("generated", { hsm: true, keySize: 256 });
check(generated.keyType === "oct-HSM", "createOctKey makes an oct-HSM key");
const crypto = new CryptographyClient(known.id, credential, clientOptions);
const crypto128 = new CryptographyClient(known128.id, credential, clientOptions);
const cryptoGen = new CryptographyClient(generated.id, credential, clientOptions);

// 2. AES-GCM.
const message = randomBytes(1024);
const aad = Buffer.from("keyport interop aad");
const gcm = await crypto.encrypt({ algorithm: "A256GCM", plaintext: message,
  additionalAuthenticatedData: aad });
check(gcm.iv?.length === 12 && gcm.authenticationTag?.length === 16,
  "A256GCM encrypt returns the HSM's 12-byte IV and a 16-byte tag");
check(nodeCipher("aes-256-gcm", k256, gcm.iv, gcm.result,
  { aad, tag: gcm.authenticationTag, decrypt: true }).equals(message),
  "Node's aes-256-gcm decrypts the vault's ciphertext");
const back = await crypto.decrypt({ algorithm: "A256GCM", ciphertext: gcm.result, iv: gcm.iv,
  authenticationTag: gcm.authenticationTag, additionalAuthenticatedData: aad });
check(Buffer.from(back.result).equals(message), "A256GCM decrypt in the vault gives the message");
const nodeIv = randomBytes(12);
const nodeGcm = nodeCipher("aes-256-gcm", k256, nodeIv, message, { aad });
const fromNode = await crypto.decrypt({ algorithm: "A256GCM", ciphertext: nodeGcm.ct, iv: nodeIv,
  authenticationTag: nodeGcm.tag, additionalAuthenticatedData: aad });
check(Buffer.from(fromNode.result).equals(message), "the vault decrypts Node's AES-256-GCM");
const badTag = Buffer.from(gcm.authenticationTag);
badTag[0] ^= 1;
await refused(crypto.decrypt({ algorithm: "A256GCM", ciphertext: gcm.result, iv: gcm.iv,
  authenticationTag: badTag, additionalAuthenticatedData: aad }), 400, "a GCM decrypt with a changed tag");
const again = await cryptoGen.encrypt({ algorithm: "A256GCM", plaintext: message });
const againBack = await cryptoGen.decrypt({ algorithm: "A256GCM", ciphertext: again.result,
  iv: again.iv, authenticationTag: again.authenticationTag });
check(Buffer.from(againBack.result).equals(message), "a generated oct-HSM key round-trips A256GCM");

// 3. AES-CBC (the SDK makes the IV for CBC).
const cbcpad = await crypto.encrypt({ algorithm: "A256CBCPAD", plaintext: message.subarray(0, 1000) });
check(cbcpad.iv?.length === 16, "A256CBCPAD encrypt reports the 16-byte IV");
check(nodeCipher("aes-256-cbc", k256, cbcpad.iv, cbcpad.result, { decrypt: true })
  .equals(message.subarray(0, 1000)), "Node's aes-256-cbc (PKCS#7) decrypts A256CBCPAD");
const cbcIv = randomBytes(16);
const nodeCbc = nodeCipher("aes-128-cbc", k128, cbcIv, message, { padding: false });
const cbcBack = await crypto128.decrypt({ algorithm: "A128CBC", ciphertext: nodeCbc, iv: cbcIv });
check(Buffer.from(cbcBack.result).equals(message), "the vault decrypts Node's AES-128-CBC (A128CBC)");
const cbc = await crypto128.encrypt({ algorithm: "A128CBC", plaintext: message, iv: cbcIv });
check(Buffer.from(cbc.result).equals(nodeCbc), "A128CBC with the caller's IV equals Node's bytes");

// 4. Key wrap with and without padding.
const dek20 = randomBytes(20);
const kwp = await crypto.wrapKey("CKM_AES_KEY_WRAP_PAD", dek20);
const nodeKwp = nodeCipher("id-aes256-wrap-pad", k256, Buffer.from("a65959a6", "hex"), dek20);
check(Buffer.from(kwp.result).equals(nodeKwp),
  "CKM_AES_KEY_WRAP_PAD of 20 bytes equals Node's id-aes256-wrap-pad (RFC 5649)");
const kwpBack = await crypto.unwrapKey("CKM_AES_KEY_WRAP_PAD", nodeKwp);
check(Buffer.from(kwpBack.result).equals(dek20), "unwrapKey CKM_AES_KEY_WRAP_PAD gives the 20 bytes");
const dek32 = randomBytes(32);
const kw = await crypto.wrapKey("CKM_AES_KEY_WRAP", dek32);
const nodeKw = nodeCipher("id-aes256-wrap", k256, Buffer.from("a6a6a6a6a6a6a6a6", "hex"), dek32);
check(Buffer.from(kw.result).equals(nodeKw), "CKM_AES_KEY_WRAP equals Node's id-aes256-wrap (RFC 3394)");
const a256kw = await crypto.wrapKey("A256KW", dek32);
check(Buffer.from(a256kw.result).equals(nodeKw), "A256KW is the same RFC 3394 wrap");

// 5. Random bytes from the HSM.
const random = await keys.getRandomBytes(32);
check(random.length === 32, "getRandomBytes(32) returns 32 bytes");
await refused(keys.getRandomBytes(129), 400, "getRandomBytes(129)");
// 6. SIMULATED key attestation.
const ec = await keys.createEcKey("attested", { hsm: true, curve: "P-256" });
const attested = await keys.getKeyAttestation("attested");
const att = attested.properties.attestation;
check(att && att.version === "keyport-simulated-1.0", "getKeyAttestation returns keyport's attestation");
const pems = Buffer.from(att.certificatePemFile).toString("utf8")
  .match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g);
const leaf = new X509Certificate(pems[0]);
const ca = new X509Certificate(readFileSync(need("NODE_EXTRA_CA_CERTS")));
check(leaf.verify(ca.publicKey) && leaf.issuer === ca.subject,
  "Node's X509Certificate: the attestation certificate is signed by the vault CA");
function statement(bytes) {
  const [h, p, s] = Buffer.from(bytes).toString("utf8").split(".");
  check(nodeVerify("sha256", Buffer.from(`${h}.${p}`), leaf.publicKey, Buffer.from(s, "base64url")),
    "Node's crypto.verify accepts a statement's RS256 signature");
  return JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
}
const priv = statement(att.privateKeyAttestation);
check(priv.simulated === true && priv.kid === ec.id && priv.attributes.CKA_LOCAL === true,
  "the private key statement names the key, says simulated, and CKA_LOCAL (generated in the token)");
const pub = statement(att.publicKeyAttestation);
const spki = createPublicKey({ key: { kty: "EC", crv: ec.key.crv, x: Buffer.from(ec.key.x).toString("base64url"),
  y: Buffer.from(ec.key.y).toString("base64url") }, format: "jwk" }).export({ type: "spki", format: "der" });
check(pub.spki_sha256 === createHash("sha256").update(spki).digest("hex"),
  "the public key statement hashes the SPKI of the key's JWK");
console.log("mhsm_crypto.mjs: all checks passed");
