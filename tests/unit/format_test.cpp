// SPDX-License-Identifier: Apache-2.0
// byok/public_key.h, kek.h, kid.h, profile.h, byok_file.h. Keys are made and encoded with OpenSSL
// directly so that keyport's readers are checked against an independent writer.
#include <catch2/catch.hpp>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <filesystem>
#include <string>
#include <vector>

#include "byok/byok_file.h"
#include "byok/kek.h"
#include "byok/kid.h"
#include "byok/profile.h"
#include "byok/public_key.h"
#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/ossl.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::byok;

namespace {

using PkeyPtr = ossl::UniquePtr<EVP_PKEY>;

PkeyPtr generate_rsa(unsigned bits) {
  PkeyPtr key(EVP_RSA_gen(bits));
  REQUIRE(key);
  return key;
}

PkeyPtr generate_ec(const char* curve) {
  PkeyPtr key(EVP_EC_gen(curve));
  REQUIRE(key);
  return key;
}

// One 2048-bit RSA key per process: generation is the slow part of these tests.
const EVP_PKEY* shared_rsa_2048() {
  static PkeyPtr key = generate_rsa(2048);
  return key.get();
}

std::string openssl_spki_pem(const EVP_PKEY* key) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(bio);
  REQUIRE(PEM_write_bio_PUBKEY(bio.get(), key) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  REQUIRE(len > 0);
  return std::string(data, static_cast<std::size_t>(len));
}

Bytes openssl_spki_der(const EVP_PKEY* key) {
  int len = i2d_PUBKEY(key, nullptr);
  REQUIRE(len > 0);
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  REQUIRE(i2d_PUBKEY(key, &p) == len);
  return der;
}

// PKCS#1 RSAPublicKey in a "RSA PUBLIC KEY" PEM block.
std::string openssl_pkcs1_pem(const EVP_PKEY* key) {
  int len = i2d_PublicKey(key, nullptr);
  REQUIRE(len > 0);
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  REQUIRE(i2d_PublicKey(key, &p) == len);
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(bio);
  REQUIRE(PEM_write_bio(bio.get(), "RSA PUBLIC KEY", "", der.data(), len) > 0);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Bytes openssl_bn(const EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(key, name, &raw) == 1);
  ossl::UniquePtr<BIGNUM> bn(raw);
  Bytes out(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

Bytes openssl_ec_point(const EVP_PKEY* key) {
  Bytes out(200);
  std::size_t len = 0;
  REQUIRE(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, out.data(), out.size(),
                                          &len) == 1);
  out.resize(len);
  return out;
}

std::string openssl_sha256_hex(const Bytes& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) == 1);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex += kDigits[md[i] >> 4];
    hex += kDigits[md[i] & 15];
  }
  return hex;
}

Json rsa_jwk(const EVP_PKEY* key) {
  Json jwk;
  jwk["kty"] = "RSA";
  jwk["n"] = base64url_encode(openssl_bn(key, OSSL_PKEY_PARAM_RSA_N));
  jwk["e"] = base64url_encode(openssl_bn(key, OSSL_PKEY_PARAM_RSA_E));
  return jwk;
}

// An odd modulus of `bytes` bytes with the top bit set: loading checks size, not primality.
Bytes fake_modulus(std::size_t bytes) {
  Bytes n;
  n.reserve(bytes);
  n.push_back(0xc3);
  n.insert(n.end(), bytes - 2, 0x5a);
  n.push_back(0x47);
  return n;
}

Json fake_rsa_jwk(std::size_t modulus_bytes) {
  const std::uint8_t e[] = {0x01, 0x00, 0x01};
  Json jwk;
  jwk["kty"] = "RSA-HSM";
  jwk["n"] = base64url_encode(fake_modulus(modulus_bytes));
  jwk["e"] = base64url_encode(e);
  jwk["key_ops"] = Json::array({"import"});
  return jwk;
}

Result<Kek> kek_from_text(const std::string& text) {
  return load_kek(as_bytes(text), "kek.pem");
}

template <typename R>
void check_refused(const R& result, ErrorCode code, const std::string& needle) {
  REQUIRE_FALSE(static_cast<bool>(result));
  INFO(result.error().describe());
  CHECK(result.error().code() == code);
  CHECK_THAT(result.error().message(), Catch::Contains(needle));
  CHECK(ERR_peek_error() == 0);  // refusals leave OpenSSL's error queue empty
}

