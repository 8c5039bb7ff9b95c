// SPDX-License-Identifier: Apache-2.0
// Managed HSM local RBAC and settings over HTTPS (vault/rbac.h): the first start's migration of the
// access file, assignments granting and denying, key scopes, immutable built-in roles, custom
// roles, settings, the 403 body, and the routes refused on a Key Vault.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "core/json.h"
#include "tests/vault/rest_rig.h"
#include "vault/rbac.h"

using namespace keyport;

namespace {

const std::string kAdminToken = "admin-token-0123456789abcdef";
const std::string kReaderToken = "reader-token-0123456789abcdef";
const std::string kCiToken = "ci-token-0123456789abcdef0123";

Json rbac_access() {
  Json all = Json::array();
  for (const char* p : {"get",
                        "list",
                        "create",
                        "import",
                        "update",
                        "delete",
                        "recover",
                        "purge",
                        "sign",
                        "verify",
                        "encrypt",
                        "decrypt",
                        "wrapKey",
                        "unwrapKey",
                        "release",
                        "rotate",
                        "getrotationpolicy",
                        "setrotationpolicy",
                        "backup",
                        "restore"}) {
    all.push_back(p);
  }
  Json tokens = Json::object();
  tokens[kAdminToken] = Json{{"name", "admin"}, {"permissions", all}};
  tokens[kReaderToken] = Json{{"name", "reader"}, {"permissions", Json::array({"get", "list"})}};
  tokens[kCiToken] = Json{{"name", "ci"}, {"permissions", Json::array()}};
  return Json{{"tokens", tokens}};
}

const std::string kDefs = "///providers/Microsoft.Authorization/roleDefinitions";
const std::string kAssignments = "///providers/Microsoft.Authorization/roleAssignments";

void create_key(test::RestClient& c, const std::string& name) {
  auto r = c.post("/keys/" + name + "/create", Json{{"kty", "oct-HSM"}, {"key_size", 256}});
  INFO(r.describe());
  REQUIRE(r.status == 200);
}

}  // namespace

TEST_CASE("Managed HSM RBAC: the first start gives access-file principals equivalent roles",
          "[vault][rest][rbac]") {
  test::RestRig rig(vault::Flavor::kManagedHsm, "rbac-migrate", rbac_access());
  bool said = false;
  for (const std::string& line : rig.printed) {
    said = said || line.find("local RBAC initialised: 3") != std::string::npos;
  }
  CHECK(said);
  auto admin = rig.client(kAdminToken);
  create_key(admin, "k1");

  // The built-in roles, with Azure's ids and names.
  auto defs = admin.get(kDefs);
  INFO(defs.describe());
  REQUIRE(defs.status == 200);
  bool crypto_user = false;
  int built_in = 0;
  for (const Json& d : defs.json["value"]) {
    if (d["properties"]["type"] == "AKVBuiltInRole") {
      ++built_in;
    }
    if (d["name"] == "21dbd100-6940-42c2-9190-5d6cb909625b") {
      crypto_user = d["properties"]["roleName"] == "Managed HSM Crypto User" &&
                    d["id"] ==
                        "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"
                        "21dbd100-6940-42c2-9190-5d6cb909625b";
    }
  }
  CHECK(built_in == 9);
  CHECK(crypto_user);

  // admin: Administrator, Crypto Officer and Crypto User at "/".
  auto mine = admin.get(kAssignments + "?$filter=principalId%20eq%20'admin'");
  INFO(mine.describe());
  REQUIRE(mine.status == 200);
  CHECK(mine.json["value"].size() == 3);
  // reader keeps get/list through a custom role; it may read keys, not delete them.
  auto reader = rig.client(kReaderToken);
  CHECK(reader.get("/keys/k1").status == 200);
  CHECK(reader.get("/keys").status == 200);
  auto del = reader.del("/keys/k1");
  CHECK(del.status == 403);
  CHECK(del.code() == "Forbidden");
  CHECK(del.json["error"]["innererror"]["code"] == "ForbiddenByRbac");
  CHECK(del.body.find("Microsoft.KeyVault/managedHsm/keys/delete") != std::string::npos);
  // Nor manage roles.
  CHECK(reader.get(kAssignments).status == 403);
  // The migrated roles hold the permissions' data actions (backup also allows full backups).
  auto custom = admin.get(kDefs + "?$filter=roleName%20eq%20'keyport%20access%20file:%20reader'");
  REQUIRE(custom.status == 200);
  REQUIRE(custom.json["value"].size() == 1);
  const Json& actions = custom.json["value"][0]["properties"]["permissions"][0]["dataActions"];
  CHECK(actions == Json::array({"Microsoft.KeyVault/managedHsm/keys/read/action",
                                "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action",
                                "Microsoft.KeyVault/managedHsm/rng/action"}));
  const auto backup =
      vault::data_actions_for(static_cast<vault::PermissionSet>(vault::Permission::kBackup));
  CHECK(std::find(backup.begin(), backup.end(),
                  "Microsoft.KeyVault/managedHsm/backup/start/action") != backup.end());
  CHECK(vault::data_action_for("FullBackup") ==
        "Microsoft.KeyVault/managedHsm/backup/start/action");
  CHECK(vault::data_action_for("NoSuchOperation").empty());
  // ci had no permission: nothing but random bytes.
  auto ci = rig.client(kCiToken);
  CHECK(ci.get("/keys/k1").status == 403);
  CHECK(ci.post("/rng", Json{{"count", 8}}).status == 200);

  // RBAC outlives a restart; the migration is not repeated.
  rig.stop();
  rig.start();
  auto again = rig.client(kAdminToken).get(kAssignments);
  REQUIRE(again.status == 200);
  CHECK(again.json["value"].size() == 5);  // 3 for admin, 1 each for reader and ci
}

