// SPDX-License-Identifier: Apache-2.0
// Key rotation policies with Key Vault's rules (internal to keyport::vault), and the vault folder's
// settings file that tests and operators use to move the vault's clock and to declare an HSM
// platform cut-over.
//
// KeyRotationPolicy (REST 7.5, keys.json): {id, lifetimeActions: [{trigger: {timeAfterCreate |
// timeBeforeExpiry}, action: {type: Rotate | Notify}}], attributes: {expiryTime, created,
// updated}}. The rules parse_rotation_policy() enforces, and where each comes from, are listed in
// docs/rotation.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"

namespace keyport::vault {

inline constexpr std::int64_t kDay = 86400;

// Parses an ISO 8601 duration (PnYnMnWnDTnHnMnS, whole numbers, at least one part; a year counts
// 365 days and a month 30 days) into seconds. Returns kInvalidArgument naming the text otherwise.
Result<std::int64_t> parse_iso8601_duration(std::string_view text);

enum class LifetimeActionType { kRotate, kNotify };

struct LifetimeAction {
  LifetimeActionType type = LifetimeActionType::kRotate;
  bool after_create = true;  // trigger timeAfterCreate (else timeBeforeExpiry)
  std::string duration;      // as the request spelled it (upper case)
  std::int64_t seconds = 0;
};

struct RotationPolicy {
  std::vector<LifetimeAction> actions;
  std::optional<std::string> expiry_time;  // ISO 8601 duration applied to new versions' exp
  std::int64_t expiry_seconds = 0;

  const LifetimeAction* find(LifetimeActionType type) const;
};

// Key Vault's default policy: notify 30 days before expiry, no rotation, no expiryTime.
RotationPolicy default_rotation_policy();

// Parses and validates the body of PUT /keys/{name}/rotationpolicy. An empty or absent
// lifetimeActions means the default actions. Returns BadParameter naming the rule broken.
Result<RotationPolicy> parse_rotation_policy(const Json& body);

// The stored form ({"lifetimeActions": [...], "attributes": {"expiryTime"?}}) and back.
Json rotation_policy_to_json(const RotationPolicy& policy);
Result<RotationPolicy> rotation_policy_from_json(const Json& stored);

// The KeyRotationPolicy answer: id <base_url>/keys/<name>/rotationpolicy, lifetimeActions,
// attributes {expiryTime?, created?, updated?} (times absent for a key without a policy).
Json rotation_policy_response(std::string_view base_url, std::string_view name,
                              const RotationPolicy& policy, std::optional<std::int64_t> created,
                              std::optional<std::int64_t> updated);

// --- the vault folder's settings (DIR/settings.json) --------------------------------------------

struct VaultSettings {
  // Added to the vault's clock: `keyport vault clock --advance P30D` moves every reader of the
  // folder (a running server included) 30 days ahead.
  std::int64_t clock_offset = 0;
  // Versions of -HSM keys created before this time (unix seconds) count as HSM platform "1".
  std::optional<std::int64_t> platform1_before;

  bool operator==(const VaultSettings&) const = default;
};

// Reads DIR/settings.json (defaults when absent). kFormat for a file that is not valid.
Result<VaultSettings> read_vault_settings(const std::filesystem::path& dir);
// Writes DIR/settings.json atomically (replacing it).
Status write_vault_settings(const std::filesystem::path& dir, const VaultSettings& settings);

// Re-reads DIR/settings.json when the file changes (inode, size or modification time). Thread-safe.
class SettingsWatcher {
 public:
  explicit SettingsWatcher(std::filesystem::path dir) : m_dir(std::move(dir)) {}
  // The current settings, and whether they changed since the previous call. A file that does
  // not parse keeps the previous settings (and is logged once per change).
  std::pair<VaultSettings, bool> poll();

 private:
  std::filesystem::path m_dir;
  std::mutex m_mutex;
  bool m_first = true;
  bool m_exists = false;
  ino_t m_ino = 0;
  off_t m_size = 0;
  std::int64_t m_mtime_ns = 0;
  VaultSettings m_settings;
};

}  // namespace keyport::vault
