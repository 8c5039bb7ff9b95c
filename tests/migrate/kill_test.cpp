// SPDX-License-Identifier: Apache-2.0
// The journal under fire: `keyport migrate run` over 100,000 synthetic wrapped data keys, killed
// with SIGKILL 20 times at random moments picked from the progress it watches (so that every kill
// lands while work remains, on a fast idle machine as on a slow loaded one), then left to finish.
// Afterwards every item verifies and none is lost or doubled. After every kill the keyring is
// consistent: an item's new wrapping is its "done" mark, written a page (--batch) per transaction
// in key order, so the items with a new wrapping are exactly the first N keys (no page half in),
// progress never goes back, nothing is journaled failed, and the last page before the kill opens to
// the original keys. The keys are wrapped and checked by OpenSSL.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "core/random.h"
#include "migrate/keyring.h"
#include "tests/migrate/migrate_rig.h"
#include "tests/support/softhsm.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string q(const std::string& s) {
  return "'" + s + "'";
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// SoftHSM 2.6.1 rewrites a token's token.object in place on every C_Login (docs/quirks.md,
// softhsm-login-rewrites-token-file): a kill between its truncate and its write leaves the file
// empty and the token gone. That is the module's durability, not keyport's journal, so after each
// kill a torn token file is put back from the copy taken before the kills, and counted.
class TokenFiles {
 public:
  explicit TokenFiles(const fs::path& tokens) {
    for (const auto& e : fs::recursive_directory_iterator(tokens)) {
      if (e.path().filename() == "token.object") {
        m_saved[e.path()] = read_all(e.path());
      }
    }
  }
  // Puts back every token file whose length changed; returns how many.
  int restore_torn() const {
    int n = 0;
    for (const auto& [path, bytes] : m_saved) {
      if (fs::file_size(path) != bytes.size()) {
        const fs::path tmp = path.string() + ".restore";
        std::ofstream(tmp, std::ios::binary | std::ios::trunc) << bytes;
        fs::rename(tmp, path);
        ++n;
      }
    }
    return n;
  }

 private:
  std::map<fs::path, std::string> m_saved;
};

}  // namespace

