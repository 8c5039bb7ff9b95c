// SPDX-License-Identifier: Apache-2.0
// A vault folder's configuration, DIR/vault.json: the one reader and writer of that file
// (Vault::open and Vault::init, the REST server when it settles the base URL).
//
//   {"schema": 1, "flavor": "key-vault" | "managed-hsm", "name": ..., "base_url": ...,
//    "base_url_given": true (only when an operator chose the base URL), "created": <unix seconds>,
//    "soft_delete_retention_days": 7..90 (absent: 90), "purge_protection": true (absent: false),
//    "backup_domain": "<uuid>" (absent in folders made before backups: set at the next open),
//    "backup_domain_join": true (only while the vault waits for another vault's domain keys),
//    "activation_required": true (a managed-hsm vault not activated yet: no security domain)}
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"

namespace keyport::vault {

// The file name of a vault folder's configuration.
inline constexpr const char* kVaultConfigFile = "vault.json";

// Azure's bounds of the soft-delete retention period, in days.
inline constexpr int kMinRetentionDays = 7;
inline constexpr int kMaxRetentionDays = 90;

enum class Flavor { kKeyVault, kManagedHsm };

// Returns "key-vault" or "managed-hsm".
std::string_view to_string(Flavor flavor);
// Returns the flavor named `name`, or kInvalidArgument.
Result<Flavor> parse_flavor(std::string_view name);

// What vault.json holds.
struct VaultConfig {
  Flavor flavor = Flavor::kKeyVault;
  // The vault's name ([0-9a-zA-Z-], 1..63 characters).
  std::string name;
  // "https://<host>[:port]" without a path. Empty: https://<name>.vault.azure.net (key-vault) or
  // https://<name>.managedhsm.azure.net (managed-hsm). A local server uses e.g.
  // https://127.0.0.1:8443. Key identifiers (kid) are <base_url>/keys/<name>/<version>.
  std::string base_url;
  // True when an operator chose base_url (`vault init --base-url`): the server keeps it whatever
  // its listen address. False when it is a default, which `vault serve` replaces with its listen
  // address. Stored as "base_url_given": true (absent means false).
  bool base_url_given = false;
  std::int64_t created = 0;  // unix seconds; set by Vault::init
  // Soft-delete retention (Azure: 7..90 days, default 90): scheduledPurgeDate = deletedDate + N
  // days, recoverableDays = N. Stored only when not 90.
  int soft_delete_retention_days = 90;
  // Purge protection: PurgeDeletedKey is refused (403); deleted keys are purged only by the vault
  // when their scheduledPurgeDate has passed. Stored only when true.
  bool purge_protection = false;
  // The backup domain (a UUID): BackupKey blobs restore only into vaults of the same domain,
  // whose tokens hold the same domain keys (vault/vault_backup.cpp). Empty: not assigned yet.
  std::string backup_domain;
  // True from `vault init --backup-domain` until the domain keys of the existing vault have been
  // received (Vault::finish_backup_domain_join): open makes no domain keys of its own meanwhile,
  // and BackupKey and RestoreKey are refused. Stored only when true.
  bool backup_domain_join = false;
  // A Managed HSM that is not activated (`vault init --require-activation`): every operation but
  // the security domain's is refused until a security-domain download (which makes the backup
  // domain and activates it) or upload (which brings another HSM's domain). Stored only when true.
  bool activation_required = false;

  // Azure's recoveryLevel for these settings: "Recoverable+Purgeable" (90 days),
  // "Recoverable" (90 days, purge protection), "CustomizedRecoverable+Purgeable" (7..89 days),
  // "CustomizedRecoverable" (7..89 days, purge protection).
  std::string recovery_level() const;

  // Reads DIR/vault.json strictly (no unknown or duplicate members). Returns the configuration
  // as written (the base URL is not normalised here), or kNotFound (no file), kFormat (not JSON,
  // a member missing or of the wrong type), kInvalidArgument (unknown flavor, file too large), kIo.
  static Result<VaultConfig> load(const std::filesystem::path& dir);

  // Writes DIR/vault.json atomically: create-if-absent (kAlreadyExists when it exists) unless
  // `overwrite`. Returns kIo on write failure.
  Status save(const std::filesystem::path& dir, bool overwrite = false) const;
};

}  // namespace keyport::vault
