// SPDX-License-Identifier: Apache-2.0
// Secure Key Release through the simulated vault (vault/release.h), on the test SoftHSM's "vault"
// token: a key with a SEV-SNP policy is released to a token of the simulated authority and the
// released key, unwrapped by raw OpenSSL (tests/support/oracle.h, not keyport's unwrap), is the
// vault's key; every refusal (token, runtime key, policy, key state, request) releases nothing,
// answers one uniform 403 (or a 400 for a malformed request), and leaves its reason in the audit
// log only. A subset runs over HTTPS against the REST server.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/file_io.h"
#include "skr/attestation.h"
#include "skr/authority.h"
#include "skr/enclave.h"
#include "tests/skr/skr_rig.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/support/support.h"
#include "tests/vault/rest_rig.h"
#include "tests/vault/vault_rig.h"
#include "vault/release.h"

using namespace keyport;
using namespace keyport::test;
using keyport::test::skr::AuthorityRig;
using keyport::test::skr::kNow;
namespace sk = keyport::skr;
namespace ts = keyport::test::skr;
namespace fs = std::filesystem;

namespace {

// The confidential-containers policy of the Azure docs (spec §3.4), with the string forms
// "false" and "0" that Azure's own examples compare with a boolean and a number claim.
std::string sev_snp_policy(const std::string& authority) {
  return dump_json(Json{
      {"version", "1.0.0"},
      {"anyOf",
       Json::array(
           {Json{{"authority", authority},
                 {"allOf",
                  Json::array({
                      Json{{"claim", "x-ms-attestation-type"}, {"equals", "sevsnpvm"}},
                      Json{{"claim", "x-ms-compliance-status"}, {"equals", "azure-compliant-uvm"}},
                      Json{{"claim", "x-ms-sevsnpvm-is-debuggable"}, {"equals", "false"}},
                      Json{{"claim", "x-ms-sevsnpvm-vmpl"}, {"equals", "0"}},
                  })}}})}});
}

Json policy_member(const std::string& policy, bool immutable = false) {
  return Json{{"contentType", "application/json; charset=utf-8"},
              {"data", base64url_encode(as_bytes(policy))},
              {"immutable", immutable}};
}

Json exportable_params(const std::string& kty, const Json& size_or_curve,
                       const std::string& policy) {
  Json p{{"kty", kty},
         {"attributes", Json{{"exportable", true}}},
         {"release_policy", policy_member(policy)}};
  if (kty == "EC-HSM") {
    p["crv"] = size_or_curve;
  } else {
    p["key_size"] = size_or_curve;
  }
  return p;
}

ossl::UniquePtr<EVP_PKEY> authority_private_key(const AuthorityRig& rig) {
  auto pem = read_secret_file(rig.authority().dir() / "signing-key.pem");
  REQUIRE_OK(pem);
  auto bytes = pem->reveal(SecretAccess::unsafe());
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  ossl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(key);
  return key;
}

Json with(Json j, const std::string& path, Json value) {
  REQUIRE_OK(sk::apply_claim_overrides(j, Json{{path, std::move(value)}}));
  return j;
}

// A vault on the test token with one trusted simulated authority, its clock at the rig's kNow.
struct ReleaseRig {
  VaultRig v;
  AuthorityRig rig{"maa"};
  std::unique_ptr<vault::ReleaseService> service;

  // Managed HSM: the flavour that holds RSA, EC and oct keys alike.
  explicit ReleaseRig(vault::Flavor flavor = vault::Flavor::kKeyVault) : v(flavor, "skr") {
    v.clock.set(kNow);
    REQUIRE_OK(write_file_atomic(v.dir / vault::kTrustedAuthoritiesFile,
                                 dump_json(rig.authority().trusted_authorities(), 2),
                                 WriteOptions{true, 0644}));
    service = std::make_unique<vault::ReleaseService>(*v.v);
  }

