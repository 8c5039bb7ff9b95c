// SPDX-License-Identifier: Apache-2.0
// The keyring database: wrappings side by side, primaries and epochs, refusals, the lock, and
// that opening a keyring writes nothing.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include "core/file_io.h"
#include "core/random.h"
#include "migrate/keyring.h"
#include "tests/migrate/migrate_rig.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

migrate::WrappingRecord wrapping(const std::string& key, const migrate::KekId& kek) {
  migrate::WrappingRecord w;
  w.key_id = key;
  w.kek = kek;
  w.alg = "AES-KWP";
  w.wrapped = random_bytes(40);
  return w;
}

std::unique_ptr<migrate::Keyring> open_new(const fs::path& p) {
  migrate::Keyring::Options o;
  o.create = true;
  auto k = migrate::Keyring::open(p, o);
  REQUIRE_OK(k);
  return std::move(*k);
}

}  // namespace

TEST_CASE("a key can hold wrappings by several keks side by side", "[migrate][keyring]") {
  auto kr = open_new(test::make_scratch_subdir("kr") / "k.db");
  migrate::KekId a{"pkcs11:token=t;object=a;type=secret-key", "kcv:aaaaaa"};
  migrate::KekId b{"https://v.vault.azure.net/keys/b", "0123456789abcdef0123456789abcdef"};
  migrate::KeyRecord k;
  k.key_id = "dk-1";
  REQUIRE_OK(kr->add_key(k, wrapping("dk-1", a)));
  REQUIRE_OK(kr->add_wrapping(wrapping("dk-1", b)));
  CHECK_ERROR_CODE(kr->add_wrapping(wrapping("dk-1", b)), ErrorCode::kAlreadyExists);
  CHECK_ERROR_CODE(kr->add_wrapping(wrapping("dk-2", b)), ErrorCode::kNotFound);
  CHECK_ERROR_CODE(kr->add_key(k, wrapping("dk-1", a)), ErrorCode::kAlreadyExists);
  auto all = kr->wrappings_of("dk-1");
  REQUIRE_OK(all);
  CHECK(all->size() == 2);
  auto wb = kr->find_wrapping("dk-1", b);
  REQUIRE_OK(wb);
  REQUIRE(wb->has_value());
  CHECK((*wb)->kek == b);
  CHECK((*wb)->state == "active");
  auto usage = kr->kek_usage();
  REQUIRE_OK(usage);
  REQUIRE(usage->size() == 2);
  CHECK((*usage)[0].data_keys == 1);
  CHECK((*usage)[1].data_keys == 1);
  auto n = kr->count_keys(migrate::KeyKind::kData);
  REQUIRE_OK(n);
  CHECK(*n == 1);
}

TEST_CASE("primary keys are named with epochs and the newest is found", "[migrate][keyring]") {
  auto kr = open_new(test::make_scratch_subdir("kr") / "k.db");
  migrate::KekId a{"x", "1"};
  for (std::uint32_t e : {1u, 2u, 3u}) {
    migrate::KeyRecord k;
    k.kind = migrate::KeyKind::kPrimary;
    k.name = "app";
    k.epoch = e;
    k.key_id = migrate::primary_key_id("app", e);
    REQUIRE_OK(kr->add_key(k, wrapping(k.key_id, a)));
  }
  auto latest = kr->latest_primary("app");
  REQUIRE_OK(latest);
  REQUIRE(latest->has_value());
  CHECK((*latest)->epoch == 3);
  CHECK((*latest)->key_id == "app/3");
  REQUIRE_OK(kr->retire_primaries_below("app", 3));
  auto k1 = kr->find_key("app/1");
  REQUIRE_OK(k1);
  CHECK((*k1)->state == "retired");
  auto none = kr->latest_primary("other");
  REQUIRE_OK(none);
  CHECK_FALSE(none->has_value());
}

TEST_CASE("opening an existing keyring writes nothing", "[migrate][keyring]") {
  const fs::path p = test::make_scratch_subdir("kr") / "k.db";
  {
    auto kr = open_new(p);
    migrate::KeyRecord k;
    k.key_id = "dk-1";
    REQUIRE_OK(kr->add_key(k, wrapping("dk-1", {"x", "1"})));
  }
  auto before = test::keyring_bytes(p);
  for (bool read_only : {false, true}) {
    migrate::Keyring::Options o;
    o.read_only = read_only;
    auto kr = migrate::Keyring::open(p, o);
    REQUIRE_OK(kr);
    REQUIRE_OK((*kr)->kek_usage());
  }
  CHECK(test::keyring_bytes(p) == before);
}

TEST_CASE("a missing file or a file that is not a keyring is refused", "[migrate][keyring]") {
  const fs::path dir = test::make_scratch_subdir("kr");
  CHECK_ERROR_CODE(migrate::Keyring::open(dir / "absent.db", {}), ErrorCode::kNotFound);
  CHECK_FALSE(fs::exists(dir / "absent.db"));
  REQUIRE_OK(write_file_atomic(dir / "text.db", std::string_view("not sqlite at all, clearly")));
  CHECK_ERROR_CODE(migrate::Keyring::open(dir / "text.db", {}), ErrorCode::kFormat);
  // Another application's SQLite database (made with SQLite directly, in its default rollback
  // journal mode), and a database holding some of the keyring's tables but not all of them.
  auto make_db = [&](const fs::path& p, const char* sql) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open_v2(p.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) ==
            SQLITE_OK);
    const int rc = sqlite3_exec(raw, sql, nullptr, nullptr, nullptr);
    sqlite3_close(raw);
    REQUIRE(rc == SQLITE_OK);
  };
  make_db(dir / "other.db", "CREATE TABLE other(x); INSERT INTO other VALUES (1)");
  make_db(dir / "partial.db",
          "CREATE TABLE meta(name TEXT PRIMARY KEY, value TEXT); "
          "CREATE TABLE keys(key_id TEXT PRIMARY KEY)");
  for (const char* name : {"text.db", "other.db", "partial.db"}) {
    INFO(name);
    const auto before = test::keyring_bytes(dir / name);
    for (bool read_only : {false, true}) {
      migrate::Keyring::Options o;
      o.read_only = read_only;
      CHECK_ERROR_CODE(migrate::Keyring::open(dir / name, o), ErrorCode::kFormat);
    }
    // Refusing a file does not touch it (no journal mode switched, no WAL or shm left behind).
    CHECK(test::keyring_bytes(dir / name) == before);
  }
  // create does not take over a database that exists and is not a keyring.
  migrate::Keyring::Options create;
  create.create = true;
  CHECK_ERROR_CODE(migrate::Keyring::open(dir / "other.db", create), ErrorCode::kFormat);
}

TEST_CASE("the keyring lock admits one holder at a time", "[migrate][keyring]") {
  auto kr = open_new(test::make_scratch_subdir("kr") / "k.db");
  {
    auto first = kr->lock();
    REQUIRE_OK(first);
    CHECK_ERROR_CODE(kr->lock(), ErrorCode::kAlreadyExists);
  }
  REQUIRE_OK(kr->lock());
}
