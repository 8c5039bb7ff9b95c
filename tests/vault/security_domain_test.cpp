// SPDX-License-Identifier: Apache-2.0
// The Managed HSM security domain: the format (vault/security_domain.h) against vectors written
// by Microsoft's azure-cli code (tests/vectors/security-domain), Shamir's scheme, the download
// rules, and the vault's activation, download, exchange key and upload (vault_security_domain.cpp)
// on SoftHSM2 in attached-token mode. The end-to-end check with Microsoft's own client code is
// tests/interop/python_sdk/run_security_domain.sh.
#include <catch2/catch.hpp>

#include <openssl/rsa.h>

#include <fstream>

#include "byok/crypto.h"
#include "core/encoding.h"
#include "core/random.h"
#include "core/x509.h"
#include "tests/support/softhsm.h"
#include "tests/vault/vault_rig.h"
#include "vault/security_domain.h"

using namespace keyport;
namespace sd = keyport::vault::sd;

namespace {

Json load_sd_vectors() {
  std::ifstream in(test::vector_path("security-domain/azure-cli-2.45.json"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto j = parse_json_strict(text, JsonLimits{1 << 20, 16});
  REQUIRE_OK(j);
  return *j;
}

SecretBytes secret_hex(const std::string& hex) {
  auto b = hex_decode(hex);
  REQUIRE_OK(b);
  return SecretBytes(*b);
}

std::string hex_of(const SecretBytes& s) {
  return hex_encode(s.reveal(SecretAccess::unsafe()));
}

// A share holder: an RSA key and a self-signed certificate, as `openssl req -x509` makes them.
struct Holder {
  ossl::UniquePtr<EVP_PKEY> key;
  std::string cert_pem;
  Bytes cert_der;
  SecretBytes private_der;
};

Holder make_holder(const std::string& name, unsigned bits = 2048) {
  Holder h;
  h.key.reset(EVP_RSA_gen(bits));  // OpenSSL directly: x509::generate_rsa_key refuses < 2048
  REQUIRE(h.key);
  x509::CertificateRequest req;
  req.common_name = name;
  auto cert = x509::make_certificate(req, *h.key, *h.key, nullptr);
  REQUIRE_OK(cert);
  h.cert_pem = x509::certificate_pem(**cert);
  h.cert_der = x509::certificate_der(**cert);
  auto der = x509::private_key_der(*h.key);
  REQUIRE_OK(der);
  h.private_der = std::move(*der);
  return h;
}

std::vector<Holder> make_holders(std::size_t n) {
  std::vector<Holder> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(make_holder("holder" + std::to_string(i)));
  }
  return out;
}

std::vector<std::string> pems_of(const std::vector<Holder>& hs) {
  std::vector<std::string> out;
  for (const auto& h : hs) {
    out.push_back(h.cert_pem);
  }
  return out;
}

sd::WrappingKey wrapping_key(const Holder& h) {
  return sd::WrappingKey{h.cert_der, h.private_der.clone()};
}

// The master key of a restore blob, opened in software with the exchange key's private key.
SecretBytes master_of(const sd::RestoreBlob& blob, const Holder& exchange) {
  auto m = sd::jwe_decrypt_rsa(blob.wrapped_key, [&](std::span<const std::uint8_t> ek) {
    return byok::rsa_oaep_decrypt(exchange.private_der, OaepHash::kSha256, ek);
  });
  REQUIRE_OK(m);
  return std::move(*m);
}

std::string flip_in_jwe_ciphertext(const std::string& compact) {
  auto parts = std::vector<std::string>();
  std::size_t pos = 0;
  while (true) {
    const auto dot = compact.find('.', pos);
    parts.push_back(compact.substr(pos, dot == std::string::npos ? dot : dot - pos));
    if (dot == std::string::npos) {
      break;
    }
    pos = dot + 1;
  }
  REQUIRE(parts.size() == 5);
  auto ct = base64url_decode(parts[3]);
  REQUIRE_OK(ct);
  (*ct)[ct->size() / 2] ^= 0x01;
  parts[3] = base64url_encode(*ct);
  return parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[3] + "." + parts[4];
}

void require_activation(test::VaultRig& rig) {
  rig.close();
  auto c = vault::VaultConfig::load(rig.dir);
  REQUIRE_OK(c);
  c->activation_required = true;
  REQUIRE_OK(c->save(rig.dir, true));
  rig.open();
}

}  // namespace

TEST_CASE("security domain: SP 800-108 and the JWEs agree with azure-cli's vectors",
          "[vault][security-domain]") {
  const Json v = load_sd_vectors();
  REQUIRE(v["kdf"].size() >= 3);
  for (const auto& k : v["kdf"]) {
    auto out = sd::kdf_sp800_108(secret_hex(k["key_hex"]), k["label"].get<std::string>(),
                                 k["context"].get<std::string>(), k["bits"].get<std::size_t>());
    REQUIRE_OK(out);
    CHECK(hex_of(*out) == k["output_hex"].get<std::string>());
  }
  REQUIRE(v["jwe_dir"].size() >= 3);
  for (const auto& j : v["jwe_dir"]) {
    const SecretBytes key = secret_hex(j["key_hex"]);
    auto plain = sd::jwe_decrypt_dir(key, j["compact"].get<std::string>());
    REQUIRE_OK(plain);
    CHECK(hex_of(*plain) == j["plaintext_hex"].get<std::string>());
    // One altered ciphertext byte, a wrong key, a truncated token: the one integrity error.
    auto altered = sd::jwe_decrypt_dir(key, flip_in_jwe_ciphertext(j["compact"]));
    REQUIRE_FALSE(altered);
    CHECK(altered.error().code() == ErrorCode::kIntegrityFailure);
    auto wrong = sd::jwe_decrypt_dir(random_secret(64), j["compact"].get<std::string>());
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().code() == ErrorCode::kIntegrityFailure);
    const std::string cut = j["compact"].get<std::string>().substr(0, 20);
    CHECK(sd::jwe_decrypt_dir(key, cut).error().code() == ErrorCode::kIntegrityFailure);
  }
  auto pkey = x509::private_key_from(
      SecretBytes::from_string(v["rsa_private_key_pkcs8_pem"].get<std::string>()));
  REQUIRE_OK(pkey);
  auto der = x509::private_key_der(**pkey);
  REQUIRE_OK(der);
  REQUIRE(v["jwe_rsa"].size() >= 2);
  for (const auto& j : v["jwe_rsa"]) {
    auto plain =
        sd::jwe_decrypt_rsa(j["compact"].get<std::string>(), [&](std::span<const std::uint8_t> ek) {
          return byok::rsa_oaep_decrypt(*der, OaepHash::kSha256, ek);
        });
    REQUIRE_OK(plain);
    CHECK(hex_of(*plain) == j["plaintext_hex"].get<std::string>());
    auto altered = sd::jwe_decrypt_rsa(flip_in_jwe_ciphertext(j["compact"]),
                                       [&](std::span<const std::uint8_t> ek) {
                                         return byok::rsa_oaep_decrypt(*der, OaepHash::kSha256, ek);
                                       });
    REQUIRE_FALSE(altered);
    CHECK(altered.error().code() == ErrorCode::kIntegrityFailure);
  }
}

