// SPDX-License-Identifier: Apache-2.0
// db/sqlite.h: the RAII layer the vault store and the migration keyring share.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

#include "db/sqlite.h"
#include "tests/support/support.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

db::Db open_new(const fs::path& path) {
  auto d = db::Db::open(path, db::OpenOptions{.create = true});
  REQUIRE_OK(d);
  REQUIRE_OK(d->exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"));
  return std::move(*d);
}

std::int64_t count_rows(db::Db& d) {
  auto st = d.prepare("SELECT count(*) FROM t");
  REQUIRE_OK(st);
  auto row = st->step();
  REQUIRE_OK(row);
  REQUIRE(*row);
  return st->column_int(0);
}

}  // namespace

TEST_CASE("Db::open creates the file with mode 0600 and refuses a missing one", "[unit][db]") {
  const fs::path dir = test::make_scratch_subdir("db-open");
  const fs::path path = dir / "x.db";
  CHECK_ERROR_CODE(db::Db::open(path, db::OpenOptions{}), ErrorCode::kNotFound);
  CHECK_FALSE(fs::exists(path));
  {
    auto d = db::Db::open(path, db::OpenOptions{.create = true});
    REQUIRE_OK(d);
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // Not an SQLite file.
  const fs::path junk = dir / "junk.db";
  {
    std::FILE* f = std::fopen(junk.c_str(), "wb");
    REQUIRE(f != nullptr);
    std::fputs("this is not a database, only enough text to fill a header page ......", f);
    std::fclose(f);
  }
  CHECK_ERROR_CODE(db::Db::open(junk, db::OpenOptions{}), ErrorCode::kFormat);
}

TEST_CASE("Transaction rolls back unless committed", "[unit][db]") {
  const fs::path dir = test::make_scratch_subdir("db-tx");
  db::Db d = open_new(dir / "tx.db");
  {
    auto tx = db::Transaction::begin(d);
    REQUIRE_OK(tx);
    REQUIRE_OK(d.exec("INSERT INTO t (k, v) VALUES (1, 'dropped')"));
    CHECK(count_rows(d) == 1);  // visible inside the transaction
  }                             // no commit: the destructor rolls back
  CHECK(count_rows(d) == 0);
  {
    auto tx = db::Transaction::begin(d);
    REQUIRE_OK(tx);
    REQUIRE_OK(d.exec("INSERT INTO t (k, v) VALUES (2, 'kept')"));
    REQUIRE_OK(tx->commit());
    // A second commit is a bug in the caller, reported, not a second COMMIT.
    CHECK_ERROR_CODE(tx->commit(), ErrorCode::kInternal);
  }
  CHECK(count_rows(d) == 1);
}

TEST_CASE("Stmt remembers a bind error and reports it at step()", "[unit][db]") {
  const fs::path dir = test::make_scratch_subdir("db-bind");
  db::Db d = open_new(dir / "bind.db");
  auto st = d.prepare("INSERT INTO t (k, v) VALUES (?1, ?2)");
  REQUIRE_OK(st);
  st->bind(1, std::int64_t{7}).bind(3, std::string_view("no such parameter")).bind(2, "seven");
  CHECK_ERROR_CODE(st->run(), ErrorCode::kIo);
  CHECK(count_rows(d) == 0);
  // reset() forgets the error; the same statement then works.
  st->reset();
  st->bind(1, std::int64_t{7}).bind(2, std::string_view("seven"));
  REQUIRE_OK(st->run());
  CHECK(count_rows(d) == 1);
  CHECK(d.changes() == 1);
}

TEST_CASE("A read-only Db refuses writes and reads what is there", "[unit][db]") {
  const fs::path dir = test::make_scratch_subdir("db-ro");
  const fs::path path = dir / "ro.db";
  {
    db::Db d = open_new(path);
    REQUIRE_OK(d.exec("INSERT INTO t (k, v) VALUES (1, 'one')"));
  }
  auto ro = db::Db::open(path, db::OpenOptions{.read_only = true});
  REQUIRE_OK(ro);
  CHECK(count_rows(*ro) == 1);
  CHECK_ERROR_CODE(ro->exec("INSERT INTO t (k, v) VALUES (2, 'two')"), ErrorCode::kIo);
  CHECK_ERROR_CODE(ro->exec("DELETE FROM t"), ErrorCode::kIo);
  CHECK(count_rows(*ro) == 1);
  // read_only with create does not create a file.
  CHECK_FALSE(db::Db::open(dir / "absent.db", db::OpenOptions{.create = true, .read_only = true}));
  CHECK_FALSE(fs::exists(dir / "absent.db"));
}
