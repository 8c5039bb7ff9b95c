// SPDX-License-Identifier: Apache-2.0
// keyport::migrate's plan, run, verify, retire and status on token KEKs, every result checked with
// OpenSSL and raw SQL: the happy path, a wrong old KEK, a tampered item, idempotence and resume,
// envelope data across a rotation, and a path through host memory.
#include <catch2/catch.hpp>

#include "core/random.h"
#include "migrate/envelope.h"
#include "migrate/migration.h"
#include "tests/migrate/migrate_rig.h"
#include "tests/support/softhsm.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<migrate::Keyring> open_keyring(const fs::path& p, bool create = false) {
  migrate::Keyring::Options o;
  o.create = create;
  auto k = migrate::Keyring::open(p, o);
  REQUIRE_OK(k);
  return std::move(*k);
}

std::string q(const std::string& s) {
  return "'" + s + "'";
}

std::int64_t wrappings_under(const fs::path& db, const migrate::KekId& k) {
  return test::sql_int(db, "SELECT count(*) FROM wrappings WHERE kek_id = " + q(k.id) +
                               " AND kek_version = " + q(k.version));
}

// Every key has exactly one wrapping by `kek`, and it opens (OpenSSL) to the expected value.
void expect_all_under(migrate::Keyring& kr, const migrate::KekId& kek, const Bytes& kek_value,
                      const std::vector<Bytes>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto w = kr.find_wrapping(test::data_key_id(i), kek);
    REQUIRE_OK(w);
    REQUIRE(w->has_value());
    CHECK(test::openssl_kwp_unwrap(kek_value, (*w)->wrapped) == values[i]);
  }
}

// A rig with two token AES KEKs ("kek-old", "kek-new") and a keyring of n data keys under the old.
struct OldNew {
  explicit OldNew(std::size_t n)
      : a(rig.make_aes_kek("kek-old")),
        b(rig.make_aes_kek("kek-new")),
        from(rig.open_kek("kek-old")),
        to(rig.open_kek("kek-new")),
        db(rig.dir() / "keyring.db"),
        kr(open_keyring(db, true)),
        values(test::fill_data_keys(*kr, from->id(), a.value, n)) {}
  test::MigrateRig rig;
  test::KnownKek a, b;
  std::unique_ptr<migrate::TokenKek> from, to;
  fs::path db;
  std::unique_ptr<migrate::Keyring> kr;
  std::vector<Bytes> values;
};

}  // namespace

TEST_CASE("a migration between two token keks re-wraps verifies and retires",
          "[migrate][softhsm]") {
  OldNew t(1234);
  auto& [rig, a, b, from, to, db, kr, values] = t;

  auto plan = migrate::plan_migration(*kr, *from, *to);
  REQUIRE_OK(plan);
  CHECK(plan->path == "in-token");
  CHECK(plan->data_keys == 1234);
  CHECK(plan->primary_keys == 0);
  CHECK_FALSE(plan->from_portability.portable);
  CHECK_FALSE(plan->migration_id.has_value());

  migrate::RunOptions ro;
  ro.batch = 100;
  ro.jobs = 2;
  std::vector<migrate::Progress> seen;
  ro.on_progress = [&](const migrate::Progress& p) { seen.push_back(p); };
  auto run = migrate::run_migration(*kr, *from, *to, ro);
  REQUIRE_OK(run);
  CHECK(run->path == "in-token");
  CHECK(run->total == 1234);
  CHECK(run->rewrapped == 1234);
  CHECK(run->failed == 0);
  CHECK(run->transactions == 13);
  REQUIRE(seen.size() == 13);
  CHECK(seen.back().done == 1234);
  expect_all_under(*kr, to->id(), b.value, values);
  expect_all_under(*kr, from->id(), a.value, values);

  auto verify = migrate::verify_migration(*kr, *from, *to, ro);
  REQUIRE_OK(verify);
  CHECK(verify->method == "hsm-check-value");
  CHECK(verify->all_verified());
  CHECK(verify->verified == 1234);

  auto status = migrate::migration_status(*kr);
  REQUIRE_OK(status);
  REQUIRE(status->size() == 1);
  CHECK((*status)[0].state == "verified");
  CHECK((*status)[0].verified == 1234);
  CHECK((*status)[0].pending == 0);

  auto retire = migrate::retire_migration(*kr, from->id(), to->id(), true);
  REQUIRE_OK(retire);
  CHECK(retire->removed == 1234);
  CHECK(retire->note.find("was not deleted") != std::string::npos);
  CHECK(wrappings_under(db, from->id()) == 0);
  CHECK(wrappings_under(db, to->id()) == 1234);
  // The old KEK is still in the token.
  CHECK(rig.open_kek("kek-old")->id() == from->id());
  CHECK(from->live_session_objects() == 0);
  CHECK(test::count_session_objects(rig.session(), CKO_SECRET_KEY) == 0);
}

