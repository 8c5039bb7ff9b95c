// SPDX-License-Identifier: Apache-2.0
// BYOK import through the REST server over HTTPS: KEKs created with POST /keys/{name}/create, their
// public keys read back with GET, keys exported from the on-prem token with transfer::export_key,
// imported with PUT /keys/{name}, then read, listed, signed with and verified over HTTPS, and the
// signatures checked with OpenSSL against the on-prem public key.
#include <catch2/catch.hpp>

#include <set>

#include "core/random.h"
#include "pkcs11/keygen.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/vault/rest_rig.h"
#include "tests/vault/vault_rig.h"

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

ossl::UniquePtr<EVP_PKEY> onprem_public(test::Onprem& onprem, const p11::KeyObject& key) {
  auto pub = p11::read_public_components(onprem.session, key);
  REQUIRE_OK(pub);
  if (key.spec.family == KeyFamily::kRsa) {
    return oracle::rsa_public_from(pub->modulus, pub->exponent);
  }
  return oracle::ec_public_from(std::string(curve_openssl_name(*key.spec.curve)).c_str(),
                                pub->ec_point);
}

}  // namespace

TEST_CASE("every key type imported over HTTPS under every KEK size can be read listed and used",
          "[vault][rest][slow]") {
  test::Onprem onprem;
  test::RestRig rig(vault::Flavor::kManagedHsm, "rest-mhsm");
  test::RestClient http = rig.client();
  CHECK(rig.url().rfind("https://127.0.0.1:", 0) == 0);

  std::vector<p11::KeyObject> keys;
  for (const auto& spec : all_key_specs()) {
    keys.push_back(onprem.generate(spec, "rt-" + spec.name()));
  }
  const std::size_t objects_before = rig.token_objects();
  std::set<std::string> names;

  for (unsigned bits : {2048u, 3072u, 4096u}) {
    const std::string kek_name = "KEK-" + std::to_string(bits);
    test::Answer kek = http.post("/keys/" + kek_name + "/create", test::kek_params(bits));
    INFO(kek.describe());
    REQUIRE(kek.status == 200);
    CHECK(kek.json["key"]["key_ops"] == Json::array({"import"}));
    // The kid names the server itself, so that SDKs can follow it.
    const std::string kid = kek.json["key"]["kid"].get<std::string>();
    CHECK(kid.rfind(rig.url() + "/keys/" + kek_name + "/", 0) == 0);
    // Read back as a client would, then download as SPKI.
    test::Answer got = http.get("/keys/" + kek_name + "/");
    REQUIRE(got.status == 200);
    CHECK(got.json["key"]["kid"] == kid);
    byok::PublicKey kek_pub = test::public_key_of(got.json);
    CHECK(kek_pub.bits() == bits);

    for (const auto& key : keys) {
      INFO("KEK " << bits << ", target " << key.spec.name());
      byok::ByokFile file = onprem.export_to(key, kek_pub, kid);
      const std::string kty(key.spec.azure_kty());
      const std::string crv =
          key.spec.curve ? std::string(curve_jwk_name(*key.spec.curve)) : std::string();
      const std::string name = "imp-" + key.spec.name() + "-" + std::to_string(bits);
      test::Answer imported = http.put("/keys/" + name, test::byok_body(file.to_json(), kty, crv));
      INFO(imported.describe());
      REQUIRE(imported.status == 200);
      names.insert(name);
      CHECK(imported.json["key"]["kty"] == kty);
      const std::string version = test::version_of(imported.json);

      test::Answer got_key = http.get("/keys/" + name + "/" + version);
      REQUIRE(got_key.status == 200);
      CHECK(got_key.json["key"]["kid"] == imported.json["key"]["kid"]);
      if (key.spec.family == KeyFamily::kAes) {
        CHECK_FALSE(got_key.json["key"].contains("k"));
        continue;
      }
      // Sign over HTTPS (latest version, the empty version segment the JS SDK sends), verify over
      // HTTPS, and verify with OpenSSL against the on-prem public key.
      const std::string alg = sign_alg_for(key.spec);
      Bytes digest = test::digest_of(alg, random_bytes(64));
      test::Answer sig = http.post("/keys/" + name + "//sign",
                                   Json{{"alg", alg}, {"value", base64url_encode(digest)}});
      INFO(sig.describe());
      REQUIRE(sig.status == 200);
      CHECK(sig.json["kid"] == imported.json["key"]["kid"]);
      Bytes signature = *base64url_decode(sig.json["value"].get<std::string>());
      auto verifier = onprem_public(onprem, key);
      CHECK(test::openssl_verify(verifier.get(), alg, digest, signature));
      test::Answer ok = http.post(
          "/keys/" + name + "/" + version + "/verify",
          Json{{"alg", alg}, {"digest", base64url_encode(digest)}, {"value", sig.json["value"]}});
      REQUIRE(ok.status == 200);
      CHECK(ok.json["value"] == true);
      digest[0] ^= 1;
      test::Answer bad = http.post(
          "/keys/" + name + "/VERIFY",
          Json{{"alg", alg}, {"digest", base64url_encode(digest)}, {"value", sig.json["value"]}});
      REQUIRE(bad.status == 200);
      CHECK(bad.json["value"] == false);
    }
  }
  // 3 KEKs + 30 keys: one token object each.
  CHECK(rig.token_objects() == objects_before + 3 + names.size());

  // List every key, five per page, following nextLink as the SDKs do.
  std::set<std::string> listed;
  std::string target = "/keys?api-version=7.5&maxresults=5";
  int pages = 0;
  while (true) {
    test::Answer page = http.send(test::Call{"GET", target, std::nullopt});
    INFO(page.describe());
    REQUIRE(page.status == 200);
    ++pages;
    CHECK(page.json["value"].size() <= 5u);
    for (const auto& item : page.json["value"]) {
      const std::string kid = item["kid"].get<std::string>();
      listed.insert(kid.substr(kid.rfind('/') + 1));
    }
    if (page.json["nextLink"].is_null()) {
      break;
    }
    const std::string next = page.json["nextLink"].get<std::string>();
    REQUIRE(next.rfind(rig.url() + "/keys?", 0) == 0);
    target = next.substr(rig.url().size());
    REQUIRE(pages < 20);
  }
  CHECK(pages == 7);  // 33 keys
  CHECK(listed.size() == 33);
  for (const auto& n : names) {
    CHECK(listed.count(n) == 1);
  }
  // Without maxresults a page holds 25, as Key Vault's.
  test::Answer first = http.get("/keys");
  REQUIRE(first.status == 200);
  CHECK(first.json["value"].size() == 25u);
  CHECK(first.json["nextLink"].is_string());
}

