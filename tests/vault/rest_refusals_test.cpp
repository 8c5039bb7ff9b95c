// SPDX-License-Identifier: Apache-2.0
// Refusals over HTTPS, each answered as Key Vault would (status, error code, the challenge header)
// with the store unchanged: BYOK imports Key Vault refuses, and requests refused at the HTTP,
// api-version, authentication, permission and body layers.
#include <catch2/catch.hpp>

#include "byok/crypto.h"
#include "core/file_io.h"
#include "core/random.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/vault/rest_rig.h"
#include "tests/vault/vault_rig.h"

using namespace keyport;
namespace oracle = keyport::test::oracle;

namespace {

const std::string kKeyVaultChallenge =
    "Bearer authorization=\"https://login.microsoftonline.com/"
    "00000000-0000-0000-0000-000000000000\", resource=\"https://vault.azure.net\"";
const std::string kManagedHsmChallenge =
    "Bearer authorization=\"https://login.microsoftonline.com/"
    "00000000-0000-0000-0000-000000000000\", resource=\"https://managedhsm.azure.net\"";

// What a refused request must not change, seen over HTTPS and in the token.
struct Snapshot {
  std::size_t token_objects = 0;
  Json keys;
  Json versions;
};

Snapshot snapshot(test::RestRig& rig, test::RestClient& http, const std::string& name) {
  Snapshot s;
  s.token_objects = rig.token_objects();
  s.keys = http.get("/keys").json;
  s.versions = http.get("/keys/" + name + "/versions").json;
  return s;
}

void refused(test::RestRig& rig, test::RestClient& http, const std::string& what,
             const std::string& name, const std::function<test::Answer()>& request, int status,
             const std::string& code) {
  INFO(what);
  Snapshot before = snapshot(rig, http, name);
  test::Answer a = request();
  INFO(a.describe());
  CHECK(a.status == status);
  CHECK(a.code() == code);
  CHECK(a.json["error"]["message"].is_string());
  CHECK(a.header("Content-Type").rfind("application/json", 0) == 0);
  Snapshot after = snapshot(rig, http, name);
  CHECK(after.token_objects == before.token_objects);
  CHECK(after.keys == before.keys);
  CHECK(after.versions == before.versions);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos)) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

}  // namespace

