// SPDX-License-Identifier: Apache-2.0
// The REST operations table (each operation with its permission and its handler) and the Key
// Vault path shapes that lead to them.
#include <optional>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "vault/rbac.h"
#include "vault/rest_internal.h"

namespace keyport::vault::rest {
namespace {

// Indexes into kOps (the order of the table).
enum class OpId {
  kCreate,
  kImport,
  kGet,
  kList,
  kVersions,
  kUpdate,
  kDelete,
  kListDeleted,
  kGetDeleted,
  kRecover,
  kPurge,
  kSign,
  kVerify,
  kEncrypt,
  kDecrypt,
  kWrapKey,
  kUnwrapKey,
  kRotate,
  kGetRotationPolicy,
  kSetRotationPolicy,
  kPlatformReport,
  kRelease,
  kRandom,
  kListSubscriptions,
  kBackup,
  kRestore,
  kAttestation,
  kFullBackup,
  kFullBackupStatus,
  kFullRestore,
  kRestoreStatus,
  kSelectiveRestore,
  kListRoleDefinitions,
  kGetRoleDefinition,
  kPutRoleDefinition,
  kDeleteRoleDefinition,
  kListRoleAssignments,
  kGetRoleAssignment,
  kPutRoleAssignment,
  kDeleteRoleAssignment,
  kGetSettings,
  kGetSetting,
  kUpdateSetting,
  kSdDownload,
  kSdDownloadPending,
  kSdTransferKey,
  kSdUpload,
  kSdUploadPending,
  kCount,
};

Result<Json> purge(const OpCall& c) {
  KEYPORT_TRY(c.vault.purge_deleted_key(c.ctx, c.name));
  return Json();
}

// Managed HSM local RBAC and settings (vault/rbac.h): Managed HSM only, as in Azure.
Status managed_hsm_only(const OpCall& c) {
  if (c.vault.config().flavor != Flavor::kManagedHsm) {
    return bad_parameter(
        "Role management and settings are Managed HSM operations: this vault is a Key Vault "
        "(keyport vault init --flavor managed-hsm).");
  }
  return {};
}

template <typename Fn>
Result<Json> with_scope(const OpCall& c, Fn&& fn) {
  KEYPORT_TRY(managed_hsm_only(c));
  KEYPORT_ASSIGN_OR_RETURN(std::string scope, normalise_scope(c.scope));
  return fn(scope);
}

Result<Json> list_role_definitions(const OpCall& c) {
  return with_scope(
      c, [&](const std::string& s) { return c.vault.rbac().list_definitions(s, c.filter); });
}
Result<Json> get_role_definition(const OpCall& c) {
  return with_scope(c,
                    [&](const std::string& s) { return c.vault.rbac().get_definition(s, c.name); });
}
Result<Json> put_role_definition(const OpCall& c) {
  return with_scope(c, [&](const std::string& s) {
    return c.vault.rbac().put_definition(s, c.name, c.body, c.ctx.caller);
  });
}
Result<Json> delete_role_definition(const OpCall& c) {
  return with_scope(c, [&](const std::string& s) {
    return c.vault.rbac().delete_definition(s, c.name, c.ctx.caller);
  });
}
Result<Json> list_role_assignments(const OpCall& c) {
  return with_scope(
      c, [&](const std::string& s) { return c.vault.rbac().list_assignments(s, c.filter); });
}
Result<Json> get_role_assignment(const OpCall& c) {
  return with_scope(c,
                    [&](const std::string& s) { return c.vault.rbac().get_assignment(s, c.name); });
}
Result<Json> put_role_assignment(const OpCall& c) {
  return with_scope(c, [&](const std::string& s) {
    return c.vault.rbac().put_assignment(s, c.name, c.body, c.ctx.caller);
  });
}
Result<Json> delete_role_assignment(const OpCall& c) {
  return with_scope(c, [&](const std::string& s) {
    return c.vault.rbac().delete_assignment(s, c.name, c.ctx.caller);
  });
}
Result<Json> get_settings(const OpCall& c) {
  KEYPORT_TRY(managed_hsm_only(c));
  return c.vault.rbac().list_settings();
}
Result<Json> get_setting(const OpCall& c) {
  KEYPORT_TRY(managed_hsm_only(c));
  return c.vault.rbac().get_setting(c.name);
}
Result<Json> update_setting(const OpCall& c) {
  KEYPORT_TRY(managed_hsm_only(c));
  return c.vault.rbac().update_setting(c.name, c.body, c.ctx.caller);
}

// In OpId order. operationId, permission, needs a body, paged, success status, handler, the
// first api-version with the operation, whether the body holds key properties.
constexpr RestOp kOps[] = {
    {"CreateKey", Permission::kCreate, true, false, 200,
     [](const OpCall& c) { return c.vault.create_key(c.ctx, c.name, c.body); }, nullptr, true},
    {"ImportKey", Permission::kImport, true, false, 200,
     [](const OpCall& c) { return c.vault.import_key(c.ctx, c.name, c.body); }, nullptr, true},
    {"GetKey", Permission::kGet, false, false, 200,
     [](const OpCall& c) { return c.vault.get_key(c.ctx, c.name, c.version); }},
    {"GetKeys", Permission::kList, false, true, 200,
     [](const OpCall& c) { return c.vault.list_keys(c.ctx); }},
    {"GetKeyVersions", Permission::kList, false, true, 200,
     [](const OpCall& c) { return c.vault.list_key_versions(c.ctx, c.name); }},
    {"UpdateKey", Permission::kUpdate, true, false, 200,
     [](const OpCall& c) { return c.vault.update_key(c.ctx, c.name, c.version, c.body); }, nullptr,
     true},
    {"DeleteKey", Permission::kDelete, false, false, 200,
     [](const OpCall& c) { return c.vault.delete_key(c.ctx, c.name); }},
    {"GetDeletedKeys", Permission::kList, false, true, 200,
     [](const OpCall& c) { return c.vault.list_deleted_keys(c.ctx); }, kApi2016},
    {"GetDeletedKey", Permission::kGet, false, false, 200,
     [](const OpCall& c) { return c.vault.get_deleted_key(c.ctx, c.name); }, kApi2016},
    {"RecoverDeletedKey", Permission::kRecover, false, false, 200,
     [](const OpCall& c) { return c.vault.recover_deleted_key(c.ctx, c.name); }, kApi2016},
    {"PurgeDeletedKey", Permission::kPurge, false, false, 204, purge, kApi2016},
    {"Sign", Permission::kSign, true, false, 200,
     [](const OpCall& c) { return c.vault.sign(c.ctx, c.name, c.version, c.body); }},
    {"Verify", Permission::kVerify, true, false, 200,
     [](const OpCall& c) { return c.vault.verify(c.ctx, c.name, c.version, c.body); }},
    {"Encrypt", Permission::kEncrypt, true, false, 200,
     [](const OpCall& c) { return c.vault.encrypt(c.ctx, c.name, c.version, c.body); }},
    {"Decrypt", Permission::kDecrypt, true, false, 200,
     [](const OpCall& c) { return c.vault.decrypt(c.ctx, c.name, c.version, c.body); }},
    {"WrapKey", Permission::kWrapKey, true, false, 200,
     [](const OpCall& c) { return c.vault.wrap_key(c.ctx, c.name, c.version, c.body); }},
    {"UnwrapKey", Permission::kUnwrapKey, true, false, 200,
     [](const OpCall& c) { return c.vault.unwrap_key(c.ctx, c.name, c.version, c.body); }},
    // Access-policy permissions "rotate", "getrotationpolicy", "setrotationpolicy" (Key Vault's
    // how-to-configure-key-rotation: with access policies these three are required).
    {"RotateKey", Permission::kRotate, false, false, 200,
     [](const OpCall& c) { return c.vault.rotate_key(c.ctx, c.name); }, kApi73Preview},
    {"GetKeyRotationPolicy", Permission::kGetRotationPolicy, false, false, 200,
     [](const OpCall& c) { return c.vault.get_rotation_policy(c.ctx, c.name); }, kApi73Preview},
    {"UpdateKeyRotationPolicy", Permission::kSetRotationPolicy, true, false, 200,
     [](const OpCall& c) { return c.vault.update_rotation_policy(c.ctx, c.name, c.body); },
     kApi73Preview},
    // keyport's own route (not Key Vault's): GET /keyport/platform-report.
    {"PlatformReport", Permission::kList, false, false, 200,
     [](const OpCall& c) { return c.vault.platform_report(c.ctx); }},
    // Secure Key Release (vault/release.h): access-policy permission "release".
    {"ReleaseKey", Permission::kRelease, true, false, 200,
     [](const OpCall& c) {
       return c.release.release(c.ctx, c.name, c.version, c.body, c.api_version);
     },
     kApi73Preview},
    // Managed HSM's GetRandomBytes (7.2): any authenticated caller (every built-in Managed HSM
    // crypto role has the rng action; the access file has no permission for it).
    {"GetRandomBytes", Permission::kGet, true, false, 200,
     [](const OpCall& c) { return c.vault.get_random_bytes(c.ctx, c.body); }, "7.2", false,
     /*any_caller=*/true},
    // Azure Resource Manager's Subscriptions - List, which `az login --identity` calls before
    // anything else: keyport simulates no ARM, so the answer is always "no subscription" (az then
    // keeps a tenant-level account with --allow-no-subscriptions). Not Key Vault's.
    {"ListSubscriptions", Permission::kGet, false, false, 200,
     [](const OpCall&) -> Result<Json> {
       return Json{{"value", Json::array()}};
     },
     nullptr, false,
     /*any_caller=*/true, /*resource_manager=*/true},
    // BackupKey and RestoreKey (vault/vault_backup.cpp): access-policy permissions "backup" and
    // "restore".
    {"BackupKey", Permission::kBackup, false, false, 200,
     [](const OpCall& c) { return c.vault.backup_key(c.ctx, c.name); }},
    {"RestoreKey", Permission::kRestore, true, false, 200,
     [](const OpCall& c) { return c.vault.restore_key(c.ctx, c.body); }},
    // GetKeyAttestation (vault/attestation.h, SIMULATED): keys/get, since 7.6-preview.1.
    {"GetKeyAttestation", Permission::kGet, false, false, 200,
     [](const OpCall& c) { return c.vault.get_key_attestation(c.ctx, c.name, c.version); },
     "7.6-preview.1"},
    // Managed HSM full backup and restore (vault/vault_full_backup.cpp): 202 with the operation
    // status and an Azure-AsyncOperation header naming the status route (RestApi adds it).
    {"FullBackup", Permission::kBackup, true, false, 202,
     [](const OpCall& c) { return c.vault.begin_full_backup(c.ctx, c.body); }, "7.2"},
    {"FullBackupStatus", Permission::kBackup, false, false, 200,
     [](const OpCall& c) { return c.vault.full_backup_status(c.ctx, c.name); }, "7.2"},
    {"FullRestoreOperation", Permission::kRestore, true, false, 202,
     [](const OpCall& c) { return c.vault.begin_full_restore(c.ctx, c.body); }, "7.2"},
    {"RestoreStatus", Permission::kRestore, false, false, 200,
     [](const OpCall& c) { return c.vault.restore_status(c.ctx, c.name); }, "7.2"},
    {"SelectiveKeyRestoreOperation", Permission::kRestore, true, false, 202,
     [](const OpCall& c) { return c.vault.begin_selective_key_restore(c.ctx, c.name, c.body); },
     "7.2"},
    // Managed HSM local RBAC (rbac.json, 7.2) and settings (settings.json, 7.4-preview.1). Their
    // data actions: vault/rbac.cpp data_action_for. PUT answers 201, as Azure's.
    {"RoleDefinitions_List", Permission::kGet, false, true, 200, list_role_definitions, kApi72,
     false, false, false, true},
    {"RoleDefinitions_Get", Permission::kGet, false, false, 200, get_role_definition, kApi72, false,
     false, false, true},
    {"RoleDefinitions_CreateOrUpdate", Permission::kGet, true, false, 201, put_role_definition,
     kApi72, false, false, false, true},
    {"RoleDefinitions_Delete", Permission::kGet, false, false, 200, delete_role_definition, kApi72,
     false, false, false, true},
    {"RoleAssignments_ListForScope", Permission::kGet, false, true, 200, list_role_assignments,
     kApi72, false, false, false, true},
    {"RoleAssignments_Get", Permission::kGet, false, false, 200, get_role_assignment, kApi72, false,
     false, false, true},
    {"RoleAssignments_Create", Permission::kGet, true, false, 201, put_role_assignment, kApi72,
     false, false, false, true},
    {"RoleAssignments_Delete", Permission::kGet, false, false, 200, delete_role_assignment, kApi72,
     false, false, false, true},
    {"GetSettings", Permission::kGet, false, false, 200, get_settings, kApi74Preview, false, false,
     false, true},
    {"GetSettingValue", Permission::kGet, false, false, 200, get_setting, kApi74Preview, false,
     false, false, true},
    {"UpdateSetting", Permission::kGet, true, false, 200, update_setting, kApi74Preview, false,
     false, false, true},
    // Managed HSM security domain (vault/vault_security_domain.cpp, 7.2): the operations of an HSM
    // that is not activated. Download and upload answer 202 with an Azure-AsyncOperation header
    // naming their pending route (RestApi adds it).
    {"HSMSecurityDomain_Download", Permission::kGet, true, false, 202,
     [](const OpCall& c) { return c.vault.security_domain_download(c.ctx, c.body); }, kApi72, false,
     false, false, true, true},
    {"HSMSecurityDomain_DownloadPending", Permission::kGet, false, false, 200,
     [](const OpCall& c) { return c.vault.security_domain_status(c.ctx, false); }, kApi72, false,
     false, false, true, true},
    {"HSMSecurityDomain_TransferKey", Permission::kGet, false, false, 200,
     [](const OpCall& c) { return c.vault.security_domain_transfer_key(c.ctx); }, kApi72, false,
     false, false, true, true},
    {"HSMSecurityDomain_Upload", Permission::kGet, true, false, 202,
     [](const OpCall& c) { return c.vault.security_domain_upload(c.ctx, c.body); }, kApi72, false,
     false, false, true, true},
    {"HSMSecurityDomain_UploadPending", Permission::kGet, false, false, 200,
     [](const OpCall& c) { return c.vault.security_domain_status(c.ctx, true); }, kApi72, false,
     false, false, true, true},
};
static_assert(std::size(kOps) == static_cast<std::size_t>(OpId::kCount),
              "kOps has one entry per OpId, in OpId order");

const RestOp* op_of(OpId id) {
  return &kOps[static_cast<std::size_t>(id)];
}

// The key operations of POST /keys/{name}[/{version}]/<op>.
std::optional<OpId> crypto_op(const std::string& segment) {
  if (segment == "sign") {
    return OpId::kSign;
  }
  if (segment == "verify") {
    return OpId::kVerify;
  }
  if (segment == "encrypt") {
    return OpId::kEncrypt;
  }
  if (segment == "decrypt") {
    return OpId::kDecrypt;
  }
  if (segment == "wrapkey") {
    return OpId::kWrapKey;
  }
  if (segment == "unwrapkey") {
    return OpId::kUnwrapKey;
  }
  return std::nullopt;
}

// One path shape: the methods it takes and what each does.
struct Shape {
  std::vector<std::pair<std::string_view, std::optional<OpId>>>
      methods;  // nullopt: not implemented
  std::string feature;
};

RouteMatch resolve(const std::string& method, const Shape& shape, std::string name,
                   std::string version) {
  RouteMatch m;
  for (const auto& [verb, op] : shape.methods) {
    m.allow += (m.allow.empty() ? "" : ", ") + std::string(verb);
  }
  for (const auto& [verb, op] : shape.methods) {
    if (verb != method) {
      continue;
    }
    if (!op) {
      m.kind = RouteMatch::Kind::kNotImplemented;
      m.feature = shape.feature;
      return m;
    }
    m.kind = RouteMatch::Kind::kRoute;
    m.op = op_of(*op);
    m.name = std::move(name);
    m.version = std::move(version);
    return m;
  }
  m.kind = RouteMatch::Kind::kBadMethod;
  return m;
}

}  // namespace

Permission not_implemented_permission(std::string_view feature) {
  if (feature == "BackupKey") {
    return Permission::kBackup;
  }
  if (feature == "RestoreKey") {
    return Permission::kRestore;
  }
  return Permission::kGet;
}

// Managed HSM local RBAC: {scope}/providers/Microsoft.Authorization/role{Definitions,
// Assignments}[/{name}], where {scope} is "/", "/keys" or "/keys/{key}" and SDKs send it after a
// slash of their own ("///providers/...", "//keys/providers/...").
std::optional<RouteMatch> match_rbac_route(const std::string& method, const std::string& path) {
  static constexpr std::string_view kProviders = "/providers/microsoft.authorization/";
  const std::string low = ascii_lower(path);
  const auto at = low.find(kProviders);
  if (at == std::string::npos) {
    return std::nullopt;
  }
  const std::string rest = path.substr(at + kProviders.size());
  const auto slash = rest.find('/');
  const std::string kind = ascii_lower(rest.substr(0, slash));
  const std::string name = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (name.find('/') != std::string::npos || (slash != std::string::npos && name.empty())) {
    return RouteMatch{};
  }
  RouteMatch m;
  if (kind == "roledefinitions") {
    m = name.empty() ? resolve(method, {{{"GET", OpId::kListRoleDefinitions}}, ""}, "", "")
                     : resolve(method,
                               {{{"GET", OpId::kGetRoleDefinition},
                                 {"PUT", OpId::kPutRoleDefinition},
                                 {"DELETE", OpId::kDeleteRoleDefinition}},
                                ""},
                               name, "");
  } else if (kind == "roleassignments") {
    m = name.empty() ? resolve(method, {{{"GET", OpId::kListRoleAssignments}}, ""}, "", "")
                     : resolve(method,
                               {{{"GET", OpId::kGetRoleAssignment},
                                 {"PUT", OpId::kPutRoleAssignment},
                                 {"DELETE", OpId::kDeleteRoleAssignment}},
                                ""},
                               name, "");
  } else {
    return RouteMatch{};
  }
  m.scope = path.substr(0, at);
  return m;
}

RouteMatch match_route(const std::string& method, std::string path) {
  if (path.empty() || path.front() != '/') {
    return {};
  }
  if (path.size() > 1 && path.back() == '/') {
    path.pop_back();  // a trailing slash: "/keys/name/" is the latest version of name
  }
  if (auto rbac = match_rbac_route(method, path)) {
    return std::move(*rbac);
  }
  std::vector<std::string> seg;
  std::size_t pos = 1;
  while (true) {
    std::size_t next = path.find('/', pos);
    seg.push_back(path.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) {
      break;
    }
    pos = next + 1;
  }
  const std::string root = ascii_lower(seg[0]);
  const std::size_t n = seg.size();
  if (root == "keys") {
    if (n == 1) {
      return resolve(method, {{{"GET", OpId::kList}}, ""}, "", "");
    }
    if (n == 2) {
      if (ascii_lower(seg[1]) == "restore") {
        return resolve(method, {{{"POST", OpId::kRestore}}, ""}, "", "");
      }
      return resolve(method,
                     {{{"GET", OpId::kGet},
                       {"PUT", OpId::kImport},
                       {"PATCH", OpId::kUpdate},
                       {"DELETE", OpId::kDelete}},
                      ""},
                     seg[1], "");
    }
    const std::string third = ascii_lower(seg[2]);
    if (n == 3) {
      if (third == "create") {
        return resolve(method, {{{"POST", OpId::kCreate}}, ""}, seg[1], "");
      }
      if (third == "versions") {
        return resolve(method, {{{"GET", OpId::kVersions}}, ""}, seg[1], "");
      }
      if (auto op = crypto_op(third)) {
        return resolve(method, {{{"POST", *op}}, ""}, seg[1], "");
      }
      if (third == "release") {
        return resolve(method, {{{"POST", OpId::kRelease}}, ""}, seg[1], "");
      }
      if (third == "rotate") {
        return resolve(method, {{{"POST", OpId::kRotate}}, ""}, seg[1], "");
      }
      if (third == "backup") {
        return resolve(method, {{{"POST", OpId::kBackup}}, ""}, seg[1], "");
      }
      if (third == "restore") {
        return resolve(method, {{{"PUT", OpId::kSelectiveRestore}}, ""}, seg[1], "");
      }
      if (third == "rotationpolicy") {
        return resolve(method,
                       {{{"GET", OpId::kGetRotationPolicy}, {"PUT", OpId::kSetRotationPolicy}}, ""},
                       seg[1], "");
      }
      if (third == "attestation") {
        return resolve(method, {{{"GET", OpId::kAttestation}}, ""}, seg[1], "");
      }
      return resolve(method, {{{"GET", OpId::kGet}, {"PATCH", OpId::kUpdate}}, ""}, seg[1], seg[2]);
    }
    if (n == 4) {
      const std::string fourth = ascii_lower(seg[3]);
      if (auto op = crypto_op(fourth)) {
        return resolve(method, {{{"POST", *op}}, ""}, seg[1], seg[2]);
      }
      if (fourth == "release") {
        return resolve(method, {{{"POST", OpId::kRelease}}, ""}, seg[1], seg[2]);
      }
      if (fourth == "attestation") {
        return resolve(method, {{{"GET", OpId::kAttestation}}, ""}, seg[1], seg[2]);
      }
    }
    return {};
  }
  if (root == "subscriptions" && n == 1) {
    return resolve(method, {{{"GET", OpId::kListSubscriptions}}, ""}, "", "");
  }
  if (root == "backup" && n == 1) {
    return resolve(method, {{{"POST", OpId::kFullBackup}}, ""}, "", "");
  }
  if (root == "restore" && n == 1) {
    return resolve(method, {{{"PUT", OpId::kFullRestore}}, ""}, "", "");
  }
  if ((root == "backup" || root == "restore") && n == 3 && ascii_lower(seg[2]) == "pending") {
    return resolve(
        method, {{{"GET", root == "backup" ? OpId::kFullBackupStatus : OpId::kRestoreStatus}}, ""},
        seg[1], "");
  }
  if (root == "settings" && n == 1) {
    return resolve(method, {{{"GET", OpId::kGetSettings}}, ""}, "", "");
  }
  if (root == "settings" && n == 2) {
    return resolve(method, {{{"GET", OpId::kGetSetting}, {"PATCH", OpId::kUpdateSetting}}, ""},
                   seg[1], "");
  }
  if (root == "securitydomain" && (n == 2 || n == 3)) {
    const std::string what = ascii_lower(seg[1]);
    const bool pending = n == 3 && ascii_lower(seg[2]) == "pending";
    if (what == "download" && n == 2) {
      return resolve(method, {{{"POST", OpId::kSdDownload}}, ""}, "", "");
    }
    if (what == "upload" && n == 2) {
      return resolve(method, {{{"GET", OpId::kSdTransferKey}, {"POST", OpId::kSdUpload}}, ""}, "",
                     "");
    }
    if ((what == "download" || what == "upload") && pending) {
      return resolve(
          method,
          {{{"GET", what == "download" ? OpId::kSdDownloadPending : OpId::kSdUploadPending}}, ""},
          "", "");
    }
    return {};
  }
  if (root == "rng" && n == 1) {
    return resolve(method, {{{"POST", OpId::kRandom}}, ""}, "", "");
  }
  if (root == "keyport" && n == 2 && ascii_lower(seg[1]) == "platform-report") {
    return resolve(method, {{{"GET", OpId::kPlatformReport}}, ""}, "", "");
  }
  if (root == "deletedkeys") {
    if (n == 1) {
      return resolve(method, {{{"GET", OpId::kListDeleted}}, ""}, "", "");
    }
    if (n == 2) {
      return resolve(method, {{{"GET", OpId::kGetDeleted}, {"DELETE", OpId::kPurge}}, ""}, seg[1],
                     "");
    }
    if (n == 3 && ascii_lower(seg[2]) == "recover") {
      return resolve(method, {{{"POST", OpId::kRecover}}, ""}, seg[1], "");
    }
  }
  return {};
}

}  // namespace keyport::vault::rest
