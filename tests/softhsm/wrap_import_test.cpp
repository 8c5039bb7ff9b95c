// SPDX-License-Identifier: Apache-2.0
// `keyport byok wrap` output (keys that lived in files, wrapped in software) imported into a token
// with SoftHSM's own C_UnwrapKey: the receiver keyport did not write accepts the exact-length
// PKCS#8 (EC with its public key) and the imported key signs for the file's public key.
#include <catch2/catch.hpp>

#include "byok/key_material.h"
#include "byok/kid.h"
#include "byok/public_key.h"
#include "core/random.h"
#include "pkcs11/keygen.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/support/support.h"

using namespace keyport;
namespace oracle = keyport::test::oracle;

TEST_CASE(
    "keys wrapped from files import into SoftHSM with C_UnwrapKey and sign for their public key",
    "[softhsm][wrap][import]") {
  auto& hsm = test::SoftHsm::get();
  auto vault = hsm.login(test::kVaultToken);
  auto token = *p11::token_info(*hsm.module(), vault.slot());
  auto caps = p11::probe_wrap_capabilities(vault, token);
  REQUIRE_OK(caps);

  // The receiver's KEK: an RSA-2048 pair in the token, private part unwrap-only.
  p11::Template pub_t, priv_t;
  const std::uint8_t e[] = {1, 0, 1};
  pub_t.token(false).wrap(true).encrypt(true).modulus_bits(2048).public_exponent(e);
  priv_t.token(false).private_object(true).sensitive(true).extractable(false).unwrap(true);
  CK_MECHANISM gen{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE kek_pub = 0, kek_priv = 0;
  auto lp = pub_t.lower();
  auto lv = priv_t.lower();
  REQUIRE_OK(KP11_CALL(vault.module(), C_GenerateKeyPair, vault.handle(), &gen, lp.data(),
                       lp.size(), lv.data(), lv.size(), &kek_pub, &kek_priv));
  auto kek = byok::PublicKey::from_rsa_components(*vault.get_bytes(kek_pub, CKA_MODULUS),
                                                  *vault.get_bytes(kek_pub, CKA_PUBLIC_EXPONENT));
  REQUIRE_OK(kek);
  auto kid =
      byok::parse_kid("https://contoso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef");
  REQUIRE_OK(kid);

  struct Case {
    const char* name;
    ossl::UniquePtr<EVP_PKEY> key;
    CK_KEY_TYPE type;
  };
  std::vector<Case> cases;
  cases.push_back({"rsa-2048", oracle::rsa_keygen(2048), CKK_RSA});
  cases.push_back({"ec-p256", oracle::ec_keygen("P-256"), CKK_EC});
  cases.push_back({"ec-p384", oracle::ec_keygen("P-384"), CKK_EC});
  cases.push_back({"ec-p521", oracle::ec_keygen("P-521"), CKK_EC});
  cases.push_back({"ec-p256k", oracle::ec_keygen("secp256k1"), CKK_EC});
  for (auto& c : cases) {
    INFO(c.name);
    Bytes der = oracle::pkcs8_der(c.key.get());
    auto material = byok::load_key_material(der, nullptr);
    REQUIRE_OK(material);
    auto file = byok::wrap_key_material(*material, *kek, *kid, byok::TargetKind::kKeyVault,
                                        WrapAlg::kRsaAesKeyWrap, "keyport test");
    REQUIRE_OK(file);
    p11::Template target;
    target.object_class(CKO_PRIVATE_KEY)
        .key_type(c.type)
        .token(false)
        .private_object(true)
        .sensitive(true)
        .extractable(false)
        .sign(true);
    auto imported =
        p11::unwrap_rsa_aes(vault, *caps, p11::WrapStrategy::kAuto, WrapAlg::kRsaAesKeyWrap,
                            kek_priv, 256, file->ciphertext, target);
    REQUIRE_OK(imported);
    // Sign in the token; verify with the key's public half in OpenSSL.
    Bytes data = random_bytes(48);
    Bytes to_sign = data;
    CK_MECHANISM sign{c.type == CKK_RSA ? CKM_SHA256_RSA_PKCS : CKM_ECDSA, nullptr, 0};
    if (c.type == CKK_EC) {
      to_sign.resize(32);
      unsigned int dl = 32;
      EVP_Digest(data.data(), data.size(), to_sign.data(), &dl, EVP_sha256(), nullptr);
    }
    REQUIRE_OK(KP11_CALL(vault.module(), C_SignInit, vault.handle(), &sign, *imported));
    Bytes sig(1024);
    CK_ULONG sig_len = sig.size();
    REQUIRE_OK(KP11_CALL(vault.module(), C_Sign, vault.handle(), to_sign.data(),
                         static_cast<CK_ULONG>(to_sign.size()), sig.data(), &sig_len));
    sig.resize(sig_len);
    if (c.type == CKK_EC) {
      std::size_t half = sig.size() / 2;
      ossl::UniquePtr<ECDSA_SIG> es(ECDSA_SIG_new());
      ECDSA_SIG_set0(es.get(), BN_bin2bn(sig.data(), static_cast<int>(half), nullptr),
                     BN_bin2bn(sig.data() + half, static_cast<int>(half), nullptr));
      unsigned char* out = nullptr;
      int out_len = i2d_ECDSA_SIG(es.get(), &out);
      sig.assign(out, out + out_len);
      OPENSSL_free(out);
    }
    CHECK(oracle::verify_sha256(c.key.get(), data, sig));
  }
  // AES from a raw key file: the imported key has the same check value as OpenSSL computes.
  Bytes raw = random_bytes(32);
  auto material = byok::load_key_material(raw, nullptr);
  REQUIRE_OK(material);
  auto mhsm = byok::parse_kid(
      "https://contoso.managedhsm.azure.net/keys/KEK/0123456789abcdef0123456789abcdef");
  auto file = byok::wrap_key_material(*material, *kek, *mhsm, byok::TargetKind::kManagedHsm,
                                      WrapAlg::kRsaAesKeyWrap, "keyport test");
  REQUIRE_OK(file);
  p11::Template aes;
  aes.object_class(CKO_SECRET_KEY).key_type(CKK_AES).token(false).sensitive(true).encrypt(true);
  auto imported =
      p11::unwrap_rsa_aes(vault, *caps, p11::WrapStrategy::kAuto, WrapAlg::kRsaAesKeyWrap, kek_priv,
                          256, file->ciphertext, aes);
  REQUIRE_OK(imported);
  CHECK(*p11::aes_check_value(vault, *imported) == oracle::aes_check_value(raw));
}
