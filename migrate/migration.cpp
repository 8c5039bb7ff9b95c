// SPDX-License-Identifier: Apache-2.0
#include "migrate/migration.h"

#include <chrono>
#include <thread>

#include "core/random.h"
#include "migrate/crypto.h"

namespace keyport::migrate {
namespace {

constexpr std::size_t kMaxReportedFailures = 100;

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

Json kek_json(const KekId& k) {
  return Json{{"id", k.id}, {"version", k.version}};
}

Json failures_json(const std::vector<ItemFailure>& failures) {
  Json out = Json::array();
  for (const auto& f : failures) {
    out.push_back(Json{{"key_id", f.key_id}, {"error", f.message}});
  }
  return out;
}

// Runs fn(i) for i in [0, n) on `jobs` threads (the calling thread included).
void parallel_for(std::size_t n, int jobs, const std::function<void(std::size_t)>& fn) {
  const std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(std::max(1, jobs)), n);
  if (workers <= 1) {
    for (std::size_t i = 0; i < n; ++i) {
      fn(i);
    }
    return;
  }
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < n; i = next++) {
      fn(i);
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  for (std::size_t t = 1; t < workers; ++t) {
    threads.emplace_back(work);
  }
  work();
  for (auto& t : threads) {
    t.join();
  }
}

Result<std::int64_t> count_under(sql::Db& db, const KekId& kek, bool active_only) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, db.prepare(active_only ? "SELECT count(*) FROM wrappings WHERE kek_id = ?1 AND "
                                       "kek_version = ?2 AND state = 'active'"
                                     : "SELECT count(*) FROM wrappings WHERE kek_id = ?1 AND "
                                       "kek_version = ?2"));
  s.bind(1, kek.id).bind(2, kek.version);
  KEYPORT_TRY(s.step());
  return s.column_int(0);
}

struct MigrationRow {
  std::int64_t id = 0;
  std::string state;
};

Result<std::optional<MigrationRow>> find_migration(sql::Db& db, const KekId& from,
                                                   const KekId& to) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, db.prepare("SELECT id, state FROM migrations WHERE from_kek = ?1 AND from_version "
                         "= ?2 AND to_kek = ?3 AND to_version = ?4"));
  s.bind(1, from.id).bind(2, from.version).bind(3, to.id).bind(4, to.version);
  KEYPORT_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) {
    return std::optional<MigrationRow>();
  }
  return std::optional<MigrationRow>(MigrationRow{s.column_int(0), s.column_text(1)});
}

Status set_migration_state(sql::Db& db, std::int64_t id, std::string_view state) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, db.prepare("UPDATE migrations SET state = ?1, updated = ?2 WHERE id = ?3"));
  s.bind(1, state).bind(2, Keyring::now()).bind(3, id);
  return s.run();
}

Result<std::int64_t> count_items(sql::Db& db, std::int64_t migration, std::string_view states) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s,
      db.prepare("SELECT count(*) FROM migration_items WHERE migration = ?1 AND state IN (" +
                 std::string(states) + ")"));
  s.bind(1, migration);
  KEYPORT_TRY(s.step());
  return s.column_int(0);
}

std::string list_keks(Keyring& keyring) {
  auto usage = keyring.kek_usage();
  if (!usage || usage->empty()) {
    return "nothing";
  }
  std::string out;
  for (const auto& u : *usage) {
    out += (out.empty() ? "" : "; ") + u.kek.describe() + ": " +
           std::to_string(u.primary_keys + u.data_keys) + " active";
  }
  return out;
}

// One item to re-wrap or verify.
struct Item {
  std::string key_id;
  Bytes old_wrapped;
  std::optional<Bytes> new_wrapped;
  std::string journal_state;
};

// Re-wraps one key: in the token when both KEKs are there, through host memory otherwise.
Result<Bytes> rewrap(const KeyEncryptionKey& from, const KeyEncryptionKey& to, bool in_token,
                     std::span<const std::uint8_t> wrapped) {
  if (in_token) {
    return from.rewrap_in_token(wrapped, to);
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes key, from.unwrap(wrapped));
  return to.wrap(key);
}

// What proves which key a wrapping holds: a check value from the HSM, or a keyed fingerprint.
Result<Bytes> identify(const KeyEncryptionKey& kek, bool hsm, const SecretBytes& fingerprint_key,
                       std::span<const std::uint8_t> wrapped) {
  if (hsm) {
    return kek.check_value_in_token(wrapped);
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes key, kek.unwrap(wrapped));
  return keyed_fingerprint(fingerprint_key, key);
}

