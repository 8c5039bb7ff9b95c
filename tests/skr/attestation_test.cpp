// SPDX-License-Identifier: Apache-2.0
// skr/attestation.h and skr/authority.h: tokens minted by the simulated authority verify and
// yield their runtime key; every refusal has its exact sub-code and yields no VerifiedToken; the
// clock and skew bounds; the first suitable runtime key; kid fallback; the token shapes of each
// platform type.
#include <catch2/catch.hpp>

#include <openssl/pem.h>

#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/x509.h"
#include "skr/attestation.h"
#include "skr/authority.h"
#include "skr/policy.h"
#include "tests/skr/skr_rig.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::skr;
using namespace keyport::test::skr;

namespace {

// The authority's own signing key, read from its folder with raw OpenSSL.
ossl::UniquePtr<EVP_PKEY> authority_private_key(const AuthorityRig& rig) {
  auto pem = read_secret_file(rig.authority().dir() / "signing-key.pem");
  REQUIRE_OK(pem);
  auto bytes = pem->reveal(SecretAccess::unsafe());
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  ossl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(key);
  return key;
}

std::string header_text(const AuthorityRig& rig, const std::string& alg) {
  return dump_json(Json{{"alg", alg},
                        {"jku", rig.authority().url() + "/certs"},
                        {"kid", rig.authority().kid()},
                        {"typ", "JWT"}});
}

Json with(Json j, const std::string& path, Json value) {
  REQUIRE_OK(apply_claim_overrides(j, Json{{path, std::move(value)}}));
  return j;
}

struct Refusal {
  std::string name;
  std::string token;
  std::string detail;
};

void expect_refusals(const AttestationVerifier& verifier, const std::vector<Refusal>& rows) {
  for (const auto& row : rows) {
    INFO(row.name);
    auto r = verifier.verify(row.token);
    REQUIRE_FALSE(r.has_value());  // nothing verified
    INFO(r.error().describe());
    CHECK(r.error().code() == ErrorCode::kAttestationInvalid);
    CHECK(r.error().detail() == row.detail);
    CHECK(r.error().message().rfind("attestation token: ", 0) == 0);
  }
}

}  // namespace

TEST_CASE("a minted token verifies and yields its runtime key", "[skr][attestation]") {
  AuthorityRig rig;
  AttestationVerifier v = rig.verifier();
  for (PlatformType type : {PlatformType::kSevSnpVm, PlatformType::kTdxVm, PlatformType::kSgx,
                            PlatformType::kAzureVm}) {
    INFO(to_string(type));
    MintOptions o;
    o.type = type;
    o.nonce = "ADE0101";
    auto token = v.verify(rig.mint(o));
    REQUIRE_OK(token);
    CHECK(token->issuer() == rig.authority().url());
    CHECK(token->signing_kid() == rig.authority().kid());
    CHECK(token->expires_at() == kNow + 8 * 3600);
    CHECK(token->runtime_key().public_key == rig.runtime_public());
    CHECK(token->runtime_key().kid == default_runtime_kid(type, rig.runtime_public()));
    CHECK(token->claims()["x-ms-runtime"]["client-payload"]["nonce"] == "ADE0101");
    CHECK(token->claims()["x-keyport-simulated"] == true);
    const Json& c = token->claims();
    if (type == PlatformType::kAzureVm) {
      CHECK(c["x-ms-attestation-type"] == "azurevm");
      CHECK(c["x-ms-isolation-tee"]["x-ms-attestation-type"] == "sevsnpvm");
      CHECK(c["x-ms-isolation-tee"]["x-ms-compliance-status"] == "azure-compliant-cvm");
      CHECK(c["x-ms-isolation-tee"]["x-ms-runtime"]["keys"][0]["kid"] == "HCLAkPub");
      CHECK(token->runtime_key().kid == "TpmEphemeralEncryptionKey");
    } else {
      CHECK(c["x-ms-attestation-type"] == std::string(to_string(type)));
    }
  }
}

