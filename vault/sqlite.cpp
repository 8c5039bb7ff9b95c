// SPDX-License-Identifier: Apache-2.0
#include "vault/sqlite.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <utility>

#include "core/log.h"

namespace keyport::vault::sql {
namespace {

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + sqlite3_errstr(rc);
  if (db != nullptr) {
    msg += " (" + std::string(sqlite3_errmsg(db)) + ")";
  }
  return Error(ErrorCode::kIo, msg);
}

}  // namespace

Result<Db> Db::open(const std::filesystem::path& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) {
    return tl::unexpected(sqlite_error(raw, rc, "cannot open the vault database " + path.string()));
  }
  if (::chmod(path.c_str(), 0600) != 0) {
    log::warn("cannot set mode 0600 on " + path.string());
  }
  sqlite3_busy_timeout(raw, 5000);
  KEYPORT_TRY(db.exec("PRAGMA journal_mode=WAL"));
  KEYPORT_TRY(db.exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON"));
  return db;
}

Db::Db(Db&& other) noexcept : m_db(std::exchange(other.m_db, nullptr)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    if (m_db != nullptr) {
      sqlite3_close_v2(m_db);
    }
    m_db = std::exchange(other.m_db, nullptr);
  }
  return *this;
}

Db::~Db() {
  if (m_db != nullptr) {
    sqlite3_close_v2(m_db);
  }
}

Status Db::exec(std::string_view sql) {
  std::string text(sql);
  char* msg = nullptr;
  int rc = sqlite3_exec(m_db, text.c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    std::string detail = msg != nullptr ? msg : "";
    sqlite3_free(msg);
    return make_error(ErrorCode::kIo, "vault database: " + detail);
  }
  return {};
}

Result<Stmt> Db::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(m_db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return tl::unexpected(
        Error(ErrorCode::kInternal, std::string("cannot prepare SQL: ") + sqlite3_errmsg(m_db)));
  }
  return Stmt(m_db, stmt);
}

int Db::changes() const {
  return sqlite3_changes(m_db);
}

Stmt::Stmt(Stmt&& other) noexcept
    : m_db(other.m_db),
      m_stmt(std::exchange(other.m_stmt, nullptr)),
      m_bind_error(other.m_bind_error) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    if (m_stmt != nullptr) {
      sqlite3_finalize(m_stmt);
    }
    m_db = other.m_db;
    m_stmt = std::exchange(other.m_stmt, nullptr);
    m_bind_error = other.m_bind_error;
  }
  return *this;
}

Stmt::~Stmt() {
  if (m_stmt != nullptr) {
    sqlite3_finalize(m_stmt);
  }
}

Stmt& Stmt::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(m_stmt, index, value);
  if (rc != SQLITE_OK && m_bind_error == 0) {
    m_bind_error = rc;
  }
  return *this;
}

Stmt& Stmt::bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text(m_stmt, index, text.data(), static_cast<int>(text.size()),
                             SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && m_bind_error == 0) {
    m_bind_error = rc;
  }
  return *this;
}

Stmt& Stmt::bind_blob(int index, std::span<const std::uint8_t> blob) {
  int rc = sqlite3_bind_blob(m_stmt, index, blob.data(), static_cast<int>(blob.size()),
                             SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && m_bind_error == 0) {
    m_bind_error = rc;
  }
  return *this;
}

Stmt& Stmt::bind(int index, const std::optional<std::int64_t>& value) {
  if (value) {
    return bind(index, *value);
  }
  return bind_null(index);
}

Stmt& Stmt::bind_null(int index) {
  int rc = sqlite3_bind_null(m_stmt, index);
  if (rc != SQLITE_OK && m_bind_error == 0) {
    m_bind_error = rc;
  }
  return *this;
}

Result<bool> Stmt::step() {
  if (m_bind_error != 0) {
    return tl::unexpected(sqlite_error(m_db, m_bind_error, "binding a vault database value"));
  }
  int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return tl::unexpected(sqlite_error(m_db, rc, "vault database"));
}

Status Stmt::run() {
  for (;;) {
    KEYPORT_ASSIGN_OR_RETURN(bool row, step());
    if (!row) {
      return {};
    }
  }
}

bool Stmt::is_null(int column) const {
  return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

std::int64_t Stmt::column_int(int column) const {
  return sqlite3_column_int64(m_stmt, column);
}

std::optional<std::int64_t> Stmt::column_opt_int(int column) const {
  if (is_null(column)) {
    return std::nullopt;
  }
  return column_int(column);
}

std::string Stmt::column_text(int column) const {
  const unsigned char* p = sqlite3_column_text(m_stmt, column);
  int n = sqlite3_column_bytes(m_stmt, column);
  if (p == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

Bytes Stmt::column_blob(int column) const {
  const void* p = sqlite3_column_blob(m_stmt, column);
  int n = sqlite3_column_bytes(m_stmt, column);
  if (p == nullptr || n <= 0) {
    return {};
  }
  const auto* b = static_cast<const std::uint8_t*>(p);
  return Bytes(b, b + n);
}

Result<Transaction> Transaction::begin(Db& db) {
  KEYPORT_TRY(db.exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (m_db != nullptr) {
    auto st = m_db->exec("ROLLBACK");
    if (!st) {
      log::warn("vault database rollback failed: " + st.error().describe());
    }
  }
}

Status Transaction::commit() {
  if (m_db == nullptr) {
    return make_error(ErrorCode::kInternal, "transaction already finished");
  }
  KEYPORT_TRY(m_db->exec("COMMIT"));
  m_db = nullptr;
  return {};
}

}  // namespace keyport::vault::sql
