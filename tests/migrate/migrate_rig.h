// SPDX-License-Identifier: Apache-2.0
// Test rig for keyport::migrate: token KEKs with known values on the test process's SoftHSM
// "onprem" token (so that OpenSSL, not keyport, can check every wrapping), synthetic keyrings,
// raw SQLite counts, and running the keyport binary as a child process.
#pragma once

#include <catch2/catch.hpp>

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/secret.h"
#include "migrate/kek.h"
#include "migrate/keyring.h"
#include "pkcs11/session.h"
#include "tests/support/support.h"

namespace keyport::test {

// A KEK created in the "onprem" token from a value the test knows.
struct KnownKek {
  std::string label;
  Bytes value;  // the AES key (tests only: kept to check wrappings with OpenSSL)
  std::string spec() const { return "pkcs11:token=onprem;object=" + label; }
};

class MigrateRig {
 public:
  MigrateRig();

  const p11::Session& session() const { return m_session; }
  std::filesystem::path dir() const { return m_dir; }

  // Creates a token AES-256 key `label` (CKA_TOKEN, sensitive, encrypt/wrap/unwrap, extractable as
  // asked) from a random value the test keeps.
  KnownKek make_aes_kek(const std::string& label, bool extractable = false);
  // Opens a KEK on the "onprem" token by label or URI.
  std::unique_ptr<migrate::TokenKek> open_kek(const std::string& object) const;

 private:
  p11::Session m_session;
  std::filesystem::path m_dir;
};

// RFC 5649 with OpenSSL EVP (not keyport's code).
Bytes openssl_kwp_wrap(const Bytes& kek, const Bytes& key);
// Throws when the wrapping does not open.
Bytes openssl_kwp_unwrap(const Bytes& kek, const Bytes& wrapped);

// Fills `keyring` with `n` data keys "dk-0000001".. (random 32-byte values, returned in order)
// wrapped by OpenSSL under `kek_value`, recorded as wrapped by `kek`.
std::vector<Bytes> fill_data_keys(migrate::Keyring& keyring, const migrate::KekId& kek,
                                  const Bytes& kek_value, std::size_t n,
                                  const std::string& prefix = "dk-");

// The data key id of index i: prefix + 7 digits.
std::string data_key_id(std::size_t i, const std::string& prefix = "dk-");

// One integer from an SQL query on a database file (sqlite3 directly, read-only).
std::int64_t sql_int(const std::filesystem::path& db, const std::string& query);

// The bytes of a keyring's files (database, -wal, -shm), to prove nothing changed.
std::map<std::string, Bytes> keyring_bytes(const std::filesystem::path& db);

// The keyport binary, run as a child process with SOFTHSM2_CONF of this test's token folder and
// KP_PIN set to the "onprem" PIN.
struct Child {
  int rc = -1;
  bool killed = false;  // ended by SIGKILL
  std::string out;
  std::string err;
};
std::vector<std::string> keyport_env();
// Runs to completion; output captured.
Child run_keyport(const std::vector<std::string>& args);
// Starts keyport; returns its pid (stdout and stderr to /dev/null).
pid_t spawn_keyport(const std::vector<std::string>& args);
// Waits for a pid started by spawn_keyport.
Child wait_child(pid_t pid);

}  // namespace keyport::test