  Json create(const std::string& name, const Json& params) {
    auto r = v->create_key(v.ctx, name, params);
    REQUIRE_OK(r);
    return *r;
  }
  Json create_sev_snp(const std::string& name, const std::string& kty = "RSA-HSM",
                      const Json& size = 2048) {
    return create(name, exportable_params(kty, size, sev_snp_policy(rig.authority().url())));
  }

  Result<Json> release(const std::string& name, const Json& body, const std::string& version = "") {
    return service->release(v.ctx, name, version, body, "7.4");
  }

  std::string vault_ca() const {
    auto pem = read_text_file(v.dir / "tls" / "ca.pem");
    REQUIRE_OK(pem);
    return *pem;
  }

  // The last audit row.
  vault::AuditRecord last_audit() const {
    auto log = v.v->audit_log(0);
    REQUIRE_OK(log);
    REQUIRE_FALSE(log->empty());
    return log->back();
  }
};

// The released key_hsm of a verified response, unwrapped with raw OpenSSL.
Bytes openssl_unwrap(const sk::VerifiedRelease& release, EVP_PKEY& runtime) {
  return oracle::unwrap_transfer_blob(&runtime, release.key_hsm().enc,
                                      release.key_hsm().ciphertext);
}

}  // namespace

TEST_CASE("a key released to a SEV-SNP token is the vault's key, unwrapped by OpenSSL",
          "[skr][vault][release]") {
  ReleaseRig r(vault::Flavor::kManagedHsm);
  const Json rsa = r.create_sev_snp("skr-rsa");
  const Json ec = r.create_sev_snp("skr-ec", "EC-HSM", "P-256");
  const Json aes = r.create_sev_snp("skr-aes", "oct-HSM", 256);
  const std::string token = r.rig.mint();
  const std::size_t objects = r.v.token_objects();
  const std::size_t session_keys = count_session_objects(r.v.session, CKO_PUBLIC_KEY) +
                                   count_session_objects(r.v.session, CKO_SECRET_KEY);

  SECTION("RSA: same modulus, and a signature made with the released key verifies in the vault") {
    auto out = r.release("skr-rsa", Json{{"target", token}, {"nonce", "n-1"}});
    REQUIRE_OK(out);
    sk::ReleaseTrust trust;
    trust.vault_ca_pem = r.vault_ca();
    trust.vault_host = r.v->host();
    trust.expected_nonce = "n-1";
    auto verified = sk::verify_release_response(dump_json(*out), trust);
    REQUIRE_OK(verified);
    CHECK(verified->key_kid() == rsa["key"]["kid"].get<std::string>());
    CHECK(verified->key_hsm().enc == WrapAlg::kRsaAesKeyWrap);
    CHECK(verified->key_hsm().kid == sk::jwk_thumbprint(r.rig.runtime_public()));
    const Bytes der = openssl_unwrap(*verified, r.rig.runtime_key());
    auto released = oracle::parse_pkcs8(der);
    REQUIRE(released);
    CHECK(oracle::rsa_modulus(released.get()) ==
          *base64url_decode(rsa["key"]["n"].get<std::string>()));
    // Sign with the released private key (OpenSSL), verify with the vault.
    const std::string message = "released and used";
    const Bytes digest = digest_of("RS256", Bytes(message.begin(), message.end()));
    ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(released.get(), nullptr));
    REQUIRE(EVP_PKEY_sign_init(ctx.get()) == 1);
    REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1);
    REQUIRE(EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) == 1);
    std::size_t len = 0;
    REQUIRE(EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) == 1);
    Bytes sig(len);
    REQUIRE(EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) == 1);
    auto ok = r.v->verify(r.v.ctx, "skr-rsa", "",
                          Json{{"alg", "RS256"},
                               {"digest", base64url_encode(digest)},
                               {"value", base64url_encode(sig)}});
    REQUIRE_OK(ok);
    CHECK((*ok)["value"] == true);
    // The payload echoes the request and carries the key's attributes and policy.
    const Json& p = verified->payload();
    CHECK(p["request"]["api-version"] == "7.4");
    CHECK(p["request"]["kid"] == r.v->config().base_url + "/keys/skr-rsa");
    CHECK(p["request"]["nonce"] == "n-1");
    CHECK(p["response"]["key"]["attributes"]["exportable"] == true);
    CHECK(p["response"]["key"]["release_policy"]["data"] == rsa["release_policy"]["data"]);
    CHECK_FALSE(p["response"]["key"]["key"].contains("d"));
  }
  SECTION("EC: the released private key's public point is the vault's") {
    auto out = r.release("skr-ec", Json{{"target", token}});
    REQUIRE_OK(out);
    sk::ReleaseTrust trust;
    trust.vault_ca_pem = r.vault_ca();
    auto verified = sk::verify_release_response(dump_json(*out), trust);
    REQUIRE_OK(verified);
    std::size_t der_len = 0;
    auto released = oracle::parse_pkcs8(openssl_unwrap(*verified, r.rig.runtime_key()), &der_len);
    REQUIRE(released);
    const Bytes point = oracle::ec_public_point(released.get());
    Bytes expected{0x04};
    for (const char* c : {"x", "y"}) {
      Bytes part = *base64url_decode(ec["key"][c].get<std::string>());
      expected.insert(expected.end(), part.begin(), part.end());
    }
    CHECK(point == expected);
  }
  SECTION("AES: RFC 3394 under the released key equals the vault's wrapKey") {
    auto out = r.release("skr-aes", Json{{"target", token}});
    REQUIRE_OK(out);
    sk::ReleaseTrust trust;
    trust.vault_ca_pem = r.vault_ca();
    auto verified = sk::verify_release_response(dump_json(*out), trust);
    REQUIRE_OK(verified);
    const Bytes key = openssl_unwrap(*verified, r.rig.runtime_key());
    REQUIRE(key.size() == 32);
    const Bytes plain(32, 0x5a);
    auto wrapped = r.v->wrap_key(r.v.ctx, "skr-aes", "",
                                 Json{{"alg", "A256KW"}, {"value", base64url_encode(plain)}});
    REQUIRE_OK(wrapped);
    CHECK(*base64url_decode((*wrapped)["value"].get<std::string>()) == openssl_aes_kw(key, plain));
  }
  // Ephemeral objects (runtime public key, AES transfer key) are gone; the audit names the runtime
  // key.
  CHECK(r.v.token_objects() == objects);
  CHECK(count_session_objects(r.v.session, CKO_PUBLIC_KEY) +
            count_session_objects(r.v.session, CKO_SECRET_KEY) ==
        session_keys);
  // The release is audited as allowed, naming the runtime key it went to.
  auto log = r.v->audit_log(0);
  REQUIRE_OK(log);
  bool audited = false;
  for (const auto& a : *log) {
    audited =
        audited || (a.operation == "ReleaseKey" && a.outcome == "success" &&
                    a.reason.find(sk::jwk_thumbprint(r.rig.runtime_public())) != std::string::npos);
  }
  CHECK(audited);
}