TEST_CASE("a wrong old kek changes nothing in the keyring", "[migrate][softhsm]") {
  test::MigrateRig rig;
  auto a = rig.make_aes_kek("kek-old");
  rig.make_aes_kek("kek-new");
  rig.make_aes_kek("kek-other");
  auto from = rig.open_kek("kek-old");
  auto to = rig.open_kek("kek-new");
  auto other = rig.open_kek("kek-other");
  const fs::path db = rig.dir() / "keyring.db";
  {
    auto kr = open_keyring(db, true);
    test::fill_data_keys(*kr, from->id(), a.value, 200);
    // Rows that claim kek-other but were wrapped by another key altogether.
    test::fill_data_keys(*kr, other->id(), random_bytes(32), 50, "imposter-");
  }
  const auto before = test::keyring_bytes(db);
  {
    auto kr = open_keyring(db);
    // A KEK the keyring does not name.
    auto none = migrate::run_migration(*kr, *to, *from);
    CHECK_ERROR_CODE(none, ErrorCode::kNotFound);
    // A KEK the keyring names, but that did not wrap these keys.
    auto wrong = migrate::run_migration(*kr, *other, *to);
    REQUIRE_FALSE(wrong.has_value());
    CHECK(wrong.error().code() == ErrorCode::kIntegrityFailure);
    CHECK(wrong.error().message().find("Nothing was written") != std::string::npos);
    // The same KEK twice.
    CHECK_ERROR_CODE(migrate::run_migration(*kr, *from, *from), ErrorCode::kInvalidArgument);
    // verify and retire without a run.
    CHECK_ERROR_CODE(migrate::verify_migration(*kr, *from, *to), ErrorCode::kNotFound);
    CHECK_ERROR_CODE(migrate::retire_migration(*kr, from->id(), to->id(), true),
                     ErrorCode::kNotFound);
  }
  CHECK(test::keyring_bytes(db) == before);
}

