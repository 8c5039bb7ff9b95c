// SPDX-License-Identifier: Apache-2.0
// enclave/token_release.h on SoftHSM: the runtime key stays in the token, and a release response
// for an RSA, EC or AES key unwraps into the token as a non-extractable key that matches the
// response (public keys compared, the AES check value computed here with raw OpenSSL). Releases
// for another kid, into a taken label, or wrapped to another key store nothing.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include "byok/crypto.h"
#include "byok/public_key.h"
#include "core/random.h"
#include "core/x509.h"
#include "enclave/token_release.h"
#include "pkcs11/keygen.h"
#include "pkcs11/template.h"
#include "skr/enclave.h"
#include "skr/jws.h"
#include "tests/support/softhsm.h"
#include "tests/support/support.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

constexpr const char* kKeyUrl = "https://contoso.vault.azure.net/keys/released";
constexpr const char* kVersion = "0123456789abcdef0123456789abcdef";

// A vault signing identity: a root CA and a leaf for the vault host.
struct VaultPki {
  std::string ca_pem;
  std::vector<Bytes> chain;
  std::unique_ptr<skr::SoftwareSigner> signer;

  VaultPki() {
    auto root_key = x509::generate_rsa_key(2048);
    REQUIRE_OK(root_key);
    x509::CertificateRequest root_req;
    root_req.common_name = "test vault root CA";
    root_req.is_ca = true;
    auto root = x509::make_certificate(root_req, **root_key, **root_key, nullptr);
    REQUIRE_OK(root);
    auto leaf_key = x509::generate_rsa_key(2048);
    REQUIRE_OK(leaf_key);
    x509::CertificateRequest leaf_req;
    leaf_req.common_name = "contoso.vault.azure.net";
    leaf_req.dns_names = {"contoso.vault.azure.net"};
    leaf_req.code_signing = true;
    auto leaf = x509::make_certificate(leaf_req, **leaf_key, **root_key, root->get());
    REQUIRE_OK(leaf);
    ca_pem = x509::certificate_pem(**root);
    chain = {x509::certificate_der(**leaf), x509::certificate_der(**root)};
    auto pem = x509::private_key_pem(**leaf_key);
    REQUIRE_OK(pem);
    auto s = skr::SoftwareSigner::from_private_key(*pem, skr::JwsAlg::kRs256);
    REQUIRE_OK(s);
    signer = std::make_unique<skr::SoftwareSigner>(std::move(*s));
  }
};

// The key a vault releases: its material (PKCS#8 DER, or raw AES bytes) and public JWK.
struct Released {
  std::string kty;
  SecretBytes material;
  Json jwk;
  std::optional<byok::PublicKey> public_key;
};

Released asymmetric(ossl::UniquePtr<EVP_PKEY> key, const char* kty) {
  auto der = x509::private_key_der(*key);
  REQUIRE_OK(der);
  auto spki = x509::public_key_spki(*key);
  REQUIRE_OK(spki);
  auto pub = byok::PublicKey::from_spki_der(*spki);
  REQUIRE_OK(pub);
  Json jwk = pub->to_jwk();
  jwk["kty"] = kty;
  return {kty, std::move(*der), jwk, std::move(*pub)};
}

Released rsa_key() {
  auto k = x509::generate_rsa_key(2048);
  REQUIRE_OK(k);
  return asymmetric(std::move(*k), "RSA-HSM");
}

Released ec_key() {
  ossl::UniquePtr<EVP_PKEY> k(EVP_EC_gen("P-256"));
  REQUIRE(k);
  return asymmetric(std::move(k), "EC-HSM");
}

Released aes_key() {
  return {"oct-HSM", random_secret(32), Json{{"kty", "oct-HSM"}}, std::nullopt};
}

