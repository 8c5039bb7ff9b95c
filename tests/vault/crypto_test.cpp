// SPDX-License-Identifier: Apache-2.0
// Crypto operations with keys in the vault token, checked with OpenSSL: sign/verify for every
// algorithm, encrypt/decrypt, wrapKey/unwrapKey, plain JWK import.
#include <catch2/catch.hpp>

#include "core/random.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/vault/vault_rig.h"

using namespace keyport;
namespace oracle = keyport::test::oracle;

namespace {

Bytes value_of(const Result<Json>& r) {
  REQUIRE_OK(r);
  return *base64url_decode((*r)["value"].get<std::string>());
}

// Signs in the vault, verifies in the vault and with OpenSSL, and checks a tampered signature.
void sign_and_verify(test::VaultRig& rig, const std::string& name, const std::string& alg) {
  INFO(name << " " << alg);
  auto bundle = rig->get_key(rig.ctx, name);
  REQUIRE_OK(bundle);
  auto pub = test::openssl_public(*bundle);
  Bytes digest = test::digest_of(alg, random_bytes(77));
  Bytes sig = value_of(
      rig->sign(rig.ctx, name, "", Json{{"alg", alg}, {"value", base64url_encode(digest)}}));
  CHECK(test::openssl_verify(pub.get(), alg, digest, sig));
  auto ok = rig->verify(
      rig.ctx, name, "",
      Json{{"alg", alg}, {"digest", base64url_encode(digest)}, {"value", base64url_encode(sig)}});
  REQUIRE_OK(ok);
  CHECK((*ok)["value"] == true);
  sig[sig.size() / 2] ^= 0x01;
  auto bad = rig->verify(
      rig.ctx, name, "",
      Json{{"alg", alg}, {"digest", base64url_encode(digest)}, {"value", base64url_encode(sig)}});
  REQUIRE_OK(bad);
  CHECK((*bad)["value"] == false);
}

}  // namespace

TEST_CASE("sign and verify with every algorithm", "[vault][crypto]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "signing");
  REQUIRE_OK(kv->create_key(kv.ctx, "rsa", Json{{"kty", "RSA-HSM"}, {"key_size", 3072}}));
  for (const char* alg : {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}) {
    sign_and_verify(kv, "rsa", alg);
  }
  const std::pair<const char*, const char*> ec[] = {
      {"P-256", "ES256"}, {"P-384", "ES384"}, {"P-521", "ES512"}, {"P-256K", "ES256K"}};
  for (const auto& [crv, alg] : ec) {
    const std::string name = std::string("ec-") + (crv + 2);
    REQUIRE_OK(kv->create_key(kv.ctx, name, Json{{"kty", "EC-HSM"}, {"crv", crv}}));
    sign_and_verify(kv, name, alg);
  }
  // ES512 signatures are r||s of 66 bytes each, as JWS has them.
  Bytes d = test::digest_of("ES512", random_bytes(10));
  CHECK(value_of(
            kv->sign(kv.ctx, "ec-521", "", Json{{"alg", "ES512"}, {"value", base64url_encode(d)}}))
            .size() == 132);
  // Mismatches are BadParameter.
  test::expect_kv_error(
      kv->sign(kv.ctx, "ec-256", "", Json{{"alg", "ES384"}, {"value", base64url_encode(d)}}),
      "BadParameter", 400);
  test::expect_kv_error(
      kv->sign(kv.ctx, "rsa", "", Json{{"alg", "ES256"}, {"value", base64url_encode(d)}}),
      "BadParameter", 400);
  test::expect_kv_error(
      kv->sign(kv.ctx, "rsa", "", Json{{"alg", "RS256"}, {"value", base64url_encode(d)}}),
      "BadParameter", 400);  // 64-byte digest for RS256
  test::expect_kv_error(kv->sign(kv.ctx, "rsa", "", Json{{"alg", "HS256"}, {"value", "AA"}}),
                        "BadParameter", 400);
  test::expect_kv_error(kv->sign(kv.ctx, "rsa", "", Json{{"alg", "RS256"}}), "BadParameter", 400);
  // EC keys cannot encrypt (key_ops) .
  test::expect_kv_error(
      kv->encrypt(kv.ctx, "ec-256", "", Json{{"alg", "RSA-OAEP"}, {"value", "AAAA"}}), "Forbidden",
      403, vault::kKeyOperationForbidden);
}

