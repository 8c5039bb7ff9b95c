// SPDX-License-Identifier: Apache-2.0
#include "vault/access.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

#include "core/digest.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/random.h"
#include "core/strings.h"

namespace keyport::vault {
namespace {

struct PermissionName {
  Permission permission;
  std::string_view name;
};
constexpr PermissionName kPermissions[] = {
    {Permission::kGet, "get"},
    {Permission::kList, "list"},
    {Permission::kCreate, "create"},
    {Permission::kImport, "import"},
    {Permission::kUpdate, "update"},
    {Permission::kDelete, "delete"},
    {Permission::kRecover, "recover"},
    {Permission::kPurge, "purge"},
    {Permission::kSign, "sign"},
    {Permission::kVerify, "verify"},
    {Permission::kEncrypt, "encrypt"},
    {Permission::kDecrypt, "decrypt"},
    {Permission::kWrapKey, "wrapKey"},
    {Permission::kUnwrapKey, "unwrapKey"},
    {Permission::kRelease, "release"},
    {Permission::kRotate, "rotate"},
    {Permission::kGetRotationPolicy, "getrotationpolicy"},
    {Permission::kSetRotationPolicy, "setrotationpolicy"},
    {Permission::kBackup, "backup"},
    {Permission::kRestore, "restore"},
};

constexpr std::size_t kMinTokenLength = 16;

std::array<std::uint8_t, 32> digest_of(std::string_view token) {
  std::array<std::uint8_t, 32> out{};
  Bytes d = sha256(as_bytes(token));
  std::copy_n(d.begin(), out.size(), out.begin());
  return out;
}

}  // namespace

std::string_view to_string(Permission p) {
  for (const auto& e : kPermissions) {
    if (e.permission == p) {
      return e.name;
    }
  }
  return "unknown";
}

Result<Permission> parse_permission(std::string_view name) {
  for (const auto& e : kPermissions) {
    if (iequals(e.name, name)) {
      return e.permission;
    }
  }
  std::string valid;
  for (const auto& e : kPermissions) {
    valid += (valid.empty() ? "" : ", ") + std::string(e.name);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown key permission \"" + std::string(name) + "\" (valid: " + valid + ")");
}

PermissionSet all_permissions() {
  PermissionSet all = 0;
  for (const auto& e : kPermissions) {
    all |= static_cast<PermissionSet>(e.permission);
  }
  return all;
}

namespace {

Result<PermissionSet> parse_permission_list(const Json& holder, const std::string& entry) {
  auto perms = holder.find("permissions");
  if (perms == holder.end() || !perms->is_array()) {
    return make_error(ErrorCode::kFormat, entry + ": \"permissions\" must be an array");
  }
  PermissionSet set = 0;
  for (const Json& p : *perms) {
    if (!p.is_string()) {
      return make_error(ErrorCode::kFormat, entry + ": permissions must be strings");
    }
    auto parsed = parse_permission(p.get<std::string>());
    if (!parsed) {
      return tl::unexpected(parsed.error().with_context(entry));
    }
    set |= static_cast<PermissionSet>(*parsed);
  }
  return set;
}

constexpr std::size_t kMaxIdentityName = 128;

bool is_identity_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxIdentityName &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' ||
                  c == '.';
         });
}