TEST_CASE(
    "a tampered item is reported by run and verify while the others go on and retire "
    "refuses",
    "[migrate][softhsm]") {
  OldNew t(300);
  auto& [rig, a, b, from, to, db, kr, values] = t;
  // Tamper with item 123 (the probe uses the first items, which are fine).
  const std::string bad_id = test::data_key_id(123);
  REQUIRE_OK(
      kr->db().exec("UPDATE wrappings SET wrapped = zeroblob(40) WHERE key_id = " + q(bad_id)));
  migrate::RunOptions ro;
  ro.batch = 64;
  auto run = migrate::run_migration(*kr, *from, *to, ro);
  REQUIRE_OK(run);
  CHECK(run->rewrapped == 299);
  CHECK(run->failed == 1);
  REQUIRE(run->failures.size() == 1);
  CHECK(run->failures[0].key_id == bad_id);
  CHECK(run->failures[0].message.find(kIntegrityMessage) != std::string::npos);
  // A second run retries the failed item only, and it fails again.
  auto again = migrate::run_migration(*kr, *from, *to, ro);
  REQUIRE_OK(again);
  CHECK(again->already_done == 299);
  CHECK(again->rewrapped == 0);
  CHECK(again->failed == 1);

  auto verify = migrate::verify_migration(*kr, *from, *to, ro);
  REQUIRE_OK(verify);
  CHECK_FALSE(verify->all_verified());
  CHECK(verify->verified == 299);
  CHECK(verify->missing == 1);
  REQUIRE(verify->failures.size() == 1);
  CHECK(verify->failures[0].key_id == bad_id);

  auto retire = migrate::retire_migration(*kr, from->id(), to->id(), true);
  CHECK_ERROR_CODE(retire, ErrorCode::kFailedPrecondition);
  CHECK(retire.error().message().find("1 of 300") != std::string::npos);
  CHECK(wrappings_under(db, from->id()) == 300);
  // A mismatching new wrapping (another key under the new KEK) is caught too.
  const std::string other_id = test::data_key_id(7);
  Bytes swapped = test::openssl_kwp_wrap(b.value, random_bytes(32));
  REQUIRE_OK(kr->db().exec("UPDATE wrappings SET wrapped = x'" + hex_encode(swapped) +
                           "' WHERE key_id = " + q(other_id) + " AND kek_id = " + q(to->id().id)));
  auto verify2 = migrate::verify_migration(*kr, *from, *to, ro);
  REQUIRE_OK(verify2);
  CHECK(verify2->mismatched == 1);
  CHECK(verify2->verified == 298);
  // run redoes the mismatched item (journaled "mismatch", so not done although it has a new
  // wrapping), and tries the failed one again.
  auto redo = migrate::run_migration(*kr, *from, *to, ro);
  REQUIRE_OK(redo);
  CHECK(redo->rewrapped == 1);
  CHECK(redo->failed == 1);
  CHECK(test::sql_int(db, "SELECT count(*) FROM migration_items WHERE key_id = " + q(other_id) +
                              " AND state = 'done'") == 1);
  auto w = kr->find_wrapping(other_id, to->id());
  REQUIRE_OK(w);
  CHECK(test::openssl_kwp_unwrap(b.value, (*w)->wrapped) == values[7]);
}

TEST_CASE("running again after completion changes nothing and a cancelled run resumes",
          "[migrate][softhsm]") {
  OldNew t(500);
  auto& [rig, a, b, from, to, db, kr, values] = t;
  std::atomic<bool> cancel{false};
  migrate::RunOptions ro;
  ro.batch = 50;
  ro.cancel = &cancel;
  int batches = 0;
  ro.on_progress = [&](const migrate::Progress&) {
    if (++batches == 3) {
      cancel.store(true);
    }
  };
  auto first = migrate::run_migration(*kr, *from, *to, ro);
  REQUIRE_OK(first);
  CHECK(first->cancelled);
  CHECK(first->rewrapped == 150);
  CHECK(wrappings_under(db, to->id()) == 150);
  cancel.store(false);
  ro.on_progress = nullptr;
  auto second = migrate::run_migration(*kr, *from, *to, ro);
  REQUIRE_OK(second);
  CHECK_FALSE(second->cancelled);
  CHECK(second->already_done == 150);
  CHECK(second->rewrapped == 350);
  auto third = migrate::run_migration(*kr, *from, *to, ro);
  REQUIRE_OK(third);
  CHECK(third->rewrapped == 0);
  CHECK(third->already_done == 500);
  CHECK(wrappings_under(db, to->id()) == 500);
  // An item that simply succeeds needs no journal row: its new wrapping is its "done" mark.
  CHECK(test::sql_int(db, "SELECT count(*) FROM migration_items") == 0);
  CHECK(test::sql_int(db, "SELECT count(*) FROM migrations") == 1);
  CHECK(test::sql_int(db,
                      "SELECT max(n) FROM (SELECT count(*) AS n FROM wrappings GROUP BY "
                      "key_id, kek_id, kek_version)") == 1);
  expect_all_under(*kr, to->id(), b.value, values);
}

