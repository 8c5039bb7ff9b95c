// SPDX-License-Identifier: Apache-2.0
// keyport envelope and keyport migrate end to end: the real binary as a child process on this
// test's SoftHSM token folder, with the PIN from the environment.
#include <catch2/catch.hpp>

#include "core/file_io.h"
#include "core/random.h"
#include "migrate/keyring.h"
#include "tests/migrate/migrate_rig.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

Json json_of(const test::Child& c) {
  INFO(c.out << c.err);
  auto j = parse_json_strict(c.out);
  REQUIRE_OK(j);
  return *j;
}

}  // namespace

TEST_CASE("envelope encrypt decrypt and info work end to end through the cli", "[migrate][cli]") {
  test::MigrateRig rig;
  auto kek = rig.make_aes_kek("env-kek");
  const fs::path d = rig.dir();
  const std::string kr = (d / "keyring.db").string();
  Bytes plain = random_bytes(150000);
  REQUIRE_OK(write_file_atomic(d / "plain.bin", plain));
  auto enc =
      test::run_keyport({"envelope", "encrypt", "--keyring", kr, "--kek", kek.spec(),
                         "--pin-source", "env:KP_PIN", "-i", (d / "plain.bin").string(), "-o",
                         (d / "plain.env").string(), "--segment-size", "16384", "--json"});
  INFO(enc.out << enc.err);
  REQUIRE(enc.rc == 0);
  CHECK(json_of(enc)["stats"]["segments"] == 10);

  auto info = test::run_keyport({"envelope", "info", (d / "plain.env").string(), "--json"});
  REQUIRE(info.rc == 0);
  Json h = json_of(info);
  CHECK(h["primary"] == "default");
  CHECK(h["epoch"] == 1);
  CHECK(h["segment_size"] == 16384);
  CHECK(h["segments"] == 10);
  CHECK(h["plaintext_bytes"] == 150000);
  CHECK(h["kek_id"] == "pkcs11:token=onprem;object=env-kek;type=secret-key");

  auto dec = test::run_keyport({"envelope", "decrypt", "--keyring", kr, "--kek", kek.spec(),
                                "--pin-source", "env:KP_PIN", "-i", (d / "plain.env").string(),
                                "-o", (d / "back.bin").string()});
  INFO(dec.out << dec.err);
  REQUIRE(dec.rc == 0);
  auto back = read_file(d / "back.bin", 1u << 24);
  REQUIRE_OK(back);
  CHECK(*back == plain);

  // A tampered file: exit code 4, and no output file appears.
  auto file = read_file(d / "plain.env", 1u << 24);
  REQUIRE_OK(file);
  (*file)[file->size() / 2] ^= 1;
  REQUIRE_OK(write_file_atomic(d / "tampered.env", *file));
  auto bad = test::run_keyport({"envelope", "decrypt", "--keyring", kr, "--kek", kek.spec(),
                                "--pin-source", "env:KP_PIN", "-i", (d / "tampered.env").string(),
                                "-o", (d / "tampered.bin").string()});
  CHECK(bad.rc == 4);
  CHECK(bad.err.find("unwrap failed") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "tampered.bin"));
  for (const auto& e : fs::directory_iterator(d)) {
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
  }
  // An existing output is not overwritten without --force.
  auto exists = test::run_keyport({"envelope", "decrypt", "--keyring", kr, "--kek", kek.spec(),
                                   "--pin-source", "env:KP_PIN", "-i", (d / "plain.env").string(),
                                   "-o", (d / "back.bin").string()});
  CHECK(exists.rc == 6);
  // info needs no key and refuses what is not an envelope.
  auto not_env = test::run_keyport({"envelope", "info", (d / "plain.bin").string()});
  CHECK(not_env.rc == 3);
}

