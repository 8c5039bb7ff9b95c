// SPDX-License-Identifier: Apache-2.0
#include "byok/public_key.h"

#include <openssl/core_names.h>
#include <openssl/objects.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "core/ossl.h"
#include "core/strings.h"

namespace keyport::byok {
namespace {

// RSA moduli outside this range are refused outright: below it nothing is secure, above it
// OpenSSL refuses to operate (OPENSSL_RSA_MAX_MODULUS_BITS).
constexpr unsigned kMinRsaBits = 512;
constexpr unsigned kMaxRsaBits = 16384;
// OpenSSL refuses public exponents wider than 64 bits for moduli above 3072 bits.
constexpr std::size_t kMaxRsaExponentBytes = 8;

constexpr std::array<std::string_view, 8> kPrivateJwkMembers = {"d",  "p",  "q", "dp",
                                                                "dq", "qi", "k", "oth"};

constexpr std::string_view kPemDashes = "-----";
constexpr std::string_view kPemBegin = "-----BEGIN ";
constexpr std::string_view kPemEnd = "-----END ";
constexpr std::size_t kPemLineWidth = 64;

tl::unexpected<Error> format_failure(std::string message) {
  std::string detail = ossl::drain_errors();
  if (!detail.empty()) {
    message += " (" + detail + ")";
  }
  return make_error(ErrorCode::kFormat, std::move(message));
}

std::span<const std::uint8_t> strip_leading_zeros(std::span<const std::uint8_t> v) {
  std::size_t i = 0;
  while (i < v.size() && v[i] == 0) {
    ++i;
  }
  return v.subspan(i);
}

unsigned bit_length(std::span<const std::uint8_t> stripped) {
  if (stripped.empty()) {
    return 0;
  }
  unsigned bits = static_cast<unsigned>(stripped.size() - 1) * 8;
  for (unsigned top = stripped[0]; top != 0; top >>= 1) {
    ++bits;
  }
  return bits;
}

// Compares two big-endian unsigned integers without leading zeros.
bool less_than(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) {
    return a.size() < b.size();
  }
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
}

bool only_whitespace(std::string_view s) {
  return std::all_of(s.begin(), s.end(), is_json_space);
}

Result<Bytes> bn_param(const EVP_PKEY* pkey, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1 || raw == nullptr) {
    return ossl::crypto_failure(std::string("cannot read ") + name + " of the RSA key");
  }
  ossl::UniquePtr<BIGNUM> bn(raw);
  Bytes out(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

Result<std::string> group_name(const EVP_PKEY* pkey) {
  std::array<char, 80> buf{};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, buf.data(), buf.size(),
                                     &len) != 1) {
    ossl::drain_errors();
    return make_error(ErrorCode::kUnsupported,
                      "EC key without a named curve (explicit curve parameters are not supported; "
                      "use P-256, P-384, P-521 or P-256K)");
  }
  return std::string(buf.data(), std::min(len, buf.size()));
}

Result<Curve> curve_from_group_name(std::string_view name) {
  for (Curve c : {Curve::kP256, Curve::kP384, Curve::kP521, Curve::kP256K}) {
    if (name == curve_openssl_name(c) || name == curve_jwk_name(c)) {
      return c;
    }
  }
  if (name == "secp256r1") {
    return Curve::kP256;
  }
  return make_error(ErrorCode::kUnsupported, "unsupported EC curve \"" + std::string(name) +
                                                 "\" (P-256, P-384, P-521 or P-256K)");
}

Result<Bytes> octet_param(const EVP_PKEY* pkey, const char* name) {
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(pkey, name, nullptr, 0, &len) != 1 || len == 0) {
    return ossl::crypto_failure(std::string("cannot read ") + name + " of the EC key");
  }
  Bytes out(len);
  if (EVP_PKEY_get_octet_string_param(pkey, name, out.data(), out.size(), &len) != 1) {
    return ossl::crypto_failure(std::string("cannot read ") + name + " of the EC key");
  }
  out.resize(len);
  return out;
}