void check_same_rsa_key(const Kek& kek, const EVP_PKEY* key) {
  CHECK(kek.key.family() == KeyFamily::kRsa);
  CHECK(kek.key.bits() == static_cast<unsigned>(EVP_PKEY_get_bits(key)));
  CHECK(kek.key.rsa_modulus() == openssl_bn(key, OSSL_PKEY_PARAM_RSA_N));
  CHECK(kek.key.rsa_exponent() == openssl_bn(key, OSSL_PKEY_PARAM_RSA_E));
  CHECK(kek.key.spki_der() == openssl_spki_der(key));
  CHECK(kek.key.pem() == openssl_spki_pem(key));
  auto again = PublicKey::from_pem(kek.key.pem());
  REQUIRE_OK(again);
  CHECK(*again == kek.key);
}

constexpr const char* kKvKid =
    "https://contoso.vault.azure.net/keys/KEKforBYOK/eba63d27e4e34e028839b53fac905621";

// A valid .byok text with placeholders replaced by the caller for the refusal cases.
std::string byok_text(const std::string& header_extra = "", const std::string& top_extra = "",
                      const std::string& kid = kKvKid, const std::string& schema = "\"1.0.0\"",
                      const std::string& alg = "\"dir\"",
                      const std::string& enc = "\"CKM_RSA_AES_KEY_WRAP\"",
                      const std::string& ciphertext = "\"-_-_AAE\"") {
  return "{\"schema_version\": " + schema + ", \"header\": {\"kid\": \"" + kid +
         "\", \"alg\": " + alg + ", \"enc\": " + enc + header_extra +
         "}, \"ciphertext\": " + ciphertext + ", \"generator\": \"test\"" + top_extra + "}";
}

bool same_file(const ByokFile& a, const ByokFile& b) {
  return a.schema_version == b.schema_version && a.kid == b.kid && a.alg == b.alg &&
         a.enc == b.enc && a.ciphertext == b.ciphertext && a.generator == b.generator;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// KEK loading

TEST_CASE("a KEK loads from an SPKI PEM written by OpenSSL with OpenSSL's modulus and exponent",
          "[unit][format]") {
  const EVP_PKEY* key = shared_rsa_2048();
  auto kek = kek_from_text(openssl_spki_pem(key));
  REQUIRE_OK(kek);
  check_same_rsa_key(*kek, key);
  CHECK_FALSE(kek->kid.has_value());
}

TEST_CASE("a KEK loads from DER SubjectPublicKeyInfo written by OpenSSL", "[unit][format]") {
  const EVP_PKEY* key = shared_rsa_2048();
  auto kek = load_kek(openssl_spki_der(key), "kek.der");
  REQUIRE_OK(kek);
  check_same_rsa_key(*kek, key);
}

TEST_CASE("a KEK loads from a PKCS#1 RSA PUBLIC KEY PEM", "[unit][format]") {
  const EVP_PKEY* key = shared_rsa_2048();
  auto kek = kek_from_text(openssl_pkcs1_pem(key));
  REQUIRE_OK(kek);
  check_same_rsa_key(*kek, key);
}

TEST_CASE("a KEK loads from a bare JWK whose key_ops are exactly import", "[unit][format]") {
  const EVP_PKEY* key = shared_rsa_2048();
  Json jwk = rsa_jwk(key);
  jwk["key_ops"] = Json::array({"import"});
  auto kek = kek_from_text(jwk.dump());
  REQUIRE_OK(kek);
  check_same_rsa_key(*kek, key);
  CHECK_FALSE(kek->kid.has_value());
}

TEST_CASE("a KEK loads from a KeyBundle and keeps the key's kid", "[unit][format]") {
  const EVP_PKEY* key = shared_rsa_2048();
  Json bundle;
  bundle["key"] = rsa_jwk(key);
  bundle["key"]["kty"] = "RSA-HSM";
  bundle["key"]["kid"] = kKvKid;
  bundle["key"]["key_ops"] = Json::array({"import"});
  bundle["attributes"] = {{"enabled", true}, {"exportable", false}, {"hsmPlatform", "2"}};
  bundle["tags"] = Json::object();
  auto kek = kek_from_text(bundle.dump(2));
  REQUIRE_OK(kek);
  check_same_rsa_key(*kek, key);
  REQUIRE(kek->kid.has_value());
  CHECK(*kek->kid == kKvKid);
}

TEST_CASE("a KEK loads from a JWK with kty RSA-HSM and no key_ops", "[unit][format]") {
  const EVP_PKEY* key = shared_rsa_2048();
  Json jwk = rsa_jwk(key);
  jwk["kty"] = "RSA-HSM";
  auto kek = kek_from_text(jwk.dump());
  REQUIRE_OK(kek);
  check_same_rsa_key(*kek, key);
}

TEST_CASE("a KEK of 3072 or 4096 bits is accepted and the size is read from the modulus",
          "[unit][format]") {
  for (std::size_t bytes : {256u, 384u, 512u}) {
    auto kek = kek_from_text(fake_rsa_jwk(bytes).dump());
    REQUIRE_OK(kek);
    CHECK(kek->key.bits() == bytes * 8);
  }
}

TEST_CASE("a KEK file loads from disk and errors name the file", "[unit][format]") {
  auto dir = test::make_scratch_subdir("kek");
  auto good = dir / "KEKforBYOK.publickey.pem";
  REQUIRE_OK(write_file_atomic(good, openssl_spki_pem(shared_rsa_2048())));
  auto kek = load_kek_file(good);
  REQUIRE_OK(kek);
  CHECK(kek->key.bits() == 2048);

  auto bad = dir / "broken.pem";
  REQUIRE_OK(write_file_atomic(bad, std::string_view("-----BEGIN PUBLIC KEY-----\nAAAA\n")));
  check_refused(load_kek_file(bad), ErrorCode::kFormat, bad.string());
  CHECK_ERROR_CODE(load_kek_file(dir / "absent.pem"), ErrorCode::kNotFound);
}

TEST_CASE("an EC KEK is refused because the KEK must be RSA", "[unit][format]") {
  auto ec = generate_ec("P-256");
  check_refused(kek_from_text(openssl_spki_pem(ec.get())), ErrorCode::kUnsupported,
                "the KEK must be an RSA key");
  auto jwk = PublicKey::from_spki_der(openssl_spki_der(ec.get()));
  REQUIRE_OK(jwk);
  Json ec_jwk = jwk->to_jwk();
  ec_jwk["kty"] = "EC-HSM";
  check_refused(kek_from_text(ec_jwk.dump()), ErrorCode::kUnsupported, "must be an RSA key");
}

TEST_CASE("RSA KEKs of 1024 and 8192 bits are refused naming the size", "[unit][format]") {
  check_refused(kek_from_text(fake_rsa_jwk(128).dump()), ErrorCode::kUnsupported, "1024-bit");
  check_refused(kek_from_text(fake_rsa_jwk(1024).dump()), ErrorCode::kUnsupported, "an 8192-bit");
  auto refused = kek_from_text(fake_rsa_jwk(1024).dump());
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message(), Catch::Contains("2048, 3072 or 4096"));
  CHECK_THAT(refused.error().message(), Catch::StartsWith("kek.pem: "));
}

