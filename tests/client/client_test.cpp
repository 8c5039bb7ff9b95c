// SPDX-License-Identifier: Apache-2.0
// vault::Client: the same operations through both transports against one vault folder. The
// folder is served by `keyport vault serve` (a child process) for the HTTPS client; once the server
// has stopped, the same folder is opened in this process for the in-process client, and the
// answers must agree: same bundles, lists (paged), policies and errors, and each side's signatures,
// ciphertexts and wrapped keys work on the other side.
#include <catch2/catch.hpp>
#include <ctime>

#include "client/client.h"
#include "client/folder.h"
#include "client/signing.h"
#include "core/digest.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/random.h"
#include "tests/support/support.h"
#include "tests/vault/rest_rig.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

vault::Client https_client(const test::ServerProcess& server,
                           std::size_t max_response = 16u << 20) {
  vault::HttpsOptions o;
  o.url = server.url();
  o.token = SecretBytes::from_string(server.token());
  o.ca_file = server.ca_file().string();
  o.max_response_bytes = max_response;
  auto c = vault::Client::connect(std::move(o));
  REQUIRE_OK(c);
  return std::move(*c);
}

vault::Client folder_client(const fs::path& dir) {
  auto c = vault::Client::open_folder(dir);
  REQUIRE_OK(c);
  return std::move(*c);
}

// What both clients are asked, in the same order.
struct Snapshot {
  Json keys, versions, deleted, ec, rsa, policy, report;
  std::string missing_detail;
  ErrorCode missing_code = ErrorCode::kInternal;
  std::string bad_detail;
  ErrorCode bad_code = ErrorCode::kInternal;
};

Json value_of(Result<Json> r) {
  REQUIRE_OK(r);
  return std::move(*r);
}

Snapshot snapshot(vault::Client& c) {
  Snapshot s;
  s.keys = value_of(c.list_keys(1));  // one key a page: every nextLink followed
  s.versions = value_of(c.list_versions("ec", 1));
  s.deleted = value_of(c.list_deleted_keys());
  s.ec = value_of(c.get_key("ec"));
  s.rsa = value_of(c.get_key("rsa"));
  s.policy = value_of(c.get_rotation_policy("rsa"));
  s.report = value_of(c.platform_report());
  auto missing = c.get_key("nope");
  REQUIRE_FALSE(missing);
  s.missing_code = missing.error().code();
  s.missing_detail = missing.error().detail();
  auto bad = c.create_key("bad", Json{{"kty", "RSA-HSM"}, {"key_size", 1000}});
  REQUIRE_FALSE(bad);
  s.bad_code = bad.error().code();
  s.bad_detail = bad.error().detail();
  return s;
}

std::string value_field(const Json& r) {
  return r.value("value", "");
}

}  // namespace

