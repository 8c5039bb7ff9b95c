// SPDX-License-Identifier: Apache-2.0
// byok/crypto.h: RFC 3394 and RFC 5649 known answers, Wycheproof AES-KW, AES-KWP and RSA-OAEP
// vectors, RSA-AES transfer blob round trips, and cross-checks against raw OpenSSL EVP calls that
// are written here, independently of keyport's own wrap and unwrap.
#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "byok/crypto.h"
#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "core/ossl.h"
#include "core/random.h"
#include "core/secret.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::byok;

namespace {

const std::vector<unsigned> kKekSizes = {2048, 3072, 4096};

Bytes from_hex(std::string_view text) {
  auto bytes = hex_decode(text);
  REQUIRE_OK(bytes);
  return *std::move(bytes);
}

SecretBytes secret_from_hex(std::string_view text) {
  return SecretBytes(from_hex(text));
}

// A copy of secret bytes, for comparisons in assertions.
Bytes exposed(const SecretBytes& secret) {
  const auto bytes = secret.reveal(SecretAccess::unsafe());
  return Bytes(bytes.begin(), bytes.end());
}

bool openssl_queue_is_empty() {
  return ERR_peek_error() == 0;
}

// RSA key generation is slow; each size is made once per process.
EVP_PKEY* test_rsa_key(unsigned bits) {
  static std::map<unsigned, ossl::UniquePtr<EVP_PKEY>> cache;
  auto& slot = cache[bits];
  if (!slot) {
    slot.reset(EVP_RSA_gen(bits));
    REQUIRE(slot);
  }
  return slot.get();
}

ossl::UniquePtr<EVP_PKEY> fresh_rsa_key(unsigned bits) {
  ossl::UniquePtr<EVP_PKEY> key(EVP_RSA_gen(bits));
  REQUIRE(key);
  return key;
}

ossl::UniquePtr<EVP_PKEY> fresh_ec_key() {
  ossl::UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  REQUIRE(key);
  return key;
}

std::size_t modulus_bytes_of(EVP_PKEY* key) {
  return static_cast<std::size_t>(EVP_PKEY_get_bits(key) + 7) / 8;
}

Bytes spki_der(EVP_PKEY* key) {
  const int len = i2d_PUBKEY(key, nullptr);
  REQUIRE(len > 0);
  Bytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  REQUIRE(i2d_PUBKEY(key, &p) == len);
  return out;
}

SecretBytes pkcs8_der(EVP_PKEY* key) {
  ossl::UniquePtr<PKCS8_PRIV_KEY_INFO> info(EVP_PKEY2PKCS8(key));
  REQUIRE(info);
  const int len = i2d_PKCS8_PRIV_KEY_INFO(info.get(), nullptr);
  REQUIRE(len > 0);
  SecretBytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.reveal_mut(SecretAccess::unsafe()).data();
  REQUIRE(i2d_PKCS8_PRIV_KEY_INFO(info.get(), &p) == len);
  return out;
}

// The type-specific encoding, which for RSA is PKCS#1 RSAPrivateKey.
SecretBytes pkcs1_der(EVP_PKEY* key) {
  const int len = i2d_PrivateKey(key, nullptr);
  REQUIRE(len > 0);
  SecretBytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.reveal_mut(SecretAccess::unsafe()).data();
  REQUIRE(i2d_PrivateKey(key, &p) == len);
  return out;
}

ossl::UniquePtr<EVP_PKEY> private_key_from_der(std::span<const std::uint8_t> der) {
  const unsigned char* p = der.data();
  ossl::UniquePtr<EVP_PKEY> key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(key);
  return key;
}

// The OAEP digest for each transfer algorithm, spelled out here rather than taken from keyport.
const EVP_MD* reference_md(WrapAlg alg) {
  switch (alg) {
    case WrapAlg::kRsaAesKeyWrap:
      return EVP_sha1();
    case WrapAlg::kRsaAesKeyWrap256:
      return EVP_sha256();
    case WrapAlg::kRsaAesKeyWrap384:
      return EVP_sha384();
  }
  return nullptr;
}

ossl::UniquePtr<EVP_PKEY_CTX> reference_oaep_ctx(EVP_PKEY* key, const EVP_MD* md, bool encrypt) {
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key, nullptr));
  REQUIRE(ctx);
  REQUIRE((encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) > 0);
  REQUIRE(EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md) > 0);
  REQUIRE(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) > 0);
  return ctx;
}

