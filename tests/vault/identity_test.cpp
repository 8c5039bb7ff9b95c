// SPDX-License-Identifier: Apache-2.0
// Managed identity (vault/identity.h): the tokens, the vault's check of their claims, the token
// endpoint's request shapes and refusals, and the access file's "identities".
#include <catch2/catch.hpp>

#include <map>

#include "core/encoding.h"
#include "core/json.h"
#include "core/random.h"
#include "vault/access.h"
#include "vault/identity.h"

using namespace keyport;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kResource = "https://localhost:8443";

vault::ManagedIdentity app_identity() {
  vault::ManagedIdentity id;
  id.name = "app";
  id.client_id = "11111111-1111-4111-8111-111111111111";
  id.object_id = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
  id.system_assigned = true;
  id.permissions = static_cast<vault::PermissionSet>(vault::Permission::kGet);
  return id;
}

vault::ManagedIdentity reader_identity() {
  vault::ManagedIdentity id;
  id.name = "reader";
  id.client_id = "22222222-2222-4222-8222-222222222222";
  id.object_id = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
  return id;
}

Json claims_of(const std::string& token) {
  const std::size_t a = token.find('.');
  const std::size_t b = token.rfind('.');
  auto bytes = base64url_decode(token.substr(a + 1, b - a - 1));
  REQUIRE(bytes);
  auto j = parse_json_strict(as_chars(*bytes));
  REQUIRE(j);
  return *j;
}

std::string reencode(const std::string& token, const Json& header, const Json& claims) {
  return base64url_encode(as_bytes(dump_json(header))) + "." +
         base64url_encode(as_bytes(dump_json(claims))) + token.substr(token.rfind('.'));
}

struct EndpointRig {
  vault::IdentityTokens tokens{random_secret(32)};
  std::vector<vault::ManagedIdentity> identities{app_identity(), reader_identity()};
  std::optional<std::string> broken;
  std::int64_t now = kNow;
  vault::IdentityEndpoint endpoint{tokens,
                                   [this]() -> Result<std::vector<vault::ManagedIdentity>> {
                                     if (broken) {
                                       return make_error(ErrorCode::kFailedPrecondition, *broken);
                                     }
                                     return identities;
                                   },
                                   [this] { return now; },
                                   SecretBytes::from_string("the-identity-header-secret"),
                                   std::chrono::seconds(3600)};

  vault::IdentityResponse send(vault::IdentityRequest r) { return endpoint.handle(r); }
};

vault::IdentityRequest app_service(const std::string& secret = "the-identity-header-secret") {
  vault::IdentityRequest r;
  r.method = "GET";
  r.path = "/msi/token";
  r.query = {{"api-version", "2019-08-01"}, {"resource", kResource}};
  r.headers = {{"x-identity-header", secret}};
  return r;
}

vault::IdentityRequest imds() {
  vault::IdentityRequest r;
  r.method = "GET";
  r.path = "/metadata/identity/oauth2/token";
  r.query = {{"api-version", "2018-02-01"}, {"resource", kResource}};
  r.headers = {{"metadata", "true"}};
  return r;
}

std::string error_of(const vault::IdentityResponse& r) {
  auto j = parse_json_strict(r.body);
  REQUIRE(j);
  return (*j)["error"].get<std::string>();
}

}  // namespace

TEST_CASE(
    "identity tokens verify as issued, and any change, another key or another alg is refused alike",
    "[vault][unit]") {
  vault::IdentityTokens tokens(random_secret(32));
  auto issued = tokens.issue(app_identity(), kResource, kNow, std::chrono::seconds(600));
  CHECK(issued.expires_on == kNow + 600);
  REQUIRE(vault::IdentityTokens::looks_like_jwt(issued.access_token));
  auto claims = tokens.verify(issued.access_token);
  REQUIRE(claims);
  CHECK(claims->oid == app_identity().object_id);
  CHECK(claims->appid == app_identity().client_id);
  CHECK(claims->aud == kResource);
  CHECK(claims->tid == vault::kSimulatedTenant);
  CHECK(claims->exp == kNow + 600);
  CHECK(vault::identity_claims_refusal(*claims, kNow + 1, kResource).empty());
  CHECK(vault::identity_claims_refusal(*claims, kNow + 1, kResource + "/").empty());

  // Every refusal is the same kAuth message: no oracle on which part was wrong.
  const std::string expected = tokens.verify("a.b.c").error().message();
  auto refused = [&](const std::string& token) {
    auto r = tokens.verify(token);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ErrorCode::kAuth);
    CHECK(r.error().message() == expected);
  };
  std::string flipped = issued.access_token;
  flipped[flipped.size() / 2] = flipped[flipped.size() / 2] == 'A' ? 'B' : 'A';
  refused(flipped);
  vault::IdentityTokens other(random_secret(32));
  refused(other.issue(app_identity(), kResource, kNow, std::chrono::seconds(600)).access_token);
  // Claims changed under the old signature, and alg "none" with no signature.
  Json c = claims_of(issued.access_token);
  c["oid"] = reader_identity().object_id;
  refused(reencode(issued.access_token, Json{{"alg", "HS256"}, {"typ", "JWT"}}, c));
  const std::string unsigned_token = base64url_encode(as_bytes(R"({"alg":"none"})")) + "." +
                                     base64url_encode(as_bytes(dump_json(c))) + ".";
  refused(unsigned_token);
  refused(issued.access_token + "x");
  refused(std::string(9000, 'a') + ".b.c");
  CHECK_FALSE(vault::IdentityTokens::looks_like_jwt("an-opaque-access-file-token"));
}