TEST_CASE("broken, doubled or empty PEM KEK files are format errors", "[unit][format]") {
  const std::string pem = openssl_spki_pem(shared_rsa_2048());
  SECTION("bad base64 in the body") {
    std::string bad = pem;
    bad.replace(bad.find('\n') + 5, 3, "*!*");
    check_refused(kek_from_text(bad), ErrorCode::kFormat, "PEM");
  }
  SECTION("missing END line") {
    std::string bad = pem.substr(0, pem.find("-----END"));
    check_refused(kek_from_text(bad), ErrorCode::kFormat, "END");
  }
  SECTION("two PEM blocks") {
    check_refused(kek_from_text(pem + pem), ErrorCode::kFormat, "more than one PEM block");
  }
  SECTION("trailing garbage after the END line") {
    check_refused(kek_from_text(pem + "garbage\n"), ErrorCode::kFormat, "after the PEM END");
  }
  SECTION("an empty file") {
    check_refused(kek_from_text(""), ErrorCode::kFormat, "empty");
    check_refused(kek_from_text(" \n\t\r\n"), ErrorCode::kFormat, "empty");
  }
  SECTION("a private key PEM") {
    check_refused(kek_from_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
                  ErrorCode::kInvalidArgument, "private key");
  }
  SECTION("bytes that are neither PEM, JSON nor DER") {
    check_refused(kek_from_text("\x30\x03\x02\x01"), ErrorCode::kFormat, "DER");
  }
}