// Before anything is written: some of the first items must unwrap under `from`, and a re-wrapped
// one must come back as the same key under `to`.
Status probe(const KeyEncryptionKey& from, const KeyEncryptionKey& to, bool in_token,
             const std::vector<Item>& items, std::size_t max_items) {
  const bool hsm = from.has_token_check_values() && to.has_token_check_values();
  SecretBytes fk = random_secret(32);
  std::optional<Error> last;
  const std::size_t n = std::min(items.size(), max_items);
  for (std::size_t i = 0; i < n; ++i) {
    auto before = identify(from, hsm, fk, items[i].old_wrapped);
    if (!before) {
      last = before.error();
      continue;
    }
    auto moved = rewrap(from, to, in_token, items[i].old_wrapped);
    if (!moved) {
      return tl::unexpected(moved.error().with_context("probe: re-wrapping " + items[i].key_id +
                                                       " under " + to.id().describe() +
                                                       " failed; nothing was written"));
    }
    auto after = identify(to, hsm, fk, *moved);
    if (!after || !ct_equal(*before, *after)) {
      return make_error(ErrorCode::kIntegrityFailure,
                        "probe: a key re-wrapped under " + to.id().describe() +
                            " does not come back as the same key; nothing was written");
    }
    return {};
  }
  if (n == 0) {
    return {};
  }
  if (last && last->code() != ErrorCode::kIntegrityFailure) {
    return tl::unexpected(last->with_context("probe: nothing was written"));
  }
  return make_error(ErrorCode::kIntegrityFailure,
                    "none of the first " + std::to_string(n) + " items unwraps under " +
                        from.id().describe() +
                        ": is --from the KEK that wrapped them? Nothing was written");
}

// Reads the rows of `s`: key_id, old wrapping, then (verify pages) the new wrapping or NULL, and
// the item's journal state or NULL.
Result<std::vector<Item>> read_items(sql::Stmt& s, bool with_new) {
  std::vector<Item> out;
  for (;;) {
    KEYPORT_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) {
      return out;
    }
    Item it;
    it.key_id = s.column_text(0);
    it.old_wrapped = s.column_blob(1);
    if (with_new && !s.is_null(2)) {
      it.new_wrapped = s.column_blob(2);
    }
    const int state_column = with_new ? 3 : 2;
    it.journal_state = s.is_null(state_column) ? "" : s.column_text(state_column);
    out.push_back(std::move(it));
  }
}

// The first `limit` active wrappings under `from`, whatever their journal state (the probe).
Result<std::vector<Item>> first_items(sql::Db& db, const KekId& from, std::size_t limit) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, db.prepare("SELECT key_id, wrapped, NULL FROM wrappings WHERE kek_id = ?1 AND "
                         "kek_version = ?2 AND state = 'active' ORDER BY key_id LIMIT ?3"));
  s.bind(1, from.id).bind(2, from.version).bind(3, static_cast<std::int64_t>(limit));
  return read_items(s, false);
}

// An item is done when its key has an active wrapping under the new KEK, written in the same
// transaction as anything else run records for it, and the journal does not say that verify
// found that wrapping wrong ("mismatch") or that the item failed. Pending is the rest. The new
// wrapping is its own journal entry: run writes no row for an item that simply succeeds.
constexpr std::string_view kHasNewWrapping =
    "EXISTS (SELECT 1 FROM wrappings n WHERE n.key_id = w.key_id AND n.kek_id = ?4 AND "
    "n.kek_version = ?5 AND n.state = 'active')";
constexpr std::string_view kJournalSaysRedo = "i.state IN ('failed', 'mismatch')";