TEST_CASE("the vault refuses identity tokens that expired, are early, or name another audience",
          "[vault][unit]") {
  vault::IdentityTokens tokens(random_secret(32));
  auto issued = tokens.issue(app_identity(), kResource, kNow, std::chrono::seconds(600));
  auto claims = tokens.verify(issued.access_token);
  REQUIRE(claims);
  CHECK(vault::identity_claims_refusal(*claims, kNow + 600, kResource).find("expired") !=
        std::string::npos);
  CHECK(vault::identity_claims_refusal(*claims, kNow - 1, kResource).find("not valid before") !=
        std::string::npos);
  const std::string aud = vault::identity_claims_refusal(*claims, kNow, "https://vault.azure.net");
  CHECK(
      aud.rfind("AKV10022: Invalid audience. Expected https://vault.azure.net, found: " + kResource,
                0) == 0);
  vault::IdentityClaims other_tenant = *claims;
  other_tenant.tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
  CHECK(vault::identity_claims_refusal(other_tenant, kNow, kResource).rfind("AKV10032", 0) == 0);
}

TEST_CASE("the identity endpoint answers each platform's request shape", "[vault][unit]") {
  EndpointRig rig;
  // App Service (2019-08-01), system-assigned.
  auto r = rig.send(app_service());
  REQUIRE(r.status == 200);
  CHECK(r.caller == "app");
  auto body = parse_json_strict(r.body);
  REQUIRE(body);
  CHECK((*body)["token_type"] == "Bearer");
  CHECK((*body)["resource"] == kResource);
  CHECK((*body)["expires_on"] == std::to_string(kNow + 3600));
  CHECK((*body)["expires_in"] == "3600");
  CHECK((*body)["client_id"] == app_identity().client_id);
  auto claims = rig.tokens.verify((*body)["access_token"].get<std::string>());
  REQUIRE(claims);
  CHECK(claims->aud == kResource);

  // MSI_SECRET (2017-09-01) with clientid; IMDS with object_id and with mi_res_id; Cloud Shell's
  // POST with a form body.
  auto old = app_service();
  old.headers = {{"secret", "the-identity-header-secret"}};
  old.query = {{"api-version", "2017-09-01"},
               {"resource", kResource},
               {"clientid", reader_identity().client_id}};
  CHECK(rig.send(old).caller == "reader");
  auto by_oid = imds();
  by_oid.query.emplace_back("object_id", reader_identity().object_id);
  CHECK(rig.send(by_oid).caller == "reader");
  auto by_res = imds();
  by_res.query.emplace_back("mi_res_id",
                            "/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/"
                            "userAssignedIdentities/READER");
  CHECK(rig.send(by_res).caller == "reader");
  vault::IdentityRequest shell;
  shell.method = "POST";
  shell.path = "/msi/token";
  shell.headers = {{"metadata", "true"}};
  shell.content_type = "application/x-www-form-urlencoded";
  shell.body = "resource=https%3A%2F%2Flocalhost%3A8443&client_id=" + reader_identity().client_id;
  auto s = rig.send(shell);
  REQUIRE(s.status == 200);
  CHECK(s.caller == "reader");
  CHECK(rig.tokens.verify((*parse_json_strict(s.body))["access_token"].get<std::string>())->aud ==
        kResource);
}