TEST_CASE("decrypt and unwrapKey of data OpenSSL encrypted, and encrypt/wrapKey round trips",
          "[vault][crypto]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "decrypting");
  auto b = kv->create_key(kv.ctx, "rsa", Json{{"kty", "RSA-HSM"}});
  REQUIRE_OK(b);
  auto pub = test::openssl_public(*b);
  for (const char* alg : {"RSA1_5", "RSA-OAEP", "RSA-OAEP-256"}) {
    INFO(alg);
    Bytes plain = random_bytes(32);
    Bytes ct = test::openssl_encrypt(pub.get(), alg, plain);
    CHECK(value_of(kv->decrypt(kv.ctx, "rsa", "",
                               Json{{"alg", alg}, {"value", base64url_encode(ct)}})) == plain);
    CHECK(value_of(kv->unwrap_key(kv.ctx, "rsa", "",
                                  Json{{"alg", alg}, {"value", base64url_encode(ct)}})) == plain);
    // The vault's own encrypt and wrapKey are OpenSSL-compatible and round-trip.
    Bytes vct = value_of(
        kv->encrypt(kv.ctx, "rsa", "", Json{{"alg", alg}, {"value", base64url_encode(plain)}}));
    CHECK(vct.size() == 256);
    CHECK(value_of(kv->decrypt(kv.ctx, "rsa", "",
                               Json{{"alg", alg}, {"value", base64url_encode(vct)}})) == plain);
    Bytes wrapped = value_of(
        kv->wrap_key(kv.ctx, "rsa", "", Json{{"alg", alg}, {"value", base64url_encode(plain)}}));
    CHECK(value_of(kv->unwrap_key(kv.ctx, "rsa", "",
                                  Json{{"alg", alg}, {"value", base64url_encode(wrapped)}})) ==
          plain);
    // A wrong ciphertext is one BadParameter, whatever is wrong with it.
    ct[100] ^= 0x20;
    auto r = kv->decrypt(kv.ctx, "rsa", "", Json{{"alg", alg}, {"value", base64url_encode(ct)}});
    test::expect_kv_error(r, "BadParameter", 400);
    CHECK(r.error().message() == "Decryption failed: " + std::string(kIntegrityMessage) + ".");
  }
  // OAEP-SHA1 ciphertext decrypted as OAEP-256 fails the same way.
  Bytes ct = test::openssl_encrypt(pub.get(), "RSA-OAEP", random_bytes(16));
  test::expect_kv_error(kv->decrypt(kv.ctx, "rsa", "",
                                    Json{{"alg", "RSA-OAEP-256"}, {"value", base64url_encode(ct)}}),
                        "BadParameter", 400);
  test::expect_kv_error(
      kv->encrypt(kv.ctx, "rsa", "",
                  Json{{"alg", "RSA-OAEP"}, {"value", base64url_encode(random_bytes(300))}}),
      "BadParameter", 400);
  // No session object is left behind by any of it.
  CHECK(test::count_session_objects(kv.session, CKO_SECRET_KEY) == 0);
}

