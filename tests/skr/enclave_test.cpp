// SPDX-License-Identifier: Apache-2.0
// skr/enclave.h: a release response built with build_release_response() (the vault's half)
// verifies and unwraps with the runtime key to the original RSA, EC and AES keys (the enclave's
// half), and is refused when the chain leads elsewhere, the payload or header was changed, or
// key_hsm is wrapped to another key. The JWS is also checked with raw OpenSSL.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <string>
#include <vector>

#include "byok/crypto.h"
#include "core/digest.h"
#include "core/random.h"
#include "core/x509.h"
#include "skr/enclave.h"
#include "skr/jws.h"
#include "tests/skr/skr_rig.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::skr;
using namespace keyport::test::skr;

namespace {

constexpr const char* kVaultHost = "contoso.vault.azure.net";
constexpr const char* kKeyUrl = "https://contoso.vault.azure.net/keys/released";
constexpr const char* kVersion = "0123456789abcdef0123456789abcdef";

// A vault signing identity: a CA, an intermediate, and a leaf for the vault host.
struct VaultPki {
  std::string ca_pem;
  std::vector<Bytes> chain;  // leaf, intermediate, root
  std::unique_ptr<SoftwareSigner> signer;

  explicit VaultPki(const char* host = kVaultHost) {
    auto root_key = x509::generate_rsa_key(2048);
    REQUIRE_OK(root_key);
    x509::CertificateRequest root_req;
    root_req.common_name = "keyport SIMULATED vault root CA";
    root_req.is_ca = true;
    auto root = x509::make_certificate(root_req, **root_key, **root_key, nullptr);
    REQUIRE_OK(root);
    EVP_PKEY& mid_key = rsa_key(11);
    x509::CertificateRequest mid_req;
    mid_req.common_name = "keyport SIMULATED vault issuing CA";
    mid_req.is_ca = true;
    auto mid = x509::make_certificate(mid_req, mid_key, **root_key, root->get());
    REQUIRE_OK(mid);
    EVP_PKEY& leaf_key = rsa_key(12);
    x509::CertificateRequest leaf_req;
    leaf_req.common_name = host;
    leaf_req.dns_names = {host};
    leaf_req.code_signing = true;
    auto leaf = x509::make_certificate(leaf_req, leaf_key, mid_key, mid->get());
    REQUIRE_OK(leaf);
    ca_pem = x509::certificate_pem(**root);
    chain = {x509::certificate_der(**leaf), x509::certificate_der(**mid),
             x509::certificate_der(**root)};
    auto s = SoftwareSigner::from_private_key(pkcs8_pem(leaf_key), JwsAlg::kRs256);
    REQUIRE_OK(s);
    signer = std::make_unique<SoftwareSigner>(std::move(*s));
  }
};

struct Target {
  std::string kty;
  SecretBytes material;
  Json jwk;
};

Target rsa_target() {
  EVP_PKEY& k = rsa_key(3);
  Json jwk = public_jwk(k);
  jwk["kty"] = "RSA-HSM";
  return {"RSA-HSM", pkcs8_der(k), jwk};
}

Target ec_target() {
  static auto k = make_ec_key();
  Json jwk = public_jwk(*k);
  jwk["kty"] = "EC-HSM";
  return {"EC-HSM", pkcs8_der(*k), jwk};
}

Target aes_target() {
  return {"oct-HSM", random_secret(32), Json{{"kty", "oct-HSM"}}};
}

ReleaseResponseInput input_for(const Target& t, const AuthorityRig& rig, WrapAlg enc,
                               std::string runtime_kid = "TpmEphemeralEncryptionKey") {
  ReleaseResponseInput in;
  in.api_version = "7.4";
  in.request_kid = kKeyUrl;
  in.enc = enc;
  Json key = t.jwk;
  key["kid"] = std::string(kKeyUrl) + "/" + kVersion;
  key["key_ops"] =
      t.kty == "oct-HSM" ? Json::array({"encrypt", "decrypt"}) : Json::array({"sign", "verify"});
  in.key_bundle =
      Json{{"key", key},
           {"attributes", Json{{"enabled", true},
                               {"created", kNow},
                               {"updated", kNow},
                               {"recoveryLevel", "Recoverable+Purgeable"},
                               {"recoverableDays", 90},
                               {"exportable", true}}},
           {"tags", Json::object()},
           {"release_policy",
            Json{{"data", base64url_encode(as_bytes(std::string(R"({"version":"1.0.0"})")))},
                 {"immutable", false}}}};
  in.runtime_kid = std::move(runtime_kid);
  auto wrapped = byok::rsa_aes_wrap(rig.runtime_public().spki_der(), enc, t.material);
  REQUIRE_OK(wrapped);
  in.wrapped_key = *wrapped;
  return in;
}

std::string body_of(const std::string& jws) {
  return dump_json(Json{{"value", jws}});
}

// Re-signs `payload` under the header build_release_response() would use, so a test can change
// the payload and still have a valid signature.
std::string resign(const VaultPki& pki, const Json& payload, Json header_changes = Json::object()) {
  auto leaf = x509::certificate_from_der(pki.chain.front());
  REQUIRE_OK(leaf);
  Bytes t1 = x509::thumbprint_sha1(**leaf);
  std::string kid = hex_encode(t1);
  for (char& c : kid) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  Json x5c = Json::array();
  for (const auto& d : pki.chain) {
    x5c.push_back(base64_encode(d));
  }
  Json header{{"kid", kid},
              {"typ", "JWT"},
              {"x5c", x5c},
              {"x5t", base64url_encode(t1)},
              {"x5t#S256", base64url_encode(x509::thumbprint_sha256(**leaf))}};
  header.merge_patch(header_changes);
  auto jws = sign_compact(header, as_bytes(dump_json(payload)), *pki.signer);
  REQUIRE_OK(jws);
  return *jws;
}

Json payload_of(const std::string& jws) {
  auto parsed = CompactJws::parse(jws, JwsLimits{256 * 1024, 128 * 1024, 256 * 1024, 32});
  REQUIRE_OK(parsed);
  auto p = parsed->payload_object(JwsLimits{256 * 1024, 128 * 1024, 256 * 1024, 32});
  REQUIRE_OK(p);
  return *p;
}

ReleaseTrust trust_of(const VaultPki& pki) {
  ReleaseTrust t;
  t.vault_ca_pem = pki.ca_pem;
  return t;
}

void expect_refused(const Result<VerifiedRelease>& r, ErrorCode code, const char* detail) {
  REQUIRE_FALSE(r.has_value());
  INFO(r.error().describe());
  CHECK(r.error().code() == code);
  CHECK(r.error().detail() == detail);
}

}  // namespace

