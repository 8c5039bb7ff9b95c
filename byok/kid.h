// SPDX-License-Identifier: Apache-2.0
// Azure key identifiers (kid): https://<host>/keys/<name>/<version>, and what the host says about
// the target (Key Vault or Managed HSM, and which cloud).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace keyport::byok {

// Azure key names: ^[0-9a-zA-Z-]{1,127}$.
inline constexpr std::size_t kMaxKeyNameChars = 127;
bool is_key_name(std::string_view name);

enum class TargetKind { kKeyVault, kManagedHsm };

std::string_view to_string(TargetKind kind);  // "key-vault", "managed-hsm"
Result<TargetKind> parse_target_kind(std::string_view name);

struct KeyId {
  std::string url;         // normalised: scheme and host lower-case, no trailing slash
  std::string host;        // "contoso.vault.azure.net" (with ":port" when one was given)
  std::string vault_name;  // first label of the host: "contoso"
  std::string key_name;
  std::string version;  // empty when unversioned (only if allowed)
  // Known Azure host suffix -> target and cloud; nullopt for any other host (a simulated vault,
  // a private endpoint alias): callers then warn and require an explicit target.
  std::optional<TargetKind> target;
  std::string cloud;  // "AzureCloud", "AzureChinaCloud", "AzureUSGovernment", or "" when unknown
};

// Parses a key identifier. Rules: https only; host non-empty; path exactly /keys/<name>/<version>
// (or /keys/<name> when require_version is false); name matches ^[0-9a-zA-Z-]{1,127}$; version is
// 32 hexadecimal characters. Query strings and fragments are refused. Errors are kInvalidArgument
// and say which rule failed.
Result<KeyId> parse_kid(std::string_view url, bool require_version = true);

}  // namespace keyport::byok
