// SPDX-License-Identifier: Apache-2.0
// Independent verification of keyport's JOSE output with the npm "jose" library (panva/jose):
//   - attestation tokens minted by keyport's SIMULATED authority verify with its JWKS;
//   - a release response built by skr::build_release_response verifies with its x5c leaf key;
//   - tampered copies of both are rejected;
//   - keyport's runtime kid equals jose's RFC 7638 thumbprint of the runtime key.
// Usage: node verify.mjs DIR   (DIR written by keyport_jose_interop_tests)
// Exit: 0 all as expected, 1 a check failed, 3 jose is not installed (run scripts/setup.sh).
import { readFileSync } from "node:fs";
import { join } from "node:path";

let jose;
try {
  jose = await import("jose");
} catch (e) {
  console.error(
    "interop/jose: the npm package jose is not installed in tests/interop/jose/node_modules; " +
      "run scripts/setup.sh (npm ci --prefix tests/interop/jose)",
  );
  process.exit(3);
}

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node verify.mjs DIR");
  process.exit(2);
}
const read = (name) => readFileSync(join(dir, name), "utf8").trim();
const results = [];
const check = (name, ok, detail = "") => {
  results.push({ name, ok, detail });
};

const now = new Date(Number(read("now.txt")) * 1000);
const issuer = read("issuer.txt");
const jwks = jose.createLocalJWKSet(JSON.parse(read("jwks.json")));

async function verifyToken(file) {
  const { payload, protectedHeader } = await jose.jwtVerify(read(file), jwks, {
    issuer,
    algorithms: ["RS256"],
    currentDate: now,
    typ: "JWT",
  });
  return { payload, protectedHeader };
}

async function verifyRelease(file) {
  const jws = JSON.parse(read(file)).value;
  const header = jose.decodeProtectedHeader(jws);
  const leaf = `-----BEGIN CERTIFICATE-----\n${header.x5c[0].match(/.{1,64}/g).join("\n")}\n-----END CERTIFICATE-----\n`;
  const key = await jose.importX509(leaf, "RS256");
  const { payload } = await jose.compactVerify(jws, key, { algorithms: ["RS256"] });
  return { header, payload: JSON.parse(new TextDecoder().decode(payload)) };
}

// 1. Attestation tokens, one per platform type.
for (const type of ["sevsnpvm", "tdxvm", "sgx", "azurevm"]) {
  try {
    const { payload, protectedHeader } = await verifyToken(`token-${type}.jwt`);
    check(
      `token ${type} verifies`,
      payload["x-keyport-simulated"] === true &&
        protectedHeader.kid === JSON.parse(read("jwks.json")).keys[0].kid &&
        payload["x-ms-attestation-type"] === type &&
        Array.isArray(payload["x-ms-runtime"].keys),
    );
    if (type === "sevsnpvm") {
      const rk = payload["x-ms-runtime"].keys[0];
      const thumb = await jose.calculateJwkThumbprint({ kty: rk.kty, n: rk.n, e: rk.e });
      check("runtime kid is the RFC 7638 thumbprint", rk.kid === thumb, `${rk.kid} vs ${thumb}`);
    }
  } catch (e) {
    check(`token ${type} verifies`, false, String(e));
  }
}
try {
  await verifyToken("token-tampered.jwt");
  check("tampered token is rejected", false, "it verified");
} catch (e) {
  check("tampered token is rejected", e instanceof jose.errors.JWSSignatureVerificationFailed,
        e.code);
}

// 2. The release response.
try {
  const { header, payload } = await verifyRelease("release.json");
  const keyHsm = JSON.parse(
    new TextDecoder().decode(jose.base64url.decode(payload.response.key.key.key_hsm)),
  );
  check(
    "release response verifies with its x5c leaf",
    header.alg === "RS256" &&
      header.typ === "JWT" &&
      header.x5t === read("release-x5t.txt") &&
      header.kid === read("release-kid.txt") &&
      payload.request.enc === keyHsm.header.enc &&
      keyHsm.schema_version === "1.0" &&
      keyHsm.header.alg === "dir" &&
      keyHsm.header.kid === read("runtime-kid.txt"),
  );
} catch (e) {
  check("release response verifies with its x5c leaf", false, String(e));
}
try {
  await verifyRelease("release-tampered.json");
  check("tampered release response is rejected", false, "it verified");
} catch (e) {
  check("tampered release response is rejected",
        e instanceof jose.errors.JWSSignatureVerificationFailed, e.code);
}

let failed = 0;
for (const r of results) {
  console.log(`${r.ok ? "ok  " : "FAIL"} ${r.name}${r.detail ? ` (${r.detail})` : ""}`);
  failed += r.ok ? 0 : 1;
}
console.log(`interop/jose: ${results.length - failed}/${results.length} checks passed`);
process.exit(failed === 0 ? 0 : 1);