TEST_CASE("JWK KEKs with other key_ops, private members or a symmetric kty are refused",
          "[unit][format]") {
  Json base = rsa_jwk(shared_rsa_2048());
  SECTION("key_ops import and sign") {
    Json jwk = base;
    jwk["key_ops"] = Json::array({"import", "sign"});
    check_refused(kek_from_text(jwk.dump()), ErrorCode::kInvalidArgument,
                  "import is mutually exclusive with all other key operations");
  }
  SECTION("key_ops without import") {
    Json jwk = base;
    jwk["key_ops"] = Json::array({"wrapKey"});
    check_refused(kek_from_text(jwk.dump()), ErrorCode::kInvalidArgument, "[\"import\"]");
  }
  SECTION("key_ops that is not an array") {
    Json jwk = base;
    jwk["key_ops"] = "import";
    check_refused(kek_from_text(jwk.dump()), ErrorCode::kFormat, "key_ops");
  }
  SECTION("a private member d") {
    Json jwk = base;
    jwk["d"] = "AQAB";
    check_refused(kek_from_text(jwk.dump()), ErrorCode::kInvalidArgument, "\"d\"");
  }
  SECTION("kty oct") {
    Json jwk = {{"kty", "oct"}, {"key_ops", Json::array({"import"})}};
    check_refused(kek_from_text(jwk.dump()), ErrorCode::kUnsupported, "RSA");
  }
  SECTION("a duplicate JSON member") {
    std::string text = base.dump();
    text.insert(1, "\"kty\":\"RSA\",");
    check_refused(kek_from_text(text), ErrorCode::kFormat, "duplicate member \"kty\"");
  }
  SECTION("a KeyBundle whose key is not an object") {
    check_refused(kek_from_text(R"({"key":"x"})"), ErrorCode::kFormat, "key");
  }
  SECTION("a kid that is not a string") {
    Json jwk = base;
    jwk["kid"] = 7;
    check_refused(kek_from_text(jwk.dump()), ErrorCode::kFormat, "kid");
  }
}

// ---------------------------------------------------------------------------------------------
// PublicKey

TEST_CASE("EC public keys of the four curves round-trip through JWK and SPKI", "[unit][format]") {
  const std::pair<const char*, Curve> curves[] = {{"P-256", Curve::kP256},
                                                  {"P-384", Curve::kP384},
                                                  {"P-521", Curve::kP521},
                                                  {"secp256k1", Curve::kP256K}};
  for (const auto& [name, curve] : curves) {
    INFO(name);
    auto pkey = generate_ec(name);
    auto key = PublicKey::from_spki_der(openssl_spki_der(pkey.get()));
    REQUIRE_OK(key);
    CHECK(key->family() == KeyFamily::kEc);
    CHECK(key->curve() == curve);
    CHECK(key->bits() == curve_bits(curve));
    CHECK(key->ec_point() == openssl_ec_point(pkey.get()));
    CHECK(key->spki_der() == openssl_spki_der(pkey.get()));
    CHECK(key->rsa_modulus().empty());

    Json jwk = key->to_jwk();
    CHECK(jwk["kty"] == "EC");
    CHECK(jwk["crv"] == curve_jwk_name(curve));
    CHECK(jwk.size() == 4);
    auto back = PublicKey::from_jwk(jwk);
    REQUIRE_OK(back);
    CHECK(*back == *key);
    CHECK(back->to_jwk() == jwk);

    jwk["kty"] = "EC-HSM";
    auto hsm = PublicKey::from_jwk(jwk);
    REQUIRE_OK(hsm);
    CHECK(*hsm == *key);

    auto from_pem = PublicKey::from_pem(openssl_spki_pem(pkey.get()));
    REQUIRE_OK(from_pem);
    CHECK(*from_pem == *key);
    CHECK(key->pem() == openssl_spki_pem(pkey.get()));
  }
}

TEST_CASE("a compressed EC point in SPKI is read and stored uncompressed", "[unit][format]") {
  auto pkey = generate_ec("P-384");
  const Bytes uncompressed = openssl_spki_der(pkey.get());
  REQUIRE(EVP_PKEY_set_utf8_string_param(pkey.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                         "compressed") == 1);
  const Bytes compressed = openssl_spki_der(pkey.get());
  REQUIRE(compressed.size() < uncompressed.size());
  auto key = PublicKey::from_spki_der(compressed);
  REQUIRE_OK(key);
  CHECK(key->spki_der() == uncompressed);
  CHECK(key->ec_point().front() == 0x04);
}

TEST_CASE("an EC JWK with a coordinate of the wrong length is refused", "[unit][format]") {
  auto key = PublicKey::from_spki_der(openssl_spki_der(generate_ec("P-256").get()));
  REQUIRE_OK(key);
  Json jwk = key->to_jwk();
  auto x = base64url_decode(jwk["x"].get<std::string>());
  REQUIRE_OK(x);
  Bytes longer = *x;
  longer.insert(longer.begin(), 0x00);
  jwk["x"] = base64url_encode(longer);
  check_refused(PublicKey::from_jwk(jwk), ErrorCode::kFormat, "\"x\"");
  Bytes shorter(x->begin() + 1, x->end());
  jwk["x"] = base64url_encode(shorter);
  check_refused(PublicKey::from_jwk(jwk), ErrorCode::kFormat, "exactly 32");
}

