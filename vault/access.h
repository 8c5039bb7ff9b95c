// SPDX-License-Identifier: Apache-2.0
// Who may call the REST server, and what they may do: the access file.
//
//   {"tokens": {"<bearer token>": {"name": "ci", "permissions": ["get", "list", "sign", ...]}},
//    "identities": {"<name>": {"client_id": "<uuid>", "object_id": "<uuid>",
//                              "system_assigned": true, "permissions": [...]}}}
//
// Both members are optional. "identities" are managed identities: applications get their tokens
// from the identity endpoint (vault/identity.h) and call with the identity's permissions, looked
// up again on every request (removing an identity revokes its tokens at once).
//
// Permissions are Key Vault's key permissions (access-policy names, compared case-insensitively).
// A token is a shared secret: the access file and the token file are written with mode 0600, the
// server keeps only SHA-256 digests of the tokens in memory, compares them in constant time
// against every entry (no early exit), and never logs or prints a token; the access log names the
// caller by the entry's `name`.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/secret.h"

namespace keyport::vault {

// Key Vault key permissions (one bit each).
enum class Permission : std::uint32_t {
  kGet = 1u << 0,
  kList = 1u << 1,
  kCreate = 1u << 2,
  kImport = 1u << 3,
  kUpdate = 1u << 4,
  kDelete = 1u << 5,
  kRecover = 1u << 6,
  kPurge = 1u << 7,
  kSign = 1u << 8,
  kVerify = 1u << 9,
  kEncrypt = 1u << 10,
  kDecrypt = 1u << 11,
  kWrapKey = 1u << 12,
  kUnwrapKey = 1u << 13,
  kRelease = 1u << 14,
  kRotate = 1u << 15,
  kGetRotationPolicy = 1u << 16,
  kSetRotationPolicy = 1u << 17,
  kBackup = 1u << 18,
  kRestore = 1u << 19,
};
using PermissionSet = std::uint32_t;

// Key Vault's spelling: "get", "wrapKey", "getrotationpolicy", ...
std::string_view to_string(Permission p);
// Case-insensitive; kInvalidArgument listing the valid names otherwise.
Result<Permission> parse_permission(std::string_view name);
// Every permission above.
PermissionSet all_permissions();

// An authenticated caller.
struct Principal {
  std::string name;  // for the access log and the audit log; never the token
  PermissionSet permissions = 0;
  // A managed identity's object id ("" for access-file tokens): Managed HSM role assignments name
  // it as their principalId (vault/rbac.h), as they do the token's name.
  std::string object_id = {};
  // Not subject to Managed HSM local RBAC: the CLI's in-process caller on a vault folder (whoever
  // can open the folder holds its token PIN anyway) and --insecure-any-token.
  bool rbac_exempt = false;
  bool allows(Permission p) const { return (permissions & static_cast<PermissionSet>(p)) != 0; }
};

// A managed identity of the access file.
struct ManagedIdentity {
  std::string name;              // the member name; also the last segment of a mi_res_id
  std::string client_id;         // a UUID, lower case
  std::string object_id;         // a UUID, lower case (the tokens' oid)
  bool system_assigned = false;  // the identity of a token request that names none
  PermissionSet permissions = 0;
};

class AccessList {
 public:
  // Parses an access file. Strict: duplicate members, unknown members, an empty token, a token
  // shorter than 16 characters, a missing or empty name, or an unknown permission are kFormat /
  // kInvalidArgument errors naming `where` (never quoting a token).
  static Result<AccessList> parse(std::string_view json, std::string_view where);
  static Result<AccessList> load(const std::filesystem::path& file);

  // The principal a bearer token belongs to, or nullopt. Digests the token and compares it with
  // every entry's digest (CRYPTO_memcmp, no early exit), so the time taken does not depend on
  // which entry matched or how much of a token was right.
  std::optional<Principal> authenticate(std::string_view token) const;

  std::size_t size() const { return m_entries.size(); }
  // Every token's principal (in file order) and every identity's (name, object id, permissions):
  // whom Managed HSM local RBAC is initialised for.
  std::vector<Principal> principals() const;

  const std::vector<ManagedIdentity>& identities() const { return m_identities; }
  // The identity with this object id (compared case-insensitively), or nullptr.
  const ManagedIdentity* identity_by_object_id(std::string_view object_id) const;

 private:
  struct Entry {
    std::array<std::uint8_t, 32> digest{};
    Principal principal;
  };
  std::vector<Entry> m_entries;
  std::vector<ManagedIdentity> m_identities;
};

// True for a UUID in its 8-4-4-4-12 hexadecimal form (either case).
bool is_uuid(std::string_view text);

// A fresh random bearer token: 32 random bytes, base64url (43 characters).
SecretBytes generate_token();

struct CreatedAccess {
  std::filesystem::path access_file;
  std::filesystem::path token_file;
};

// Creates `access_file` holding one token named `name` with every permission, and writes the same
// token alone (plus a newline) to `token_file` for clients (`--token-file`). Both files mode 0600,
// written atomically. kAlreadyExists when `access_file` exists (nothing is written then).
Result<CreatedAccess> create_access_file(const std::filesystem::path& access_file,
                                         const std::filesystem::path& token_file,
                                         const std::string& name = "admin");

// Reads a bearer token from a file: the first line, surrounding white space removed. kNotFound,
// kIo, or kInvalidArgument when it is empty.
Result<SecretBytes> read_token_file(const std::filesystem::path& file);

}  // namespace keyport::vault
