// SPDX-License-Identifier: Apache-2.0
// Secure Key Release in the simulated vault (Key Vault REST API "Release"; Microsoft Learn,
// policy-grammar):
//
//   POST /keys/{name}[/{version}]/release   body {"target": <attestation JWT>, "nonce"?, "enc"?}
//   -> 200 {"value": <compact JWS, RS256, x5c chain to the vault CA>}
//
// The release of one version, in this order (every outcome is one audit row "ReleaseKey"):
//   1. the request: `target` a non-empty string, `nonce` a string when present, `enc` one of
//      CKM_RSA_AES_KEY_WRAP (default), RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384 -- else 400;
//   2. the key: exportable, enabled, inside its nbf/exp window, with a release policy that
//      parses -- else 403;
//   3. the vault token can wrap with `enc` (SoftHSM 2.6.1 does OAEP with SHA-1 only) -- else 400
//      naming the limitation;
//   4. the token (skr::AttestationVerifier): signed by an authority the vault trusts, one of the
//      policy's authorities, valid now (vault clock, bounded skew), with a usable runtime key in
//      x-ms-runtime.keys -- else 403;
//   5. the policy (skr::evaluate) allows the token's claims -- else 403;
//   6. the key is wrapped INSIDE the vault token to the runtime key (pkcs11/wrap.h: RSA-OAEP of
//      a fresh AES-256 session key || AES-KWP of the key), so it never exists in clear outside
//      the HSM; the response is built and signed (skr::build_release_response).
// Every 403 carries the same code (Forbidden) and message, whatever the check that failed: the
// reason goes to the audit log only, so a caller learns nothing about the policy or which
// claim missed.
//
// Trust in attestation authorities (the vault folder's trusted-authorities.json, re-read when
// it changes):
//   {"authorities": [
//      {"issuer": "https://...", "jwks": {"keys": [...]}},                 keys given here
//      {"issuer": "https://...", "openid": {"ca_file"?: PEM path,          keys found by OpenID
//                                            "connect_to"?: {host: "ip:port"}}}]}   discovery
// (`keyport attest init` writes the first form for its simulated authority.)
//
// The signing identity (THIS IS A SIMULATION: the key sits in a file, as the vault CA's does):
// DIR/tls/release-signing-key.pem (RSA-2048, mode 0600) and DIR/tls/release-signing.pem, a
// certificate for the vault host issued by the vault CA DIR/tls/ca.pem (vault/tls.h), reissued
// when missing, expiring within 30 days, not issued by the current CA, or not for the host.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json.h"
#include "vault/vault.h"

namespace keyport::vault {

inline constexpr const char* kTrustedAuthoritiesFile = "trusted-authorities.json";
inline constexpr const char* kReleaseSigningCert = "release-signing.pem";
inline constexpr const char* kReleaseSigningKey = "release-signing-key.pem";

struct ReleaseOptions {
  // Accepted clock distance for token exp/nbf/iat (0..300 s).
  std::int64_t clock_skew_seconds = 60;
  // The trust file; default DIR/trusted-authorities.json.
  std::optional<std::filesystem::path> trusted_authorities;
};

// Releases keys of one Vault (which must outlive it). Thread-safe.
class ReleaseService {
 public:
  explicit ReleaseService(Vault& vault, ReleaseOptions options = {});
  ~ReleaseService();
  ReleaseService(const ReleaseService&) = delete;
  ReleaseService& operator=(const ReleaseService&) = delete;

  // ReleaseKey: `params` is KeyReleaseParameters, `api_version` the request's (echoed in the
  // JWS). Returns {"value": <JWS>}, or BadParameter (400), Forbidden (403, one message for every
  // refusal), KeyNotFound (404), or an internal error.
  Result<Json> release(const CallContext& ctx, std::string_view name, std::string_view version,
                       const Json& params, std::string_view api_version);

  // The vault CA certificate (PEM) release responses chain to; creates the signing identity
  // (and the CA, if the vault has none yet) on first use.
  Result<std::string> vault_ca_pem();

  struct State;

 private:
  Result<std::shared_ptr<const State>> state();

  Vault& m_vault;
  ReleaseOptions m_options;
  std::mutex m_mutex;
  std::shared_ptr<const State> m_state;
};

// The one message of every 403 a release answers.
inline constexpr const char* kReleaseRefused =
    "The key cannot be released: the request does not meet the key's release conditions "
    "(the vault's audit log records why).";

}  // namespace keyport::vault