// Pending items after key `after`, in key order: ?1 ?2 the old KEK, ?3 the migration, ?4 ?5 the
// new KEK, ?6 after, ?7 the page size. Pages go forward by key and a run writes only at or before
// its last page, so two parts of the test can be left out where they cannot change a page: the
// join with the journal when it holds no failed or mismatched item (it would only ever give NULL),
// and the look-up of a new wrapping when there is no wrapping under the new KEK at all (every key
// after the last page is still without one). The full statement is used on resumed runs.
Result<sql::Stmt> prepare_pending_page(sql::Db& db, bool with_journal, bool with_new) {
  std::string sql = "SELECT w.key_id, w.wrapped, ";
  sql += with_journal ? "i.state FROM wrappings w LEFT JOIN migration_items i ON i.migration = ?3 "
                        "AND i.key_id = w.key_id"
                      : "NULL FROM wrappings w";
  sql += " WHERE w.kek_id = ?1 AND w.kek_version = ?2 AND w.state = 'active' AND w.key_id > ?6";
  if (with_new) {
    sql += " AND (" + std::string(with_journal ? kJournalSaysRedo : "0") + " OR NOT " +
           std::string(kHasNewWrapping) + ")";
  }
  // ?7 is the highest parameter in every variant, so binding ?3 to ?5 is valid where unused.
  sql += " ORDER BY w.key_id LIMIT ?7";
  return db.prepare(sql);
}

// Binds the parameters shared by the pending-page and done-count statements.
void bind_migration(sql::Stmt& s, const KekId& from, const KekId& to, std::int64_t migration) {
  s.bind(1, from.id).bind(2, from.version).bind(3, migration).bind(4, to.id).bind(5, to.version);
}

Result<std::vector<Item>> pending_page(sql::Stmt& s, const KekId& from, const KekId& to,
                                       std::int64_t migration, const std::string& after,
                                       std::size_t limit) {
  s.reset();
  bind_migration(s, from, to, migration);
  s.bind(6, after).bind(7, static_cast<std::int64_t>(limit));
  return read_items(s, false);
}

// Active wrappings under `from` that are done (see kHasNewWrapping).
Result<std::int64_t> count_done(sql::Db& db, const KekId& from, const KekId& to,
                                std::int64_t migration) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s,
      db.prepare("SELECT count(*) FROM wrappings w LEFT JOIN migration_items i ON "
                 "i.migration = ?3 AND i.key_id = w.key_id WHERE w.kek_id = ?1 AND "
                 "w.kek_version = ?2 AND w.state = 'active' AND NOT coalesce(" +
                 std::string(kJournalSaysRedo) + ", 0) AND " + std::string(kHasNewWrapping)));
  bind_migration(s, from, to, migration);
  KEYPORT_TRY(s.step());
  return s.column_int(0);
}

Result<std::vector<Item>> verify_page(sql::Db& db, const KekId& from, const KekId& to,
                                      std::int64_t migration, const std::string& after,
                                      std::size_t limit) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, db.prepare("SELECT o.key_id, o.wrapped, n.wrapped, i.state FROM wrappings o "
                         "LEFT JOIN wrappings n ON n.key_id = o.key_id AND n.kek_id = ?3 AND "
                         "n.kek_version = ?4 "
                         "LEFT JOIN migration_items i ON i.migration = ?5 AND i.key_id = o.key_id "
                         "WHERE o.kek_id = ?1 AND o.kek_version = ?2 AND o.key_id > ?6 "
                         "ORDER BY o.key_id LIMIT ?7"));
  s.bind(1, from.id)
      .bind(2, from.version)
      .bind(3, to.id)
      .bind(4, to.version)
      .bind(5, migration)
      .bind(6, after)
      .bind(7, static_cast<std::int64_t>(limit));
  return read_items(s, true);
}

// The journal's per-item row, written by run (failures, and items it redid after one) and verify.
Result<sql::Stmt> prepare_put_item(sql::Db& db) {
  return db.prepare(
      "INSERT INTO migration_items(migration, key_id, state, detail, updated) VALUES (?1, ?2, ?3, "
      "?4, ?5) ON CONFLICT(migration, key_id) DO UPDATE SET state = excluded.state, detail = "
      "excluded.detail, updated = excluded.updated");
}

Status put_item(sql::Stmt& s, std::int64_t migration, const std::string& key_id,
                std::string_view state, const std::string& detail, std::int64_t t) {
  s.reset();
  s.bind(1, migration).bind(2, key_id).bind(3, state).bind(4, detail).bind(5, t);
  return s.run();
}

// The loop run and verify share: fetch the page after the last key, process it (the work on
// `jobs` threads, then one transaction), until a page comes back empty or `cancel` is set, which
// is looked at between pages only. Returns true when cancelled.
Result<bool> for_each_page(
    const RunOptions& options,
    const std::function<Result<std::vector<Item>>(const std::string& after)>& fetch,
    const std::function<Status(std::vector<Item>& page)>& process) {
  std::string after;
  for (;;) {
    if (options.cancel != nullptr && options.cancel->load()) {
      return true;
    }
    KEYPORT_ASSIGN_OR_RETURN(auto page, fetch(after));
    if (page.empty()) {
      return false;
    }
    after = page.back().key_id;
    KEYPORT_TRY(process(page));
  }
}