TEST_CASE("the identity endpoint refuses what Azure's endpoints refuse", "[vault][unit]") {
  EndpointRig rig;
  // IMDS without Metadata: true (azure-identity probes with exactly this and expects 400).
  auto no_metadata = imds();
  no_metadata.headers.clear();
  auto r = rig.send(no_metadata);
  CHECK(r.status == 400);
  CHECK(error_of(r) == "bad_request_102");
  // App Service with a wrong or missing secret.
  CHECK(rig.send(app_service("wrong")).status == 401);
  CHECK(rig.send(app_service("")).status == 401);
  // No resource, no api-version, two selectors, an unknown identity, an unknown path, a bad form.
  auto no_resource = imds();
  no_resource.query = {{"api-version", "2018-02-01"}};
  CHECK(rig.send(no_resource).status == 400);
  auto no_version = imds();
  no_version.query = {{"resource", kResource}};
  CHECK(rig.send(no_version).status == 400);
  auto two = imds();
  two.query.emplace_back("client_id", reader_identity().client_id);
  two.query.emplace_back("object_id", reader_identity().object_id);
  CHECK(rig.send(two).status == 400);
  auto unknown = imds();
  unknown.query.emplace_back("client_id", "99999999-9999-4999-8999-999999999999");
  r = rig.send(unknown);
  CHECK(r.status == 400);
  CHECK(r.body.find("Identity not found") != std::string::npos);
  auto elsewhere = imds();
  elsewhere.path = "/metadata/instance";
  CHECK(rig.send(elsewhere).status == 404);
  vault::IdentityRequest bad_form;
  bad_form.method = "POST";
  bad_form.path = "/msi/token";
  bad_form.headers = {{"metadata", "true"}};
  bad_form.body = "resource=%zz";
  CHECK(rig.send(bad_form).status == 400);
  auto control = imds();
  control.query[1].second = "https://x\x1b[2J";
  CHECK(rig.send(control).status == 400);
  // No system-assigned identity: a request that names none is refused.
  rig.identities = {reader_identity()};
  CHECK(rig.send(imds()).status == 400);
  // A broken access file: nothing is issued (fail closed).
  rig.broken = "it is missing";
  r = rig.send(app_service());
  CHECK(r.status == 500);
  CHECK(r.body.find("does not load") != std::string::npos);
}

TEST_CASE("the access file's identities are parsed strictly", "[vault][unit]") {
  auto parse = [](const std::string& identities) {
    return vault::AccessList::parse(R"({"identities": )" + identities + "}", "access.json");
  };
  auto good = parse(R"({"app": {"client_id": "11111111-1111-4111-8111-11111111111A",
                                 "object_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
                                 "system_assigned": true, "permissions": ["get", "wrapKey"]},
                         "b": {"client_id": "22222222-2222-4222-8222-222222222222",
                               "object_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
                               "permissions": []}})");
  REQUIRE(good);
  REQUIRE(good->identities().size() == 2);
  CHECK(good->identities()[0].client_id == "11111111-1111-4111-8111-11111111111a");
  CHECK(good->identity_by_object_id("AAAAAAAA-aaaa-4aaa-8aaa-aaaaaaaaaaaa") != nullptr);
  CHECK(good->identity_by_object_id("cccccccc-cccc-4ccc-8ccc-cccccccccccc") == nullptr);
  CHECK(good->size() == 0);  // no tokens member: no bearer tokens

  const std::string a = R"("client_id": "11111111-1111-4111-8111-111111111111", )"
                        R"("object_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")";
  const std::string b = R"("client_id": "22222222-2222-4222-8222-222222222222", )"
                        R"("object_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")";
  for (const std::string& bad : {
           std::string(R"({"app": {"client_id": "nope", "object_id": "x", "permissions": []}})"),
           R"({"app": {)" + a + R"(, "permissions": ["fly"]}})",
           R"({"app": {)" + a + R"(, "permissions": [], "color": "red"}})",
           R"({"app": {)" + a + R"(}})",
           R"({"a b": {)" + a + R"(, "permissions": []}})",
           R"({"app": {)" + a + R"(, "permissions": []}, "app2": {)" + a +
               R"(, "permissions": []}})",
           R"({"app": {)" + a + R"(, "permissions": [], "system_assigned": true}, "b": {)" + b +
               R"(, "permissions": [], "system_assigned": true}})",
           R"({"app": {)" + a + R"(, "permissions": [], "system_assigned": "yes"}})",
           std::string(R"(["app"])"),
       }) {
    INFO(bad);
    auto r = parse(bad);
    REQUIRE_FALSE(r);
    CHECK((r.error().code() == ErrorCode::kFormat ||
           r.error().code() == ErrorCode::kInvalidArgument));
  }
}