TEST_CASE("the Key Vault flavour imports RSA and EC keys over HTTPS and refuses AES",
          "[vault][rest]") {
  test::Onprem onprem;
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-kv");
  test::RestClient http = rig.client();
  test::Answer kek = http.post("/keys/KEK/create", test::kek_params(2048));
  REQUIRE(kek.status == 200);
  const std::string kid = kek.json["key"]["kid"].get<std::string>();
  byok::PublicKey kek_pub = test::public_key_of(kek.json);
  for (const char* type : {"rsa-2048", "ec-p256k"}) {
    auto key = onprem.generate(*parse_key_spec(type), std::string("kv-") + type);
    auto file = onprem.export_to(key, kek_pub, kid);
    const std::string crv =
        key.spec.curve ? std::string(curve_jwk_name(*key.spec.curve)) : std::string();
    test::Answer r =
        http.put(std::string("/keys/kv-") + type,
                 test::byok_body(file.to_json(), std::string(key.spec.azure_kty()), crv));
    INFO(r.describe());
    CHECK(r.status == 200);
    CHECK(r.json["attributes"]["hsmPlatform"] == "2");
  }
  auto aes = onprem.generate(*parse_key_spec("aes-256"), "kv-aes");
  auto file = onprem.export_to(aes, kek_pub, kid);
  test::Answer r = http.put("/keys/kv-aes", test::byok_body(file.to_json(), "oct-HSM"));
  INFO(r.describe());
  CHECK(r.status == 400);
  CHECK(r.code() == "BadParameter");
  CHECK(http.get("/keys/kv-aes").status == 404);
}
