// SPDX-License-Identifier: Apache-2.0
// Refusals over HTTPS, each answered as Key Vault would (status, error code, the challenge header)
// with the store unchanged: BYOK imports Key Vault refuses, and requests refused at the HTTP,
// api-version, authentication, permission and body layers.
#include <catch2/catch.hpp>

#include <set>
#include <sstream>

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

// A server on 127.0.0.1 names its own origin (--challenge-resource self, the default for hosts
// outside Azure's domains).
std::string own_challenge(const std::string& url) {
  return "Bearer authorization=\"https://login.microsoftonline.com/"
         "00000000-0000-0000-0000-000000000000\", resource=\"" +
         url + "\"";
}
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
        CHECK(a.header("WWW-Authenticate") == own_challenge(rig.url()));
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
        CHECK(a.header("WWW-Authenticate") == own_challenge(rig.url()));
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
  // BackupKey and RestoreKey need the access file's "backup" and "restore" permissions: a caller
  // without them gets 403 before anything is read.
  {
    test::Answer backup = reader_http.post("/keys/signer/backup", Json::object());
    INFO(backup.describe());
    CHECK(backup.status == 403);
    CHECK(backup.json["error"]["message"].get<std::string>().find("keys backup permission") !=
          std::string::npos);
    CHECK(reader_http.post("/keys/restore", Json::object()).status == 403);
  }

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

  // Every keys api-version Azure published works (the folder names of the data-plane
  // specification, stable and preview; Debian's python3-azure and azure-cli send 7.4-preview.1).
  CHECK(vault::supported_api_versions() ==
        std::vector<std::string>{
            "2015-06-01", "2016-10-01", "7.0", "7.1", "7.2-preview", "7.2", "7.3-preview", "7.3",
            "7.4-preview.1", "7.4", "7.5-preview.1", "7.5", "7.6-preview.1", "7.6-preview.2", "7.6",
            "2025-06-01-preview", "2025-07-01-preview", "2025-07-01", "2026-01-01-preview"});
  for (const std::string& v : vault::supported_api_versions()) {
    INFO(v);
    CHECK(http.send(test::Call{"GET", "/keys/k1?api-version=" + v, std::nullopt}).status == 200);
  }
  for (const std::string v : {"6.0", "2016-10-02", "7.7", "7.5-preview", "7.1-preview",
                              "2025-07-02", "2025-07-01 ", "7", "latest"}) {
    INFO("refused api-version '" << v << "'");
    test::Answer a = http.send(test::Call{
        "GET", "/keys/k1?api-version=" + httplib::detail::encode_query_param(v), std::nullopt});
    CHECK(a.status == 400);
    CHECK(a.code() == "BadParameter");
    CHECK(a.json["error"]["message"].get<std::string>().find(
              "is not recognized. Consider using the latest supported version (2025-07-01)") !=
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
  // BackupKey and RestoreKey over HTTPS (vault/vault_backup.cpp): a blob that is not one is
  // BadParameter; a backup of an existing key answers {"value": blob}.
  test::Answer restore = http.post("/keys/restore", Json{{"value", "x"}});
  CHECK(restore.status == 400);
  CHECK(restore.code() == "BadParameter");
  test::Answer backup = http.post("/keys/k1/backup", Json::object());
  INFO(backup.describe());
  CHECK(backup.status == 200);
  CHECK(backup.json["value"].is_string());
  CHECK(http.post("/keys/nope/backup", Json::object()).code() == "KeyNotFound");
  CHECK(http.get("/keys/k1/rotationpolicy").status == 200);  // implemented (docs/rotation.md)

  // With --challenge-resource azure, Managed HSM's challenge names the Managed HSM resource.
  rig.stop();
  rig.options.challenge_resource = "azure";
  rig.start();
  http = rig.client();
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

TEST_CASE("features newer than the requested api-version are refused as Azure refuses them",
          "[vault][rest]") {
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-api-versions");
  test::RestClient http = rig.client();
  REQUIRE(http.post("/keys/k1/create", Json{{"kty", "RSA"}, {"key_size", 2048}}).status == 200);
  auto send = [&](const std::string& method, const std::string& path, const std::string& api,
                  std::optional<Json> body = std::nullopt) {
    std::optional<std::string> text;
    if (body) {
      text = dump_json(*body);
    }
    return http.send(test::Call{method, path + "?api-version=" + api, text});
  };
  auto refused = [](const test::Answer& a, const std::string& what) {
    INFO(a.status << " " << a.json.dump());
    CHECK(a.status == 400);
    CHECK(a.code() == "BadParameter");
    CHECK(a.json["error"]["message"].get<std::string>().find(what) != std::string::npos);
  };
  const Json policy{{"lifetimeActions", Json::array()}, {"attributes", {{"expiryTime", "P2Y"}}}};

  // Rotation and release arrived in 7.3-preview; below it the operation is refused by name.
  for (const std::string api : {"7.2", "7.2-preview", "7.0", "2016-10-01"}) {
    INFO(api);
    refused(send("POST", "/keys/k1/rotate", api),
            "RotateKey is not available in api-version " + api);
    refused(send("GET", "/keys/k1/rotationpolicy", api), "GetKeyRotationPolicy");
    refused(send("PUT", "/keys/k1/rotationpolicy", api, policy), "UpdateKeyRotationPolicy");
    refused(send("POST", "/keys/k1/release", api, Json{{"target", "x"}}),
            "ReleaseKey is not available in api-version " + api +
                "; it was introduced in api-version 7.3-preview");
    // Exportable keys and release policies too, in create, import and update bodies.
    refused(send("POST", "/keys/e1/create", api,
                 Json{{"kty", "RSA"}, {"attributes", {{"exportable", true}}}}),
            "'attributes.exportable' is not available in api-version " + api);
    refused(send("POST", "/keys/e1/create", api,
                 Json{{"kty", "RSA"}, {"release_policy", {{"data", "e30"}}}}),
            "'release_policy' is not available");
    refused(send("PATCH", "/keys/k1", api, Json{{"release_policy", {{"data", "e30"}}}}),
            "'release_policy' is not available");
    // What the version has still works.
    CHECK(send("GET", "/keys/k1", api).status == 200);
    CHECK(send("POST", "/keys/e2/create", api, Json{{"kty", "RSA"}}).status == 200);
  }
  CHECK(http.get("/keys/e1").status == 404);  // nothing refused was created
  for (const std::string api : {"7.3-preview", "7.3", "7.6", "2025-07-01"}) {
    INFO(api);
    CHECK(send("GET", "/keys/k1/rotationpolicy", api).status == 200);
  }
  // Soft delete (deletedkeys) arrived in 2016-10-01.
  refused(send("GET", "/deletedkeys", "2015-06-01"),
          "GetDeletedKeys is not available in api-version 2015-06-01");
  CHECK(send("GET", "/deletedkeys", "2016-10-01").status == 200);
  // An unknown version is refused before the operation is looked at.
  refused(send("POST", "/keys/k1/rotate", "7.1-preview"), "is not recognized");
}

TEST_CASE("every answer carries its own x-ms-request-id, and the access log cannot be forged",
          "[vault][rest]") {
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-request-id");
  test::RestClient http = rig.client();
  test::Answer a = http.get("/keys");
  test::Answer b = http.get("/keys/missing");
  test::Call no_token{"GET", "/keys?api-version=7.5", std::nullopt};
  no_token.with_token = false;
  test::Answer c = http.send(no_token);
  REQUIRE(a.status == 200);
  REQUIRE(b.status == 404);
  REQUIRE(c.status == 401);
  std::set<std::string> ids;
  for (const test::Answer* x : {&a, &b, &c}) {
    const std::string id = x->header("x-ms-request-id");
    INFO(x->describe() << " id=" << id);
    // A version-4 UUID, lower-case hex.
    CHECK(id.size() == 36);
    CHECK(id[8] == '-');
    CHECK(id[14] == '4');
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);
    CHECK(x->header("x-ms-keyvault-service-version").rfind("keyport-", 0) == 0);
    ids.insert(id);
  }
  CHECK(ids.size() == 3);

  // A path and an api-version with an encoded newline, ESC and NUL: one line each, escaped.
  const std::string forged =
      "/keys/x%0A2026-01-01T00:00:00Z%20127.0.0.1%20caller=admin%20DELETE%20/keys/victim%20204"
      "%201.0ms%20op=PurgeDeletedKey%1B[2J%00";
  test::Answer d = http.send(test::Call{"GET", forged + "?api-version=7.5%1B[1m", std::nullopt});
  CHECK(d.status != 0);
  rig.stop();
  const std::string log = test::slurp(rig.access_log());
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  // Four requests, four lines, each starting with the server's own timestamp.
  CHECK(lines.size() == 4);
  for (const std::string& line : lines) {
    INFO(line);
    CHECK(line.rfind("20", 0) == 0);
    for (char ch : line) {
      const auto u = static_cast<unsigned char>(ch);
      CHECK((u >= 0x20 && u < 0x7f));
    }
  }
  CHECK(log.find("/keys/x\\x0a2026-01-01T00:00:00Z 127.0.0.1 caller=admin DELETE") !=
        std::string::npos);
  CHECK(log.find("?api-version=7.5\\x1b[1m 404") != std::string::npos);
  CHECK(log.find("\\x1b[2J\\x00") != std::string::npos);
  // Each line names the request id its answer carried.
  for (const std::string& id : ids) {
    CHECK(log.find("rid=" + id) != std::string::npos);
  }
}

TEST_CASE("a missing or broken access file refuses every token until it loads again",
          "[vault][rest]") {
  const std::string admin = "admin-token-0123456789abcdef";
  const std::string removed = "removed-token-0123456789abcdef";
  auto access_with = [&](bool with_removed) {
    Json tokens{{admin, {{"name", "admin"}, {"permissions", Json::array({"get", "list"})}}}};
    if (with_removed) {
      tokens[removed] = {{"name", "removed"}, {"permissions", Json::array({"get", "list"})}};
    }
    return Json{{"tokens", tokens}};
  };
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-access-broken", access_with(true));
  WriteOptions replace;
  replace.overwrite = true;
  replace.mode = 0600;
  const std::filesystem::path file = rig.dir / "access.json";
  test::RestClient admin_http = rig.client(admin);
  test::RestClient removed_http = rig.client(removed);
  REQUIRE(removed_http.get("/keys").status == 200);

  auto refused_all = [&](const std::string& why) {
    INFO(why);
    for (test::RestClient* http : {&admin_http, &removed_http}) {
      test::Answer a = http->get("/keys");
      INFO(a.describe());
      CHECK(a.status == 401);
      CHECK(a.json["error"]["message"].get<std::string>().find("access file does not load") !=
            std::string::npos);
    }
  };
  // Deleted: nobody gets in, the removed token least of all.
  std::filesystem::remove(file);
  refused_all("deleted");
  // Written back without the removed token: the admin gets in, the removed token does not.
  REQUIRE_OK(write_file_atomic(file, dump_json(access_with(false), 2), replace));
  CHECK(admin_http.get("/keys").status == 200);
  CHECK(removed_http.get("/keys").status == 401);
  // Edited into something that does not parse: closed again, for both.
  REQUIRE_OK(write_file_atomic(file, std::string("{\"tokens\": {"), replace));
  refused_all("unparsable");
  REQUIRE_OK(write_file_atomic(file, dump_json(access_with(false), 2), replace));
  CHECK(admin_http.get("/keys").status == 200);
  CHECK(removed_http.get("/keys").status == 401);
}

TEST_CASE("a request body with a NUL byte is refused whole, not read up to the NUL",
          "[vault][rest]") {
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-nul-body");
  test::RestClient http = rig.client();
  const std::string body(R"({"kty":"EC"})"
                         "\0"
                         R"({"kty":"RSA","key_size":2048})",
                         42);
  test::Answer a = http.send(test::Call{"POST", "/keys/nul/create?api-version=7.5", body});
  INFO(a.describe());
  CHECK(a.status == 400);
  CHECK(a.code() == "BadParameter");
  CHECK(a.json["error"]["message"].get<std::string>().find("NUL") != std::string::npos);
  CHECK(http.get("/keys/nul").status == 404);
}

TEST_CASE(
    "the vault's TLS 1.2 offers forward-secret AEAD suites only (checked with openssl s_client)",
    "[vault][rest]") {
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-tls-suites");
  const std::string url = rig.url();
  const std::string host_port = url.substr(url.find("://") + 3);
  auto connect = [&](const std::string& args) {
    std::string out;
    const int rc = test::run_command("openssl s_client -connect " + host_port + " -CAfile " +
                                         rig.ca_file().string() + " " + args + " </dev/null",
                                     &out);
    INFO(args << "\n" << out);
    return rc;
  };
  CHECK(connect("-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256") == 0);
  CHECK(connect("-tls1_3") == 0);
  // CBC with SHA-1 or SHA-2 MACs, and static RSA key exchange: refused.
  for (const char* suite :
       {"ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA", "AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384", "AES256-GCM-SHA384"}) {
    CHECK(connect(std::string("-tls1_2 -cipher ") + suite) != 0);
  }
}
