// SPDX-License-Identifier: Apache-2.0
// Test rig for keyport::skr: keys made with raw OpenSSL EVP (cached per process), a forger that
// assembles compact JWS from arbitrary header and payload text and signs them with code written
// here (not skr's), and a simulated authority in the process's scratch folder with a fixed clock.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "byok/public_key.h"
#include "core/encoding.h"
#include "core/json.h"
#include "core/ossl.h"
#include "core/secret.h"
#include "skr/attestation.h"
#include "skr/authority.h"
#include "skr/key_resolver.h"

namespace keyport::test::skr {

// The fixed "now" of the rig (2025-06-15T15:06:40Z).
inline constexpr std::int64_t kNow = 1750000000;

// An RSA key of `bits`, one per (slot, bits) per process.
EVP_PKEY& rsa_key(int slot, unsigned bits = 2048);
// A fresh EC key on the named curve ("P-256", "P-384").
ossl::UniquePtr<EVP_PKEY> make_ec_key(const char* group = "P-256");

SecretBytes pkcs8_der(const EVP_PKEY& key);
SecretBytes pkcs8_pem(const EVP_PKEY& key);
byok::PublicKey public_of(const EVP_PKEY& key);
// A JWK with kty/n/e or kty/crv/x/y of the key.
Json public_jwk(const EVP_PKEY& key);

// base64url of text.
std::string b64(std::string_view text);
// header64.payload64.sig64 from raw texts.
std::string assemble(std::string_view header_json, std::string_view payload_json,
                     std::span<const std::uint8_t> signature);
// The signing input of assemble().
std::string signing_input(std::string_view header_json, std::string_view payload_json);

// Raw OpenSSL signatures written for the tests: RSA PKCS#1 v1.5 or PSS with digest `md`,
// ECDSA as r||s of `coordinate_bytes` each, HMAC-SHA-256 with arbitrary key bytes.
Bytes rsa_sign(EVP_PKEY& key, const char* md, std::string_view input, bool pss = false);
Bytes ecdsa_sign(EVP_PKEY& key, const char* md, std::string_view input,
                 std::size_t coordinate_bytes);
Bytes hmac_sha256(std::span<const std::uint8_t> key, std::string_view input);

// Header and payload texts signed by `key` with RS256 via raw OpenSSL (not skr).
std::string forge_rs256(EVP_PKEY& key, std::string_view header_json, std::string_view payload_json);

// A simulated authority in the scratch folder, its trusted-authorities resolver, and a runtime
// key pair for the enclave.
class AuthorityRig {
 public:
  explicit AuthorityRig(const std::string& stem = "authority",
                        const std::string& url = keyport::skr::kDefaultAuthorityUrl);

  const keyport::skr::SimulatedAuthority& authority() const { return *m_authority; }
  const std::shared_ptr<keyport::skr::StaticKeyResolver>& resolver() const { return m_resolver; }
  EVP_PKEY& runtime_key() const { return rsa_key(7); }
  byok::PublicKey runtime_public() const { return public_of(runtime_key()); }
  SecretBytes runtime_private_der() const { return pkcs8_der(runtime_key()); }

  // A verifier trusting this authority, clock fixed at kNow (options.clock overridden).
  keyport::skr::AttestationVerifier verifier(keyport::skr::VerifierOptions options = {}) const;
  // Mints a token for runtime_public() issued at kNow.
  std::string mint(keyport::skr::MintOptions options = {}) const;
  // The claims mint() would sign.
  Json claims(keyport::skr::MintOptions options = {}) const;
  // Signs arbitrary claims with the authority's key (header overrides merged).
  std::string sign(const Json& payload, const Json& header_overrides = Json::object()) const;

 private:
  std::optional<keyport::skr::SimulatedAuthority> m_authority;
  std::shared_ptr<keyport::skr::StaticKeyResolver> m_resolver;
};

}  // namespace keyport::test::skr