TEST_CASE("BYOK imports Key Vault refuses are refused over HTTPS with the store unchanged",
          "[vault][rest]") {
  test::Onprem onprem;
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-refuse");
  test::RestClient http = rig.client();
  test::Answer kek = http.post("/keys/KEK/create", test::kek_params(2048));
  REQUIRE(kek.status == 200);
  const std::string kid = kek.json["key"]["kid"].get<std::string>();
  const byok::PublicKey kek_pub = test::public_key_of(kek.json);
  auto ec = onprem.generate(*parse_key_spec("ec-p256"), "rr-ec");
  const std::string good = onprem.export_to(ec, kek_pub, kid).to_json();
  REQUIRE(http.put("/keys/target", test::byok_body(good, "EC-HSM", "P-256")).status == 200);

  refused(
      rig, http, "wrong kid: a KEK version that does not exist", "target",
      [&] {
        std::string other = kid.substr(0, kid.rfind('/') + 1) + std::string(32, 'a');
        return http.put("/keys/target",
                        test::byok_body(replace_all(good, kid, other), "EC-HSM", "P-256"));
      },
      400, "BadParameter");
  refused(
      rig, http, "wrong kid: another vault's host", "target",
      [&] {
        std::string other = replace_all(kid, rig.url(), "https://other.vault.azure.net");
        auto file = onprem.export_to(ec, kek_pub, other);
        return http.put("/keys/target", test::byok_body(file.to_json(), "EC-HSM", "P-256"));
      },
      400, "BadParameter");
  refused(
      rig, http, "unversioned kid", "target",
      [&] {
        std::string unversioned = kid.substr(0, kid.rfind('/'));
        return http.put("/keys/target",
                        test::byok_body(replace_all(good, kid, unversioned), "EC-HSM", "P-256"));
      },
      400, "BadParameter");
  {
    test::Answer plain = http.post("/keys/not-a-kek/create", Json{{"kty", "RSA-HSM"}});
    REQUIRE(plain.status == 200);
    refused(
        rig, http, "KEK without import", "target",
        [&] {
          auto file = onprem.export_to(ec, test::public_key_of(plain.json),
                                       plain.json["key"]["kid"].get<std::string>());
          return http.put("/keys/target", test::byok_body(file.to_json(), "EC-HSM", "P-256"));
        },
        400, "BadParameter");
  }
  refused(
      rig, http, "tampered ciphertext", "target",
      [&] {
        auto file = onprem.export_to(ec, kek_pub, kid);
        file.ciphertext[256 + 5] ^= 0x40;
        return http.put("/keys/target", test::byok_body(file.to_json(), "EC-HSM", "P-256"));
      },
      400, "BadParameter");
  refused(
      rig, http, "RSA_AES_KEY_WRAP_256 on SoftHSM", "target",
      [&] {
        auto k = oracle::ec_keygen("prime256v1");
        auto blob = byok::rsa_aes_wrap(kek_pub.spki_der(), WrapAlg::kRsaAesKeyWrap256,
                                       SecretBytes(oracle::pkcs8_der(k.get())));
        REQUIRE_OK(blob);
        byok::ByokFile f;
        f.kid = kid;
        f.enc = WrapAlg::kRsaAesKeyWrap256;
        f.ciphertext = *blob;
        f.generator = "test";
        test::Answer a = http.put("/keys/target", test::byok_body(f.to_json(), "EC-HSM", "P-256"));
        CHECK(a.json["error"]["message"].get<std::string>().find("RSA_AES_KEY_WRAP_256") !=
              std::string::npos);
        return a;
      },
      400, "BadParameter");
  refused(
      rig, http, "EC blob declared RSA", "target",
      [&] { return http.put("/keys/target", test::byok_body(good, "RSA-HSM")); }, 400,
      "BadParameter");
  refused(
      rig, http, "duplicate JSON members", "target",
      [&] {
        const std::string body = dump_json(test::byok_body(good, "EC-HSM", "P-256"));
        // {"key":{...},"key":{...}}: two readers could see two different keys.
        const std::string dup =
            "{" + body.substr(1, body.size() - 2) + "," + body.substr(1, body.size() - 2) + "}";
        return http.send(test::Call{"PUT", "/keys/target?api-version=7.5", dup});
      },
      400, "BadParameter");
  refused(
      rig, http, "wrong content type", "target",
      [&] {
        test::Call c{"PUT", "/keys/target?api-version=7.5",
                     dump_json(test::byok_body(good, "EC-HSM", "P-256"))};
        c.content_type = "text/plain";
        return http.send(c);
      },
      400, "BadParameter");
  refused(
      rig, http, "no body", "target",
      [&] {
        return http.send(test::Call{"PUT", "/keys/target?api-version=7.5", std::string()});
      },
      400, "BadParameter");
  refused(
      rig, http, "a body that is not an object", "target",
      [&] {
        return http.send(test::Call{"PUT", "/keys/target?api-version=7.5", "[1,2]"});
      },
      400, "BadParameter");
  refused(
      rig, http, "oversize body", "target",
      [&] {
        Json big = test::byok_body(good, "EC-HSM", "P-256");
        big["tags"] = Json{{"padding", std::string(1200 * 1024, 'x')}};
        return http.put("/keys/target", big);
      },
      413, "RequestEntityTooLarge");
  refused(
      rig, http, "unknown api-version", "target",
      [&] {
        test::Call c{"PUT", "/keys/target?api-version=7.9",
                     dump_json(test::byok_body(good, "EC-HSM", "P-256"))};
        test::Answer a = http.send(c);
        CHECK(a.json["error"]["message"] ==
              "The specified version (7.9) is not recognized. Consider using the latest supported "
              "version (2025-07-01).");
        return a;
      },
      400, "BadParameter");
  refused(
      rig, http, "no api-version", "target",
      [&] {
        return http.send(
            test::Call{"PUT", "/keys/target", dump_json(test::byok_body(good, "EC-HSM", "P-256"))});
      },
      400, "BadParameter");
  refused(
      rig, http, "no token", "target",
      [&] {
        test::Call c{"PUT", "/keys/target?api-version=7.5",
                     dump_json(test::byok_body(good, "EC-HSM", "P-256"))};
        c.with_token = false;
        test::Answer a = http.send(c);
        CHECK(a.header("WWW-Authenticate") == kKeyVaultChallenge);
        CHECK(a.json["error"]["message"] == "AKV10000: Request is missing a Bearer or PoP token.");
        return a;
      },
      401, "Unauthorized");
  refused(
      rig, http, "wrong token", "target",
      [&] {
        test::Call c{"PUT", "/keys/target?api-version=7.5",
                     dump_json(test::byok_body(good, "EC-HSM", "P-256"))};
        c.token = "x" + rig.admin_token().substr(1);
        test::Answer a = http.send(c);
        CHECK(a.header("WWW-Authenticate") == kKeyVaultChallenge);
        return a;
      },
      401, "Unauthorized");
  refused(
      rig, http, "another scheme than Bearer", "target",
      [&] {
        test::Call c{"GET", "/keys/target?api-version=7.5", std::nullopt};
        c.with_token = false;
        c.headers.emplace("Authorization", "Basic " + rig.admin_token());
        return http.send(c);
      },
      401, "Unauthorized");
  // The store still answers with the right token after all that.
  test::Answer still = http.get("/keys/target");
  CHECK(still.status == 200);

  // One access log line per request, none holding a secret: not the bearer token, not key_hsm
  // (the whole .byok, base64url), not the tampered or the good blob.
  rig.stop();
  const std::string log = test::slurp(rig.access_log());
  std::size_t lines = 0;
  for (char c : log) {
    lines += c == '\n' ? 1 : 0;
  }
  CHECK(lines >= 25u);
  CHECK(log.find(rig.admin_token()) == std::string::npos);
  CHECK(log.find(rig.admin_token().substr(0, 12)) == std::string::npos);
  const std::string key_hsm = test::byok_body(good, "EC-HSM", "P-256")["key"]["key_hsm"];
  CHECK(log.find(key_hsm.substr(0, 24)) == std::string::npos);
  CHECK(log.find(key_hsm.substr(key_hsm.size() / 2, 24)) == std::string::npos);
  CHECK(log.find("key_hsm") == std::string::npos);
  CHECK(log.find("caller=admin PUT /keys/target?api-version=7.5 400") != std::string::npos);
  CHECK(log.find("caller=- PUT /keys/target?api-version=7.5 401") != std::string::npos);
  CHECK(log.find(" 413 ") != std::string::npos);
}

