// SPDX-License-Identifier: Apache-2.0
// HSM-side BYOK export on SoftHSM2, checked by implementations keyport did not write: OpenSSL's EVP
// (tests/support/oracle.cpp) and SoftHSM's own C_UnwrapKey in a second token.
#include <catch2/catch.hpp>

#include <map>

#include "byok/byok_file.h"
#include "byok/kid.h"
#include "byok/public_key.h"
#include "core/random.h"
#include "pkcs11/keygen.h"
#include "pkcs11/quirks.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/support/support.h"
#include "transfer/export.h"

using namespace keyport;
namespace oracle = keyport::test::oracle;

namespace {

const char* kKvKid = "https://contoso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef";
const char* kMhsmKid =
    "https://contoso.managedhsm.azure.net/keys/KEK/0123456789abcdef0123456789abcdef";

struct Rig {
  p11::Session session;
  p11::TokenInfo token;
  p11::WrapCapabilities caps;

  explicit Rig(const char* label) : session(test::SoftHsm::get().login(label)) {
    token = *p11::token_info(*test::SoftHsm::get().module(), session.slot());
    caps = *p11::probe_wrap_capabilities(session, token);
  }

  p11::KeyObject generate(const std::string& type, const std::string& label) {
    p11::KeyGenRequest req;
    req.spec = *parse_key_spec(type);
    req.label = label;
    auto k = p11::generate_portable_key(session, req);
    REQUIRE_OK(k);
    return *k;
  }

  Result<transfer::ExportResult> export_to(const p11::KeyObject& key, EVP_PKEY* kek,
                                           const char* kid_text,
                                           WrapAlg enc = WrapAlg::kRsaAesKeyWrap) {
    auto pub = byok::PublicKey::from_spki_der(oracle::spki_der(kek));
    REQUIRE_OK(pub);
    auto skek = transfer::SessionKek::import(session, *pub);
    REQUIRE_OK(skek);
    auto kid = byok::parse_kid(kid_text);
    REQUIRE_OK(kid);
    transfer::ExportOptions o;
    o.enc = enc;
    o.generator = transfer::generator_for(token);
    return transfer::export_key(session, caps, key, *skek, *kid, *kid->target, o);
  }
};

// Unwraps the file with OpenSSL and proves it holds exactly the token's key.
void check_with_openssl(Rig& rig, const p11::KeyObject& key, EVP_PKEY* kek_private,
                        const byok::ByokFile& file) {
  // Round trip through the file text first: the file, not the struct, is what Azure gets.
  auto reparsed = byok::ByokFile::parse(file.to_json());
  REQUIRE_OK(reparsed);
  Bytes plain = oracle::unwrap_transfer_blob(kek_private, reparsed->enc, reparsed->ciphertext);
  if (key.spec.family == KeyFamily::kAes) {
    REQUIRE(plain.size() == key.spec.bits / 8);
    auto in_token = p11::aes_check_value(rig.session, key.handle);
    REQUIRE_OK(in_token);
    CHECK(*in_token == oracle::aes_check_value(plain));
    return;
  }
  std::size_t der_len = 0;
  auto recovered = oracle::parse_pkcs8(plain, &der_len);
  // SoftHSM 2.6.1 quirk: the PKCS#8 is zero-padded to a multiple of 8 inside the KWP plaintext.
  REQUIRE(der_len <= plain.size());
  CHECK(plain.size() - der_len < 8);
  for (std::size_t i = der_len; i < plain.size(); ++i)
    CHECK(plain[i] == 0);
  auto pub = p11::read_public_components(rig.session, key);
  REQUIRE_OK(pub);
  if (key.spec.family == KeyFamily::kRsa) {
    CHECK(oracle::rsa_modulus(recovered.get()) == pub->modulus);
  } else {
    CHECK(oracle::ec_group_name(recovered.get()) == curve_openssl_name(*key.spec.curve));
    CHECK(oracle::ec_public_point(recovered.get()) == pub->ec_point);
  }
}

}  // namespace

