// SPDX-License-Identifier: Apache-2.0
// The journal under fire: `keyport migrate run` over 100,000 synthetic wrapped data keys, killed
// with SIGKILL at random moments 20 times, then left to finish. Afterwards every item verifies and
// none is lost or doubled. After every kill the keyring is consistent: an item's new wrapping is
// its "done" mark, written a page (--batch) per transaction in key order, so the items with a new
// wrapping are exactly the first N keys (no page half in), progress never goes back, nothing is
// journaled failed, and the last page before the kill opens to the original keys. The keys are
// wrapped and checked by OpenSSL.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "core/random.h"
#include "migrate/keyring.h"
#include "tests/migrate/migrate_rig.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string q(const std::string& s) {
  return "'" + s + "'";
}

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

  const std::vector<std::string> args = {
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
  // Kills land anywhere: while the module loads and logs in, during the probe, between and inside
  // transactions.
  // Every other kill waits longer, so that kills also land among the commits of a running
  // migration (starting the module, logging in and the probe take a few hundred ms); the long
  // delays are short enough that no run finishes before its kill.
  std::uniform_int_distribution<int> delay_ms(30, 700);
  std::uniform_int_distribution<int> long_delay_ms(700, 1800);
  int mid_run = 0;
  std::int64_t last_done = 0;
  std::string progress;
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < kills; ++i) {
    const int ms = i % 2 == 0 ? delay_ms(rng) : long_delay_ms(rng);
    pid_t pid = test::spawn_keyport(args);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    int status = 0;
    bool finished = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!finished) {
      ::kill(pid, SIGKILL);
      auto c = test::wait_child(pid);
      CHECK(c.killed);
      mid_run += c.killed ? 1 : 0;
    }
    // After every kill: progress never goes back, the done items are a prefix of the keys (each
    // page wholly in or out), none failed, and the last page committed opens to its keys.
    const std::int64_t done = test::sql_int(db, new_sql);
    CHECK(done >= last_done);
    if (done > 0) {
      CHECK(test::sql_int(
                db, prefix_sql + q(test::data_key_id(static_cast<std::size_t>(done - 1)))) == 0);
      const auto end = static_cast<std::size_t>(done);
      CHECK(wrong_among(end > 500 ? end - 500 : 0, end) == 0);
    }
    CHECK(test::sql_int(db, "SELECT count(*) FROM migration_items") == 0);
    last_done = done;
    progress += " " + std::to_string(ms) + "ms:" + std::to_string(done);
  }
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
  WARN("kill -9 test: " << items << " items, " << mid_run << " of " << kills
                        << " kills mid-run (seed " << seed << "; delay:done after each kill"
                        << progress << "); setup " << setup_s << " s, kill phase " << kill_phase_s
                        << " s, final run " << finish_s << " s, verify " << verify_s << " s, total "
                        << seconds_since(t0) << " s");
}