TEST_CASE("a token without a permission gets 403 naming it and nothing changes", "[vault][rest]") {
  const std::string admin = "admin-token-0123456789abcdef";
  const std::string reader = "reader-token-0123456789abcdef";
  Json access{{"tokens",
               {{admin,
                 {{"name", "admin"},
                  {"permissions", Json::array({"create", "get", "list", "sign", "import"})}}},
                {reader, {{"name", "reader"}, {"permissions", Json::array({"get", "LIST"})}}}}}};
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-perm", access);
  CHECK(rig.admin_token().empty());  // nothing generated when the access file exists
  test::RestClient admin_http = rig.client(admin);
  test::RestClient reader_http = rig.client(reader);
  REQUIRE(admin_http.post("/keys/signer/create", Json{{"kty", "EC-HSM"}}).status == 200);
  CHECK(reader_http.get("/keys/signer").status == 200);
  CHECK(reader_http.get("/keys").status == 200);  // "LIST": permissions are case-insensitive

  Bytes digest = test::digest_of("ES256", random_bytes(10));
  refused(
      rig, admin_http, "sign without the sign permission", "signer",
      [&] {
        test::Answer a = reader_http.post(
            "/keys/signer/sign", Json{{"alg", "ES256"}, {"value", base64url_encode(digest)}});
        CHECK(a.json["error"]["message"].get<std::string>().find(
                  "'name=reader' does not have keys sign permission") != std::string::npos);
        CHECK(a.json["error"]["innererror"]["code"] == "ForbiddenByPolicy");
        return a;
      },
      403, "Forbidden");
  refused(
      rig, admin_http, "create without the create permission", "other",
      [&] {
        return reader_http.post("/keys/other/create", Json{{"kty", "EC-HSM"}});
      },
      403, "Forbidden");
  refused(
      rig, admin_http, "delete without the delete permission", "signer",
      [&] {
        test::Answer a = admin_http.del("/keys/signer");
        CHECK(a.json["error"]["message"].get<std::string>().find("keys delete permission") !=
              std::string::npos);
        return a;
      },
      403, "Forbidden");
  // The permission check comes after authentication: a wrong token is still 401.
  test::Call c{"GET", "/keys/signer?api-version=7.5", std::nullopt};
  c.token = "nobody-0123456789abcdef";
  CHECK(reader_http.send(c).status == 401);
  // The access log names callers by name and never holds a token.
  rig.stop();
  const std::string log = test::slurp(rig.access_log());
  CHECK(log.find("caller=reader") != std::string::npos);
  CHECK(log.find("caller=admin") != std::string::npos);
  CHECK(log.find(" 403 ") != std::string::npos);
  CHECK(log.find(admin) == std::string::npos);
  CHECK(log.find(reader) == std::string::npos);
  CHECK(log.find("nobody-0123456789abcdef") == std::string::npos);
}