TEST_CASE("vault::Client over HTTPS and in-process on the same folder agree", "[vault][client]") {
  const auto test_start = static_cast<std::int64_t>(std::time(nullptr));
  const fs::path dir = test::make_scratch_subdir("client") / "vault";
  test::ServerProcess server(dir, {"--flavor", "managed-hsm"});
  server.start();

  const Bytes digest = sha256(as_bytes(std::string("pay 100 to Bob")));
  const Bytes dek = random_bytes(32);
  std::string ec_sig_https, ciphertext_https, wrapped_https;
  Snapshot over_https;
  {
    vault::Client c = https_client(server);
    REQUIRE_OK(c.create_key("ec", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}}));
    REQUIRE_OK(c.create_key("rsa", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}));
    REQUIRE_OK(c.create_key("aes", Json{{"kty", "oct-HSM"}, {"key_size", 256}}));
    REQUIRE_OK(c.create_key("gone", Json{{"kty", "oct-HSM"}, {"key_size", 128}}));
    REQUIRE_OK(c.delete_key("gone"));
    REQUIRE_OK(c.rotate_key("ec"));
    Json tagged = value_of(c.update_key("rsa", "", Json{{"tags", {{"app", "payroll"}}}}));
    CHECK(tagged["tags"]["app"] == "payroll");
    REQUIRE_OK(c.set_rotation_policy(
        "rsa",
        Json{{"lifetimeActions",
              {{{"trigger", {{"timeAfterCreate", "P90D"}}}, {"action", {{"type", "Rotate"}}}}}},
             {"attributes", Json::object()}}));
    ec_sig_https = value_field(value_of(c.sign("ec", "", "ES256", digest)));
    ciphertext_https = value_field(value_of(c.key_operation(vault::KeyOperation::kEncrypt, "rsa",
                                                            "", "RSA-OAEP-256", SecretBytes(dek))));
    wrapped_https = value_field(value_of(
        c.key_operation(vault::KeyOperation::kWrapKey, "aes", "", "A256KW", SecretBytes(dek))));
    over_https = snapshot(c);

    // An answer larger than the client allows is refused, not read whole.
    vault::Client small = https_client(server, 64);
    auto refused = small.list_keys();
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code() == ErrorCode::kFormat);
    CHECK(refused.error().message().find("larger than 64 bytes") != std::string::npos);
  }
  REQUIRE(server.stop() == 0);

  std::string ec_sig_local, ciphertext_local;
  {
    vault::Client c = folder_client(dir);
    const Snapshot in_process = snapshot(c);
    CHECK(in_process.keys == over_https.keys);
    CHECK(over_https.keys.size() == 3u);  // ec, rsa, aes over three pages; gone is deleted
    CHECK(in_process.versions == over_https.versions);
    CHECK(over_https.versions.size() == 2u);
    CHECK(in_process.deleted == over_https.deleted);
    CHECK(over_https.deleted.size() == 1u);
    CHECK(in_process.ec == over_https.ec);
    CHECK(in_process.rsa == over_https.rsa);
    CHECK(in_process.policy == over_https.policy);
    // The report says when it was made: the two are taken a moment apart, so each "now" must
    // lie in the test's run and in order; everything else must agree.
    Json report_local = in_process.report, report_https = over_https.report;
    REQUIRE(report_local.contains("now"));
    REQUIRE(report_https.contains("now"));
    const auto now_local = report_local["now"].get<std::int64_t>();
    const auto now_https = report_https["now"].get<std::int64_t>();
    CHECK(test_start <= now_https);
    CHECK(now_https <= now_local);
    CHECK(now_local <= static_cast<std::int64_t>(std::time(nullptr)));
    report_local.erase("now");
    report_https.erase("now");
    CHECK(report_local == report_https);
    CHECK(in_process.missing_code == ErrorCode::kNotFound);
    CHECK(over_https.missing_code == ErrorCode::kNotFound);
    CHECK(in_process.missing_detail == over_https.missing_detail);
    CHECK(in_process.missing_detail == "KeyNotFound");
    CHECK(in_process.bad_code == over_https.bad_code);
    CHECK(in_process.bad_detail == over_https.bad_detail);
    CHECK(over_https.bad_code == ErrorCode::kInvalidArgument);

    // What one transport made, the other uses.
    Json ok = value_of(c.verify("ec", "", "ES256", digest, base64url_decode(ec_sig_https).value()));
    CHECK(ok["value"] == true);
    Json plain = value_of(c.key_operation(vault::KeyOperation::kDecrypt, "rsa", "", "RSA-OAEP-256",
                                          SecretBytes(base64url_decode(ciphertext_https).value())));
    CHECK(base64url_decode(value_field(plain)).value() == dek);
    Json unwrapped =
        value_of(c.key_operation(vault::KeyOperation::kUnwrapKey, "aes", "", "A256KW",
                                 SecretBytes(base64url_decode(wrapped_https).value())));
    CHECK(base64url_decode(value_field(unwrapped)).value() == dek);

    ec_sig_local = value_field(value_of(c.sign("ec", "", "ES256", digest)));
    ciphertext_local = value_field(value_of(c.key_operation(vault::KeyOperation::kEncrypt, "rsa",
                                                            "", "RSA-OAEP-256", SecretBytes(dek))));
    REQUIRE_OK(c.recover_deleted_key("gone"));
    REQUIRE_OK(c.delete_key("aes"));
    REQUIRE_OK(c.purge_deleted_key("aes"));
  }

  server.start();
  {
    vault::Client c = https_client(server);
    Json ok = value_of(c.verify("ec", "", "ES256", digest, base64url_decode(ec_sig_local).value()));
    CHECK(ok["value"] == true);
    Bytes tampered = base64url_decode(ec_sig_local).value();
    tampered[5] ^= 1;
    CHECK(value_of(c.verify("ec", "", "ES256", digest, tampered))["value"] == false);
    Json plain = value_of(c.key_operation(vault::KeyOperation::kDecrypt, "rsa", "", "RSA-OAEP-256",
                                          SecretBytes(base64url_decode(ciphertext_local).value())));
    CHECK(base64url_decode(value_field(plain)).value() == dek);
    CHECK_ERROR_CODE(c.get_key("aes"), ErrorCode::kNotFound);  // purged in-process
    CHECK_ERROR_CODE(c.get_deleted_key("aes"), ErrorCode::kNotFound);
    REQUIRE_OK(c.get_key("gone"));  // recovered in-process
    CHECK(value_of(c.list_keys(2)).size() == 3u);
  }
  CHECK(server.stop() == 0);
}