TEST_CASE("an EC point that is not on the curve is refused", "[unit][format]") {
  auto key = PublicKey::from_spki_der(openssl_spki_der(generate_ec("P-256").get()));
  REQUIRE_OK(key);
  Bytes point = key->ec_point();
  point.back() ^= 0x01;
  check_refused(PublicKey::from_ec_point(Curve::kP256, point), ErrorCode::kFormat, "curve");
  Json jwk = key->to_jwk();
  Bytes y(point.begin() + 33, point.end());
  jwk["y"] = base64url_encode(y);
  check_refused(PublicKey::from_jwk(jwk), ErrorCode::kFormat, "curve");
  // Right size, wrong curve: a P-256 point is not a P-256K point.
  CHECK_ERROR_CODE(PublicKey::from_ec_point(Curve::kP256K, key->ec_point()), ErrorCode::kFormat);
}

TEST_CASE("the fingerprint is the SHA-256 of the SPKI DER", "[unit][format]") {
  const EVP_PKEY* rsa = shared_rsa_2048();
  auto key = PublicKey::from_spki_der(openssl_spki_der(rsa));
  REQUIRE_OK(key);
  CHECK(key->sha256_fingerprint() == openssl_sha256_hex(openssl_spki_der(rsa)));
  CHECK(key->sha256_fingerprint().size() == 64);
  auto ec = generate_ec("P-521");
  auto ec_key = PublicKey::from_spki_der(openssl_spki_der(ec.get()));
  REQUIRE_OK(ec_key);
  CHECK(ec_key->sha256_fingerprint() == openssl_sha256_hex(openssl_spki_der(ec.get())));
}

TEST_CASE("RSA public keys round-trip through JWK and components", "[unit][format]") {
  const EVP_PKEY* rsa = shared_rsa_2048();
  auto key = PublicKey::from_jwk(rsa_jwk(rsa));
  REQUIRE_OK(key);
  Json jwk = key->to_jwk();
  CHECK(jwk == rsa_jwk(rsa));
  Bytes n = openssl_bn(rsa, OSSL_PKEY_PARAM_RSA_N);
  n.insert(n.begin(), {0x00, 0x00});  // leading zeros are allowed and dropped
  auto components = PublicKey::from_rsa_components(n, openssl_bn(rsa, OSSL_PKEY_PARAM_RSA_E));
  REQUIRE_OK(components);
  CHECK(*components == *key);
  CHECK(components->rsa_modulus() == openssl_bn(rsa, OSSL_PKEY_PARAM_RSA_N));
  CHECK(components->ec_point().empty());
}

TEST_CASE("malformed or unsupported public keys are refused", "[unit][format]") {
  const std::uint8_t e[] = {0x01, 0x00, 0x01};
  Bytes even = fake_modulus(256);
  even.back() = 0x02;
  CHECK_ERROR_CODE(PublicKey::from_rsa_components(even, e), ErrorCode::kFormat);
  const std::uint8_t e_even[] = {0x02};
  CHECK_ERROR_CODE(PublicKey::from_rsa_components(fake_modulus(256), e_even), ErrorCode::kFormat);
  CHECK_ERROR_CODE(PublicKey::from_rsa_components(Bytes{0x00}, e), ErrorCode::kFormat);

  PkeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  REQUIRE(ed);
  CHECK_ERROR_CODE(PublicKey::from_spki_der(openssl_spki_der(ed.get())), ErrorCode::kUnsupported);
  CHECK_ERROR_CODE(PublicKey::from_pem(openssl_spki_pem(ed.get())), ErrorCode::kUnsupported);

  Bytes trailing = openssl_spki_der(shared_rsa_2048());
  trailing.push_back(0x00);
  CHECK_ERROR_CODE(PublicKey::from_spki_der(trailing), ErrorCode::kFormat);
  CHECK_ERROR_CODE(PublicKey::from_spki_der(Bytes{}), ErrorCode::kFormat);

  CHECK_ERROR_CODE(PublicKey::from_jwk(Json::array()), ErrorCode::kFormat);
  CHECK_ERROR_CODE(PublicKey::from_jwk(Json{{"kty", 1}}), ErrorCode::kFormat);
  CHECK_ERROR_CODE(PublicKey::from_jwk(Json{{"kty", "RSA"}, {"n", 5}, {"e", "AQAB"}}),
                   ErrorCode::kFormat);
  CHECK_ERROR_CODE(PublicKey::from_jwk(Json{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "AA"}}),
                   ErrorCode::kUnsupported);
  CHECK_ERROR_CODE(
      PublicKey::from_jwk(Json{{"kty", "EC"}, {"crv", "P-192"}, {"x", "AA"}, {"y", "AA"}}),
      ErrorCode::kUnsupported);
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi", "k"}) {
    Json jwk = rsa_jwk(shared_rsa_2048());
    jwk[member] = "AQAB";
    INFO(member);
    CHECK_ERROR_CODE(PublicKey::from_jwk(jwk), ErrorCode::kInvalidArgument);
  }
}