TEST_CASE("migrate plan run verify retire and status work end to end through the cli",
          "[migrate][cli]") {
  test::MigrateRig rig;
  auto a = rig.make_aes_kek("cli-old");
  auto b = rig.make_aes_kek("cli-new");
  const fs::path db = rig.dir() / "keyring.db";
  const std::string kr = db.string();
  {
    migrate::Keyring::Options o;
    o.create = true;
    auto keyring = migrate::Keyring::open(db, o);
    REQUIRE_OK(keyring);
    test::fill_data_keys(**keyring, rig.open_kek("cli-old")->id(), a.value, 700);
  }
  const std::vector<std::string> keks = {"--keyring", kr,       "--from",       a.spec(),
                                         "--to",      b.spec(), "--pin-source", "env:KP_PIN"};
  auto with = [&](std::vector<std::string> head, std::vector<std::string> tail = {}) {
    head.insert(head.end(), keks.begin(), keks.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  auto plan = test::run_keyport(with({"migrate", "plan"}, {"--json"}));
  REQUIRE(plan.rc == 0);
  Json p = json_of(plan);
  CHECK(p["rewrap"]["data_keys"] == 700);
  CHECK(p["path"] == "in-token");

  // retire before verify refuses (exit 5: no migration yet), verify before run too.
  CHECK(test::run_keyport(with({"migrate", "retire"})).rc == 5);
  CHECK(test::run_keyport(with({"migrate", "verify"})).rc == 5);

  auto run = test::run_keyport(
      with({"migrate", "run"}, {"--jobs", "2", "--batch", "100", "--progress", "plain", "--json"}));
  INFO(run.err);
  REQUIRE(run.rc == 0);
  CHECK(json_of(run)["rewrapped"] == 700);
  CHECK(run.err.find("progress: 700/700 items") != std::string::npos);

  CHECK(test::run_keyport(with({"migrate", "retire"})).rc == 12);  // not verified yet
  auto verify = test::run_keyport(with({"migrate", "verify"}, {"--json"}));
  REQUIRE(verify.rc == 0);
  CHECK(json_of(verify)["method"] == "hsm-check-value");
  CHECK(json_of(verify)["verified"] == 700);

  auto retire = test::run_keyport(with({"migrate", "retire"}, {"--remove-old-wrappings"}));
  INFO(retire.out << retire.err);
  REQUIRE(retire.rc == 0);
  CHECK(retire.out.find("was not deleted") != std::string::npos);

  auto status = test::run_keyport({"migrate", "status", "--keyring", kr, "--json"});
  REQUIRE(status.rc == 0);
  Json s = json_of(status);
  REQUIRE(s["migrations"].size() == 1);
  CHECK(s["migrations"][0]["state"] == "retired");
  CHECK(s["migrations"][0]["verified"] == 700);
  CHECK(test::sql_int(db, "SELECT count(*) FROM wrappings") == 700);
}

TEST_CASE("migrate run with a wrong old kek fails and leaves the keyring untouched",
          "[migrate][cli]") {
  test::MigrateRig rig;
  auto a = rig.make_aes_kek("w-old");
  auto b = rig.make_aes_kek("w-new");
  const fs::path db = rig.dir() / "keyring.db";
  {
    migrate::Keyring::Options o;
    o.create = true;
    auto keyring = migrate::Keyring::open(db, o);
    REQUIRE_OK(keyring);
    // Recorded under w-old, but wrapped by a key nobody has.
    test::fill_data_keys(**keyring, rig.open_kek("w-old")->id(), random_bytes(32), 50);
  }
  const auto before = test::keyring_bytes(db);
  auto run = test::run_keyport({"migrate", "run", "--keyring", db.string(), "--from", a.spec(),
                                "--to", b.spec(), "--pin-source", "env:KP_PIN"});
  CHECK(run.rc == 4);
  CHECK(run.err.find("Nothing was written") != std::string::npos);
  auto swapped = test::run_keyport({"migrate", "run", "--keyring", db.string(), "--from", b.spec(),
                                    "--to", a.spec(), "--pin-source", "env:KP_PIN"});
  CHECK(swapped.rc == 5);
  auto bad_spec = test::run_keyport(
      {"migrate", "run", "--keyring", db.string(), "--from", "file:/x", "--to", a.spec()});
  CHECK(bad_spec.rc == 3);
  CHECK(test::keyring_bytes(db) == before);
}