TEST_CASE("a release response unwraps to the original RSA EC and AES keys", "[skr][enclave]") {
  AuthorityRig rig;
  VaultPki pki;
  for (WrapAlg enc : all_wrap_algs()) {
    for (auto make : {rsa_target, ec_target, aes_target}) {
      Target t = make();
      INFO(t.kty << " " << wrap_alg_name(enc));
      auto jws = build_release_response(input_for(t, rig, enc), *pki.signer, pki.chain);
      REQUIRE_OK(jws);
      auto release = verify_release_response(body_of(*jws), trust_of(pki));
      REQUIRE_OK(release);
      CHECK(release->kty() == t.kty);
      CHECK(release->key_kid() == std::string(kKeyUrl) + "/" + kVersion);
      CHECK(release->key_hsm().kid == "TpmEphemeralEncryptionKey");
      CHECK(release->key_hsm().enc == enc);
      CHECK_FALSE(release->key_jwk().contains("key_hsm"));
      CHECK(release->signer_subject() == kVaultHost);
      auto key =
          unwrap_released_key(*release, rig.runtime_private_der(), "TpmEphemeralEncryptionKey");
      REQUIRE_OK(key);
      CHECK(key->material.ct_equal(t.material));
      CHECK(key->kid == release->key_kid());
      CHECK(key->public_jwk == release->key_jwk());
      if (t.kty == "oct-HSM") {
        CHECK(key->spec == KeySpec{KeyFamily::kAes, 256, std::nullopt});
      } else if (t.kty == "RSA-HSM") {
        CHECK(key->spec.family == KeyFamily::kRsa);
      } else {
        CHECK(key->spec.curve == Curve::kP256);
      }
    }
  }
}

