// SPDX-License-Identifier: Apache-2.0
// `keyport migrate`: move every key of a keyring from an old KEK to a new one, in four steps.
//
//   plan    counts per KEK, the path the keys will take (inside one token, or through host
//           memory), and whether the old KEK's own material is portable (BYOK) so that it could be
//           imported at the destination instead;
//   run     for each wrapping under the old KEK: unwrap, wrap under the new KEK (in the token when
//           both are there), and write the new wrapping beside the old one;
//   verify  prove each new wrapping holds the same key as the old: check values computed in the HSM
//           where both KEKs are token keys, else keyed fingerprints (HMAC-SHA256 under a random
//           per-run key) compared in constant time; never by printing keys;
//   retire  once every item verified: mark the old wrappings retired or remove them; the old KEK
//           itself is never touched.
//
// The journal makes run crash-safe, resumable and idempotent. An item is done when its key has an
// active wrapping under the new KEK: run writes the new wrappings of a page of items (--batch, 500)
// in one transaction, so the new wrapping is the item's "done" mark and the two cannot disagree; a
// process killed at any moment loses at most the uncommitted page, which the next run redoes. The
// table migration_items holds a row only where there is more to say: "failed" (run), "verified"
// and "mismatch" (verify); a failed or mismatched item is pending again. The wrappings table's key
// (key, KEK, version) makes a doubled wrapping impossible. Nothing is written before a probe
// showed that the old KEK unwraps and the new KEK round-trips.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "migrate/kek.h"
#include "migrate/keyring.h"

namespace keyport::migrate {

struct MigrationPlan {
  KekId from;
  KekId to;
  std::string from_kind;  // "pkcs11", "vault"
  std::string to_kind;
  std::string path;               // "in-token" (both in one token) or "host" (through host memory)
  std::vector<KekUsage> keks;     // every KEK version the keyring names, with counts
  std::int64_t primary_keys = 0;  // active wrappings under `from`, by kind
  std::int64_t data_keys = 0;
  std::int64_t already_under_to = 0;  // of those, keys that also have a wrapping under `to`
  Portability from_portability;
  std::optional<std::int64_t> migration_id;  // a journal exists already
  std::string migration_state;
  std::vector<std::string> steps;  // the keyport commands to run, in order

  Json to_json() const;
};

// Reads the keyring and both KEKs' metadata; writes nothing.
Result<MigrationPlan> plan_migration(Keyring& keyring, const KeyEncryptionKey& from,
                                     const KeyEncryptionKey& to);

struct Progress {
  std::int64_t total = 0;  // items (active wrappings under the old KEK)
  std::int64_t done = 0;   // done so far, earlier runs included
  std::int64_t failed = 0;
};

struct ItemFailure {
  std::string key_id;
  std::string message;
};

struct RunOptions {
  int jobs = 1;                         // worker threads (each uses its own PKCS#11 session)
  std::size_t batch = 500;              // items per transaction
  std::size_t probe = 16;               // items tried before anything is written
  std::atomic<bool>* cancel = nullptr;  // stop after the current batch
  std::function<void(const Progress&)> on_progress;  // after each committed batch
};

struct RunReport {
  std::int64_t migration_id = 0;
  KekId from;
  KekId to;
  std::string path;  // "in-token" or "host"
  std::int64_t total = 0;
  std::int64_t already_done = 0;      // done by earlier runs
  std::int64_t rewrapped = 0;         // done by this run
  std::int64_t failed = 0;            // failed in this run (journal state "failed")
  std::vector<ItemFailure> failures;  // the first 100
  std::int64_t transactions = 0;      // one per page of --batch items
  bool cancelled = false;
  double seconds = 0;

  Json to_json() const;
};

// Re-wraps every active wrapping under `from` that is not done: no active wrapping under `to` yet
// (a wrapping under `to` that was there before the run counts; verify checks it like the others),
// or journaled "failed" or "mismatch". Fails as a whole
// (writing nothing) when `from` equals `to`, the keyring holds nothing under `from`, none of the
// first `probe` items unwraps under `from` (the wrong KEK), the new KEK does not round-trip, or
// another process holds the keyring. Items that fail later are journaled "failed" and reported;
// the others go on.
Result<RunReport> run_migration(Keyring& keyring, const KeyEncryptionKey& from,
                                const KeyEncryptionKey& to, const RunOptions& options = {});

struct VerifyReport {
  std::int64_t migration_id = 0;
  std::string method;  // "hsm-check-value" or "keyed-fingerprint"
  std::int64_t total = 0;
  std::int64_t verified = 0;
  std::int64_t mismatched = 0;        // the new wrapping holds another key or does not unwrap
  std::int64_t failed = 0;            // the old wrapping does not unwrap
  std::int64_t missing = 0;           // no new wrapping yet
  std::vector<ItemFailure> failures;  // the first 100
  bool cancelled = false;
  double seconds = 0;

  bool all_verified() const { return total > 0 && verified == total; }
  Json to_json() const;
};

// Unwraps each old and new wrapping and compares (see the file comment); journals "verified" or
// "mismatch" per item. kNotFound when no migration from `from` to `to` was run.
Result<VerifyReport> verify_migration(Keyring& keyring, const KeyEncryptionKey& from,
                                      const KeyEncryptionKey& to, const RunOptions& options = {});

struct RetireReport {
  std::int64_t migration_id = 0;
  std::int64_t items = 0;
  std::int64_t removed = 0;  // old wrappings deleted (--remove-old-wrappings)
  std::int64_t retired = 0;  // old wrappings kept with state "retired"
  std::string note;          // says that the old KEK was not deleted

  Json to_json() const;
};

// Refuses (kFailedPrecondition, with the counts) unless every item of the migration verified and
// nothing under `from` is left unmigrated. Then, in one transaction, marks the old wrappings
// "retired" or (remove_old_wrappings) deletes them, and the migration "retired". Never touches
// either KEK.
Result<RetireReport> retire_migration(Keyring& keyring, const KekId& from, const KekId& to,
                                      bool remove_old_wrappings);

struct MigrationStatus {
  std::int64_t id = 0;
  KekId from;
  KekId to;
  std::string state;  // "running", "complete", "verified", "retired"
  std::int64_t created = 0;
  std::int64_t updated = 0;
  std::int64_t total = 0;  // wrappings under `from` (active and retired)
  std::int64_t done = 0;   // a new wrapping and no journal row (or "done")
  std::int64_t failed = 0;
  std::int64_t verified = 0;
  std::int64_t mismatched = 0;
  std::int64_t pending = 0;  // neither done, verified nor failed yet

  Json to_json() const;
};

// Every migration in the journal, oldest first. Reads only.
Result<std::vector<MigrationStatus>> migration_status(Keyring& keyring);

}  // namespace keyport::migrate