// Any encoding OpenSSL accepts (compressed, hybrid, uncompressed) -> 04 || X || Y.
Result<Bytes> to_uncompressed(Curve curve, std::span<const std::uint8_t> encoded) {
  if (!encoded.empty() && encoded[0] == 0x04) {
    return Bytes(encoded.begin(), encoded.end());
  }
  int nid = OBJ_sn2nid(std::string(curve_openssl_name(curve)).c_str());
  ossl::UniquePtr<EC_GROUP> group(EC_GROUP_new_by_curve_name(nid));
  if (!group) {
    return ossl::crypto_failure("cannot create the EC group");
  }
  ossl::UniquePtr<EC_POINT> point(EC_POINT_new(group.get()));
  if (!point) {
    return ossl::crypto_failure("cannot create an EC point");
  }
  if (EC_POINT_oct2point(group.get(), point.get(), encoded.data(), encoded.size(), nullptr) != 1) {
    return format_failure("EC public key is not a point on curve " +
                          std::string(curve_jwk_name(curve)));
  }
  Bytes out(1 + 2 * static_cast<std::size_t>(curve_field_bytes(curve)));
  std::size_t n = EC_POINT_point2oct(group.get(), point.get(), POINT_CONVERSION_UNCOMPRESSED,
                                     out.data(), out.size(), nullptr);
  if (n != out.size()) {
    return ossl::crypto_failure("cannot encode the EC point");
  }
  return out;
}

Result<Bytes> encode_spki(const EVP_PKEY* pkey) {
  int len = i2d_PUBKEY(pkey, nullptr);
  if (len <= 0) {
    return ossl::crypto_failure("cannot encode the SubjectPublicKeyInfo");
  }
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  if (i2d_PUBKEY(pkey, &p) != len) {
    return ossl::crypto_failure("cannot encode the SubjectPublicKeyInfo");
  }
  return der;
}

Result<ossl::UniquePtr<EVP_PKEY>> pkey_from_params(const char* type, OSSL_PARAM_BLD* bld,
                                                   std::string_view what) {
  ossl::UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) {
    return ossl::crypto_failure("cannot build OpenSSL parameters");
  }
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return ossl::crypto_failure(std::string("cannot create an ") + type + " key context");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 ||
      raw == nullptr) {
    return format_failure(std::string(what));
  }
  return ossl::UniquePtr<EVP_PKEY>(raw);
}

struct PemBlock {
  std::string label;
  Bytes der;
};

// Exactly one RFC 7468 block, surrounded by nothing but whitespace.
Result<PemBlock> parse_single_pem(std::string_view text) {
  std::size_t start = 0;
  while (start < text.size() && is_json_space(text[start])) {
    ++start;
  }
  std::string_view rest = text.substr(start);
  if (rest.substr(0, kPemBegin.size()) != kPemBegin) {
    return make_error(ErrorCode::kFormat, "not PEM: expected \"-----BEGIN <label>-----\"");
  }
  rest.remove_prefix(kPemBegin.size());
  std::size_t label_end = rest.find(kPemDashes);
  std::size_t line_end = rest.find('\n');
  if (label_end == std::string_view::npos || label_end == 0 ||
      (line_end != std::string_view::npos && line_end < label_end)) {
    return make_error(ErrorCode::kFormat, "PEM BEGIN line is malformed");
  }
  PemBlock block;
  block.label = std::string(rest.substr(0, label_end));
  rest.remove_prefix(label_end + kPemDashes.size());
  std::string_view begin_tail = rest.substr(0, rest.find('\n'));
  if (!only_whitespace(begin_tail)) {
    return make_error(ErrorCode::kFormat, "unexpected text after the PEM BEGIN line");
  }
  std::string end_line = std::string(kPemEnd) + block.label + std::string(kPemDashes);
  std::size_t end_pos = rest.find(end_line);
  std::size_t next_dashes = rest.find(kPemDashes);
  if (end_pos == std::string_view::npos || next_dashes < end_pos) {
    if (next_dashes != std::string_view::npos &&
        rest.substr(next_dashes, kPemBegin.size()) == kPemBegin) {
      return make_error(ErrorCode::kFormat, "PEM block \"" + block.label +
                                                "\" has no END line before the next BEGIN line");
    }
    return make_error(ErrorCode::kFormat, "PEM block \"" + block.label + "\" has no matching \"" +
                                              end_line + "\" line");
  }
  std::string_view body = rest.substr(0, end_pos);
  std::string_view after = rest.substr(end_pos + end_line.size());
  if (!only_whitespace(after)) {
    if (after.find(kPemBegin) != std::string_view::npos) {
      return make_error(ErrorCode::kFormat,
                        "more than one PEM block (expected exactly one public key)");
    }
    return make_error(ErrorCode::kFormat, "unexpected data after the PEM END line");
  }
  if (body.find(':') != std::string_view::npos) {
    return make_error(ErrorCode::kFormat,
                      "PEM headers (such as an encrypted PEM's Proc-Type) are not supported");
  }
  std::string b64;
  b64.reserve(body.size());
  for (char c : body) {
    if (!is_json_space(c)) {
      b64 += c;
    }
  }
  if (b64.empty()) {
    return make_error(ErrorCode::kFormat, "PEM block \"" + block.label + "\" is empty");
  }
  auto der = base64_decode(b64);
  if (!der) {
    return tl::unexpected(der.error().with_context("PEM block \"" + block.label + "\""));
  }
  block.der = std::move(*der);
  return block;
}

