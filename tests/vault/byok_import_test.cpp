// SPDX-License-Identifier: Apache-2.0
// BYOK import through the simulated vault: KEKs made in the vault, keys exported from the on-prem
// token with transfer::export_key, imported with ImportKey, then used inside the vault and checked
// against the on-prem key with OpenSSL (and, for AES, against the on-prem token).
#include <catch2/catch.hpp>

#include "core/random.h"
#include "pkcs11/keygen.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/vault/vault_rig.h"
#include "vault/ec_recover.h"

using namespace keyport;
namespace oracle = keyport::test::oracle;

namespace {

std::string sign_alg_for(const KeySpec& spec) {
  if (spec.family == KeyFamily::kRsa) {
    return "RS256";
  }
  switch (*spec.curve) {
    case Curve::kP256:
      return "ES256";
    case Curve::kP384:
      return "ES384";
    case Curve::kP521:
      return "ES512";
    case Curve::kP256K:
      break;
  }
  return "ES256K";
}

// RFC 3394 wrap of `bytes` inside the on-prem token under its AES key (what the vault's wrapKey
// must reproduce when it holds the same key).
Bytes onprem_aes_kw(const p11::Session& s, CK_OBJECT_HANDLE aes, const Bytes& bytes) {
  p11::Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(CKK_GENERIC_SECRET)
      .token(false)
      .sensitive(false)
      .extractable(true)
      .set_secret(CKA_VALUE, SecretBytes(bytes));
  auto h = s.create_object(t);
  REQUIRE_OK(h);
  p11::ScopedObject target(s, *h);
  CK_MECHANISM mech{CKM_AES_KEY_WRAP, nullptr, 0};
  Bytes out(bytes.size() + 8);
  CK_ULONG len = out.size();
  REQUIRE_OK(KP11_CALL(s.module(), C_WrapKey, s.handle(), &mech, aes, *h, out.data(), &len));
  out.resize(len);
  return out;
}

}  // namespace

