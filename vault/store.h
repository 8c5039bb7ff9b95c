// SPDX-License-Identifier: Apache-2.0
// The vault's metadata store (internal to keyport::vault): keys, versions, attributes, tags,
// release policies, soft-delete state, the pending-object journal and the audit log, in one
// SQLite database (vault.db, WAL mode). Every method is thread-safe; multi-statement changes run
// in one transaction; statements are compiled once (db::Db::cached).
//
// Two connections (performance, issues 4/5/7): one writes (key changes and audit rows, under
// m_write_mutex), one reads (under m_mutex). In WAL mode a reader neither blocks nor waits for a
// writer, so reads never queue behind a commit's fsync; a read after a write returns sees it
// (every read is a new snapshot: cached statements are reset after use). Audit rows are appended
// by group commit (append_audit).
//
// Never stored here: private or secret key material, PINs, plaintexts of crypto operations.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "db/sqlite.h"

namespace keyport::vault {

namespace sql = keyport::db;

struct ReleasePolicy {
  std::string content_type = "application/json; charset=utf-8";
  Bytes data;  // the policy document (UTF-8 JSON)
  bool immutable = false;

  bool operator==(const ReleasePolicy&) const = default;
};

// One version of a key: everything but the key material, which lives in the vault token as the
// object whose CKA_ID is `cka_id` (label "kv:<name>:<version>").
struct KeyVersionRecord {
  std::string name;  // as first created (names compare case-insensitively)
  std::string version;
  std::int64_t seq = 0;  // creation order; the latest version has the highest
  std::string kty;       // "RSA-HSM", "EC-HSM", "oct-HSM", "RSA", "EC"
  KeySpec spec;
  Json public_jwk = Json::object();  // RSA {n,e} / EC {crv,x,y}, base64url; {} for oct
  std::vector<std::string> key_ops;
  bool enabled = true;
  std::optional<std::int64_t> nbf;
  std::optional<std::int64_t> exp;
  std::int64_t created = 0;
  std::int64_t updated = 0;
  bool exportable = false;
  Json tags = Json::object();
  std::optional<ReleasePolicy> release_policy;
  Bytes cka_id;
  std::string origin;  // "generated", "byok", "import", "rotated"
  // Not stored: "1" when the vault's platform cut-over says this version predates HSM platform 2
  // (set by the Store on read); empty: "2" for -HSM key types, "0" for software ones.
  std::string hsm_platform;

  bool is_kek() const;
  bool has_op(std::string_view op) const;
};

struct KeyRecord {
  std::string name;
  std::int64_t created = 0;
  std::optional<std::int64_t> deleted_date;  // set while soft-deleted
  std::optional<std::int64_t> scheduled_purge_date;

  bool deleted() const { return deleted_date.has_value(); }
};

// A journal entry: a token object that may exist without a committed version row (being created,
// or being destroyed by a purge). Replayed (object destroyed) when the vault opens.
struct PendingObject {
  Bytes cka_id;
  std::string label;
  std::string reason;  // "create" or "purge"
  std::int64_t created = 0;
};

// A key's rotation policy as stored: the normalised KeyRotationPolicy JSON without id and times
// ({"lifetimeActions": [...], "attributes": {"expiryTime"?}}).
struct RotationPolicyRecord {
  std::string name;
  Json policy = Json::object();
  std::int64_t created = 0;
  std::int64_t updated = 0;
  // The last version a Notify action fired for ("" when none), so each version notifies once.
  std::string notified_version;
};

struct AuditRecord {
  std::int64_t id = 0;
  std::int64_t time = 0;
  std::string operation;  // "CreateKey", "ImportKey", "Sign", ..., "Open", "JournalReplay"
  std::string key_name;
  std::string version;
  std::string caller;
  std::string outcome;  // "success" or "failure"
  int status = 200;     // the HTTP status the operation maps to
  std::string code;     // Key Vault error code on failure
  std::string reason;   // error message on failure, a short note on success; never secrets
};

// One object of Managed HSM local RBAC (vault/rbac.h): kind "definition", "assignment",
// "setting" or "state", its name (compared case-insensitively) and its JSON document.
struct RbacRow {
  std::string kind;
  std::string name;
  std::string doc;
};

class Store {
 public:
  // Opens or creates vault.db and its schema. Returns kIo on failure.
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& path);

  // The key row (also when soft-deleted), or nullopt.
  Result<std::optional<KeyRecord>> find_key(std::string_view name);
  // All versions of a key, oldest first.
  Result<std::vector<KeyVersionRecord>> versions(std::string_view name);
  // One version, or the latest when `version` is empty; nullopt when absent.
  Result<std::optional<KeyVersionRecord>> find_version(std::string_view name,
                                                       std::string_view version);
  // Every key row, active and deleted, ordered by name.
  Result<std::vector<KeyRecord>> keys();
  // True when some version (of any key, deleted or not) has this CKA_ID.
  Result<bool> cka_id_known(std::span<const std::uint8_t> cka_id);

