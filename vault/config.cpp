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

Result<VaultConfig> VaultConfig::load(const fs::path& dir) {
  const fs::path file = dir / kVaultConfigFile;
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(file, 1 << 16));
  KEYPORT_ASSIGN_OR_RETURN(Json j, parse_json_strict(text));
  const std::string where = file.string();
  if (!j.is_object()) {
    return make_error(ErrorCode::kFormat, where + " must hold a JSON object");
  }
  KEYPORT_TRY(json_only_members(
      j, {"schema", "flavor", "name", "base_url", "base_url_given", "created"}, where));
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
  WriteOptions w;
  w.overwrite = overwrite;
  return write_file_atomic(dir / kVaultConfigFile, dump_json(j, 2) + "\n", w);
}

}  // namespace keyport::vault
