// SPDX-License-Identifier: Apache-2.0
#include "migrate/keyring.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace keyport::migrate {
namespace {

constexpr int kSchemaVersion = 1;

constexpr std::string_view kSchema = R"sql(
CREATE TABLE meta(name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE keys(
  key_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('primary', 'data')),
  name TEXT NOT NULL DEFAULT '',
  epoch INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL,
  state TEXT NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX keys_primaries ON keys(name, epoch) WHERE kind = 'primary';
CREATE TABLE wrappings(
  key_id TEXT NOT NULL REFERENCES keys(key_id),
  kek_id TEXT NOT NULL,
  kek_version TEXT NOT NULL,
  alg TEXT NOT NULL,
  wrapped BLOB NOT NULL,
  created INTEGER NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (key_id, kek_id, kek_version)
) WITHOUT ROWID;
CREATE INDEX wrappings_by_kek ON wrappings(kek_id, kek_version, key_id);
CREATE TABLE migrations(
  id INTEGER PRIMARY KEY,
  from_kek TEXT NOT NULL,
  from_version TEXT NOT NULL,
  to_kek TEXT NOT NULL,
  to_version TEXT NOT NULL,
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  state TEXT NOT NULL,
  UNIQUE (from_kek, from_version, to_kek, to_version)
);
CREATE TABLE migration_items(
  migration INTEGER NOT NULL REFERENCES migrations(id),
  key_id TEXT NOT NULL,
  state TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  updated INTEGER NOT NULL,
  PRIMARY KEY (migration, key_id)
) WITHOUT ROWID;
)sql";

KeyKind kind_from(std::string_view text) {
  return text == "primary" ? KeyKind::kPrimary : KeyKind::kData;
}

KeyRecord read_key(const sql::Stmt& s) {
  KeyRecord k;
  k.key_id = s.column_text(0);
  k.kind = kind_from(s.column_text(1));
  k.name = s.column_text(2);
  k.epoch = static_cast<std::uint32_t>(s.column_int(3));
  k.created = s.column_int(4);
  k.state = s.column_text(5);
  return k;
}

WrappingRecord read_wrapping(const sql::Stmt& s) {
  WrappingRecord w;
  w.key_id = s.column_text(0);
  w.kek.id = s.column_text(1);
  w.kek.version = s.column_text(2);
  w.alg = s.column_text(3);
  w.wrapped = s.column_blob(4);
  w.created = s.column_int(5);
  w.state = s.column_text(6);
  return w;
}

constexpr std::string_view kKeyColumns = "key_id, kind, name, epoch, created, state";
constexpr std::string_view kWrappingColumns =
    "key_id, kek_id, kek_version, alg, wrapped, created, state";

}  // namespace

std::string_view to_string(KeyKind kind) {
  return kind == KeyKind::kPrimary ? "primary" : "data";
}

std::string primary_key_id(std::string_view name, std::uint32_t epoch) {
  return std::string(name) + "/" + std::to_string(epoch);
}

KeyringLock::~KeyringLock() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

Result<std::unique_ptr<Keyring>> Keyring::open(const std::filesystem::path& path,
                                               const Options& options) {
  sql::OpenOptions o;
  o.create = options.create;
  o.read_only = options.read_only;
  o.what = "keyring";
  KEYPORT_ASSIGN_OR_RETURN(sql::Db db, sql::Db::open(path, o));
  std::unique_ptr<Keyring> k(new Keyring(path, std::move(db)));
  KEYPORT_TRY(k->ensure_schema(options.create && !options.read_only));
  if (!options.read_only) {
    // WAL is stored in the file: a keyring made by keyport has it already and this reads only.
    bool wal = false;
    {
      KEYPORT_ASSIGN_OR_RETURN(auto mode, k->m_db.prepare("PRAGMA journal_mode"));
      KEYPORT_ASSIGN_OR_RETURN(bool row, mode.step());
      wal = row && mode.column_text(0) == "wal";
    }
    if (!wal) {
      KEYPORT_TRY(k->m_db.exec("PRAGMA journal_mode=WAL"));
    }
  }
  return k;
}