Status check_distinct(const KeyEncryptionKey& from, const KeyEncryptionKey& to) {
  if (from.id() == to.id()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--from and --to name the same KEK (" + from.id().describe() + ")");
  }
  return {};
}

}  // namespace

// --- plan ---------------------------------------------------------------------------------------

Json MigrationPlan::to_json() const {
  Json keks_json = Json::array();
  for (const auto& u : keks) {
    keks_json.push_back(Json{{"kek", kek_json(u.kek)},
                             {"alg", u.alg},
                             {"primary_keys", u.primary_keys},
                             {"data_keys", u.data_keys},
                             {"retired", u.retired},
                             {"is_from", u.kek == from},
                             {"is_to", u.kek == to}});
  }
  Json j{{"from", kek_json(from)},
         {"to", kek_json(to)},
         {"from_kind", from_kind},
         {"to_kind", to_kind},
         {"path", path},
         {"keks", keks_json},
         {"rewrap",
          {{"primary_keys", primary_keys},
           {"data_keys", data_keys},
           {"total", primary_keys + data_keys},
           {"already_under_to", already_under_to}}},
         {"from_portable",
          {{"portable", from_portability.portable},
           {"reason", from_portability.reason},
           {"commands", from_portability.commands}}},
         {"steps", steps}};
  if (migration_id) {
    j["migration"] = Json{{"id", *migration_id}, {"state", migration_state}};
  }
  return j;
}

Result<MigrationPlan> plan_migration(Keyring& keyring, const KeyEncryptionKey& from,
                                     const KeyEncryptionKey& to) {
  KEYPORT_TRY(check_distinct(from, to));
  MigrationPlan p;
  p.from = from.id();
  p.to = to.id();
  p.from_kind = std::string(to_string(from.kind()));
  p.to_kind = std::string(to_string(to.kind()));
  p.path = from.can_rewrap_in_token(to) ? "in-token" : "host";
  KEYPORT_ASSIGN_OR_RETURN(p.keks, keyring.kek_usage());
  for (const auto& u : p.keks) {
    if (u.kek == p.from) {
      p.primary_keys = u.primary_keys;
      p.data_keys = u.data_keys;
    }
  }
  sql::Db& db = keyring.db();
  KEYPORT_ASSIGN_OR_RETURN(
      auto both, db.prepare("SELECT count(*) FROM wrappings o JOIN wrappings n ON n.key_id = "
                            "o.key_id AND n.kek_id = ?3 AND n.kek_version = ?4 WHERE o.kek_id = "
                            "?1 AND o.kek_version = ?2 AND o.state = 'active'"));
  both.bind(1, p.from.id).bind(2, p.from.version).bind(3, p.to.id).bind(4, p.to.version);
  KEYPORT_TRY(both.step());
  p.already_under_to = both.column_int(0);
  KEYPORT_ASSIGN_OR_RETURN(auto existing, find_migration(db, p.from, p.to));
  if (existing) {
    p.migration_id = existing->id;
    p.migration_state = existing->state;
  }
  KEYPORT_ASSIGN_OR_RETURN(p.from_portability, from.portability());
  const std::string args = "--keyring " + keyring.path().string() + " --from <FROM> --to <TO>";
  p.steps = {"keyport migrate run " + args + " [--jobs N]", "keyport migrate verify " + args,
             "keyport migrate retire " + args + " [--remove-old-wrappings]",
             "keyport migrate status --keyring " + keyring.path().string()};
  return p;
}

// --- run ----------------------------------------------------------------------------------------

Json RunReport::to_json() const {
  return Json{{"migration", migration_id},
              {"from", kek_json(from)},
              {"to", kek_json(to)},
              {"path", path},
              {"total", total},
              {"already_done", already_done},
              {"rewrapped", rewrapped},
              {"failed", failed},
              {"failures", failures_json(failures)},
              {"transactions", transactions},
              {"cancelled", cancelled},
              {"seconds", seconds}};
}