TEST_CASE("simulated tokens are shaped like Azure Attestation tokens", "[skr][authority]") {
  AuthorityRig rig;
  Json snp = rig.claims();
  CHECK(snp["iss"] == kDefaultAuthorityUrl);
  CHECK(std::string(kDefaultAuthorityUrl).find("simulated") != std::string::npos);
  CHECK(snp["exp"].get<std::int64_t>() - snp["iat"].get<std::int64_t>() == 28800);
  CHECK(snp["nbf"] == snp["iat"]);
  CHECK(snp["jti"].get<std::string>().size() == 64);
  CHECK(snp["x-ms-ver"] == "1.0");
  CHECK(snp["x-ms-policy-hash"].get<std::string>().size() == 43);
  CHECK(snp["x-ms-sevsnpvm-is-debuggable"] == false);
  CHECK(snp["x-ms-sevsnpvm-vmpl"] == 0);
  CHECK(snp["x-ms-sevsnpvm-hostdata"].get<std::string>().size() == 64);
  CHECK(snp["x-ms-sevsnpvm-launchmeasurement"].get<std::string>().size() == 96);
  CHECK(snp["x-ms-compliance-status"] == "azure-compliant-uvm");
  const Json& rk = snp["x-ms-runtime"]["keys"][0];
  CHECK(rk["kty"] == "RSA");
  CHECK(rk["key_ops"] == Json::array({"encrypt"}));
  MintOptions sgx;
  sgx.type = PlatformType::kSgx;
  Json s = rig.claims(sgx);
  CHECK(s["x-ms-sgx-svn"] == 2);
  CHECK(s["x-ms-sgx-mrsigner"].get<std::string>().size() == 64);
  CHECK(s["x-ms-sgx-is-debuggable"] == false);
  MintOptions tdx;
  tdx.type = PlatformType::kTdxVm;
  Json t = rig.claims(tdx);
  CHECK(t["x-ms-compliance-status"] == "azure-compliant-cvm");
  CHECK(t["tdx_td_attributes_debug"] == false);
  // Measurements are stable for one authority.
  CHECK(rig.claims()["x-ms-sevsnpvm-launchmeasurement"] == snp["x-ms-sevsnpvm-launchmeasurement"]);
  // The header is MAA's.
  auto jws = CompactJws::parse(rig.mint());
  REQUIRE_OK(jws);
  CHECK(jws->header() == Json{{"alg", "RS256"},
                              {"jku", std::string(kDefaultAuthorityUrl) + "/certs"},
                              {"kid", rig.authority().kid()},
                              {"typ", "JWT"}});
  // The metadata say it is a simulation.
  CHECK(rig.authority().openid_configuration()["x-keyport-simulated"] == true);
  CHECK(rig.authority().openid_configuration()["jwks_uri"] ==
        std::string(kDefaultAuthorityUrl) + "/certs");
  CHECK(rig.authority().jwks()["x-keyport-simulated"] == true);
}

