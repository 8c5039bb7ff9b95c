// SPDX-License-Identifier: Apache-2.0
// The keyring: a SQLite database of wrapped keys.
//
// - keys: every key by id: primary keys of envelope encryption (AES-256; kind "primary", a name
//   and an epoch: "<name>/<epoch>") and data keys that applications wrap directly (kind "data");
// - wrappings: the wrapped forms of each key, one row per (key, KEK id, KEK version), with the
//   algorithm, the bytes, the time and a state ("active" or "retired"). A key may have several
//   wrappings side by side: during a migration the old KEK's and the new KEK's;
// - migrations and migration_items: the journal of `keyport migrate` (see migration.h).
//
// The database is in WAL mode with synchronous=FULL: a committed transaction survives a crash of
// the process or the machine. Key material is never stored here in clear. A Keyring is used by one
// thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "db/sqlite.h"
#include "migrate/kek.h"

namespace keyport::migrate {

namespace sql = keyport::db;

enum class KeyKind { kPrimary, kData };
std::string_view to_string(KeyKind kind);

struct KeyRecord {
  std::string key_id;
  KeyKind kind = KeyKind::kData;
  std::string name;         // primary keys: the name ("default"); empty for data keys
  std::uint32_t epoch = 0;  // primary keys: 1, 2, ...; 0 for data keys
  std::int64_t created = 0;
  std::string state = "active";  // "active"; primaries: "retired" once a newer epoch exists
};

struct WrappingRecord {
  std::string key_id;
  KekId kek;
  std::string alg;  // KeyEncryptionKey::algorithm() of the KEK that wrapped it
  Bytes wrapped;
  std::int64_t created = 0;
  std::string state = "active";  // "active" or "retired" (kept after a migration's retire)
};

// How many wrappings one KEK version has in the keyring.
struct KekUsage {
  KekId kek;
  std::string alg;
  std::int64_t primary_keys = 0;
  std::int64_t data_keys = 0;
  std::int64_t retired = 0;  // wrappings in state "retired"
};

// The id of primary key `name` at `epoch`: "<name>/<epoch>".
std::string primary_key_id(std::string_view name, std::uint32_t epoch);

// An exclusive lock on a keyring (flock on "<keyring>.lock"), released when destroyed or when the
// process dies, so a killed run never leaves a stale lock.
class KeyringLock {
 public:
  KeyringLock(KeyringLock&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  KeyringLock& operator=(KeyringLock&&) = delete;
  KeyringLock(const KeyringLock&) = delete;
  KeyringLock& operator=(const KeyringLock&) = delete;
  ~KeyringLock();

 private:
  friend class Keyring;
  explicit KeyringLock(int fd) : m_fd(fd) {}
  int m_fd = -1;
};

class Keyring {
 public:
  struct Options {
    bool create = false;  // create the database (mode 0600) when absent
    bool read_only = false;
  };

  // Opens the keyring at `path`. Returns kNotFound when absent (and create is false), kFormat when
  // the file is not a keyring, kIo otherwise. Opening an existing keyring writes nothing.
  static Result<std::unique_ptr<Keyring>> open(const std::filesystem::path& path,
                                               const Options& options);

  const std::filesystem::path& path() const { return m_path; }

  // Takes the keyring's exclusive lock; kAlreadyExists when another process holds it.
  Result<KeyringLock> lock() const;

  // Adds a key and its first wrapping in one transaction. kAlreadyExists if the id is taken.
  Status add_key(const KeyRecord& key, const WrappingRecord& wrapping);
  // Adds many keys, each with its wrapping, in one transaction (bulk loads; chunk large loads).
  Status add_keys(std::span<const std::pair<KeyRecord, WrappingRecord>> keys);
  // Adds a wrapping of an existing key. kAlreadyExists when the key has one by this KEK version;
  // kNotFound when the key does not exist.
  Status add_wrapping(const WrappingRecord& wrapping);

  Result<std::optional<KeyRecord>> find_key(std::string_view key_id);
  // Every wrapping of a key, oldest first.
  Result<std::vector<WrappingRecord>> wrappings_of(std::string_view key_id);
  Result<std::optional<WrappingRecord>> find_wrapping(std::string_view key_id, const KekId& kek);

  // The primary key `name` with the highest epoch, or nullopt.
  Result<std::optional<KeyRecord>> latest_primary(std::string_view name);
  // Marks every epoch of primary `name` below `epoch` "retired" (they still decrypt).
  Status retire_primaries_below(std::string_view name, std::uint32_t epoch);

  // Wrappings per KEK version, ordered by KEK id and version.
  Result<std::vector<KekUsage>> kek_usage();
  // Number of keys (of one kind, or all).
  Result<std::int64_t> count_keys(std::optional<KeyKind> kind = std::nullopt);

  // Unix seconds, for created/updated columns.
  static std::int64_t now();

  // The connection, for the migration journal (internal to keyport::migrate).
  sql::Db& db() { return m_db; }

 private:
  Keyring(std::filesystem::path path, sql::Db db) : m_path(std::move(path)), m_db(std::move(db)) {}
  Status ensure_schema(bool create);
  Status insert_wrapping(const WrappingRecord& w);

  std::filesystem::path m_path;
  sql::Db m_db;
};

}  // namespace keyport::migrate
