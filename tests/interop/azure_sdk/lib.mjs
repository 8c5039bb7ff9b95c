// SPDX-License-Identifier: Apache-2.0
// Shared by the Node flows in this folder (byok_flow, release_flow, rotation, mhsm_crypto,
// backup_flow): the environment their run_*.sh driver sets, the checks that print what passed,
// and the bearer-token credential for `keyport vault serve`.
import { readFileSync } from "node:fs";

export function need(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`environment variable ${name} is not set (run this through its run_*.sh driver)`);
  }
  return v;
}

export function check(condition, what) {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
  console.log(`ok: ${what}`);
}

// Resolves when `promise` is rejected with HTTP `status` (the error is returned), fails otherwise.
export async function refused(promise, status, what) {
  try {
    await promise;
  } catch (e) {
    check(e.statusCode === status, `${what} is refused with ${status} (got ${e.statusCode})`);
    return e;
  }
  throw new Error(`check failed: ${what} was accepted`);
}

// The vault the driver started: its URL, a credential handing out the token of VAULT_TOKEN_FILE,
// and client options for a vault on 127.0.0.1 (no challenge resource can cover it). The driver
// sets NODE_EXTRA_CA_CERTS to the vault CA.
export function vaultSession() {
  const url = need("VAULT_URL");
  const token = readFileSync(need("VAULT_TOKEN_FILE"), "utf8").trim();
  need("NODE_EXTRA_CA_CERTS");
  const credential = {
    async getToken() {
      return { token, expiresOnTimestamp: Date.now() + 3600 * 1000 };
    },
  };
  return { url, token, credential, clientOptions: { disableChallengeResourceVerification: true } };
}
