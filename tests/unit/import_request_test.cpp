// SPDX-License-Identifier: Apache-2.0
// byok/import_request.h: the body of PUT /keys/{name} for a .byok file, as the Azure CLI sends it
// (Key Vault REST API ImportKey, azure-rest-api-specs keys.json; az keyvault key import). The .byok
// files are the good ones of the linter corpus (tests/vectors/byok-lint/).
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "byok/import_request.h"
#include "byok/lint.h"
#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/json.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::byok;
namespace fs = std::filesystem;

namespace {

Bytes corpus_file(const std::string& name) {
  auto bytes = read_file(test::source_dir() / "tests" / "vectors" / "byok-lint" / name);
  REQUIRE_OK(bytes);
  return *bytes;
}

// A .byok file for a Key Vault KEK, and one for a Managed HSM KEK.
Bytes vault_file() {
  return corpus_file("good-key-vault-rsa2048.byok");
}
Bytes hsm_file() {
  return corpus_file("good-managed-hsm-aes256.byok");
}

ImportRequestOptions rsa_options() {
  ImportRequestOptions o;
  o.name = "my-key";
  o.kty = "RSA";
  return o;
}

// The body as a plain JSON value, re-read from its text.
Json body_of(const ImportRequest& r) {
  auto j = parse_json_strict(r.body_text());
  REQUIRE_OK(j);
  return *j;
}

std::vector<std::string> member_names(const nlohmann::ordered_json& j) {
  std::vector<std::string> names;
  for (auto it = j.begin(); it != j.end(); ++it) {
    names.push_back(it.key());
  }
  return names;
}

const std::string kPolicy =
    "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"https://sharedweu.weu.attest.azure.net\","
    "\"allOf\":[{\"claim\":\"x-ms-isolation-tee.x-ms-attestation-type\",\"equals\":\"sevsnpvm\"}]"
    "}]}\n";

}  // namespace

TEST_CASE("an RSA request carries the whole file as unpadded base64url key_hsm and nothing extra",
          "[unit][request]") {
  const Bytes file = vault_file();
  auto r = build_import_request(file, rsa_options());
  REQUIRE_OK(r);
  CHECK(r->method == "PUT");
  CHECK(r->url == "https://contoso.vault.azure.net/keys/my-key?api-version=7.5");
  CHECK(member_names(r->body) == std::vector<std::string>{"key", "attributes"});
  CHECK(member_names(r->body["key"]) == std::vector<std::string>{"kty", "key_hsm"});
  const Json body = body_of(*r);
  CHECK(body["key"]["kty"] == "RSA-HSM");
  const std::string key_hsm = body["key"]["key_hsm"].get<std::string>();
  CHECK(key_hsm.find('=') == std::string::npos);
  CHECK(key_hsm.find_first_of("+/") == std::string::npos);
  auto decoded = base64url_decode(key_hsm);
  REQUIRE_OK(decoded);
  CHECK(*decoded == file);  // the exact bytes, trailing newline included
  CHECK(body["attributes"] == Json({{"enabled", true}}));
  CHECK(r->body_text().back() == '\n');
}

TEST_CASE("an EC request needs a curve and sends it as crv", "[unit][request]") {
  ImportRequestOptions o = rsa_options();
  o.kty = "EC";
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  for (const char* curve : {"P-256", "P-384", "P-521", "P-256K"}) {
    INFO(curve);
    o.curve = curve;
    auto r = build_import_request(vault_file(), o);
    REQUIRE_OK(r);
    CHECK(member_names(r->body["key"]) == std::vector<std::string>{"kty", "crv", "key_hsm"});
    CHECK(r->body["key"]["kty"] == "EC-HSM");
    CHECK(r->body["key"]["crv"] == curve);
  }
  o.curve = "P-192";
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  ImportRequestOptions rsa = rsa_options();
  rsa.curve = "P-256";
  CHECK_ERROR_CODE(build_import_request(vault_file(), rsa), ErrorCode::kInvalidArgument);
}

TEST_CASE("an oct request goes to a Managed HSM file and is refused for a Key Vault file",
          "[unit][request]") {
  ImportRequestOptions o = rsa_options();
  o.kty = "oct";
  auto r = build_import_request(hsm_file(), o);
  REQUIRE_OK(r);
  CHECK(r->body["key"]["kty"] == "oct-HSM");
  CHECK(r->url == "https://contoso-hsm.managedhsm.azure.net/keys/my-key?api-version=7.5");
  auto refused = build_import_request(vault_file(), o);
  CHECK_ERROR_CODE(refused, ErrorCode::kUnsupported);
  CHECK(refused.error().detail() == lint_code::kProfile);
}

