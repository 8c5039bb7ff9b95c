// SPDX-License-Identifier: Apache-2.0
// byok/key_material.h: key files in every format keyport reads, written here by OpenSSL (EVP and
// the openssl command), re-encoded as an exact PKCS#8 or raw AES key, and wrapped into .byok
// files that the independent OpenSSL checker (tests/support/oracle.h) opens back to the same key.
#include <catch2/catch.hpp>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "byok/byok_file.h"
#include "byok/key_material.h"
#include "byok/kid.h"
#include "byok/lint.h"
#include "byok/public_key.h"
#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/ossl.h"
#include "core/random.h"
#include "core/secret.h"
#include "tests/support/oracle.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::byok;
namespace oracle = keyport::test::oracle;
namespace fs = std::filesystem;

namespace {

using PkeyPtr = ossl::UniquePtr<EVP_PKEY>;

const std::string kVersion = "0123456789abcdef0123456789abcdef";

EVP_PKEY* kek() {
  static PkeyPtr key = oracle::rsa_keygen(2048);
  return key.get();
}
EVP_PKEY* rsa2048() {
  static PkeyPtr key = oracle::rsa_keygen(2048);
  return key.get();
}
EVP_PKEY* p256() {
  static PkeyPtr key = oracle::ec_keygen("P-256");
  return key.get();
}

PublicKey public_key(EVP_PKEY* key) {
  auto pk = PublicKey::from_spki_der(oracle::spki_der(key));
  REQUIRE_OK(pk);
  return *pk;
}

KeyId kid(const std::string& host) {
  auto id = parse_kid("https://" + host + "/keys/KEK/" + kVersion);
  REQUIRE_OK(id);
  return *id;
}

Bytes exposed(const SecretBytes& s) {
  const auto b = s.reveal(SecretAccess::unsafe());
  return Bytes(b.begin(), b.end());
}

Bytes bio_bytes(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  REQUIRE(len > 0);
  return Bytes(data, data + len);
}

// The writers: each one a different OpenSSL encoder.
Bytes pkcs8_pem(EVP_PKEY* key) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) ==
          1);
  return bio_bytes(bio.get());
}
Bytes traditional_pem(EVP_PKEY* key, const EVP_CIPHER* cipher = nullptr,
                      const std::string& pass = "") {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  auto* p = reinterpret_cast<unsigned char*>(const_cast<char*>(pass.data()));
  REQUIRE(PEM_write_bio_PrivateKey_traditional(bio.get(), key, cipher, cipher ? p : nullptr,
                                               static_cast<int>(pass.size()), nullptr,
                                               nullptr) == 1);
  return bio_bytes(bio.get());
}
Bytes traditional_der(EVP_PKEY* key) {
  const int len = i2d_PrivateKey(key, nullptr);
  REQUIRE(len > 0);
  Bytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  REQUIRE(i2d_PrivateKey(key, &p) == len);
  return out;
}
Bytes encrypted_pkcs8_pem(EVP_PKEY* key, const std::string& pass) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), pass.data(),
                                        static_cast<int>(pass.size()), nullptr, nullptr) == 1);
  return bio_bytes(bio.get());
}
Bytes encrypted_pkcs8_der(EVP_PKEY* key, const std::string& pass) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(i2d_PKCS8PrivateKey_bio(bio.get(), key, EVP_aes_128_cbc(), pass.data(),
                                  static_cast<int>(pass.size()), nullptr, nullptr) == 1);
  return bio_bytes(bio.get());
}

std::string text_of(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

KeyMaterial load(const Bytes& file, const SecretBytes* passphrase = nullptr) {
  auto material = load_key_material(file, passphrase);
  REQUIRE_OK(material);
  return std::move(*material);
}

// The material is the exact PKCS#8 of `key`: OpenSSL parses it with no byte left over, to the
// same public key.
void check_is_exact_pkcs8_of(const KeyMaterial& m, EVP_PKEY* key) {
  const Bytes encoded = exposed(m.encoded);
  std::size_t der_len = 0;
  PkeyPtr parsed = oracle::parse_pkcs8(encoded, &der_len);
  CHECK(der_len == encoded.size());
  CHECK(oracle::spki_der(parsed.get()) == oracle::spki_der(key));
  REQUIRE(m.public_key.has_value());
  CHECK(m.public_key->spki_der() == oracle::spki_der(key));
}

}  // namespace