// AES-256-ECB of one zero block, first 3 bytes in hex: computed with OpenSSL, not keyport.
std::string openssl_kcv(const SecretBytes& key) {
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  REQUIRE(ctx);
  const auto k = key.reveal(SecretAccess::unsafe());
  REQUIRE(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_ecb(), nullptr, k.data(), nullptr) == 1);
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  unsigned char zero[16] = {}, out[32];
  int n = 0;
  REQUIRE(EVP_EncryptUpdate(ctx.get(), out, &n, zero, sizeof zero) == 1);
  REQUIRE(n == 16);
  return hex_encode(std::span<const std::uint8_t>(out, 3));
}

// A verified release of `key`, wrapped to `wrap_to` and naming the runtime key `runtime_kid`.
skr::VerifiedRelease release_of(const Released& key, const byok::PublicKey& wrap_to,
                                const std::string& runtime_kid, const VaultPki& pki) {
  skr::ReleaseResponseInput in;
  in.request_kid = kKeyUrl;
  in.enc = WrapAlg::kRsaAesKeyWrap;
  Json jwk = key.jwk;
  jwk["kid"] = std::string(kKeyUrl) + "/" + kVersion;
  jwk["key_ops"] =
      key.kty == "oct-HSM" ? Json::array({"encrypt", "decrypt"}) : Json::array({"sign", "verify"});
  in.key_bundle = Json{{"key", jwk},
                       {"attributes", Json{{"enabled", true}, {"exportable", true}}},
                       {"tags", Json::object()}};
  in.runtime_kid = runtime_kid;
  auto wrapped = byok::rsa_aes_wrap(wrap_to.spki_der(), in.enc, key.material);
  REQUIRE_OK(wrapped);
  in.wrapped_key = *wrapped;
  auto jws = skr::build_release_response(in, *pki.signer, pki.chain);
  REQUIRE_OK(jws);
  skr::ReleaseTrust trust;
  trust.vault_ca_pem = pki.ca_pem;
  auto verified = skr::verify_release_response(dump_json(Json{{"value", *jws}}), trust);
  REQUIRE_OK(verified);
  return std::move(*verified);
}

std::size_t objects_labelled(const p11::Session& s, const std::string& label) {
  auto found = s.find_objects(p11::Template().label(label));
  REQUIRE_OK(found);
  return found->size();
}

}  // namespace

TEST_CASE("a runtime key made in the token cannot leave it, and its label cannot be taken twice",
          "[softhsm][enclave]") {
  auto session = test::SoftHsm::get().login(test::kOnpremToken);
  auto pub = enclave::generate_runtime_key(session, "runtime-a");
  REQUIRE_OK(pub);
  CHECK(pub->bits() == 2048);
  auto key = p11::find_key(session, "runtime-a");
  REQUIRE_OK(key);
  CHECK(key->spec.family == KeyFamily::kRsa);
  auto extractable = session.get_bool(key->handle, CKA_EXTRACTABLE);
  REQUIRE_OK(extractable);
  CHECK_FALSE(*extractable);
  auto sensitive = session.get_bool(key->handle, CKA_SENSITIVE);
  REQUIRE_OK(sensitive);
  CHECK(*sensitive);
  auto parts = p11::read_public_components(session, *key);
  REQUIRE_OK(parts);
  auto from_token = byok::PublicKey::from_rsa_components(parts->modulus, parts->exponent);
  REQUIRE_OK(from_token);
  CHECK(*from_token == *pub);

  auto again = enclave::generate_runtime_key(session, "runtime-a");
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code() == ErrorCode::kAlreadyExists);
  CHECK(objects_labelled(session, "runtime-a") == 2);  // the first pair only
}

