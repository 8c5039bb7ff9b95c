// SPDX-License-Identifier: Apache-2.0
// Managed HSM local RBAC and settings: the built-in roles, the role and assignment documents, the
// check of a request, the REST operations (vault/rbac.h).
#include "vault/rbac.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <optional>

#include "core/random.h"
#include "core/strings.h"
#include "vault/errors.h"
#include "vault/store.h"

namespace keyport::vault {
namespace {

// The row kinds of the rbac table.
constexpr const char* kRbacDefinition = "definition";
constexpr const char* kRbacAssignment = "assignment";
constexpr const char* kRbacSetting = "setting";
constexpr const char* kRbacState = "state";

constexpr std::string_view kRbacAssignmentsPath =
    "/providers/Microsoft.Authorization/roleAssignments/";
// Azure names every role definition with this id, whatever the scope it was listed at.
constexpr std::string_view kRbacDefinitionIdPrefix =
    "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/";

std::string rbac_action(std::string_view what) {
  return std::string(kDataActionPrefix) + std::string(what);
}

// The built-in roles. Names and ids: Microsoft Learn, "Local RBAC built-in roles for Managed HSM"
// (MicrosoftDocs/azure-security-docs, articles/key-vault/managed-hsm/built-in-roles.md). The
// dataActions: what a real Managed HSM answers to GET /providers/Microsoft.Authorization/
// roleDefinitions, recorded by the Azure SDK for JavaScript's tests in 2022
// (Azure/azure-sdk-for-js, sdk/keyvault/keyvault-admin/recordings/node/); "Managed HSM Restore"
// (not in that recording) from the Learn page's table of permitted operations.
struct BuiltInRole {
  std::string_view id;
  std::string_view name;
  std::string_view description;
  std::vector<std::string_view> actions;  // without kDataActionPrefix
};

const std::vector<BuiltInRole>& rbac_built_ins() {
  static const std::vector<BuiltInRole> roles{
      {kRoleAdministrator,
       "Managed HSM Administrator",
       "Grants permissions to perform all operations related to the security domain, full backup "
       "and restore, and role management. Not permitted to perform any key management operations.",
       {"roleAssignments/delete/action", "roleAssignments/read/action",
        "roleAssignments/write/action", "roleDefinitions/read/action",
        "roleDefinitions/write/action", "roleDefinitions/delete/action",
        "securitydomain/download/action", "securitydomain/download/read",
        "securitydomain/upload/action", "securitydomain/upload/read",
        "securitydomain/transferkey/read", "backup/start/action", "restore/start/action",
        "backup/status/action", "restore/status/action"}},
      {kRoleCryptoOfficer,
       "Managed HSM Crypto Officer",
       "Grants permissions to perform all role management, purge or recover deleted keys, and "
       "export keys. Not permitted to perform any other key management operations.",
       {"roleAssignments/delete/action", "roleAssignments/read/action",
        "roleAssignments/write/action", "roleDefinitions/read/action",
        "roleDefinitions/write/action", "roleDefinitions/delete/action",
        "keys/deletedKeys/read/action", "keys/deletedKeys/delete",
        "keys/deletedKeys/recover/action", "keys/export/action"}},
      {kRoleCryptoUser,
       "Managed HSM Crypto User",
       "Grants permissions to perform all key management operations except purge or recover "
       "deleted keys and export keys.",
       {"roleDefinitions/read/action", "roleAssignments/read/action", "keys/read/action",
        "keys/write/action", "keys/delete", "keys/create", "keys/rotate/action",
        "keys/import/action", "keys/release/action", "keys/backup/action", "keys/restore/action",
        "keys/encrypt/action", "keys/decrypt/action", "keys/wrap/action", "keys/unwrap/action",
        "keys/sign/action", "keys/verify/action", "keys/derive/action", "rng/action"}},
      {"4bd23610-cdcf-4971-bdee-bdc562cc28e4",
       "Managed HSM Policy Administrator",
       "Grants permissions to create and delete role assignments.",
       {"roleDefinitions/read/action", "roleDefinitions/write/action",
        "roleDefinitions/delete/action", "roleAssignments/read/action",
        "roleAssignments/write/action", "roleAssignments/delete/action"}},
      {"2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
       "Managed HSM Crypto Auditor",
       "Grants read permissions to read (but not use) key attributes.",
       {"roleAssignments/read/action", "roleDefinitions/read/action", "keys/read/action",
        "keys/deletedKeys/read/action"}},
      {"33413926-3206-4cdd-b39a-83574fe37a17",
       "Managed HSM Crypto Service Encryption User",
       "Grants permissions to use a key for service encryption.",
       {"keys/read/action", "keys/wrap/action", "keys/unwrap/action"}},
      {"21dbd100-6940-42c2-9190-5d6cb909625c",
       "Managed HSM Crypto Service Release User",
       "Grants permissions to release a key to a trusted execution environment.",
       {"keys/release/action"}},
      {"7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8",
       "Managed HSM Backup",
       "Grants permissions to perform single-key or whole-HSM backup.",
       {"backup/start/action", "backup/status/action", "keys/backup/action"}},
      {"6efe6056-5259-49d2-8b3d-d3d73544b20b",
       "Managed HSM Restore",
       "Grants permissions to perform single-key or whole-HSM restore.",
       {"keys/restore/action", "restore/start/action", "restore/status/action"}},
  };
  return roles;
}

// Every data action Managed HSM knows (the DataAction enumeration of rbac.json, with rotate,
// derive and export, which the built-in roles hold): what a custom role may name.
const std::vector<std::string_view>& rbac_known_actions() {
  static const std::vector<std::string_view> known{
      "keys/read/action",
      "keys/write/action",
      "keys/deletedKeys/read/action",
      "keys/deletedKeys/recover/action",
      "keys/backup/action",
      "keys/restore/action",
      "roleAssignments/delete/action",
      "roleAssignments/read/action",
      "roleAssignments/write/action",
      "roleDefinitions/read/action",
      "roleDefinitions/write/action",
      "roleDefinitions/delete/action",
      "keys/encrypt/action",
      "keys/decrypt/action",
      "keys/wrap/action",
      "keys/unwrap/action",
      "keys/sign/action",
      "keys/verify/action",
      "keys/create",
      "keys/delete",
      "keys/export/action",
      "keys/release/action",
      "keys/import/action",
      "keys/deletedKeys/delete",
      "keys/rotate/action",
      "keys/derive/action",
      "securitydomain/download/action",
      "securitydomain/download/read",
      "securitydomain/upload/action",
      "securitydomain/upload/read",
      "securitydomain/transferkey/read",
      "backup/start/action",
      "restore/start/action",
      "backup/status/action",
      "restore/status/action",
      "rng/action",
  };
  return known;
}

// The settings of a Managed HSM (GET /settings of a real one, Azure SDK recordings) and their
// defaults.
struct RbacSettingSpec {
  std::string_view name;
  std::string_view type;
  std::string_view default_value;
};
constexpr RbacSettingSpec kRbacSettings[] = {
    {"AllowKeyManagementOperationsThroughARM", "boolean", "false"},
};

tl::unexpected<Error> rbac_not_found(std::string_view code, std::string message) {
  return make_error(ErrorCode::kNotFound, std::string(code), std::move(message));
}

tl::unexpected<Error> rbac_conflict(std::string message) {
  return make_error(ErrorCode::kAlreadyExists, std::string(kConflict), std::move(message));
}

std::string rbac_lower(std::string_view s) {
  return ascii_lower(s);
}

// "/" + kRbacAssignmentsPath without a doubled slash.
std::string rbac_scope_prefix(std::string_view scope) {
  return scope == "/" ? std::string() : std::string(scope);
}

Json rbac_definition_json(const RoleDefinition& d) {
  Json perms = Json::array();
  for (const RolePermission& p : d.permissions) {
    perms.push_back(Json{{"actions", p.actions},
                         {"notActions", p.not_actions},
                         {"dataActions", p.data_actions},
                         {"notDataActions", p.not_data_actions}});
  }
  return Json{{"id", std::string(kRbacDefinitionIdPrefix) + d.name},
              {"name", d.name},
              {"type", "Microsoft.Authorization/roleDefinitions"},
              {"properties",
               {{"roleName", d.role_name},
                {"description", d.description},
                {"type", d.built_in ? "AKVBuiltInRole" : "CustomRole"},
                {"permissions", std::move(perms)},
                {"assignableScopes", d.assignable_scopes}}}};
}

Json rbac_assignment_json(const RoleAssignment& a) {
  return Json{{"id", rbac_scope_prefix(a.scope) + std::string(kRbacAssignmentsPath) + a.name},
              {"name", a.name},
              {"type", "Microsoft.Authorization/roleAssignments"},
              {"properties",
               {{"scope", a.scope},
                {"roleDefinitionId", std::string(kRbacDefinitionIdPrefix) + a.role_definition},
                {"principalId", a.principal_id}}}};
}

// Strict readers of the stored documents and of request bodies.
Result<std::vector<std::string>> rbac_string_list(const Json& obj, std::string_view member,
                                                  const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find(std::string(member));
  if (it == obj.end() || it->is_null()) {
    return out;
  }
  if (!it->is_array()) {
    return bad_parameter(where + ": '" + std::string(member) + "' must be an array of strings.");
  }
  for (const Json& v : *it) {
    if (!v.is_string()) {
      return bad_parameter(where + ": '" + std::string(member) + "' must be an array of strings.");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::string> rbac_optional_string(const Json& obj, std::string_view member,
                                         const std::string& where) {
  auto it = obj.find(std::string(member));
  if (it == obj.end() || it->is_null()) {
    return std::string();
  }
  if (!it->is_string()) {
    return bad_parameter(where + ": '" + std::string(member) + "' must be a string.");
  }
  return it->get<std::string>();
}

Status rbac_only_members(const Json& obj, std::initializer_list<std::string_view> allowed,
                         const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      return bad_parameter(where + ": unknown member '" + escape_for_log(it.key()) + "'.");
    }
  }
  return {};
}

// A data action of a custom role: known (case-insensitively), stored in Azure's spelling.
Result<std::string> rbac_checked_action(const std::string& action, const std::string& where) {
  if (action.size() > kDataActionPrefix.size() &&
      iequals(std::string_view(action).substr(0, kDataActionPrefix.size()), kDataActionPrefix)) {
    const std::string_view rest = std::string_view(action).substr(kDataActionPrefix.size());
    for (std::string_view known : rbac_known_actions()) {
      if (iequals(known, rest)) {
        return rbac_action(known);
      }
    }
  }
  return bad_parameter(where + ": '" + escape_for_log(action) +
                       "' is not a Managed HSM data action (Microsoft.KeyVault/managedHsm/...).");
}

// The properties of RoleDefinitionCreateParameters, or of a stored custom role.
Result<RoleDefinition> rbac_parse_definition(const Json& props, std::string_view name,
                                             bool stored) {
  const std::string where = "role definition properties";
  if (!props.is_object()) {
    return bad_parameter("The request body must be {\"properties\": {...}}.");
  }
  KEYPORT_TRY(rbac_only_members(
      props, {"roleName", "description", "type", "permissions", "assignableScopes"}, where));
  RoleDefinition d;
  d.name = rbac_lower(name);
  KEYPORT_ASSIGN_OR_RETURN(d.role_name, rbac_optional_string(props, "roleName", where));
  KEYPORT_ASSIGN_OR_RETURN(d.description, rbac_optional_string(props, "description", where));
  KEYPORT_ASSIGN_OR_RETURN(std::string type, rbac_optional_string(props, "type", where));
  if (!type.empty() && type != "CustomRole") {
    return bad_parameter(where + ": 'type' of a role that is created is CustomRole.");
  }
  if (d.role_name.size() > 512 || d.description.size() > 2048) {
    return bad_parameter(where + ": roleName or description is too long.");
  }
  auto perms = props.find("permissions");
  if (perms != props.end() && !perms->is_null()) {
    if (!perms->is_array() || perms->size() > 64) {
      return bad_parameter(where + ": 'permissions' must be an array of at most 64 objects.");
    }
    for (const Json& p : *perms) {
      if (!p.is_object()) {
        return bad_parameter(where + ": each of 'permissions' must be an object.");
      }
      KEYPORT_TRY(
          rbac_only_members(p, {"actions", "notActions", "dataActions", "notDataActions"}, where));
      RolePermission rp;
      KEYPORT_ASSIGN_OR_RETURN(rp.actions, rbac_string_list(p, "actions", where));
      KEYPORT_ASSIGN_OR_RETURN(rp.not_actions, rbac_string_list(p, "notActions", where));
      if (!rp.actions.empty() || !rp.not_actions.empty()) {
        return bad_parameter(where +
                             ": Managed HSM roles grant dataActions; 'actions' and 'notActions' "
                             "must be empty.");
      }
      KEYPORT_ASSIGN_OR_RETURN(auto data, rbac_string_list(p, "dataActions", where));
      KEYPORT_ASSIGN_OR_RETURN(auto not_data, rbac_string_list(p, "notDataActions", where));
      for (const std::string& a : data) {
        KEYPORT_ASSIGN_OR_RETURN(std::string checked, rbac_checked_action(a, where));
        rp.data_actions.push_back(std::move(checked));
      }
      for (const std::string& a : not_data) {
        KEYPORT_ASSIGN_OR_RETURN(std::string checked, rbac_checked_action(a, where));
        rp.not_data_actions.push_back(std::move(checked));
      }
      d.permissions.push_back(std::move(rp));
    }
  }
  KEYPORT_ASSIGN_OR_RETURN(d.assignable_scopes, rbac_string_list(props, "assignableScopes", where));
  if (d.assignable_scopes.empty()) {
    d.assignable_scopes.push_back("/");
  }
  for (std::string& s : d.assignable_scopes) {
    auto n = normalise_scope(s);
    if (!n || (*n != "/" && *n != "/keys")) {
      return bad_parameter(where + ": assignableScopes of a Managed HSM role are \"/\" or " +
                           "\"/keys\".");
    }
    s = *n;
  }
  (void)stored;
  return d;
}

Json rbac_stored_definition(const RoleDefinition& d) {
  return rbac_definition_json(d)["properties"];
}

Json rbac_stored_assignment(const RoleAssignment& a) {
  return Json{
      {"scope", a.scope}, {"roleDefinitionId", a.role_definition}, {"principalId", a.principal_id}};
}

// The GUID of a roleDefinitionId: the full id Azure gives, any "<scope>/providers/.../<guid>",
// or the bare GUID.
std::optional<std::string> rbac_definition_guid(std::string_view id) {
  const auto slash = id.rfind('/');
  const std::string_view guid = slash == std::string_view::npos ? id : id.substr(slash + 1);
  if (!is_uuid(guid)) {
    return std::nullopt;
  }
  if (slash != std::string_view::npos &&
      rbac_lower(id).find("/providers/microsoft.authorization/roledefinitions/") ==
          std::string::npos) {
    return std::nullopt;
  }
  return rbac_lower(guid);
}

// "$filter": roleName eq 'x' / principalId eq 'x' / atScope() / atScopeAndBelow(), joined by
// " and ".
struct RbacFilter {
  bool at_scope = false;
  std::optional<std::string> role_name;
  std::optional<std::string> principal_id;
};

Result<RbacFilter> parse_rbac_filter(std::string_view text, bool assignments) {
  RbacFilter f;
  std::string rest(trim(text));
  while (!rest.empty()) {
    std::string term;
    const std::string low = rbac_lower(rest);
    const auto and_at = low.find(" and ");
    term = std::string(trim(rest.substr(0, and_at)));
    rest = and_at == std::string::npos ? std::string() : std::string(trim(rest.substr(and_at + 5)));
    const std::string lt = rbac_lower(term);
    if (lt == "atscope()" && assignments) {
      f.at_scope = true;
      continue;
    }
    if (lt == "atscopeandbelow()") {
      continue;
    }
    const std::string field = assignments ? "principalid eq '" : "rolename eq '";
    if (lt.rfind(field, 0) == 0 && term.size() > field.size() && term.back() == '\'') {
      std::string value = term.substr(field.size(), term.size() - field.size() - 1);
      (assignments ? f.principal_id : f.role_name) = std::move(value);
      continue;
    }
    return bad_parameter("The $filter '" + escape_for_log(text) + "' is not supported: use " +
                         (assignments ? "atScope(), principalId eq '<id>'"
                                      : "atScopeAndBelow(), roleName eq '<name>'") +
                         " (joined by 'and').");
  }
  return f;
}

bool rbac_scope_covers(std::string_view assignment_scope, std::string_view key_name) {
  if (assignment_scope == "/" || assignment_scope == "/keys") {
    return true;
  }
  return !key_name.empty() && assignment_scope.size() > 6 &&
         iequals(assignment_scope.substr(6), key_name);
}

bool rbac_principal_matches(const Principal& p, std::string_view principal_id) {
  return iequals(p.name, principal_id) ||
         (!p.object_id.empty() && iequals(p.object_id, principal_id));
}

}  // namespace

// --- operations and data actions ----------------------------------------------------------------

std::string_view data_action_for(std::string_view id) {
  struct Entry {
    std::string_view op;
    std::string_view action;
  };
  static const Entry kEntries[] = {
      {"CreateKey", "Microsoft.KeyVault/managedHsm/keys/create"},
      {"ImportKey", "Microsoft.KeyVault/managedHsm/keys/import/action"},
      {"GetKey", "Microsoft.KeyVault/managedHsm/keys/read/action"},
      {"GetKeys", "Microsoft.KeyVault/managedHsm/keys/read/action"},
      {"GetKeyVersions", "Microsoft.KeyVault/managedHsm/keys/read/action"},
      {"UpdateKey", "Microsoft.KeyVault/managedHsm/keys/write/action"},
      {"DeleteKey", "Microsoft.KeyVault/managedHsm/keys/delete"},
      {"GetDeletedKeys", "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action"},
      {"GetDeletedKey", "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action"},
      {"RecoverDeletedKey", "Microsoft.KeyVault/managedHsm/keys/deletedKeys/recover/action"},
      {"PurgeDeletedKey", "Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete"},
      {"Sign", "Microsoft.KeyVault/managedHsm/keys/sign/action"},
      {"Verify", "Microsoft.KeyVault/managedHsm/keys/verify/action"},
      {"Encrypt", "Microsoft.KeyVault/managedHsm/keys/encrypt/action"},
      {"Decrypt", "Microsoft.KeyVault/managedHsm/keys/decrypt/action"},
      {"WrapKey", "Microsoft.KeyVault/managedHsm/keys/wrap/action"},
      {"UnwrapKey", "Microsoft.KeyVault/managedHsm/keys/unwrap/action"},
      {"RotateKey", "Microsoft.KeyVault/managedHsm/keys/rotate/action"},
      {"GetKeyRotationPolicy", "Microsoft.KeyVault/managedHsm/keys/read/action"},
      {"UpdateKeyRotationPolicy", "Microsoft.KeyVault/managedHsm/keys/write/action"},
      {"PlatformReport", "Microsoft.KeyVault/managedHsm/keys/read/action"},
      {"ReleaseKey", "Microsoft.KeyVault/managedHsm/keys/release/action"},
      {"GetRandomBytes", "Microsoft.KeyVault/managedHsm/rng/action"},
      {"BackupKey", "Microsoft.KeyVault/managedHsm/keys/backup/action"},
      {"RestoreKey", "Microsoft.KeyVault/managedHsm/keys/restore/action"},
      {"GetKeyAttestation", "Microsoft.KeyVault/managedHsm/keys/read/action"},
      // Managed HSM full backup and restore (on main since this branch was cut: listed here so
      // that they are not refused by the fail-closed default once merged).
      {"FullBackup", "Microsoft.KeyVault/managedHsm/backup/start/action"},
      {"FullBackupStatus", "Microsoft.KeyVault/managedHsm/backup/status/action"},
      {"FullRestoreOperation", "Microsoft.KeyVault/managedHsm/restore/start/action"},
      {"SelectiveKeyRestoreOperation", "Microsoft.KeyVault/managedHsm/restore/start/action"},
      {"RestoreStatus", "Microsoft.KeyVault/managedHsm/restore/status/action"},
      {"RoleDefinitions_List", "Microsoft.KeyVault/managedHsm/roleDefinitions/read/action"},
      {"RoleDefinitions_Get", "Microsoft.KeyVault/managedHsm/roleDefinitions/read/action"},
      {"RoleDefinitions_CreateOrUpdate",
       "Microsoft.KeyVault/managedHsm/roleDefinitions/write/action"},
      {"RoleDefinitions_Delete", "Microsoft.KeyVault/managedHsm/roleDefinitions/delete/action"},
      {"RoleAssignments_ListForScope", "Microsoft.KeyVault/managedHsm/roleAssignments/read/action"},
      {"RoleAssignments_Get", "Microsoft.KeyVault/managedHsm/roleAssignments/read/action"},
      {"RoleAssignments_Create", "Microsoft.KeyVault/managedHsm/roleAssignments/write/action"},
      {"RoleAssignments_Delete", "Microsoft.KeyVault/managedHsm/roleAssignments/delete/action"},
      {"HSMSecurityDomain_Download",
       "Microsoft.KeyVault/managedHsm/securitydomain/download/action"},
      {"HSMSecurityDomain_DownloadPending",
       "Microsoft.KeyVault/managedHsm/securitydomain/download/read"},
      {"HSMSecurityDomain_TransferKey",
       "Microsoft.KeyVault/managedHsm/securitydomain/transferkey/read"},
      {"HSMSecurityDomain_Upload", "Microsoft.KeyVault/managedHsm/securitydomain/upload/action"},
      {"HSMSecurityDomain_UploadPending",
       "Microsoft.KeyVault/managedHsm/securitydomain/upload/read"},
      // Settings: Azure documents no data action for them. Reading: any principal with a role
      // assignment ("*"); changing: whoever may write role definitions (Administrator, Crypto
      // Officer, Policy Administrator). keyport's choice.
      {"GetSettings", "*"},
      {"GetSettingValue", "*"},
      {"UpdateSetting", "Microsoft.KeyVault/managedHsm/roleDefinitions/write/action"},
  };
  for (const Entry& e : kEntries) {
    if (e.op == id) {
      return e.action;
    }
  }
  return {};
}

std::vector<std::string> data_actions_for(PermissionSet permissions) {
  struct Map {
    Permission permission;
    std::vector<std::string_view> actions;
  };
  static const std::vector<Map> kMap{
      {Permission::kGet, {"keys/read/action", "keys/deletedKeys/read/action"}},
      {Permission::kList, {"keys/read/action", "keys/deletedKeys/read/action"}},
      {Permission::kCreate, {"keys/create"}},
      {Permission::kImport, {"keys/import/action"}},
      {Permission::kUpdate, {"keys/write/action"}},
      {Permission::kDelete, {"keys/delete"}},
      {Permission::kRecover, {"keys/deletedKeys/recover/action"}},
      {Permission::kPurge, {"keys/deletedKeys/delete"}},
      {Permission::kSign, {"keys/sign/action"}},
      {Permission::kVerify, {"keys/verify/action"}},
      {Permission::kEncrypt, {"keys/encrypt/action"}},
      {Permission::kDecrypt, {"keys/decrypt/action"}},
      {Permission::kWrapKey, {"keys/wrap/action"}},
      {Permission::kUnwrapKey, {"keys/unwrap/action"}},
      {Permission::kRelease, {"keys/release/action"}},
      {Permission::kRotate, {"keys/rotate/action"}},
      {Permission::kGetRotationPolicy, {"keys/read/action"}},
      {Permission::kSetRotationPolicy, {"keys/write/action"}},
      // The access file's backup and restore also allow full backups and restores.
      {Permission::kBackup, {"keys/backup/action", "backup/start/action", "backup/status/action"}},
      {Permission::kRestore,
       {"keys/restore/action", "restore/start/action", "restore/status/action"}},
  };
  std::vector<std::string> out;
  auto add = [&out](std::string_view what) {
    std::string a = rbac_action(what);
    if (std::find(out.begin(), out.end(), a) == out.end()) {
      out.push_back(std::move(a));
    }
  };
  for (const Map& m : kMap) {
    if ((permissions & static_cast<PermissionSet>(m.permission)) != 0) {
      for (std::string_view a : m.actions) {
        add(a);
      }
    }
  }
  add("rng/action");  // every caller could ask for random bytes before RBAC
  return out;
}

Result<std::string> normalise_scope(std::string_view scope) {
  std::string_view s = scope;
  while (!s.empty() && s.front() == '/') {
    s.remove_prefix(1);
  }
  while (!s.empty() && s.back() == '/') {
    s.remove_suffix(1);
  }
  if (s.empty()) {
    return std::string("/");
  }
  const auto slash = s.find('/');
  const std::string_view first = s.substr(0, slash);
  if (iequals(first, "keys")) {
    if (slash == std::string_view::npos) {
      return std::string("/keys");
    }
    const std::string_view key = s.substr(slash + 1);
    const bool ok =
        !key.empty() && key.size() <= 127 && std::all_of(key.begin(), key.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-';
        });
    if (ok) {
      return "/keys/" + std::string(key);
    }
  }
  return bad_parameter("The scope '" + escape_for_log(scope) +
                       "' is not valid: Managed HSM scopes are \"/\", \"/keys\" and "
                       "\"/keys/<key name>\".");
}

// --- Rbac -------------------------------------------------------------------------------------

Result<std::unique_ptr<Rbac>> Rbac::open(Store& store, AuditFn audit) {
  std::unique_ptr<Rbac> r(new Rbac(store, std::move(audit)));
  KEYPORT_ASSIGN_OR_RETURN(auto rows, store.rbac_rows());
  for (const RbacRow& row : rows) {
    auto doc = parse_json_strict(row.doc);
    if (!doc || !doc->is_object()) {
      return internal_error("vault database holds an invalid RBAC document (" + row.kind + " " +
                            row.name + ")");
    }
    if (row.kind == kRbacState) {
      r->m_initialised = true;
    } else if (row.kind == kRbacDefinition) {
      auto d = rbac_parse_definition(*doc, row.name, true);
      if (!d) {
        return internal_error("vault database holds an invalid role definition " + row.name);
      }
      r->m_custom.push_back(std::move(*d));
    } else if (row.kind == kRbacAssignment) {
      RoleAssignment a;
      a.name = row.name;
      a.scope = doc->value("scope", "");
      a.role_definition = doc->value("roleDefinitionId", "");
      a.principal_id = doc->value("principalId", "");
      r->m_assignments.push_back(std::move(a));
    } else if (row.kind == kRbacSetting) {
      r->m_settings.push_back(Setting{row.name, doc->value("type", ""), doc->value("value", "")});
    }
  }
  for (const RbacSettingSpec& spec : kRbacSettings) {
    const bool known = std::any_of(r->m_settings.begin(), r->m_settings.end(),
                                   [&](const Setting& s) { return s.name == spec.name; });
    if (!known) {
      r->m_settings.push_back(
          Setting{std::string(spec.name), std::string(spec.type), std::string(spec.default_value)});
    }
  }
  return r;
}

bool Rbac::initialised() const {
  std::shared_lock lock(m_mutex);
  return m_initialised;
}

Status Rbac::initialise(const std::vector<Principal>& principals, std::string_view caller) {
  std::unique_lock lock(m_mutex);
  if (m_initialised) {
    return {};
  }
  std::vector<RbacRow> rows;
  std::vector<RoleDefinition> custom;
  std::vector<RoleAssignment> assignments;
  auto assign = [&](const std::string& principal, std::string_view role) {
    RoleAssignment a;
    a.name = rbac_lower(random_uuid());
    a.scope = "/";
    a.role_definition = std::string(role);
    a.principal_id = principal;
    rows.push_back(RbacRow{kRbacAssignment, a.name, dump_json(rbac_stored_assignment(a))});
    assignments.push_back(std::move(a));
  };
  for (const Principal& p : principals) {
    const std::string id = p.object_id.empty() ? p.name : p.object_id;
    if (p.permissions == all_permissions()) {
      assign(id, kRoleAdministrator);
      assign(id, kRoleCryptoOfficer);
      assign(id, kRoleCryptoUser);
      continue;
    }
    RoleDefinition d;
    d.name = rbac_lower(random_uuid());
    d.role_name = "keyport access file: " + p.name;
    d.description = "The access-file permissions of " + p.name +
                    " when Managed HSM local RBAC was initialised.";
    d.permissions.push_back(RolePermission{{}, {}, data_actions_for(p.permissions), {}});
    d.assignable_scopes = {"/"};
    rows.push_back(RbacRow{kRbacDefinition, d.name, dump_json(rbac_stored_definition(d))});
    assign(id, d.name);
    custom.push_back(std::move(d));
  }
  rows.push_back(
      RbacRow{kRbacState, "initialised", dump_json(Json{{"principals", principals.size()}})});
  Status st = m_store.rbac_write(rows);
  if (m_audit) {
    m_audit("InitialiseRbac", std::string(caller), "", st ? nullptr : &st.error());
  }
  KEYPORT_TRY(std::move(st));
  m_initialised = true;
  for (auto& d : custom) {
    m_custom.push_back(std::move(d));
  }
  for (auto& a : assignments) {
    m_assignments.push_back(std::move(a));
  }
  return {};
}

const RoleDefinition* Rbac::find_definition(std::string_view name) const {
  static const std::vector<RoleDefinition> built_ins = [] {
    std::vector<RoleDefinition> out;
    for (const BuiltInRole& b : rbac_built_ins()) {
      RoleDefinition d;
      d.name = std::string(b.id);
      d.role_name = std::string(b.name);
      d.description = std::string(b.description);
      d.built_in = true;
      RolePermission p;
      for (std::string_view a : b.actions) {
        p.data_actions.push_back(rbac_action(a));
      }
      d.permissions.push_back(std::move(p));
      d.assignable_scopes = {"/"};
      out.push_back(std::move(d));
    }
    return out;
  }();
  for (const RoleDefinition& d : built_ins) {
    if (iequals(d.name, name)) {
      return &d;
    }
  }
  for (const RoleDefinition& d : m_custom) {
    if (iequals(d.name, name)) {
      return &d;
    }
  }
  return nullptr;
}

std::vector<RoleDefinition> Rbac::definitions() const {
  std::shared_lock lock(m_mutex);
  std::vector<RoleDefinition> out;
  for (const BuiltInRole& b : rbac_built_ins()) {
    out.push_back(*find_definition(b.id));
  }
  out.insert(out.end(), m_custom.begin(), m_custom.end());
  return out;
}

std::vector<RoleAssignment> Rbac::assignments() const {
  std::shared_lock lock(m_mutex);
  return m_assignments;
}

bool Rbac::permits(const Principal& principal, std::string_view data_action,
                   std::string_view key_name) const {
  std::shared_lock lock(m_mutex);
  bool granted = false;
  bool denied = false;
  for (const RoleAssignment& a : m_assignments) {
    if (!rbac_principal_matches(principal, a.principal_id)) {
      continue;
    }
    if (data_action == "*") {
      return true;
    }
    if (!rbac_scope_covers(a.scope, key_name)) {
      continue;
    }
    const RoleDefinition* d = find_definition(a.role_definition);
    if (d == nullptr) {
      continue;
    }
    for (const RolePermission& p : d->permissions) {
      for (const std::string& g : p.data_actions) {
        granted = granted || iequals(g, data_action);
      }
      for (const std::string& n : p.not_data_actions) {
        denied = denied || iequals(n, data_action);
      }
    }
  }
  return granted && !denied;
}

// --- role definitions -------------------------------------------------------------------------

Result<Json> Rbac::list_definitions(std::string_view scope, std::string_view filter) const {
  KEYPORT_ASSIGN_OR_RETURN(RbacFilter f, parse_rbac_filter(filter, false));
  (void)scope;
  Json value = Json::array();
  for (const RoleDefinition& d : definitions()) {
    if (f.role_name && !iequals(*f.role_name, d.role_name)) {
      continue;
    }
    value.push_back(rbac_definition_json(d));
  }
  return Json{{"value", std::move(value)}};
}

Result<Json> Rbac::get_definition(std::string_view scope, std::string_view name) const {
  (void)scope;
  std::shared_lock lock(m_mutex);
  const RoleDefinition* d = find_definition(name);
  if (d == nullptr) {
    return rbac_not_found("RoleDefinitionNotFound",
                          "Requested role definition '" + escape_for_log(name) + "' not found.");
  }
  return rbac_definition_json(*d);
}

Result<Json> Rbac::put_definition(std::string_view scope, std::string_view name, const Json& body,
                                  const std::string& caller) {
  auto run = [&]() -> Result<Json> {
    if (scope != "/" && scope != "/keys") {
      return bad_parameter("Role definitions are created at scope \"/\" or \"/keys\".");
    }
    if (!is_uuid(name)) {
      return bad_parameter("The role definition name '" + escape_for_log(name) +
                           "' is not a valid GUID.");
    }
    if (!body.is_object()) {
      return bad_parameter("The request body must be {\"properties\": {...}}.");
    }
    KEYPORT_TRY(rbac_only_members(body, {"properties"}, "RoleDefinitionCreateParameters"));
    auto props = body.find("properties");
    if (props == body.end()) {
      return bad_parameter("The request body must be {\"properties\": {...}}.");
    }
    KEYPORT_ASSIGN_OR_RETURN(RoleDefinition d, rbac_parse_definition(*props, name, false));
    std::unique_lock lock(m_mutex);
    const RoleDefinition* existing = find_definition(d.name);
    if (existing != nullptr && existing->built_in) {
      return bad_parameter(
          "Cannot re-use the name/GUID matching that of a built-in role. Please use a unique role "
          "ID.");
    }
    for (const BuiltInRole& b : rbac_built_ins()) {
      if (!d.role_name.empty() && iequals(b.name, d.role_name)) {
        return rbac_conflict("A built-in role is named '" + d.role_name + "'.");
      }
    }
    for (const RoleDefinition& other : m_custom) {
      if (!d.role_name.empty() && other.name != d.name && iequals(other.role_name, d.role_name)) {
        return rbac_conflict("A role definition named '" + d.role_name + "' exists (" + other.name +
                             ").");
      }
    }
    if (m_custom.size() >= 4096 && existing == nullptr) {
      return bad_parameter("This Managed HSM holds the most custom roles keyport allows (4096).");
    }
    KEYPORT_TRY(m_store.rbac_write(
        {RbacRow{kRbacDefinition, d.name, dump_json(rbac_stored_definition(d))}}));
    Json out = rbac_definition_json(d);
    auto it = std::find_if(m_custom.begin(), m_custom.end(),
                           [&](const RoleDefinition& r) { return r.name == d.name; });
    if (it != m_custom.end()) {
      *it = std::move(d);
    } else {
      m_custom.push_back(std::move(d));
    }
    return out;
  };
  Result<Json> r = run();
  if (m_audit) {
    m_audit("RoleDefinitions_CreateOrUpdate", caller, std::string(name), r ? nullptr : &r.error());
  }
  return r;
}

Result<Json> Rbac::delete_definition(std::string_view scope, std::string_view name,
                                     const std::string& caller) {
  (void)scope;
  auto run = [&]() -> Result<Json> {
    std::unique_lock lock(m_mutex);
    const RoleDefinition* d = find_definition(name);
    if (d == nullptr) {
      return rbac_not_found("RoleDefinitionNotFound",
                            "Requested role definition '" + escape_for_log(name) + "' not found.");
    }
    if (d->built_in) {
      return bad_parameter("Built-in role definitions cannot be deleted.");
    }
    for (const RoleAssignment& a : m_assignments) {
      if (iequals(a.role_definition, d->name)) {
        return rbac_conflict("The role definition " + d->name + " is used by role assignment " +
                             a.name + ": delete it first.");
      }
    }
    Json out = rbac_definition_json(*d);
    KEYPORT_TRY(m_store.rbac_write({}, {{kRbacDefinition, d->name}}));
    const std::string gone = d->name;
    m_custom.erase(std::remove_if(m_custom.begin(), m_custom.end(),
                                  [&](const RoleDefinition& r) { return r.name == gone; }),
                   m_custom.end());
    return out;
  };
  Result<Json> r = run();
  if (m_audit) {
    m_audit("RoleDefinitions_Delete", caller, std::string(name), r ? nullptr : &r.error());
  }
  return r;
}

// --- role assignments -------------------------------------------------------------------------

Result<Json> Rbac::list_assignments(std::string_view scope, std::string_view filter) const {
  KEYPORT_ASSIGN_OR_RETURN(RbacFilter f, parse_rbac_filter(filter, true));
  Json value = Json::array();
  for (const RoleAssignment& a : assignments()) {
    const bool at = iequals(a.scope, scope);
    const bool below = scope == "/" || (scope == "/keys" && a.scope.rfind("/keys", 0) == 0);
    if (f.at_scope ? !at : !(at || below)) {
      continue;
    }
    if (f.principal_id && !iequals(*f.principal_id, a.principal_id)) {
      continue;
    }
    value.push_back(rbac_assignment_json(a));
  }
  return Json{{"value", std::move(value)}};
}

Result<Json> Rbac::get_assignment(std::string_view scope, std::string_view name) const {
  std::shared_lock lock(m_mutex);
  for (const RoleAssignment& a : m_assignments) {
    if (iequals(a.name, name) && iequals(a.scope, scope)) {
      return rbac_assignment_json(a);
    }
  }
  return rbac_not_found("RoleAssignmentNotFound", "Requested role assignment not found.");
}

Result<Json> Rbac::put_assignment(std::string_view scope, std::string_view name, const Json& body,
                                  const std::string& caller) {
  auto run = [&]() -> Result<Json> {
    if (!is_uuid(name)) {
      return bad_parameter("The role assignment name '" + escape_for_log(name) +
                           "' is not a valid GUID.");
    }
    const std::string where = "RoleAssignmentCreateParameters";
    if (!body.is_object()) {
      return bad_parameter("The request body must be {\"properties\": {...}}.");
    }
    KEYPORT_TRY(rbac_only_members(body, {"properties"}, where));
    auto props = body.find("properties");
    if (props == body.end() || !props->is_object()) {
      return bad_parameter("The request body must be {\"properties\": {...}}.");
    }
    KEYPORT_TRY(rbac_only_members(*props, {"roleDefinitionId", "principalId"}, where));
    KEYPORT_ASSIGN_OR_RETURN(std::string role,
                             rbac_optional_string(*props, "roleDefinitionId", where));
    KEYPORT_ASSIGN_OR_RETURN(std::string principal,
                             rbac_optional_string(*props, "principalId", where));
    if (role.empty() || principal.empty() || principal.size() > 256) {
      return bad_parameter(where + ": 'roleDefinitionId' and 'principalId' are required.");
    }
    std::optional<std::string> guid = rbac_definition_guid(role);
    if (!guid) {
      return bad_parameter("The roleDefinitionId '" + escape_for_log(role) +
                           "' is not a role definition id.");
    }
    RoleAssignment a;
    a.name = rbac_lower(name);
    a.scope = std::string(scope);
    a.role_definition = *guid;
    a.principal_id = principal;
    std::unique_lock lock(m_mutex);
    if (find_definition(a.role_definition) == nullptr) {
      return rbac_not_found("RoleDefinitionNotFound",
                            "Requested role definition '" + a.role_definition + "' not found.");
    }
    for (const RoleAssignment& other : m_assignments) {
      if (other.name == a.name) {
        return rbac_conflict("The role assignment " + a.name + " already exists.");
      }
      if (iequals(other.scope, a.scope) && other.role_definition == a.role_definition &&
          iequals(other.principal_id, a.principal_id)) {
        return rbac_conflict("The role assignment already exists (" + other.name + ").");
      }
    }
    if (m_assignments.size() >= 65536) {
      return bad_parameter("This Managed HSM holds the most role assignments keyport allows.");
    }
    KEYPORT_TRY(m_store.rbac_write(
        {RbacRow{kRbacAssignment, a.name, dump_json(rbac_stored_assignment(a))}}));
    Json out = rbac_assignment_json(a);
    m_assignments.push_back(std::move(a));
    return out;
  };
  Result<Json> r = run();
  if (m_audit) {
    m_audit("RoleAssignments_Create", caller, std::string(name), r ? nullptr : &r.error());
  }
  return r;
}

Result<Json> Rbac::delete_assignment(std::string_view scope, std::string_view name,
                                     const std::string& caller) {
  auto run = [&]() -> Result<Json> {
    std::unique_lock lock(m_mutex);
    auto it = std::find_if(m_assignments.begin(), m_assignments.end(), [&](const auto& a) {
      return iequals(a.name, name) && iequals(a.scope, scope);
    });
    if (it == m_assignments.end()) {
      return rbac_not_found("RoleAssignmentNotFound", "Requested role assignment not found.");
    }
    Json out = rbac_assignment_json(*it);
    KEYPORT_TRY(m_store.rbac_write({}, {{kRbacAssignment, it->name}}));
    m_assignments.erase(it);
    return out;
  };
  Result<Json> r = run();
  if (m_audit) {
    m_audit("RoleAssignments_Delete", caller, std::string(name), r ? nullptr : &r.error());
  }
  return r;
}

// --- settings ---------------------------------------------------------------------------------

Result<Json> Rbac::list_settings() const {
  std::shared_lock lock(m_mutex);
  Json value = Json::array();
  for (const Setting& s : m_settings) {
    value.push_back(Json{{"name", s.name}, {"type", s.type}, {"value", s.value}});
  }
  return Json{{"settings", std::move(value)}};
}

Result<Json> Rbac::get_setting(std::string_view name) const {
  std::shared_lock lock(m_mutex);
  for (const Setting& s : m_settings) {
    if (s.name == name) {
      return Json{{"name", s.name}, {"type", s.type}, {"value", s.value}};
    }
  }
  return rbac_not_found("SettingNotFound", "The setting '" + escape_for_log(name) +
                                               "' does not exist (GET /settings lists them).");
}

Result<Json> Rbac::update_setting(std::string_view name, const Json& body,
                                  const std::string& caller) {
  auto run = [&]() -> Result<Json> {
    if (!body.is_object()) {
      return bad_parameter("The request body must be {\"value\": \"...\"}.");
    }
    KEYPORT_TRY(rbac_only_members(body, {"value"}, "UpdateSettingRequest"));
    auto v = body.find("value");
    if (v == body.end() || !v->is_string()) {
      return bad_parameter("UpdateSettingRequest: 'value' is required and must be a string.");
    }
    std::unique_lock lock(m_mutex);
    auto it = std::find_if(m_settings.begin(), m_settings.end(),
                           [&](const Setting& s) { return s.name == name; });
    if (it == m_settings.end()) {
      return rbac_not_found("SettingNotFound", "The setting '" + escape_for_log(name) +
                                                   "' does not exist (GET /settings lists them).");
    }
    std::string value = v->get<std::string>();
    if (it->type == "boolean") {
      const std::string low = rbac_lower(value);
      if (low != "true" && low != "false") {
        return bad_parameter("The setting " + it->name + " is a boolean: 'true' or 'false'.");
      }
      value = low;
    }
    Setting updated = *it;
    updated.value = value;
    KEYPORT_TRY(m_store.rbac_write(
        {RbacRow{kRbacSetting, updated.name,
                 dump_json(Json{{"type", updated.type}, {"value", updated.value}})}}));
    *it = updated;
    return Json{{"name", updated.name}, {"type", updated.type}, {"value", updated.value}};
  };
  Result<Json> r = run();
  if (m_audit) {
    m_audit("UpdateSetting", caller, std::string(name), r ? nullptr : &r.error());
  }
  return r;
}

}  // namespace keyport::vault