TEST_CASE("oct keys wrap and unwrap with A128KW/A192KW/A256KW like OpenSSL's RFC 3394",
          "[vault][crypto]") {
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "wrapping");
  for (std::size_t bytes : {16u, 24u, 32u}) {
    const std::string alg = "A" + std::to_string(bytes * 8) + "KW";
    INFO(alg);
    // A plain (software) oct import with a known k, so OpenSSL can compute the expected wrap.
    Bytes k = random_bytes(bytes);
    const std::string name = "oct" + std::to_string(bytes * 8);
    auto imported = mhsm->import_key(
        mhsm.ctx, name, Json{{"key", {{"kty", "oct-HSM"}, {"k", base64url_encode(k)}}}});
    REQUIRE_OK(imported);
    CHECK_FALSE((*imported)["key"].contains("k"));
    for (std::size_t len : {16u, 32u, 40u}) {
      Bytes data = random_bytes(len);
      Bytes wrapped = value_of(mhsm->wrap_key(
          mhsm.ctx, name, "", Json{{"alg", alg}, {"value", base64url_encode(data)}}));
      CHECK(wrapped == test::openssl_aes_kw(k, data));
      CHECK(value_of(mhsm->unwrap_key(mhsm.ctx, name, "",
                                      Json{{"alg", alg}, {"value", base64url_encode(wrapped)}})) ==
            data);
      wrapped[3] ^= 1;
      test::expect_kv_error(
          mhsm->unwrap_key(mhsm.ctx, name, "",
                           Json{{"alg", alg}, {"value", base64url_encode(wrapped)}}),
          "BadParameter", 400);
    }
    // Wrong size algorithm, bad input length.
    test::expect_kv_error(mhsm->wrap_key(mhsm.ctx, name, "",
                                         Json{{"alg", bytes == 32 ? "A128KW" : "A256KW"},
                                              {"value", base64url_encode(k)}}),
                          "BadParameter", 400);
    test::expect_kv_error(
        mhsm->wrap_key(mhsm.ctx, name, "",
                       Json{{"alg", alg}, {"value", base64url_encode(random_bytes(20))}}),
        "BadParameter", 400);
  }
  // Generated oct keys work the same way (round trip only: their k is unknown).
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "gen", Json{{"kty", "oct-HSM"}, {"key_size", 256}}));
  Bytes data = random_bytes(32);
  Bytes w = value_of(mhsm->wrap_key(mhsm.ctx, "gen", "",
                                    Json{{"alg", "A256KW"}, {"value", base64url_encode(data)}}));
  CHECK(value_of(mhsm->unwrap_key(
            mhsm.ctx, "gen", "", Json{{"alg", "A256KW"}, {"value", base64url_encode(w)}})) == data);
  test::expect_kv_error(mhsm->encrypt(mhsm.ctx, "gen", "",
                                      Json{{"alg", "A256KW"}, {"value", base64url_encode(data)}}),
                        "BadParameter", 400);
  CHECK(test::count_session_objects(mhsm.session, CKO_SECRET_KEY) == 0);
}

TEST_CASE("oct keys wrap with CKM_AES_KEY_WRAP and CKM_AES_KEY_WRAP_PAD like OpenSSL",
          "[vault][crypto]") {
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "ckm-wrapping");
  for (std::size_t bytes : {16u, 24u, 32u}) {
    Bytes k = random_bytes(bytes);
    const std::string name = "oct" + std::to_string(bytes * 8);
    REQUIRE_OK(mhsm->import_key(mhsm.ctx, name,
                                Json{{"key", {{"kty", "oct-HSM"}, {"k", base64url_encode(k)}}}}));
    // CKM_AES_KEY_WRAP is RFC 3394 under a key of any size; _PAD is RFC 5649 of any length.
    for (std::size_t len : {1u, 7u, 16u, 20u, 32u, 65u}) {
      for (bool pad : {false, true}) {
        const std::string alg = pad ? "CKM_AES_KEY_WRAP_PAD" : "CKM_AES_KEY_WRAP";
        INFO(name << " " << alg << " " << len);
        Bytes data = random_bytes(len);
        auto w = mhsm->wrap_key(mhsm.ctx, name, "",
                                Json{{"alg", alg}, {"value", base64url_encode(data)}});
        if (!pad && (len < 16 || len % 8 != 0)) {
          test::expect_kv_error(w, "BadParameter", 400);
          continue;
        }
        Bytes wrapped = value_of(w);
        CHECK(wrapped == test::openssl_aes_kw(k, data, pad));
        CHECK(value_of(mhsm->unwrap_key(
                  mhsm.ctx, name, "", Json{{"alg", alg}, {"value", base64url_encode(wrapped)}})) ==
              data);
        wrapped.back() ^= 0x80;
        test::expect_kv_error(
            mhsm->unwrap_key(mhsm.ctx, name, "",
                             Json{{"alg", alg}, {"value", base64url_encode(wrapped)}}),
            "BadParameter", 400);
      }
    }
  }
  CHECK(test::count_session_objects(mhsm.session, CKO_SECRET_KEY) == 0);
}