Bytes reference_oaep_decrypt(EVP_PKEY* key, const EVP_MD* md, std::span<const std::uint8_t> ct) {
  auto ctx = reference_oaep_ctx(key, md, false);
  std::size_t len = 0;
  REQUIRE(EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ct.data(), ct.size()) == 1);
  Bytes out(len);
  REQUIRE(EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ct.data(), ct.size()) == 1);
  out.resize(len);
  return out;
}

Bytes reference_oaep_encrypt(EVP_PKEY* key, const EVP_MD* md, std::span<const std::uint8_t> pt) {
  auto ctx = reference_oaep_ctx(key, md, true);
  std::size_t len = 0;
  REQUIRE(EVP_PKEY_encrypt(ctx.get(), nullptr, &len, pt.data(), pt.size()) == 1);
  Bytes out(len);
  REQUIRE(EVP_PKEY_encrypt(ctx.get(), out.data(), &len, pt.data(), pt.size()) == 1);
  out.resize(len);
  return out;
}

// AES-256 key wrap with padding (RFC 5649) straight through EVP.
Bytes reference_kwp256(bool encrypt, std::span<const std::uint8_t> key,
                       std::span<const std::uint8_t> in) {
  REQUIRE(key.size() == 32);
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  REQUIRE(ctx);
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  REQUIRE(EVP_CipherInit_ex(ctx.get(), EVP_aes_256_wrap_pad(), nullptr, key.data(), nullptr,
                            encrypt ? 1 : 0) == 1);
  Bytes out(in.size() + 16);
  int len = 0;
  REQUIRE(EVP_CipherUpdate(ctx.get(), out.data(), &len, in.data(), static_cast<int>(in.size())) ==
          1);
  int tail = 0;
  REQUIRE(EVP_CipherFinal_ex(ctx.get(), out.data() + len, &tail) == 1);
  out.resize(static_cast<std::size_t>(len + tail));
  return out;
}

