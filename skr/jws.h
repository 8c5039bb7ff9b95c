// SPDX-License-Identifier: Apache-2.0
// JSON Web Signature (RFC 7515), compact serialisation only, on OpenSSL EVP (ARCHITECTURE.md
// "JOSE" says why not cjose). The algorithm allow-list is RS256, PS256 and ES256: "none", every
// HMAC algorithm and anything else is refused before a key is looked at, and a key verifies only
// the algorithm its type fits (RSA >= 2048 bits: RS256/PS256; EC P-256: ES256), so the
// "HS256 keyed with the RSA public key" confusion has nowhere to land.
//
// Every failure carries a stable sub-code in Error::detail() (docs/skr.md lists them):
//   JWS-SIZE, JWS-JSON-SERIALIZATION, JWS-SEGMENTS, JWS-BASE64, JWS-HEADER, JWS-DUPLICATE,
//   JWS-ALG, JWS-CRIT, JWS-KEY, JWS-SIGNATURE.
// No OpenSSL type appears in this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "byok/public_key.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "core/secret.h"

namespace keyport::skr {

enum class JwsAlg { kRs256, kPs256, kEs256 };

// "RS256", "PS256", "ES256".
std::string_view to_string(JwsAlg alg);
// The allow-listed algorithm named exactly `name`; kUnsupported (detail JWS-ALG) for anything
// else, "none" and the HMAC family included.
Result<JwsAlg> parse_jws_alg(std::string_view name);

struct JwsLimits {
  std::size_t max_token_bytes = 64 * 1024;   // the whole compact string
  std::size_t max_header_bytes = 16 * 1024;  // decoded protected header JSON
  std::size_t max_payload_bytes = 64 * 1024;
  std::size_t max_json_depth = 32;
};

// A compact JWS, split and decoded; the signature is NOT verified. Parsing refuses: more than
// max_token_bytes, the JSON serialisation, anything but three dot-separated parts, an empty
// header or signature, base64url with padding or foreign characters, a header that is not a JSON
// object or has duplicate members, a missing or non-allow-listed "alg", and any "crit" header.
class CompactJws {
 public:
  static Result<CompactJws> parse(std::string_view compact, const JwsLimits& limits = {});

  const Json& header() const { return m_header; }
  JwsAlg alg() const { return m_alg; }
  // The header's "kid" ("" when absent).
  const std::string& kid() const { return m_kid; }
  const Bytes& payload() const { return m_payload; }
  // "<base64url header>.<base64url payload>": the bytes the signature covers.
  std::string_view signing_input() const { return m_signing_input; }
  const Bytes& signature() const { return m_signature; }
  // The payload as a JSON object (duplicate members, depth and size refused): kFormat with detail
  // JWT-PAYLOAD otherwise.
  Result<Json> payload_object(const JwsLimits& limits = {}) const;

 private:
  CompactJws() = default;
  Json m_header;
  JwsAlg m_alg = JwsAlg::kRs256;
  std::string m_kid;
  Bytes m_payload;
  std::string m_signing_input;
  Bytes m_signature;
};

// A public key that verifies JWS signatures, usually one member of a JWKS.
class VerificationKey {
 public:
  // From a JWK: kty "RSA" (>= 2048 bits, not a ROCA-weak modulus) or "EC" on P-256; "use", when
  // present, must be "sig"; "key_ops", when present, must contain "verify"; "alg", when present,
  // must be an allow-listed algorithm that fits the key type; private members are refused. With
  // "x5c" the key is the leaf certificate's, and must equal n/e (x/y) when those are given too.
  // kInvalidArgument or kUnsupported with detail JWS-KEY on refusal.
  static Result<VerificationKey> from_jwk(const Json& jwk);
  // A bare public key (a release response's x5c leaf, a test key), with an optional kid.
  static Result<VerificationKey> from_public_key(const byok::PublicKey& key, std::string kid = "");