TEST_CASE("oct keys encrypt and decrypt with AES-GCM, -CBC and -CBCPAD like OpenSSL",
          "[vault][crypto]") {
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "aes-modes");
  for (std::size_t bytes : {16u, 24u, 32u}) {
    Bytes k = random_bytes(bytes);
    const std::string bits = std::to_string(bytes * 8);
    const std::string name = "oct" + bits;
    REQUIRE_OK(mhsm->import_key(mhsm.ctx, name,
                                Json{{"key", {{"kty", "oct-HSM"}, {"k", base64url_encode(k)}}}}));
    auto decode = [](const Json& j, const char* m) {
      return *base64url_decode(j.at(m).get<std::string>());
    };
    // GCM: the vault makes a 12-byte IV, returns a 16-byte tag; OpenSSL decrypts and tampering
    // with ciphertext, tag, IV or AAD fails decrypt with the one integrity answer.
    for (std::size_t len : {1u, 16u, 1000u}) {
      INFO("A" << bits << "GCM " << len);
      Bytes pt = random_bytes(len);
      Bytes aad = len == 16 ? Bytes{} : random_bytes(len % 40 + 3);
      Json req{{"alg", "A" + bits + "GCM"}, {"value", base64url_encode(pt)}};
      if (!aad.empty()) {
        req["aad"] = base64url_encode(aad);
      }
      auto enc = mhsm->encrypt(mhsm.ctx, name, "", req);
      REQUIRE_OK(enc);
      const Bytes ct = decode(*enc, "value"), iv = decode(*enc, "iv"), tag = decode(*enc, "tag");
      CHECK(iv.size() == 12);
      CHECK(tag.size() == 16);
      CHECK(ct.size() == len);
      CHECK(test::openssl_aes_decrypt("GCM", k, iv, aad, ct, tag) == pt);
      Json dec{{"alg", "A" + bits + "GCM"},
               {"value", base64url_encode(ct)},
               {"iv", base64url_encode(iv)},
               {"tag", base64url_encode(tag)}};
      if (!aad.empty()) {
        dec["aad"] = base64url_encode(aad);
      }
      CHECK(value_of(mhsm->decrypt(mhsm.ctx, name, "", dec)) == pt);
      for (const char* field : {"value", "tag", "iv", "aad"}) {
        Json bad = dec;
        Bytes b = bad.contains(field) ? decode(bad, field) : Bytes{0x61};
        b[0] ^= 0x01;
        bad[field] = base64url_encode(b);
        INFO(field);
        auto r = mhsm->decrypt(mhsm.ctx, name, "", bad);
        test::expect_kv_error(r, "BadParameter", 400);
        if (std::string(field) != "iv") {
          CHECK(r.error().message().find("Decryption failed") != std::string::npos);
        }
      }
      // Our own IV and a second encryption of the same data: a fresh IV each time.
      Json own = req;
      own["iv"] = base64url_encode(random_bytes(12));
      test::expect_kv_error(mhsm->encrypt(mhsm.ctx, name, "", own), "BadParameter", 400);
      auto again = mhsm->encrypt(mhsm.ctx, name, "", req);
      REQUIRE_OK(again);
      CHECK(decode(*again, "iv") != iv);
    }
    // OpenSSL's GCM ciphertext decrypts in the vault.
    {
      const Bytes pt = random_bytes(77), iv = random_bytes(12), aad = random_bytes(9);
      auto c = test::openssl_aes_encrypt("GCM", k, iv, aad, pt);
      CHECK(value_of(mhsm->decrypt(mhsm.ctx, name, "",
                                   Json{{"alg", "A" + bits + "GCM"},
                                        {"value", base64url_encode(c.ct)},
                                        {"iv", base64url_encode(iv)},
                                        {"tag", base64url_encode(c.tag)},
                                        {"aad", base64url_encode(aad)}})) == pt);
    }
    // CBC and CBCPAD: the caller's IV gives exactly OpenSSL's ciphertext; without one, the vault
    // makes a 16-byte IV and returns it.
    for (const std::string mode : {"CBC", "CBCPAD"}) {
      const std::string alg = "A" + bits + mode;
      for (std::size_t len : {16u, 48u, 5u, 33u}) {
        INFO(alg << " " << len);
        const Bytes pt = random_bytes(len), iv = random_bytes(16);
        Json req{{"alg", alg}, {"value", base64url_encode(pt)}, {"iv", base64url_encode(iv)}};
        auto enc = mhsm->encrypt(mhsm.ctx, name, "", req);
        if (mode == "CBC" && len % 16 != 0) {
          test::expect_kv_error(enc, "BadParameter", 400);
          continue;
        }
        REQUIRE_OK(enc);
        const Bytes ct = decode(*enc, "value");
        CHECK(decode(*enc, "iv") == iv);
        CHECK(ct == test::openssl_aes_encrypt(mode, k, iv, {}, pt).ct);
        CHECK(value_of(mhsm->decrypt(mhsm.ctx, name, "",
                                     Json{{"alg", alg},
                                          {"value", base64url_encode(ct)},
                                          {"iv", base64url_encode(iv)}})) == pt);
        req.erase("iv");
        auto gen = mhsm->encrypt(mhsm.ctx, name, "", req);
        REQUIRE_OK(gen);
        const Bytes giv = decode(*gen, "iv");
        CHECK(giv.size() == 16);
        CHECK(test::openssl_aes_decrypt(mode, k, giv, {}, decode(*gen, "value"), {}) == pt);
      }
      // A ciphertext whose plaintext ends in 0x00 (never valid PKCS#7 padding): the one
      // integrity answer under CBCPAD.
      if (mode == "CBCPAD") {
        const Bytes iv = random_bytes(16);
        Bytes pt = random_bytes(32);
        pt.back() = 0x00;
        const Bytes ct = test::openssl_aes_encrypt("CBC", k, iv, {}, pt).ct;
        auto r = mhsm->decrypt(
            mhsm.ctx, name, "",
            Json{{"alg", alg}, {"value", base64url_encode(ct)}, {"iv", base64url_encode(iv)}});
        test::expect_kv_error(r, "BadParameter", 400);
        CHECK(r.error().message().find("Decryption failed") != std::string::npos);
      }
    }
    // Refusals: the wrong size, a KW alg, GCM decrypt without its tag, CBC with aad, short IVs.
    const std::string other = bytes == 32 ? "A128GCM" : "A256GCM";
    test::expect_kv_error(
        mhsm->encrypt(mhsm.ctx, name, "", Json{{"alg", other}, {"value", base64url_encode(k)}}),
        "BadParameter", 400);
    test::expect_kv_error(mhsm->decrypt(mhsm.ctx, name, "",
                                        Json{{"alg", "A" + bits + "GCM"},
                                             {"value", base64url_encode(k)},
                                             {"iv", base64url_encode(random_bytes(12))}}),
                          "BadParameter", 400);
    test::expect_kv_error(mhsm->encrypt(mhsm.ctx, name, "",
                                        Json{{"alg", "A" + bits + "CBCPAD"},
                                             {"value", base64url_encode(k)},
                                             {"aad", base64url_encode(k)}}),
                          "BadParameter", 400);
    test::expect_kv_error(mhsm->encrypt(mhsm.ctx, name, "",
                                        Json{{"alg", "A" + bits + "CBC"},
                                             {"value", base64url_encode(k)},
                                             {"iv", base64url_encode(random_bytes(12))}}),
                          "BadParameter", 400);
    test::expect_kv_error(
        mhsm->encrypt(mhsm.ctx, name, "",
                      Json{{"alg", "A" + bits + "GCM"}, {"value", base64url_encode(Bytes{})}}),
        "BadParameter", 400);
  }
  CHECK(test::count_session_objects(mhsm.session, CKO_SECRET_KEY) == 0);
}

