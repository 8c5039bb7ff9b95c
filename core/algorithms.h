// SPDX-License-Identifier: Apache-2.0
// The vocabulary shared by every layer: which keys keyport handles (KeySpec) and which BYOK
// transfer algorithm wraps them (WrapAlg, the `enc` of a .byok header).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace keyport {

enum class KeyFamily { kRsa, kEc, kAes };

enum class Curve { kP256, kP384, kP521, kP256K };

// One portable key type, e.g. rsa-3072, ec-p256k, aes-256.
struct KeySpec {
  KeyFamily family = KeyFamily::kRsa;
  unsigned bits = 0;  // RSA modulus bits, EC field bits, AES key bits
  std::optional<Curve> curve;

  bool operator==(const KeySpec&) const = default;

  // "rsa-2048", "ec-p256k", "aes-128".
  std::string name() const;
  // The JWK kty of the HSM-backed Azure key: "RSA-HSM", "EC-HSM", "oct-HSM".
  std::string_view azure_kty() const;
  // `az keyvault key import --kty`: "RSA", "EC", "oct".
  std::string_view azure_cli_kty() const;
};

// All ten presets, in a stable order (RSA, EC, AES; small to large).
const std::vector<KeySpec>& all_key_specs();
// Parses a preset name (case-insensitive). kInvalidArgument lists the valid names on failure.
Result<KeySpec> parse_key_spec(std::string_view name);

// JWK / Azure curve names: "P-256", "P-384", "P-521", "P-256K".
std::string_view curve_jwk_name(Curve c);
Result<Curve> curve_from_jwk_name(std::string_view name);  // also accepts "SECP256K1"
// OpenSSL group names: "prime256v1", "secp384r1", "secp521r1", "secp256k1".
std::string_view curve_openssl_name(Curve c);
// DER of the namedCurve OBJECT IDENTIFIER (what CKA_EC_PARAMS holds).
std::span<const std::uint8_t> curve_oid_der(Curve c);
Result<Curve> curve_from_oid_der(std::span<const std::uint8_t> der);
unsigned curve_bits(Curve c);
// Size in bytes of one field element (the length of x, y and d in a JWK).
unsigned curve_field_bytes(Curve c);

enum class OaepHash { kSha1, kSha256, kSha384 };
std::string_view to_string(OaepHash h);

// The `enc` of a BYOK transfer blob: RSA-OAEP(hash) of an AES-256 key || AES-KWP of the target.
enum class WrapAlg { kRsaAesKeyWrap, kRsaAesKeyWrap256, kRsaAesKeyWrap384 };

// "CKM_RSA_AES_KEY_WRAP", "RSA_AES_KEY_WRAP_256", "RSA_AES_KEY_WRAP_384".
std::string_view wrap_alg_name(WrapAlg alg);
Result<WrapAlg> parse_wrap_alg(std::string_view name);
OaepHash wrap_alg_hash(WrapAlg alg);
const std::vector<WrapAlg>& all_wrap_algs();

// The transfer (ephemeral) AES key is always 256 bits, as Azure's own tools use.
inline constexpr std::size_t kTransferKeyBytes = 32;

}  // namespace keyport
