// SPDX-License-Identifier: Apache-2.0
// Batch and multi-target export: many keys, one or more destinations (KEK + kid), one login,
// each KEK imported once per session, N parallel sessions, one file per (key, destination),
// a failing key never stops the others, and a re-run skips what was already written and verified.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "byok/kek.h"
#include "byok/kid.h"
#include "core/algorithms.h"
#include "core/error.h"
#include "core/json.h"
#include "pkcs11/keygen.h"
#include "pkcs11/module.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "transfer/export.h"

namespace keyport::transfer {

// Where keys go: a KEK and the versioned kid it has in its vault.
struct Destination {
  std::string kek_source;  // file name, for messages and the report
  byok::Kek kek;
  byok::KeyId kid;
  byok::TargetKind target = byok::TargetKind::kKeyVault;
  // Short name used in output file names: the vault name, plus the KEK name when two destinations
  // share a vault.
  std::string tag;
};

// Loads a KEK file and its kid (--kid, or the JWK's kid) into a Destination.
Result<Destination> load_destination(const std::string& kek_path, std::optional<std::string> kid,
                                     std::optional<byok::TargetKind> target_fallback,
                                     std::vector<std::string>& warnings);
// Gives every destination a distinct tag.
void assign_destination_tags(std::vector<Destination>& destinations);

// One line of a manifest: which key, where to, how, and the output file.
struct ManifestEntry {
  std::string key;  // PKCS#11 URI or label
  std::string kek;  // KEK file
  std::optional<std::string> kid;
  std::optional<std::string> enc;
  std::optional<std::string> output;
};

// Reads a manifest: JSON (an array of {"key","kek","kid","enc","output"} objects, or
// {"items": [...]}) or CSV with a header naming the columns key,kek,kid[,enc][,output]. Relative
// KEK paths are resolved against the manifest's folder. kFormat names the line or index at fault.
Result<std::vector<ManifestEntry>> read_manifest(const std::filesystem::path& path);

struct BatchItem {
  p11::KeyObject key;
  std::size_t destination = 0;
  WrapAlg enc = WrapAlg::kRsaAesKeyWrap;
  std::filesystem::path output;
};

enum class ItemOutcome { kWritten, kSkipped, kFailed };
std::string_view to_string(ItemOutcome o);

struct ItemResult {
  std::string label;
  std::string key_type;
  std::string kid;
  std::filesystem::path output;
  ItemOutcome outcome = ItemOutcome::kFailed;
  std::optional<Error> error;
  std::string sha256;  // of the written file
  std::vector<std::string> warnings;
  Json to_json() const;
};

struct BatchOptions {
  int jobs = 1;
  bool force = false;
  p11::WrapStrategy strategy = p11::WrapStrategy::kAuto;
  std::string generator;
  // The JSON Lines report of earlier runs: items recorded there whose file is still present and
  // verifies (kid, enc, RSA part = KEK modulus, same SHA-256) are skipped. Empty: no resume.
  std::filesystem::path previous_report;
  // Files are published in groups with one file-system sync per group: a group closes when it
  // holds commit_every files (each staged file holds a descriptor until then; run_batch lowers
  // this to fit the descriptor limit) or when its first file has waited commit_interval, which
  // bounds how long a written key goes unreported (progress, the report, an interrupt).
  std::size_t commit_every = 4096;
  std::chrono::milliseconds commit_interval{500};
  // Called (from worker threads, serialised) after each item.
  std::function<void(const ItemResult&)> on_item;
  // Set to true to stop: workers finish the item they hold, commit what they wrote, and return.
  std::atomic<bool>* cancel = nullptr;
};

// Runs the batch on `slot` of `module`. The caller has logged in (one session of this application
// logged in is enough: PKCS#11 login state is per application and token); workers open their own
// sessions. Results are in item order. Fails as a whole only for setup errors (module, session).
Result<std::vector<ItemResult>> run_batch(const std::shared_ptr<const p11::Module>& module,
                                          CK_SLOT_ID slot, const p11::WrapCapabilities& caps,
                                          const std::vector<Destination>& destinations,
                                          const std::vector<BatchItem>& items,
                                          const BatchOptions& options);

// Reads a report (JSON Lines, one ItemResult::to_json per line); unreadable lines are ignored.
std::vector<Json> read_report(const std::filesystem::path& path);

// Selects keys whose label matches a glob (fnmatch: * ? [..]) from `keys`.
std::vector<p11::KeyObject> select_keys(const std::vector<p11::KeyObject>& keys,
                                        const std::string& label_glob);

}  // namespace keyport::transfer