TEST_CASE("routes follow Key Vault paths with 404 405 and 501 where Key Vault differs",
          "[vault][rest]") {
  test::RestRig rig(vault::Flavor::kManagedHsm, "rest-routes");
  test::RestClient http = rig.client();
  REQUIRE(http.post("/keys/k1/create", Json{{"kty", "EC-HSM"}, {"crv", "P-384"}}).status == 200);
  test::Answer latest = http.get("/keys/k1");
  REQUIRE(latest.status == 200);
  const std::string version = test::version_of(latest.json);

  // Paths: case-insensitive collection and operation names, optional version, trailing slash.
  CHECK(http.get("/KEYS/k1").status == 200);
  CHECK(http.get("/keys/k1/").status == 200);
  CHECK(http.get("/keys/k1/" + version).status == 200);
  CHECK(http.get("/keys/k1/" + version + "/").status == 200);
  CHECK(http.get("/Keys/k1/versions").status == 200);
  CHECK(http.get("/keys/").status == 200);
  Bytes digest = test::digest_of("ES384", random_bytes(10));
  Json sign{{"alg", "ES384"}, {"value", base64url_encode(digest)}};
  CHECK(http.post("/keys/k1/sign", sign).status == 200);
  CHECK(http.post("/keys/k1//sign", sign).status == 200);
  CHECK(http.post("/keys/k1/" + version + "/Sign", sign).status == 200);
  CHECK(http.patch("/keys/k1/", Json{{"tags", {{"a", "b"}}}}).json["tags"]["a"] == "b");

  // Every accepted api-version works; the SDK's 2025-07-01 included. Exactly these.
  CHECK(vault::supported_api_versions() ==
        std::vector<std::string>{"7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01"});
  for (const std::string& v : vault::supported_api_versions()) {
    INFO(v);
    CHECK(http.send(test::Call{"GET", "/keys/k1?api-version=" + v, std::nullopt}).status == 200);
  }
  for (const std::string v : {"6.0", "2016-10-01", "7.7", "7.5-preview", "7.6-preview.1",
                              "2025-07-02", "2025-07-01 ", "7", "latest"}) {
    INFO("refused api-version '" << v << "'");
    test::Answer a = http.send(test::Call{
        "GET", "/keys/k1?api-version=" + httplib::detail::encode_query_param(v), std::nullopt});
    CHECK(a.status == 400);
    CHECK(a.code() == "BadParameter");
    CHECK(a.json["error"]["message"].get<std::string>().find("is not recognized") !=
          std::string::npos);
  }

  // Unknown paths and methods.
  test::Answer none = http.get("/secrets/s1");
  CHECK(none.status == 404);
  CHECK(none.code() == "NotFound");
  CHECK(http.get("/keys/k1/" + version + "/nonsense").status == 404);
  test::Answer method = http.send(test::Call{"POST", "/keys/k1?api-version=7.5", "{}"});
  CHECK(method.status == 405);
  CHECK(method.code() == "MethodNotAllowed");
  CHECK(method.header("Allow") == "GET, PUT, PATCH, DELETE");
  CHECK(http.send(test::Call{"PUT", "/keys/k1/create?api-version=7.5", "{}"}).header("Allow") ==
        "POST");
  // Unknown key and version: Key Vault's 404 KeyNotFound.
  test::Answer missing = http.get("/keys/nope");
  CHECK(missing.status == 404);
  CHECK(missing.code() == "KeyNotFound");
  CHECK(http.get("/keys/k1/" + std::string(32, '0')).code() == "KeyNotFound");
  // Real Key Vault routes the simulator does not implement.
  test::Answer restore = http.post("/keys/restore", Json{{"value", "x"}});
  CHECK(restore.status == 501);
  CHECK(restore.code() == "NotImplemented");
  CHECK(http.post("/keys/k1/backup", Json::object()).status == 501);
  CHECK(http.get("/keys/k1/rotationpolicy").status == 200);  // implemented (docs/rotation.md)

  // Managed HSM's challenge names the Managed HSM resource.
  test::Call anonymous{"GET", "/keys?api-version=7.5", std::nullopt};
  anonymous.with_token = false;
  test::Answer challenge = http.send(anonymous);
  CHECK(challenge.status == 401);
  CHECK(challenge.header("WWW-Authenticate") == kManagedHsmChallenge);

  // Soft-delete, recover, delete again, purge (204, no body).
  CHECK(http.del("/keys/k1").status == 200);
  CHECK(http.get("/deletedkeys/k1").status == 200);
  CHECK(http.get("/deletedkeys").json["value"].size() == 1u);
  CHECK(http.post("/keys/k1/create", Json{{"kty", "EC-HSM"}}).status == 409);
  CHECK(http.send(test::Call{"POST", "/deletedkeys/k1/recover?api-version=7.5", std::nullopt})
            .status == 200);
  CHECK(http.del("/keys/k1").status == 200);
  test::Answer purged = http.del("/deletedkeys/k1");
  CHECK(purged.status == 204);
  CHECK(purged.body.empty());
  CHECK(http.get("/deletedkeys/k1").status == 404);
}