Result<RunReport> run_migration(Keyring& keyring, const KeyEncryptionKey& from,
                                const KeyEncryptionKey& to, const RunOptions& options) {
  const double start = now_seconds();
  KEYPORT_TRY(check_distinct(from, to));
  if (options.batch == 0 || options.jobs < 1) {
    return make_error(ErrorCode::kInvalidArgument, "batch and jobs must be 1 or more");
  }
  KEYPORT_ASSIGN_OR_RETURN(KeyringLock lock, keyring.lock());
  sql::Db& db = keyring.db();
  RunReport report;
  report.from = from.id();
  report.to = to.id();
  const bool in_token = from.can_rewrap_in_token(to);
  report.path = in_token ? "in-token" : "host";
  KEYPORT_ASSIGN_OR_RETURN(report.total, count_under(db, from.id(), true));
  if (report.total == 0) {
    return make_error(ErrorCode::kNotFound,
                      "the keyring holds no active wrapping under " + from.id().describe() +
                          " (it holds: " + list_keks(keyring) + "); nothing was written");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto existing, find_migration(db, from.id(), to.id()));
  std::int64_t migration = existing ? existing->id : 0;

  // Probe before writing anything, with the first items under the old KEK whatever their journal
  // state: on a resumed run the items left pending may be exactly the ones that fail (tampered),
  // and those must be reported one by one, not taken for a wrong KEK.
  KEYPORT_ASSIGN_OR_RETURN(auto first, first_items(db, from.id(), options.probe));
  KEYPORT_TRY(probe(from, to, in_token, first, options.probe));

  if (!existing) {
    KEYPORT_ASSIGN_OR_RETURN(
        auto ins, db.prepare("INSERT INTO migrations(from_kek, from_version, to_kek, to_version, "
                             "created, updated, state) VALUES (?1, ?2, ?3, ?4, ?5, ?5, "
                             "'running')"));
    ins.bind(1, from.id().id)
        .bind(2, from.id().version)
        .bind(3, to.id().id)
        .bind(4, to.id().version)
        .bind(5, Keyring::now());
    KEYPORT_TRY(ins.run());
    KEYPORT_ASSIGN_OR_RETURN(existing, find_migration(db, from.id(), to.id()));
    migration = existing->id;
  }
  report.migration_id = migration;
  KEYPORT_ASSIGN_OR_RETURN(report.already_done, count_done(db, from.id(), to.id(), migration));

  // Statements prepared once for the whole run.
  KEYPORT_ASSIGN_OR_RETURN(std::int64_t redo_rows,
                           count_items(db, migration, "'failed', 'mismatch'"));
  KEYPORT_ASSIGN_OR_RETURN(std::int64_t under_to, count_under(db, to.id(), false));
  KEYPORT_ASSIGN_OR_RETURN(auto pending, prepare_pending_page(db, redo_rows > 0, under_to > 0));
  KEYPORT_ASSIGN_OR_RETURN(
      auto put_wrapping,
      db.prepare("INSERT INTO wrappings(key_id, kek_id, kek_version, alg, wrapped, created, "
                 "state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active') ON CONFLICT(key_id, kek_id, "
                 "kek_version) DO UPDATE SET alg = excluded.alg, wrapped = excluded.wrapped, "
                 "created = excluded.created, state = 'active'"));
  KEYPORT_ASSIGN_OR_RETURN(auto item, prepare_put_item(db));
  KEYPORT_ASSIGN_OR_RETURN(
      auto touch, db.prepare("UPDATE migrations SET updated = ?1, state = 'running' WHERE id = ?2 "
                             "AND state != 'running'"));
  const std::string alg(to.algorithm());
  auto fetch = [&](const std::string& after) {
    return pending_page(pending, from.id(), to.id(), migration, after, options.batch);
  };
  auto process = [&](std::vector<Item>& page) -> Status {
    std::vector<std::optional<Result<Bytes>>> results(page.size());
    parallel_for(page.size(), options.jobs, [&](std::size_t i) {
      results[i] = rewrap(from, to, in_token, page[i].old_wrapped);
    });
    const std::int64_t t = Keyring::now();
    // One transaction per page: the new wrappings (each is its item's "done" mark) and the rows
    // of failed items, so a kill leaves the page wholly in or wholly out.
    KEYPORT_ASSIGN_OR_RETURN(auto tx, sql::Transaction::begin(db));
    for (std::size_t i = 0; i < page.size(); ++i) {
      const Result<Bytes>& r = *results[i];
      if (r) {
        put_wrapping.reset();
        put_wrapping.bind(1, page[i].key_id)
            .bind(2, to.id().id)
            .bind(3, to.id().version)
            .bind(4, alg)
            .bind_blob(5, *r)
            .bind(6, t);
        KEYPORT_TRY(put_wrapping.run());
        ++report.rewrapped;
        // A row exists only for an item that failed or mismatched before; it is done now.
        if (!page[i].journal_state.empty()) {
          KEYPORT_TRY(put_item(item, migration, page[i].key_id, "done", "", t));
        }
      } else {
        const std::string msg = r.error().describe();
        KEYPORT_TRY(put_item(item, migration, page[i].key_id, "failed", msg, t));
        ++report.failed;
        if (report.failures.size() < kMaxReportedFailures) {
          report.failures.push_back({page[i].key_id, msg});
        }
      }
    }
    touch.reset();
    touch.bind(1, t).bind(2, migration);
    KEYPORT_TRY(touch.run());
    KEYPORT_TRY(tx.commit());
    ++report.transactions;
    if (options.on_progress) {
      options.on_progress(
          Progress{report.total, report.already_done + report.rewrapped, report.failed});
    }
    return {};
  };
  KEYPORT_ASSIGN_OR_RETURN(report.cancelled, for_each_page(options, fetch, process));
  if (!report.cancelled) {
    KEYPORT_ASSIGN_OR_RETURN(std::int64_t done, count_done(db, from.id(), to.id(), migration));
    if (done >= report.total) {
      KEYPORT_TRY(set_migration_state(db, migration, "complete"));
    }
  }
  report.seconds = now_seconds() - start;
  return report;
}