TEST_CASE("the release JWS is signed by a certificate for the vault host under the vault CA",
          "[skr][vault][release]") {
  ReleaseRig r;
  r.create_sev_snp("k");
  auto out = r.release("k", Json{{"target", r.rig.mint()}});
  REQUIRE_OK(out);
  sk::ReleaseTrust trust;
  trust.vault_ca_pem = r.vault_ca();
  trust.vault_host = r.v->host();  // skr.vault.azure.net: the vault's base URL names no port
  REQUIRE_OK(sk::verify_release_response(dump_json(*out), trust));
  // Another host name, or another CA, is refused.
  trust.vault_host = "contoso.vault.azure.net";
  auto wrong_host = sk::verify_release_response(dump_json(*out), trust);
  REQUIRE_FALSE(wrong_host.has_value());
  CHECK(wrong_host.error().detail() == "REL-CHAIN");
  sk::ReleaseTrust other;
  other.vault_ca_pem = r.rig.authority().trusted_authorities().dump();  // not a CA at all
  CHECK_FALSE(sk::verify_release_response(dump_json(*out), other).has_value());
  // The identity is reused by a second service on the same folder.
  vault::ReleaseService again(*r.v.v);
  auto second = again.release(r.v.ctx, "k", "", Json{{"target", r.rig.mint()}}, "7.4");
  REQUIRE_OK(second);
  auto a = sk::CompactJws::parse((*out)["value"].get<std::string>());
  auto b = sk::CompactJws::parse((*second)["value"].get<std::string>());
  REQUIRE_OK(a);
  REQUIRE_OK(b);
  CHECK(a->header()["x5c"] == b->header()["x5c"]);
}

