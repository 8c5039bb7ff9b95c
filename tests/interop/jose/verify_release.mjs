// SPDX-License-Identifier: Apache-2.0
// The npm "jose" library (panva/jose, not keyport's code) verifies a release response answered by
// `keyport vault serve`: the compact JWS verifies RS256 with the key of its x5c leaf certificate
// (jose.importX509), the header is the one Azure documents, the payload echoes the nonce and
// carries key_hsm; a tampered copy is rejected.
// Usage: node verify_release.mjs RESPONSE.json NONCE
// Exit: 0 verified, 1 a check failed, 3 jose is not installed (run scripts/setup.sh).
import { readFileSync } from "node:fs";

let jose;
try {
  jose = await import("jose");
} catch (e) {
  console.error("interop/jose: the npm package jose is not installed in tests/interop/jose/" +
    "node_modules; run scripts/setup.sh (npm ci --prefix tests/interop/jose)");
  process.exit(3);
}

const [file, nonce] = process.argv.slice(2);
if (!file) {
  console.error("usage: node verify_release.mjs RESPONSE.json NONCE");
  process.exit(2);
}
const jws = JSON.parse(readFileSync(file, "utf8")).value;
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? "ok" : "FAILED"}: jose: ${what}`);
  if (!ok) {
    failures.push(what);
  }
};

const header = jose.decodeProtectedHeader(jws);
const pem = `-----BEGIN CERTIFICATE-----\n${header.x5c[0].match(/.{1,64}/g).join("\n")}\n-----END CERTIFICATE-----\n`;
const leafKey = await jose.importX509(pem, "RS256");
const { payload } = await jose.compactVerify(jws, leafKey, { algorithms: ["RS256"] });
const body = JSON.parse(new TextDecoder().decode(payload));
check(header.alg === "RS256" && header.typ === "JWT", "header alg RS256, typ JWT");
check(/^[0-9A-F]{40}$/.test(header.kid) && typeof header["x5t#S256"] === "string",
  "header kid is the upper-case SHA-1 thumbprint, x5t#S256 present");
check(body.request?.nonce === nonce, "request.nonce echoes the client's nonce");
check(typeof body.response?.key?.key?.key_hsm === "string", "response.key.key.key_hsm present");
const parts = jws.split(".");
const tampered = `${parts[0]}.${parts[1].slice(0, 10)}${parts[1][10] === "A" ? "B" : "A"}${parts[1].slice(11)}.${parts[2]}`;
let rejected = false;
try {
  await jose.compactVerify(tampered, leafKey, { algorithms: ["RS256"] });
} catch {
  rejected = true;
}
check(rejected, "a tampered payload is rejected");
process.exit(failures.length === 0 ? 0 : 1);