Result<std::vector<ManagedIdentity>> parse_identities(const Json& doc, const std::string& where) {
  std::vector<ManagedIdentity> out;
  auto identities = doc.find("identities");
  if (identities == doc.end()) {
    return out;
  }
  if (!identities->is_object()) {
    return make_error(ErrorCode::kFormat, where + ": \"identities\" must be an object");
  }
  for (auto it = identities->begin(); it != identities->end(); ++it) {
    const std::string entry = where + ": identity \"" + escape_for_log(it.key()) + "\"";
    if (!is_identity_name(it.key())) {
      return make_error(ErrorCode::kInvalidArgument,
                        entry + ": a name is 1 to 128 letters, digits, '-', '_' and '.'");
    }
    const Json& value = it.value();
    if (!value.is_object()) {
      return make_error(ErrorCode::kFormat,
                        entry + ": must be an object {client_id, object_id, permissions}");
    }
    KEYPORT_TRY(json_only_members(
        value, {"client_id", "object_id", "system_assigned", "permissions"}, entry));
    ManagedIdentity id;
    id.name = it.key();
    KEYPORT_ASSIGN_OR_RETURN(id.client_id, json_string(value, "client_id", entry));
    KEYPORT_ASSIGN_OR_RETURN(id.object_id, json_string(value, "object_id", entry));
    for (std::string* uuid : {&id.client_id, &id.object_id}) {
      if (!is_uuid(*uuid)) {
        return make_error(ErrorCode::kInvalidArgument,
                          entry +
                              ": client_id and object_id must be UUIDs "
                              "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
      }
      *uuid = ascii_lower(*uuid);
    }
    if (auto sa = value.find("system_assigned"); sa != value.end()) {
      if (!sa->is_boolean()) {
        return make_error(ErrorCode::kFormat,
                          entry + ": \"system_assigned\" must be true or false");
      }
      id.system_assigned = sa->get<bool>();
    }
    KEYPORT_ASSIGN_OR_RETURN(id.permissions, parse_permission_list(value, entry));
    for (const ManagedIdentity& other : out) {
      if (other.client_id == id.client_id || other.object_id == id.object_id ||
          other.client_id == id.object_id || other.object_id == id.client_id) {
        return make_error(ErrorCode::kInvalidArgument,
                          entry + ": shares an id with identity \"" + other.name + "\"");
      }
      if (iequals(other.name, id.name)) {
        return make_error(
            ErrorCode::kInvalidArgument,
            entry + ": names are compared case-insensitively; \"" + other.name + "\" exists");
      }
      if (other.system_assigned && id.system_assigned) {
        return make_error(
            ErrorCode::kInvalidArgument,
            entry + ": only one identity can be system_assigned (\"" + other.name + "\" is)");
      }
    }
    out.push_back(std::move(id));
  }
  return out;
}

}  // namespace

bool is_uuid(std::string_view text) {
  if (text.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : std::isxdigit(static_cast<unsigned char>(text[i])) == 0) {
      return false;
    }
  }
  return true;
}

Result<AccessList> AccessList::parse(std::string_view json, std::string_view where_sv) {
  const std::string where(where_sv);
  KEYPORT_ASSIGN_OR_RETURN(Json doc, parse_json_strict(json));
  if (!doc.is_object()) {
    return make_error(
        ErrorCode::kFormat,
        where + ": must hold a JSON object {\"tokens\": {...}, \"identities\": {...}}");
  }
  KEYPORT_TRY(json_only_members(doc, {"tokens", "identities"}, where));
  AccessList list;
  KEYPORT_ASSIGN_OR_RETURN(list.m_identities, parse_identities(doc, where));
  auto tokens = doc.find("tokens");
  if (tokens == doc.end()) {
    return list;
  }
  if (!tokens->is_object()) {
    return make_error(ErrorCode::kFormat, where + ": \"tokens\" must be an object");
  }
  std::size_t index = 0;
  for (auto it = tokens->begin(); it != tokens->end(); ++it, ++index) {
    // Entries are named by position: a token never appears in a message.
    const std::string entry = where + ": tokens entry " + std::to_string(index + 1);
    if (it.key().size() < kMinTokenLength) {
      return make_error(ErrorCode::kInvalidArgument, entry + ": a token must be at least " +
                                                         std::to_string(kMinTokenLength) +
                                                         " characters long");
    }
    const Json& value = it.value();
    if (!value.is_object()) {
      return make_error(ErrorCode::kFormat, entry + ": must be an object {name, permissions}");
    }
    KEYPORT_TRY(json_only_members(value, {"name", "permissions"}, entry));
    KEYPORT_ASSIGN_OR_RETURN(std::string name, json_string(value, "name", entry));
    if (name.empty()) {
      return make_error(ErrorCode::kInvalidArgument, entry + ": \"name\" must not be empty");
    }
    Entry e;
    e.digest = digest_of(it.key());
    e.principal.name = std::move(name);
    KEYPORT_ASSIGN_OR_RETURN(e.principal.permissions, parse_permission_list(value, entry));
    list.m_entries.push_back(std::move(e));
  }
  return list;
}