TEST_CASE("every refused release releases nothing and says the same thing",
          "[skr][vault][release][refusals]") {
  ReleaseRig r;
  AuthorityRig other("other", "https://other-simulated-maa.keyport.localhost");
  const std::string url = r.rig.authority().url();
  const std::string policy = sev_snp_policy(url);
  r.create_sev_snp("ok");
  r.create("plain", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}});
  r.create_sev_snp("disabled");
  REQUIRE_OK(r.v->update_key(r.v.ctx, "disabled", "", Json{{"attributes", {{"enabled", false}}}}));
  Json expired_key = exportable_params("RSA-HSM", 2048, policy);
  expired_key["attributes"]["exp"] = kNow - 10;
  r.create("expired-key", expired_key);
  Json future_key = exportable_params("RSA-HSM", 2048, policy);
  future_key["attributes"]["nbf"] = kNow + 3600;
  r.create("future-key", future_key);
  // A policy naming only the other authority (which the vault trusts too).
  r.create("other-policy",
           exportable_params("RSA-HSM", 2048, sev_snp_policy(other.authority().url())));
  // A policy that needs a claim the tokens do not carry.
  r.create(
      "needs-claim",
      exportable_params(
          "RSA-HSM", 2048,
          dump_json(Json{{"version", "1.0.0"},
                         {"anyOf", Json::array({Json{
                                       {"authority", url},
                                       {"allOf", Json::array({Json{{"claim", "x-ms-sgx-mrsigner"},
                                                                   {"equals", "abc"}}})}}})}})));
  // An immutable policy cannot be changed (the update is refused; the key still releases only
  // under the old policy).
  Json imm = exportable_params("RSA-HSM", 2048, policy);
  imm["release_policy"]["immutable"] = true;
  r.create("immutable", imm);
  auto change = r.v->update_key(
      r.v.ctx, "immutable", "",
      Json{{"release_policy", policy_member(R"({"version":"1.0.0","anyOf":[{"authority":")" + url +
                                            R"(","allOf":[{"claim":"iss","exists":true}]}]})")}});
  REQUIRE_FALSE(change.has_value());
  CHECK(vault::kv_code(change.error()) == "BadParameter");

  // The vault trusts both authorities.
  Json trust = r.rig.authority().trusted_authorities();
  const Json other_trust = other.authority().trusted_authorities();
  for (const auto& a : other_trust["authorities"]) {
    trust["authorities"].push_back(a);
  }
  REQUIRE_OK(write_file_atomic(r.v.dir / vault::kTrustedAuthoritiesFile, dump_json(trust),
                               WriteOptions{true, 0644}));

  auto key = authority_private_key(r.rig);
  const Json claims = r.rig.claims();
  const std::string payload = dump_json(claims);
  const std::string rs256 = dump_json(Json{
      {"alg", "RS256"}, {"jku", url + "/certs"}, {"kid", r.rig.authority().kid()}, {"typ", "JWT"}});
  const std::string hs256 =
      dump_json(Json{{"alg", "HS256"}, {"kid", r.rig.authority().kid()}, {"typ", "JWT"}});
  const std::string hs_input = ts::signing_input(hs256, payload);
  const std::string good = r.rig.mint();
  const auto dot1 = good.find('.');
  const auto dot2 = good.find('.', dot1 + 1);
  std::string flipped_sig = good;
  flipped_sig[dot2 + 10] = flipped_sig[dot2 + 10] == 'A' ? 'B' : 'A';
  std::string dup_payload = payload;
  dup_payload.insert(1, R"("x-ms-sevsnpvm-is-debuggable":true,)");
  Json ec_runtime = ts::public_jwk(*ts::make_ec_key());
  ec_runtime["kid"] = "ec";
  ec_runtime["key_ops"] = Json::array({"encrypt"});
  Json small_runtime = ts::public_jwk(ts::rsa_key(2, 1024));
  small_runtime["kid"] = "small";
  small_runtime["key_ops"] = Json::array({"encrypt"});
  Json sign_only = r.rig.runtime_public().to_jwk();
  sign_only["kid"] = "s";
  sign_only["key_ops"] = Json::array({"sign"});
  sk::MintOptions expired;
  expired.issued_at = kNow - 9 * 3600;
  sk::MintOptions future;
  future.issued_at = kNow + 3600;
  sk::MintOptions debuggable;
  debuggable.claim_overrides = Json{{"x-ms-sevsnpvm-is-debuggable", true}};
  sk::MintOptions vmpl;
  vmpl.claim_overrides = Json{{"x-ms-sevsnpvm-vmpl", 1}};
  sk::MintOptions tdx;
  tdx.type = sk::PlatformType::kTdxVm;
  sk::MintOptions no_compliance;
  no_compliance.claim_overrides = Json{{"x-ms-compliance-status", nullptr}};
  sk::MintOptions cvm_status;
  cvm_status.claim_overrides = Json{{"x-ms-compliance-status", "azure-compliant-cvm"}};

  struct Row {
    std::string name;
    std::string key;
    Json body;
    int status;         // 403 refused, 400 bad request
    std::string audit;  // a fragment of the audit reason
  };
  auto t = [](const std::string& token) { return Json{{"target", token}}; };
  const std::vector<Row> rows = {
      {"alg none", "ok", t(ts::b64(R"({"alg":"none","typ":"JWT"})") + "." + ts::b64(payload) + "."),
       403, "JWS-"},
      {"alg none with a signature", "ok",
       t(ts::assemble(R"({"alg":"none","typ":"JWT"})", payload, Bytes{1})), 403, "JWS-ALG"},
      {"HS256 keyed with the authority's PEM public key", "ok",
       t(hs_input + "." +
         base64url_encode(
             ts::hmac_sha256(as_bytes(r.rig.authority().signing_public_key().pem()), hs_input))),
       403, "JWS-ALG"},
      {"HS256 keyed with the SPKI DER", "ok",
       t(hs_input + "." +
         base64url_encode(
             ts::hmac_sha256(r.rig.authority().signing_public_key().spki_der(), hs_input))),
       403, "JWS-ALG"},
      {"expired token", "ok", t(r.rig.mint(expired)), 403, "JWT-EXPIRED"},
      {"token not yet valid", "ok", t(r.rig.mint(future)), 403, "JWT-NOT-YET-VALID"},
      {"iat in the future", "ok",
       t(r.rig.sign(with(with(claims, "nbf", nullptr), "iat", kNow + 600))), 403, "JWT-IAT"},
      {"no exp", "ok", t(r.rig.sign(with(claims, "exp", nullptr))), 403, "JWT-TIME"},
      {"wrong iss", "ok", t(r.rig.sign(with(claims, "iss", "https://attacker.example"))), 403,
       "JWT-UNTRUSTED-ISS"},
      {"trusted authority the policy does not name", "ok", t(other.mint()), 403,
       "JWT-UNTRUSTED-ISS"},
      {"unknown kid signed by a stranger key", "ok",
       t(ts::forge_rs256(ts::rsa_key(5),
                         dump_json(Json{{"alg", "RS256"}, {"kid", "unknown"}, {"typ", "JWT"}}),
                         payload)),
       403, "JWS-SIGNATURE"},
      {"signature by another authority under this one's kid", "ok",
       t(ts::forge_rs256(*authority_private_key(other), rs256, payload)), 403, "JWS-SIGNATURE"},
      {"tampered payload", "ok",
       t(good.substr(0, dot1 + 1) +
         ts::b64(dump_json(with(claims, "x-ms-sevsnpvm-is-debuggable", true))) + good.substr(dot2)),
       403, "JWS-SIGNATURE"},
      {"tampered signature", "ok", t(flipped_sig), 403, "JWS-"},
      {"no x-ms-runtime", "ok", t(r.rig.sign(with(claims, "x-ms-runtime", nullptr))), 403,
       "ATT-RUNTIME-MISSING"},
      {"no x-ms-runtime.keys", "ok", t(r.rig.sign(with(claims, "x-ms-runtime.keys", nullptr))), 403,
       "ATT-RUNTIME-MISSING"},
      {"only an EC runtime key", "ok",
       t(r.rig.sign(with(claims, "x-ms-runtime.keys", Json::array({ec_runtime})))), 403,
       "ATT-RUNTIME-KEY"},
      {"a 1024-bit runtime key", "ok",
       t(r.rig.sign(with(claims, "x-ms-runtime.keys", Json::array({small_runtime})))), 403,
       "ATT-RUNTIME-KEY"},
      {"a runtime key for signing only", "ok",
       t(r.rig.sign(with(claims, "x-ms-runtime.keys", Json::array({sign_only})))), 403,
       "ATT-RUNTIME-KEY"},
      {"duplicate members in the payload", "ok", t(ts::forge_rs256(*key, rs256, dup_payload)), 403,
       "JWS-DUPLICATE"},
      {"duplicate members in the header", "ok",
       t(ts::forge_rs256(
           *key,
           R"({"alg":"RS256","kid":")" + r.rig.authority().kid() + R"(","kid":"x","typ":"JWT"})",
           payload)),
       403, "JWS-DUPLICATE"},
      {"oversize token", "ok", t(r.rig.sign(with(claims, "padding", std::string(70 * 1024, 'x')))),
       403, "JWS-SIZE"},
      {"two segments", "ok", t(good.substr(0, dot2)), 403, "JWS-SEGMENTS"},
      {"crit header", "ok", t(r.rig.sign(claims, Json{{"crit", Json::array({"exp"})}})), 403,
       "JWS-CRIT"},
      {"typ other than JWT", "ok", t(r.rig.sign(claims, Json{{"typ", "JOSE+JSON"}})), 403,
       "JWT-TYP"},
      {"payload not an object", "ok", t(ts::forge_rs256(*key, rs256, "[1,2,3]")), 403,
       "JWT-PAYLOAD"},
      {"claim mismatch: debuggable", "ok", t(r.rig.mint(debuggable)), 403,
       "x-ms-sevsnpvm-is-debuggable"},
      {"claim mismatch: vmpl 1", "ok", t(r.rig.mint(vmpl)), 403, "allOf[3]"},
      {"claim mismatch: a TDX token", "ok", t(r.rig.mint(tdx)), 403, "allOf[0]"},
      {"claim mismatch: CVM compliance status", "ok", t(r.rig.mint(cvm_status)), 403, "allOf[1]"},
      {"claim missing: compliance status", "ok", t(r.rig.mint(no_compliance)), 403, "allOf[1]"},
      {"claim missing: a claim no token has", "needs-claim", t(good), 403, "x-ms-sgx-mrsigner"},
      {"policy of another authority", "other-policy", t(good), 403, "JWT-UNTRUSTED-ISS"},
      {"non-exportable key", "plain", t(good), 403, "not exportable"},
      {"disabled key", "disabled", t(good), 403, "disabled"},
      {"expired key", "expired-key", t(good), 403, "nbf/exp"},
      {"key not yet valid", "future-key", t(good), 403, "nbf/exp"},
      {"immutable policy kept after a refused change, debuggable token", "immutable",
       t(r.rig.mint(debuggable)), 403, "is-debuggable"},
      {"no target", "ok", Json{{"nonce", "x"}}, 400, "target"},
      {"empty target", "ok", t(""), 400, "target"},
      {"target not a string", "ok", Json{{"target", 7}}, 400, "target"},
      {"unknown enc", "ok", Json{{"target", good}, {"enc", "A256KW"}}, 400, "enc"},
      {"nonce not a string", "ok", Json{{"target", good}, {"nonce", 5}}, 400, "nonce"},
  };
  CHECK(rows.size() >= 30);
  const std::size_t objects = r.v.token_objects();
  for (const auto& row : rows) {
    INFO(row.name);
    auto out = r.release(row.key, row.body);
    REQUIRE_FALSE(out.has_value());  // nothing released
    INFO(out.error().describe());
    CHECK(vault::http_status_for(out.error()) == row.status);
    const auto audit = r.last_audit();
    CHECK(audit.operation == "ReleaseKey");
    CHECK(audit.outcome == "failure");
    CHECK(audit.status == row.status);
    INFO("audit: " << audit.reason);
    CHECK(audit.reason.find(row.audit) != std::string::npos);
    if (row.status == 403) {
      // One answer for every refusal: the caller learns nothing of the reason.
      CHECK(vault::kv_code(out.error()) == "Forbidden");
      CHECK(out.error().message() == vault::kReleaseRefused);
    }
  }
  CHECK(r.v.token_objects() == objects);
  // The good token still releases.
  REQUIRE_OK(r.release("ok", t(good)));
  REQUIRE_OK(r.release("immutable", t(good)));
}

