// SPDX-License-Identifier: Apache-2.0
// GetKeyAttestation (SIMULATED, vault/attestation.h): what the statements say of generated and
// imported keys, the verifier's refusals of every altered part, and the signature checked with
// OpenSSL EVP directly.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/digest.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/random.h"
#include "core/x509.h"
#include "tests/support/oracle.h"
#include "tests/vault/vault_rig.h"
#include "vault/attestation.h"

using namespace keyport;
namespace oracle = keyport::test::oracle;

namespace {

std::string decoded(const Json& att, const char* member) {
  Bytes b = *base64url_decode(att.at(member).get<std::string>());
  return std::string(b.begin(), b.end());
}

Json payload_of(const std::string& jws) {
  const auto first = jws.find('.');
  const auto second = jws.find('.', first + 1);
  Bytes p = *base64url_decode(jws.substr(first + 1, second - first - 1));
  return *parse_json_strict(std::string(p.begin(), p.end()));
}

// RS256 over "header.payload" with the first certificate's key, by OpenSSL alone.
bool openssl_verifies(const std::string& pem, const std::string& jws) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(cert);
  const auto last = jws.rfind('.');
  const std::string input = jws.substr(0, last);
  const Bytes sig = *base64url_decode(jws.substr(last + 1));
  ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                               X509_get0_pubkey(cert.get())) == 1);
  return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

void expect_invalid(const Result<vault::AttestationReport>& r, const std::string& what) {
  INFO(what);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == ErrorCode::kAttestationInvalid);
  CHECK(r.error().message().find(what) != std::string::npos);
}

}  // namespace

TEST_CASE("GetKeyAttestation states what the token says of generated and imported keys",
          "[vault][attestation]") {
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "attestation");
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "rsa", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}));
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "ec", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}}));
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "aes", Json{{"kty", "oct-HSM"}, {"key_size", 256}}));
  auto ossl_key = oracle::ec_keygen("P-384");
  REQUIRE_OK(mhsm->import_key(mhsm.ctx, "imported",
                              Json{{"key", test::ec_private_jwk(ossl_key.get(), "P-384")}}));
  auto trust = read_text_file(mhsm.dir / "tls" / "ca.pem", 1u << 20);

  for (const char* name : {"rsa", "ec", "aes", "imported"}) {
    INFO(name);
    auto bundle = mhsm->get_key_attestation(mhsm.ctx, name, "");
    REQUIRE_OK(bundle);
    const Json& att = (*bundle)["attributes"]["attestation"];
    CHECK(att["version"] == vault::kAttestationVersion);
    if (!trust) {
      trust = read_text_file(mhsm.dir / "tls" / "ca.pem", 1u << 20);  // made by the first call
    }
    REQUIRE_OK(trust);
    auto report = vault::verify_key_attestation(*bundle, *trust);
    REQUIRE_OK(report);
    CHECK(report->kid == (*bundle)["key"]["kid"]);
    const Json& p = report->private_statement;
    CHECK(p["simulated"] == true);
    CHECK(p["attributes"]["CKA_SENSITIVE"] == true);
    CHECK(p["attributes"]["CKA_ALWAYS_SENSITIVE"] == (std::string(name) != "imported"));
    CHECK(p["attributes"]["CKA_LOCAL"] == (std::string(name) != "imported"));
    CHECK(p["origin"] == (std::string(name) == "imported" ? "import" : "generated"));
    CHECK(p["token"]["model"] == "SoftHSM v2");
    CHECK(openssl_verifies(decoded(att, "certificatePemFile"),
                           decoded(att, "privateKeyAttestation")));
    if (std::string(name) == "aes") {
      CHECK_FALSE(att.contains("publicKeyAttestation"));
      CHECK(p["object"] == "secret key");
    } else {
      REQUIRE(report->public_statement);
      CHECK(report->public_statement->value("checked_against_private_key_by", "") ==
            (std::string(name) == "rsa" ? "CKA_MODULUS" : "ECDSA signatures"));
      CHECK(openssl_verifies(decoded(att, "certificatePemFile"),
                             decoded(att, "publicKeyAttestation")));
    }
  }
  // The public statement hashes the SPKI OpenSSL makes of the imported key.
  auto imported = mhsm->get_key_attestation(mhsm.ctx, "imported", "");
  REQUIRE_OK(imported);
  CHECK(payload_of(decoded((*imported)["attributes"]["attestation"],
                           "publicKeyAttestation"))["spki_sha256"] ==
        hex_encode(sha256(oracle::spki_der(ossl_key.get()))));

  // A Key Vault has no GetKeyAttestation; a missing key is KeyNotFound.
  test::VaultRig kv(vault::Flavor::kKeyVault, "attestation-kv");
  REQUIRE_OK(kv->create_key(kv.ctx, "rsa", Json{{"kty", "RSA-HSM"}}));
  test::expect_kv_error(kv->get_key_attestation(kv.ctx, "rsa", ""), "BadParameter", 400);
  test::expect_kv_error(mhsm->get_key_attestation(mhsm.ctx, "nope", ""), "KeyNotFound", 404);
}