Result<Bytes> jwk_bytes(const Json& jwk, std::string_view member) {
  auto it = jwk.find(std::string(member));
  if (it == jwk.end()) {
    return make_error(ErrorCode::kFormat, "JWK: missing member \"" + std::string(member) + "\"");
  }
  if (!it->is_string()) {
    return make_error(ErrorCode::kFormat,
                      "JWK: member \"" + std::string(member) + "\" must be a base64url string");
  }
  auto bytes = base64url_decode(it->get_ref<const std::string&>());
  if (!bytes) {
    return tl::unexpected(bytes.error().with_context("JWK member \"" + std::string(member) + "\""));
  }
  if (bytes->empty()) {
    return make_error(ErrorCode::kFormat, "JWK: member \"" + std::string(member) + "\" is empty");
  }
  return bytes;
}

}  // namespace

Result<PublicKey> PublicKey::from_validated_spki(Bytes der) {
  const unsigned char* p = der.data();
  ossl::UniquePtr<EVP_PKEY> pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!pkey) {
    return ossl::crypto_failure("cannot re-read an encoded public key");
  }
  PublicKey key;
  if (EVP_PKEY_is_a(pkey.get(), "RSA")) {
    KEYPORT_ASSIGN_OR_RETURN(key.m_n, bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_N));
    KEYPORT_ASSIGN_OR_RETURN(key.m_e, bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_E));
    key.m_family = KeyFamily::kRsa;
    key.m_bits = bit_length(key.m_n);
  } else if (EVP_PKEY_is_a(pkey.get(), "EC")) {
    KEYPORT_ASSIGN_OR_RETURN(std::string name, group_name(pkey.get()));
    KEYPORT_ASSIGN_OR_RETURN(Curve curve, curve_from_group_name(name));
    KEYPORT_ASSIGN_OR_RETURN(key.m_point, octet_param(pkey.get(), OSSL_PKEY_PARAM_PUB_KEY));
    if (key.m_point.size() != 1 + 2 * static_cast<std::size_t>(curve_field_bytes(curve)) ||
        key.m_point[0] != 0x04) {
      return make_error(ErrorCode::kInternal, "re-read EC point is not in uncompressed form");
    }
    key.m_family = KeyFamily::kEc;
    key.m_curve = curve;
    key.m_bits = curve_bits(curve);
  } else {
    return make_error(ErrorCode::kInternal, "re-read public key is neither RSA nor EC");
  }
  key.m_spki = std::move(der);
  return key;
}

Result<PublicKey> PublicKey::from_spki_der(std::span<const std::uint8_t> der) {
  if (der.empty()) {
    return make_error(ErrorCode::kFormat, "empty DER SubjectPublicKeyInfo");
  }
  const unsigned char* p = der.data();
  ossl::UniquePtr<EVP_PKEY> pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!pkey) {
    return format_failure("not a DER SubjectPublicKeyInfo");
  }
  if (p != der.data() + der.size()) {
    return make_error(ErrorCode::kFormat, "unexpected " +
                                              std::to_string(der.data() + der.size() - p) +
                                              " bytes after the DER SubjectPublicKeyInfo");
  }
  if (EVP_PKEY_is_a(pkey.get(), "RSA")) {
    KEYPORT_ASSIGN_OR_RETURN(Bytes n, bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_N));
    KEYPORT_ASSIGN_OR_RETURN(Bytes e, bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_E));
    return from_rsa_components(n, e);
  }
  if (EVP_PKEY_is_a(pkey.get(), "EC")) {
    KEYPORT_ASSIGN_OR_RETURN(std::string name, group_name(pkey.get()));
    KEYPORT_ASSIGN_OR_RETURN(Curve curve, curve_from_group_name(name));
    KEYPORT_ASSIGN_OR_RETURN(Bytes encoded, octet_param(pkey.get(), OSSL_PKEY_PARAM_PUB_KEY));
    KEYPORT_ASSIGN_OR_RETURN(Bytes point, to_uncompressed(curve, encoded));
    return from_ec_point(curve, point);
  }
  const char* type = EVP_PKEY_get0_type_name(pkey.get());
  return make_error(ErrorCode::kUnsupported,
                    "unsupported public key type \"" + std::string(type != nullptr ? type : "?") +
                        "\" (only RSA and EC P-256, P-384, P-521, P-256K)");
}

