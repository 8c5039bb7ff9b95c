// SPDX-License-Identifier: Apache-2.0
#include "vault/config.h"

#include "core/file_io.h"
#include "core/json.h"
#include "vault/model.h"

namespace keyport::vault {
namespace fs = std::filesystem;

std::string_view to_string(Flavor flavor) {
  return flavor == Flavor::kManagedHsm ? "managed-hsm" : "key-vault";
}

Result<Flavor> parse_flavor(std::string_view name) {
  if (name == "key-vault") {
    return Flavor::kKeyVault;
  }
  if (name == "managed-hsm") {
    return Flavor::kManagedHsm;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown vault flavor \"" + std::string(name) + "\" (key-vault, managed-hsm)");
}

std::string VaultConfig::recovery_level() const {
  const bool custom = soft_delete_retention_days < 90;
  if (purge_protection) {
    return custom ? "CustomizedRecoverable" : "Recoverable";
  }
  return custom ? "CustomizedRecoverable+Purgeable" : "Recoverable+Purgeable";
}

Result<VaultConfig> VaultConfig::load(const fs::path& dir) {
  const fs::path file = dir / kVaultConfigFile;
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(file, 1 << 16));
  KEYPORT_ASSIGN_OR_RETURN(Json j, parse_json_strict(text));
  const std::string where = file.string();
  if (!j.is_object()) {
    return make_error(ErrorCode::kFormat, where + " must hold a JSON object");
  }
  KEYPORT_TRY(json_only_members(j,
                                {"schema", "flavor", "name", "base_url", "base_url_given",
                                 "created", "soft_delete_retention_days", "purge_protection",
                                 "backup_domain", "backup_domain_join", "activation_required"},
                                where));
  VaultConfig c;
  KEYPORT_ASSIGN_OR_RETURN(std::string flavor, json_string(j, "flavor", where));
  KEYPORT_ASSIGN_OR_RETURN(c.flavor, parse_flavor(flavor));
  KEYPORT_ASSIGN_OR_RETURN(c.name, json_string(j, "name", where));
  KEYPORT_ASSIGN_OR_RETURN(c.base_url, json_string(j, "base_url", where));
  if (const Json* given = member(j, "base_url_given"); given != nullptr) {
    if (!given->is_boolean()) {
      return make_error(ErrorCode::kFormat, where + ": \"base_url_given\" must be true or false");
    }
    c.base_url_given = given->get<bool>();
  }
  const Json* created = member(j, "created");
  if (created == nullptr || !created->is_number_integer()) {
    return make_error(ErrorCode::kFormat, where + ": \"created\" must be an integer");
  }
  c.created = created->get<std::int64_t>();
  if (const Json* days = member(j, "soft_delete_retention_days"); days != nullptr) {
    if (!days->is_number_integer() || days->get<std::int64_t>() < kMinRetentionDays ||
        days->get<std::int64_t>() > kMaxRetentionDays) {
      return make_error(ErrorCode::kFormat,
                        where + ": \"soft_delete_retention_days\" must be an integer from 7 to 90");
    }
    c.soft_delete_retention_days = static_cast<int>(days->get<std::int64_t>());
  }
  if (const Json* pp = member(j, "purge_protection"); pp != nullptr) {
    if (!pp->is_boolean()) {
      return make_error(ErrorCode::kFormat, where + ": \"purge_protection\" must be true or false");
    }
    c.purge_protection = pp->get<bool>();
  }
  if (const Json* bd = member(j, "backup_domain"); bd != nullptr) {
    if (!bd->is_string() || bd->get_ref<const std::string&>().size() != 36) {
      return make_error(ErrorCode::kFormat, where + ": \"backup_domain\" must be a UUID string");
    }
    c.backup_domain = bd->get<std::string>();
  }
  if (const Json* bj = member(j, "backup_domain_join"); bj != nullptr) {
    if (!bj->is_boolean()) {
      return make_error(ErrorCode::kFormat,
                        where + ": \"backup_domain_join\" must be true or false");
    }
    c.backup_domain_join = bj->get<bool>();
  }
  if (const Json* ar = member(j, "activation_required"); ar != nullptr) {
    if (!ar->is_boolean()) {
      return make_error(ErrorCode::kFormat,
                        where + ": \"activation_required\" must be true or false");
    }
    c.activation_required = ar->get<bool>();
  }
  if (c.activation_required && c.flavor != Flavor::kManagedHsm) {
    return make_error(ErrorCode::kFormat,
                      where + ": \"activation_required\" applies to a managed-hsm vault only");
  }
  return c;
}

Status VaultConfig::save(const fs::path& dir, bool overwrite) const {
  Json j = Json::object();
  j["schema"] = 1;
  j["flavor"] = std::string(to_string(flavor));
  j["name"] = name;
  j["base_url"] = base_url;
  if (base_url_given) {
    j["base_url_given"] = true;
  }
  j["created"] = created;
  if (soft_delete_retention_days != 90) {
    j["soft_delete_retention_days"] = soft_delete_retention_days;
  }
  if (purge_protection) {
    j["purge_protection"] = true;
  }
  if (!backup_domain.empty()) {
    j["backup_domain"] = backup_domain;
  }
  if (backup_domain_join) {
    j["backup_domain_join"] = true;
  }
  if (activation_required) {
    j["activation_required"] = true;
  }
  WriteOptions w;
  w.overwrite = overwrite;
  return write_file_atomic(dir / kVaultConfigFile, dump_json(j, 2) + "\n", w);
}

}  // namespace keyport::vault