TEST_CASE("every key type exported under every KEK size unwraps with OpenSSL to the token's key",
          "[softhsm][export][slow]") {
  Rig rig(test::kOnpremToken);
  std::vector<p11::KeyObject> keys;
  for (const auto& spec : all_key_specs())
    keys.push_back(rig.generate(spec.name(), "t-" + spec.name()));
  for (unsigned kek_bits : {2048u, 3072u, 4096u}) {
    auto kek = oracle::rsa_keygen(kek_bits);
    for (const auto& key : keys) {
      INFO("KEK " << kek_bits << ", target " << key.spec.name());
      const char* kid = key.spec.family == KeyFamily::kAes ? kMhsmKid : kKvKid;
      auto r = rig.export_to(key, kek.get(), kid);
      REQUIRE_OK(r);
      CHECK(r->file.kid == kid);
      CHECK(r->strategy_used == p11::WrapStrategy::kComposite);
      CHECK(r->file.generator == "keyport 0.1.0; SoftHSM project SoftHSM v2 firmware 2.6");
      // RSA part is exactly the modulus; the KWP part is 8 + a multiple of 8.
      std::size_t kwp = r->file.ciphertext.size() - kek_bits / 8;
      CHECK(kwp % 8 == 0);
      CHECK(kwp >= 16);
      check_with_openssl(rig, key, kek.get(), r->file);
    }
  }
  CHECK(test::count_session_objects(rig.session, CKO_SECRET_KEY) == 0);
}