TEST_CASE("every key type imported by BYOK under every KEK size works inside the vault",
          "[vault][byok][slow]") {
  test::Onprem onprem;
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "contoso-mhsm");
  test::VaultRig kv(vault::Flavor::kKeyVault, "contoso-kv");
  CHECK(mhsm->host() == "contoso-mhsm.managedhsm.azure.net");
  CHECK(kv->host() == "contoso-kv.vault.azure.net");

  // Generate each on-prem key once (RSA-4096 keygen is slow).
  std::vector<p11::KeyObject> keys;
  for (const auto& spec : all_key_specs()) {
    keys.push_back(onprem.generate(spec, "vt-" + spec.name()));
  }
  const std::size_t objects_before = mhsm.token_objects();
  std::size_t imported = 0;

  for (unsigned bits : {2048u, 3072u, 4096u}) {
    const std::string kek_name = "KEK-" + std::to_string(bits);
    auto kek = mhsm->create_key(mhsm.ctx, kek_name, test::kek_params(bits));
    REQUIRE_OK(kek);
    CHECK((*kek)["key"]["kty"] == "RSA-HSM");
    CHECK((*kek)["key"]["key_ops"] == Json::array({"import"}));
    CHECK_FALSE((*kek)["attributes"]["exportable"].get<bool>());
    // The KEK private object can unwrap and nothing else.
    CK_OBJECT_HANDLE kek_obj = mhsm.object_of(kek_name, test::version_of(*kek));
    CHECK(*mhsm.session.get_bool(kek_obj, CKA_UNWRAP));
    CHECK_FALSE(*mhsm.session.get_bool(kek_obj, CKA_SIGN));
    CHECK_FALSE(*mhsm.session.get_bool(kek_obj, CKA_DECRYPT));
    CHECK(*mhsm.session.get_bool(kek_obj, CKA_EXTRACTABLE));  // for BackupKey

    // Download the KEK as SPKI, as `az keyvault key download` does.
    byok::PublicKey kek_pub = test::public_key_of(*kek);
    CHECK(kek_pub.bits() == bits);
    auto reloaded = byok::PublicKey::from_pem(kek_pub.pem());
    REQUIRE_OK(reloaded);
    CHECK(*reloaded == kek_pub);
    const std::string kid = (*kek)["key"]["kid"].get<std::string>();

    for (const auto& key : keys) {
      INFO("KEK " << bits << ", target " << key.spec.name());
      byok::ByokFile file = onprem.export_to(key, kek_pub, kid);
      const std::string kty(key.spec.azure_kty());
      const std::string crv =
          key.spec.curve ? std::string(curve_jwk_name(*key.spec.curve)) : std::string();
      const std::string name = "imp-" + key.spec.name() + "-" + std::to_string(bits);
      auto bundle = mhsm->import_key(mhsm.ctx, name, test::byok_body(file.to_json(), kty, crv));
      REQUIRE_OK(bundle);
      ++imported;
      CHECK((*bundle)["key"]["kty"] == kty);
      const std::string version = test::version_of(*bundle);
      CK_OBJECT_HANDLE obj = mhsm.object_of(name, version);
      CHECK(*mhsm.session.get_bool(obj, CKA_SENSITIVE));
      CHECK(*mhsm.session.get_bool(obj, CKA_EXTRACTABLE));  // for BackupKey
      CHECK(*mhsm.session.get_bool(obj, CKA_TOKEN));

      if (key.spec.family == KeyFamily::kAes) {
        CHECK_FALSE((*bundle)["key"].contains("k"));
        // Same key in both tokens: identical check values and identical RFC 3394 wraps.
        CHECK(*p11::aes_check_value(mhsm.session, obj) ==
              *p11::aes_check_value(onprem.session, key.handle));
        Bytes data = random_bytes(32);
        const std::string alg = "A" + std::to_string(key.spec.bits) + "KW";
        auto wrapped = mhsm->wrap_key(mhsm.ctx, name, "",
                                      Json{{"alg", alg}, {"value", base64url_encode(data)}});
        REQUIRE_OK(wrapped);
        Bytes w = *base64url_decode((*wrapped)["value"].get<std::string>());
        CHECK(w == onprem_aes_kw(onprem.session, key.handle, data));
        auto unwrapped = mhsm->unwrap_key(mhsm.ctx, name, version,
                                          Json{{"alg", alg}, {"value", base64url_encode(w)}});
        REQUIRE_OK(unwrapped);
        CHECK(*base64url_decode((*unwrapped)["value"].get<std::string>()) == data);
        continue;
      }
      // The public key the vault reports is exactly the on-prem one (for EC: recovered from
      // signatures made inside the vault token).
      auto pub = p11::read_public_components(onprem.session, key);
      REQUIRE_OK(pub);
      auto b64 = [&](const char* m) {
        return *base64url_decode((*bundle)["key"][m].get<std::string>());
      };
      if (key.spec.family == KeyFamily::kRsa) {
        CHECK(b64("n") == pub->modulus);
        CHECK(b64("e") == pub->exponent);
      } else {
        CHECK((*bundle)["key"]["crv"] == crv);
        Bytes point{0x04};
        Bytes x = b64("x"), y = b64("y");
        point.insert(point.end(), x.begin(), x.end());
        point.insert(point.end(), y.begin(), y.end());
        CHECK(point == pub->ec_point);
      }
      // Sign inside the vault, verify with the on-prem public key in OpenSSL.
      const std::string alg = sign_alg_for(key.spec);
      Bytes digest = test::digest_of(alg, random_bytes(100));
      auto sig = mhsm->sign(mhsm.ctx, name, version,
                            Json{{"alg", alg}, {"value", base64url_encode(digest)}});
      REQUIRE_OK(sig);
      CHECK((*sig)["kid"] == (*bundle)["key"]["kid"]);
      Bytes signature = *base64url_decode((*sig)["value"].get<std::string>());
      ossl::UniquePtr<EVP_PKEY> verifier =
          key.spec.family == KeyFamily::kRsa
              ? oracle::rsa_public_from(pub->modulus, pub->exponent)
              : oracle::ec_public_from(std::string(curve_openssl_name(*key.spec.curve)).c_str(),
                                       pub->ec_point);
      CHECK(test::openssl_verify(verifier.get(), alg, digest, signature));
      digest[0] ^= 1;
      CHECK_FALSE(test::openssl_verify(verifier.get(), alg, digest, signature));
    }
  }
  // 3 KEKs and 30 imported keys, each one token object; no session object left behind.
  CHECK(mhsm.token_objects() == objects_before + 3 + imported);
  CHECK(test::count_session_objects(mhsm.session, CKO_SECRET_KEY) == 0);
  CHECK(test::count_session_objects(mhsm.session, CKO_PRIVATE_KEY) == 0);

  // The Key Vault flavour takes RSA and EC (one KEK size suffices there).
  auto kv_kek = kv->create_key(kv.ctx, "KEK", test::kek_params(2048));
  REQUIRE_OK(kv_kek);
  for (const auto& key : keys) {
    if (key.spec.family == KeyFamily::kAes) {
      continue;
    }
    INFO(key.spec.name());
    auto file = onprem.export_to(key, test::public_key_of(*kv_kek),
                                 (*kv_kek)["key"]["kid"].get<std::string>());
    const std::string crv =
        key.spec.curve ? std::string(curve_jwk_name(*key.spec.curve)) : std::string();
    auto bundle =
        kv->import_key(kv.ctx, "kv-" + key.spec.name(),
                       test::byok_body(file.to_json(), std::string(key.spec.azure_kty()), crv));
    REQUIRE_OK(bundle);
    CHECK((*bundle)["attributes"]["hsmPlatform"] == "2");
  }
}