TEST_CASE("vault::Client refuses what it cannot send, before anything is sent", "[vault][client]") {
  auto connect = [](std::string url, std::string token, std::string ca = {}) {
    vault::HttpsOptions o;
    o.url = std::move(url);
    o.token = SecretBytes::from_string(token);
    o.ca_file = std::move(ca);
    return vault::Client::connect(std::move(o));
  };
  CHECK_ERROR_CODE(connect("http://127.0.0.1:8443", "t"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(connect("https://127.0.0.1:8443/keys", "t"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(connect("https://127.0.0.1:99999", "t"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(connect("https://", "t"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(connect("https://127.0.0.1:8443", ""), ErrorCode::kAuth);
  CHECK_ERROR_CODE(connect("https://127.0.0.1:8443", "t", "/nonexistent/ca.pem"),
                   ErrorCode::kNotFound);
  REQUIRE_OK(connect("https://127.0.0.1:8443/", "t"));
  REQUIRE_OK(connect("https://[::1]:8443", "t"));

  // Nothing listens there: a transport failure (kIo), after the name checks that come first.
  auto c = connect("https://127.0.0.1:1", "t");
  REQUIRE_OK(c);
  CHECK_ERROR_CODE(c->create_key("a/b", Json{{"kty", "EC-HSM"}}), ErrorCode::kInvalidArgument);
  // Every per-key call checks the name (and version) too, so that "app/versions" or "app?x" can
  // never reach another route of the vault.
  CHECK_ERROR_CODE(c->get_key("app/versions"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(c->get_key("app", "v1/sign"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(c->get_key("app?api-version=1"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(c->delete_key("../deletedkeys/x"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(c->list_versions("a b", std::nullopt), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(c->get_deleted_key("x/recover"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(c->recover_deleted_key(""), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(c->rotate_key("app/rotate"), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(c->get_key("a"), ErrorCode::kIo);
  CHECK_ERROR_CODE(c->get_key("a", "0123456789abcdef0123456789abcdef"), ErrorCode::kIo);
}

TEST_CASE("vault::error_from_response maps HTTP statuses to error categories", "[vault][client]") {
  const std::string body = R"({"error":{"code":"KeyNotFound","message":"no such key"}})";
  Error e = vault::error_from_response(404, body);
  CHECK(e.code() == ErrorCode::kNotFound);
  CHECK(e.detail() == "KeyNotFound");
  CHECK(e.message().find("no such key") != std::string::npos);
  CHECK(vault::error_from_response(400, "{}").code() == ErrorCode::kInvalidArgument);
  CHECK(vault::error_from_response(400, "{}").detail() == "HTTP400");
  CHECK(vault::error_from_response(401, "").code() == ErrorCode::kAuth);
  CHECK(vault::error_from_response(403, "").code() == ErrorCode::kPermissionDenied);
  CHECK(vault::error_from_response(409, "").code() == ErrorCode::kAlreadyExists);
  CHECK(vault::error_from_response(413, "").code() == ErrorCode::kInvalidArgument);
  CHECK(vault::error_from_response(500, "not json").code() == ErrorCode::kUnavailable);
  CHECK(vault::error_from_response(503, "").code() == ErrorCode::kUnavailable);
}

TEST_CASE("vault::Client signing helpers use the vault's algorithm table", "[vault][client]") {
  const std::string text = "abc";
  const Bytes data(text.begin(), text.end());
  CHECK(vault::digest_for_sign("ES256", data).value().size() == 32u);
  CHECK(vault::digest_for_sign("PS384", data).value().size() == 48u);
  CHECK(vault::digest_for_sign("RS512", data).value().size() == 64u);
  CHECK(vault::digest_for_sign("ES256K", data).value().size() == 32u);
  CHECK(hex_encode(vault::digest_for_sign("RS256", data).value()) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK_ERROR_CODE(vault::digest_for_sign("HS256", data), ErrorCode::kInvalidArgument);
  CHECK(vault::is_ecdsa_alg("ES512"));
  CHECK_FALSE(vault::is_ecdsa_alg("PS256"));

  // r||s <-> DER round trip at each curve's field size; leading zeros survive.
  for (const auto& [alg, field] : {std::pair<std::string, std::size_t>{"ES256", 32},
                                   {"ES384", 48},
                                   {"ES512", 66},
                                   {"ES256K", 32}}) {
    Bytes raw = random_bytes(2 * field);
    raw[0] = 0;
    raw[field] = 0;
    raw[field + 1] = 0;
    raw[1] |= 1;
    raw[field + 2] |= 1;
    auto der = vault::ecdsa_raw_to_der_for_alg(alg, raw);
    REQUIRE_OK(der);
    auto back = vault::ecdsa_der_to_raw_for_alg(alg, *der);
    REQUIRE_OK(back);
    CHECK(*back == raw);
    CHECK_ERROR_CODE(vault::ecdsa_raw_to_der_for_alg(alg, Bytes(raw.begin(), raw.end() - 1)),
                     ErrorCode::kFormat);
    Bytes trailing = *der;
    trailing.push_back(0);
    CHECK_ERROR_CODE(vault::ecdsa_der_to_raw_for_alg(alg, trailing), ErrorCode::kFormat);
  }
}

TEST_CASE("vault::byok_import_body takes the key type in any case, with or without -HSM",
          "[vault][client]") {
  auto file = read_file(test::source_dir() / "tests" / "vectors" / "byok-lint" /
                        "good-key-vault-rsa2048.byok");
  REQUIRE_OK(file);
  for (const std::string kty : {"EC", "ec", "Ec", "EC-HSM", "ec-hsm"}) {
    byok::ImportRequestOptions o;
    o.name = "app-ec";
    o.kty = kty;
    o.curve = "P-256";
    o.hsm = true;
    auto body = vault::byok_import_body(*file, o);
    REQUIRE_OK(body);
    auto j = parse_json_strict(*body);
    REQUIRE_OK(j);
    CHECK((*j)["key"]["kty"] == "EC-HSM");
    CHECK((*j)["key"]["crv"] == "P-256");
    CHECK((*j)["hsm"] == true);
    CHECK((*j)["key"]["key_hsm"] == base64url_encode(*file));
  }
  byok::ImportRequestOptions bad;
  bad.name = "x";
  bad.kty = "DSA";
  CHECK_ERROR_CODE(vault::byok_import_body(*file, bad), ErrorCode::kInvalidArgument);
  bad.kty = "EC";  // no curve
  CHECK_ERROR_CODE(vault::byok_import_body(*file, bad), ErrorCode::kInvalidArgument);
}

TEST_CASE("vault folder settings and trusted authorities are changed through the vault's files",
          "[vault][client]") {
  const fs::path dir = test::make_scratch_subdir("client-folder") / "vault";
  CHECK_ERROR_CODE(vault::check_vault_folder(dir), ErrorCode::kNotFound);
  CHECK_ERROR_CODE(vault::folder_clock(dir, std::nullopt, false), ErrorCode::kNotFound);
  fs::create_directories(dir);
  REQUIRE_OK(write_file_atomic(dir / "vault.json", std::string("{\"flavor\": 1}")));
  CHECK_ERROR_CODE(vault::check_vault_folder(dir), ErrorCode::kFormat);
  fs::remove(dir / "vault.json");
  vault::VaultConfig config;
  config.name = "contoso";
  REQUIRE_OK(vault::Vault::init(dir, config));
  REQUIRE_OK(vault::check_vault_folder(dir));

  auto clock = vault::folder_clock(dir, "P2D", false);
  REQUIRE_OK(clock);
  CHECK(clock->clock_offset == 2 * 86400);
  CHECK(vault::folder_clock(dir, "P1D", false).value().clock_offset == 3 * 86400);
  CHECK_ERROR_CODE(vault::folder_clock(dir, "P1D", true), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(vault::folder_clock(dir, "1 day", false), ErrorCode::kInvalidArgument);
  CHECK(vault::folder_clock(dir, std::nullopt, true).value().clock_offset == 0);

  CHECK(vault::set_platform_cutover(dir, 1767225600).value() ==
        std::optional<std::int64_t>(1767225600));
  CHECK_FALSE(vault::set_platform_cutover(dir, std::nullopt).value().has_value());

  // Merged by issuer: a second file replaces the entry of the same issuer and keeps the others.
  const fs::path a = dir.parent_path() / "a.json";
  const fs::path b = dir.parent_path() / "b.json";
  REQUIRE_OK(write_file_atomic(
      a,
      std::string(R"({"authorities": [{"issuer": "https://one"}, {"issuer": "https://two"}]})")));
  REQUIRE_OK(write_file_atomic(
      b, std::string(R"({"authorities": [{"issuer": "https://two", "jwks": {"keys": []}}]})")));
  REQUIRE_OK(vault::trust_authorities(dir, a, false));
  auto merged = vault::trust_authorities(dir, b, false);
  REQUIRE_OK(merged);
  CHECK(merged->trusted == std::vector<std::string>{"https://two"});
  auto doc = parse_json_strict(read_text_file(merged->file).value());
  REQUIRE_OK(doc);
  REQUIRE((*doc)["authorities"].size() == 2u);
  CHECK((*doc)["authorities"][0]["issuer"] == "https://one");
  CHECK((*doc)["authorities"][1].contains("jwks"));
  REQUIRE_OK(vault::trust_authorities(dir, b, true));
  CHECK(parse_json_strict(read_text_file(merged->file).value()).value()["authorities"].size() ==
        1u);
  REQUIRE_OK(write_file_atomic(b, std::string(R"({"authorities": [{"name": "x"}]})"),
                               WriteOptions{true, 0644}));
  CHECK_ERROR_CODE(vault::trust_authorities(dir, b, false), ErrorCode::kFormat);
}
