// SPDX-License-Identifier: Apache-2.0
#include "byok/service_profile.h"

#include <algorithm>

#include "core/encoding.h"

namespace keyport::byok {
namespace {

// Where each fact was read (docs/service-profiles.md quotes the passages and their dates).
constexpr const char* kByokSpecUrl =
    "https://learn.microsoft.com/azure/key-vault/keys/byok-specification";
constexpr const char* kStorageUrl =
    "https://learn.microsoft.com/azure/storage/common/"
    "customer-managed-keys-overview#key-vault-requirements";
constexpr const char* kSqlUrl =
    "https://learn.microsoft.com/azure/azure-sql/database/"
    "transparent-data-encryption-byok-overview#requirements-for-configuring-customer-managed-tde";
constexpr const char* kSqlKeyUrl =
    "https://learn.microsoft.com/azure/azure-sql/database/"
    "transparent-data-encryption-byok-overview#requirements-for-configuring-tde-protector";
constexpr const char* kDiskRestrictionsUrl =
    "https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions";
constexpr const char* kDiskVaultUrl =
    "https://learn.microsoft.com/azure/virtual-machines/disks-enable-customer-managed-keys-portal";
constexpr const char* kDiskCliUrl =
    "https://learn.microsoft.com/azure/virtual-machines/disks-enable-customer-managed-keys-cli";
constexpr const char* kAdeUrl =
    "https://learn.microsoft.com/azure/virtual-machines/linux/disk-encryption-key-vault";
constexpr const char* kAipUrl =
    "https://learn.microsoft.com/azure/information-protection/byok-price-restrictions";
constexpr const char* kM365Url = "https://learn.microsoft.com/purview/customer-key-set-up";
constexpr const char* kRecoveryLevelUrl =
    "https://learn.microsoft.com/rest/api/keyvault/keys/get-key/get-key#deletionrecoverylevel";

// 9999-12-31T00:00:00Z: Customer Key accepts an expiry date only if it is 12/31/9999.
constexpr std::int64_t kYear9999Dec31 = 253402214400;

std::vector<KeySpec> rsa_specs(std::initializer_list<unsigned> sizes) {
  std::vector<KeySpec> out;
  for (const KeySpec& spec : all_key_specs()) {
    if (spec.family == KeyFamily::kRsa &&
        std::find(sizes.begin(), sizes.end(), spec.bits) != sizes.end()) {
      out.push_back(spec);
    }
  }
  return out;
}

std::vector<ServiceProfile> build_profiles() {
  std::vector<ServiceProfile> all;

  ServiceProfile generic;
  generic.id = ServiceProfileId::kGeneric;
  generic.name = "generic";
  generic.title = "Any application (no service rules beyond Key Vault's own)";
  generic.key_specs = all_key_specs();
  generic.key_rule =
      "every key type keyport makes; Key Vault and Managed HSM still apply their own BYOK rules "
      "(AES keys only in Managed HSM)";
  generic.key_rule_url = kByokSpecUrl;
  generic.sources = {{kByokSpecUrl,
                      "Target keys may be RSA, EC, or AES (AES in Managed HSM only); the KEK is "
                      "RSA-HSM 2048, 3072 or 4096 with key_ops [\"import\"]."}};
  all.push_back(std::move(generic));

  ServiceProfile storage;
  storage.id = ServiceProfileId::kStorageCmk;
  storage.name = "storage-cmk";
  storage.title = "Azure Storage customer-managed keys";
  storage.key_specs = rsa_specs({2048, 3072, 4096});
  storage.key_rule =
      "Azure Storage encryption supports RSA and RSA-HSM keys of 2048, 3072 and "
      "4096 bits only";
  storage.key_rule_url = kStorageUrl;
  storage.key_ops = {"wrapKey", "unwrapKey"};
  storage.permissions = {"get", "wrapKey", "unwrapKey"};
  storage.vault.soft_delete = true;
  storage.vault_rule_url = kStorageUrl;
  storage.vault.purge_protection = true;
  storage.operator_notes = {
      "grant the storage account's managed identity get, wrapKey and unwrapKey on the key",
      "the vault may be in another Microsoft Entra tenant, region or subscription",
      "with automatic version updates Storage looks for a new key version once a day: wait 24 "
      "hours after a rotation before disabling the old version"};
  storage.sources = {
      {kStorageUrl,
       "The key vault or managed HSM must have both soft delete and purge protection enabled; "
       "Azure Storage encryption supports RSA and RSA-HSM keys of sizes 2048, 3072 and 4096."},
      {"https://learn.microsoft.com/azure/storage/common/customer-managed-keys-overview",
       "The managed identity needs at least wrapkey, unwrapkey and get on the key; Storage wraps "
       "the account encryption key with it."}};
  all.push_back(std::move(storage));

  ServiceProfile sql;
  sql.id = ServiceProfileId::kSqlTde;
  sql.name = "sql-tde";
  sql.title = "Azure SQL transparent data encryption (TDE protector)";
  sql.key_specs = rsa_specs({2048, 3072});
  sql.key_rule = "the TDE protector can only be an RSA or RSA-HSM key of 2048 or 3072 bits";
  sql.key_rule_url = kSqlKeyUrl;
  sql.key_ops = {"wrapKey", "unwrapKey"};
  sql.permissions = {"get", "wrapKey", "unwrapKey"};
  sql.validity = ValidityRule::kActiveNow;
  sql.vault.soft_delete = true;
  sql.vault_rule_url = kSqlUrl;
  sql.vault.purge_protection = true;
  sql.operator_notes = {
      "the vault and the server must be in the same Microsoft Entra tenant",
      "with a vault firewall, allow trusted Microsoft services to bypass it",
      "the key must be enabled; keep old key versions for as long as a backup needs them"};
  sql.sources = {
      {kSqlUrl,
       "TDE protector: asymmetric RSA or RSA HSM key only, 2048 or 3072 (the page says "
       "'bytes'); activation date, if set, in the past; expiration date, if set, in the future; "
       "key Enabled. Soft-delete and purge protection must be enabled on the key vault, and TDE "
       "protector setup fails otherwise. The server needs get, wrapKey, unwrapKey. Managed HSM "
       "RSA keys are supported."}};
  all.push_back(std::move(sql));

  ServiceProfile disk;
  disk.id = ServiceProfileId::kDiskEncryption;
  disk.name = "disk-encryption";
  disk.title = "Azure managed disks: server-side encryption with a disk encryption set";
  disk.key_specs = rsa_specs({2048, 3072, 4096});
  disk.key_rule =
      "only software and HSM RSA keys of 2048, 3072 and 4096 bits are supported, no "
      "other keys or sizes";
  disk.key_rule_url = kDiskRestrictionsUrl;
  disk.key_ops = {"wrapKey", "unwrapKey"};
  disk.permissions = {"get", "wrapKey", "unwrapKey"};
  disk.vault.soft_delete = true;
  disk.vault_rule_url = kDiskVaultUrl;
  disk.vault.purge_protection = true;
  disk.operator_notes = {
      "the vault must be in the same region (and tenant) as the disk encryption set; another "
      "subscription is allowed",
      "HSM keys need the Premium tier of Key Vault (or Managed HSM)",
      "a disabled, deleted or expired key shuts down the VMs whose disks use it",
      "Azure Disk Encryption (BitLocker/dm-crypt inside the VM) instead: the KEK must be RSA, the "
      "vault needs --enabled-for-disk-encryption and soft delete, same region and tenant as the "
      "VM, and a versioned KEK URL"};
  disk.sources = {
      {kDiskRestrictionsUrl,
       "Only software and HSM RSA keys of sizes 2,048-bit, 3,072-bit and 4,096-bit are "
       "supported, no other keys or sizes; the Key Vault must be in the same region as the disk "
       "encryption set."},
      {kDiskVaultUrl,
       "Soft delete and purge protection must be enabled; they are mandatory when a Key Vault "
       "encrypts managed disks."},
      {kDiskCliUrl,
       "The disk encryption set's identity gets wrapkey, unwrapkey and get; a Managed HSM key "
       "is created with --ops wrapKey unwrapKey."},
      {kAdeUrl,
       "Azure Disk Encryption: generate an RSA KEK (Elliptic Curve keys are not supported); "
       "enabled-for-disk-encryption is required; the vault must be in the same region and tenant "
       "as the VMs; KEK URLs must be versioned."}};
  all.push_back(std::move(disk));

  ServiceProfile aip;
  aip.id = ServiceProfileId::kAipTenantKey;
  aip.name = "aip-tenant-key";
  aip.title = "Azure Information Protection (Azure Rights Management) BYOK tenant key";
  aip.key_specs = rsa_specs({2048});
  aip.key_rule =
      "the tenant key must be an RSA key of 2048 bits (1024 is also accepted by the "
      "service but not adequate, and keyport does not make it); other lengths are not "
      "supported";
  aip.key_rule_url = std::string(kAipUrl) + "#key-length-requirements";
  aip.key_ops = {"encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify"};
  aip.permissions = {"get", "decrypt", "sign"};
  aip.operator_notes = {
      "grant the Azure Rights Management service principal "
      "(00000012-0000-0000-c000-000000000000) get, decrypt and sign",
      "HSM-protected keys need the Key Vault Premium tier (or Managed HSM)",
      "configure the service with the versioned key URL (Use-AipServiceKeyVaultKey)",
      "with a vault firewall, allow trusted Microsoft services to bypass it"};
  aip.sources = {
      {aip.key_rule_url,
       "Key length either 2048 bits (recommended) or 1024 bits; other key lengths are not "
       "supported. All Key Vault operations must be permitted for the key: encrypt, decrypt, "
       "wrapKey, unwrapKey, sign, verify."},
      {kAipUrl,
       "The Azure Rights Management service principal needs Get, Decrypt and Sign; Managed HSM "
       "keys use the Managed HSM Crypto User role. No soft-delete or purge-protection "
       "requirement is stated."}};
  all.push_back(std::move(aip));

  ServiceProfile m365;
  m365.id = ServiceProfileId::kM365CustomerKey;
  m365.name = "m365-customer-key";
  m365.title = "Microsoft 365 Customer Key (data encryption policies)";
  m365.key_specs = rsa_specs({2048, 3072, 4096});
  m365.key_rule =
      "Customer Key uses RSA keys (Key Vault does not wrap or unwrap with EC keys); "
      "the pages read give no size rule, so keyport allows the RSA sizes Key Vault "
      "makes";
  m365.key_rule_url = kM365Url;
  m365.key_ops = {"wrapKey", "unwrapKey"};
  m365.permissions = {"get", "wrapKey", "unwrapKey"};
  m365.validity = ValidityRule::kNoExpiry;
  m365.vault.soft_delete = true;
  m365.vault_rule_url = kM365Url;
  m365.vault.purge_protection = true;
  m365.vault.protected_subscription = true;
  m365.vault.two_vaults_in_two_regions = true;
  m365.operator_notes = {
      "each data encryption policy takes two keys in two vaults, in two Azure subscriptions, "
      "in two different (preferably non-paired) regions: create the second key the same way "
      "in the second vault",
      "register both subscriptions for a mandatory retention period so that the keys report "
      "recoveryLevel Recoverable+ProtectedSubscription",
      "use Premium (HSM) vaults for production; Standard only for tests",
      "back up each key (Backup-AzKeyVaultKey) right after creating or importing it"};
  m365.sources = {
      {kM365Url,
       "Two Azure subscriptions, a vault in each; a DEP names two keys in two vaults located in "
       "two separate Azure regions; key ops wrapKey and unwrapKey; Microsoft 365 needs "
       "wrapKey, unwrapKey and get; soft delete must be on and the recovery level must be "
       "Recoverable+ProtectedSubscription; keys must have no expiry date (or 12/31/9999); use "
       "RSA keys. No key size is stated in the versions read."},
      {kRecoveryLevelUrl,
       "DeletionRecoveryLevel: a level containing 'Purgeable' lets a privileged user purge; "
       "Recoverable+ProtectedSubscription forbids purge and subscription cancellation."}};
  all.push_back(std::move(m365));
  return all;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    out += (out.empty() ? "" : ", ") + s;
  }
  return out;
}

std::string_view validity_name(ValidityRule rule) {
  switch (rule) {
    case ValidityRule::kAny:
      return "any";
    case ValidityRule::kActiveNow:
      return "active-now";
    case ValidityRule::kNoExpiry:
      return "no-expiry";
  }
  return "any";
}

Error refused(const ServiceProfile& p, const std::string& why, const std::string& url) {
  return Error(ErrorCode::kUnsupported, std::string(p.name) + " (" + std::string(p.title) +
                                            "): " + why + " (source: " + url + ")")
      .with_detail("profile-refused");
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

const std::vector<ServiceProfile>& all_service_profiles() {
  static const std::vector<ServiceProfile> profiles = build_profiles();
  return profiles;
}

Result<const ServiceProfile*> parse_service_profile(std::string_view name) {
  const std::string want = ascii_lower(name);
  std::string names;
  for (const ServiceProfile& p : all_service_profiles()) {
    if (p.name == want) {
      return &p;
    }
    names += (names.empty() ? "" : ", ") + std::string(p.name);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown service profile \"" + std::string(name) + "\"; use one of: " + names);
}

std::string key_spec_list(const std::vector<KeySpec>& specs) {
  std::string out;
  for (const KeySpec& s : specs) {
    out += (out.empty() ? "" : ", ") + s.name();
  }
  return out;
}

Status check_profile_accepts(const ServiceProfile& profile, const KeySpec& spec) {
  if (std::find(profile.key_specs.begin(), profile.key_specs.end(), spec) !=
      profile.key_specs.end()) {
    return {};
  }
  return tl::unexpected(refused(profile,
                                "does not accept " + spec.name() + " keys: " + profile.key_rule +
                                    "; accepted: " + key_spec_list(profile.key_specs),
                                profile.key_rule_url));
}

Status check_profile_key_ops(const ServiceProfile& profile,
                             const std::vector<std::string>& key_ops) {
  std::vector<std::string> missing;
  for (const auto& op : profile.key_ops) {
    if (std::find(key_ops.begin(), key_ops.end(), op) == key_ops.end()) {
      missing.push_back(op);
    }
  }
  if (missing.empty()) {
    return {};
  }
  const std::string url =
      profile.sources.empty() ? profile.key_rule_url : profile.sources.front().url;
  return tl::unexpected(refused(
      profile, "the key must permit " + join(profile.key_ops) + "; missing " + join(missing), url));
}

Status check_profile_validity(const ServiceProfile& profile, std::optional<std::int64_t> nbf,
                              std::optional<std::int64_t> exp, std::int64_t now) {
  const std::string url =
      profile.sources.empty() ? profile.key_rule_url : profile.sources.front().url;
  switch (profile.validity) {
    case ValidityRule::kAny:
      return {};
    case ValidityRule::kActiveNow:
      if (nbf && *nbf > now) {
        return tl::unexpected(
            refused(profile, "the key's activation date (nbf) must be in the past", url));
      }
      if (exp && *exp <= now) {
        return tl::unexpected(
            refused(profile, "the key's expiration date (exp) must be in the future", url));
      }
      return {};
    case ValidityRule::kNoExpiry:
      if (exp && *exp < kYear9999Dec31) {
        return tl::unexpected(
            refused(profile, "the key must have no expiration date (or exactly 12/31/9999)", url));
      }
      return {};
  }
  return {};
}

std::string_view to_string(CheckOutcome outcome) {
  switch (outcome) {
    case CheckOutcome::kMet:
      return "met";
    case CheckOutcome::kNotMet:
      return "not-met";
    case CheckOutcome::kOperatorMustEnsure:
      return "operator-must-ensure";
  }
  return "operator-must-ensure";
}

std::vector<VaultCheck> check_vault_settings(const ServiceProfile& profile,
                                             const VaultFacts& facts) {
  std::vector<VaultCheck> out;
  const std::string& url = profile.vault_rule_url;
  const std::string seen =
      facts.recovery_level
          ? "recoveryLevel " + *facts.recovery_level +
                (facts.recoverable_days
                     ? ", recoverableDays " + std::to_string(*facts.recoverable_days)
                     : std::string())
          : std::string();
  if (profile.vault.soft_delete) {
    VaultCheck c{"soft-delete", CheckOutcome::kOperatorMustEnsure, "", url};
    if (!facts.recovery_level) {
      c.detail = "the vault does not report a recovery level: make sure soft delete is on";
    } else if (contains(*facts.recovery_level, "Recoverable")) {
      c.outcome = CheckOutcome::kMet;
      c.detail = seen + ": deleted keys can be recovered";
    } else {
      c.outcome = CheckOutcome::kNotMet;
      c.detail = seen + ": deleted keys are gone at once; turn soft delete on";
    }
    out.push_back(std::move(c));
  }
  if (profile.vault.purge_protection) {
    VaultCheck c{"purge-protection", CheckOutcome::kOperatorMustEnsure, "", url};
    if (!facts.recovery_level) {
      c.detail =
          "the vault does not report a recovery level: make sure purge protection is on "
          "(az keyvault update --enable-purge-protection true)";
    } else if (contains(*facts.recovery_level, "Purgeable")) {
      c.outcome = CheckOutcome::kNotMet;
      c.detail = seen +
                 ": deleted keys can be purged before the retention period ends; enable purge "
                 "protection (az keyvault update --enable-purge-protection true, or "
                 "az keyvault update-hsm for Managed HSM)";
    } else {
      c.outcome = CheckOutcome::kMet;
      c.detail = seen + ": purge is not permitted";
    }
    out.push_back(std::move(c));
  }
  if (profile.vault.protected_subscription) {
    VaultCheck c{"protected-subscription", CheckOutcome::kOperatorMustEnsure, "", url};
    if (!facts.recovery_level) {
      c.detail =
          "the vault does not report a recovery level: the keys must show "
          "Recoverable+ProtectedSubscription";
    } else if (contains(*facts.recovery_level, "ProtectedSubscription")) {
      c.outcome = CheckOutcome::kMet;
      c.detail = seen;
    } else {
      c.outcome = CheckOutcome::kNotMet;
      c.detail = seen +
                 ": register the subscription for a mandatory retention period "
                 "(Register-AzProviderFeature -FeatureName mandatoryRetentionPeriodEnabled) so "
                 "that keys show Recoverable+ProtectedSubscription";
    }
    out.push_back(std::move(c));
  }
  if (profile.vault.two_vaults_in_two_regions) {
    out.push_back({"two-vaults-in-two-regions", CheckOutcome::kOperatorMustEnsure,
                   "a vault does not know the other one: create the second key in a second vault "
                   "in a different region",
                   url});
  }
  return out;
}

Json vault_check_json(const VaultCheck& check) {
  return Json{{"requirement", check.requirement},
              {"outcome", std::string(to_string(check.outcome))},
              {"detail", check.detail},
              {"source", check.source_url}};
}

Json service_profile_json(const ServiceProfile& p) {
  Json types = Json::array();
  for (const KeySpec& s : p.key_specs) {
    types.push_back(s.name());
  }
  Json sources = Json::array();
  for (const auto& s : p.sources) {
    sources.push_back(Json{{"url", s.url}, {"says", s.says}});
  }
  return Json{{"name", std::string(p.name)},
              {"title", std::string(p.title)},
              {"key_types", types},
              {"key_rule", p.key_rule},
              {"key_rule_source", p.key_rule_url},
              {"key_ops", p.key_ops},
              {"permissions", p.permissions},
              {"validity", std::string(validity_name(p.validity))},
              {"vault",
               {{"soft_delete", p.vault.soft_delete},
                {"purge_protection", p.vault.purge_protection},
                {"protected_subscription", p.vault.protected_subscription},
                {"two_vaults_in_two_regions", p.vault.two_vaults_in_two_regions}}},
              {"vault_rule_source", p.vault_rule_url},
              {"operator_notes", p.operator_notes},
              {"sources", sources}};
}

}  // namespace keyport::byok
