// SPDX-License-Identifier: Apache-2.0
// Service profiles: what an Azure service that uses a customer-managed key accepts (key types and
// sizes, key operations, validity dates) and what it requires of the vault holding the key (soft
// delete, purge protection, two vaults in two regions, ...). Every rule carries the Microsoft
// documentation it comes from; docs/service-profiles.md lists the sources and what each says.
//
// These are facts about the services, checked before keyport generates, exports, wraps or creates
// a key for one; keyport runs none of the services. byok/profile.h (target profiles: what Key
// Vault and Managed HSM accept by BYOK) is a separate, lower layer and is checked as before.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/algorithms.h"
#include "core/error.h"
#include "core/json.h"

namespace keyport::byok {

enum class ServiceProfileId {
  kGeneric,
  kStorageCmk,
  kSqlTde,
  kDiskEncryption,
  kAipTenantKey,
  kM365CustomerKey,
};

// One cited statement: where it is and what it says (paraphrased, not copied).
struct ProfileSource {
  std::string url;
  std::string says;
};

// Rules a service sets on a key's activation (nbf) and expiry (exp) dates.
enum class ValidityRule {
  kAny,
  // If set, the activation date must be in the past and the expiry date in the future (SQL TDE).
  kActiveNow,
  // No expiry date, or exactly 9999-12-31 (Microsoft 365 Customer Key).
  kNoExpiry,
};

// Vault-level settings a service requires.
struct VaultRequirements {
  bool soft_delete = false;
  bool purge_protection = false;
  // recoveryLevel Recoverable+ProtectedSubscription: the subscription is registered for a
  // mandatory retention period (Microsoft 365 Customer Key).
  bool protected_subscription = false;
  // The service uses two keys, in two vaults, in two different Azure regions.
  bool two_vaults_in_two_regions = false;
};

struct ServiceProfile {
  ServiceProfileId id = ServiceProfileId::kGeneric;
  std::string_view name;   // "storage-cmk"
  std::string_view title;  // "Azure Storage customer-managed keys"
  // The key specs the service accepts, in all_key_specs() order.
  std::vector<KeySpec> key_specs;
  // Why other keys are refused, in one sentence (shown with the source URL).
  std::string key_rule;
  std::string key_rule_url;
  // Key operations (key_ops) the key must permit.
  std::vector<std::string> key_ops;
  // Data-plane permissions the service's identity needs on the key.
  std::vector<std::string> permissions;
  ValidityRule validity = ValidityRule::kAny;
  VaultRequirements vault;
  // Where the vault requirements are stated (empty when there are none).
  std::string vault_rule_url;
  // Things keyport cannot check that the operator must ensure (tenant, region, firewall, SKU).
  std::vector<std::string> operator_notes;
  std::vector<ProfileSource> sources;
};

// All six profiles, generic first.
const std::vector<ServiceProfile>& all_service_profiles();

// The profile called `name` (case-insensitive), or kInvalidArgument listing the names.
Result<const ServiceProfile*> parse_service_profile(std::string_view name);

// OK when the service accepts `spec`; otherwise kUnsupported (detail "profile-refused") saying
// which keys it accepts, why, and the source URL.
Status check_profile_accepts(const ServiceProfile& profile, const KeySpec& spec);

// OK when `key_ops` includes every operation the service needs; otherwise kUnsupported
// (detail "profile-refused") naming the missing operations and the source URL.
Status check_profile_key_ops(const ServiceProfile& profile,
                             const std::vector<std::string>& key_ops);

// Checks a key's activation and expiry dates (unix seconds; nullopt = not set) against the
// profile's validity rule at `now`. kUnsupported (detail "profile-refused") when they break it.
Status check_profile_validity(const ServiceProfile& profile, std::optional<std::int64_t> nbf,
                              std::optional<std::int64_t> exp, std::int64_t now);

// What a vault tells about itself: the `recoveryLevel` and `recoverableDays` attributes of its
// keys (Key Vault REST, DeletionRecoveryLevel). nullopt when unknown.
struct VaultFacts {
  std::optional<std::string> recovery_level;
  std::optional<std::int64_t> recoverable_days;
};

enum class CheckOutcome {
  kMet,
  kNotMet,
  // The vault does not say; the operator must ensure it (printed as a note).
  kOperatorMustEnsure,
};
std::string_view to_string(CheckOutcome outcome);  // "met", "not-met", "operator-must-ensure"

struct VaultCheck {
  std::string requirement;  // "soft-delete", "purge-protection", ...
  CheckOutcome outcome = CheckOutcome::kOperatorMustEnsure;
  std::string detail;  // what was seen, or what to do
  std::string source_url;
};

// Evaluates the profile's vault requirements against what the vault reports. One entry per
// requirement, in a stable order; empty for a profile without vault requirements.
std::vector<VaultCheck> check_vault_settings(const ServiceProfile& profile,
                                             const VaultFacts& facts);

// The profile as JSON (what `keyport profiles --json` prints for it).
Json service_profile_json(const ServiceProfile& profile);
Json vault_check_json(const VaultCheck& check);

// "rsa-2048, rsa-3072, rsa-4096"
std::string key_spec_list(const std::vector<KeySpec>& specs);

}  // namespace keyport::byok