Status Keyring::ensure_schema(bool create) {
  // Each statement is finished before the next step: the journal mode cannot change while one is
  // still reading.
  auto count = [this](std::string_view sql) -> Result<std::int64_t> {
    KEYPORT_ASSIGN_OR_RETURN(auto s, m_db.prepare(sql));
    KEYPORT_TRY(s.step());
    return s.column_int(0);
  };
  KEYPORT_ASSIGN_OR_RETURN(
      const std::int64_t tables,
      count("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('meta', 'keys', "
            "'wrappings', 'migrations', 'migration_items')"));
  if (tables == 5) {
    KEYPORT_ASSIGN_OR_RETURN(auto v, m_db.prepare("SELECT value FROM meta WHERE name = 'schema'"));
    KEYPORT_ASSIGN_OR_RETURN(bool row, v.step());
    if (!row || v.column_text(0) != std::to_string(kSchemaVersion)) {
      return make_error(ErrorCode::kFormat, m_path.string() +
                                                " is a keyring of another schema version (want " +
                                                std::to_string(kSchemaVersion) + ")");
    }
    return {};
  }
  KEYPORT_ASSIGN_OR_RETURN(const std::int64_t objects, count("SELECT count(*) FROM sqlite_master"));
  if (tables != 0 || objects != 0 || !create) {
    return make_error(ErrorCode::kFormat, m_path.string() + " is not a keyport keyring");
  }
  KEYPORT_TRY(m_db.exec("PRAGMA journal_mode=WAL"));
  KEYPORT_ASSIGN_OR_RETURN(auto tx, sql::Transaction::begin(m_db));
  KEYPORT_TRY(m_db.exec(kSchema));
  KEYPORT_TRY(m_db.exec("INSERT INTO meta(name, value) VALUES ('schema', '" +
                        std::to_string(kSchemaVersion) + "')"));
  return tx.commit();
}

Result<KeyringLock> Keyring::lock() const {
  std::string lock_path = m_path.string() + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(ErrorCode::kIo, "cannot open " + lock_path + ": " + std::strerror(errno));
  }
  KeyringLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return make_error(ErrorCode::kAlreadyExists,
                        "keyring " + m_path.string() + " is in use by another keyport process");
    }
    return make_error(ErrorCode::kIo, "cannot lock " + lock_path + ": " + std::strerror(errno));
  }
  return lock;
}

std::int64_t Keyring::now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status Keyring::insert_wrapping(const WrappingRecord& w) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, m_db.prepare("INSERT INTO wrappings(key_id, kek_id, kek_version, alg, wrapped, "
                           "created, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO "
                           "NOTHING"));
  s.bind(1, w.key_id)
      .bind(2, w.kek.id)
      .bind(3, w.kek.version)
      .bind(4, w.alg)
      .bind_blob(5, w.wrapped)
      .bind(6, w.created != 0 ? w.created : now())
      .bind(7, w.state);
  KEYPORT_TRY(s.run());
  if (m_db.changes() == 0) {
    return make_error(ErrorCode::kAlreadyExists,
                      "key " + w.key_id + " already has a wrapping by " + w.kek.describe());
  }
  return {};
}

Status Keyring::add_key(const KeyRecord& key, const WrappingRecord& wrapping) {
  std::pair<KeyRecord, WrappingRecord> one{key, wrapping};
  return add_keys(std::span(&one, 1));
}

Status Keyring::add_keys(std::span<const std::pair<KeyRecord, WrappingRecord>> keys) {
  KEYPORT_ASSIGN_OR_RETURN(auto tx, sql::Transaction::begin(m_db));
  KEYPORT_ASSIGN_OR_RETURN(
      auto ins_key, m_db.prepare("INSERT INTO keys(key_id, kind, name, epoch, created, state) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING"));
  KEYPORT_ASSIGN_OR_RETURN(
      auto ins_wrap, m_db.prepare("INSERT INTO wrappings(key_id, kek_id, kek_version, alg, "
                                  "wrapped, created, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  const std::int64_t t = now();
  for (const auto& [key, w] : keys) {
    if (key.key_id.empty() || w.key_id != key.key_id) {
      return make_error(ErrorCode::kInvalidArgument, "a wrapping must name its key's id");
    }
    ins_key.reset();
    ins_key.bind(1, key.key_id)
        .bind(2, to_string(key.kind))
        .bind(3, key.name)
        .bind(4, static_cast<std::int64_t>(key.epoch))
        .bind(5, key.created != 0 ? key.created : t)
        .bind(6, key.state);
    KEYPORT_TRY(ins_key.run());
    if (m_db.changes() == 0) {
      return make_error(ErrorCode::kAlreadyExists, "key " + key.key_id + " exists already");
    }
    ins_wrap.reset();
    ins_wrap.bind(1, w.key_id)
        .bind(2, w.kek.id)
        .bind(3, w.kek.version)
        .bind(4, w.alg)
        .bind_blob(5, w.wrapped)
        .bind(6, w.created != 0 ? w.created : t)
        .bind(7, w.state);
    KEYPORT_TRY(ins_wrap.run());
  }
  return tx.commit();
}

Status Keyring::add_wrapping(const WrappingRecord& wrapping) {
  KEYPORT_ASSIGN_OR_RETURN(auto key, find_key(wrapping.key_id));
  if (!key) {
    return make_error(ErrorCode::kNotFound, "no key " + wrapping.key_id + " in the keyring");
  }
  return insert_wrapping(wrapping);
}

Result<std::optional<KeyRecord>> Keyring::find_key(std::string_view key_id) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, m_db.prepare("SELECT " + std::string(kKeyColumns) + " FROM keys WHERE key_id = ?1"));
  s.bind(1, key_id);
  KEYPORT_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) {
    return std::optional<KeyRecord>();
  }
  return std::optional<KeyRecord>(read_key(s));
}