TEST_CASE("plain JWK import of RSA and EC keys from OpenSSL, then sign and verify",
          "[vault][crypto]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "jwkimport");
  auto rsa = oracle::rsa_keygen(2048);
  Json rsa_jwk = test::rsa_private_jwk(rsa.get());
  auto b = kv->import_key(kv.ctx, "rsa-sw", Json{{"key", rsa_jwk}});
  REQUIRE_OK(b);
  CHECK((*b)["key"]["kty"] == "RSA");
  CHECK((*b)["attributes"]["hsmPlatform"] == "0");
  CHECK((*b)["key"]["n"] == rsa_jwk["n"]);
  CHECK_FALSE((*b)["key"].contains("d"));
  auto h = kv->import_key(kv.ctx, "rsa-hsm", Json{{"key", rsa_jwk}, {"hsm", true}});
  REQUIRE_OK(h);
  CHECK((*h)["key"]["kty"] == "RSA-HSM");
  CK_OBJECT_HANDLE obj = kv.object_of("rsa-hsm", test::version_of(*h));
  CHECK(*kv.session.get_bool(obj, CKA_SENSITIVE));
  CHECK(*kv.session.get_bool(obj, CKA_EXTRACTABLE));  // for BackupKey
  for (const char* alg : {"RS256", "PS512"}) {
    Bytes digest = test::digest_of(alg, random_bytes(20));
    Bytes sig = value_of(
        kv->sign(kv.ctx, "rsa-hsm", "", Json{{"alg", alg}, {"value", base64url_encode(digest)}}));
    CHECK(test::openssl_verify(rsa.get(), alg, digest, sig));
  }
  // d from another key: refused, nothing stored.
  const std::size_t objects = kv.token_objects();
  Json mixed = rsa_jwk;
  mixed["d"] = test::rsa_private_jwk(oracle::rsa_keygen(2048).get())["d"];
  test::expect_kv_error(kv->import_key(kv.ctx, "rsa-bad", Json{{"key", mixed}}), "BadParameter",
                        400);
  Json crt = rsa_jwk;
  Json other_rsa = test::rsa_private_jwk(oracle::rsa_keygen(2048).get());
  for (const char* m : {"p", "q", "dp", "dq", "qi"}) {
    crt[m] = other_rsa[m];
  }
  test::expect_kv_error(kv->import_key(kv.ctx, "rsa-bad", Json{{"key", crt}}), "BadParameter", 400);
  Json partial = rsa_jwk;
  partial.erase("qi");
  test::expect_kv_error(kv->import_key(kv.ctx, "rsa-bad", Json{{"key", partial}}), "BadParameter",
                        400);
  CHECK(kv.token_objects() == objects);

  const std::pair<const char*, const char*> curves[] = {{"P-256", "prime256v1"},
                                                        {"P-384", "secp384r1"},
                                                        {"P-521", "secp521r1"},
                                                        {"P-256K", "secp256k1"}};
  for (const auto& [crv, group] : curves) {
    INFO(crv);
    auto ec = oracle::ec_keygen(group);
    Json jwk = test::ec_private_jwk(ec.get(), crv);
    const std::string name = std::string("ec-") + (crv + 2);
    auto eb = kv->import_key(kv.ctx, name, Json{{"key", jwk}, {"Hsm", true}});
    REQUIRE_OK(eb);
    CHECK((*eb)["key"]["x"] == jwk["x"]);
    CHECK((*eb)["key"]["y"] == jwk["y"]);
    const std::string alg = std::string(crv) == "P-256"   ? "ES256"
                            : std::string(crv) == "P-384" ? "ES384"
                            : std::string(crv) == "P-521" ? "ES512"
                                                          : "ES256K";
    Bytes digest = test::digest_of(alg, random_bytes(20));
    Bytes sig = value_of(
        kv->sign(kv.ctx, name, "", Json{{"alg", alg}, {"value", base64url_encode(digest)}}));
    CHECK(test::openssl_verify(ec.get(), alg, digest, sig));
    // x/y of another key: refused.
    Json wrong = jwk;
    Json other = test::ec_private_jwk(oracle::ec_keygen(group).get(), crv);
    wrong["x"] = other["x"];
    wrong["y"] = other["y"];
    test::expect_kv_error(kv->import_key(kv.ctx, name + "-bad", Json{{"key", wrong}}),
                          "BadParameter", 400);
  }
  CHECK(kv.token_objects() == objects + 4);
  // oct by plain import is Managed HSM only.
  test::expect_kv_error(
      kv->import_key(kv.ctx, "oct",
                     Json{{"key", {{"kty", "oct"}, {"k", base64url_encode(random_bytes(32))}}}}),
      "BadParameter", 400);
}

TEST_CASE("a KEK can only import: it neither signs nor decrypts", "[vault][crypto]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "kekonly");
  auto kek = kv->create_key(kv.ctx, "KEK", test::kek_params(2048));
  REQUIRE_OK(kek);
  Bytes d = test::digest_of("RS256", random_bytes(3));
  test::expect_kv_error(
      kv->sign(kv.ctx, "KEK", "", Json{{"alg", "RS256"}, {"value", base64url_encode(d)}}),
      "Forbidden", 403, vault::kKeyOperationForbidden);
  auto pub = test::openssl_public(*kek);
  Bytes ct = test::openssl_encrypt(pub.get(), "RSA-OAEP", d);
  test::expect_kv_error(
      kv->decrypt(kv.ctx, "KEK", "", Json{{"alg", "RSA-OAEP"}, {"value", base64url_encode(ct)}}),
      "Forbidden", 403, vault::kKeyOperationForbidden);
}