TEST_CASE("verify-attestation refuses every altered part of an attestation",
          "[vault][attestation]") {
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "attestation-tamper");
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "a", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}));
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "b", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}));
  auto a = mhsm->get_key_attestation(mhsm.ctx, "a", "");
  auto b = mhsm->get_key_attestation(mhsm.ctx, "b", "");
  REQUIRE_OK(a);
  REQUIRE_OK(b);
  auto trust = read_text_file(mhsm.dir / "tls" / "ca.pem", 1u << 20);
  REQUIRE_OK(trust);
  REQUIRE_OK(vault::verify_key_attestation(*a, *trust));

  // A statement whose payload changed (origin "generated" -> "generatex").
  {
    Json t = *a;
    std::string jws = decoded(t["attributes"]["attestation"], "privateKeyAttestation");
    const auto first = jws.find('.'), second = jws.find('.', first + 1);
    Bytes p = *base64url_decode(jws.substr(first + 1, second - first - 1));
    std::string ps(p.begin(), p.end());
    ps.replace(ps.find("generated"), 9, "generatex");
    jws = jws.substr(0, first + 1) + base64url_encode(as_bytes(ps)) + jws.substr(second);
    t["attributes"]["attestation"]["privateKeyAttestation"] = base64url_encode(as_bytes(jws));
    expect_invalid(vault::verify_key_attestation(t, *trust), "signature");
  }
  // Another key's statements, or another key's public key in the bundle.
  {
    Json t = *a;
    t["attributes"]["attestation"]["publicKeyAttestation"] =
        (*b)["attributes"]["attestation"]["publicKeyAttestation"];
    expect_invalid(vault::verify_key_attestation(t, *trust), "is about");
    Json u = *a;
    u["key"]["n"] = (*b)["key"]["n"];
    expect_invalid(vault::verify_key_attestation(u, *trust), "another public key");
    Json w = *b;
    w["key"]["kid"] = (*a)["key"]["kid"];
    expect_invalid(vault::verify_key_attestation(w, *trust), "is about");
  }
  // Another CA, another kind of certificate (the release signing one), a foreign version.
  {
    auto other = x509::make_local_tls("another CA");
    REQUIRE_OK(other);
    expect_invalid(vault::verify_key_attestation(*a, other->ca_cert_pem), "does not chain");
    Json t = *a;
    t["attributes"]["attestation"]["version"] = "1.0";
    expect_invalid(vault::verify_key_attestation(t, *trust), "version");
  }
  // No attestation at all: a GetKey bundle.
  auto plain = mhsm->get_key(mhsm.ctx, "a", "");
  REQUIRE_OK(plain);
  auto r = vault::verify_key_attestation(*plain, *trust);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == ErrorCode::kInvalidArgument);
}