TEST_CASE("a vault that trusts no authority releases nothing", "[skr][vault][release]") {
  ReleaseRig r;
  r.create_sev_snp("k");
  fs::remove(r.v.dir / vault::kTrustedAuthoritiesFile);
  auto out = r.release("k", Json{{"target", r.rig.mint()}});
  REQUIRE_FALSE(out.has_value());
  CHECK(vault::http_status_for(out.error()) == 403);
  CHECK(r.last_audit().reason.find("JWT-UNTRUSTED-ISS") != std::string::npos);
  // Trusting it again (the service re-reads the file) releases.
  REQUIRE_OK(write_file_atomic(r.v.dir / vault::kTrustedAuthoritiesFile,
                               dump_json(r.rig.authority().trusted_authorities()),
                               WriteOptions{true, 0644}));
  REQUIRE_OK(r.release("k", Json{{"target", r.rig.mint()}}));
}

TEST_CASE("SHA-256 and SHA-384 release wraps need an HSM that can do them",
          "[skr][vault][release]") {
  ReleaseRig r;
  r.create_sev_snp("k");
  for (const char* enc : {"RSA_AES_KEY_WRAP_256", "RSA_AES_KEY_WRAP_384"}) {
    INFO(enc);
    const WrapAlg alg = *parse_wrap_alg(enc);
    auto out = r.release("k", Json{{"target", r.rig.mint()}, {"enc", enc}});
    if (r.v->capabilities().hash_ok(wrap_alg_hash(alg)) &&
        p11::choose_strategy(r.v->capabilities(), p11::WrapStrategy::kAuto, alg)) {
      REQUIRE_OK(out);
      sk::ReleaseTrust trust;
      trust.vault_ca_pem = r.vault_ca();
      auto verified = sk::verify_release_response(dump_json(*out), trust);
      REQUIRE_OK(verified);
      CHECK(verified->key_hsm().enc == alg);
      CHECK_FALSE(openssl_unwrap(*verified, r.rig.runtime_key()).empty());
    } else {
      // SoftHSM 2.6.1: OAEP with SHA-1 only. A clear 400, never a silent SHA-1 wrap.
      REQUIRE_FALSE(out.has_value());
      CHECK(vault::http_status_for(out.error()) == 400);
      CHECK(out.error().message().find(enc) != std::string::npos);
    }
  }
}