TEST_CASE("Managed HSM RBAC: an assignment at /keys/NAME grants that key only, and is revoked",
          "[vault][rest][rbac]") {
  test::RestRig rig(vault::Flavor::kManagedHsm, "rbac-scope", rbac_access());
  auto admin = rig.client(kAdminToken);
  create_key(admin, "a");
  create_key(admin, "b");
  auto ci = rig.client(kCiToken);
  CHECK(ci.get("/keys/a").status == 403);

  const std::string name = "0b8a4f5e-2f54-4c61-9f0e-2d6b1d1c0a11";
  const std::string path = "//keys/a/providers/Microsoft.Authorization/roleAssignments/" + name;
  auto made = admin.put(path, Json{{"properties",
                                    {{"roleDefinitionId",
                                      "Microsoft.KeyVault/providers/Microsoft.Authorization/"
                                      "roleDefinitions/33413926-3206-4cdd-b39a-83574fe37a17"},
                                     {"principalId", "ci"}}}});
  INFO(made.describe());
  REQUIRE(made.status == 201);
  CHECK(made.json["properties"]["scope"] == "/keys/a");
  CHECK(made.json["id"] == "/keys/a/providers/Microsoft.Authorization/roleAssignments/" + name);

  CHECK(ci.get("/keys/a").status == 200);
  CHECK(ci.get("/keys/b").status == 403);
  CHECK(ci.get("/keys").status == 403);  // listing is HSM-wide
  // The same name again: assignments are immutable.
  CHECK(admin
            .put(path, Json{{"properties",
                             {{"roleDefinitionId", "21dbd100-6940-42c2-9190-5d6cb909625b"},
                              {"principalId", "ci"}}}})
            .status == 409);
  auto got = admin.get(path);
  CHECK(got.status == 200);
  auto at =
      admin.get("//keys/a/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()");
  REQUIRE(at.status == 200);
  CHECK(at.json["value"].size() == 1);

  auto gone = admin.del(path);
  CHECK(gone.status == 200);
  CHECK(ci.get("/keys/a").status == 403);
  auto missing = admin.del(path);
  CHECK(missing.status == 404);
  CHECK(missing.code() == "RoleAssignmentNotFound");
  // Bad scopes and names.
  CHECK(admin.get("//secrets/providers/Microsoft.Authorization/roleAssignments").status == 400);
  CHECK(admin
            .put(kAssignments + "/not-a-guid",
                 Json{{"properties",
                       {{"roleDefinitionId", "21dbd100-6940-42c2-9190-5d6cb909625b"},
                        {"principalId", "ci"}}}})
            .status == 400);
  CHECK(admin
            .put(kAssignments + "/" + name,
                 Json{{"properties",
                       {{"roleDefinitionId", "00000000-0000-0000-0000-000000000001"},
                        {"principalId", "ci"}}}})
            .code() == "RoleDefinitionNotFound");
}