TEST_CASE("security domain: Shamir over GF(257) opens with any quorum and with nothing less",
          "[vault][security-domain]") {
  const SecretBytes secret = random_secret(32);
  auto shares = sd::shamir_split(secret, 5, 3);
  REQUIRE_OK(shares);
  REQUIRE(shares->size() == 5);
  for (unsigned x = 1; x <= 5; ++x) {
    for (std::uint16_t w : (*shares)[x - 1]) {
      REQUIRE((w >> 9) == x);  // (x << 9) | f(x), f(x) < 257, as azure-cli's Share.from_uint16
      REQUIRE((w & 0x1ffu) < 257);
    }
  }
  int subsets = 0;
  for (unsigned a = 0; a < 5; ++a) {
    for (unsigned b = a + 1; b < 5; ++b) {
      for (unsigned c = b + 1; c < 5; ++c) {
        std::vector<std::vector<std::uint16_t>> pick{(*shares)[c], (*shares)[a], (*shares)[b]};
        auto back = sd::shamir_combine(pick, 3);
        REQUIRE_OK(back);
        CHECK(back->ct_equal(secret));
        ++subsets;
      }
    }
  }
  CHECK(subsets == 10);
  std::vector<std::vector<std::uint16_t>> two{(*shares)[0], (*shares)[1]};
  CHECK(sd::shamir_combine(two, 3).error().code() == ErrorCode::kIntegrityFailure);
  std::vector<std::vector<std::uint16_t>> twice{(*shares)[0], (*shares)[0], (*shares)[1]};
  CHECK(sd::shamir_combine(twice, 3).error().code() == ErrorCode::kIntegrityFailure);
  // Two shares of a 2-of-2 split: every single share alone says nothing, both give it back.
  auto pair = sd::shamir_split(secret, 2, 2);
  REQUIRE_OK(pair);
  auto both = sd::shamir_combine(*pair, 2);
  REQUIRE_OK(both);
  CHECK(both->ct_equal(secret));
  CHECK_FALSE(sd::shamir_split(secret, 3, 1));
  CHECK_FALSE(sd::shamir_split(secret, 2, 3));
}