const ManagedIdentity* AccessList::identity_by_object_id(std::string_view object_id) const {
  for (const ManagedIdentity& id : m_identities) {
    if (iequals(id.object_id, object_id)) {
      return &id;
    }
  }
  return nullptr;
}

Result<AccessList> AccessList::load(const std::filesystem::path& file) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(file, 1 << 20));
  return parse(text, file.string());
}

std::optional<Principal> AccessList::authenticate(std::string_view token) const {
  if (token.empty()) {
    return std::nullopt;
  }
  const auto digest = digest_of(token);
  const Entry* found = nullptr;
  for (const Entry& e : m_entries) {
    // No early exit: every entry is compared whatever matched before.
    const bool match = CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0;
    if (match && found == nullptr) {
      found = &e;
    }
  }
  if (found == nullptr) {
    return std::nullopt;
  }
  return found->principal;
}

std::vector<Principal> AccessList::principals() const {
  std::vector<Principal> out;
  for (const Entry& e : m_entries) {
    out.push_back(e.principal);
  }
  for (const ManagedIdentity& id : m_identities) {
    Principal p{id.name, id.permissions};
    p.object_id = id.object_id;
    out.push_back(std::move(p));
  }
  return out;
}

SecretBytes generate_token() {
  SecretBytes raw = random_secret(32);
  std::string text = base64url_encode(raw.reveal(SecretAccess::unsafe()));
  SecretBytes token = SecretBytes::from_string(text);
  secure_wipe(text.data(), text.size());
  return token;
}

Result<CreatedAccess> create_access_file(const std::filesystem::path& access_file,
                                         const std::filesystem::path& token_file,
                                         const std::string& name) {
  std::error_code ec;
  if (std::filesystem::exists(access_file, ec)) {
    return make_error(ErrorCode::kAlreadyExists, access_file.string() + " exists");
  }
  SecretBytes token = generate_token();
  const std::string_view token_text = as_chars(token.reveal(SecretAccess::unsafe()));
  Json perms = Json::array();
  for (const auto& e : kPermissions) {
    perms.push_back(std::string(e.name));
  }
  Json doc{{"tokens", Json::object()}};
  doc["tokens"][std::string(token_text)] = Json{{"name", name}, {"permissions", perms}};
  std::string text = dump_json(doc, 2) + "\n";
  WriteOptions secret_file;
  secret_file.mode = 0600;
  secret_file.overwrite = true;
  std::string token_line = std::string(token_text) + "\n";
  Status st = write_file_atomic(token_file, token_line, secret_file);
  secure_wipe(token_line.data(), token_line.size());
  if (st) {
    // Published last, without overwrite: a concurrent first start loses the race cleanly.
    secret_file.overwrite = false;
    st = write_file_atomic(access_file, text, secret_file);
  }
  secure_wipe(text.data(), text.size());
  doc.clear();
  if (!st) {
    return tl::unexpected(st.error());
  }
  return CreatedAccess{access_file, token_file};
}

Result<SecretBytes> read_token_file(const std::filesystem::path& file) {
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes raw, read_secret_file(file, 64 * 1024));
  auto bytes = raw.reveal(SecretAccess::unsafe());
  std::size_t end = 0;
  while (end < bytes.size() && bytes[end] != '\n' && bytes[end] != '\r') {
    ++end;
  }
  // A view of the first line, not a copy: the bytes are a secret.
  const std::string_view line(reinterpret_cast<const char*>(bytes.data()), end);
  const std::string_view token = trim(line);
  if (token.empty()) {
    return make_error(ErrorCode::kInvalidArgument, file.string() + " holds no token");
  }
  return SecretBytes(
      bytes.subspan(static_cast<std::size_t>(token.data() - line.data()), token.size()));
}

}  // namespace keyport::vault