TEST_CASE("a vault server stopped and restarted on the same folder keeps its keys and imports",
          "[vault][rest]") {
  test::Onprem onprem;
  test::RestRig rig(vault::Flavor::kManagedHsm, "rest-restart");
  test::RestClient http = rig.client();
  test::Answer kek = http.post("/keys/KEK/create", test::kek_params(2048));
  REQUIRE(kek.status == 200);
  auto aes = onprem.generate(*parse_key_spec("aes-128"), "rs-aes");
  auto ec = onprem.generate(*parse_key_spec("ec-p521"), "rs-ec");
  auto file = onprem.export_to(aes, test::public_key_of(kek.json),
                               kek.json["key"]["kid"].get<std::string>());
  REQUIRE(http.put("/keys/before", test::byok_body(file.to_json(), "oct-HSM")).status == 200);
  const std::string first_url = rig.url();
  const std::size_t objects = rig.token_objects();

  rig.stop();  // in the middle of the run
  CHECK_FALSE(std::filesystem::exists(rig.dir / "server.json"));
  rig.start();
  CHECK(std::filesystem::exists(rig.dir / "server.json"));
  CHECK(rig.token_objects() == objects);
  test::RestClient again = rig.client();
  // The same token, the same keys (the base URL follows the new port).
  test::Answer before = again.get("/keys/before");
  INFO(before.describe());
  REQUIRE(before.status == 200);
  CHECK(before.json["key"]["kid"].get<std::string>().rfind(rig.url() + "/keys/before/", 0) == 0);
  test::Answer kek2 = again.get("/keys/KEK");
  REQUIRE(kek2.status == 200);
  CHECK(test::version_of(kek2.json) == test::version_of(kek.json));
  // An import after the restart, to the kid the server now gives.
  auto file2 = onprem.export_to(ec, test::public_key_of(kek2.json),
                                kek2.json["key"]["kid"].get<std::string>());
  test::Answer after =
      again.put("/keys/after", test::byok_body(file2.to_json(), "EC-HSM", "P-521"));
  INFO(after.describe());
  CHECK(after.status == 200);
  // A file made for the old port names another host now: refused like any foreign kid.
  if (first_url != rig.url()) {
    CHECK(again.put("/keys/old", test::byok_body(file.to_json(), "oct-HSM")).status == 400);
  }
  CHECK(again.get("/keys").json["value"].size() == 3u);
}