TEST_CASE("data encrypted before a rotation decrypts after it", "[migrate][softhsm]") {
  test::MigrateRig rig;
  rig.make_aes_kek("kek-old");
  rig.make_aes_kek("kek-new");
  auto from = rig.open_kek("kek-old");
  auto to = rig.open_kek("kek-new");
  const fs::path db = rig.dir() / "keyring.db";
  auto kr = open_keyring(db, true);
  Bytes plain = random_bytes(200000);
  migrate::SpanSource in(plain);
  migrate::BytesSink sealed;
  REQUIRE_OK(migrate::envelope_encrypt(*kr, *from, in, sealed));
  // A second file, under a second primary, and a rotation of the first primary.
  Bytes plain2 = random_bytes(1000);
  migrate::SpanSource in2(plain2);
  migrate::BytesSink sealed2;
  migrate::EncryptOptions eo;
  eo.primary = "reports";
  REQUIRE_OK(migrate::envelope_encrypt(*kr, *from, in2, sealed2, eo));
  REQUIRE_OK(migrate::rotate_primary(*kr, *from, "default"));
  Bytes plain3 = random_bytes(5000);
  migrate::SpanSource in3(plain3);
  migrate::BytesSink sealed3;
  REQUIRE_OK(migrate::envelope_encrypt(*kr, *from, in3, sealed3));

  // Flat versus hierarchical: the KEK rotation moves three primary keys, whatever the data.
  REQUIRE_OK(migrate::run_migration(*kr, *from, *to));
  auto v = migrate::verify_migration(*kr, *from, *to);
  REQUIRE_OK(v);
  CHECK(v->total == 3);
  CHECK(v->all_verified());
  REQUIRE_OK(migrate::retire_migration(*kr, from->id(), to->id(), true));

  auto decrypt = [&](const migrate::KeyEncryptionKey& kek, const Bytes& file) -> Result<Bytes> {
    migrate::SpanSource src(file);
    migrate::BytesSink out;
    auto r = migrate::envelope_decrypt(*kr, kek, src, out);
    if (!r) {
      return tl::unexpected(r.error());
    }
    return out.bytes();
  };
  auto d1 = decrypt(*to, sealed.bytes());
  REQUIRE_OK(d1);
  CHECK(*d1 == plain);
  auto d2 = decrypt(*to, sealed2.bytes());
  REQUIRE_OK(d2);
  CHECK(*d2 == plain2);
  auto d3 = decrypt(*to, sealed3.bytes());
  REQUIRE_OK(d3);
  CHECK(*d3 == plain3);
  // The old KEK opens nothing any more: its wrappings were removed.
  CHECK_ERROR_CODE(decrypt(*from, sealed.bytes()), ErrorCode::kNotFound);
  // New files go under the new KEK, at the rotated epoch.
  migrate::SpanSource in4(plain);
  migrate::BytesSink sealed4;
  REQUIRE_OK(migrate::envelope_encrypt(*kr, *to, in4, sealed4));
  migrate::SpanSource hdr(sealed4.bytes());
  auto h = migrate::read_envelope_header(hdr);
  REQUIRE_OK(h);
  CHECK(h->epoch == 2);
  CHECK(h->kek_id == to->id().id);
}

TEST_CASE("a migration through host memory verifies with keyed fingerprints",
          "[migrate][softhsm]") {
  test::MigrateRig rig;
  auto a = rig.make_aes_kek("kek-old");
  auto from = rig.open_kek("kek-old");
  SecretBytes primary = random_secret(32);
  Bytes primary_bytes(primary.reveal(SecretAccess::unsafe()).begin(),
                      primary.reveal(SecretAccess::unsafe()).end());
  auto to = migrate::SecretKek::create("keyring:primary", std::move(primary));
  REQUIRE_OK(to);
  auto kr = open_keyring(rig.dir() / "keyring.db", true);
  auto values = test::fill_data_keys(*kr, from->id(), a.value, 100);
  auto run = migrate::run_migration(*kr, *from, **to);
  REQUIRE_OK(run);
  CHECK(run->path == "host");
  auto v = migrate::verify_migration(*kr, *from, **to);
  REQUIRE_OK(v);
  CHECK(v->method == "keyed-fingerprint");
  CHECK(v->all_verified());
  expect_all_under(*kr, (*to)->id(), primary_bytes, values);
  auto retire = migrate::retire_migration(*kr, from->id(), (*to)->id(), false);
  REQUIRE_OK(retire);
  CHECK(retire->retired == 100);
  CHECK(test::sql_int(rig.dir() / "keyring.db",
                      "SELECT count(*) FROM wrappings WHERE state = 'retired'") == 100);
  // Nothing is left to migrate under the old KEK.
  CHECK_ERROR_CODE(migrate::run_migration(*kr, *from, **to), ErrorCode::kNotFound);
  CHECK(test::count_session_objects(rig.session(), CKO_SECRET_KEY) == 0);
}