TEST_CASE("claim overrides merge with dot paths and null removes a claim", "[skr][authority]") {
  AuthorityRig rig;
  MintOptions o;
  o.type = PlatformType::kAzureVm;
  o.claim_overrides = Json{{"x-ms-isolation-tee.x-ms-sevsnpvm-vmpl", 2},
                           {"x-ms-azurevm-vmid", nullptr},
                           {"custom", Json{{"a", 1}}},
                           {"x-ms-isolation-tee", Json{{"extra", true}}}};
  Json c = rig.claims(o);
  CHECK(c["x-ms-isolation-tee"]["x-ms-sevsnpvm-vmpl"] == 2);
  CHECK(c["x-ms-isolation-tee"]["extra"] == true);
  CHECK(c["x-ms-isolation-tee"]["x-ms-attestation-type"] == "sevsnpvm");
  CHECK_FALSE(c.contains("x-ms-azurevm-vmid"));
  CHECK(c["custom"]["a"] == 1);
  Json bad = Json::object();
  CHECK_ERROR_CODE(apply_claim_overrides(bad, Json{{"a..b", 1}}), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(apply_claim_overrides(bad, Json::array()), ErrorCode::kInvalidArgument);
}

TEST_CASE("a minted token satisfies the Azure policies written for its platform",
          "[skr][attestation][policy]") {
  AuthorityRig rig;
  AttestationVerifier v = rig.verifier();
  const std::string url = rig.authority().url();
  auto check = [&](PlatformType type, const std::string& conditions) {
    MintOptions o;
    o.type = type;
    auto token = v.verify(rig.mint(o));
    REQUIRE_OK(token);
    auto policy = parse_policy(R"({"version":"1.0.0","anyOf":[{"authority":")" + url +
                               R"(/","allOf":[)" + conditions + "]}]}");
    REQUIRE_OK(policy);
    Decision d = evaluate(policy->policy, token->claims());
    INFO(d.reason);
    CHECK(d.allowed);
  };
  check(PlatformType::kAzureVm,
        R"({"claim":"x-ms-isolation-tee.x-ms-attestation-type","equals":"sevsnpvm"},)"
        R"({"claim":"x-ms-isolation-tee.x-ms-compliance-status","equals":"azure-compliant-cvm"})");
  check(PlatformType::kAzureVm,
        R"({"claim":"x-ms-compliance-status","equals":"azure-compliant-cvm"})");
  check(PlatformType::kSevSnpVm,
        R"({"claim":"x-ms-sevsnpvm-is-debuggable","equals":"false"},)"
        R"({"claim":"x-ms-sevsnpvm-vmpl","equals":"0"},)"
        R"({"claim":"x-ms-compliance-status","equals":"azure-compliant-uvm"},)"
        R"({"claim":"x-ms-attestation-type","equals":"sevsnpvm"})");
  check(PlatformType::kTdxVm, R"({"claim":"x-ms-attestation-type","equals":"tdxvm"})");
  check(PlatformType::kSgx, R"({"claim":"x-ms-sgx-svn","greater":1},)"
                            R"({"claim":"x-ms-sgx-is-debuggable","equals":false})");
}