Result<std::vector<WrappingRecord>> Keyring::wrappings_of(std::string_view key_id) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, m_db.prepare("SELECT " + std::string(kWrappingColumns) +
                           " FROM wrappings WHERE key_id = ?1 ORDER BY created, kek_id"));
  s.bind(1, key_id);
  std::vector<WrappingRecord> out;
  for (;;) {
    KEYPORT_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) {
      return out;
    }
    out.push_back(read_wrapping(s));
  }
}

Result<std::optional<WrappingRecord>> Keyring::find_wrapping(std::string_view key_id,
                                                             const KekId& kek) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, m_db.prepare("SELECT " + std::string(kWrappingColumns) +
                           " FROM wrappings WHERE key_id = ?1 AND kek_id = ?2 AND kek_version = "
                           "?3"));
  s.bind(1, key_id).bind(2, kek.id).bind(3, kek.version);
  KEYPORT_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) {
    return std::optional<WrappingRecord>();
  }
  return std::optional<WrappingRecord>(read_wrapping(s));
}

Result<std::optional<KeyRecord>> Keyring::latest_primary(std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(auto s, m_db.prepare("SELECT " + std::string(kKeyColumns) +
                                                " FROM keys WHERE kind = 'primary' AND name = ?1 "
                                                "ORDER BY epoch DESC LIMIT 1"));
  s.bind(1, name);
  KEYPORT_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) {
    return std::optional<KeyRecord>();
  }
  return std::optional<KeyRecord>(read_key(s));
}

Status Keyring::retire_primaries_below(std::string_view name, std::uint32_t epoch) {
  KEYPORT_ASSIGN_OR_RETURN(auto s, m_db.prepare("UPDATE keys SET state = 'retired' WHERE kind = "
                                                "'primary' AND name = ?1 AND epoch < ?2 AND state "
                                                "!= 'retired'"));
  s.bind(1, name).bind(2, static_cast<std::int64_t>(epoch));
  return s.run();
}

Result<std::vector<KekUsage>> Keyring::kek_usage() {
  KEYPORT_ASSIGN_OR_RETURN(
      auto s, m_db.prepare("SELECT w.kek_id, w.kek_version, min(w.alg), "
                           "sum(k.kind = 'primary' AND w.state = 'active'), "
                           "sum(k.kind = 'data' AND w.state = 'active'), sum(w.state = 'retired') "
                           "FROM wrappings w JOIN keys k ON k.key_id = w.key_id "
                           "GROUP BY w.kek_id, w.kek_version ORDER BY w.kek_id, w.kek_version"));
  std::vector<KekUsage> out;
  for (;;) {
    KEYPORT_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) {
      return out;
    }
    KekUsage u;
    u.kek.id = s.column_text(0);
    u.kek.version = s.column_text(1);
    u.alg = s.column_text(2);
    u.primary_keys = s.column_int(3);
    u.data_keys = s.column_int(4);
    u.retired = s.column_int(5);
    out.push_back(std::move(u));
  }
}

Result<std::int64_t> Keyring::count_keys(std::optional<KeyKind> kind) {
  KEYPORT_ASSIGN_OR_RETURN(auto s, m_db.prepare(kind ? "SELECT count(*) FROM keys WHERE kind = ?1"
                                                     : "SELECT count(*) FROM keys"));
  if (kind) {
    s.bind(1, to_string(*kind));
  }
  KEYPORT_TRY(s.step());
  return s.column_int(0);
}

}  // namespace keyport::migrate
