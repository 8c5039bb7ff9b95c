// SPDX-License-Identifier: Apache-2.0
#include "db/sqlite.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <system_error>
#include <utility>

#include "core/log.h"

namespace keyport::db {
namespace {

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + sqlite3_errstr(rc);
  if (db != nullptr) {
    msg += " (" + std::string(sqlite3_errmsg(db)) + ")";
  }
  return Error(ErrorCode::kIo, msg);
}

}  // namespace

Result<Db> Db::open(const std::filesystem::path& path, const OpenOptions& options) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (!exists && !options.create) {
    return make_error(ErrorCode::kNotFound, options.what + " " + path.string() + " does not exist");
  }
  // A read-only Db is a read-write connection with query_only set, not SQLITE_OPEN_READONLY: a
  // read-only connection to a WAL database creates the -wal and -shm files but cannot remove them
  // when it closes (only a connection that may checkpoint does), so merely reading would leave
  // files behind. SQLite itself falls back to a read-only connection when the file is not
  // writable.
  int flags = SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) {
    flags |= SQLITE_OPEN_CREATE;
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw, options.what);
  if (rc != SQLITE_OK) {
    return tl::unexpected(
        sqlite_error(raw, rc, "cannot open the " + options.what + " " + path.string()));
  }
  if (!exists && ::chmod(path.c_str(), 0600) != 0) {
    log::warn("cannot set mode 0600 on " + path.string());
  }
  sqlite3_busy_timeout(raw, 10000);
  // The first read of the schema tells whether this is an SQLite database at all; nothing is
  // written before that (and, without `wal`, nothing at all: the caller checks the schema first).
  rc = sqlite3_exec(raw, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
  if (rc == SQLITE_NOTADB) {
    return make_error(
        ErrorCode::kFormat,
        path.string() + " is not an SQLite database, so not a keyport " + options.what);
  }
  if (rc != SQLITE_OK) {
    return tl::unexpected(
        sqlite_error(raw, rc, "cannot read the " + options.what + " " + path.string()));
  }
  KEYPORT_TRY(db.exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON"));
  if (options.wal && !options.read_only) {
    KEYPORT_TRY(db.exec("PRAGMA journal_mode=WAL"));
  }
  if (options.read_only) {
    KEYPORT_TRY(db.exec("PRAGMA query_only=ON"));
  }
  return db;
}

Db::Db() = default;

Db::Db(sqlite3* db, std::string what) : m_db(db), m_what(std::move(what)) {}

Db::Db(Db&& other) noexcept
    : m_db(std::exchange(other.m_db, nullptr)),
      m_what(std::move(other.m_what)),
      m_cache(std::move(other.m_cache)) {}

void Db::close() {
  m_cache.clear();  // finalize the cached statements before the connection goes
  if (m_db != nullptr) {
    sqlite3_close_v2(m_db);
    m_db = nullptr;
  }
}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    close();
    m_db = std::exchange(other.m_db, nullptr);
    m_what = std::move(other.m_what);
    m_cache = std::move(other.m_cache);
  }
  return *this;
}

Db::~Db() {
  close();
}

Status Db::exec(std::string_view sql) {
  std::string text(sql);
  char* msg = nullptr;
  int rc = sqlite3_exec(m_db, text.c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    std::string detail = msg != nullptr ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    return make_error(ErrorCode::kIo, m_what + ": " + detail);
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

Result<CachedStmt> Db::cached(std::string_view sql) {
  auto it = m_cache.find(sql);
  if (it == m_cache.end()) {
    KEYPORT_ASSIGN_OR_RETURN(Stmt s, prepare(sql));
    it = m_cache.emplace(std::string(sql), std::make_unique<Stmt>(std::move(s))).first;
  }
  return CachedStmt(it->second.get());
}

CachedStmt::~CachedStmt() {
  if (m_stmt != nullptr) {
    m_stmt->reset();
  }
}

std::int64_t Db::changes() const {
  return sqlite3_changes64(m_db);
}

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
  static const std::uint8_t kEmpty = 0;
  const void* data = blob.empty() ? &kEmpty : static_cast<const void*>(blob.data());
  int rc = sqlite3_bind_blob(m_stmt, index, data, static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && m_bind_error == 0) {
    m_bind_error = rc;
  }
  return *this;
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
    return tl::unexpected(sqlite_error(m_db, m_bind_error, "binding a database value"));
  }
  int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return tl::unexpected(sqlite_error(m_db, rc, "database"));
}

Status Stmt::run() {
  for (;;) {
    KEYPORT_ASSIGN_OR_RETURN(bool row, step());
    if (!row) {
      return {};
    }
  }
}

Stmt& Stmt::bind(int index, const std::optional<std::int64_t>& value) {
  if (value) {
    return bind(index, *value);
  }
  return bind_null(index);
}

std::optional<std::int64_t> Stmt::column_opt_int(int column) const {
  if (is_null(column)) {
    return std::nullopt;
  }
  return column_int(column);
}

void Stmt::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
  m_bind_error = 0;
}

bool Stmt::is_null(int column) const {
  return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

std::int64_t Stmt::column_int(int column) const {
  return sqlite3_column_int64(m_stmt, column);
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
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(m_stmt, column));
  int n = sqlite3_column_bytes(m_stmt, column);
  if (p == nullptr || n <= 0) {
    return {};
  }
  return Bytes(p, p + n);
}

Result<Transaction> Transaction::begin(Db& db) {
  KEYPORT_TRY(db.exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (m_db != nullptr) {
    auto st = m_db->exec("ROLLBACK");
    if (!st) {
      log::warn("database rollback failed: " + st.error().describe());
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

}  // namespace keyport::db