TEST_CASE("RSA key material loads from PKCS#8 and PKCS#1, PEM and DER, to one exact PKCS#8",
          "[unit][key material]") {
  struct Input {
    const char* what;
    Bytes file;
    KeyFileFormat format;
    bool pem;
  };
  const std::vector<Input> inputs = {
      {"PKCS#8 PEM", pkcs8_pem(rsa2048()), KeyFileFormat::kPkcs8, true},
      {"PKCS#8 DER", oracle::pkcs8_der(rsa2048()), KeyFileFormat::kPkcs8, false},
      {"PKCS#1 PEM", traditional_pem(rsa2048()), KeyFileFormat::kPkcs1, true},
      {"PKCS#1 DER", traditional_der(rsa2048()), KeyFileFormat::kPkcs1, false},
  };
  REQUIRE(text_of(inputs[2].file).find("BEGIN RSA PRIVATE KEY") != std::string::npos);
  Bytes first;
  for (const Input& in : inputs) {
    INFO(in.what);
    CHECK_FALSE(key_file_is_encrypted(in.file));
    const KeyMaterial m = load(in.file);
    CHECK(m.spec.name() == "rsa-2048");
    CHECK(m.format == in.format);
    CHECK(m.pem == in.pem);
    check_is_exact_pkcs8_of(m, rsa2048());
    if (first.empty()) {
      first = exposed(m.encoded);
    }
    CHECK(exposed(m.encoded) == first);
  }
  CHECK(first == oracle::pkcs8_der(rsa2048()));
}

TEST_CASE("EC key material loads from PKCS#8 and SEC1 and its PKCS#8 always carries the public key",
          "[unit][key material]") {
  const Bytes point = oracle::ec_public_point(p256());
  REQUIRE(point.size() == 65);
  for (const Bytes& file : {pkcs8_pem(p256()), traditional_pem(p256()), traditional_der(p256()),
                            oracle::pkcs8_der(p256())}) {
    const KeyMaterial m = load(file);
    CHECK(m.spec.name() == "ec-p256");
    check_is_exact_pkcs8_of(m, p256());
    CHECK(test::contains_bytes(exposed(m.encoded), point));
    CHECK(m.encoded.size() == 138);  // OpenSSL's P-256 PKCS#8 with the public key
  }
  // A SEC1 key written without its public key (as SoftHSM keeps EC keys) still gets one.
  PkeyPtr no_pub(EVP_PKEY_dup(p256()));
  REQUIRE(EVP_PKEY_set_int_param(no_pub.get(), OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC, 0) == 1);
  const Bytes sec1 = traditional_pem(no_pub.get());
  REQUIRE_FALSE(test::contains_bytes(sec1, point));
  const Bytes p8_no_pub = oracle::pkcs8_der(no_pub.get());
  REQUIRE_FALSE(test::contains_bytes(p8_no_pub, point));
  for (const Bytes& file : {sec1, p8_no_pub}) {
    const KeyMaterial m = load(file);
    CHECK(test::contains_bytes(exposed(m.encoded), point));
    auto info = inspect_pkcs8(m.encoded);
    REQUIRE_OK(info);
    CHECK(info->ec_public_key_present);
  }
}

TEST_CASE("key material on every supported curve loads from files the openssl command wrote",
          "[unit][key material]") {
  const fs::path dir = test::make_scratch_subdir("key-material-openssl");
  struct Curve {
    const char* openssl;
    const char* spec;
  };
  for (const Curve& c : {Curve{"prime256v1", "ec-p256"}, Curve{"secp384r1", "ec-p384"},
                         Curve{"secp521r1", "ec-p521"}, Curve{"secp256k1", "ec-p256k"}}) {
    INFO(c.openssl);
    // `openssl ecparam -genkey` writes an EC PARAMETERS block before the EC PRIVATE KEY.
    const fs::path sec1 = dir / (std::string(c.openssl) + "-sec1.pem");
    std::string out;
    REQUIRE(test::run_command("openssl ecparam -genkey -name " + std::string(c.openssl) +
                                  " -out '" + sec1.string() + "'",
                              &out) == 0);
    auto file = read_file(sec1);
    REQUIRE_OK(file);
    REQUIRE(text_of(*file).find("BEGIN EC PARAMETERS") != std::string::npos);
    const KeyMaterial m = load(*file);
    CHECK(m.spec.name() == c.spec);
    CHECK(m.format == KeyFileFormat::kSec1);
    std::size_t der_len = 0;
    PkeyPtr parsed = oracle::parse_pkcs8(exposed(m.encoded), &der_len);
    CHECK(der_len == m.encoded.size());
    CHECK(test::contains_bytes(exposed(m.encoded), oracle::ec_public_point(parsed.get())));
    CHECK(oracle::ec_group_name(parsed.get()) == c.openssl);
  }
}