  const std::string& kid() const { return m_kid; }
  const byok::PublicKey& public_key() const { return m_key; }
  std::optional<JwsAlg> alg() const { return m_alg; }
  // DER certificates of the JWK's x5c (leaf first); empty without x5c.
  const std::vector<Bytes>& x5c() const { return m_x5c; }
  // True when this key may verify `alg`: the key type fits and the JWK's own "alg" (if any)
  // names it.
  bool fits(JwsAlg alg) const;

 private:
  VerificationKey(byok::PublicKey key) : m_key(std::move(key)) {}
  byok::PublicKey m_key;
  std::string m_kid;
  std::optional<JwsAlg> m_alg;
  std::vector<Bytes> m_x5c;
};

// A parsed JWKS: the usable keys, and why the other members were skipped.
struct Jwks {
  std::vector<VerificationKey> keys;
  std::vector<std::string> skipped;  // "keys[2] (kid \"x\"): <reason>"
};
// Reads {"keys": [...]}. Fails (kFormat/kInvalidArgument, detail JWS-KEY) when it is not a JWKS,
// when any member carries private key material, when two keys share a kid, or when no key is
// usable; keys of other types or algorithms are skipped and listed.
Result<Jwks> parse_jwks(const Json& jwks);

// True when an RSA modulus has the structure of keys made by the Infineon library flawed by ROCA
// (CVE-2017-15361): N mod p lies in the subgroup generated by 65537 for each small prime tested.
bool is_roca_modulus(std::span<const std::uint8_t> modulus);

// Verifies a raw JWS signature over `input`: RS256 (PKCS#1 v1.5, SHA-256), PS256 (PSS, SHA-256,
// MGF1-SHA-256, 32-byte salt) or ES256 (P-256, SHA-256, r||s of exactly 64 bytes).
// kIntegrityFailure (detail JWS-SIGNATURE) when it does not verify; kInvalidArgument (detail
// JWS-KEY) when the key does not fit the algorithm.
Status verify_signature(JwsAlg alg, const byok::PublicKey& key, std::span<const std::uint8_t> input,
                        std::span<const std::uint8_t> signature);

// Verifies `jws` with `key` (verify_signature over the signing input, after key.fits()).
Status verify_jws(const CompactJws& jws, const VerificationKey& key);

// Something that produces JWS signatures: a key in a file (SoftwareSigner) or, in the vault, a
// key in its token.
class JwsSigner {
 public:
  virtual ~JwsSigner() = default;
  virtual JwsAlg alg() const = 0;
  // The JWS signature of `input` (for ES256, r||s).
  virtual Result<Bytes> sign(std::span<const std::uint8_t> input) const = 0;
};

// A private key held in memory (OpenSSL EVP): RSA for RS256/PS256, EC P-256 for ES256.
class SoftwareSigner final : public JwsSigner {
 public:
  // From PKCS#8 (PEM or DER), PKCS#1 or SEC1 PEM. kInvalidArgument when the key does not fit
  // `alg` (RSA < 2048 bits included).
  static Result<SoftwareSigner> from_private_key(const SecretBytes& pem_or_der, JwsAlg alg);
  SoftwareSigner(SoftwareSigner&&) noexcept;
  SoftwareSigner& operator=(SoftwareSigner&&) noexcept;
  ~SoftwareSigner() override;

  JwsAlg alg() const override { return m_alg; }
  Result<Bytes> sign(std::span<const std::uint8_t> input) const override;
  const byok::PublicKey& public_key() const { return m_public; }

 private:
  struct Impl;
  SoftwareSigner(std::unique_ptr<Impl> impl, JwsAlg alg, byok::PublicKey pub);
  std::unique_ptr<Impl> m_impl;
  JwsAlg m_alg;
  byok::PublicKey m_public;
};

// Builds a compact JWS of `payload` with `header` (its "alg" is set from the signer; the other
// members are kept, serialised compactly in nlohmann's member order).
Result<std::string> sign_compact(Json header, std::span<const std::uint8_t> payload,
                                 const JwsSigner& signer);

// The RFC 7638 JWK thumbprint (base64url SHA-256 of the required members in lexicographic
// order) of an RSA or EC public key.
std::string jwk_thumbprint(const byok::PublicKey& key);

}  // namespace keyport::skr
