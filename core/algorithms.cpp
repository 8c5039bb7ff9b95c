// SPDX-License-Identifier: Apache-2.0
#include "core/algorithms.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/encoding.h"

namespace keyport {
namespace {

// namedCurve OIDs (SEC 2 / RFC 5480): prime256v1 1.2.840.10045.3.1.7, secp384r1 1.3.132.0.34,
// secp521r1 1.3.132.0.35, secp256k1 1.3.132.0.10.
constexpr std::array<std::uint8_t, 10> kOidP256 = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                                   0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::array<std::uint8_t, 7> kOidP384 = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
constexpr std::array<std::uint8_t, 7> kOidP521 = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
constexpr std::array<std::uint8_t, 7> kOidP256K = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};

}  // namespace

std::string KeySpec::name() const {
  switch (family) {
    case KeyFamily::kRsa:
      return "rsa-" + std::to_string(bits);
    case KeyFamily::kAes:
      return "aes-" + std::to_string(bits);
    case KeyFamily::kEc:
      switch (curve.value_or(Curve::kP256)) {
        case Curve::kP256:
          return "ec-p256";
        case Curve::kP384:
          return "ec-p384";
        case Curve::kP521:
          return "ec-p521";
        case Curve::kP256K:
          return "ec-p256k";
      }
  }
  return "unknown";
}

std::string_view KeySpec::azure_kty() const {
  switch (family) {
    case KeyFamily::kRsa:
      return "RSA-HSM";
    case KeyFamily::kEc:
      return "EC-HSM";
    case KeyFamily::kAes:
      return "oct-HSM";
  }
  return "";
}

std::string_view KeySpec::azure_cli_kty() const {
  switch (family) {
    case KeyFamily::kRsa:
      return "RSA";
    case KeyFamily::kEc:
      return "EC";
    case KeyFamily::kAes:
      return "oct";
  }
  return "";
}

const std::vector<KeySpec>& all_key_specs() {
  static const std::vector<KeySpec> specs = {
      {KeyFamily::kRsa, 2048, std::nullopt}, {KeyFamily::kRsa, 3072, std::nullopt},
      {KeyFamily::kRsa, 4096, std::nullopt}, {KeyFamily::kEc, 256, Curve::kP256},
      {KeyFamily::kEc, 384, Curve::kP384},   {KeyFamily::kEc, 521, Curve::kP521},
      {KeyFamily::kEc, 256, Curve::kP256K},  {KeyFamily::kAes, 128, std::nullopt},
      {KeyFamily::kAes, 192, std::nullopt},  {KeyFamily::kAes, 256, std::nullopt},
  };
  return specs;
}

Result<KeySpec> parse_key_spec(std::string_view name) {
  std::string want = ascii_lower(name);
  std::string valid;
  for (const auto& s : all_key_specs()) {
    if (s.name() == want)
      return s;
    valid += (valid.empty() ? "" : ", ") + s.name();
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown key type \"" + std::string(name) + "\" (valid: " + valid + ")");
}

std::string_view curve_jwk_name(Curve c) {
  switch (c) {
    case Curve::kP256:
      return "P-256";
    case Curve::kP384:
      return "P-384";
    case Curve::kP521:
      return "P-521";
    case Curve::kP256K:
      return "P-256K";
  }
  return "";
}

Result<Curve> curve_from_jwk_name(std::string_view name) {
  if (name == "P-256")
    return Curve::kP256;
  if (name == "P-384")
    return Curve::kP384;
  if (name == "P-521")
    return Curve::kP521;
  if (name == "P-256K" || name == "SECP256K1")
    return Curve::kP256K;
  return make_error(ErrorCode::kUnsupported, "unsupported curve \"" + std::string(name) +
                                                 "\" (P-256, P-384, P-521, P-256K)");
}

std::string_view curve_openssl_name(Curve c) {
  switch (c) {
    case Curve::kP256:
      return "prime256v1";
    case Curve::kP384:
      return "secp384r1";
    case Curve::kP521:
      return "secp521r1";
    case Curve::kP256K:
      return "secp256k1";
  }
  return "";
}

std::span<const std::uint8_t> curve_oid_der(Curve c) {
  switch (c) {
    case Curve::kP256:
      return kOidP256;
    case Curve::kP384:
      return kOidP384;
    case Curve::kP521:
      return kOidP521;
    case Curve::kP256K:
      return kOidP256K;
  }
  return {};
}

Result<Curve> curve_from_oid_der(std::span<const std::uint8_t> der) {
  for (Curve c : {Curve::kP256, Curve::kP384, Curve::kP521, Curve::kP256K}) {
    auto oid = curve_oid_der(c);
    if (std::equal(der.begin(), der.end(), oid.begin(), oid.end()))
      return c;
  }
  return make_error(ErrorCode::kUnsupported,
                    "unsupported EC curve (not P-256, P-384, P-521 or P-256K)");
}

unsigned curve_bits(Curve c) {
  switch (c) {
    case Curve::kP256:
    case Curve::kP256K:
      return 256;
    case Curve::kP384:
      return 384;
    case Curve::kP521:
      return 521;
  }
  return 0;
}

unsigned curve_field_bytes(Curve c) {
  return (curve_bits(c) + 7) / 8;
}

std::string_view to_string(OaepHash h) {
  switch (h) {
    case OaepHash::kSha1:
      return "SHA-1";
    case OaepHash::kSha256:
      return "SHA-256";
    case OaepHash::kSha384:
      return "SHA-384";
  }
  return "";
}

std::string_view wrap_alg_name(WrapAlg alg) {
  switch (alg) {
    case WrapAlg::kRsaAesKeyWrap:
      return "CKM_RSA_AES_KEY_WRAP";
    case WrapAlg::kRsaAesKeyWrap256:
      return "RSA_AES_KEY_WRAP_256";
    case WrapAlg::kRsaAesKeyWrap384:
      return "RSA_AES_KEY_WRAP_384";
  }
  return "";
}

Result<WrapAlg> parse_wrap_alg(std::string_view name) {
  for (WrapAlg a : all_wrap_algs()) {
    if (wrap_alg_name(a) == name)
      return a;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown enc \"" + std::string(name) +
                        "\" (CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384)");
}

OaepHash wrap_alg_hash(WrapAlg alg) {
  switch (alg) {
    case WrapAlg::kRsaAesKeyWrap:
      return OaepHash::kSha1;
    case WrapAlg::kRsaAesKeyWrap256:
      return OaepHash::kSha256;
    case WrapAlg::kRsaAesKeyWrap384:
      return OaepHash::kSha384;
  }
  return OaepHash::kSha1;
}

const std::vector<WrapAlg>& all_wrap_algs() {
  static const std::vector<WrapAlg> algs = {WrapAlg::kRsaAesKeyWrap, WrapAlg::kRsaAesKeyWrap256,
                                            WrapAlg::kRsaAesKeyWrap384};
  return algs;
}

}  // namespace keyport