// --- verify -------------------------------------------------------------------------------------

Json VerifyReport::to_json() const {
  return Json{{"migration", migration_id},
              {"method", method},
              {"total", total},
              {"verified", verified},
              {"mismatched", mismatched},
              {"failed", failed},
              {"missing", missing},
              {"all_verified", all_verified()},
              {"failures", failures_json(failures)},
              {"cancelled", cancelled},
              {"seconds", seconds}};
}

Result<VerifyReport> verify_migration(Keyring& keyring, const KeyEncryptionKey& from,
                                      const KeyEncryptionKey& to, const RunOptions& options) {
  const double start = now_seconds();
  KEYPORT_TRY(check_distinct(from, to));
  KEYPORT_ASSIGN_OR_RETURN(KeyringLock lock, keyring.lock());
  sql::Db& db = keyring.db();
  KEYPORT_ASSIGN_OR_RETURN(auto existing, find_migration(db, from.id(), to.id()));
  if (!existing) {
    return make_error(ErrorCode::kNotFound, "no migration from " + from.id().describe() + " to " +
                                                to.id().describe() +
                                                " in the journal: run `keyport migrate run` first");
  }
  VerifyReport report;
  report.migration_id = existing->id;
  const bool hsm = from.has_token_check_values() && to.has_token_check_values();
  report.method = hsm ? "hsm-check-value" : "keyed-fingerprint";
  SecretBytes fingerprint_key = random_secret(32);
  KEYPORT_ASSIGN_OR_RETURN(report.total, count_under(db, from.id(), false));

  enum class Outcome { kVerified, kMismatch, kOldFails, kMissing };
  struct Checked {
    Outcome outcome = Outcome::kMissing;
    std::string message;
  };
  KEYPORT_ASSIGN_OR_RETURN(auto item, prepare_put_item(db));
  auto fetch = [&](const std::string& after) {
    return verify_page(db, from.id(), to.id(), existing->id, after, options.batch);
  };
  auto process = [&](std::vector<Item>& page) -> Status {
    std::vector<Checked> checked(page.size());
    parallel_for(page.size(), options.jobs, [&](std::size_t i) {
      Checked& c = checked[i];
      const Item& it = page[i];
      if (!it.new_wrapped) {
        c.outcome = Outcome::kMissing;
        c.message = it.journal_state == "failed" ? "run failed for this item; no new wrapping"
                                                 : "no new wrapping yet (run has not reached it)";
        return;
      }
      auto old_id = identify(from, hsm, fingerprint_key, it.old_wrapped);
      if (!old_id) {
        c.outcome = Outcome::kOldFails;
        c.message = "the old wrapping does not unwrap: " + old_id.error().describe();
        return;
      }
      auto new_id = identify(to, hsm, fingerprint_key, *it.new_wrapped);
      if (!new_id) {
        c.outcome = Outcome::kMismatch;
        c.message = "the new wrapping does not unwrap: " + new_id.error().describe();
        return;
      }
      if (!ct_equal(*old_id, *new_id)) {
        c.outcome = Outcome::kMismatch;
        c.message = "the new wrapping holds a different key";
        return;
      }
      c.outcome = Outcome::kVerified;
    });
    const std::int64_t t = Keyring::now();
    KEYPORT_ASSIGN_OR_RETURN(auto tx, sql::Transaction::begin(db));
    for (std::size_t i = 0; i < page.size(); ++i) {
      const Checked& c = checked[i];
      std::string state;
      switch (c.outcome) {
        case Outcome::kVerified:
          ++report.verified;
          state = "verified";
          break;
        case Outcome::kMismatch:
          ++report.mismatched;
          state = "mismatch";
          break;
        case Outcome::kOldFails:
          ++report.failed;
          state = "failed";
          break;
        case Outcome::kMissing:
          ++report.missing;
          break;
      }
      if (c.outcome != Outcome::kVerified && report.failures.size() < kMaxReportedFailures) {
        report.failures.push_back({page[i].key_id, c.message});
      }
      if (state.empty()) {
        continue;  // missing: the journal keeps what run recorded
      }
      KEYPORT_TRY(put_item(item, existing->id, page[i].key_id, state,
                           c.outcome == Outcome::kVerified ? std::string() : c.message, t));
    }
    KEYPORT_TRY(tx.commit());
    if (options.on_progress) {
      options.on_progress(Progress{report.total, report.verified,
                                   report.mismatched + report.failed + report.missing});
    }
    return {};
  };
  KEYPORT_ASSIGN_OR_RETURN(report.cancelled, for_each_page(options, fetch, process));
  if (!report.cancelled && report.all_verified() && existing->state != "retired") {
    KEYPORT_TRY(set_migration_state(db, existing->id, "verified"));
  }
  report.seconds = now_seconds() - start;
  return report;
}

