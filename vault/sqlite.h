// SPDX-License-Identifier: Apache-2.0
// A small RAII layer over the SQLite C API for the vault's metadata database (internal to
// keyport::vault). Not thread-safe by itself: the Store serialises access with its mutex.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace keyport::vault::sql {

class Stmt;

class Db {
 public:
  // Opens (creating if absent) the database file with mode 0600, WAL journal, synchronous=FULL,
  // foreign keys on and a busy timeout. Returns kIo naming the file on failure.
  static Result<Db> open(const std::filesystem::path& path);

  Db() = default;
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Runs one or more statements without results. Returns kIo with SQLite's message on failure.
  Status exec(std::string_view sql);
  // Compiles one statement. Returns kInternal on failure (our SQL is constant).
  Result<Stmt> prepare(std::string_view sql);
  // Number of rows changed by the last statement.
  int changes() const;

 private:
  explicit Db(sqlite3* db) : m_db(db) {}
  sqlite3* m_db = nullptr;
};

class Stmt {
 public:
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Binders (1-based index). A failure is remembered and reported by the next step().
  Stmt& bind(int index, std::int64_t value);
  Stmt& bind(int index, std::string_view text);
  Stmt& bind_blob(int index, std::span<const std::uint8_t> blob);
  Stmt& bind(int index, const std::optional<std::int64_t>& value);
  Stmt& bind_null(int index);

  // Returns true when a row is available, false when the statement is done, or kIo.
  Result<bool> step();
  // Steps until done (for statements without results).
  Status run();

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

}  // namespace keyport::vault::sql