TEST_CASE("security domain: the file and the restore blob round trip with software keys",
          "[vault][security-domain]") {
  const auto holders = make_holders(4);  // three share holders and an HSM's exchange key
  std::vector<std::string> pems = pems_of(holders);
  pems.pop_back();
  auto body = sd::download_request_json(pems, 2);
  REQUIRE_OK(body);
  CHECK((*body)["certificates"][0]["alg"] == "RSA-OAEP-256");
  CHECK((*body)["certificates"][0].contains("x5t#S256"));
  auto request = sd::parse_download_request(*body);
  REQUIRE_OK(request);
  REQUIRE(request->recipients.size() == 3);

  std::vector<sd::Datum> data;
  data.push_back(sd::Datum{"domain", SecretBytes::from_string("the domain's keys")});
  auto text = sd::make_security_domain(*request, data);
  REQUIRE_OK(text);
  auto file = sd::parse_security_domain(*text);
  REQUIRE_OK(file);
  CHECK(file->required == 2);
  CHECK(file->shares.size() == 3);

  const Holder& exchange = holders[3];
  std::vector<sd::WrappingKey> keys;
  keys.push_back(wrapping_key(holders[2]));
  keys.push_back(wrapping_key(holders[0]));
  auto blob_text = sd::make_restore_blob(*file, keys, exchange.cert_der);
  REQUIRE_OK(blob_text);
  auto blob = sd::parse_restore_blob(*blob_text);
  REQUIRE_OK(blob);
  CHECK(blob->x5t_256 == sd::thumbprint_s256(exchange.cert_der));
  auto opened = sd::open_restore_blob(*blob, master_of(*blob, exchange));
  REQUIRE_OK(opened);
  REQUIRE(opened->size() == 1);
  CHECK((*opened)[0].tag == "domain");
  CHECK((*opened)[0].plaintext.ct_equal(SecretBytes::from_string("the domain's keys")));
  // Under another master key nothing opens.
  CHECK(sd::open_restore_blob(*blob, random_secret(32)).error().code() ==
        ErrorCode::kIntegrityFailure);

  // One key of a quorum of two, or keys of nobody's share: refused before anything is made.
  std::vector<sd::WrappingKey> one;
  one.push_back(wrapping_key(holders[1]));
  auto short_of = sd::make_restore_blob(*file, one, exchange.cert_der);
  REQUIRE_FALSE(short_of);
  CHECK(short_of.error().message().find("Insufficient shares") != std::string::npos);
  std::vector<sd::WrappingKey> strangers;
  strangers.push_back(wrapping_key(exchange));
  strangers.push_back(wrapping_key(holders[1]));
  CHECK_FALSE(sd::make_restore_blob(*file, strangers, exchange.cert_der));
  std::vector<sd::WrappingKey> twice;
  twice.push_back(wrapping_key(holders[0]));
  twice.push_back(wrapping_key(holders[0]));
  auto repeated = sd::make_restore_blob(*file, twice, exchange.cert_der);
  REQUIRE_FALSE(repeated);
  CHECK(repeated.error().message().find("given twice") != std::string::npos);
}

TEST_CASE("security domain: a download request is held to Azure's rules",
          "[vault][security-domain]") {
  const auto holders = make_holders(4);
  const auto pems = pems_of(holders);
  auto refused = [&](std::vector<std::string> p, unsigned quorum, const std::string& says) {
    auto r = sd::download_request_json(p, quorum);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ErrorCode::kInvalidArgument);
    INFO(r.error().message());
    CHECK(r.error().message().find(says) != std::string::npos);
  };
  refused({pems[0], pems[1]}, 2, "3 to 10");
  refused({pems[0], pems[1], pems[2]}, 1, "2 to 10");
  refused({pems[0], pems[1], pems[2]}, 4, "at most the number");
  refused({pems[0], pems[1], pems[1]}, 2, "repeats a certificate");
  {
    // One key certified twice would let one private key meet a quorum of two alone.
    x509::CertificateRequest req;
    req.common_name = "holder0 again";
    auto again = x509::make_certificate(req, *holders[0].key, *holders[0].key, nullptr);
    REQUIRE_OK(again);
    refused({pems[0], pems[1], x509::certificate_pem(**again)}, 2, "or its key");
  }
  std::vector<std::string> eleven(11, pems[0]);
  refused(eleven, 2, "3 to 10");
  refused({pems[0], pems[1], "not a certificate"}, 2, "PEM");

  // Checked again on the HSM's side: a JWK whose thumbprint or modulus lies, a small key.
  auto body = sd::download_request_json(std::vector<std::string>{pems[0], pems[1], pems[2]}, 2);
  REQUIRE_OK(body);
  Json lie = *body;
  lie["certificates"][1]["x5t#S256"] = sd::thumbprint_s256(holders[3].cert_der);
  CHECK(sd::parse_download_request(lie).error().message().find("x5t#S256") != std::string::npos);
  lie = *body;
  lie["certificates"][2]["n"] = (*body)["certificates"][0]["n"];
  CHECK(sd::parse_download_request(lie).error().message().find("\"n\"") != std::string::npos);
  lie = *body;
  lie["certificates"][0].erase("x5c");
  CHECK(sd::parse_download_request(lie).error().message().find("x5c") != std::string::npos);
  lie = *body;
  lie.erase("required");
  CHECK_FALSE(sd::parse_download_request(lie));
  const Holder small = make_holder("small", 1024);
  auto with_small =
      sd::download_request_json(std::vector<std::string>{pems[0], pems[1], small.cert_pem}, 2);
  REQUIRE_FALSE(with_small);
  CHECK(with_small.error().message().find("RSA >= 2048") != std::string::npos);
}