// --- retire -------------------------------------------------------------------------------------

Json RetireReport::to_json() const {
  return Json{{"migration", migration_id},
              {"items", items},
              {"removed_old_wrappings", removed},
              {"retired_old_wrappings", retired},
              {"note", note}};
}

Result<RetireReport> retire_migration(Keyring& keyring, const KekId& from, const KekId& to,
                                      bool remove_old_wrappings) {
  if (from == to) {
    return make_error(ErrorCode::kInvalidArgument, "--from and --to name the same KEK");
  }
  KEYPORT_ASSIGN_OR_RETURN(KeyringLock lock, keyring.lock());
  sql::Db& db = keyring.db();
  KEYPORT_ASSIGN_OR_RETURN(auto existing, find_migration(db, from, to));
  if (!existing) {
    return make_error(ErrorCode::kNotFound, "no migration from " + from.describe() + " to " +
                                                to.describe() + " in the journal");
  }
  RetireReport report;
  report.migration_id = existing->id;
  // Every wrapping under the old KEK must have a verified item (and so a verified new wrapping).
  KEYPORT_ASSIGN_OR_RETURN(
      auto unverified,
      db.prepare("SELECT count(*) FROM wrappings w WHERE w.kek_id = ?1 AND w.kek_version = ?2 "
                 "AND w.state = 'active' AND NOT EXISTS (SELECT 1 FROM migration_items i WHERE "
                 "i.migration = ?3 AND i.key_id = w.key_id AND i.state = 'verified')"));
  unverified.bind(1, from.id).bind(2, from.version).bind(3, existing->id);
  KEYPORT_TRY(unverified.step());
  const std::int64_t not_verified = unverified.column_int(0);
  KEYPORT_ASSIGN_OR_RETURN(std::int64_t bad, count_items(db, existing->id, "'failed', 'mismatch'"));
  KEYPORT_ASSIGN_OR_RETURN(std::int64_t active, count_under(db, from, true));
  if (not_verified > 0 || bad > 0) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "refusing to retire: " + std::to_string(not_verified) + " of " +
                          std::to_string(active) + " items under " + from.describe() +
                          " are not verified (" + std::to_string(bad) +
                          " failed or mismatched); run `keyport migrate run` and `keyport "
                          "migrate verify` until every item verifies");
  }
  report.items = active;
  KEYPORT_ASSIGN_OR_RETURN(auto tx, sql::Transaction::begin(db));
  if (remove_old_wrappings) {
    KEYPORT_ASSIGN_OR_RETURN(
        auto del, db.prepare("DELETE FROM wrappings WHERE kek_id = ?1 AND kek_version = ?2 AND "
                             "key_id IN (SELECT key_id FROM migration_items WHERE migration = ?3 "
                             "AND state = 'verified')"));
    del.bind(1, from.id).bind(2, from.version).bind(3, existing->id);
    KEYPORT_TRY(del.run());
    report.removed = db.changes();
  } else {
    KEYPORT_ASSIGN_OR_RETURN(
        auto upd, db.prepare("UPDATE wrappings SET state = 'retired' WHERE kek_id = ?1 AND "
                             "kek_version = ?2 AND state = 'active' AND key_id IN (SELECT key_id "
                             "FROM migration_items WHERE migration = ?3 AND state = 'verified')"));
    upd.bind(1, from.id).bind(2, from.version).bind(3, existing->id);
    KEYPORT_TRY(upd.run());
    report.retired = db.changes();
  }
  KEYPORT_TRY(set_migration_state(db, existing->id, "retired"));
  KEYPORT_TRY(tx.commit());
  report.note =
      "the old KEK " + from.describe() + " was not deleted and keyport never deletes it; " +
      (remove_old_wrappings ? "its wrappings were removed from the keyring, so it no longer opens "
                              "anything here. Delete it in its HSM or vault yourself once no other "
                              "copy of its wrappings exists"
                            : "its wrappings are kept with state \"retired\" (use "
                              "--remove-old-wrappings to delete them)");
  return report;
}

