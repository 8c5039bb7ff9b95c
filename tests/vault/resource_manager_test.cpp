// SPDX-License-Identifier: Apache-2.0
// keyport's stand-in for Azure Resource Manager's Subscriptions - List (GET /subscriptions), which
// `az login --identity` calls before anything else: "no subscription" for a caller whose identity
// token is addressed to ARM, and nothing for a token addressed to the vault, or the other way.
#include <catch2/catch.hpp>

#include "core/json.h"
#include "tests/vault/rest_rig.h"
#include "vault/identity.h"

using namespace keyport;

TEST_CASE("GET /subscriptions answers an empty list to a token addressed to Resource Manager",
          "[vault][rest]") {
  const std::string admin = "admin-token-of-the-resource-manager-test";
  Json access{{"tokens", {{admin, {{"name", "admin"}, {"permissions", {"get"}}}}}},
              {"identities",
               {{"az-operator",
                 {{"client_id", "44444444-4444-4444-8444-444444444444"},
                  {"object_id", "dddddddd-dddd-4ddd-8ddd-dddddddddddd"},
                  {"system_assigned", true},
                  {"permissions", {"get", "list"}}}}}}};
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-arm", access);
  // The server made DIR/identity.key at start; tokens signed with it are the endpoint's tokens.
  auto tokens = vault::IdentityTokens::open(rig.dir / vault::kIdentityKeyFile);
  REQUIRE(tokens);
  vault::ManagedIdentity who;
  who.name = "az-operator";
  who.client_id = "44444444-4444-4444-8444-444444444444";
  who.object_id = "dddddddd-dddd-4ddd-8ddd-dddddddddddd";
  const std::int64_t now = rig.server->vault().now();
  const std::string arm_token =
      tokens->issue(who, "https://management.core.windows.net/", now, std::chrono::hours(1))
          .access_token;
  const std::string vault_token =
      tokens->issue(who, rig.url(), now, std::chrono::hours(1)).access_token;

  test::RestClient arm(rig.url(), rig.ca_file(), arm_token);
  arm.api = "2019-11-01";  // ARM's api-version, which Key Vault's list does not have
  test::Answer listed = arm.get("/subscriptions");
  REQUIRE(listed.status == 200);
  CHECK(listed.json == Json{{"value", Json::array()}});
  CHECK(arm.send(test::Call{"POST", "/subscriptions?api-version=2019-11-01", "{}"}).status == 405);
  // The ARM token does not open the vault, and the vault's token does not open ARM.
  arm.api = "7.5";
  test::Answer key = arm.get("/keys");
  CHECK(key.status == 401);
  CHECK(key.json["error"]["message"].get<std::string>().rfind("AKV10022", 0) == 0);
  test::RestClient vault_client(rig.url(), rig.ca_file(), vault_token);
  CHECK(vault_client.get("/keys").status == 200);
  vault_client.api = "2019-11-01";
  CHECK(vault_client.get("/subscriptions").status == 401);
  // An access-file token is not addressed: it lists (no) subscriptions too; no token: the
  // challenge.
  test::RestClient by_file(rig.url(), rig.ca_file(), admin);
  by_file.api = "2019-11-01";
  CHECK(by_file.get("/subscriptions").status == 200);
  test::Call anonymous{"GET", "/subscriptions?api-version=2019-11-01", std::nullopt};
  anonymous.with_token = false;
  test::Answer challenge = arm.send(anonymous);
  CHECK(challenge.status == 401);
  CHECK_FALSE(challenge.header("WWW-Authenticate").empty());
}