TEST_CASE(
    "encrypted PKCS#8 key material needs its passphrase and a wrong one is an authentication error",
    "[unit][key material]") {
  const std::string pass = "correct horse battery staple";
  const SecretBytes good = SecretBytes::from_string(pass);
  const SecretBytes bad = SecretBytes::from_string("Correct horse battery staple");
  const Bytes pem = encrypted_pkcs8_pem(p256(), pass);
  const Bytes der = encrypted_pkcs8_der(rsa2048(), pass);
  REQUIRE(text_of(pem).find("BEGIN ENCRYPTED PRIVATE KEY") != std::string::npos);
  CHECK(key_file_is_encrypted(pem));
  CHECK(key_file_is_encrypted(der));

  const KeyMaterial ec = load(pem, &good);
  CHECK(ec.format == KeyFileFormat::kEncryptedPkcs8);
  check_is_exact_pkcs8_of(ec, p256());
  const KeyMaterial rsa = load(der, &good);
  CHECK(rsa.format == KeyFileFormat::kEncryptedPkcs8);
  CHECK_FALSE(rsa.pem);
  check_is_exact_pkcs8_of(rsa, rsa2048());

  CHECK_ERROR_CODE(load_key_material(pem, &bad), ErrorCode::kAuth);
  CHECK_ERROR_CODE(load_key_material(der, &bad), ErrorCode::kAuth);
  CHECK_ERROR_CODE(load_key_material(pem, nullptr), ErrorCode::kAuth);
  CHECK_ERROR_CODE(load_key_material(der, nullptr), ErrorCode::kAuth);
}

TEST_CASE("legacy-encrypted PEM key material decrypts with its passphrase",
          "[unit][key material]") {
  const std::string pass = "legacy-pass";
  const Bytes pem = traditional_pem(rsa2048(), EVP_aes_128_cbc(), pass);
  REQUIRE(text_of(pem).find("Proc-Type: 4,ENCRYPTED") != std::string::npos);
  CHECK(key_file_is_encrypted(pem));
  const SecretBytes good = SecretBytes::from_string(pass);
  const KeyMaterial m = load(pem, &good);
  CHECK(m.format == KeyFileFormat::kPkcs1);
  check_is_exact_pkcs8_of(m, rsa2048());
  const SecretBytes bad = SecretBytes::from_string("wrong");
  CHECK_ERROR_CODE(load_key_material(pem, &bad), ErrorCode::kAuth);
  CHECK_ERROR_CODE(load_key_material(pem, nullptr), ErrorCode::kAuth);
}

TEST_CASE("raw and hex AES key material of 16, 24 and 32 bytes loads as it is",
          "[unit][key material]") {
  for (std::size_t n : {16u, 24u, 32u}) {
    INFO(n);
    const Bytes key = random_bytes(n);
    const KeyMaterial raw = load(key);
    CHECK(raw.spec == KeySpec{KeyFamily::kAes, static_cast<unsigned>(n * 8), std::nullopt});
    CHECK(raw.format == KeyFileFormat::kRawAes);
    CHECK(exposed(raw.encoded) == key);
    CHECK_FALSE(raw.public_key.has_value());

    std::string hex = hex_encode(key);
    std::transform(hex.begin(), hex.begin() + 8, hex.begin(),
                   [](char c) { return static_cast<char>(std::toupper(c)); });
    const std::string text = "  " + hex + "\r\n";
    const KeyMaterial from_hex = load(Bytes(text.begin(), text.end()));
    CHECK(from_hex.format == KeyFileFormat::kHexAes);
    CHECK(exposed(from_hex.encoded) == key);
  }
}