TEST_CASE("released RSA, EC and AES keys unwrap inside the token and match the response",
          "[softhsm][enclave]") {
  auto& hsm = test::SoftHsm::get();
  auto session = hsm.login(test::kOnpremToken);
  auto token = p11::token_info(*hsm.module(), session.slot());
  REQUIRE_OK(token);
  auto runtime = enclave::generate_runtime_key(session, "runtime-b");
  REQUIRE_OK(runtime);
  const std::string kid = skr::jwk_thumbprint(*runtime);
  VaultPki pki;
  int n = 0;
  for (auto make : {rsa_key, ec_key, aes_key}) {
    Released key = make();
    INFO(key.kty);
    auto release = release_of(key, *runtime, kid, pki);
    enclave::TokenUnwrapRequest rq;
    rq.runtime_key = "runtime-b";
    rq.label = "released-b" + std::to_string(n++);
    auto stored = enclave::unwrap_release_in_token(session, *token, release, rq);
    REQUIRE_OK(stored);
    CHECK(stored->label == *rq.label);
    CHECK(stored->runtime_kid == kid);
    CHECK(stored->id.size() == 16);
    CHECK(objects_labelled(session, *rq.label) == 1);
    auto handle = session.find_objects(p11::Template().label(*rq.label));
    REQUIRE_OK(handle);
    auto extractable = session.get_bool(handle->front(), CKA_EXTRACTABLE);
    REQUIRE_OK(extractable);
    CHECK_FALSE(*extractable);
    if (key.public_key) {
      REQUIRE(stored->public_key_sha256.has_value());
      CHECK(*stored->public_key_sha256 == key.public_key->sha256_fingerprint());
      CHECK_FALSE(stored->kcv.has_value());
    } else {
      CHECK(stored->spec.family == KeyFamily::kAes);
      REQUIRE(stored->kcv.has_value());
      CHECK(*stored->kcv == openssl_kcv(key.material));
    }
  }
  // Without a label the key is stored as released-<version>.
  auto release = release_of(aes_key(), *runtime, kid, pki);
  enclave::TokenUnwrapRequest rq;
  rq.runtime_key = "runtime-b";
  auto stored = enclave::unwrap_release_in_token(session, *token, release, rq);
  REQUIRE_OK(stored);
  CHECK(stored->label == std::string("released-") + kVersion);
}

TEST_CASE("a release for another kid, into a taken label, or wrapped to another key stores nothing",
          "[softhsm][enclave]") {
  auto& hsm = test::SoftHsm::get();
  auto session = hsm.login(test::kOnpremToken);
  auto token = p11::token_info(*hsm.module(), session.slot());
  REQUIRE_OK(token);
  auto runtime = enclave::generate_runtime_key(session, "runtime-c");
  REQUIRE_OK(runtime);
  const std::string kid = skr::jwk_thumbprint(*runtime);
  VaultPki pki;
  enclave::TokenUnwrapRequest rq;
  rq.runtime_key = "runtime-c";
  rq.label = "released-c";

  auto other_kid = release_of(aes_key(), *runtime, "TpmEphemeralEncryptionKey", pki);
  auto refused = enclave::unwrap_release_in_token(session, *token, other_kid, rq);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code() == ErrorCode::kInvalidArgument);
  CHECK(refused.error().detail() == "REL-KID");
  // The kid the attestation token gave the key is accepted when named.
  rq.runtime_kid = "TpmEphemeralEncryptionKey";
  REQUIRE_OK(enclave::unwrap_release_in_token(session, *token, other_kid, rq));
  rq.runtime_kid.reset();

  auto taken = enclave::unwrap_release_in_token(session, *token,
                                                release_of(aes_key(), *runtime, kid, pki), rq);
  REQUIRE_FALSE(taken.has_value());
  CHECK(taken.error().code() == ErrorCode::kAlreadyExists);
  CHECK(objects_labelled(session, "released-c") == 1);

  auto other = x509::generate_rsa_key(2048);
  REQUIRE_OK(other);
  auto other_spki = x509::public_key_spki(**other);
  REQUIRE_OK(other_spki);
  auto other_pub = byok::PublicKey::from_spki_der(*other_spki);
  REQUIRE_OK(other_pub);
  rq.label = "released-c2";
  auto wrong = enclave::unwrap_release_in_token(session, *token,
                                                release_of(aes_key(), *other_pub, kid, pki), rq);
  REQUIRE_FALSE(wrong.has_value());
  CHECK(objects_labelled(session, "released-c2") == 0);
  CHECK(test::count_session_objects(session, CKO_SECRET_KEY) == 0);
}