TEST_CASE("plan counts wrappings per kek and reports a portable old kek", "[migrate][softhsm]") {
  test::MigrateRig rig;
  auto a = rig.make_aes_kek("kek-old", true);
  auto c = rig.make_aes_kek("kek-third");
  rig.make_aes_kek("kek-new");
  auto from = rig.open_kek("kek-old");
  auto third = rig.open_kek("kek-third");
  auto to = rig.open_kek("kek-new");
  auto kr = open_keyring(rig.dir() / "keyring.db", true);
  test::fill_data_keys(*kr, from->id(), a.value, 40);
  test::fill_data_keys(*kr, third->id(), c.value, 5, "other-");
  const Bytes plain(10, 1);
  migrate::SpanSource in(plain);
  migrate::BytesSink out;
  REQUIRE_OK(migrate::envelope_encrypt(*kr, *from, in, out));
  auto plan = migrate::plan_migration(*kr, *from, *to);
  REQUIRE_OK(plan);
  CHECK(plan->data_keys == 40);
  CHECK(plan->primary_keys == 1);
  CHECK(plan->keks.size() == 2);
  CHECK(plan->from_portability.portable);
  CHECK(plan->from_portability.commands.size() == 2);
  Json j = plan->to_json();
  CHECK(j["rewrap"]["total"] == 41);
  CHECK(j["path"] == "in-token");
  CHECK(j["from_portable"]["portable"] == true);
}

TEST_CASE(
    "run keeps a wrapping under the new kek that was there before it and verify checks that one "
    "too",
    "[migrate][softhsm]") {
  OldNew t(120);
  auto& [rig, a, b, from, to, db, kr, values] = t;
  // Key 5 already has a correct wrapping under the new KEK, key 9 one of another key.
  auto add_new = [&](std::size_t i, const Bytes& key) {
    migrate::WrappingRecord w;
    w.key_id = test::data_key_id(i);
    w.kek = to->id();
    w.alg = std::string(to->algorithm());
    w.wrapped = test::openssl_kwp_wrap(b.value, key);
    REQUIRE_OK(kr->add_wrapping(w));
  };
  add_new(5, values[5]);
  add_new(9, random_bytes(32));
  const Bytes kept_5 = (*kr->find_wrapping(test::data_key_id(5), to->id()))->wrapped;
  migrate::RunOptions ro;
  ro.batch = 50;
  auto run = migrate::run_migration(*kr, *from, *to, ro);
  REQUIRE_OK(run);
  CHECK(run->already_done == 2);
  CHECK(run->rewrapped == 118);
  CHECK((*kr->find_wrapping(test::data_key_id(5), to->id()))->wrapped == kept_5);
  // verify finds the wrong one; the next run redoes it; then everything verifies.
  auto verify = migrate::verify_migration(*kr, *from, *to, ro);
  REQUIRE_OK(verify);
  CHECK(verify->verified == 119);
  CHECK(verify->mismatched == 1);
  REQUIRE(verify->failures.size() == 1);
  CHECK(verify->failures[0].key_id == test::data_key_id(9));
  auto status = migrate::migration_status(*kr);
  REQUIRE_OK(status);
  REQUIRE(status->size() == 1);
  CHECK((*status)[0].mismatched == 1);
  CHECK((*status)[0].pending == 0);
  auto redo = migrate::run_migration(*kr, *from, *to, ro);
  REQUIRE_OK(redo);
  CHECK(redo->rewrapped == 1);
  CHECK(redo->already_done == 119);
  auto again = migrate::verify_migration(*kr, *from, *to, ro);
  REQUIRE_OK(again);
  CHECK(again->all_verified());
  expect_all_under(*kr, to->id(), b.value, values);
}
