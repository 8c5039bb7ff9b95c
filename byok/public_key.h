// SPDX-License-Identifier: Apache-2.0
// A public key (RSA or EC) as a value: its DER SubjectPublicKeyInfo plus the decoded fields
// keyport needs. No OpenSSL type appears in this header.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"

namespace keyport::byok {

class PublicKey {
 public:
  // DER SubjectPublicKeyInfo (what `az keyvault key download --encoding DER` writes).
  static Result<PublicKey> from_spki_der(std::span<const std::uint8_t> der);
  // PEM "PUBLIC KEY" (SPKI, what `az keyvault key download` writes) or "RSA PUBLIC KEY" (PKCS#1).
  // Exactly one PEM block; anything else is kFormat.
  static Result<PublicKey> from_pem(std::string_view pem);
  // A JWK object: kty RSA / RSA-HSM (n, e) or EC / EC-HSM (crv, x, y). Private members
  // (d, p, q, dp, dq, qi, k) are refused with kInvalidArgument.
  static Result<PublicKey> from_jwk(const Json& jwk);
  // Big-endian unsigned modulus and exponent (leading zero bytes allowed).
  static Result<PublicKey> from_rsa_components(std::span<const std::uint8_t> n,
                                               std::span<const std::uint8_t> e);
  // Uncompressed point 04 || X || Y on the given curve; kFormat if not on the curve.
  static Result<PublicKey> from_ec_point(Curve curve, std::span<const std::uint8_t> point);

  KeyFamily family() const { return m_family; }
  // RSA modulus bits or EC curve bits.
  unsigned bits() const { return m_bits; }
  std::optional<Curve> curve() const { return m_curve; }

  const Bytes& spki_der() const { return m_spki; }
  std::string pem() const;  // "-----BEGIN PUBLIC KEY-----" ... with a trailing newline

  // RSA only (empty for EC): big-endian, no leading zeros.
  const Bytes& rsa_modulus() const { return m_n; }
  const Bytes& rsa_exponent() const { return m_e; }
  // EC only (empty for RSA): uncompressed point 04 || X || Y.
  const Bytes& ec_point() const { return m_point; }

  // JWK with kty "RSA" or "EC" (n/e or crv/x/y); callers add kid, key_ops, or the -HSM suffix.
  Json to_jwk() const;
  // Lowercase hex SHA-256 of the SPKI DER.
  std::string sha256_fingerprint() const;

  bool operator==(const PublicKey& other) const { return m_spki == other.m_spki; }

 private:
  PublicKey() = default;
  static Result<PublicKey> from_validated_spki(Bytes der);

  KeyFamily m_family = KeyFamily::kRsa;
  unsigned m_bits = 0;
  std::optional<Curve> m_curve;
  Bytes m_spki;
  Bytes m_n, m_e, m_point;
};

}  // namespace keyport::byok