TEST_CASE("key_hsm is accepted as padded base64url, unpadded base64url and standard base64",
          "[vault][byok]") {
  test::Onprem onprem;
  test::VaultRig kv(vault::Flavor::kKeyVault, "enc-kv", "https://127.0.0.1:8443");
  CHECK(kv->host() == "127.0.0.1:8443");
  auto kek = kv->create_key(kv.ctx, "KEK", test::kek_params(2048));
  REQUIRE_OK(kek);
  const std::string kid = (*kek)["key"]["kid"].get<std::string>();
  CHECK(kid.rfind("https://127.0.0.1:8443/keys/KEK/", 0) == 0);
  auto key = onprem.generate(*parse_key_spec("ec-p384"), "enc-ec");
  auto file = onprem.export_to(key, test::public_key_of(*kek), kid);
  const std::string text = file.to_json();
  std::string unpadded = base64url_encode(as_bytes(text));
  std::string padded = unpadded + std::string((4 - unpadded.size() % 4) % 4, '=');
  std::string standard = base64_encode(as_bytes(text));
  int n = 0;
  for (const std::string& encoded : {unpadded, padded, standard}) {
    Json body{{"key", {{"kty", "EC-HSM"}, {"crv", "P-384"}, {"key_hsm", encoded}}},
              {"Hsm", true},
              {"tags", {{"purpose", "test"}}},
              {"attributes", {{"enabled", true}}}};
    auto r = kv->import_key(kv.ctx, "same-name", body);
    REQUIRE_OK(r);
    CHECK((*r)["tags"]["purpose"] == "test");
    ++n;
  }
  // Importing to an existing name makes new versions.
  auto versions = kv->list_key_versions(kv.ctx, "same-name");
  REQUIRE_OK(versions);
  CHECK((*versions)["value"].size() == static_cast<std::size_t>(n));
  CHECK((*versions)["nextLink"].is_null());
}

TEST_CASE("ECDSA public-key recovery returns exactly the signer's key on all four curves",
          "[vault][unit]") {
  for (Curve c : {Curve::kP256, Curve::kP384, Curve::kP521, Curve::kP256K}) {
    INFO(curve_jwk_name(c));
    for (int round = 0; round < 8; ++round) {
      auto key = oracle::ec_keygen(std::string(curve_openssl_name(c)).c_str());
      const std::size_t field = curve_field_bytes(c);
      const std::size_t dlen = c == Curve::kP384 ? 48 : (c == Curve::kP521 ? 64 : 32);
      auto sign = [&](const Bytes& digest) {
        ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
        REQUIRE(EVP_PKEY_sign_init(ctx.get()) == 1);
        std::size_t len = 0;
        REQUIRE(EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) == 1);
        Bytes der(len);
        REQUIRE(EVP_PKEY_sign(ctx.get(), der.data(), &len, digest.data(), digest.size()) == 1);
        const unsigned char* p = der.data();
        ossl::UniquePtr<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
        REQUIRE(sig);
        // Raw r||s, each the order's length (P-521: 66 bytes).
        std::size_t half = c == Curve::kP521 ? 66 : field;
        Bytes raw(2 * half);
        BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), static_cast<int>(half));
        BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + half, static_cast<int>(half));
        return raw;
      };
      Bytes d1 = random_bytes(dlen), d2 = random_bytes(dlen);
      Bytes s1 = sign(d1), s2 = sign(d2);
      auto point = vault::recover_ecdsa_public_key(c, d1, s1, d2, s2);
      REQUIRE_OK(point);
      CHECK(*point == oracle::ec_public_point(key.get()));
      // A signature over another digest does not fit: no key verifies both.
      Bytes d3 = random_bytes(dlen);
      CHECK_FALSE(vault::recover_ecdsa_public_key(c, d1, s1, d3, s2).has_value());
    }
  }
}
