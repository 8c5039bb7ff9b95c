// SPDX-License-Identifier: Apache-2.0
// Managed HSM local RBAC and the Managed HSM account settings (internal to keyport::vault; the
// REST routes are in rest_routes.cpp, docs/vault.md "Managed HSM local RBAC" describes the model).
//
// Role definitions (the built-in Managed HSM roles with Azure's GUIDs and dataActions, and custom
// roles), role assignments (principal, role, scope "/", "/keys" or "/keys/<name>") and the
// settings live in vault.db (the rbac table, one JSON document per object) and in memory: every
// request's check reads memory only, under a shared lock; a change is written to vault.db first
// and applied to memory once committed.
//
// A principal's permissions on a request are the union of the dataActions minus notDataActions
// of the roles assigned to it at "/", at "/keys" and, for a key operation, at "/keys/<that key>".
// A principal is matched by its object id (managed identities) or its name (access-file tokens),
// case-insensitively (Principal::rbac_ids).
//
// RBAC applies once initialised (Rbac::initialised()): `keyport vault serve` initialises a
// managed-hsm folder at its first start, giving every principal of the access file assignments
// equivalent to its access-file permissions (vault/server.cpp). Until then, and on key-vault
// folders, the access file's permissions decide.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "vault/access.h"

namespace keyport::vault {

class Store;

// "Microsoft.KeyVault/managedHsm/" + what: the data actions of Managed HSM local RBAC.
inline constexpr std::string_view kDataActionPrefix = "Microsoft.KeyVault/managedHsm/";

// The data action a REST operation (its operationId) needs on Managed HSM, or "" when RBAC does
// not apply to it (ListSubscriptions). Unknown operationIds give "" too (callers fail closed on
// it: see RestApi).
std::string_view data_action_for(std::string_view operation_id);

// The data actions equivalent to access-file permissions (the migration of an access file).
std::vector<std::string> data_actions_for(PermissionSet permissions);

// The built-in role ids (GUIDs) keyport knows.
inline constexpr std::string_view kRoleAdministrator = "a290e904-7015-4bba-90c8-60543313cdb4";
inline constexpr std::string_view kRoleCryptoOfficer = "515eb02d-2335-4d2d-92f2-b1cbdf9c3778";
inline constexpr std::string_view kRoleCryptoUser = "21dbd100-6940-42c2-9190-5d6cb909625b";

struct RolePermission {
  std::vector<std::string> actions;
  std::vector<std::string> not_actions;
  std::vector<std::string> data_actions;
  std::vector<std::string> not_data_actions;
};

struct RoleDefinition {
  std::string name;  // a GUID, lower case
  std::string role_name;
  std::string description;
  bool built_in = false;  // "AKVBuiltInRole"; else "CustomRole"
  std::vector<RolePermission> permissions;
  std::vector<std::string> assignable_scopes;  // "/" or "/keys"
};

struct RoleAssignment {
  std::string name;             // a GUID, lower case
  std::string scope;            // "/", "/keys", "/keys/<key name>"
  std::string role_definition;  // the GUID of the role
  std::string principal_id;
};

// The settings Managed HSM has (GET /settings): name, type and value as text.
struct Setting {
  std::string name;
  std::string type;  // "boolean"
  std::string value;
};

class Rbac {
 public:
  // Loads what vault.db holds. `audit(operation, caller, name, error)` records each change.
  using AuditFn = std::function<void(const std::string& operation, const std::string& caller,
                                     const std::string& name, const Error* error)>;
  static Result<std::unique_ptr<Rbac>> open(Store& store, AuditFn audit);

  // True once initialise() ran on this folder.
  bool initialised() const;
  // Writes the "initialised" mark and, in the same transaction, for each principal: a "Managed
  // HSM Administrator", "Crypto Officer" and "Crypto User" assignment at "/" when it has every
  // access-file permission, else a custom role "keyport access file: <name>" holding exactly its
  // permissions' data actions (plus rng/action, which every caller had) assigned at "/". A no-op
  // returning OK when already initialised.
  Status initialise(const std::vector<Principal>& principals, std::string_view caller);

  // Whether `principal` may do `data_action` (on key `key_name` when not empty).
  bool permits(const Principal& principal, std::string_view data_action,
               std::string_view key_name) const;

  // --- REST (rbac.json of the Managed HSM data plane; bodies and answers as Azure's) ---
  // `scope` is normalised ("/", "/keys", "/keys/<name>"); `filter` is $filter or "".
  Result<Json> list_definitions(std::string_view scope, std::string_view filter) const;
  Result<Json> get_definition(std::string_view scope, std::string_view name) const;
  // Creates or replaces a custom role: 201 answers carry the created definition. BadParameter for
  // a built-in's GUID, a name that is not a GUID, or a body that is not RoleDefinitionCreate-
  // Parameters; Conflict when another role has the same roleName.
  Result<Json> put_definition(std::string_view scope, std::string_view name, const Json& body,
                              const std::string& caller);
  // BadParameter for a built-in; RoleDefinitionNotFound; Conflict while assignments use it.
  Result<Json> delete_definition(std::string_view scope, std::string_view name,
                                 const std::string& caller);

  Result<Json> list_assignments(std::string_view scope, std::string_view filter) const;
  Result<Json> get_assignment(std::string_view scope, std::string_view name) const;
  // BadParameter for a bad body, name or scope; RoleDefinitionNotFound for an unknown role;
  // Conflict when the name exists (assignments are immutable, as in Azure).
  Result<Json> put_assignment(std::string_view scope, std::string_view name, const Json& body,
                              const std::string& caller);
  Result<Json> delete_assignment(std::string_view scope, std::string_view name,
                                 const std::string& caller);

  Result<Json> list_settings() const;
  Result<Json> get_setting(std::string_view name) const;
  Result<Json> update_setting(std::string_view name, const Json& body, const std::string& caller);

  // For tests and the CLI's --json: everything as held.
  std::vector<RoleDefinition> definitions() const;
  std::vector<RoleAssignment> assignments() const;

 private:
  explicit Rbac(Store& store, AuditFn audit) : m_store(store), m_audit(std::move(audit)) {}
  const RoleDefinition* find_definition(std::string_view name) const;

  Store& m_store;
  AuditFn m_audit;
  mutable std::shared_mutex m_mutex;
  bool m_initialised = false;
  std::vector<RoleDefinition> m_custom;
  std::vector<RoleAssignment> m_assignments;
  std::vector<Setting> m_settings;
};

// Normalises a scope as the REST path gives it ("", "/", "//keys", "/keys/name/"): "/", "/keys",
// "/keys/<name>" (the key name's case kept). BadParameter for anything else.
Result<std::string> normalise_scope(std::string_view scope);

}  // namespace keyport::vault