TEST_CASE("keyport vault serve runs as a process until SIGTERM and cleans up", "[vault][rest]") {
  const auto dir = test::make_scratch_subdir("serve-proc");
  test::ServerProcess proc(
      dir / "vault", {"--flavor", "key-vault", "--access-log", (dir / "access.log").string()});
  proc.start();
  const std::string token = proc.token();
  CHECK(token.size() >= 40);
  // The start-up lines say where the CA and the access file are, never the token.
  const std::string out = proc.output();
  CHECK(out.find("NODE_EXTRA_CA_CERTS=" + proc.ca_file().string()) != std::string::npos);
  CHECK(out.find("admin.token") != std::string::npos);
  CHECK(out.find(token) == std::string::npos);
  // Secrets are 0600.
  for (const char* f : {"access.json", "admin.token", "tls/ca-key.pem", "tls/server-key.pem"}) {
    INFO(f);
    auto perms = std::filesystem::status(dir / "vault" / f).permissions();
    CHECK((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
          std::filesystem::perms::none);
  }
  Json info = *parse_json_strict(test::slurp(dir / "vault" / "server.json"));
  CHECK(info["pid"] == proc.pid());
  CHECK(info["url"] == proc.url());

  test::RestClient http = proc.client();
  test::Answer created = http.post("/keys/k/create", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}});
  INFO(created.describe());
  REQUIRE(created.status == 200);
  CHECK(created.json["key"]["kid"].get<std::string>().rfind(proc.url() + "/keys/k/", 0) == 0);

  CHECK(proc.stop() == 0);
  CHECK_FALSE(std::filesystem::exists(dir / "vault" / "server.json"));
  const std::string log = test::slurp(dir / "access.log");
  CHECK(log.find("caller=admin POST /keys/k/create?api-version=7.5 200") != std::string::npos);
  CHECK(log.find(token) == std::string::npos);

  // Second start: same CA, same token, same key; the server certificate is reused.
  const std::string ca_before = test::slurp(proc.ca_file());
  const std::string cert_before = test::slurp(dir / "vault" / "tls" / "server.pem");
  proc.start();
  CHECK(test::slurp(proc.ca_file()) == ca_before);
  CHECK(test::slurp(dir / "vault" / "tls" / "server.pem") == cert_before);
  CHECK(proc.token() == token);
  test::RestClient http2 = proc.client();
  CHECK(http2.get("/keys/k").status == 200);
  CHECK(proc.stop() == 0);
}
