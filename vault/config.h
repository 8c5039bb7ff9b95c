// SPDX-License-Identifier: Apache-2.0
// A vault folder's configuration, DIR/vault.json: the one reader and writer of that file
// (Vault::open and Vault::init, the REST server when it settles the base URL).
//
//   {"schema": 1, "flavor": "key-vault" | "managed-hsm", "name": ..., "base_url": ...,
//    "base_url_given": true (only when an operator chose the base URL), "created": <unix seconds>}
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"

namespace keyport::vault {

// The file name of a vault folder's configuration.
inline constexpr const char* kVaultConfigFile = "vault.json";

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

  // Reads DIR/vault.json strictly (no unknown or duplicate members). Returns the configuration
  // as written (the base URL is not normalised here), or kNotFound (no file), kFormat (not JSON,
  // a member missing or of the wrong type), kInvalidArgument (unknown flavor, file too large), kIo.
  static Result<VaultConfig> load(const std::filesystem::path& dir);

  // Writes DIR/vault.json atomically: create-if-absent (kAlreadyExists when it exists) unless
  // `overwrite`. Returns kIo on write failure.
  Status save(const std::filesystem::path& dir, bool overwrite = false) const;
};

}  // namespace keyport::vault