// --- status -------------------------------------------------------------------------------------

Json MigrationStatus::to_json() const {
  return Json{{"id", id},
              {"from", kek_json(from)},
              {"to", kek_json(to)},
              {"state", state},
              {"created", created},
              {"updated", updated},
              {"total", total},
              {"done", done},
              {"failed", failed},
              {"verified", verified},
              {"mismatched", mismatched},
              {"pending", pending}};
}

Result<std::vector<MigrationStatus>> migration_status(Keyring& keyring) {
  sql::Db& db = keyring.db();
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, db.prepare("SELECT m.id, m.from_kek, m.from_version, m.to_kek, m.to_version, "
                         "m.state, m.created, m.updated, "
                         "(SELECT count(*) FROM wrappings w WHERE w.kek_id = m.from_kek AND "
                         "w.kek_version = m.from_version), "
                         // done: a new wrapping, and no journal row or one that says done
                         "(SELECT count(*) FROM wrappings w JOIN wrappings n ON n.key_id = "
                         "w.key_id AND n.kek_id = m.to_kek AND n.kek_version = m.to_version AND "
                         "n.state = 'active' LEFT JOIN migration_items i ON i.migration = m.id AND "
                         "i.key_id = w.key_id WHERE w.kek_id = m.from_kek AND w.kek_version = "
                         "m.from_version AND coalesce(i.state, 'done') = 'done'), "
                         "(SELECT count(*) FROM migration_items i WHERE i.migration = m.id AND "
                         "i.state = 'failed'), "
                         "(SELECT count(*) FROM migration_items i WHERE i.migration = m.id AND "
                         "i.state = 'verified'), "
                         "(SELECT count(*) FROM migration_items i WHERE i.migration = m.id AND "
                         "i.state = 'mismatch') "
                         "FROM migrations m ORDER BY m.id"));
  std::vector<MigrationStatus> out;
  for (;;) {
    KEYPORT_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) {
      return out;
    }
    MigrationStatus m;
    m.id = s.column_int(0);
    m.from = KekId{s.column_text(1), s.column_text(2)};
    m.to = KekId{s.column_text(3), s.column_text(4)};
    m.state = s.column_text(5);
    m.created = s.column_int(6);
    m.updated = s.column_int(7);
    m.total = s.column_int(8);
    m.done = s.column_int(9);
    m.failed = s.column_int(10);
    m.verified = s.column_int(11);
    m.mismatched = s.column_int(12);
    // After a retire that removed the old wrappings, the journal still counts the items.
    m.total = std::max(m.total, m.done + m.failed + m.verified + m.mismatched);
    m.pending = m.total - m.done - m.failed - m.verified - m.mismatched;
    out.push_back(std::move(m));
  }
}

}  // namespace keyport::migrate