TEST_CASE("token verification refuses every malformed or untrusted token", "[skr][attestation]") {
  AuthorityRig rig("a");
  AuthorityRig other("b", "https://other-simulated-maa.keyport.localhost");
  AttestationVerifier v = rig.verifier();
  auto key = authority_private_key(rig);
  const Json claims = rig.claims();
  const std::string payload = dump_json(claims);
  const std::string rs256 = header_text(rig, "RS256");

  // HS256 keyed with the authority's public key bytes in the forms an attacker can fetch.
  const std::string pem = rig.authority().signing_public_key().pem();
  const Bytes& spki = rig.authority().signing_public_key().spki_der();
  const std::string hs_header = header_text(rig, "HS256");
  const std::string hs_input = signing_input(hs_header, payload);
  const std::string jwks_text = dump_json(rig.authority().jwks());

  // Runtime key variants.
  Json ec_runtime = public_jwk(*make_ec_key());
  ec_runtime["kid"] = "ec";
  ec_runtime["key_ops"] = Json::array({"encrypt"});
  Json small_runtime = public_jwk(rsa_key(2, 1024));
  small_runtime["kid"] = "small";
  small_runtime["key_ops"] = Json::array({"encrypt"});
  Json no_kid = rig.runtime_public().to_jwk();
  no_kid["key_ops"] = Json::array({"encrypt"});
  Json sign_only = rig.runtime_public().to_jwk();
  sign_only["kid"] = "s";
  sign_only["key_ops"] = Json::array({"sign"});
  Json use_sig = rig.runtime_public().to_jwk();
  use_sig["kid"] = "u";
  use_sig["use"] = "sig";

  // A payload with a duplicate member, signed for real.
  std::string dup_payload = payload;
  dup_payload.insert(1, R"("iss":"https://attacker.example",)");
  // Tampering after signing.
  std::string good = rig.mint();
  auto dot1 = good.find('.');
  auto dot2 = good.find('.', dot1 + 1);
  Json evil = with(claims, "x-ms-sevsnpvm-is-debuggable", true);
  std::string tampered_payload =
      good.substr(0, dot1 + 1) + b64(dump_json(evil)) + good.substr(dot2);
  std::string tampered_header =
      b64(dump_json(Json{{"alg", "RS256"}, {"kid", rig.authority().kid()}, {"typ", "JWT"}})) +
      good.substr(dot1);
  std::string bad_b64 = good;
  bad_b64[dot1 + 5] = '*';

  MintOptions expired;
  expired.issued_at = kNow - 9 * 3600;
  MintOptions future;
  future.issued_at = kNow + 3600;

  const std::vector<Refusal> rows = {
      {"alg none without a signature",
       b64(R"({"alg":"none","typ":"JWT"})") + "." + b64(payload) + ".", "JWS-SEGMENTS"},
      {"alg none with a signature", assemble(R"({"alg":"none","typ":"JWT"})", payload, Bytes{1}),
       "JWS-ALG"},
      {"HS256 keyed with the PEM public key",
       hs_input + "." + base64url_encode(hmac_sha256(as_bytes(pem), hs_input)), "JWS-ALG"},
      {"HS256 keyed with the SPKI DER",
       hs_input + "." + base64url_encode(hmac_sha256(spki, hs_input)), "JWS-ALG"},
      {"HS256 keyed with the JWKS text",
       hs_input + "." + base64url_encode(hmac_sha256(as_bytes(jwks_text), hs_input)), "JWS-ALG"},
      {"RS384 signed by the authority key",
       assemble(header_text(rig, "RS384"), payload,
                rsa_sign(*key, "SHA384", signing_input(header_text(rig, "RS384"), payload))),
       "JWS-ALG"},
      {"RS512 signed by the authority key",
       assemble(header_text(rig, "RS512"), payload,
                rsa_sign(*key, "SHA512", signing_input(header_text(rig, "RS512"), payload))),
       "JWS-ALG"},
      {"ES384", assemble(header_text(rig, "ES384"), payload, Bytes(96, 7)), "JWS-ALG"},
      {"PS256 signed by a key whose JWK says RS256",
       assemble(header_text(rig, "PS256"), payload,
                rsa_sign(*key, "SHA256", signing_input(header_text(rig, "PS256"), payload), true)),
       "JWS-SIGNATURE"},
      {"expired", rig.mint(expired), "JWT-EXPIRED"},
      {"not yet valid", rig.mint(future), "JWT-NOT-YET-VALID"},
      {"issued in the future beyond the skew",
       rig.sign(with(with(claims, "nbf", nullptr), "iat", kNow + 600)), "JWT-IAT"},
      {"no exp", rig.sign(with(claims, "exp", nullptr)), "JWT-TIME"},
      {"exp as a string", rig.sign(with(claims, "exp", "tomorrow")), "JWT-TIME"},
      {"wrong iss", rig.sign(with(claims, "iss", "https://attacker.example")), "JWT-UNTRUSTED-ISS"},
      {"iss of an untrusted authority", other.mint(), "JWT-UNTRUSTED-ISS"},
      {"no iss", rig.sign(with(claims, "iss", nullptr)), "JWT-ISS"},
      {"numeric iss", rig.sign(with(claims, "iss", 7)), "JWT-ISS"},
      {"unknown kid and no key verifies",
       forge_rs256(rsa_key(5),
                   dump_json(Json{{"alg", "RS256"}, {"kid", "unknown"}, {"typ", "JWT"}}), payload),
       "JWS-SIGNATURE"},
      {"tampered payload", tampered_payload, "JWS-SIGNATURE"},
      {"tampered header", tampered_header, "JWS-SIGNATURE"},
      {"signed by another authority's key under this one's kid",
       forge_rs256(*authority_private_key(other), rs256, payload), "JWS-SIGNATURE"},
      {"no x-ms-runtime", rig.sign(with(claims, "x-ms-runtime", nullptr)), "ATT-RUNTIME-MISSING"},
      {"x-ms-runtime not an object", rig.sign(with(claims, "x-ms-runtime", "keys")),
       "ATT-RUNTIME-MISSING"},
      {"no x-ms-runtime.keys", rig.sign(with(claims, "x-ms-runtime.keys", nullptr)),
       "ATT-RUNTIME-MISSING"},
      {"x-ms-runtime.keys empty", rig.sign(with(claims, "x-ms-runtime.keys", Json::array())),
       "ATT-RUNTIME-KEY"},
      {"only an EC runtime key",
       rig.sign(with(claims, "x-ms-runtime.keys", Json::array({ec_runtime}))), "ATT-RUNTIME-KEY"},
      {"only a 1024-bit RSA runtime key",
       rig.sign(with(claims, "x-ms-runtime.keys", Json::array({small_runtime}))),
       "ATT-RUNTIME-KEY"},
      {"runtime key without kid",
       rig.sign(with(claims, "x-ms-runtime.keys", Json::array({no_kid}))), "ATT-RUNTIME-KEY"},
      {"runtime key for signing only",
       rig.sign(with(claims, "x-ms-runtime.keys", Json::array({sign_only}))), "ATT-RUNTIME-KEY"},
      {"runtime key with use sig",
       rig.sign(with(claims, "x-ms-runtime.keys", Json::array({use_sig}))), "ATT-RUNTIME-KEY"},
      {"duplicate members in the header",
       forge_rs256(
           *key,
           R"({"alg":"RS256","kid":")" + rig.authority().kid() + R"(","kid":"other","typ":"JWT"})",
           payload),
       "JWS-DUPLICATE"},
      {"duplicate members in the payload", forge_rs256(*key, rs256, dup_payload), "JWS-DUPLICATE"},
      {"oversize token", rig.sign(with(claims, "padding", std::string(70 * 1024, 'x'))),
       "JWS-SIZE"},
      {"JSON serialisation",
       dump_json(Json{{"payload", b64(payload)},
                      {"protected", b64(rs256)},
                      {"signature", good.substr(dot2 + 1)}}),
       "JWS-JSON-SERIALIZATION"},
      {"two dots missing", good.substr(0, dot2), "JWS-SEGMENTS"},
      {"bad base64url", bad_b64, "JWS-BASE64"},
      {"crit header present", rig.sign(claims, Json{{"crit", Json::array({"exp"})}}), "JWS-CRIT"},
      {"payload not an object", forge_rs256(*key, rs256, "[1,2,3]"), "JWT-PAYLOAD"},
      {"payload not JSON", forge_rs256(*key, rs256, "iss=joe"), "JWT-PAYLOAD"},
      {"typ other than JWT", rig.sign(claims, Json{{"typ", "JOSE+JSON"}}), "JWT-TYP"},
  };
  CHECK(rows.size() >= 30);
  expect_refusals(v, rows);
  // The verifier still accepts a good token afterwards.
  REQUIRE_OK(v.verify(good));
}

TEST_CASE("issuers outside the expected list are refused before any key is used",
          "[skr][attestation]") {
  AuthorityRig rig;
  VerifierOptions o;
  o.expected_issuers = {"https://sharedweu.weu.attest.azure.net"};
  AttestationVerifier v = rig.verifier(o);
  expect_refusals(v, {{"expected list", rig.mint(), "JWT-UNTRUSTED-ISS"}});
  REQUIRE_OK(v.verify(rig.mint(), {rig.authority().url() + "/"}));
}

TEST_CASE("x5c can be required of authority keys", "[skr][attestation]") {
  AuthorityRig rig;
  VerifierOptions o;
  o.require_x5c = true;
  REQUIRE_OK(rig.verifier(o).verify(rig.mint()));
  // The same key without x5c no longer verifies.
  auto resolver = std::make_shared<StaticKeyResolver>();
  Json jwk = rig.authority().jwks()["keys"][0];
  jwk.erase("x5c");
  auto vk = VerificationKey::from_jwk(jwk);
  REQUIRE_OK(vk);
  resolver->add(rig.authority().url(), {*vk});
  o.clock = [] { return kNow; };
  auto v = AttestationVerifier::create(resolver, o);
  REQUIRE_OK(v);
  expect_refusals(*v, {{"no x5c", rig.mint(), "JWS-SIGNATURE"}});
}

TEST_CASE("the clock skew bounds exp nbf and iat on both sides", "[skr][attestation]") {
  AuthorityRig rig;
  AttestationVerifier v = rig.verifier();
  const Json c = rig.claims();
  REQUIRE_OK(v.verify(rig.sign(with(c, "exp", kNow - 59))));
  expect_refusals(v, {{"exp at the skew", rig.sign(with(c, "exp", kNow - 60)), "JWT-EXPIRED"}});
  REQUIRE_OK(v.verify(rig.sign(with(c, "nbf", kNow + 60))));
  expect_refusals(
      v, {{"nbf past the skew", rig.sign(with(c, "nbf", kNow + 61)), "JWT-NOT-YET-VALID"}});
  REQUIRE_OK(v.verify(rig.sign(with(with(c, "nbf", nullptr), "iat", kNow + 60))));
  REQUIRE_OK(v.verify(rig.sign(with(with(c, "nbf", nullptr), "iat", nullptr))));
  VerifierOptions strict;
  strict.clock_skew_seconds = 0;
  expect_refusals(rig.verifier(strict),
                  {{"no skew", rig.sign(with(c, "exp", kNow)), "JWT-EXPIRED"}});
  VerifierOptions too_lax;
  too_lax.clock_skew_seconds = 301;
  CHECK_ERROR_CODE(AttestationVerifier::create(rig.resolver(), too_lax),
                   ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(AttestationVerifier::create(nullptr), ErrorCode::kInvalidArgument);
}

TEST_CASE("a kid that matches no key falls back to every key of the authority",
          "[skr][attestation]") {
  AuthorityRig rig;
  auto token = rig.verifier().verify(rig.sign(rig.claims(), Json{{"kid", "rotated-away"}}));
  REQUIRE_OK(token);
  CHECK(token->signing_kid() == rig.authority().kid());
  auto no_kid = rig.verifier().verify(rig.sign(rig.claims(), Json{{"kid", nullptr}}));
  REQUIRE_OK(no_kid);
}

TEST_CASE("the first suitable runtime key is the one released to", "[skr][attestation]") {
  AuthorityRig rig;
  Json ec = public_jwk(*make_ec_key());
  ec["kid"] = "ec";
  ec["key_ops"] = Json::array({"encrypt"});
  Json small = public_jwk(rsa_key(2, 1024));
  small["kid"] = "small";
  small["key_ops"] = Json::array({"encrypt"});
  Json sign = public_jwk(rsa_key(3));
  sign["kid"] = "sign";
  sign["key_ops"] = Json::array({"sign"});
  Json mock_style = public_jwk(rsa_key(4));
  mock_style["kid"] = "fake-release-key";
  mock_style["use"] = "enc";
  Json later = rig.runtime_public().to_jwk();
  later["kid"] = "later";
  later["key_ops"] = Json::array({"encrypt"});
  Json c =
      with(rig.claims(), "x-ms-runtime.keys", Json::array({ec, small, sign, mock_style, later}));
  auto token = rig.verifier().verify(rig.sign(c));
  REQUIRE_OK(token);
  CHECK(token->runtime_key().kid == "fake-release-key");
  CHECK(token->runtime_key().index == 3);
  CHECK(token->runtime_key().public_key == public_of(rsa_key(4)));
}

TEST_CASE("a runtime key given only as x5c is accepted", "[skr][attestation]") {
  AuthorityRig rig;
  // The authority's signing certificate stands in for a certificate of an RSA key.
  Json cert_only{{"kty", "RSA"},
                 {"kid", "cert"},
                 {"key_ops", Json::array({"encrypt"})},
                 {"x5c", rig.authority().jwks()["keys"][0]["x5c"]}};
  auto token = rig.verifier().verify(
      rig.sign(with(rig.claims(), "x-ms-runtime.keys", Json::array({cert_only}))));
  REQUIRE_OK(token);
  CHECK(token->runtime_key().public_key == rig.authority().signing_public_key());
  Json mismatch = cert_only;
  mismatch["n"] = rig.runtime_public().to_jwk()["n"];
  mismatch["e"] = "AQAB";
  expect_refusals(rig.verifier(),
                  {{"x5c and n disagree",
                    rig.sign(with(rig.claims(), "x-ms-runtime.keys", Json::array({mismatch}))),
                    "ATT-RUNTIME-KEY"}});
}

TEST_CASE("a token issuer with a trailing slash matches its authority", "[skr][attestation]") {
  AuthorityRig rig;
  auto token =
      rig.verifier().verify(rig.sign(with(rig.claims(), "iss", rig.authority().url() + "/")));
  REQUIRE_OK(token);
  CHECK(token->issuer() == rig.authority().url() + "/");
}

TEST_CASE("an ES256 token verifies against an EC key of a trusted authority",
          "[skr][attestation]") {
  AuthorityRig rig;
  auto ec = make_ec_key();
  Json jwk = public_jwk(*ec);
  jwk["kid"] = "ec-signer";
  auto vk = VerificationKey::from_jwk(jwk);
  REQUIRE_OK(vk);
  auto resolver = std::make_shared<StaticKeyResolver>();
  resolver->add(rig.authority().url(), {*vk});
  VerifierOptions o;
  o.clock = [] { return kNow; };
  auto v = AttestationVerifier::create(resolver, o);
  REQUIRE_OK(v);
  const std::string header = R"({"alg":"ES256","kid":"ec-signer","typ":"JWT"})";
  const std::string payload = dump_json(rig.claims());
  std::string token =
      assemble(header, payload, ecdsa_sign(*ec, "SHA256", signing_input(header, payload), 32));
  REQUIRE_OK(v->verify(token));
}

TEST_CASE("the trusted-authorities file round trips", "[skr][attestation]") {
  AuthorityRig rig;
  auto r = StaticKeyResolver::from_file(rig.authority().dir() / "trusted-authorities.json");
  REQUIRE_OK(r);
  CHECK((*r)->trusts(rig.authority().url()));
  CHECK((*r)->trusts(rig.authority().url() + "/"));
  CHECK_FALSE((*r)->trusts("https://elsewhere.example"));
  CHECK((*r)->issuers() == std::vector<std::string>{rig.authority().url()});
  CHECK_ERROR_CODE(StaticKeyResolver::from_json(Json{{"authorities", Json::array()}}),
                   ErrorCode::kFormat);
  CHECK_ERROR_CODE(
      StaticKeyResolver::from_json(Json{{"authorities", Json::array({Json{{"issuer", "x"}}})}}),
      ErrorCode::kFormat);
}

TEST_CASE("a fresh authority folder reopens with the same identity", "[skr][authority]") {
  auto dir = keyport::test::make_scratch_subdir("fresh");
  auto made = SimulatedAuthority::init(dir);
  REQUIRE_OK(made);
  for (const char* f :
       {"authority.json", "signing-key.pem", "signing-cert.pem", "hcl-akpub.pem", "jwks.json",
        "trusted-authorities.json", "tls-ca.pem", "tls-server-cert.pem", "tls-server-key.pem"}) {
    INFO(f);
    CHECK(std::filesystem::exists(dir / f));
  }
  for (const char* f : {"signing-key.pem", "tls-server-key.pem"}) {
    INFO(f);
    CHECK(std::filesystem::status(dir / f).permissions() ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  }
  auto again = SimulatedAuthority::open(dir);
  REQUIRE_OK(again);
  CHECK(again->url() == made->url());
  CHECK(again->kid() == made->kid());
  CHECK(again->jwks() == made->jwks());
  // The signing certificate names the authority, as Azure Attestation's do.
  auto pem = read_text_file(dir / "signing-cert.pem");
  REQUIRE_OK(pem);
  auto certs = x509::certificates_from_pem(*pem);
  REQUIRE_OK(certs);
  CHECK(x509::common_name(*certs->front()) == kDefaultAuthorityUrl);
  // init refuses to overwrite, and refuses URLs with paths or plain HTTP.
  CHECK_ERROR_CODE(SimulatedAuthority::init(dir), ErrorCode::kAlreadyExists);
  auto other = keyport::test::make_scratch_subdir("bad-url");
  CHECK_ERROR_CODE(SimulatedAuthority::init(other, "http://plain.example"),
                   ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(SimulatedAuthority::init(other, "https://a.example/tenant"),
                   ErrorCode::kInvalidArgument);
}