// ---------------------------------------------------------------------------------------------
// Key identifiers

TEST_CASE("key identifiers of known Azure hosts give the target and the cloud", "[unit][format]") {
  struct Row {
    const char* url;
    std::optional<TargetKind> target;
    const char* cloud;
    const char* vault;
  };
  const std::string v = "/keys/KEKforBYOK/eba63d27e4e34e028839b53fac905621";
  const Row rows[] = {
      {"https://contoso.vault.azure.net", TargetKind::kKeyVault, "AzureCloud", "contoso"},
      {"https://contoso-hsm.managedhsm.azure.net", TargetKind::kManagedHsm, "AzureCloud",
       "contoso-hsm"},
      {"https://contoso.vault.azure.cn", TargetKind::kKeyVault, "AzureChinaCloud", "contoso"},
      {"https://contoso.managedhsm.azure.cn", TargetKind::kManagedHsm, "AzureChinaCloud",
       "contoso"},
      {"https://contoso.vault.usgovcloudapi.net", TargetKind::kKeyVault, "AzureUSGovernment",
       "contoso"},
      {"https://contoso.managedhsm.usgovcloudapi.net", TargetKind::kManagedHsm, "AzureUSGovernment",
       "contoso"},
      {"https://contoso.vault.microsoftazure.de", TargetKind::kKeyVault, "AzureGermanCloud",
       "contoso"},
      {"https://127.0.0.1:8443", std::nullopt, "", "127"},
      {"https://localhost", std::nullopt, "", "localhost"},
      {"https://[::1]:8443", std::nullopt, "", "[::1]"},
      {"https://contoso.privatelink.vaultcore.azure.net", std::nullopt, "", "contoso"},
  };
  for (const Row& row : rows) {
    const std::string url = std::string(row.url) + v;
    INFO(url);
    auto id = parse_kid(url);
    REQUIRE_OK(id);
    CHECK(id->url == url);
    CHECK(id->host == std::string(row.url).substr(8));
    CHECK(id->vault_name == row.vault);
    CHECK(id->key_name == "KEKforBYOK");
    CHECK(id->version == "eba63d27e4e34e028839b53fac905621");
    CHECK(id->target == row.target);
    CHECK(id->cloud == row.cloud);
  }
}

TEST_CASE("key identifiers are normalised and may be unversioned only when allowed",
          "[unit][format]") {
  auto id = parse_kid("HTTPS://Contoso.Vault.Azure.NET/keys/k-1/EBA63D27E4E34E028839B53FAC905621/");
  REQUIRE_OK(id);
  CHECK(id->url == "https://contoso.vault.azure.net/keys/k-1/EBA63D27E4E34E028839B53FAC905621");
  CHECK(id->target == TargetKind::kKeyVault);

  auto unversioned = parse_kid("https://contoso.managedhsm.azure.net/keys/kek", false);
  REQUIRE_OK(unversioned);
  CHECK(unversioned->version.empty());
  CHECK(unversioned->url == "https://contoso.managedhsm.azure.net/keys/kek");
  CHECK(unversioned->target == TargetKind::kManagedHsm);
}

TEST_CASE("malformed key identifiers are refused saying which rule failed", "[unit][format]") {
  const std::string good = "eba63d27e4e34e028839b53fac905621";
  const std::pair<std::string, std::string> cases[] = {
      {"http://contoso.vault.azure.net/keys/kek/" + good, "https"},
      {"https://contoso.vault.azure.net/keys/kek", "no key version"},
      {"https://contoso.vault.azure.net/keys/kek/" + good.substr(1), "31 characters"},
      {"https://contoso.vault.azure.net/keys/kek/" + good.substr(1) + "g", "not hexadecimal"},
      {"https://contoso.vault.azure.net/keys/kek/" + good + "/extra", "unexpected path segment"},
      {"https://contoso.vault.azure.net/keys/k_e_k/" + good, "letters, digits and '-'"},
      {"https://contoso.vault.azure.net/keys/kek/" + good + "?api-version=7.5", "query"},
      {"https://contoso.vault.azure.net/keys/kek/" + good + "#x", "fragment"},
      {"", "empty"},
      {"https://contoso.vault.azure.net/secrets/kek/" + good, "/keys/"},
      {"https://contoso.vault.azure.net/keys//" + good, "empty path segment"},
      {"https://user@contoso.vault.azure.net/keys/kek/" + good, "user"},
      {"https://contoso.vault.azure.net/keys/k%65k/" + good, "percent"},
      {"https:///keys/kek/" + good, "host"},
      {"https://contoso.vault.azure.net:99999/keys/kek/" + good, "port"},
      {"https://contoso.vault.azure.net", "no path"},
      {"contoso.vault.azure.net/keys/kek/" + good, "https://"},
      {"https://contoso.vault.azure.net/keys/" + std::string(128, 'a') + "/" + good, "127"},
  };
  for (const auto& [url, why] : cases) {
    INFO(url);
    check_refused(parse_kid(url), ErrorCode::kInvalidArgument, why);
  }
}

