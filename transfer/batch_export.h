// SPDX-License-Identifier: Apache-2.0
// `keyport byok export` as one library call: what to export (one key, a label pattern or a
// manifest) and where to (KEKs and kids) becomes a plan of (key, destination, output) items, which
// run_batch (transfer/batch.h) exports in parallel sessions, with a JSON Lines report that a
// re-run resumes from, progress and a cancellation flag. The caller parses options and prints.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "byok/kid.h"
#include "byok/service_profile.h"
#include "core/algorithms.h"
#include "core/error.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "transfer/batch.h"

namespace keyport::transfer {

struct BatchExportRequest {
  // Exactly one of these three.
  std::optional<std::string> key;  // one key: PKCS#11 URI or label
  // Keys whose label matches a glob, or a pkcs11: URI whose object= is the glob (type= narrows
  // the search to one class; its token attributes must match the token opened).
  std::optional<std::string> select;
  std::optional<std::filesystem::path> manifest;  // transfer::read_manifest; KEKs from the lines
  // Destinations for key and select: KEK files, and no kids (each KEK's own) or one per KEK.
  std::vector<std::string> keks;
  std::vector<std::string> kids;
  WrapAlg enc = WrapAlg::kRsaAesKeyWrap;  // a manifest line may name its own
  p11::WrapStrategy strategy = p11::WrapStrategy::kAuto;
  std::optional<byok::TargetKind> target;  // for kid hosts that are not Azure's
  // The output of one key to one destination; otherwise files go to out_dir as
  // <label>[.<destination tag>].byok (a manifest line may name its own, relative to out_dir).
  std::optional<std::filesystem::path> output;
  std::filesystem::path out_dir = ".";
  // The JSON Lines report, appended to (batches: default <out_dir>/keyport-export-report.jsonl,
  // and the outputs it records as written are skipped when they still verify).
  std::optional<std::filesystem::path> report;
  int jobs = 1;  // 1 to 64
  bool force = false;
  // A service (--for): every key of the plan must suit it, or nothing is exported.
  const byok::ServiceProfile* profile = nullptr;
};

// The checks that need neither files nor the token: one mode, KEKs and kids, jobs.
Status check_request(const BatchExportRequest& request);

// The token the keys are in: a logged-in session, and what the workers need to open their own.
struct ExportToken {
  std::shared_ptr<const p11::Module> module;
  CK_SLOT_ID slot = 0;
  const p11::Session* session = nullptr;
  const p11::TokenInfo* token = nullptr;
};

struct ExportPlan {
  std::vector<Destination> destinations;
  std::vector<BatchItem> items;
  std::vector<ItemResult> unresolved;  // manifest lines whose key, KEK or enc failed up front
  bool single = false;                 // one key, one destination: no report unless asked
  std::vector<std::string> warnings;   // about KEKs, kids and the service profile
};

struct BatchExportProgress {
  std::size_t done = 0;  // items with an outcome, failed ones included
  std::size_t failed = 0;
  std::size_t total = 0;  // items + unresolved lines
};

struct BatchExportHooks {
  // Opens the token and logs in. Called once the checks that need no token passed (a bad KEK
  // fails before a PIN is asked for); what it returns must stay valid until the call returns.
  std::function<Result<ExportToken>()> open_token;
  // The plan, checked against the profile, before anything is written (warnings, notes).
  std::function<void(const ExportPlan&)> on_plan;
  // Right before the first key is exported (a progress display, a signal handler).
  std::function<void(const ExportPlan&)> on_start;
  // After each exported, skipped or failed item; serialised, from worker threads.
  std::function<void(const BatchExportProgress&)> on_progress;
  // Set to true to stop: workers finish the item they hold, and the rest fail as not attempted.
  std::atomic<bool>* cancel = nullptr;
};

struct BatchExportResult {
  ExportPlan plan;
  std::vector<ItemResult> results;  // plan.items in order, then plan.unresolved
  std::filesystem::path report_path;
  std::string generator;  // the .byok generator text
  // The strategy the first item's wrap used (choose_strategy), for a one-key summary.
  std::optional<p11::WrapStrategy> strategy;
  std::size_t written = 0;
  std::size_t skipped = 0;
  std::size_t failed = 0;  // items that reported a failure (not those never attempted)
  bool cancelled = false;
  // A batch's outcome as an error: interrupted (kIo), or some exports failed (kInternal, detail
  // "partial"); success otherwise.
  Status status() const;
};

// Plans and runs the export. Fails as a whole for bad requests, setup errors (module, session,
// report) and, with a profile, keys the service refuses; one key to one destination also fails
// with its export's error. In a batch, a failing key never stops the others.
Result<BatchExportResult> run_batch_export(const BatchExportRequest& request,
                                           const BatchExportHooks& hooks);

}  // namespace keyport::transfer
