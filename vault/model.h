// SPDX-License-Identifier: Apache-2.0
// Key Vault REST 7.5 request parsing and response shapes (internal to keyport::vault). Requests
// are untrusted: every member's type is checked before use (nlohmann would throw), and messages
// never quote secret members.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "core/secret.h"
#include "vault/store.h"

namespace keyport::vault {

// What a vault's recovery settings make KeyAttributes say (VaultConfig::recovery_level and
// soft_delete_retention_days); the defaults are a vault of 90 days without purge protection.
struct Recovery {
  std::string level = "Recoverable+Purgeable";
  std::int64_t days = 90;
};

// True for ^[0-9a-zA-Z-]{1,127}$.
bool valid_key_name(std::string_view name);
// Returns BadParameter unless the name is valid.
Status check_key_name(std::string_view name);
// True for 32 hex characters (the caller lower-cases).
bool valid_version(std::string_view version);
// Returns 32 random lowercase hex characters.
std::string new_version_id();

// The member `name` of an object, or nullptr when absent or JSON null.
const Json* member(const Json& obj, std::string_view name);
// Same, matching the name without regard to ASCII case (KeyImportParameters "Hsm"/"hsm").
const Json* member_ci(const Json& obj, std::string_view name);
// A required string member; BadParameter naming it otherwise.
Result<std::string> string_member(const Json& obj, std::string_view name);
// A required base64url member (padding optional); BadParameter naming it otherwise. The message
// never quotes the value.
Result<Bytes> base64url_member(const Json& obj, std::string_view name);
Result<SecretBytes> base64url_secret_member(const Json& obj, std::string_view name);
// An optional base64url member: nullopt when absent or JSON null, BadParameter when not base64url.
Result<std::optional<Bytes>> optional_base64url_member(const Json& obj, std::string_view name);
// Decodes base64url (padded or not) or, failing that, standard base64; nullopt when neither.
std::optional<Bytes> decode_base64_any(std::string_view text);

// KeyAttributes of a request: enabled, nbf, exp, exportable (read-only members are ignored).
struct AttributesIn {
  std::optional<bool> enabled;
  std::optional<std::int64_t> nbf;
  std::optional<std::int64_t> exp;
  std::optional<bool> exportable;
};
Result<AttributesIn> parse_attributes(const Json& params);
// `tags`: an object of at most 15 string values; nullopt when absent.
Result<std::optional<Json>> parse_tags(const Json& params);
// `release_policy`: {contentType?, data (base64url/base64 of a JSON object), immutable?}.
Result<std::optional<ReleasePolicy>> parse_release_policy(const Json& params);
// `key_ops` for a key of `family`: known operations valid for the family, de-duplicated, order
// kept. `import` only for RSA and only alone.
Result<std::vector<std::string>> parse_key_ops(const Json& ops, KeyFamily family);
// The default key_ops of a new key of `family`.
std::vector<std::string> default_key_ops(KeyFamily family);

// "<base_url>/keys/<name>[/<version>]".
std::string kid_of(std::string_view base_url, std::string_view name, std::string_view version);

// KeyBundle of one version.
Json key_bundle(std::string_view base_url, const KeyVersionRecord& r,
                const Recovery& recovery = {});
// KeyItem (versioned: kid with the version, for GetKeyVersions).
Json key_item(std::string_view base_url, const KeyVersionRecord& r, bool versioned,
              const Recovery& recovery = {});
// DeletedKeyBundle / DeletedKeyItem of a soft-deleted key (r is its latest version).
Json deleted_key_bundle(std::string_view base_url, const KeyRecord& k, const KeyVersionRecord& r,
                        const Recovery& recovery = {});
Json deleted_key_item(std::string_view base_url, const KeyRecord& k, const KeyVersionRecord& r,
                      const Recovery& recovery = {});
// KeyListResult {value, nextLink: null}.
Json list_result(Json values);
// KeyOperationResult {kid, value}.
Json operation_result(std::string_view kid, std::span<const std::uint8_t> value);

}  // namespace keyport::vault