TEST_CASE("the release JWS has Azure's header and payload and OpenSSL verifies it",
          "[skr][enclave]") {
  AuthorityRig rig;
  VaultPki pki;
  ReleaseResponseInput in = input_for(rsa_target(), rig, WrapAlg::kRsaAesKeyWrap);
  in.nonce = "ADE0101";
  auto jws = build_release_response(in, *pki.signer, pki.chain);
  REQUIRE_OK(jws);
  auto parsed = CompactJws::parse(*jws, JwsLimits{256 * 1024, 128 * 1024, 256 * 1024, 32});
  REQUIRE_OK(parsed);
  const Json& h = parsed->header();
  auto leaf = x509::certificate_from_der(pki.chain.front());
  REQUIRE_OK(leaf);
  const Bytes t1 = x509::thumbprint_sha1(**leaf);
  CHECK(h["alg"] == "RS256");
  CHECK(h["typ"] == "JWT");
  CHECK(h["kid"].get<std::string>().size() == 40);
  CHECK(h["kid"].get<std::string>().find_first_of("abcdef") == std::string::npos);
  CHECK(h["x5t"] == base64url_encode(t1));
  CHECK(h["x5t#S256"] == base64url_encode(x509::thumbprint_sha256(**leaf)));
  CHECK(h["x5c"].size() == 3);
  CHECK(h["x5c"][0] == base64_encode(pki.chain.front()));
  const Json p = payload_of(*jws);
  CHECK(p["request"] == Json{{"api-version", "7.4"},
                             {"enc", "CKM_RSA_AES_KEY_WRAP"},
                             {"kid", kKeyUrl},
                             {"nonce", "ADE0101"}});
  CHECK(p["response"]["key"]["attributes"]["exportable"] == true);
  CHECK(p["response"]["key"]["release_policy"]["immutable"] == false);
  auto key_hsm = decode_key_hsm(p["response"]["key"]["key"]["key_hsm"].get<std::string>());
  REQUIRE_OK(key_hsm);
  CHECK(key_hsm->schema_version == "1.0");
  auto raw = base64url_decode(p["response"]["key"]["key"]["key_hsm"].get<std::string>());
  REQUIRE_OK(raw);
  CHECK(std::string(as_chars(*raw)).rfind(R"({"schema_version":"1.0","header":{"kid":)", 0) == 0);
  // Raw OpenSSL, written here: RS256 over the signing input with the x5c leaf's key.
  ossl::UniquePtr<EVP_PKEY> pub(X509_get_pubkey(leaf->get()));
  ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, pub.get(),
                                  nullptr) == 1);
  std::string input(parsed->signing_input());
  CHECK(EVP_DigestVerify(ctx.get(), parsed->signature().data(), parsed->signature().size(),
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  // The nonce is checked when the enclave expects one.
  ReleaseTrust with_nonce = trust_of(pki);
  with_nonce.expected_nonce = "ADE0101";
  REQUIRE_OK(verify_release_response(*jws, with_nonce));
  with_nonce.expected_nonce = "other";
  expect_refused(verify_release_response(*jws, with_nonce), ErrorCode::kAttestationInvalid,
                 "REL-NONCE");
}

TEST_CASE("a release response is refused when its chain leads to another CA", "[skr][enclave]") {
  AuthorityRig rig;
  VaultPki pki;
  VaultPki stranger;
  auto jws = build_release_response(input_for(rsa_target(), rig, WrapAlg::kRsaAesKeyWrap),
                                    *pki.signer, pki.chain);
  REQUIRE_OK(jws);
  expect_refused(verify_release_response(body_of(*jws), trust_of(stranger)),
                 ErrorCode::kIntegrityFailure, "REL-CHAIN");
  // Only the leaf, without the intermediate, does not reach the root either.
  Json p = payload_of(*jws);
  std::string leaf_only =
      resign(pki, p, Json{{"x5c", Json::array({base64_encode(pki.chain.front())})}});
  expect_refused(verify_release_response(leaf_only, trust_of(pki)), ErrorCode::kIntegrityFailure,
                 "REL-CHAIN");
  // The leaf must name the vault host when the enclave asks.
  ReleaseTrust host = trust_of(pki);
  host.vault_host = kVaultHost;
  REQUIRE_OK(verify_release_response(*jws, host));
  host.vault_host = "fabrikam.vault.azure.net";
  expect_refused(verify_release_response(*jws, host), ErrorCode::kIntegrityFailure, "REL-CHAIN");
  // No x5c at all.
  expect_refused(verify_release_response(resign(pki, p, Json{{"x5c", nullptr}}), trust_of(pki)),
                 ErrorCode::kIntegrityFailure, "REL-CHAIN");
}

TEST_CASE("a release response is refused when its payload or header was changed",
          "[skr][enclave]") {
  AuthorityRig rig;
  VaultPki pki;
  auto jws = build_release_response(input_for(rsa_target(), rig, WrapAlg::kRsaAesKeyWrap),
                                    *pki.signer, pki.chain);
  REQUIRE_OK(jws);
  const auto d1 = jws->find('.');
  const auto d2 = jws->find('.', d1 + 1);
  Json p = payload_of(*jws);
  Json changed = p;
  changed["response"]["key"]["attributes"]["exportable"] = false;
  std::string tampered = jws->substr(0, d1 + 1) + b64(dump_json(changed)) + jws->substr(d2);
  expect_refused(verify_release_response(tampered, trust_of(pki)), ErrorCode::kIntegrityFailure,
                 "REL-SIGNATURE");
  // Header fields that do not describe the leaf.
  expect_refused(
      verify_release_response(resign(pki, p, Json{{"kid", std::string(40, 'A')}}), trust_of(pki)),
      ErrorCode::kIntegrityFailure, "REL-HEADER");
  expect_refused(verify_release_response(resign(pki, p, Json{{"x5t", "AAAA"}}), trust_of(pki)),
                 ErrorCode::kIntegrityFailure, "REL-HEADER");
  expect_refused(verify_release_response(resign(pki, p, Json{{"x5t#S256", "AAAA"}}), trust_of(pki)),
                 ErrorCode::kIntegrityFailure, "REL-HEADER");
  // Payload shapes that are signed but wrong.
  Json enc_mismatch = p;
  enc_mismatch["request"]["enc"] = "RSA_AES_KEY_WRAP_256";
  expect_refused(verify_release_response(resign(pki, enc_mismatch), trust_of(pki)),
                 ErrorCode::kFormat, "REL-KEY-HSM");
  Json no_request = p;
  no_request.erase("request");
  expect_refused(verify_release_response(resign(pki, no_request), trust_of(pki)),
                 ErrorCode::kFormat, "REL-PAYLOAD");
  Json with_private = p;
  with_private["response"]["key"]["key"]["d"] = "AQAB";
  expect_refused(verify_release_response(resign(pki, with_private), trust_of(pki)),
                 ErrorCode::kFormat, "REL-PAYLOAD");
  Json bad_key_hsm = p;
  bad_key_hsm["response"]["key"]["key"]["key_hsm"] = b64(R"({"schema_version":"1.0.0"})");
  expect_refused(verify_release_response(resign(pki, bad_key_hsm), trust_of(pki)),
                 ErrorCode::kFormat, "REL-KEY-HSM");
  // Not a JWS body at all.
  expect_refused(verify_release_response(R"({"value": 5})", trust_of(pki)), ErrorCode::kFormat,
                 "REL-PAYLOAD");
}

TEST_CASE("a release wrapped to another runtime key is refused before any unwrap",
          "[skr][enclave]") {
  AuthorityRig rig;
  VaultPki pki;
  auto jws =
      build_release_response(input_for(aes_target(), rig, WrapAlg::kRsaAesKeyWrap, "SomeOtherKey"),
                             *pki.signer, pki.chain);
  REQUIRE_OK(jws);
  auto release = verify_release_response(*jws, trust_of(pki));
  REQUIRE_OK(release);
  auto r = unwrap_released_key(*release, rig.runtime_private_der(), "TpmEphemeralEncryptionKey");
  CHECK_ERROR_CODE(r, ErrorCode::kInvalidArgument);
  CHECK(r.error().detail() == "REL-KID");
  // The right kid with the wrong private key: the one integrity error.
  auto wrong = unwrap_released_key(*release, pkcs8_der(rsa_key(4)), "SomeOtherKey");
  CHECK_ERROR_CODE(wrong, ErrorCode::kIntegrityFailure);
  CHECK(wrong.error().message() == kIntegrityMessage);
}

TEST_CASE("an unwrapped key must belong to the public key in the response", "[skr][enclave]") {
  AuthorityRig rig;
  VaultPki pki;
  Target t = rsa_target();
  t.jwk = public_jwk(rsa_key(4));
  t.jwk["kty"] = "RSA-HSM";
  auto jws =
      build_release_response(input_for(t, rig, WrapAlg::kRsaAesKeyWrap), *pki.signer, pki.chain);
  REQUIRE_OK(jws);
  auto release = verify_release_response(*jws, trust_of(pki));
  REQUIRE_OK(release);
  auto r = unwrap_released_key(*release, rig.runtime_private_der(), "TpmEphemeralEncryptionKey");
  CHECK_ERROR_CODE(r, ErrorCode::kIntegrityFailure);
  CHECK(r.error().detail() == "REL-MISMATCH");
}

TEST_CASE("zero padding after a released PKCS8 key is dropped as SoftHSM writes it",
          "[skr][enclave]") {
  AuthorityRig rig;
  VaultPki pki;
  Target t = ec_target();
  SecretBytes padded = t.material.clone();
  padded.append(Bytes(8 - padded.size() % 8, 0));
  ReleaseResponseInput in = input_for(t, rig, WrapAlg::kRsaAesKeyWrap);
  auto wrapped = byok::rsa_aes_wrap(rig.runtime_public().spki_der(), in.enc, padded);
  REQUIRE_OK(wrapped);
  in.wrapped_key = *wrapped;
  auto jws = build_release_response(in, *pki.signer, pki.chain);
  REQUIRE_OK(jws);
  auto release = verify_release_response(*jws, trust_of(pki));
  REQUIRE_OK(release);
  auto key = unwrap_released_key(*release, rig.runtime_private_der(), "TpmEphemeralEncryptionKey");
  REQUIRE_OK(key);
  CHECK(key->material.ct_equal(t.material));
}

TEST_CASE("build_release_response refuses inputs it cannot sign honestly", "[skr][enclave]") {
  AuthorityRig rig;
  VaultPki pki;
  ReleaseResponseInput in = input_for(rsa_target(), rig, WrapAlg::kRsaAesKeyWrap);
  // A signer that does not hold the leaf's key (VaultPki's leaf key is rsa_key(12)).
  auto stranger = SoftwareSigner::from_private_key(pkcs8_pem(rsa_key(13)), JwsAlg::kRs256);
  REQUIRE_OK(stranger);
  CHECK_ERROR_CODE(build_release_response(in, *stranger, pki.chain), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(build_release_response(in, *pki.signer, {}), ErrorCode::kInvalidArgument);
  ReleaseResponseInput with_d = in;
  with_d.key_bundle["key"]["d"] = "AQAB";
  CHECK_ERROR_CODE(build_release_response(with_d, *pki.signer, pki.chain),
                   ErrorCode::kInvalidArgument);
  ReleaseResponseInput no_kid = in;
  no_kid.runtime_kid.clear();
  CHECK_ERROR_CODE(build_release_response(no_kid, *pki.signer, pki.chain),
                   ErrorCode::kInvalidArgument);
  auto ps = SoftwareSigner::from_private_key(pkcs8_pem(rsa_key(12)), JwsAlg::kPs256);
  REQUIRE_OK(ps);
  CHECK_ERROR_CODE(build_release_response(in, *ps, pki.chain), ErrorCode::kInvalidArgument);
}

TEST_CASE("key_hsm encodes and decodes strictly", "[skr][enclave]") {
  const Bytes ct = random_bytes(300);
  const std::string enc = encode_key_hsm("kid-1", WrapAlg::kRsaAesKeyWrap384, ct);
  auto d = decode_key_hsm(enc);
  REQUIRE_OK(d);
  CHECK(d->kid == "kid-1");
  CHECK(d->enc == WrapAlg::kRsaAesKeyWrap384);
  CHECK(d->ciphertext == ct);
  auto refused = [](const std::string& json) {
    auto r = decode_key_hsm(b64(json));
    CHECK_ERROR_CODE(r, ErrorCode::kFormat);
    CHECK(r.error().detail() == "REL-KEY-HSM");
  };
  refused(
      R"({"schema_version":"1.0.0","header":{"kid":"k","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"AAAA"})");
  refused(
      R"({"schema_version":"1.0","header":{"kid":"k","alg":"RSA-OAEP","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"AAAA"})");
  refused(
      R"({"schema_version":"1.0","header":{"kid":"k","alg":"dir","enc":"A256GCM"},"ciphertext":"AAAA"})");
  refused(
      R"({"schema_version":"1.0","header":{"kid":"","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"AAAA"})");
  refused(
      R"({"schema_version":"1.0","header":{"kid":"k","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"AAAA","x":1})");
  refused(
      R"({"schema_version":"1.0","schema_version":"1.0","header":{"kid":"k","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"AAAA"})");
}