TEST_CASE(
    "key material Azure BYOK does not take is refused as unsupported, naming the accepted types",
    "[unit][key material]") {
  PkeyPtr rsa1024 = oracle::rsa_keygen(1024);
  PkeyPtr p192 = oracle::ec_keygen("P-192");
  PkeyPtr ed25519(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  REQUIRE(ed25519);
  for (const Bytes& file :
       {pkcs8_pem(rsa1024.get()), traditional_pem(p192.get()), oracle::pkcs8_der(ed25519.get())}) {
    auto m = load_key_material(file, nullptr);
    CHECK_ERROR_CODE(m, ErrorCode::kUnsupported);
    CHECK(m.error().detail() == lint_code::kKeyType);
    CHECK(m.error().message().find("rsa-2048") != std::string::npos);
  }
}

TEST_CASE("files that hold no usable key material are refused with a reason",
          "[unit][key material]") {
  // 17 bytes: not an AES key size, not DER.
  CHECK_ERROR_CODE(load_key_material(random_bytes(17), nullptr), ErrorCode::kFormat);
  // Garbage and an empty file.
  const std::string garbage = "this is not a key at all, just some words in a file\n";
  CHECK_ERROR_CODE(load_key_material(as_bytes(garbage), nullptr), ErrorCode::kFormat);
  CHECK_ERROR_CODE(load_key_material({}, nullptr), ErrorCode::kFormat);
  // 30 hex digits: an AES key has 32, 48 or 64.
  const std::string short_hex = std::string(30, 'a') + "\n";
  CHECK_ERROR_CODE(load_key_material(as_bytes(short_hex), nullptr), ErrorCode::kFormat);
  // A public key is not a private key.
  const std::string pub = oracle::spki_pem(rsa2048());
  CHECK_ERROR_CODE(load_key_material(as_bytes(pub), nullptr), ErrorCode::kInvalidArgument);
  // Two private keys in one file.
  Bytes two = pkcs8_pem(rsa2048());
  const Bytes second = pkcs8_pem(p256());
  two.insert(two.end(), second.begin(), second.end());
  CHECK_ERROR_CODE(load_key_material(two, nullptr), ErrorCode::kFormat);
  // A DER key with bytes after it.
  Bytes trailing = oracle::pkcs8_der(p256());
  trailing.push_back(0x00);
  CHECK_ERROR_CODE(load_key_material(trailing, nullptr), ErrorCode::kFormat);
  // A damaged PEM body.
  std::string damaged = text_of(pkcs8_pem(p256()));
  damaged[40] = '*';
  CHECK_ERROR_CODE(load_key_material(as_bytes(damaged), nullptr), ErrorCode::kFormat);
}

TEST_CASE("key material next to a public key in one PEM file still loads", "[unit][key material]") {
  const std::string pub = oracle::spki_pem(p256());
  Bytes bundle(pub.begin(), pub.end());
  const Bytes key = pkcs8_pem(p256());
  bundle.insert(bundle.end(), key.begin(), key.end());
  const KeyMaterial m = load(bundle);
  check_is_exact_pkcs8_of(m, p256());
}

TEST_CASE(
    "inspecting PKCS#8 key material finds the DER length, the key type and a missing EC public key",
    "[unit][key material]") {
  PkeyPtr no_pub(EVP_PKEY_dup(p256()));
  REQUIRE(EVP_PKEY_set_int_param(no_pub.get(), OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC, 0) == 1);
  Bytes softhsm = oracle::pkcs8_der(no_pub.get());
  REQUIRE(softhsm.size() == 67);
  softhsm.resize(72, 0x00);
  auto info = inspect_pkcs8(SecretBytes(softhsm));
  REQUIRE_OK(info);
  CHECK(info->der_length == 67);
  CHECK(info->spec.name() == "ec-p256");
  CHECK_FALSE(info->ec_public_key_present);
  CHECK(info->public_key.spki_der() == oracle::spki_der(p256()));

  auto bad = inspect_pkcs8(SecretBytes(random_bytes(40)));
  CHECK_ERROR_CODE(bad, ErrorCode::kFormat);
  CHECK(bad.error().detail() == lint_code::kPkcs8Invalid);
}

TEST_CASE("the check value of AES key material is the first 3 bytes of AES-ECB of a zero block",
          "[unit][key material]") {
  for (std::size_t n : {16u, 24u, 32u}) {
    const Bytes key = random_bytes(n);
    auto kcv = aes_key_check_value(SecretBytes(key));
    REQUIRE_OK(kcv);
    const Bytes expected = oracle::aes_check_value(key);
    CHECK(*kcv == hex_encode(std::span(expected).first(3)));
  }
  // FIPS-197 C.1-style check: AES-128 with the all-zero key encrypts 0^16 to 66e94bd4...
  auto zero = aes_key_check_value(SecretBytes(Bytes(16, 0)));
  REQUIRE_OK(zero);
  CHECK(*zero == "66e94b");
  CHECK_ERROR_CODE(aes_key_check_value(SecretBytes(Bytes(20, 1))), ErrorCode::kInvalidArgument);
}

TEST_CASE("wrapped key material opens with OpenSSL alone to exactly the key that was loaded",
          "[unit][key material]") {
  struct Case {
    const char* what;
    Bytes file;
    std::string host;
    WrapAlg enc;
  };
  const Bytes aes = random_bytes(32);
  const std::vector<Case> cases = {
      {"rsa-2048 PKCS#1", traditional_pem(rsa2048()), "contoso.vault.azure.net",
       WrapAlg::kRsaAesKeyWrap},
      {"ec-p256 SEC1", traditional_pem(p256()), "contoso.vault.azure.net",
       WrapAlg::kRsaAesKeyWrap256},
      {"aes-256 raw", aes, "contoso.managedhsm.azure.net", WrapAlg::kRsaAesKeyWrap384},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const KeyMaterial m = load(c.file);
    const KeyId id = kid(c.host);
    auto file = wrap_key_material(m, public_key(kek()), id, *id.target, c.enc, "keyport test");
    REQUIRE_OK(file);
    CHECK(file->kid == id.url);
    CHECK(file->enc == c.enc);
    CHECK(file->ciphertext.size() == 256 + 8 + (m.encoded.size() + 7) / 8 * 8);
    const Bytes plaintext = oracle::unwrap_transfer_blob(kek(), c.enc, file->ciphertext);
    CHECK(plaintext == exposed(m.encoded));
    if (m.spec.family == KeyFamily::kAes) {
      CHECK(plaintext == aes);
    } else {
      std::size_t der_len = 0;
      PkeyPtr opened = oracle::parse_pkcs8(plaintext, &der_len);
      CHECK(der_len == plaintext.size());
      CHECK(oracle::spki_der(opened.get()) == m.public_key->spki_der());
    }
    // The written text reads back with keyport's strict reader, and lints clean.
    auto reread = ByokFile::parse(file->to_json());
    REQUIRE_OK(reread);
    CHECK(reread->ciphertext == file->ciphertext);
    InspectOptions o;
    o.kek_private_der = std::make_shared<const SecretBytes>(SecretBytes(oracle::pkcs8_der(kek())));
    const InspectReport r = inspect_byok(as_bytes(file->to_json()), o);
    CHECK_FALSE(r.has_errors());
    REQUIRE(r.key.has_value());
    CHECK(r.key->spec == std::optional<KeySpec>(m.spec));
  }
}

TEST_CASE("wrapping key material refuses a key the target does not take and an unversioned KEK id",
          "[unit][key material]") {
  const KeyMaterial aes = load(random_bytes(16));
  const KeyId vault = kid("contoso.vault.azure.net");
  auto refused = wrap_key_material(aes, public_key(kek()), vault, TargetKind::kKeyVault,
                                   WrapAlg::kRsaAesKeyWrap, "test");
  CHECK_ERROR_CODE(refused, ErrorCode::kUnsupported);
  CHECK(refused.error().detail() == lint_code::kProfile);

  auto unversioned = parse_kid("https://contoso.vault.azure.net/keys/KEK", false);
  REQUIRE_OK(unversioned);
  const KeyMaterial rsa = load(oracle::pkcs8_der(rsa2048()));
  CHECK_ERROR_CODE(wrap_key_material(rsa, public_key(kek()), *unversioned, TargetKind::kKeyVault,
                                     WrapAlg::kRsaAesKeyWrap, "test"),
                   ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(wrap_key_material(rsa, public_key(p256()), vault, TargetKind::kKeyVault,
                                     WrapAlg::kRsaAesKeyWrap, "test"),
                   ErrorCode::kUnsupported);
}