TEST_CASE("target kinds parse from their command-line names", "[unit][format]") {
  CHECK(*parse_target_kind("key-vault") == TargetKind::kKeyVault);
  CHECK(*parse_target_kind("managed-hsm") == TargetKind::kManagedHsm);
  CHECK(to_string(TargetKind::kManagedHsm) == "managed-hsm");
  CHECK_ERROR_CODE(parse_target_kind("hsm"), ErrorCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Target profiles

TEST_CASE("Key Vault accepts RSA and EC and Managed HSM also accepts AES", "[unit][format]") {
  for (const KeySpec& spec : all_key_specs()) {
    INFO(spec.name());
    REQUIRE_OK(check_target_accepts(TargetKind::kManagedHsm, spec));
    if (spec.family == KeyFamily::kAes) {
      check_refused(check_target_accepts(TargetKind::kKeyVault, spec), ErrorCode::kUnsupported,
                    "Managed HSM");
    } else {
      REQUIRE_OK(check_target_accepts(TargetKind::kKeyVault, spec));
    }
  }
  CHECK(accepted_key_specs(TargetKind::kManagedHsm) == all_key_specs());
  auto kv = accepted_key_specs(TargetKind::kKeyVault);
  REQUIRE(kv.size() == 7);
  CHECK(kv.back().name() == "ec-p256k");
  KeySpec rsa_1024{KeyFamily::kRsa, 1024, std::nullopt};
  CHECK_ERROR_CODE(check_target_accepts(TargetKind::kManagedHsm, rsa_1024),
                   ErrorCode::kUnsupported);
}

// ---------------------------------------------------------------------------------------------
// .byok files

TEST_CASE("a .byok file is written in the exact Azure layout", "[unit][format]") {
  ByokFile file;
  file.kid = kKvKid;
  file.enc = WrapAlg::kRsaAesKeyWrap;
  file.ciphertext = {0xfb, 0xff, 0xbf, 0x00, 0x01};
  file.generator = "keyport 0.1.0; \"SoftHSM\" v2.6";
  const std::string expected =
      "{\n"
      "  \"schema_version\": \"1.0.0\",\n"
      "  \"header\": {\n"
      "    \"kid\": \"https://contoso.vault.azure.net/keys/KEKforBYOK/"
      "eba63d27e4e34e028839b53fac905621\",\n"
      "    \"alg\": \"dir\",\n"
      "    \"enc\": \"CKM_RSA_AES_KEY_WRAP\"\n"
      "  },\n"
      "  \"ciphertext\": \"-_-_AAE\",\n"
      "  \"generator\": \"keyport 0.1.0; \\\"SoftHSM\\\" v2.6\"\n"
      "}\n";
  CHECK(file.to_json() == expected);

  auto back = ByokFile::parse(file.to_json());
  REQUIRE_OK(back);
  CHECK(same_file(*back, file));
}

TEST_CASE("a .byok file round-trips for every enc", "[unit][format]") {
  for (WrapAlg alg : all_wrap_algs()) {
    ByokFile file;
    file.kid = "https://hsm.managedhsm.azure.net/keys/kek/0123456789abcdef0123456789abcdef";
    file.enc = alg;
    file.ciphertext = Bytes(552, 0xa5);
    file.generator = "t";
    auto back = ByokFile::parse(file.to_json());
    REQUIRE_OK(back);
    CHECK(same_file(*back, file));
  }
}

TEST_CASE("a .byok file without generator and with padded ciphertext parses", "[unit][format]") {
  auto file =
      ByokFile::parse(R"({"schema_version":"1.0.0","header":{"kid":")" + std::string(kKvKid) +
                      R"(","alg":"dir","enc":"RSA_AES_KEY_WRAP_256"},"ciphertext":"AAE="})");
  REQUIRE_OK(file);
  CHECK(file->generator.empty());
  CHECK(file->enc == WrapAlg::kRsaAesKeyWrap256);
  CHECK(file->ciphertext == Bytes{0x00, 0x01});
}