TEST_CASE("an exported blob imports into a second token with C_UnwrapKey and the key works",
          "[softhsm][export][import]") {
  Rig onprem(test::kOnpremToken);
  Rig vault(test::kVaultToken);
  // The vault's KEK: an RSA-3072 pair inside the vault token, private part unwrap-only.
  p11::Template pub_t, priv_t;
  CK_ULONG bits = 3072;
  const std::uint8_t e[] = {1, 0, 1};
  pub_t.token(false).encrypt(true).wrap(true).modulus_bits(bits).public_exponent(e);
  priv_t.token(false)
      .private_object(true)
      .sensitive(true)
      .extractable(false)
      .unwrap(true)
      .decrypt(false)
      .sign(false);
  CK_MECHANISM gen{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE kek_pub = 0, kek_priv = 0;
  auto lp = pub_t.lower();
  auto lv = priv_t.lower();
  REQUIRE_OK(KP11_CALL(vault.session.module(), C_GenerateKeyPair, vault.session.handle(), &gen,
                       lp.data(), lp.size(), lv.data(), lv.size(), &kek_pub, &kek_priv));
  auto n = vault.session.get_bytes(kek_pub, CKA_MODULUS);
  auto ex = vault.session.get_bytes(kek_pub, CKA_PUBLIC_EXPONENT);
  REQUIRE_OK(n);
  auto kek_public = byok::PublicKey::from_rsa_components(*n, *ex);
  REQUIRE_OK(kek_public);
  auto kid = *byok::parse_kid(kKvKid);
  auto mhsm_kid = *byok::parse_kid(kMhsmKid);

  for (const char* type : {"rsa-2048", "ec-p256", "ec-p384", "ec-p521", "ec-p256k", "aes-256"}) {
    INFO(type);
    auto spec = *parse_key_spec(type);
    auto key = onprem.generate(type, std::string("imp-") + type);
    auto skek = transfer::SessionKek::import(onprem.session, *kek_public);
    REQUIRE_OK(skek);
    transfer::ExportOptions o;
    o.generator = "test";
    bool aes = spec.family == KeyFamily::kAes;
    auto r =
        transfer::export_key(onprem.session, onprem.caps, key, *skek, aes ? mhsm_kid : kid,
                             aes ? byok::TargetKind::kManagedHsm : byok::TargetKind::kKeyVault, o);
    REQUIRE_OK(r);

    p11::Template target;
    target.object_class(aes ? CKO_SECRET_KEY : CKO_PRIVATE_KEY)
        .key_type(aes ? CKK_AES : (spec.family == KeyFamily::kRsa ? CKK_RSA : CKK_EC))
        .token(false)
        .private_object(true)
        .sensitive(true)
        .extractable(false);
    if (aes) {
      target.encrypt(true);
    } else {
      target.sign(true);
    }
    auto imported =
        p11::unwrap_rsa_aes(vault.session, vault.caps, p11::WrapStrategy::kAuto,
                            WrapAlg::kRsaAesKeyWrap, kek_priv, 384, r->file.ciphertext, target);
    REQUIRE_OK(imported);
    CHECK(*vault.session.get_bool(*imported, CKA_SENSITIVE));
    CHECK_FALSE(*vault.session.get_bool(*imported, CKA_EXTRACTABLE));
    if (aes) {
      CHECK(*p11::aes_check_value(vault.session, *imported) ==
            *p11::aes_check_value(onprem.session, key.handle));
      continue;
    }
    // Sign in the vault token with the imported key; verify with the on-prem public key in OpenSSL.
    Bytes data = random_bytes(64);
    CK_MECHANISM sign{spec.family == KeyFamily::kRsa ? CKM_SHA256_RSA_PKCS : CKM_ECDSA, nullptr, 0};
    Bytes to_sign = data;
    if (spec.family == KeyFamily::kEc) {
      to_sign.resize(32);
      unsigned int dl = 32;
      EVP_Digest(data.data(), data.size(), to_sign.data(), &dl, EVP_sha256(), nullptr);
    }
    REQUIRE_OK(
        KP11_CALL(vault.session.module(), C_SignInit, vault.session.handle(), &sign, *imported));
    Bytes sig(1024);
    CK_ULONG sig_len = sig.size();
    REQUIRE_OK(KP11_CALL(vault.session.module(), C_Sign, vault.session.handle(), to_sign.data(),
                         static_cast<CK_ULONG>(to_sign.size()), sig.data(), &sig_len));
    sig.resize(sig_len);
    auto pub = *p11::read_public_components(onprem.session, key);
    ossl::UniquePtr<EVP_PKEY> verifier;
    if (spec.family == KeyFamily::kRsa) {
      verifier = oracle::rsa_public_from(pub.modulus, pub.exponent);
    } else {
      verifier = oracle::ec_public_from(std::string(curve_openssl_name(*spec.curve)).c_str(),
                                        pub.ec_point);
      // PKCS#11 ECDSA signatures are r||s; OpenSSL verifies DER.
      std::size_t half = sig.size() / 2;
      ossl::UniquePtr<ECDSA_SIG> es(ECDSA_SIG_new());
      ECDSA_SIG_set0(es.get(), BN_bin2bn(sig.data(), static_cast<int>(half), nullptr),
                     BN_bin2bn(sig.data() + half, static_cast<int>(half), nullptr));
      unsigned char* der = nullptr;
      int der_len = i2d_ECDSA_SIG(es.get(), &der);
      sig.assign(der, der + der_len);
      OPENSSL_free(der);
    }
    CHECK(oracle::verify_sha256(verifier.get(), data, sig));
    data[0] ^= 1;
    CHECK_FALSE(oracle::verify_sha256(verifier.get(), data, sig));
  }
  // The only secret session object left is the imported AES key: every transfer key is gone.
  CHECK(test::count_session_objects(vault.session, CKO_SECRET_KEY) == 1);
}

TEST_CASE("unwrap failures are indistinguishable whichever part of the blob is wrong",
          "[softhsm][import]") {
  Rig onprem(test::kOnpremToken);
  Rig vault(test::kVaultToken);
  p11::Template pub_t, priv_t;
  const std::uint8_t e[] = {1, 0, 1};
  pub_t.token(false).wrap(true).encrypt(true).modulus_bits(2048).public_exponent(e);
  priv_t.token(false).private_object(true).sensitive(true).unwrap(true);
  CK_MECHANISM gen{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE kek_pub = 0, kek_priv = 0;
  auto lp = pub_t.lower();
  auto lv = priv_t.lower();
  REQUIRE_OK(KP11_CALL(vault.session.module(), C_GenerateKeyPair, vault.session.handle(), &gen,
                       lp.data(), lp.size(), lv.data(), lv.size(), &kek_pub, &kek_priv));
  auto kek_public =
      *byok::PublicKey::from_rsa_components(*vault.session.get_bytes(kek_pub, CKA_MODULUS),
                                            *vault.session.get_bytes(kek_pub, CKA_PUBLIC_EXPONENT));
  auto key = onprem.generate("ec-p256", "tamper");
  auto skek = *transfer::SessionKek::import(onprem.session, kek_public);
  transfer::ExportOptions o;
  o.generator = "test";
  auto r = transfer::export_key(onprem.session, onprem.caps, key, skek, *byok::parse_kid(kKvKid),
                                byok::TargetKind::kKeyVault, o);
  REQUIRE_OK(r);
  p11::Template target;
  target.object_class(CKO_PRIVATE_KEY).key_type(CKK_EC).token(false).sensitive(true).sign(true);
  auto attempt = [&](Bytes ct, CK_KEY_TYPE type = CKK_EC) {
    p11::Template t = target;
    t.key_type(type);
    return p11::unwrap_rsa_aes(vault.session, vault.caps, p11::WrapStrategy::kAuto,
                               WrapAlg::kRsaAesKeyWrap, kek_priv, 256, ct, t);
  };
  REQUIRE_OK(attempt(r->file.ciphertext));
  std::vector<std::pair<std::string, Result<CK_OBJECT_HANDLE>>> failures;
  Bytes rsa_flip = r->file.ciphertext;
  rsa_flip[10] ^= 0x01;
  failures.emplace_back("RSA part tampered", attempt(rsa_flip));
  Bytes kwp_flip = r->file.ciphertext;
  kwp_flip[256 + 3] ^= 0x80;
  failures.emplace_back("KWP part tampered", attempt(kwp_flip));
  Bytes truncated(r->file.ciphertext.begin(), r->file.ciphertext.end() - 8);
  failures.emplace_back("truncated", attempt(truncated));
  failures.emplace_back("declared RSA, holds EC", attempt(r->file.ciphertext, CKK_RSA));
  Bytes short_blob(r->file.ciphertext.begin(), r->file.ciphertext.begin() + 200);
  failures.emplace_back("shorter than the KEK", attempt(short_blob));
  for (auto& [what, result] : failures) {
    INFO(what);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code() == ErrorCode::kIntegrityFailure);
    CHECK(result.error().message() == kIntegrityMessage);
    CHECK_FALSE(result.error().rv().has_value());
  }
  // Neither the transfer keys nor half-imported targets are left behind.
  CHECK(test::count_session_objects(vault.session, CKO_SECRET_KEY) == 0);
  CHECK(test::count_session_objects(vault.session, CKO_PRIVATE_KEY) ==
        2);  // KEK + the one good import
}

TEST_CASE("the transfer key is destroyed after every export, also when the export fails half way",
          "[softhsm][export]") {
  Rig rig(test::kOnpremToken);
  auto kek = oracle::rsa_keygen(2048);
  auto key = rig.generate("rsa-2048", "eph");
  REQUIRE(test::count_session_objects(rig.session, CKO_SECRET_KEY) == 0);
  for (int i = 0; i < 3; ++i)
    REQUIRE_OK(rig.export_to(key, kek.get(), kKvKid));
  CHECK(test::count_session_objects(rig.session, CKO_SECRET_KEY) == 0);

  auto pub = *byok::PublicKey::from_spki_der(oracle::spki_der(kek.get()));
  auto skek = *transfer::SessionKek::import(rig.session, pub);

  // Fails in the first C_WrapKey (AES-KWP of the target): a target that is not extractable.
  p11::Template nonx;
  const std::uint8_t id[] = {7};
  nonx.object_class(CKO_SECRET_KEY)
      .key_type(CKK_AES)
      .token(false)
      .value_len(32)
      .sensitive(true)
      .extractable(false)
      .id(id);
  auto nl = nonx.lower();
  CK_MECHANISM gen{CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE nonx_h = 0;
  REQUIRE_OK(KP11_CALL(rig.session.module(), C_GenerateKey, rig.session.handle(), &gen, nl.data(),
                       nl.size(), &nonx_h));
  std::size_t before = test::count_session_objects(rig.session, CKO_SECRET_KEY);
  auto r1 = p11::wrap_rsa_aes(rig.session, rig.caps, p11::WrapStrategy::kComposite,
                              WrapAlg::kRsaAesKeyWrap, skek.handle(), skek.modulus_bytes(), nonx_h);
  CHECK_ERROR_CODE(r1, ErrorCode::kPkcs11);
  CHECK(r1.error().rv() == CKR_KEY_UNEXTRACTABLE);
  CHECK_THAT(r1.error().message(), Catch::Contains("not extractable"));
  CHECK(test::count_session_objects(rig.session, CKO_SECRET_KEY) == before);

  // Fails in the second C_WrapKey (RSA-OAEP of the transfer key): a KEK that may not wrap.
  p11::Template no_wrap;
  no_wrap.object_class(CKO_PUBLIC_KEY)
      .key_type(CKK_RSA)
      .token(false)
      .wrap(false)
      .modulus(pub.rsa_modulus())
      .public_exponent(pub.rsa_exponent());
  auto bad_kek = rig.session.create_object(no_wrap);
  REQUIRE_OK(bad_kek);
  auto r2 = p11::wrap_rsa_aes(rig.session, rig.caps, p11::WrapStrategy::kComposite,
                              WrapAlg::kRsaAesKeyWrap, *bad_kek, 256, key.handle);
  CHECK_ERROR_CODE(r2, ErrorCode::kPkcs11);
  CHECK(r2.error().rv() == CKR_KEY_FUNCTION_NOT_PERMITTED);
  CHECK(test::count_session_objects(rig.session, CKO_SECRET_KEY) == before);
}

TEST_CASE("export refuses what the target or the module cannot take before wrapping",
          "[softhsm][export]") {
  Rig rig(test::kOnpremToken);
  auto kek = oracle::rsa_keygen(2048);
  auto aes = rig.generate("aes-128", "aes");
  auto kv = rig.export_to(aes, kek.get(), kKvKid);
  CHECK_ERROR_CODE(kv, ErrorCode::kUnsupported);
  CHECK_THAT(kv.error().message(), Catch::Contains("Managed HSM"));
  auto ec = rig.generate("ec-p256", "ec");
  auto sha256 = rig.export_to(ec, kek.get(), kKvKid, WrapAlg::kRsaAesKeyWrap256);
  CHECK_ERROR_CODE(sha256, ErrorCode::kUnsupported);
  CHECK_THAT(sha256.error().message(),
             Catch::Contains("SHA-256") && Catch::Contains("never falls back"));
  auto sha384 = rig.export_to(ec, kek.get(), kKvKid, WrapAlg::kRsaAesKeyWrap384);
  CHECK_ERROR_CODE(sha384, ErrorCode::kUnsupported);
  // A key made without CKA_EXTRACTABLE (SoftHSM then defaults it to FALSE) is refused by name.
  p11::Template pub_t, priv_t;
  pub_t.token(true).label("legacy").ec_params(curve_oid_der(Curve::kP256));
  priv_t.token(true).private_object(true).sensitive(true).sign(true).label("legacy");
  CK_MECHANISM gen{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE hp = 0, hv = 0;
  auto lp = pub_t.lower();
  auto lv = priv_t.lower();
  REQUIRE_OK(KP11_CALL(rig.session.module(), C_GenerateKeyPair, rig.session.handle(), &gen,
                       lp.data(), lp.size(), lv.data(), lv.size(), &hp, &hv));
  auto legacy = p11::find_key(rig.session, "legacy");
  REQUIRE_OK(legacy);
  CHECK_FALSE(legacy->extractable);
  auto refused = rig.export_to(*legacy, kek.get(), kKvKid);
  CHECK_ERROR_CODE(refused, ErrorCode::kInvalidArgument);
  CHECK_THAT(refused.error().message(), Catch::Contains("not extractable"));
  CHECK(test::count_session_objects(rig.session, CKO_SECRET_KEY) == 0);
}