Bytes concat(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::size_t kwp_length(std::size_t plaintext_len) {
  return 8 + 8 * ((plaintext_len + 7) / 8);
}

std::string hex_field(const Json& obj, const char* name) {
  return obj.at(name).get<std::string>();
}

struct Tally {
  int valid = 0;
  int invalid = 0;
  int acceptable = 0;
  int acceptable_unwrapped = 0;
  int with_label = 0;
  int total() const { return valid + invalid + acceptable + with_label; }
};

using WrapFn = Result<Bytes> (*)(const SecretBytes&, const SecretBytes&);
using UnwrapFn = Result<SecretBytes> (*)(const SecretBytes&, std::span<const std::uint8_t>);

// Runs every case of a Wycheproof keywrap_test_schema_v1 file through wrap and unwrap.
Tally check_keywrap_vectors(const Json& doc, WrapFn wrap, UnwrapFn unwrap) {
  Tally tally;
  for (const auto& group : doc.at("testGroups")) {
    const auto key_bits = group.at("keySize").get<std::size_t>();
    for (const auto& tc : group.at("tests")) {
      const std::string result = tc.at("result").get<std::string>();
      INFO("tcId " << tc.at("tcId").get<int>() << " (" << tc.at("comment").get<std::string>()
                   << "), expected " << result);
      const SecretBytes key = secret_from_hex(hex_field(tc, "key"));
      REQUIRE(key.size() * 8 == key_bits);
      const SecretBytes msg = secret_from_hex(hex_field(tc, "msg"));
      const Bytes ct = from_hex(hex_field(tc, "ct"));
      auto wrapped = wrap(key, msg);
      auto unwrapped = unwrap(key, ct);
      if (result == "valid") {
        REQUIRE_OK(wrapped);
        CHECK(hex_encode(*wrapped) == hex_encode(ct));
        REQUIRE_OK(unwrapped);
        CHECK(hex_encode(exposed(*unwrapped)) == hex_encode(exposed(msg)));
        ++tally.valid;
      } else if (result == "invalid") {
        REQUIRE_FALSE(unwrapped);
        CHECK(unwrapped.error().code() == ErrorCode::kIntegrityFailure);
        CHECK(unwrapped.error().message() == kIntegrityMessage);
        // Some invalid cases are about wrapping (an input KW cannot take); either way our wrap
        // must never produce the invalid ciphertext.
        if (wrapped) {
          CHECK(*wrapped != ct);
        }
        ++tally.invalid;
      } else {
        REQUIRE(result == "acceptable");
        // Recorded only; if we do accept it, the answer must be the right one.
        if (unwrapped) {
          ++tally.acceptable_unwrapped;
          CHECK(hex_encode(exposed(*unwrapped)) == hex_encode(exposed(msg)));
        }
        if (wrapped) {
          CHECK(*wrapped == ct);
        }
        ++tally.acceptable;
      }
      CHECK(openssl_queue_is_empty());
    }
  }
  return tally;
}

// Runs every case of a Wycheproof rsaes_oaep_decrypt_schema_v1 file through rsa_oaep_decrypt
// and, for the valid ones, an rsa_oaep_encrypt -> rsa_oaep_decrypt round trip.
void check_oaep_vectors(const std::string& file, OaepHash hash, const std::string& sha_name) {
  const auto doc = test::load_wycheproof(file);
  Tally tally;
  for (const auto& group : doc.at("testGroups")) {
    REQUIRE(group.at("sha").get<std::string>() == sha_name);
    REQUIRE(group.at("mgf").get<std::string>() == "MGF1");
    REQUIRE(group.at("mgfSha").get<std::string>() == sha_name);
    const SecretBytes private_der = secret_from_hex(hex_field(group, "privateKeyPkcs8"));
    const auto private_key = private_key_from_der(private_der.reveal(SecretAccess::unsafe()));
    const Bytes public_der = spki_der(private_key.get());
    for (const auto& tc : group.at("tests")) {
      const std::string result = tc.at("result").get<std::string>();
      INFO(file << " tcId " << tc.at("tcId").get<int>() << " (" << tc.at("comment") << "), "
                << result);
      const SecretBytes msg = secret_from_hex(hex_field(tc, "msg"));
      const Bytes ct = from_hex(hex_field(tc, "ct"));
      auto decrypted = rsa_oaep_decrypt(private_der, hash, ct);
      CHECK(openssl_queue_is_empty());
      if (!hex_field(tc, "label").empty()) {
        // Our API always uses the empty label, so a ciphertext made under any other label must
        // not decrypt, whatever Wycheproof says about it under its own label.
        REQUIRE_FALSE(decrypted);
        CHECK(decrypted.error().code() == ErrorCode::kIntegrityFailure);
        ++tally.with_label;
        continue;
      }
      if (result == "valid") {
        REQUIRE_OK(decrypted);
        CHECK(hex_encode(exposed(*decrypted)) == hex_encode(exposed(msg)));
        auto again = rsa_oaep_encrypt(public_der, hash, msg);
        REQUIRE_OK(again);
        CHECK(again->size() == ct.size());
        auto round_trip = rsa_oaep_decrypt(private_der, hash, *again);
        REQUIRE_OK(round_trip);
        CHECK(round_trip->ct_equal(msg));
        ++tally.valid;
      } else if (result == "invalid") {
        REQUIRE_FALSE(decrypted);
        CHECK(decrypted.error().code() == ErrorCode::kIntegrityFailure);
        CHECK(decrypted.error().message() == kIntegrityMessage);
        ++tally.invalid;
      } else {
        REQUIRE(result == "acceptable");
        if (decrypted) {
          ++tally.acceptable_unwrapped;
          CHECK(decrypted->ct_equal(msg));
        }
        ++tally.acceptable;
      }
    }
  }
  WARN(file << ": checked " << tally.valid << " valid, " << tally.invalid << " invalid, "
            << tally.acceptable << " acceptable (" << tally.acceptable_unwrapped << " decrypted), "
            << tally.with_label << " with a non-empty label (all refused, as our label is empty)");
  REQUIRE(tally.total() == doc.at("numberOfTests").get<int>());
  REQUIRE(tally.valid >= 5);
  REQUIRE(tally.invalid >= 15);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Known answers

TEST_CASE("AES-KWP reproduces both RFC 5649 section 6 examples", "[unit][crypto][kat]") {
  const SecretBytes kek = secret_from_hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
  const std::pair<const char*, const char*> examples[] = {
      {"c37b7e6492584340bed12207808941155068f738",
       "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
      {"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
  };
  for (const auto& [key_hex, wrapped_hex] : examples) {
    INFO("key " << key_hex);
    const SecretBytes key = secret_from_hex(key_hex);
    auto wrapped = aes_kwp_wrap(kek, key);
    REQUIRE_OK(wrapped);
    CHECK(hex_encode(*wrapped) == wrapped_hex);
    auto unwrapped = aes_kwp_unwrap(kek, from_hex(wrapped_hex));
    REQUIRE_OK(unwrapped);
    CHECK(hex_encode(exposed(*unwrapped)) == key_hex);
  }
}

TEST_CASE("AES-KW reproduces the RFC 3394 section 4.1 to 4.6 examples", "[unit][crypto][kat]") {
  struct Example {
    const char* section;
    const char* kek;
    const char* key;
    const char* wrapped;
  };
  const Example examples[] = {
      {"4.1", "000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
       "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"},
      {"4.2", "000102030405060708090a0b0c0d0e0f1011121314151617",
       "00112233445566778899aabbccddeeff", "96778b25ae6ca435f92b5b97c050aed2468ab8a17ad84e5d"},
      {"4.3", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
       "00112233445566778899aabbccddeeff", "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7"},
      {"4.4", "000102030405060708090a0b0c0d0e0f1011121314151617",
       "00112233445566778899aabbccddeeff0001020304050607",
       "031d33264e15d33268f24ec260743edce1c6c7ddee725a936ba814915c6762d2"},
      {"4.5", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
       "00112233445566778899aabbccddeeff0001020304050607",
       "a8f9bc1612c68b3ff6e6f4fbe30e71e4769c8b80a32cb8958cd5d17d6b254da1"},
      {"4.6", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
       "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
       "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"},
  };
  for (const auto& ex : examples) {
    INFO("RFC 3394 section " << ex.section);
    const SecretBytes kek = secret_from_hex(ex.kek);
    auto wrapped = aes_kw_wrap(kek, secret_from_hex(ex.key));
    REQUIRE_OK(wrapped);
    CHECK(hex_encode(*wrapped) == ex.wrapped);
    auto unwrapped = aes_kw_unwrap(kek, from_hex(ex.wrapped));
    REQUIRE_OK(unwrapped);
    CHECK(hex_encode(exposed(*unwrapped)) == ex.key);
  }
}

TEST_CASE("AES-KWP passes every Wycheproof aes_kwp_test case", "[unit][crypto][kat]") {
  const auto doc = test::load_wycheproof("aes_kwp_test.json");
  const Tally tally = check_keywrap_vectors(doc, aes_kwp_wrap, aes_kwp_unwrap);
  WARN("aes_kwp_test.json: checked " << tally.valid << " valid, " << tally.invalid << " invalid, "
                                     << tally.acceptable << " acceptable ("
                                     << tally.acceptable_unwrapped << " unwrapped)");
  REQUIRE(tally.total() == doc.at("numberOfTests").get<int>());
  REQUIRE(tally.valid >= 50);
  REQUIRE(tally.invalid >= 100);
}

TEST_CASE("AES-KW passes every Wycheproof aes_wrap_test case", "[unit][crypto][kat]") {
  const auto doc = test::load_wycheproof("aes_wrap_test.json");
  const Tally tally = check_keywrap_vectors(doc, aes_kw_wrap, aes_kw_unwrap);
  WARN("aes_wrap_test.json: checked " << tally.valid << " valid, " << tally.invalid << " invalid, "
                                      << tally.acceptable << " acceptable ("
                                      << tally.acceptable_unwrapped << " unwrapped)");
  REQUIRE(tally.total() == doc.at("numberOfTests").get<int>());
  REQUIRE(tally.valid >= 25);
  REQUIRE(tally.invalid >= 100);
  // The acceptable cases wrap 8-byte keys, which our KW refuses (plaintext must be >= 16 bytes).
  CHECK(tally.acceptable_unwrapped == 0);
}

TEST_CASE("RSA-OAEP with SHA-1 passes the Wycheproof 2048-bit vectors", "[unit][crypto][kat]") {
  check_oaep_vectors("rsa_oaep_2048_sha1_mgf1sha1_test.json", OaepHash::kSha1, "SHA-1");
}

TEST_CASE("RSA-OAEP with SHA-256 passes the Wycheproof 2048-bit vectors", "[unit][crypto][kat]") {
  check_oaep_vectors("rsa_oaep_2048_sha256_mgf1sha256_test.json", OaepHash::kSha256, "SHA-256");
}

TEST_CASE("RSA-OAEP with SHA-384 passes the Wycheproof 2048-bit vectors", "[unit][crypto][kat]") {
  check_oaep_vectors("rsa_oaep_2048_sha384_mgf1sha384_test.json", OaepHash::kSha384, "SHA-384");
}

// ---------------------------------------------------------------------------------------------
// The RSA-AES transfer blob

TEST_CASE("rsa_aes_wrap output unwraps with rsa_aes_unwrap for every KEK size and algorithm",
          "[unit][crypto]") {
  const std::size_t payload_sizes[] = {16, 24, 32, 1217};
  for (const unsigned bits : kKekSizes) {
    EVP_PKEY* kek = test_rsa_key(bits);
    const Bytes spki = spki_der(kek);
    const SecretBytes private_der = pkcs8_der(kek);
    for (const WrapAlg alg : all_wrap_algs()) {
      for (const std::size_t size : payload_sizes) {
        INFO("RSA-" << bits << ", " << wrap_alg_name(alg) << ", payload " << size << " bytes");
        const SecretBytes payload = random_secret(size);
        auto blob = rsa_aes_wrap(spki, alg, payload);
        REQUIRE_OK(blob);
        CHECK(blob->size() == bits / 8 + kwp_length(size));
        auto back = rsa_aes_unwrap(private_der, alg, *blob);
        REQUIRE_OK(back);
        CHECK(back->ct_equal(payload));
        CHECK(openssl_queue_is_empty());
      }
    }
  }
}

TEST_CASE("a 4096-bit KEK and a 256-bit AES target make a 552-byte transfer blob",
          "[unit][crypto]") {
  // The size check from the spec (§1.5): 512 bytes of RSA + 32 bytes of key + 8 of KWP overhead.
  auto blob =
      rsa_aes_wrap(spki_der(test_rsa_key(4096)), WrapAlg::kRsaAesKeyWrap256, random_secret(32));
  REQUIRE_OK(blob);
  CHECK(blob->size() == 552);
}

TEST_CASE("rsa_aes_wrap uses a fresh transfer key each time", "[unit][crypto]") {
  EVP_PKEY* kek = test_rsa_key(2048);
  const Bytes spki = spki_der(kek);
  const SecretBytes payload = random_secret(32);
  auto first = rsa_aes_wrap(spki, WrapAlg::kRsaAesKeyWrap256, payload);
  auto second = rsa_aes_wrap(spki, WrapAlg::kRsaAesKeyWrap256, payload);
  REQUIRE_OK(first);
  REQUIRE_OK(second);
  // Different KWP parts mean different transfer keys (OAEP alone would differ anyway).
  CHECK(Bytes(first->begin() + 256, first->end()) != Bytes(second->begin() + 256, second->end()));
}

TEST_CASE("rsa_aes_unwrap and rsa_oaep_decrypt accept a PKCS#1 RSAPrivateKey as well as PKCS#8",
          "[unit][crypto]") {
  EVP_PKEY* kek = test_rsa_key(2048);
  const SecretBytes pkcs1 = pkcs1_der(kek);
  const SecretBytes pkcs8 = pkcs8_der(kek);
  // PKCS#1 starts SEQUENCE { INTEGER 0, INTEGER n ...}; PKCS#8 has an AlgorithmIdentifier there.
  REQUIRE(exposed(pkcs1) != exposed(pkcs8));
  const SecretBytes payload = random_secret(48);
  auto blob = rsa_aes_wrap(spki_der(kek), WrapAlg::kRsaAesKeyWrap, payload);
  REQUIRE_OK(blob);
  for (const SecretBytes* der : {&pkcs1, &pkcs8}) {
    auto back = rsa_aes_unwrap(*der, WrapAlg::kRsaAesKeyWrap, *blob);
    REQUIRE_OK(back);
    CHECK(back->ct_equal(payload));
  }
  CHECK(openssl_queue_is_empty());
}

TEST_CASE("rsa_aes_wrap output decrypts with raw OpenSSL OAEP and AES-KWP calls",
          "[unit][crypto]") {
  for (const unsigned bits : {2048u, 3072u}) {
    EVP_PKEY* kek = test_rsa_key(bits);
    const Bytes spki = spki_der(kek);
    const std::size_t k = modulus_bytes_of(kek);
    for (const WrapAlg alg : all_wrap_algs()) {
      for (const std::size_t size : {std::size_t{32}, std::size_t{1217}}) {
        INFO("RSA-" << bits << ", " << wrap_alg_name(alg) << ", payload " << size << " bytes");
        const SecretBytes payload = random_secret(size);
        auto blob = rsa_aes_wrap(spki, alg, payload);
        REQUIRE_OK(blob);
        REQUIRE(blob->size() > k);
        const std::span<const std::uint8_t> whole(*blob);
        const Bytes transfer_key = reference_oaep_decrypt(kek, reference_md(alg), whole.first(k));
        REQUIRE(transfer_key.size() == kTransferKeyBytes);
        const Bytes plain = reference_kwp256(false, transfer_key, whole.subspan(k));
        CHECK(plain == exposed(payload));
      }
    }
  }
}

TEST_CASE("a transfer blob built with raw OpenSSL calls unwraps with rsa_aes_unwrap",
          "[unit][crypto]") {
  EVP_PKEY* kek = test_rsa_key(3072);
  const SecretBytes private_der = pkcs8_der(kek);
  for (const WrapAlg alg : all_wrap_algs()) {
    for (const std::size_t size : {std::size_t{1}, std::size_t{32}, std::size_t{1217}}) {
      INFO(wrap_alg_name(alg) << ", payload " << size << " bytes");
      const Bytes transfer_key = random_bytes(32);
      const Bytes payload = random_bytes(size);
      const Bytes blob = concat(reference_oaep_encrypt(kek, reference_md(alg), transfer_key),
                                reference_kwp256(true, transfer_key, payload));
      REQUIRE(blob.size() == 384 + kwp_length(size));
      auto back = rsa_aes_unwrap(private_der, alg, blob);
      REQUIRE_OK(back);
      CHECK(exposed(*back) == payload);
    }
  }
}

TEST_CASE("rsa_oaep_encrypt and aes_kwp_wrap agree with raw OpenSSL calls", "[unit][crypto]") {
  EVP_PKEY* kek = test_rsa_key(2048);
  const Bytes spki = spki_der(kek);
  const std::pair<OaepHash, WrapAlg> hashes[] = {{OaepHash::kSha1, WrapAlg::kRsaAesKeyWrap},
                                                 {OaepHash::kSha256, WrapAlg::kRsaAesKeyWrap256},
                                                 {OaepHash::kSha384, WrapAlg::kRsaAesKeyWrap384}};
  for (const auto& [hash, alg] : hashes) {
    INFO(to_string(hash));
    const SecretBytes message = random_secret(32);
    auto ct = rsa_oaep_encrypt(spki, hash, message);
    REQUIRE_OK(ct);
    CHECK(ct->size() == 256);
    CHECK(reference_oaep_decrypt(kek, reference_md(alg), *ct) == exposed(message));
  }
  const SecretBytes kek256 = random_secret(32);
  for (std::size_t len = 1; len <= 72; ++len) {
    INFO("plaintext " << len << " bytes");
    const SecretBytes plain = random_secret(len);
    auto wrapped = aes_kwp_wrap(kek256, plain);
    REQUIRE_OK(wrapped);
    CHECK(wrapped->size() == kwp_length(len));
    CHECK(*wrapped == reference_kwp256(true, exposed(kek256), exposed(plain)));
  }
}

// ---------------------------------------------------------------------------------------------
// Failures

TEST_CASE("every unwrap and decrypt failure gives kIntegrityFailure with one identical message",
          "[unit][crypto]") {
  EVP_PKEY* kek = test_rsa_key(2048);
  const std::size_t k = modulus_bytes_of(kek);
  const SecretBytes private_der = pkcs8_der(kek);
  const auto other_key = fresh_rsa_key(2048);
  const SecretBytes other_private_der = pkcs8_der(other_key.get());
  const SecretBytes payload = random_secret(32);
  auto made = rsa_aes_wrap(spki_der(kek), WrapAlg::kRsaAesKeyWrap256, payload);
  REQUIRE_OK(made);
  const Bytes blob = *made;
  REQUIRE(blob.size() == k + 40);

  // The unmodified blob is the control: it unwraps.
  auto control = rsa_aes_unwrap(private_der, WrapAlg::kRsaAesKeyWrap256, blob);
  REQUIRE_OK(control);
  CHECK(control->ct_equal(payload));

  auto changed = [&](auto&& edit) {
    Bytes copy = blob;
    edit(copy);
    return copy;
  };
  const auto unwrap256 = [&](const Bytes& b) {
    return rsa_aes_unwrap(private_der, WrapAlg::kRsaAesKeyWrap256, b);
  };

  std::vector<std::pair<std::string, Result<SecretBytes>>> outcomes;
  outcomes.emplace_back("wrapped with SHA-256, unwrapped as SHA-1",
                        rsa_aes_unwrap(private_der, WrapAlg::kRsaAesKeyWrap, blob));
  outcomes.emplace_back("wrapped with SHA-256, unwrapped as SHA-384",
                        rsa_aes_unwrap(private_der, WrapAlg::kRsaAesKeyWrap384, blob));
  outcomes.emplace_back("wrong private key",
                        rsa_aes_unwrap(other_private_der, WrapAlg::kRsaAesKeyWrap256, blob));
  outcomes.emplace_back("flipped bit at the start of the RSA part",
                        unwrap256(changed([](Bytes& b) { b[0] ^= 0x01; })));
  outcomes.emplace_back("flipped bit at the end of the RSA part",
                        unwrap256(changed([&](Bytes& b) { b[k - 1] ^= 0x80; })));
  outcomes.emplace_back("flipped bit in the KWP integrity block",
                        unwrap256(changed([&](Bytes& b) { b[k + 3] ^= 0x10; })));
  outcomes.emplace_back("flipped bit at the end of the KWP part",
                        unwrap256(changed([](Bytes& b) { b.back() ^= 0x01; })));
  outcomes.emplace_back("truncated by one semiblock",
                        unwrap256(changed([](Bytes& b) { b.resize(b.size() - 8); })));
  outcomes.emplace_back("truncated by one byte",
                        unwrap256(changed([](Bytes& b) { b.resize(b.size() - 1); })));
  outcomes.emplace_back("truncated to the RSA part and 8 bytes",
                        unwrap256(changed([&](Bytes& b) { b.resize(k + 8); })));
  outcomes.emplace_back("truncated to the RSA part",
                        unwrap256(changed([&](Bytes& b) { b.resize(k); })));
  outcomes.emplace_back("truncated inside the RSA part",
                        unwrap256(changed([&](Bytes& b) { b.resize(k - 1); })));
  outcomes.emplace_back("empty blob", unwrap256(Bytes{}));
  outcomes.emplace_back("KWP part not a multiple of 8",
                        unwrap256(changed([](Bytes& b) { b.push_back(0); })));
  outcomes.emplace_back("extra semiblock appended",
                        unwrap256(changed([](Bytes& b) { b.insert(b.end(), 8, 0); })));
  // The building blocks fail the same way.
  outcomes.emplace_back(
      "OAEP decrypt with the wrong hash",
      rsa_oaep_decrypt(private_der, OaepHash::kSha1, std::span<const std::uint8_t>(blob).first(k)));
  outcomes.emplace_back("OAEP decrypt of a short ciphertext",
                        rsa_oaep_decrypt(private_der, OaepHash::kSha256,
                                         std::span<const std::uint8_t>(blob).first(k - 1)));
  outcomes.emplace_back(
      "KWP unwrap under the wrong key",
      aes_kwp_unwrap(random_secret(32), std::span<const std::uint8_t>(blob).subspan(k)));
  outcomes.emplace_back("KWP unwrap of 8 bytes", aes_kwp_unwrap(random_secret(32), Bytes(8)));
  outcomes.emplace_back("KW unwrap under the wrong key",
                        aes_kw_unwrap(random_secret(16), Bytes(32, 0xa6)));
  outcomes.emplace_back("KW unwrap of 16 bytes", aes_kw_unwrap(random_secret(16), Bytes(16)));

  CHECK(openssl_queue_is_empty());
  for (const auto& [what, outcome] : outcomes) {
    INFO(what);
    REQUIRE_FALSE(outcome);
    CHECK(outcome.error().code() == ErrorCode::kIntegrityFailure);
    // Byte-identical messages and descriptions: nothing tells the causes apart.
    CHECK(outcome.error().message() == outcomes.front().second.error().message());
    CHECK(outcome.error().describe() == outcomes.front().second.error().describe());
    CHECK(outcome.error().message() == kIntegrityMessage);
    CHECK_FALSE(outcome.error().rv().has_value());
  }
}

TEST_CASE("split_transfer_blob cuts at the modulus length and checks the KWP part",
          "[unit][crypto]") {
  const std::size_t k = 256;
  for (const std::size_t kwp : {std::size_t{16}, std::size_t{24}, std::size_t{1224}}) {
    INFO("KWP part " << kwp << " bytes");
    const Bytes blob(k + kwp, 0x5a);
    auto parts = split_transfer_blob(blob, k);
    REQUIRE_OK(parts);
    CHECK(parts->rsa_part.data() == blob.data());
    CHECK(parts->rsa_part.size() == k);
    CHECK(parts->kwp_part.data() == blob.data() + k);
    CHECK(parts->kwp_part.size() == kwp);
  }
  for (const std::size_t len : {std::size_t{0}, k - 1, k, k + 1, k + 8, k + 15, k + 17, k + 23}) {
    INFO("blob " << len << " bytes");
    CHECK_ERROR_CODE(split_transfer_blob(Bytes(len), k), ErrorCode::kFormat);
  }
  // A modulus length near SIZE_MAX must not wrap around.
  const Bytes blob(k + 16);
  CHECK_ERROR_CODE(split_transfer_blob(blob, std::numeric_limits<std::size_t>::max()),
                   ErrorCode::kFormat);
  CHECK_ERROR_CODE(split_transfer_blob(blob, std::numeric_limits<std::size_t>::max() - 7),
                   ErrorCode::kFormat);
  CHECK_ERROR_CODE(split_transfer_blob(blob, 0), ErrorCode::kInvalidArgument);
}

TEST_CASE("an EC key is refused as a KEK and as an OAEP private key", "[unit][crypto]") {
  const auto ec = fresh_ec_key();
  const Bytes ec_spki = spki_der(ec.get());
  const SecretBytes ec_private = pkcs8_der(ec.get());
  const SecretBytes payload = random_secret(32);
  CHECK_ERROR_CODE(rsa_aes_wrap(ec_spki, WrapAlg::kRsaAesKeyWrap256, payload),
                   ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(rsa_oaep_encrypt(ec_spki, OaepHash::kSha256, payload),
                   ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(rsa_aes_unwrap(ec_private, WrapAlg::kRsaAesKeyWrap256, Bytes(256 + 40)),
                   ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(rsa_oaep_decrypt(ec_private, OaepHash::kSha256, Bytes(256)),
                   ErrorCode::kInvalidArgument);
  CHECK(openssl_queue_is_empty());
}

TEST_CASE("KEK DER that does not parse is a format error", "[unit][crypto]") {
  const Bytes spki = spki_der(test_rsa_key(2048));
  const SecretBytes payload = random_secret(32);
  const Bytes trailing = concat(spki, Bytes{0});
  const Bytes truncated(spki.begin(), spki.end() - 1);
  for (const Bytes* bad : {&trailing, &truncated}) {
    CHECK_ERROR_CODE(rsa_aes_wrap(*bad, WrapAlg::kRsaAesKeyWrap, payload), ErrorCode::kFormat);
  }
  CHECK_ERROR_CODE(rsa_aes_wrap(Bytes{}, WrapAlg::kRsaAesKeyWrap, payload), ErrorCode::kFormat);
  CHECK_ERROR_CODE(rsa_aes_wrap(Bytes(300, 0x30), WrapAlg::kRsaAesKeyWrap, payload),
                   ErrorCode::kFormat);
  CHECK_ERROR_CODE(
      rsa_aes_unwrap(SecretBytes(Bytes(300, 0x30)), WrapAlg::kRsaAesKeyWrap, Bytes(256 + 40)),
      ErrorCode::kFormat);
  CHECK(openssl_queue_is_empty());
}

TEST_CASE("AES key wrap refuses key-encryption keys that are not 16, 24 or 32 bytes",
          "[unit][crypto]") {
  const SecretBytes plain = random_secret(32);
  for (const std::size_t size :
       {std::size_t{0}, std::size_t{8}, std::size_t{17}, std::size_t{64}}) {
    INFO("KEK " << size << " bytes");
    const SecretBytes kek = random_secret(size);
    CHECK_ERROR_CODE(aes_kwp_wrap(kek, plain), ErrorCode::kInvalidArgument);
    CHECK_ERROR_CODE(aes_kwp_unwrap(kek, Bytes(40)), ErrorCode::kInvalidArgument);
    CHECK_ERROR_CODE(aes_kw_wrap(kek, plain), ErrorCode::kInvalidArgument);
    CHECK_ERROR_CODE(aes_kw_unwrap(kek, Bytes(40)), ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("wrap functions refuse plaintexts their mode cannot take", "[unit][crypto]") {
  const SecretBytes kek = random_secret(32);
  CHECK_ERROR_CODE(aes_kwp_wrap(kek, SecretBytes{}), ErrorCode::kInvalidArgument);
  for (const std::size_t size :
       {std::size_t{0}, std::size_t{8}, std::size_t{15}, std::size_t{20}}) {
    INFO("KW plaintext " << size << " bytes");
    CHECK_ERROR_CODE(aes_kw_wrap(kek, random_secret(size)), ErrorCode::kInvalidArgument);
  }
  const Bytes spki = spki_der(test_rsa_key(2048));
  CHECK_ERROR_CODE(rsa_aes_wrap(spki, WrapAlg::kRsaAesKeyWrap, SecretBytes{}),
                   ErrorCode::kInvalidArgument);
  // RSA-2048 with SHA-384 carries at most 256 - 2 * 48 - 2 = 158 bytes.
  REQUIRE_OK(rsa_oaep_encrypt(spki, OaepHash::kSha384, random_secret(158)));
  CHECK_ERROR_CODE(rsa_oaep_encrypt(spki, OaepHash::kSha384, random_secret(159)),
                   ErrorCode::kInvalidArgument);
  CHECK(openssl_queue_is_empty());
}