TEST_CASE(
    "a Managed HSM that requires activation refuses everything until its security domain "
    "is downloaded, then stays activated",
    "[vault][security-domain]") {
  test::VaultRig hsm(vault::Flavor::kManagedHsm, "sd-activate");
  require_activation(hsm);
  CHECK_FALSE(hsm->activated());
  test::expect_kv_error(hsm->create_key(hsm.ctx, "k", Json{{"kty", "EC-HSM"}}), "Forbidden", 403);
  test::expect_kv_error(hsm->get_random_bytes(hsm.ctx, Json{{"count", 8}}), "Forbidden", 403);
  CHECK_FALSE(hsm->require_activated());
  test::expect_kv_error(hsm->security_domain_status(hsm.ctx, true), "NotFound", 404);

  const auto holders = make_holders(3);
  auto body = sd::download_request_json(pems_of(holders), 2);
  REQUIRE_OK(body);
  Json two = *body;
  two["certificates"].erase(2);
  test::expect_kv_error(hsm->security_domain_download(hsm.ctx, two), "BadParameter", 400);
  CHECK_FALSE(hsm->activated());

  auto answer = hsm->security_domain_download(hsm.ctx, *body);
  REQUIRE_OK(answer);
  CHECK(hsm->activated());
  auto file = sd::parse_security_domain((*answer)["value"].get<std::string>());
  REQUIRE_OK(file);
  CHECK(file->shares.size() == 3);
  CHECK(hsm->backup_domain().size() == 36);
  auto status = hsm->security_domain_status(hsm.ctx, false);
  REQUIRE_OK(status);
  CHECK((*status)["status"] == "Success");
  REQUIRE_OK(hsm->create_key(hsm.ctx, "k", Json{{"kty", "EC-HSM"}}));
  test::expect_kv_error(hsm->security_domain_download(hsm.ctx, *body), "Conflict", 409);
  test::expect_kv_error(hsm->security_domain_transfer_key(hsm.ctx), "Conflict", 409);
  CHECK(test::audit_rows(*hsm, "HSMSecurityDomain_Download", "success") == 1);

  // Activation is kept in vault.json: a reopened HSM is activated, with the same domain.
  const std::string domain = hsm->backup_domain();
  hsm.close();
  auto c = vault::VaultConfig::load(hsm.dir);
  REQUIRE_OK(c);
  CHECK_FALSE(c->activation_required);
  CHECK(c->backup_domain == domain);
  hsm.open();
  CHECK(hsm->activated());
  REQUIRE_OK(hsm->get_key(hsm.ctx, "k", ""));

  // A Key Vault has no security domain.
  test::VaultRig kv(vault::Flavor::kKeyVault, "sd-keyvault");
  test::expect_kv_error(kv->security_domain_download(kv.ctx, *body), "BadParameter", 400);
}