TEST_CASE("one hundred thousand wrapped keys survive twenty kill -9 during migrate run",
          "[migrate][cli][slow]") {
  std::size_t items = 100000;
  if (auto n = test::env("KEYPORT_KILL_TEST_ITEMS"); !n.empty()) {
    items = std::stoul(n);
  }
  const int kills = 20;
  const auto t0 = std::chrono::steady_clock::now();
  test::MigrateRig rig;
  auto a = rig.make_aes_kek("kill-old");
  auto b = rig.make_aes_kek("kill-new");
  const migrate::KekId old_id = rig.open_kek("kill-old")->id();
  const migrate::KekId new_id = rig.open_kek("kill-new")->id();
  const fs::path db = rig.dir() / "keyring.db";
  std::vector<Bytes> values;
  {
    migrate::Keyring::Options o;
    o.create = true;
    auto keyring = migrate::Keyring::open(db, o);
    REQUIRE_OK(keyring);
    values = test::fill_data_keys(**keyring, old_id, a.value, items);
  }
  const double setup_s = seconds_since(t0);

  std::vector<std::string> args = {
      "migrate", "run",          "--keyring",  db.string(),  "--from", a.spec(), "--to",
      b.spec(),  "--pin-source", "env:KP_PIN", "--progress", "none",   "--jobs", "2"};
  const std::string new_sql = "SELECT count(*) FROM wrappings WHERE kek_id = " + q(new_id.id) +
                              " AND kek_version = " + q(new_id.version);
  // The new wrappings form a prefix of the keys: the highest key with one is key done - 1.
  const std::string prefix_sql =
      "SELECT count(*) FROM wrappings WHERE kek_id = " + q(new_id.id) + " AND key_id > ";
  // Opens the new wrappings of keys [from, to) with OpenSSL; returns how many are wrong.
  auto wrong_among = [&](std::size_t from, std::size_t to) {
    migrate::Keyring::Options o;
    o.read_only = true;
    auto keyring = migrate::Keyring::open(db, o);
    REQUIRE_OK(keyring);
    std::size_t wrong = 0;
    for (std::size_t i = from; i < to; ++i) {
      auto w = (*keyring)->find_wrapping(test::data_key_id(i), new_id);
      REQUIRE_OK(w);
      wrong +=
          w->has_value() && test::openssl_kwp_unwrap(b.value, (*w)->wrapped) == values[i] ? 0 : 1;
    }
    return wrong;
  };
  Bytes seed_bytes = random_bytes(4);
  const std::uint32_t seed = (static_cast<std::uint32_t>(seed_bytes[0]) << 24) |
                             (static_cast<std::uint32_t>(seed_bytes[1]) << 16) |
                             (static_cast<std::uint32_t>(seed_bytes[2]) << 8) | seed_bytes[3];
  std::mt19937 rng(seed);
  // The kill schedule adapts to this machine, so every kill lands while work remains on a fast
  // idle machine and on a slow loaded one. Kills alternate between two kinds:
  // - "work" kills (even i) watch the keyring and kill once the run has committed a random number
  //   of pages, then after a random part of the time one page takes: they land among and inside
  //   the transactions of a running migration. Their page counts come from a budget that keeps
  //   more than half of the items for the final run, whatever the rate.
  // - "startup" kills (odd i) wait a random time shorter than the quickest start measured so far
  //   (spawn to first commit, by the work kills): they land while the module loads, while it logs
  //   in, during the probe and in the first transaction.
  const std::size_t batch = std::clamp<std::size_t>(items / (kills * 10), 1, 500);
  args.insert(args.end(), {"--batch", std::to_string(batch)});
  // Whether the key of index i has its new wrapping (they are done in key order, a page a
  // transaction): one primary-key lookup, cheap enough to poll.
  auto done_through = [&](std::size_t i) {
    return test::sql_int(db, "SELECT count(*) FROM wrappings WHERE key_id = " +
                                 q(test::data_key_id(i)) + " AND kek_id = " + q(new_id.id) +
                                 " AND kek_version = " + q(new_id.version)) == 1;
  };
  const TokenFiles token_files(test::SoftHsm::get().dir() / "tokens");
  int torn_start = 0;  // token files torn by startup kills (put back)
  int torn_work = 0;   // ... by work kills: none, since keyport writes no token object after login
  using Clock = std::chrono::steady_clock;
  double quickest_start_ms = 0;  // spawn to first commit, the least seen by a work kill
  int startup_kills_before_commit = 0;
  int work_kills = 0;
  int mid_run = 0;
  std::int64_t last_done = 0;
  std::string progress;
  const auto t1 = Clock::now();
  for (int i = 0; i < kills; ++i) {
    const bool work = i % 2 == 0;
    const auto spawned = Clock::now();
    pid_t pid = test::spawn_keyport(args);
    auto elapsed_ms = [&] {
      return std::chrono::duration<double, std::milli>(Clock::now() - spawned).count();
    };
    auto exited = [&] {
      int status = 0;
      return ::waitpid(pid, &status, WNOHANG) == pid;
    };
    bool finished = false;
    std::string what;
    if (work) {
      const auto remaining = items - static_cast<std::size_t>(last_done);
      const int work_left = (kills - i + 1) / 2;  // this one included
      const std::size_t budget_pages = std::max<std::size_t>(
          1, remaining / batch / (2 * static_cast<std::size_t>(work_left + 1)));
      // Two pages of the budget are kept for what commits between the poll and the kill.
      // At least two pages, so that this run measures how long a page takes.
      const std::size_t pages = std::uniform_int_distribution<std::size_t>(
          2, budget_pages > 4 ? budget_pages - 2 : 2)(rng);
      const std::size_t first = static_cast<std::size_t>(last_done);
      const std::size_t target = std::min(items, first + pages * batch);
      double first_commit_ms = -1;
      // A run that commits nothing for this long has hung: 100 times the quickest start, at least
      // two minutes.
      const double stall_ms = std::max(120000.0, 100 * quickest_start_ms);
      double last_seen_ms = 0;
      while (!(finished = exited())) {
        std::size_t probe = first_commit_ms < 0 ? first : target - 1;
        if (done_through(probe)) {
          if (first_commit_ms < 0) {
            first_commit_ms = elapsed_ms();
            last_seen_ms = first_commit_ms;
            continue;
          }
          break;
        }
        if (elapsed_ms() - last_seen_ms > stall_ms) {
          FAIL("kill " << i << ": no commit for " << stall_ms << " ms (probe " << probe << ")");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (!finished) {
        const double reached_ms = elapsed_ms();
        quickest_start_ms =
            quickest_start_ms == 0 ? first_commit_ms : std::min(quickest_start_ms, first_commit_ms);
        // The time one page took in this run, from the first commit to the target.
        const double page_ms = (reached_ms - first_commit_ms) / static_cast<double>(pages - 1);
        const double jitter_ms = std::uniform_real_distribution<double>(0, page_ms)(rng);
        std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(jitter_ms));
        finished = exited();
        ++work_kills;
        what = "work:" + std::to_string(pages) + "p+" +
               std::to_string(static_cast<int>(jitter_ms)) + "ms";
      }
    } else {
      REQUIRE(quickest_start_ms > 0);
      const double ms = std::uniform_real_distribution<double>(0, quickest_start_ms)(rng);
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
      finished = exited();
      what = "start:" + std::to_string(static_cast<int>(ms)) + "ms";
    }
    // A run that ended before its kill is a schedule that did not adapt (or a run that failed).
    CHECK_FALSE(finished);
    if (!finished) {
      ::kill(pid, SIGKILL);
      auto c = test::wait_child(pid);
      CHECK(c.killed);
      mid_run += c.killed ? 1 : 0;
    }
    (work ? torn_work : torn_start) += token_files.restore_torn();
    // After every kill: progress never goes back, the done items are a prefix of the keys (each
    // page wholly in or out), none failed, and the last page committed opens to its keys.
    const std::int64_t done = test::sql_int(db, new_sql);
    CHECK(done >= last_done);
    if (!work && done == last_done) {
      ++startup_kills_before_commit;
    }
    if (done > 0) {
      CHECK(test::sql_int(
                db, prefix_sql + q(test::data_key_id(static_cast<std::size_t>(done - 1)))) == 0);
      const auto end = static_cast<std::size_t>(done);
      CHECK(wrong_among(end > 500 ? end - 500 : 0, end) == 0);
    }
    CHECK(test::sql_int(db, "SELECT count(*) FROM migration_items") == 0);
    last_done = done;
    progress += " " + what + ":" + std::to_string(done);
  }
  // Work is left for the final run, and some startup kills landed before the first commit.
  CHECK(static_cast<std::size_t>(last_done) < items);
  CHECK(startup_kills_before_commit > 0);
  CHECK(torn_work == 0);
  const double kill_phase_s = seconds_since(t1);
  const auto t2 = std::chrono::steady_clock::now();
  auto finish = test::run_keyport(args);
  INFO(finish.out << finish.err);
  REQUIRE(finish.rc == 0);
  const double finish_s = seconds_since(t2);
  const auto t3 = std::chrono::steady_clock::now();
  std::vector<std::string> verify_args = args;
  verify_args[1] = "verify";
  verify_args.push_back("--json");
  auto verify = test::run_keyport(verify_args);
  INFO(verify.out << verify.err);
  REQUIRE(verify.rc == 0);
  auto report = parse_json_strict(verify.out);
  REQUIRE_OK(report);
  CHECK((*report)["verified"] == items);
  CHECK((*report)["method"] == "hsm-check-value");
  const double verify_s = seconds_since(t3);

  // None lost, none doubled.
  const auto n = static_cast<std::int64_t>(items);
  CHECK(test::sql_int(db, "SELECT count(*) FROM keys") == n);
  CHECK(test::sql_int(db, "SELECT count(*) FROM wrappings") == 2 * n);
  CHECK(test::sql_int(db, new_sql) == n);
  CHECK(test::sql_int(db, "SELECT count(*) FROM wrappings WHERE kek_id = " + q(old_id.id)) == n);
  CHECK(test::sql_int(db,
                      "SELECT count(*) FROM (SELECT key_id FROM wrappings GROUP BY key_id "
                      "HAVING count(*) != 2)") == 0);
  CHECK(test::sql_int(db, "SELECT count(*) FROM migration_items WHERE state = 'verified'") == n);
  CHECK(test::sql_int(db, "SELECT count(*) FROM migrations") == 1);
  // Every new wrapping opens, with OpenSSL and the new KEK's value, to the original key.
  CHECK(wrong_among(0, items) == 0);
  CHECK(mid_run == kills);
  WARN("kill -9 test: " << items << " items, " << mid_run << " of " << kills << " kills mid-run, "
                        << startup_kills_before_commit << " before the first commit (seed " << seed
                        << ", batch " << batch << ", quickest start " << quickest_start_ms
                        << " ms, SoftHSM token file torn by " << torn_start
                        << " startup kills and put back; kill:done after each" << progress
                        << "); setup " << setup_s << " s, kill phase " << kill_phase_s
                        << " s, final run " << finish_s << " s, verify " << verify_s << " s, total "
                        << seconds_since(t0) << " s");
}
