// SPDX-License-Identifier: Apache-2.0
// Attestation-token verification (Microsoft Learn, policy-grammar "Attestation Token Requirements";
// "Microsoft Azure Attestation"), fail-closed in the manner of Tink's JwtValidator: a VerifiedToken
// exists only when every check passed, and only the verifier can make one.
//
// verify() checks, in this order:
//   1. the compact JWS (skr/jws.h: size <= 64 KiB, no JSON serialisation, three parts, strict
//      base64url, header without duplicate members or "crit", alg in {RS256, PS256, ES256});
//   2. "typ", when present, is "JWT";
//   3. the payload is a JSON object without duplicate members;
//   4. "iss" is a non-empty string naming a trusted authority (VerifierOptions::expected_issuers
//      and the KeyResolver must both accept it);
//   5. the signature verifies with the authority's key whose kid matches the header's, or, when
//      no kid matches, with any of its keys (MAA FAQ); the key must fit the alg;
//   6. "exp" is required; now < exp + skew; "nbf" (if any) <= now + skew; "iat" (if any)
//      <= now + skew (skew default 60 s, at most 300);
//   7. x-ms-runtime.keys holds a suitable runtime key: the first RSA key (>= 2048 bits) with a
//      kid, usable for encryption (key_ops contains "encrypt" or use is "enc") (spec §4.2).
// Every refusal is kAttestationInvalid with a stable sub-code in Error::detail() (the JWS-* codes
// of skr/jws.h and JWT-TYP, JWT-PAYLOAD, JWT-ISS, JWT-UNTRUSTED-ISS, JWT-TIME, JWT-EXPIRED,
// JWT-NOT-YET-VALID, JWT-IAT, ATT-KEYS, ATT-JWKS-HTTP, ATT-RUNTIME-MISSING, ATT-RUNTIME-KEY).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "byok/public_key.h"
#include "core/error.h"
#include "core/json.h"
#include "skr/jws.h"
#include "skr/key_resolver.h"

namespace keyport::skr {

// The key the released key gets wrapped to: from the token's x-ms-runtime.keys.
struct RuntimeKey {
  std::string kid;
  byok::PublicKey public_key;
  Json jwk;               // the JWK as the token carries it
  std::size_t index = 0;  // its position in x-ms-runtime.keys
};

// Picks the runtime key from a claims object (step 7 above), or fails with ATT-RUNTIME-MISSING /
// ATT-RUNTIME-KEY and, for the latter, why each key was passed over.
Result<RuntimeKey> select_runtime_key(const Json& claims);

// A token whose signature, issuer, validity period and runtime key have been checked.
class VerifiedToken {
 public:
  // The whole payload (the claims a release policy is evaluated against).
  const Json& claims() const { return m_claims; }
  // The "iss" claim as written in the token.
  const std::string& issuer() const { return m_issuer; }
  const RuntimeKey& runtime_key() const { return m_runtime; }
  // kid of the authority key that verified the signature ("" if that JWK had none).
  const std::string& signing_kid() const { return m_signing_kid; }
  std::int64_t expires_at() const { return m_exp; }

 private:
  friend class AttestationVerifier;
  VerifiedToken(Json claims, std::string issuer, RuntimeKey runtime, std::string signing_kid,
                std::int64_t exp)
      : m_claims(std::move(claims)),
        m_issuer(std::move(issuer)),
        m_runtime(std::move(runtime)),
        m_signing_kid(std::move(signing_kid)),
        m_exp(exp) {}
  Json m_claims;
  std::string m_issuer;
  RuntimeKey m_runtime;
  std::string m_signing_kid;
  std::int64_t m_exp = 0;
};

struct VerifierOptions {
  // Accepted distance between the clocks (seconds, 0..300).
  std::int64_t clock_skew_seconds = 60;
  // Empty: the system clock. Tests fix it (Tink's SetFixedNow).
  Clock clock;
  JwsLimits limits;
  // When not empty, the token issuer must also be one of these (e.g. the authorities of the
  // policy about to be evaluated), on top of the resolver trusting it.
  std::vector<std::string> expected_issuers;
  // Azure's token requirements want an x5c in every authority JWK (spec §4.3); MAA's own mock
  // has none, so this is off by default.
  bool require_x5c = false;
};

class AttestationVerifier {
 public:
  // kInvalidArgument when the resolver is null or the skew is outside 0..300 s.
  static Result<AttestationVerifier> create(std::shared_ptr<KeyResolver> keys,
                                            VerifierOptions options = {});

  Result<VerifiedToken> verify(std::string_view token) const;
  // As verify(), with expected_issuers replaced for this call.
  Result<VerifiedToken> verify(std::string_view token,
                               const std::vector<std::string>& expected_issuers) const;

 private:
  AttestationVerifier(std::shared_ptr<KeyResolver> keys, VerifierOptions options)
      : m_keys(std::move(keys)), m_options(std::move(options)) {}
  std::shared_ptr<KeyResolver> m_keys;
  VerifierOptions m_options;
};

}  // namespace keyport::skr