TEST_CASE(
    "security-domain upload: the HSM's exchange key opens a restore blob, altered or "
    "foreign blobs change nothing, and the new HSM restores the old one's backups",
    "[vault][security-domain]") {
  const auto holders = make_holders(3);
  auto body = sd::download_request_json(pems_of(holders), 2);
  REQUIRE_OK(body);
  std::string sd_text;
  std::string domain;
  std::string backup;
  {
    test::VaultRig a(vault::Flavor::kManagedHsm, "sd-upload-a");
    require_activation(a);
    auto answer = a->security_domain_download(a.ctx, *body);
    REQUIRE_OK(answer);
    sd_text = (*answer)["value"].get<std::string>();
    domain = a->backup_domain();
    REQUIRE_OK(a->create_key(a.ctx, "moved", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}));
    auto b = a->backup_key(a.ctx, "moved");
    REQUIRE_OK(b);
    backup = (*b)["value"].get<std::string>();
    // A new HSM has no keys of that domain: the test token is shared, so drop them from it.
    a.close();
    for (const char* role : {"wrap", "mac"}) {
      p11::Template m;
      m.token(true).label("kp:backup-domain:" + domain + ":" + role);
      auto found = a.session.find_objects(m, 4);
      REQUIRE_OK(found);
      REQUIRE(found->size() == 1);
      REQUIRE_OK(a.session.destroy_object(found->front()));
    }
  }

  test::VaultRig b(vault::Flavor::kManagedHsm, "sd-upload-b");
  require_activation(b);
  auto tk = b->security_domain_transfer_key(b.ctx);
  REQUIRE_OK(tk);
  CHECK((*tk)["key_format"] == "jwk");
  auto jwk = parse_json_strict((*tk)["transfer_key"].get<std::string>());
  REQUIRE_OK(jwk);
  CHECK((*jwk)["alg"] == "RSA-OAEP-256");
  auto cert_der = base64_decode((*jwk)["x5c"][0].get<std::string>());
  REQUIRE_OK(cert_der);
  CHECK((*jwk)["x5t#S256"] == sd::thumbprint_s256(*cert_der));

  auto file = sd::parse_security_domain(sd_text);
  REQUIRE_OK(file);
  std::vector<sd::WrappingKey> keys;
  keys.push_back(wrapping_key(holders[1]));
  keys.push_back(wrapping_key(holders[2]));
  auto blob_text = sd::make_restore_blob(*file, keys, *cert_der);
  REQUIRE_OK(blob_text);
  auto blob = parse_json_strict(*blob_text);
  REQUIRE_OK(blob);

  // Refused, with nothing changed: an altered data item, an altered wrapped key, another exchange
  // key's thumbprint, not a blob.
  Json altered = *blob;
  altered["EncData"]["data"][0]["compact_jwe"] =
      flip_in_jwe_ciphertext(altered["EncData"]["data"][0]["compact_jwe"]);
  Json altered_key = *blob;
  altered_key["WrappedKey"]["enc_key"] =
      flip_in_jwe_ciphertext(altered_key["WrappedKey"]["enc_key"]);
  Json foreign = *blob;
  foreign["WrappedKey"]["x5t_256"] = sd::thumbprint_s256(holders[0].cert_der);
  for (const Json& bad : {altered, altered_key, foreign}) {
    test::expect_kv_error(b->security_domain_upload(b.ctx, Json{{"value", dump_json(bad)}}),
                          "BadParameter", 400);
  }
  test::expect_kv_error(b->security_domain_upload(b.ctx, Json{{"value", "{}"}}), "BadParameter",
                        400);
  test::expect_kv_error(b->security_domain_upload(b.ctx, Json{{"value", 7}}), "BadParameter", 400);
  CHECK_FALSE(b->activated());
  auto failed = b->security_domain_status(b.ctx, true);
  REQUIRE_OK(failed);
  CHECK((*failed)["status"] == "Failed");
  test::expect_kv_error(b->restore_key(b.ctx, Json{{"value", backup}}), "Forbidden", 403);
  // The two altered blobs got one message.
  {
    auto r1 = b->security_domain_upload(b.ctx, Json{{"value", dump_json(altered)}});
    auto r2 = b->security_domain_upload(b.ctx, Json{{"value", dump_json(altered_key)}});
    REQUIRE_FALSE(r1);
    REQUIRE_FALSE(r2);
    CHECK(r1.error().message() == r2.error().message());
  }

  auto ok = b->security_domain_upload(b.ctx, Json{{"value", *blob_text}});
  REQUIRE_OK(ok);
  CHECK((*ok)["status"] == "Success");
  CHECK(b->activated());
  CHECK(b->backup_domain() == domain);
  // The domain came with the security domain: the first HSM's backup restores here.
  auto restored = b->restore_key(b.ctx, Json{{"value", backup}});
  REQUIRE_OK(restored);
  CHECK((*restored)["key"]["kty"] == "RSA-HSM");
  test::expect_kv_error(b->security_domain_upload(b.ctx, Json{{"value", *blob_text}}), "Conflict",
                        409);
  CHECK(test::audit_rows(*b, "HSMSecurityDomain_Upload", "success") == 1);
}
