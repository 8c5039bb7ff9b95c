// SPDX-License-Identifier: Apache-2.0
// Both ends of the Release Key response (Key Vault REST API "Release", azure-rest-api-specs
// keys.json):
//
//   HTTP 200 {"value": "<compact JWS>"}
//   header  {"alg": "RS256", "kid": <upper-case hex SHA-1 of the leaf certificate>,
//            "x5t": <base64url SHA-1>, "x5t#S256": <base64url SHA-256>, "typ": "JWT",
//            "x5c": [<leaf DER, standard base64>, <intermediate>..., <root>]}
//   payload {"request":  {"api-version", "enc", "kid" (the requested key URL), "nonce"?},
//            "response": {"key": {"key": {<public JWK>, "key_hsm": <base64url(key_hsm JSON)>},
//                                 "attributes", "tags", "release_policy"}}}
//   key_hsm {"schema_version": "1.0",
//            "header": {"kid": <runtime key kid>, "alg": "dir", "enc": <request.enc>},
//            "ciphertext": <base64url(RSA-OAEP(k) || AES-KWP(k, key material))>}
//
// The vault side calls build_release_response() with the blob it wrapped (to the token's runtime
// key) and its signing key and chain. The enclave side calls verify_release_response(), which
// checks the chain against the vault CA it was given, the signature with the leaf, the header's
// kid/x5t/x5t#S256 against the leaf, and the payload's shape; then unwrap_released_key() opens
// key_hsm with the runtime private key (software); enclave/ (unwrap_release_in_token) does it
// inside a PKCS#11 token.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "byok/public_key.h"
#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "core/secret.h"
#include "skr/jws.h"
#include "skr/key_resolver.h"

namespace keyport::skr {

// The decoded key_hsm of a release.
struct KeyHsm {
  std::string schema_version;  // "1.0"
  std::string kid;             // the runtime key's kid
  WrapAlg enc = WrapAlg::kRsaAesKeyWrap;
  Bytes ciphertext;
};

// base64url (no padding) of {"schema_version":"1.0","header":{"kid","alg":"dir","enc"},
// "ciphertext"}.
std::string encode_key_hsm(std::string_view runtime_kid, WrapAlg enc,
                           std::span<const std::uint8_t> ciphertext);
// Decodes and checks key_hsm: exact members, schema_version "1.0", alg "dir", known enc.
// kFormat (detail REL-KEY-HSM) otherwise.
Result<KeyHsm> decode_key_hsm(std::string_view key_hsm);

// What the vault puts in a release response.
struct ReleaseResponseInput {
  std::string api_version = "7.4";
  // The key URL as requested (no version when none was given).
  std::string request_kid;
  WrapAlg enc = WrapAlg::kRsaAesKeyWrap;
  // The request's nonce; echoed as request.nonce when set (docs/skr.md, open question 8).
  std::optional<std::string> nonce;
  // The KeyBundle of the released version as GET returns it: {"key": {kid, kty, key_ops, public
  // members}, "attributes", "tags", "release_policy"}. key.key_hsm is added here; private or
  // secret members in "key" are refused.
  Json key_bundle;
  // kid of the runtime key from the attestation token, and the RSA-AES blob of the key material
  // wrapped to it with `enc` (byok::rsa_aes_wrap or the token's equivalent).
  std::string runtime_kid;
  Bytes wrapped_key;
};

// What a release response takes from its signing identity, worked out once: the protected
// header (x5c, x5t, x5t#S256, kid) and the leaf certificate's key. Parsing the chain and the leaf
// key cost more than the RS256 signature itself, so a vault keeps one of these per identity.
struct ReleaseSigningIdentity {
  Json header;
  VerificationKey leaf_key;

