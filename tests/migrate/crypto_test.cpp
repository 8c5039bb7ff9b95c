// SPDX-License-Identifier: Apache-2.0
// The envelope's primitives against Wycheproof: HKDF-SHA256 and AES-GCM through keyport's
// wrappers (OpenSSL EVP_KDF and EVP AES-GCM), and the keyed fingerprint.
#include <catch2/catch.hpp>

#include "core/random.h"
#include "migrate/crypto.h"
#include "tests/support/support.h"

using namespace keyport;

namespace {

Bytes hex(const Json& j, const char* member) {
  auto b = hex_decode(j.at(member).get<std::string>());
  REQUIRE_OK(b);
  return *b;
}

}  // namespace

TEST_CASE("hkdf sha256 matches every wycheproof vector", "[migrate][kat]") {
  auto doc = test::load_wycheproof("hkdf_sha256_test.json");
  int valid = 0, invalid = 0;
  for (const auto& group : doc["testGroups"]) {
    for (const auto& t : group["tests"]) {
      INFO("tcId " << t["tcId"].get<int>() << " " << t["comment"].get<std::string>());
      SecretBytes ikm(hex(t, "ikm"));
      Bytes salt = hex(t, "salt");
      Bytes info = hex(t, "info");
      const std::size_t size = t["size"].get<std::size_t>();
      auto okm = migrate::hkdf_sha256(ikm, salt, info, size);
      if (t["result"] == "valid") {
        REQUIRE_OK(okm);
        Bytes got(okm->reveal(SecretAccess::unsafe()).begin(),
                  okm->reveal(SecretAccess::unsafe()).end());
        CHECK(hex_encode(got) == t["okm"].get<std::string>());
        ++valid;
      } else {
        CHECK_FALSE(okm.has_value());
        ++invalid;
      }
    }
  }
  CHECK(valid == 83);
  CHECK(invalid == 3);
}

TEST_CASE("aes gcm matches every wycheproof vector", "[migrate][kat]") {
  auto doc = test::load_wycheproof("aes_gcm_test.json");
  // The envelope format uses 12-byte nonces only. AesGcm accepts 1 to 128 bytes (OpenSSL 3's
  // GCM_IV_MAX_SIZE); the three "long IV size" vectors (tcId 268 and its 192/256-bit-key twins,
  // 257-byte IVs) are beyond that: they are not checked against their answer but must be refused
  // (kInvalidArgument to seal, the one integrity error to open), never computed wrongly.
  int checked = 0, skipped = 0;
  for (const auto& group : doc["testGroups"]) {
    REQUIRE(group["tagSize"].get<int>() == 128);
    for (const auto& t : group["tests"]) {
      INFO("tcId " << t["tcId"].get<int>() << " " << t["comment"].get<std::string>());
      SecretBytes key(hex(t, "key"));
      Bytes iv = hex(t, "iv"), aad = hex(t, "aad"), msg = hex(t, "msg"), ct = hex(t, "ct"),
            tag = hex(t, "tag");
      Bytes sealed = ct;
      sealed.insert(sealed.end(), tag.begin(), tag.end());
      auto gcm = migrate::AesGcm::create(key);
      REQUIRE_OK(gcm);
      if (iv.size() > migrate::kGcmMaxNonceBytes) {
        CHECK_ERROR_CODE(gcm->seal(iv, aad, msg), ErrorCode::kInvalidArgument);
        CHECK_ERROR_CODE(gcm->open(iv, aad, sealed), ErrorCode::kIntegrityFailure);
        ++skipped;
        continue;
      }
      auto opened = gcm->open(iv, aad, sealed);
      if (t["result"] == "valid") {
        REQUIRE_OK(opened);
        CHECK(*opened == msg);
        auto again = gcm->seal(iv, aad, msg);
        REQUIRE_OK(again);
        CHECK(*again == sealed);
      } else {
        REQUIRE_FALSE(opened.has_value());
        CHECK(opened.error().code() == ErrorCode::kIntegrityFailure);
        CHECK(opened.error().message() == kIntegrityMessage);
      }
      ++checked;
    }
  }
  CHECK(checked == 313);
  CHECK(skipped == 3);
  WARN("AES-GCM Wycheproof: " << checked << " vectors checked, " << skipped
                              << " with IVs over 128 bytes refused (not supported)");
}

TEST_CASE("aes gcm refuses bad key sizes and short input with the one integrity error",
          "[migrate][unit]") {
  CHECK_ERROR_CODE(migrate::AesGcm::create(SecretBytes(Bytes(20, 1))), ErrorCode::kInvalidArgument);
  auto gcm = migrate::AesGcm::create(random_secret(32));
  REQUIRE_OK(gcm);
  Bytes nonce(12, 0);
  CHECK_ERROR_CODE(gcm->open(nonce, {}, Bytes(15, 0)), ErrorCode::kIntegrityFailure);
  CHECK_ERROR_CODE(gcm->open(Bytes(), {}, Bytes(16, 0)), ErrorCode::kIntegrityFailure);
}

TEST_CASE("keyed fingerprints match for equal keys and mean nothing across runs",
          "[migrate][unit]") {
  SecretBytes run1 = random_secret(32), run2 = random_secret(32);
  SecretBytes k = random_secret(32);
  SecretBytes k_copy = k.clone();
  SecretBytes other = random_secret(32);
  auto a = migrate::keyed_fingerprint(run1, k);
  auto b = migrate::keyed_fingerprint(run1, k_copy);
  auto c = migrate::keyed_fingerprint(run1, other);
  auto d = migrate::keyed_fingerprint(run2, k);
  REQUIRE_OK(a);
  REQUIRE_OK(b);
  REQUIRE_OK(c);
  REQUIRE_OK(d);
  CHECK(migrate::ct_equal(*a, *b));
  CHECK_FALSE(migrate::ct_equal(*a, *c));
  CHECK_FALSE(migrate::ct_equal(*a, *d));
  CHECK(a->size() == 32);
  CHECK_FALSE(migrate::ct_equal(*a, Bytes(a->begin(), a->end() - 1)));
}