TEST_CASE("the Securosys Primus real-world .byok file parses", "[unit][format]") {
  auto path = test::vector_path("real-world/securosys-primus-rsa4096.byok");
  auto text = read_text_file(path);
  REQUIRE_OK(text);
  auto file = ByokFile::parse(*text);
  REQUIRE_OK(file);
  CHECK(file->kid ==
        "https://securosysprimuskeyvault.vault.azure.net/keys/KekForByokR4k/"
        "083cf1b67d314d15b1fa46915cde3217");
  CHECK(file->enc == WrapAlg::kRsaAesKeyWrap);
  CHECK(file->alg == "dir");
  CHECK(file->ciphertext.size() == 2896);
  CHECK_THAT(file->generator, Catch::StartsWith("Primus Java BYOK-Tool"));
  auto again = ByokFile::parse(file->to_json());
  REQUIRE_OK(again);
  CHECK(same_file(*again, *file));
}

TEST_CASE("malformed .byok files are refused naming the member", "[unit][format]") {
  REQUIRE_OK(ByokFile::parse(byok_text()));
  const std::pair<std::string, std::string> cases[] = {
      {byok_text(", \"kid\": \"" + std::string(kKvKid) + "\""), "duplicate member \"kid\""},
      {byok_text("", ", \"extra\": 1"), "\"extra\""},
      {byok_text(", \"cty\": \"x\""), "\"cty\""},
      {byok_text("", "", kKvKid, "\"2.0\""), "schema_version"},
      {byok_text("", "", kKvKid, "\"1.0.0\"", "\"RSA-OAEP\""), "header.alg"},
      {byok_text("", "", kKvKid, "\"1.0.0\"", "\"dir\"", "\"A256KW\""), "header.enc"},
      {byok_text("", "", "https://contoso.vault.azure.net/keys/KEKforBYOK"), "header.kid"},
      {byok_text("", "", kKvKid, "\"1.0.0\"", "\"dir\"", "\"CKM_RSA_AES_KEY_WRAP\"", "\"+/+/\""),
       "ciphertext"},
      {byok_text("", "", kKvKid, "\"1.0.0\"", "\"dir\"", "\"CKM_RSA_AES_KEY_WRAP\"", "42"),
       "ciphertext"},
      {byok_text("", "", kKvKid, "\"1.0.0\"", "\"dir\"", "\"CKM_RSA_AES_KEY_WRAP\"", "\"Zh\""),
       "ciphertext"},
      {byok_text("", "", kKvKid, "\"1.0.0\"", "\"dir\"", "\"CKM_RSA_AES_KEY_WRAP\"", "\"\""),
       "ciphertext"},
      {R"({"schema_version":"1.0.0","header":"x","ciphertext":"AAE"})", "header"},
      {R"({"schema_version":"1.0.0","ciphertext":"AAE"})", "header"},
      {R"({"schema_version":"1.0.0","header":{"kid":")" + std::string(kKvKid) +
           R"(","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"AAE","generator":1})",
       "generator"},
      {"this is not JSON", "JSON"},
      {"[1, 2]", "object"},
  };
  for (const auto& [text, member] : cases) {
    INFO(text);
    check_refused(ByokFile::parse(text), ErrorCode::kFormat, member);
  }
}

// ---------------------------------------------------------------------------------------------
// Fuzz seed corpora: every seed is accepted or refused as its name says ("...-refused").

TEST_CASE("the fuzz seed corpora are accepted or refused as their names say", "[unit][format]") {
  namespace fs = std::filesystem;
  const fs::path fuzz = test::source_dir() / "tests" / "fuzz";
  std::size_t seeds = 0;
  for (const char* corpus : {"byok_file_corpus", "kek_corpus"}) {
    const fs::path dir = fuzz / corpus;
    REQUIRE(fs::is_directory(dir));
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      INFO(corpus << "/" << name);
      auto bytes = read_file(entry.path());
      REQUIRE_OK(bytes);
      const bool refused = name.find("-refused") != std::string::npos;
      const bool ok = std::string_view(corpus) == "kek_corpus"
                          ? static_cast<bool>(load_kek(*bytes, name))
                          : static_cast<bool>(ByokFile::parse(as_chars(*bytes)));
      CHECK(ok == !refused);
      ++seeds;
    }
  }
  CHECK(seeds >= 20);
}
