// SPDX-License-Identifier: Apache-2.0
// The audit log's group commit (vault/store.h Store::append_audit): rows appended by concurrent
// callers are all there, once each, in an order that keeps every caller's own order; a row is
// readable as soon as its append_audit returned; reads on the store are not held up by audit
// commits; and the rows survive closing and reopening the database.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "tests/support/support.h"
#include "vault/store.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

vault::AuditRecord row(int thread, int i) {
  vault::AuditRecord a;
  a.time = 1700000000 + i;
  a.operation = "GetKey";
  a.key_name = "k" + std::to_string(thread) + "-" + std::to_string(i);
  a.caller = "caller-" + std::to_string(thread);
  a.outcome = "success";
  a.reason = std::to_string(i);
  return a;
}

}  // namespace

TEST_CASE("audit rows from concurrent callers are all committed, once, in each caller's order",
          "[vault][audit]") {
  const fs::path dir = test::make_scratch_subdir("audit-group");
  constexpr int kThreads = 8;
  constexpr int kRows = 60;
  vault::Store::AuditCounters counters;
  {
    auto store = vault::Store::open(dir / "vault.db");
    REQUIRE(store);
    vault::Store& s = **store;
    std::atomic<int> errors{0};
    std::atomic<int> unseen{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kRows; ++i) {
          if (!s.append_audit(row(t, i))) {
            ++errors;
          }
          // Readable at once: the row is committed before append_audit returns. Checked on a
          // sample, with a reader of the same store (its own connection).
          if (i % 15 == 0) {
            auto log = s.audit_log(0);
            bool seen = false;
            if (log) {
              for (const auto& a : *log) {
                seen = seen || a.key_name == row(t, i).key_name;
              }
            }
            if (!seen) {
              ++unseen;
            }
          }
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
    CHECK(errors.load() == 0);
    CHECK(unseen.load() == 0);
    counters = s.audit_counters();
    CHECK(counters.rows == static_cast<std::uint64_t>(kThreads * kRows));
    CHECK(counters.commits >= 1u);
    CHECK(counters.commits <= counters.rows);
    // How much the grouping saved (informative; it depends on the machine's timing).
    WARN("audit: " << counters.rows << " rows in " << counters.commits << " commits");
  }
  // Reopened: every row once, each caller's rows in the order it appended them.
  auto store = vault::Store::open(dir / "vault.db");
  REQUIRE(store);
  auto log = (*store)->audit_log(0);
  REQUIRE(log);
  REQUIRE(log->size() == static_cast<std::size_t>(kThreads * kRows));
  std::set<std::string> names;
  std::map<std::string, int> last;
  std::int64_t last_id = 0;
  for (const auto& a : *log) {
    CHECK(a.id > last_id);
    last_id = a.id;
    CHECK(names.insert(a.key_name).second);
    const int i = std::stoi(a.reason);
    auto it = last.find(a.caller);
    if (it != last.end()) {
      CHECK(i == it->second + 1);
    } else {
      CHECK(i == 0);
    }
    last[a.caller] = i;
  }
  CHECK(last.size() == static_cast<std::size_t>(kThreads));
}

TEST_CASE("a lone audit row is committed at once, and audit_log(after_id) returns only later rows",
          "[vault][audit]") {
  const fs::path dir = test::make_scratch_subdir("audit-lone");
  auto store = vault::Store::open(dir / "vault.db");
  REQUIRE(store);
  vault::Store& s = **store;
  REQUIRE(s.append_audit(row(0, 0)));
  auto first = s.audit_log(0);
  REQUIRE(first);
  REQUIRE(first->size() == 1u);
  REQUIRE(s.append_audit(row(0, 1)));
  auto after = s.audit_log(first->back().id);
  REQUIRE(after);
  REQUIRE(after->size() == 1u);
  CHECK(after->front().key_name == "k0-1");
  CHECK(s.audit_counters().commits == 2u);
}

TEST_CASE("key reads and writes interleave with concurrent audit commits", "[vault][audit]") {
  const fs::path dir = test::make_scratch_subdir("audit-mixed");
  auto store = vault::Store::open(dir / "vault.db");
  REQUIRE(store);
  vault::Store& s = **store;
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> auditors;
  for (int t = 0; t < 3; ++t) {
    auditors.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        if (!s.append_audit(row(t, i))) {
          ++errors;
        }
      }
    });
  }
  // A writer commits versions through the writing connection; each is readable at once through
  // the reading one.
  for (int i = 0; i < 20; ++i) {
    vault::KeyVersionRecord r;
    r.name = "key" + std::to_string(i);
    r.version = "0123456789abcdef0123456789abcdef";
    r.kty = "EC-HSM";
    r.spec = *parse_key_spec("ec-p256");
    r.key_ops = {"sign", "verify"};
    r.created = r.updated = 1700000000;
    r.cka_id = Bytes{static_cast<std::uint8_t>(i), 1, 2, 3};
    r.origin = "generated";
    auto stored = s.commit_new_version(r);
    REQUIRE(stored);
    auto found = s.find_version(r.name, "");
    REQUIRE(found);
    REQUIRE(found->has_value());
    CHECK((*found)->seq == stored->seq);
  }
  stop.store(true);
  for (auto& th : auditors) {
    th.join();
  }
  CHECK(errors.load() == 0);
  auto keys = s.keys();
  REQUIRE(keys);
  CHECK(keys->size() == 20u);
  auto log = s.audit_log(0);
  REQUIRE(log);
  CHECK(log->size() == s.audit_counters().rows);
}