  // `chain` is the signing certificate first, then its issuers (DER); the signer must sign RS256
  // and hold chain[0]'s key, which is checked by signing and verifying a probe
  // (kInvalidArgument otherwise).
  static Result<ReleaseSigningIdentity> create(const JwsSigner& signer,
                                               const std::vector<Bytes>& chain);
};

// Builds the compact JWS of a release response (the HTTP body is {"value": <it>}), signed by
// `signer` under `identity`, and verifies it with the leaf's key before handing it out (a signer
// that does not hold that key, or a faulty signature, is kInvalidArgument).
Result<std::string> build_release_response(const ReleaseResponseInput& input,
                                           const JwsSigner& signer,
                                           const ReleaseSigningIdentity& identity);
// The same with the identity worked out for this one call.
Result<std::string> build_release_response(const ReleaseResponseInput& input,
                                           const JwsSigner& signer,
                                           const std::vector<Bytes>& chain);

struct ReleaseTrust {
  // PEM certificate(s) the x5c chain must lead to (the simulated vault's CA).
  std::string vault_ca_pem;
  // When set, the leaf must be valid for this DNS name or IP (as SIDECAR checks the vault host).
  std::string vault_host;
  // When set, request.nonce must be present and equal.
  std::optional<std::string> expected_nonce;
  Clock clock;  // certificate validity time; empty = now
};

// A release response whose signature, chain and payload shape were checked.
class VerifiedRelease {
 public:
  const Json& payload() const { return m_payload; }
  // response.key.key without key_hsm: the released key's public JWK (kid, kty, key_ops, n/e...).
  const Json& key_jwk() const { return m_key_jwk; }
  const std::string& key_kid() const { return m_key_kid; }
  // "RSA-HSM", "EC-HSM", "oct-HSM" (or without -HSM), and the family it implies.
  const std::string& kty() const { return m_kty; }
  KeyFamily family() const { return m_family; }
  // RSA and EC: the public key from the JWK.
  const std::optional<byok::PublicKey>& public_key() const { return m_public; }
  const KeyHsm& key_hsm() const { return m_key_hsm; }
  const std::string& signer_subject() const { return m_signer_subject; }

 private:
  friend Result<VerifiedRelease> verify_release_response(std::string_view, const ReleaseTrust&);
  VerifiedRelease() = default;
  Json m_payload;
  Json m_key_jwk;
  std::string m_key_kid;
  std::string m_kty;
  KeyFamily m_family = KeyFamily::kRsa;
  std::optional<byok::PublicKey> m_public;
  KeyHsm m_key_hsm;
  std::string m_signer_subject;
};

// Verifies a release response: `body` is the HTTP body {"value": "<JWS>"} or the bare compact
// JWS. Failures: kIntegrityFailure with detail REL-CHAIN (x5c does not lead to the CA or names
// another host), REL-SIGNATURE, REL-HEADER (kid/x5t/x5t#S256 not the leaf's, alg not RS256);
// kFormat with REL-PAYLOAD / REL-KEY-HSM (shape, enc mismatch between request and key_hsm);
// kAttestationInvalid with REL-NONCE.
Result<VerifiedRelease> verify_release_response(std::string_view body, const ReleaseTrust& trust);

// The released key, unwrapped.
struct ReleasedKey {
  KeySpec spec;
  // PKCS#8 PrivateKeyInfo DER (RSA, EC) or the raw AES key.
  SecretBytes material;
  Json public_jwk;  // from the response, for comparison
  std::string kid;  // the released key's kid
};

// Unwraps key_hsm with the runtime private key (PKCS#8 DER, in software). kInvalidArgument
// (detail REL-KID) when key_hsm's header kid is not `runtime_kid`; integrity_error() for any
// unwrap failure; kIntegrityFailure (detail REL-MISMATCH) when the unwrapped private key does not
// belong to the response's public JWK, or an AES key has an impossible length.
Result<ReleasedKey> unwrap_released_key(const VerifiedRelease& release,
                                        const SecretBytes& runtime_private_der,
                                        std::string_view runtime_kid);

}  // namespace keyport::skr
