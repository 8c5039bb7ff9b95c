// SPDX-License-Identifier: Apache-2.0
#include "client/folder.h"

#include <ctime>

#include "core/file_io.h"
#include "core/json.h"
#include "vault/config.h"
#include "vault/release.h"
#include "vault/rotation.h"

namespace keyport::vault {
namespace fs = std::filesystem;

Status check_vault_folder(const fs::path& dir) {
  if (dir.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "give --data DIR (or $KEYPORT_VAULT_DATA)");
  }
  // The vault library's own reader: a folder whose vault.json it would refuse is no vault either.
  auto config = VaultConfig::load(dir);
  if (!config) {
    if (config.error().code() == ErrorCode::kNotFound) {
      return make_error(ErrorCode::kNotFound,
                        dir.string() + " is not a vault folder (no " + kVaultConfigFile + ")");
    }
    return tl::unexpected(config.error());
  }
  return {};
}

Result<FolderClock> folder_clock(const fs::path& dir, const std::optional<std::string>& advance,
                                 bool reset) {
  KEYPORT_TRY(check_vault_folder(dir));
  if (advance && reset) {
    return make_error(ErrorCode::kInvalidArgument, "give --advance or --reset, not both");
  }
  KEYPORT_ASSIGN_OR_RETURN(VaultSettings s, read_vault_settings(dir));
  if (advance) {
    KEYPORT_ASSIGN_OR_RETURN(std::int64_t seconds, parse_iso8601_duration(*advance));
    s.clock_offset += seconds;
  } else if (reset) {
    s.clock_offset = 0;
  }
  if (advance || reset) {
    KEYPORT_TRY(write_vault_settings(dir, s));
  }
  return FolderClock{s.clock_offset,
                     static_cast<std::int64_t>(std::time(nullptr)) + s.clock_offset};
}

Result<std::optional<std::int64_t>> set_platform_cutover(const fs::path& dir,
                                                         std::optional<std::int64_t> before) {
  KEYPORT_TRY(check_vault_folder(dir));
  KEYPORT_ASSIGN_OR_RETURN(VaultSettings s, read_vault_settings(dir));
  s.platform1_before = before;
  KEYPORT_TRY(write_vault_settings(dir, s));
  return s.platform1_before;
}

Result<TrustResult> trust_authorities(const fs::path& dir, const fs::path& from_arg, bool replace) {
  if (dir.empty()) {
    return make_error(ErrorCode::kNotFound, "give --data DIR of a vault (vault.json)");
  }
  KEYPORT_TRY(check_vault_folder(dir));
  fs::path from = from_arg;
  if (fs::is_directory(from)) {
    from /= kTrustedAuthoritiesFile;
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(from, 4u << 20));
  KEYPORT_ASSIGN_OR_RETURN(Json add, parse_json_strict(text));
  if (!add.is_object() || !add.contains("authorities") || !add["authorities"].is_array()) {
    return make_error(ErrorCode::kFormat, from.string() + ": expected {\"authorities\": [...]}");
  }
  TrustResult out;
  out.file = dir / kTrustedAuthoritiesFile;
  Json doc = Json{{"authorities", Json::array()}};
  if (!replace && fs::exists(out.file)) {
    KEYPORT_ASSIGN_OR_RETURN(std::string old, read_text_file(out.file, 4u << 20));
    KEYPORT_ASSIGN_OR_RETURN(doc, parse_json_strict(old));
  }
  if (!doc.is_object() || !doc.contains("authorities") || !doc["authorities"].is_array()) {
    return make_error(ErrorCode::kFormat,
                      out.file.string() + ": expected {\"authorities\": [...]}");
  }
  for (const auto& a : add["authorities"]) {
    if (!a.is_object() || !a.contains("issuer") || !a["issuer"].is_string()) {
      return make_error(ErrorCode::kFormat, from.string() + ": every authority needs an issuer");
    }
    Json kept = Json::array();
    for (const auto& e : doc["authorities"]) {
      if (!e.is_object() || e.value("issuer", "") != a["issuer"].get<std::string>()) {
        kept.push_back(e);
      }
    }
    kept.push_back(a);
    doc["authorities"] = std::move(kept);
    out.trusted.push_back(a["issuer"].get<std::string>());
  }
  KEYPORT_TRY(write_file_atomic(out.file, dump_json(doc, 2) + "\n", WriteOptions{true, 0644}));
  return out;
}

}  // namespace keyport::vault
