// SPDX-License-Identifier: Apache-2.0
// What a vault data folder's owner does to it without opening the vault: the settings a running
// server follows (clock offset, HSM platform cut-over) and the attestation authorities it trusts
// for key release. These work on the files alone, so they also work while `keyport vault serve`
// holds the folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace keyport::vault {

// OK when `dir` is a vault folder: VaultConfig::load reads its vault.json. kNotFound without one;
// a vault.json the vault would refuse is refused here too (kFormat, kInvalidArgument).
Status check_vault_folder(const std::filesystem::path& dir);

struct FolderClock {
  std::int64_t clock_offset = 0;  // seconds added to the system clock
  std::int64_t now = 0;           // the vault's "now" (unix seconds)
};
// Reads the folder's clock; with `advance` (an ISO 8601 duration) moves it forward, with `reset`
// back to the system clock (DIR/settings.json). kInvalidArgument for both at once or a bad
// duration.
Result<FolderClock> folder_clock(const std::filesystem::path& dir,
                                 const std::optional<std::string>& advance, bool reset);

// Sets (or with nullopt clears) the time before which -HSM versions count as HSM platform "1".
// Returns what is now set.
Result<std::optional<std::int64_t>> set_platform_cutover(const std::filesystem::path& dir,
                                                         std::optional<std::int64_t> before);

struct TrustResult {
  std::filesystem::path file;        // DIR/trusted-authorities.json
  std::vector<std::string> trusted;  // the issuers added (or replaced)
};
// Merges the authorities of `from` (a trusted-authorities file, or a `keyport attest` folder that
// holds one) into DIR/trusted-authorities.json, an entry per issuer (a newer one replaces an older
// one); with `replace` the file holds only `from`'s. kFormat for a file that is not
// {"authorities": [{"issuer": ...}, ...]}.
Result<TrustResult> trust_authorities(const std::filesystem::path& dir,
                                      const std::filesystem::path& from, bool replace);

}  // namespace keyport::vault
