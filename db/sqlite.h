// SPDX-License-Identifier: Apache-2.0
// keyport::db: a small RAII layer over the SQLite C API, shared by the vault's metadata store and
// the migration keyring. One connection per Db; not thread-safe by itself (the owner serialises
// access: vault::Store with its mutex, migrate::Keyring with its lock).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/encoding.h"
#include "core/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace keyport::db {

class Stmt;
class CachedStmt;

struct OpenOptions {
  bool create = false;            // create the file (mode 0600) when absent
  bool read_only = false;         // refuse writes (PRAGMA query_only)
  bool wal = false;               // set the WAL journal mode (stored in the file) after opening
  std::string what = "database";  // how messages name the file: "keyring", "vault database"
};

class Db {
 public:
  // Opens the database file (synchronous=FULL, foreign keys on, a busy timeout; read_only sets
  // query_only) and reads its schema, writing nothing unless `wal` is set. Returns kNotFound when
  // the file is absent and create is false, kFormat when it is not an SQLite database, kIo on
  // other failures. The journal mode is stored in the file: the keyring sets WAL only when it
  // creates the file; the vault asks for it on every open.
  static Result<Db> open(const std::filesystem::path& path, const OpenOptions& options);

  Db();
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Runs statements without results. Returns kIo with SQLite's message on failure.
  Status exec(std::string_view sql);
  // Compiles one statement. Returns kInternal on failure (the SQL is constant).
  Result<Stmt> prepare(std::string_view sql);
  // The statement for `sql`, compiled on first use and kept for the life of the Db (statements
  // run on every request should not be re-parsed each time). The handle resets the statement and
  // clears its bindings when it goes out of scope, so a SELECT does not keep its read snapshot
  // open. One handle per SQL text at a time: the same text must not be used nested.
  Result<CachedStmt> cached(std::string_view sql);
  // Rows changed by the last statement.
  std::int64_t changes() const;

 private:
  Db(sqlite3* db, std::string what);
  void close();
  sqlite3* m_db = nullptr;
  std::string m_what = "database";
  std::map<std::string, std::unique_ptr<Stmt>, std::less<>> m_cache;
};

class Stmt {
 public:
  Stmt(Stmt&& other) noexcept
      : m_db(other.m_db),
        m_stmt(std::exchange(other.m_stmt, nullptr)),
        m_bind_error(other.m_bind_error) {}
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Binders (1-based). A failure is remembered and reported by the next step().
  Stmt& bind(int index, std::int64_t value);
  Stmt& bind(int index, std::string_view text);
  Stmt& bind_blob(int index, std::span<const std::uint8_t> blob);
  Stmt& bind_null(int index);
  Stmt& bind(int index, const std::optional<std::int64_t>& value);  // NULL when empty

  // Returns true when a row is available, false when done, or kIo.
  Result<bool> step();
  // Steps until done.
  Status run();
  // Resets the statement and clears its bindings, for reuse.
  void reset();

  bool is_null(int column) const;
  std::int64_t column_int(int column) const;
  std::optional<std::int64_t> column_opt_int(int column) const;
  std::string column_text(int column) const;
  Bytes column_blob(int column) const;

 private:
  friend class Db;
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : m_db(db), m_stmt(stmt) {}
  sqlite3* m_db = nullptr;
  sqlite3_stmt* m_stmt = nullptr;
  int m_bind_error = 0;
};

// A borrowed statement from Db::cached(); resets it on destruction.
class CachedStmt {
 public:
  explicit CachedStmt(Stmt* stmt) : m_stmt(stmt) {}
  CachedStmt(CachedStmt&& other) noexcept : m_stmt(std::exchange(other.m_stmt, nullptr)) {}
  CachedStmt& operator=(CachedStmt&&) = delete;
  CachedStmt(const CachedStmt&) = delete;
  CachedStmt& operator=(const CachedStmt&) = delete;
  ~CachedStmt();

  Stmt& operator*() const { return *m_stmt; }
  Stmt* operator->() const { return m_stmt; }

 private:
  Stmt* m_stmt = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back in the destructor unless commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> begin(Db& db);
  Transaction(Transaction&& other) noexcept : m_db(std::exchange(other.m_db, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status commit();

 private:
  explicit Transaction(Db* db) : m_db(db) {}
  Db* m_db = nullptr;
};

}  // namespace keyport::db