TEST_CASE("release over HTTPS: allowed, refused uniformly, permission and request errors",
          "[skr][vault][release][rest]") {
  AuthorityRig rig("maa");
  Json access{{"tokens",
               {{"release-token-0123456789",
                 {{"name", "releaser"}, {"permissions", {"create", "release", "get"}}}},
                {"no-release-0123456789ab", {{"name", "reader"}, {"permissions", {"get"}}}}}}};
  RestRig rest(vault::Flavor::kKeyVault, "skr-rest", access);
  REQUIRE_OK(write_file_atomic(rest.dir / "authorities.json",
                               dump_json(rig.authority().trusted_authorities()),
                               WriteOptions{true, 0644}));
  rest.stop();  // the rig started it: restart with the trust file (vault serve
                // --trusted-authorities)
  rest.options.release.trusted_authorities = rest.dir / "authorities.json";
  rest.start();
  RestClient c = rest.client("release-token-0123456789");
  c.api = "7.4";
  auto created = c.post("/keys/skr/create",
                        exportable_params("RSA-HSM", 2048, sev_snp_policy(rig.authority().url())));
  REQUIRE(created.status == 200);
  // The server runs on the system clock: mint for now.
  sk::MintOptions now;
  now.issued_at = static_cast<std::int64_t>(std::time(nullptr));
  auto good = rig.authority().mint(rig.runtime_public(), now);
  REQUIRE_OK(good);

  auto ok = c.post("/keys/skr/release", Json{{"target", *good}, {"nonce", "abc"}});
  INFO(ok.describe());
  REQUIRE(ok.status == 200);
  sk::ReleaseTrust trust;
  trust.vault_ca_pem = slurp(rest.ca_file());
  trust.vault_host = "127.0.0.1";
  trust.expected_nonce = "abc";
  auto verified = sk::verify_release_response(ok.body, trust);
  REQUIRE_OK(verified);
  auto der = oracle::unwrap_transfer_blob(&rig.runtime_key(), verified->key_hsm().enc,
                                          verified->key_hsm().ciphertext);
  auto released = oracle::parse_pkcs8(der);
  REQUIRE(released);
  CHECK(oracle::rsa_modulus(released.get()) ==
        *base64url_decode(created.json["key"]["n"].get<std::string>()));
  // Versioned path too.
  const std::string kid = created.json["key"]["kid"];
  const std::string version = kid.substr(kid.rfind('/') + 1);
  CHECK(c.post("/keys/skr/" + version + "/release", Json{{"target", *good}}).status == 200);

  sk::MintOptions debuggable = now;
  debuggable.claim_overrides = Json{{"x-ms-sevsnpvm-is-debuggable", true}};
  sk::MintOptions expired;
  expired.issued_at = now.issued_at.value() - 9 * 3600;
  const std::vector<std::pair<std::string, std::string>> refusals = {
      {"debuggable", *rig.authority().mint(rig.runtime_public(), debuggable)},
      {"expired", *rig.authority().mint(rig.runtime_public(), expired)},
      {"alg none", ts::b64(R"({"alg":"none"})") + "." + ts::b64(R"({"iss":"x"})") + "."},
  };
  for (const auto& [name, token] : refusals) {
    INFO(name);
    auto a = c.post("/keys/skr/release", Json{{"target", token}});
    CHECK(a.status == 403);
    CHECK(a.code() == "Forbidden");
    CHECK(a.json["error"]["message"] == vault::kReleaseRefused);
    CHECK(a.body.find("debuggable") == std::string::npos);
    CHECK(a.body.find("JWT-") == std::string::npos);
    CHECK_FALSE(a.json.contains("value"));
  }
  CHECK(c.post("/keys/skr/release", Json{{"nonce", "x"}}).status == 400);
  CHECK(c.post("/keys/nope/release", Json{{"target", *good}}).status == 404);
  RestClient reader = rest.client("no-release-0123456789ab");
  reader.api = "7.4";
  auto denied = reader.post("/keys/skr/release", Json{{"target", *good}});
  CHECK(denied.status == 403);
  CHECK(denied.body.find("release permission") != std::string::npos);
  rest.stop();
}
