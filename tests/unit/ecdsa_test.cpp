// SPDX-License-Identifier: Apache-2.0
// core/ecdsa.h: r||s <-> DER ECDSA-Sig-Value, checked against signatures OpenSSL makes and
// verifies itself.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include "core/ecdsa.h"
#include "core/encoding.h"
#include "core/ossl.h"
#include "tests/support/support.h"

using namespace keyport;

namespace {

ossl::UniquePtr<EVP_PKEY> ec_key(const char* curve) {
  ossl::UniquePtr<EVP_PKEY> key(EVP_EC_gen(curve));
  REQUIRE(key);
  return key;
}

Bytes der_sign(EVP_PKEY* key, std::string_view message) {
  ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1);
  std::size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len, as_bytes(message).data(), message.size()) == 1);
  Bytes sig(len);
  REQUIRE(EVP_DigestSign(ctx.get(), sig.data(), &len, as_bytes(message).data(), message.size()) ==
          1);
  sig.resize(len);
  return sig;
}

bool der_verifies(EVP_PKEY* key, std::string_view message, const Bytes& der) {
  ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1);
  const bool ok = EVP_DigestVerify(ctx.get(), der.data(), der.size(), as_bytes(message).data(),
                                   message.size()) == 1;
  ossl::drain_errors();
  return ok;
}

}  // namespace

TEST_CASE("ECDSA r||s and DER round-trip on P-256, P-384, P-521 and secp256k1", "[unit][core]") {
  const std::pair<const char*, std::size_t> curves[] = {
      {"P-256", 32}, {"P-384", 48}, {"P-521", 66}, {"secp256k1", 32}};
  for (auto [curve, field] : curves) {
    INFO(curve);
    auto key = ec_key(curve);
    // Enough signatures that some r or s have a high bit set (DER adds a 0x00) and some are
    // shorter than the field (P1363 pads them).
    for (int i = 0; i < 16; ++i) {
      const std::string message = "message " + std::to_string(i);
      const Bytes der = der_sign(key.get(), message);
      auto raw = ecdsa_der_to_p1363(der, field);
      REQUIRE_OK(raw);
      CHECK(raw->size() == 2 * field);
      auto back = ecdsa_p1363_to_der(*raw);
      REQUIRE_OK(back);
      CHECK(*back == der);  // OpenSSL writes minimal DER, and so must we
      CHECK(der_verifies(key.get(), message, *back));
    }
  }
}

TEST_CASE("ecdsa_p1363_to_der: minimal DER with a leading zero for high-bit values",
          "[unit][core]") {
  Bytes raw(64, 0);
  raw[0] = 0x80;   // r = 0x80 00..00: a positive INTEGER needs a 0x00 in front
  raw[63] = 0x01;  // s = 1: leading zero bytes of the field vanish
  auto der = ecdsa_p1363_to_der(raw);
  REQUIRE_OK(der);
  Bytes want = {0x30, 0x26, 0x02, 0x21, 0x00, 0x80};
  want.resize(6 + 31, 0);
  want.insert(want.end(), {0x02, 0x01, 0x01});
  CHECK(hex_encode(*der) == hex_encode(want));
  auto raw_back = ecdsa_der_to_p1363(*der, 32);
  REQUIRE_OK(raw_back);
  CHECK(*raw_back == raw);
}

TEST_CASE("ecdsa_p1363_to_der refuses empty, odd and oversized input", "[unit][core]") {
  for (std::size_t n : {0, 1, 63, 65, 133, 134, 200}) {
    INFO(n);
    CHECK_ERROR_CODE(ecdsa_p1363_to_der(Bytes(n, 0x11)), ErrorCode::kFormat);
  }
  CHECK(ecdsa_p1363_to_der(Bytes(132, 0x11)));  // P-521
  CHECK(ecdsa_p1363_to_der(Bytes(2, 0x11)));
}

TEST_CASE("ecdsa_der_to_p1363 refuses what is not exactly one fitting signature", "[unit][core]") {
  auto key = ec_key("P-384");
  const Bytes der = der_sign(key.get(), "m");
  // Too small a field for P-384 values.
  CHECK_ERROR_CODE(ecdsa_der_to_p1363(der, 32), ErrorCode::kFormat);
  // Trailing bytes after the SEQUENCE.
  Bytes trailing = der;
  trailing.push_back(0);
  CHECK_ERROR_CODE(ecdsa_der_to_p1363(trailing, 48), ErrorCode::kFormat);
  // Truncated, empty, not DER.
  CHECK_ERROR_CODE(ecdsa_der_to_p1363(Bytes(der.begin(), der.end() - 1), 48), ErrorCode::kFormat);
  CHECK_ERROR_CODE(ecdsa_der_to_p1363(Bytes{}, 48), ErrorCode::kFormat);
  CHECK_ERROR_CODE(ecdsa_der_to_p1363(Bytes(70, 0x41), 48), ErrorCode::kFormat);
  // A negative r (INTEGER 0xFF = -1) has no r||s form.
  CHECK_ERROR_CODE(ecdsa_der_to_p1363(Bytes{0x30, 0x06, 0x02, 0x01, 0xFF, 0x02, 0x01, 0x01}, 32),
                   ErrorCode::kFormat);
  // A non-minimal INTEGER (0x00 0x01 for 1) is not DER.
  CHECK_ERROR_CODE(
      ecdsa_der_to_p1363(Bytes{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}, 32),
      ErrorCode::kFormat);
  // Small values are left-padded to the field.
  auto small = ecdsa_der_to_p1363(Bytes{0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07}, 32);
  REQUIRE_OK(small);
  Bytes want(64, 0);
  want[31] = 5;
  want[63] = 7;
  CHECK(*small == want);
  // No curve has 0- or 67-byte coordinates.
  CHECK_ERROR_CODE(ecdsa_der_to_p1363(der, 0), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(ecdsa_der_to_p1363(der, 67), ErrorCode::kInvalidArgument);
}