Result<PublicKey> PublicKey::from_pem(std::string_view pem) {
  KEYPORT_ASSIGN_OR_RETURN(PemBlock block, parse_single_pem(pem));
  if (block.label == "PUBLIC KEY") {
    return from_spki_der(block.der);
  }
  if (block.label == "RSA PUBLIC KEY") {
    const unsigned char* p = block.der.data();
    ossl::UniquePtr<EVP_PKEY> pkey(
        d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, static_cast<long>(block.der.size())));
    if (!pkey) {
      return format_failure("PEM \"RSA PUBLIC KEY\" is not a PKCS#1 RSAPublicKey");
    }
    if (p != block.der.data() + block.der.size()) {
      return make_error(ErrorCode::kFormat, "unexpected bytes after the PKCS#1 RSAPublicKey");
    }
    KEYPORT_ASSIGN_OR_RETURN(Bytes n, bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_N));
    KEYPORT_ASSIGN_OR_RETURN(Bytes e, bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_E));
    return from_rsa_components(n, e);
  }
  if (block.label.find("PRIVATE KEY") != std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "PEM block \"" + block.label +
                          "\" holds a private key; give the public key (\"PUBLIC KEY\") instead");
  }
  return make_error(ErrorCode::kFormat, "unexpected PEM block \"" + block.label +
                                            "\" (expected \"PUBLIC KEY\" or \"RSA PUBLIC KEY\")");
}

Result<PublicKey> PublicKey::from_jwk(const Json& jwk) {
  if (!jwk.is_object()) {
    return make_error(ErrorCode::kFormat, "a JWK must be a JSON object");
  }
  for (std::string_view member : kPrivateJwkMembers) {
    if (jwk.contains(std::string(member))) {
      return make_error(ErrorCode::kInvalidArgument, "JWK holds private key material (member \"" +
                                                         std::string(member) +
                                                         "\"); give the public key only");
    }
  }
  auto kty_it = jwk.find("kty");
  if (kty_it == jwk.end()) {
    return make_error(ErrorCode::kFormat, "JWK: missing member \"kty\"");
  }
  if (!kty_it->is_string()) {
    return make_error(ErrorCode::kFormat, "JWK: member \"kty\" must be a string");
  }
  const std::string& kty = kty_it->get_ref<const std::string&>();
  if (kty == "RSA" || kty == "RSA-HSM") {
    KEYPORT_ASSIGN_OR_RETURN(Bytes n, jwk_bytes(jwk, "n"));
    KEYPORT_ASSIGN_OR_RETURN(Bytes e, jwk_bytes(jwk, "e"));
    return from_rsa_components(n, e);
  }
  if (kty == "EC" || kty == "EC-HSM") {
    auto crv_it = jwk.find("crv");
    if (crv_it == jwk.end() || !crv_it->is_string()) {
      return make_error(ErrorCode::kFormat, "JWK: EC key needs a string member \"crv\"");
    }
    KEYPORT_ASSIGN_OR_RETURN(Curve curve,
                             curve_from_jwk_name(crv_it->get_ref<const std::string&>()));
    KEYPORT_ASSIGN_OR_RETURN(Bytes x, jwk_bytes(jwk, "x"));
    KEYPORT_ASSIGN_OR_RETURN(Bytes y, jwk_bytes(jwk, "y"));
    const std::size_t field = curve_field_bytes(curve);
    for (const auto& [name, value] : {std::pair<const char*, const Bytes*>{"x", &x}, {"y", &y}}) {
      if (value->size() != field) {
        return make_error(ErrorCode::kFormat, std::string("JWK: member \"") + name + "\" is " +
                                                  std::to_string(value->size()) + " bytes; " +
                                                  std::string(curve_jwk_name(curve)) +
                                                  " needs exactly " + std::to_string(field));
      }
    }
    Bytes point;
    point.reserve(1 + 2 * field);
    point.push_back(0x04);
    point.insert(point.end(), x.begin(), x.end());
    point.insert(point.end(), y.begin(), y.end());
    return from_ec_point(curve, point);
  }
  if (kty == "oct" || kty == "oct-HSM") {
    return make_error(ErrorCode::kUnsupported,
                      "JWK kty \"" + kty + "\" is a symmetric key and has no public key");
  }
  return make_error(ErrorCode::kUnsupported,
                    "unsupported JWK kty \"" + kty + "\" (RSA, RSA-HSM, EC, EC-HSM)");
}