TEST_CASE("Managed HSM RBAC: built-in roles are immutable, custom roles grant their dataActions",
          "[vault][rest][rbac]") {
  test::RestRig rig(vault::Flavor::kManagedHsm, "rbac-custom", rbac_access());
  auto admin = rig.client(kAdminToken);
  create_key(admin, "k");
  const Json signer{
      {"properties",
       {{"roleName", "signer"},
        {"description", "reads keys"},
        {"type", "CustomRole"},
        {"permissions",
         Json::array(
             {{{"actions", Json::array()},
               {"notActions", Json::array()},
               {"dataActions", Json::array({"Microsoft.KeyVault/managedHsm/keys/read/action",
                                            "Microsoft.KeyVault/managedHsm/keys/delete"})},
               {"notDataActions", Json::array({"Microsoft.KeyVault/managedHsm/keys/delete"})}}})},
        {"assignableScopes", Json::array({"/"})}}}};
  auto builtin = admin.put(kDefs + "/a290e904-7015-4bba-90c8-60543313cdb4", signer);
  CHECK(builtin.status == 400);
  CHECK(builtin.body.find("built-in role") != std::string::npos);
  CHECK(admin.del(kDefs + "/a290e904-7015-4bba-90c8-60543313cdb4").status == 400);

  const std::string role = "7d0c5a38-3c7e-4f7a-8f5b-0d7a4a6a2b10";
  auto made = admin.put(kDefs + "/" + role, signer);
  INFO(made.describe());
  REQUIRE(made.status == 201);
  CHECK(made.json["properties"]["type"] == "CustomRole");
  auto bad = signer;
  bad["properties"]["permissions"][0]["dataActions"] = Json::array({"Microsoft.KeyVault/vaults/x"});
  CHECK(admin.put(kDefs + "/" + role, bad).status == 400);

  const std::string assignment = "5d8b2c6e-1a3f-4e9b-8c7d-6f5e4d3c2b1a";
  REQUIRE(admin
              .put(kAssignments + "/" + assignment,
                   Json{{"properties", {{"roleDefinitionId", role}, {"principalId", "ci"}}}})
              .status == 201);
  auto ci = rig.client(kCiToken);
  CHECK(ci.get("/keys/k").status == 200);
  CHECK(ci.del("/keys/k").status == 403);  // granted, then taken away by notDataActions
  // A role in use is not deleted.
  CHECK(admin.del(kDefs + "/" + role).status == 409);
  CHECK(admin.del(kAssignments + "/" + assignment).status == 200);
  auto deleted = admin.del(kDefs + "/" + role);
  CHECK(deleted.status == 200);
  CHECK(admin.get(kDefs + "/" + role).code() == "RoleDefinitionNotFound");
  // roleName filter.
  auto one = admin.get(kDefs + "?$filter=roleName%20eq%20'Managed%20HSM%20Backup'");
  REQUIRE(one.status == 200);
  REQUIRE(one.json["value"].size() == 1);
  CHECK(one.json["value"][0]["name"] == "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8");
  CHECK(admin.get(kDefs + "?$filter=whatever").status == 400);
}

TEST_CASE("Managed HSM settings: list, show, update, persisted, refused when wrong",
          "[vault][rest][rbac]") {
  test::RestRig rig(vault::Flavor::kManagedHsm, "rbac-settings", rbac_access());
  auto admin = rig.client(kAdminToken);
  auto all = admin.get("/settings");
  INFO(all.describe());
  REQUIRE(all.status == 200);
  REQUIRE(all.json["settings"].size() == 1);
  CHECK(all.json["settings"][0] == Json{{"name", "AllowKeyManagementOperationsThroughARM"},
                                        {"type", "boolean"},
                                        {"value", "false"}});
  auto up =
      admin.patch("/settings/AllowKeyManagementOperationsThroughARM", Json{{"value", "true"}});
  CHECK(up.status == 200);
  CHECK(up.json["value"] == "true");
  CHECK(admin.patch("/settings/AllowKeyManagementOperationsThroughARM", Json{{"value", "maybe"}})
            .status == 400);
  CHECK(admin.get("/settings/NoSuchSetting").status == 404);
  // reader reads, may not change.
  auto reader = rig.client(kReaderToken);
  CHECK(reader.get("/settings/AllowKeyManagementOperationsThroughARM").status == 200);
  CHECK(reader.patch("/settings/AllowKeyManagementOperationsThroughARM", Json{{"value", "false"}})
            .status == 403);
  // Settings came with 7.4.
  admin.api = "7.3";
  CHECK(admin.get("/settings").status == 400);
  admin.api = "7.5";
  rig.stop();
  rig.start();
  CHECK(rig.client(kAdminToken)
            .get("/settings/AllowKeyManagementOperationsThroughARM")
            .json["value"] == "true");
}

TEST_CASE("Key Vault refuses the Managed HSM role and settings routes", "[vault][rest][rbac]") {
  test::RestRig rig(vault::Flavor::kKeyVault, "rbac-kv");
  auto admin = rig.client();
  auto r = admin.get(kDefs);
  CHECK(r.status == 400);
  CHECK(r.body.find("Managed HSM") != std::string::npos);
  CHECK(admin.get("/settings").status == 400);
}