  Status add_pending(const PendingObject& p);
  Status remove_pending(std::span<const std::uint8_t> cka_id);
  Result<std::vector<PendingObject>> pending();

  // In one transaction: fails with deleted_but_recoverable() when the name is soft-deleted,
  // inserts the key row when it is new, inserts the version (the record's seq and name are set
  // from the database) and removes the pending entry for its CKA_ID.
  Result<KeyVersionRecord> commit_new_version(KeyVersionRecord record);
  // RestoreKey, in one transaction: refuses (Conflict, nothing written) when any key row named
  // like records[0].name exists, active or soft-deleted; otherwise inserts the key row (created
  // = the first version's), every version as given (oldest first; seq follows the order), the
  // rotation policy when there is one, and removes the pending entries of the versions' CKA_IDs.
  Status restore_key(const std::vector<KeyVersionRecord>& records,
                     const std::optional<RotationPolicyRecord>& policy);
  // Replaces the mutable columns of one version (key_ops, attributes, tags, policy).
  Status update_version(const KeyVersionRecord& record);
  // Marks a key soft-deleted.
  Status mark_deleted(std::string_view name, std::int64_t deleted_date,
                      std::int64_t scheduled_purge_date);
  // Clears the soft-deleted mark.
  Status mark_recovered(std::string_view name);
  // In one transaction: journals every version's token object as pending "purge", then deletes
  // the versions and the key row. Returns the journal entries (the caller destroys the objects
  // and removes the entries).
  Result<std::vector<PendingObject>> purge(std::string_view name, std::int64_t now);

  // Rotation policies (kept with the key; purged with it).
  Result<std::optional<RotationPolicyRecord>> find_rotation_policy(std::string_view name);
  Result<std::vector<RotationPolicyRecord>> rotation_policies();
  // Inserts or replaces the policy of `record.name` (created is kept when one exists).
  Result<RotationPolicyRecord> put_rotation_policy(const RotationPolicyRecord& record);
  Status set_notified_version(std::string_view name, std::string_view version);

  // Managed HSM local RBAC: every row, oldest first.
  Result<std::vector<RbacRow>> rbac_rows();
  // In one transaction: deletes the (kind, name) rows of `removed`, then inserts or replaces
  // `rows`.
  Status rbac_write(const std::vector<RbacRow>& rows,
                    const std::vector<std::pair<std::string, std::string>>& removed = {});

  // Versions created before `cutover` (unix seconds) of -HSM key types read back with
  // hsm_platform "1"; nullopt: no cut-over.
  void set_platform1_before(std::optional<std::int64_t> cutover);

  // Appends one audit row and returns once it is durable (committed with synchronous=FULL), so
  // an operation is still audited before it is answered. Group commit: rows from concurrent
  // callers are queued; whichever caller finds no commit in progress becomes the leader and
  // writes every queued row in one transaction (one fsync), the others wait for that commit. A
  // lone caller pays one commit, as before; N concurrent callers share about two.
  Status append_audit(const AuditRecord& record);
  // Audit rows with id > after_id, oldest first. Rows of append_audit calls that have returned
  // are always included.
  Result<std::vector<AuditRecord>> audit_log(std::int64_t after_id);

  // Figures for tests and benchmarks: audit rows written and audit commits made since open.
  struct AuditCounters {
    std::uint64_t rows = 0;
    std::uint64_t commits = 0;
  };
  AuditCounters audit_counters();

 private:
  Status insert_version_row(const std::string& name, const KeyVersionRecord& r);
  Store(sql::Db db, sql::Db read_db) : m_db(std::move(db)), m_read_db(std::move(read_db)) {}
  Result<std::optional<KeyVersionRecord>> find_version_in(sql::Db& db, std::string_view name,
                                                          std::string_view version);
  std::optional<std::int64_t> platform1_before() const;
  struct AuditSlot {  // filled in by the leader that committed the row
    bool done = false;
    Status status;
  };
  struct QueuedAudit {
    AuditRecord record;
    std::shared_ptr<AuditSlot> slot;
  };
  Status write_audit_batch(const std::vector<QueuedAudit>& batch);

  std::mutex m_write_mutex;  // m_db: every change, audit rows included
  sql::Db m_db;
  std::mutex m_mutex;  // m_read_db: every read
  sql::Db m_read_db;
  std::atomic<std::int64_t> m_platform1_before{INT64_MIN};  // INT64_MIN: no cut-over

  // Group commit of audit rows.
  std::mutex m_audit_mutex;  // the queue, the leader flag and the counters
  std::condition_variable m_audit_cv;
  std::vector<QueuedAudit> m_audit_queue;
  bool m_audit_flushing = false;
  AuditCounters m_audit_counters;
};

}  // namespace keyport::vault