Result<PublicKey> PublicKey::from_rsa_components(std::span<const std::uint8_t> n,
                                                 std::span<const std::uint8_t> e) {
  n = strip_leading_zeros(n);
  e = strip_leading_zeros(e);
  const unsigned bits = bit_length(n);
  if (bits == 0) {
    return make_error(ErrorCode::kFormat, "RSA modulus is zero");
  }
  if (bits < kMinRsaBits || bits > kMaxRsaBits) {
    return make_error(ErrorCode::kUnsupported,
                      "RSA modulus of " + std::to_string(bits) + " bits is outside " +
                          std::to_string(kMinRsaBits) + ".." + std::to_string(kMaxRsaBits));
  }
  if ((n.back() & 1) == 0) {
    return make_error(ErrorCode::kFormat, "RSA modulus is even");
  }
  if (e.empty() || (e.back() & 1) == 0 || (e.size() == 1 && e[0] == 1)) {
    return make_error(ErrorCode::kFormat, "RSA public exponent must be odd and at least 3");
  }
  if (!less_than(e, n)) {
    return make_error(ErrorCode::kFormat, "RSA public exponent is not smaller than the modulus");
  }
  if (e.size() > kMaxRsaExponentBytes) {
    return make_error(ErrorCode::kUnsupported, "RSA public exponent wider than 64 bits");
  }
  ossl::UniquePtr<BIGNUM> bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  ossl::UniquePtr<BIGNUM> bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  ossl::UniquePtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return ossl::crypto_failure("cannot build the RSA key parameters");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto pkey, pkey_from_params("RSA", bld.get(), "invalid RSA public key"));
  KEYPORT_ASSIGN_OR_RETURN(Bytes der, encode_spki(pkey.get()));
  return from_validated_spki(std::move(der));
}

Result<PublicKey> PublicKey::from_ec_point(Curve curve, std::span<const std::uint8_t> point) {
  const std::size_t expected = 1 + 2 * static_cast<std::size_t>(curve_field_bytes(curve));
  if (point.size() != expected || point[0] != 0x04) {
    return make_error(ErrorCode::kFormat, "EC point for " + std::string(curve_jwk_name(curve)) +
                                              " must be uncompressed 04 || X || Y (" +
                                              std::to_string(expected) + " bytes), got " +
                                              std::to_string(point.size()) + " bytes");
  }
  const std::string group(curve_openssl_name(curve));
  ossl::UniquePtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.c_str(), 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return ossl::crypto_failure("cannot build the EC key parameters");
  }
  const std::string not_on_curve =
      "EC public key is not a valid point on curve " + std::string(curve_jwk_name(curve));
  KEYPORT_ASSIGN_OR_RETURN(auto pkey, pkey_from_params("EC", bld.get(), not_on_curve));
  ossl::UniquePtr<EVP_PKEY_CTX> check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check) {
    return ossl::crypto_failure("cannot create an EC key context");
  }
  if (EVP_PKEY_public_check(check.get()) != 1) {
    return format_failure(not_on_curve);
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes der, encode_spki(pkey.get()));
  return from_validated_spki(std::move(der));
}

std::string PublicKey::pem() const {
  const std::string b64 = base64_encode(m_spki);
  std::string out = "-----BEGIN PUBLIC KEY-----\n";
  for (std::size_t i = 0; i < b64.size(); i += kPemLineWidth) {
    out += b64.substr(i, kPemLineWidth);
    out += '\n';
  }
  out += "-----END PUBLIC KEY-----\n";
  return out;
}

Json PublicKey::to_jwk() const {
  Json jwk = Json::object();
  if (m_family == KeyFamily::kRsa) {
    jwk["kty"] = "RSA";
    jwk["n"] = base64url_encode(m_n);
    jwk["e"] = base64url_encode(m_e);
    return jwk;
  }
  const Curve curve = m_curve.value_or(Curve::kP256);
  const std::size_t field = curve_field_bytes(curve);
  std::span<const std::uint8_t> point(m_point);
  jwk["kty"] = "EC";
  jwk["crv"] = std::string(curve_jwk_name(curve));
  if (point.size() == 1 + 2 * field) {
    jwk["x"] = base64url_encode(point.subspan(1, field));
    jwk["y"] = base64url_encode(point.subspan(1 + field, field));
  }
  return jwk;
}

std::string PublicKey::sha256_fingerprint() const {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(m_spki.data(), m_spki.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) {
    ossl::drain_errors();
    return "";
  }
  return hex_encode(std::span<const std::uint8_t>(md.data(), len));
}

}  // namespace keyport::byok