TEST_CASE("an exportable key request carries the release policy bytes as unpadded base64url",
          "[unit][request]") {
  ImportRequestOptions o = rsa_options();
  o.exportable = true;
  o.policy = kPolicy;
  auto r = build_import_request(vault_file(), o);
  REQUIRE_OK(r);
  CHECK(member_names(r->body) == std::vector<std::string>{"key", "attributes", "release_policy"});
  CHECK(member_names(r->body["release_policy"]) ==
        std::vector<std::string>{"contentType", "data", "immutable"});
  const Json body = body_of(*r);
  CHECK(body["attributes"] == Json({{"enabled", true}, {"exportable", true}}));
  CHECK(body["release_policy"]["contentType"] == "application/json; charset=utf-8");
  CHECK(body["release_policy"]["immutable"] == false);
  const std::string data = body["release_policy"]["data"].get<std::string>();
  CHECK(data.find('=') == std::string::npos);
  auto decoded = base64url_decode(data);
  REQUIRE_OK(decoded);
  CHECK(std::string(decoded->begin(), decoded->end()) == kPolicy);

  o.immutable = true;
  auto immutable = build_import_request(vault_file(), o);
  REQUIRE_OK(immutable);
  CHECK(immutable->body["release_policy"]["immutable"] == true);
}

TEST_CASE(
    "an import request needs a policy exactly when exportable and the policy is a strict JSON "
    "object",
    "[unit][request]") {
  ImportRequestOptions o = rsa_options();
  o.exportable = true;
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  o.exportable = false;
  o.immutable = true;
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  o.immutable = false;
  o.policy = kPolicy;
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  o.exportable = true;
  o.policy = "[]";
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  o.policy = "{\"version\":\"1.0.0\",";
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kFormat);
  o.policy = "{\"version\":\"1.0.0\",\"version\":\"2\"}";
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kFormat);
}

TEST_CASE("an import request names the key with 1 to 127 letters digits or dashes",
          "[unit][request]") {
  ImportRequestOptions o = rsa_options();
  for (const std::string& bad : {std::string(""), std::string("my_key"), std::string("my key"),
                                 std::string("key/1"), std::string(128, 'a')}) {
    INFO(bad);
    o.name = bad;
    CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  }
  o.name = std::string(127, 'Z');
  REQUIRE_OK(build_import_request(vault_file(), o));
  o.name = "0-Key-9";
  REQUIRE_OK(build_import_request(vault_file(), o));
}

TEST_CASE("an import request keeps the tag order and sends enabled and hsm as given",
          "[unit][request]") {
  ImportRequestOptions o = rsa_options();
  o.tags = {"env=prod", "owner=team-a", "formula=a=b", "empty="};
  o.enabled = false;
  o.hsm = true;
  auto r = build_import_request(vault_file(), o);
  REQUIRE_OK(r);
  CHECK(member_names(r->body) == std::vector<std::string>{"key", "hsm", "attributes", "tags"});
  CHECK(member_names(r->body["tags"]) ==
        std::vector<std::string>{"env", "owner", "formula", "empty"});
  CHECK(r->body["tags"]["formula"] == "a=b");
  CHECK(r->body["tags"]["empty"] == "");
  CHECK(r->body["hsm"] == true);
  CHECK(r->body["attributes"]["enabled"] == false);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"novalue"}, std::vector<std::string>{"=x"},
        std::vector<std::string>{"a=1", "a=2"}}) {
    o.tags = bad;
    CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("the request kty comes from --kty or from what the file holds and is never guessed",
          "[unit][request]") {
  ImportRequestOptions o;
  o.name = "k";
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  o.kty = "rsa-hsm";
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  o.kty.reset();
  o.detected = KeySpec{KeyFamily::kEc, 384, Curve::kP384};
  auto r = build_import_request(vault_file(), o);
  REQUIRE_OK(r);
  CHECK(r->body["key"]["kty"] == "EC-HSM");
  CHECK(r->body["key"]["crv"] == "P-384");
  o.kty = "ec";  // case-insensitive, as az accepts it
  REQUIRE_OK(build_import_request(vault_file(), o));
  o.kty = "RSA";
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  o.kty = "EC";
  o.curve = "P-256";
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kInvalidArgument);
  o.curve.reset();
  o.detected = KeySpec{KeyFamily::kAes, 256, std::nullopt};
  o.kty.reset();
  CHECK_ERROR_CODE(build_import_request(vault_file(), o), ErrorCode::kUnsupported);
}

TEST_CASE("a file keyport's .byok reader refuses gets no request", "[unit][request]") {
  for (const char* name : {"ct-std-alphabet.byok", "kid-unversioned.byok", "truncated.byok",
                           "duplicate-header-kid.byok"}) {
    INFO(name);
    CHECK_ERROR_CODE(build_import_request(corpus_file(name), rsa_options()), ErrorCode::kFormat);
  }
}
