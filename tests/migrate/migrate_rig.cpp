// SPDX-License-Identifier: Apache-2.0
#include "tests/migrate/migrate_rig.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "core/file_io.h"
#include "core/ossl.h"
#include "core/random.h"
#include "pkcs11/template.h"
#include "tests/support/softhsm.h"

extern char** environ;

namespace keyport::test {
namespace fs = std::filesystem;

MigrateRig::MigrateRig()
    : m_session(SoftHsm::get().login(kOnpremToken)), m_dir(make_scratch_subdir("migrate")) {}

KnownKek MigrateRig::make_aes_kek(const std::string& label, bool extractable) {
  KnownKek k;
  k.label = label;
  k.value = random_bytes(32);
  p11::Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(CKK_AES)
      .token(true)
      .private_object(true)
      .sensitive(true)
      .extractable(extractable)
      .encrypt(true)
      .decrypt(true)
      .wrap(true)
      .unwrap(true)
      .label(label)
      .id(random_bytes(16))
      .set_secret(CKA_VALUE, SecretBytes(k.value));
  auto h = m_session.create_object(t);
  REQUIRE_OK(h);
  return k;
}

std::unique_ptr<migrate::TokenKek> MigrateRig::open_kek(const std::string& object) const {
  auto slot = SoftHsm::get().slot(kOnpremToken);
  auto k = migrate::TokenKek::open(SoftHsm::get().module(), slot.id,
                                   SecretBytes::from_string(kOnpremPin), object);
  REQUIRE_OK(k);
  return std::move(*k);
}

Bytes openssl_kwp_wrap(const Bytes& kek, const Bytes& key) {
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_wrap_pad(), nullptr, kek.data(), nullptr) != 1) {
    throw std::runtime_error("EVP_EncryptInit_ex(wrap_pad)");
  }
  Bytes out(key.size() + 16);
  int n1 = 0, n2 = 0;
  if (EVP_EncryptUpdate(ctx.get(), out.data(), &n1, key.data(), static_cast<int>(key.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1) {
    throw std::runtime_error("KWP wrap");
  }
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

Bytes openssl_kwp_unwrap(const Bytes& kek, const Bytes& wrapped) {
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_wrap_pad(), nullptr, kek.data(), nullptr) != 1) {
    throw std::runtime_error("EVP_DecryptInit_ex(wrap_pad)");
  }
  Bytes out(wrapped.size());
  int n1 = 0, n2 = 0;
  if (EVP_DecryptUpdate(ctx.get(), out.data(), &n1, wrapped.data(),
                        static_cast<int>(wrapped.size())) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1) {
    ossl::drain_errors();
    throw std::runtime_error("KWP unwrap failed");
  }
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

std::string data_key_id(std::size_t i, const std::string& prefix) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%07zu", i);
  return prefix + buf;
}

std::vector<Bytes> fill_data_keys(migrate::Keyring& keyring, const migrate::KekId& kek,
                                  const Bytes& kek_value, std::size_t n,
                                  const std::string& prefix) {
  std::vector<Bytes> values;
  values.reserve(n);
  std::vector<std::pair<migrate::KeyRecord, migrate::WrappingRecord>> chunk;
  for (std::size_t i = 0; i < n; ++i) {
    Bytes v = random_bytes(32);
    migrate::KeyRecord k;
    k.key_id = data_key_id(i, prefix);
    k.kind = migrate::KeyKind::kData;
    migrate::WrappingRecord w;
    w.key_id = k.key_id;
    w.kek = kek;
    w.alg = "AES-KWP";
    w.wrapped = openssl_kwp_wrap(kek_value, v);
    chunk.emplace_back(std::move(k), std::move(w));
    values.push_back(std::move(v));
    if (chunk.size() == 5000 || i + 1 == n) {
      REQUIRE_OK(keyring.add_keys(chunk));
      chunk.clear();
    }
  }
  return values;
}

std::int64_t sql_int(const fs::path& db, const std::string& query) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(raw);
    throw std::runtime_error("cannot open " + db.string());
  }
  // A kill -9 may leave the WAL to be recovered by the next connection: wait for it rather than
  // fail with SQLITE_BUSY.
  sqlite3_busy_timeout(raw, 10000);
  sqlite3_stmt* st = nullptr;
  std::int64_t v = -1;
  if (sqlite3_prepare_v2(raw, query.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
  }
  std::string err = sqlite3_errmsg(raw);
  sqlite3_finalize(st);
  sqlite3_close(raw);
  if (v < 0) {
    throw std::runtime_error("query failed: " + query + ": " + err);
  }
  return v;
}

std::map<std::string, Bytes> keyring_bytes(const fs::path& db) {
  std::map<std::string, Bytes> out;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::path p = db.string() + suffix;
    if (fs::exists(p)) {
      auto b = read_file(p, 1u << 30);
      REQUIRE_OK(b);
      out[suffix] = *b;
    }
  }
  return out;
}

std::vector<std::string> keyport_env() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string v = *e;
    if (v.rfind("SOFTHSM2_CONF=", 0) == 0 || v.rfind("KP_PIN=", 0) == 0 ||
        v.rfind("KEYPORT_PIN=", 0) == 0) {
      continue;
    }
    env.push_back(v);
  }
  env.push_back("SOFTHSM2_CONF=" + (SoftHsm::get().dir() / "softhsm2.conf").string());
  env.push_back(std::string("KP_PIN=") + kOnpremPin);
  return env;
}

namespace {

pid_t spawn(const std::vector<std::string>& args, int out_fd, int err_fd) {
  std::vector<std::string> env = keyport_env();
  std::vector<char*> argv;
  std::string bin = KEYPORT_CLI_BINARY;
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int null_in = ::open("/dev/null", O_RDONLY);
    ::dup2(null_in, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execve(bin.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

std::string slurp(const fs::path& p) {
  auto t = read_text_file(p, 64u << 20);
  return t ? *t : std::string();
}

}  // namespace

Child run_keyport(const std::vector<std::string>& args) {
  fs::path dir = make_scratch_subdir("child");
  int out = ::open((dir / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err = ::open((dir / "err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = spawn(args, out, err);
  ::close(out);
  ::close(err);
  Child c = wait_child(pid);
  c.out = slurp(dir / "out");
  c.err = slurp(dir / "err");
  return c;
}

pid_t spawn_keyport(const std::vector<std::string>& args) {
  int null_out = ::open("/dev/null", O_WRONLY);
  pid_t pid = spawn(args, null_out, null_out);
  ::close(null_out);
  return pid;
}

Child wait_child(pid_t pid) {
  Child c;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      throw std::runtime_error("waitpid failed");
    }
  }
  if (WIFEXITED(status)) {
    c.rc = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    c.rc = 128 + WTERMSIG(status);
    c.killed = WTERMSIG(status) == SIGKILL;
  }
  return c;
}

}  // namespace keyport::test
