// SPDX-License-Identifier: Apache-2.0
// keyport migrate, measured (issue 6):
//
// 1. Re-wraps per second with migrate::run_migration (one transaction per 500 items, --jobs 1)
//    against a floor measured in the same run: the same operations issued raw, one by one,
//    and the new wrapping stored with raw sqlite3 calls (prepared INSERT, one transaction per 500
//    items, WAL, synchronous=FULL, the keyring's own schema) in a copy of the same keyring:
//    - "RSA-OAEP under a vault KEK": old and new KEK are RSA-2048 keys of two simulated vaults
//      (attached to one SoftHSM token), alg RSA-OAEP; the floor calls Vault::unwrap_key and
//      Vault::wrap_key directly. A second reference, "crypto only", issues C_Decrypt
//      (CKM_RSA_PKCS_OAEP) on the vault's token object and EVP_PKEY_encrypt with the new public
//      key, and stores nothing: it shows what the vault's own bookkeeping costs.
//    - "AES key wrap under a primary key": data keys wrapped (RFC 5649) by one primary key,
//      re-wrapped under the next epoch's; the floor is EVP AES-256-wrap-pad decrypt + encrypt.
//    Rounds alternate floor and keyport on fresh copies; medians are printed. Goal: ratio >= 0.8.
//    Also printed: the range of the per-round ratios and the ratio of CPU time per item, which
//    show how much of a low ratio is the machine's load (2 shared cores) rather than keyport.
// 2. Peak memory (VmHWM) of `run` over 100,000 and 1,000,000 items, each measured in a freshly
//    exec'd child process; goal: ratio at most 1.2.
// 3. KEK rotation time, flat (N data keys wrapped directly by a token KEK: N re-wraps inside the
//    token) versus hierarchical (the same N data keys under one primary key, which alone is wrapped
//    by the KEK: one re-wrap), N = 100,000.
//
//   keyport_bench_migrate [--aes-items N] [--vault-items N] [--rounds R] [--mem-small N]
//                         [--mem-large N] [--rotation N]
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>

#include "bench/bench_util.h"
#include "core/encoding.h"
#include "core/ossl.h"
#include "core/random.h"
#include "migrate/kek.h"
#include "migrate/keyring.h"
#include "migrate/migration.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/template.h"
#include "pkcs11/token.h"
#include "vault/vault.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

using bench::must;

void must_ok(const Status& s, const char* what) {
  if (!s)
    bench::die(std::string(what) + ": " + s.error().describe());
}

std::string key_id(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "dk-%09zu", i);
  return buf;
}

long vm_hwm_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stol(line.substr(6));
  }
  return -1;
}

std::unique_ptr<migrate::Keyring> open_keyring(const fs::path& p, bool create) {
  migrate::Keyring::Options o;
  o.create = create;
  return must(migrate::Keyring::open(p, o), "open keyring");
}

// Fills a new keyring at `p` with n data keys wrapped by `wrap` and recorded under `kek`.
void fill(const fs::path& p, const migrate::KekId& kek, std::string_view alg, std::size_t n,
          const std::function<Bytes(const SecretBytes&)>& wrap) {
  fs::remove(p);
  auto kr = open_keyring(p, true);
  std::vector<std::pair<migrate::KeyRecord, migrate::WrappingRecord>> chunk;
  for (std::size_t i = 0; i < n; ++i) {
    migrate::KeyRecord k;
    k.key_id = key_id(i);
    migrate::WrappingRecord w;
    w.key_id = k.key_id;
    w.kek = kek;
    w.alg = std::string(alg);
    w.wrapped = wrap(random_secret(32));
    chunk.emplace_back(std::move(k), std::move(w));
    if (chunk.size() == 5000 || i + 1 == n) {
      must_ok(kr->add_keys(chunk), "fill keyring");
      chunk.clear();
    }
  }
}

// --- the raw floor: SQLite ---------------------------------------------------------------------

struct RawDb {
  sqlite3* db = nullptr;
  sqlite3_stmt* page = nullptr;
  sqlite3_stmt* insert = nullptr;

  explicit RawDb(const fs::path& p) {
    if (sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
      bench::die("raw sqlite open");
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL");
    if (sqlite3_prepare_v2(db,
                           "SELECT key_id, wrapped FROM wrappings WHERE kek_id = ?1 AND "
                           "kek_version = ?2 AND key_id > ?3 ORDER BY key_id LIMIT 500",
                           -1, &page, nullptr) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO wrappings(key_id, kek_id, kek_version, alg, wrapped, "
                           "created, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active')",
                           -1, &insert, nullptr) != SQLITE_OK)
      bench::die(std::string("raw sqlite prepare: ") + sqlite3_errmsg(db));
  }
  ~RawDb() {
    sqlite3_finalize(page);
    sqlite3_finalize(insert);
    sqlite3_close(db);
  }
  void exec(const char* sql) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
      bench::die(std::string("raw sqlite: ") + sqlite3_errmsg(db));
  }
};

// Reads every wrapping under `from` page by page, re-wraps it with `op` and stores the result under
// `to`, one transaction per page. Returns the number of items.
std::size_t raw_migrate(const fs::path& p, const migrate::KekId& from, const migrate::KekId& to,
                        const std::string& alg,
                        const std::function<Bytes(const std::uint8_t*, std::size_t)>& op) {
  RawDb r(p);
  std::string after;
  std::size_t n = 0;
  std::vector<std::pair<std::string, Bytes>> out;
  for (;;) {
    sqlite3_reset(r.page);
    sqlite3_bind_text(r.page, 1, from.id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(r.page, 2, from.version.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(r.page, 3, after.c_str(), -1, SQLITE_TRANSIENT);
    out.clear();
    while (sqlite3_step(r.page) == SQLITE_ROW) {
      std::string id(reinterpret_cast<const char*>(sqlite3_column_text(r.page, 0)));
      const auto* w = static_cast<const std::uint8_t*>(sqlite3_column_blob(r.page, 1));
      out.emplace_back(std::move(id),
                       op(w, static_cast<std::size_t>(sqlite3_column_bytes(r.page, 1))));
    }
    if (out.empty())
      return n;
    after = out.back().first;
    r.exec("BEGIN IMMEDIATE");
    const sqlite3_int64 t = static_cast<sqlite3_int64>(::time(nullptr));
    for (const auto& [id, wrapped] : out) {
      sqlite3_reset(r.insert);
      sqlite3_bind_text(r.insert, 1, id.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(r.insert, 2, to.id.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(r.insert, 3, to.version.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(r.insert, 4, alg.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_blob(r.insert, 5, wrapped.data(), static_cast<int>(wrapped.size()),
                        SQLITE_STATIC);
      sqlite3_bind_int64(r.insert, 6, t);
      if (sqlite3_step(r.insert) != SQLITE_DONE)
        bench::die(std::string("raw insert: ") + sqlite3_errmsg(r.db));
      ++n;
    }
    r.exec("COMMIT");
  }
}

// --- the raw floor: crypto ---------------------------------------------------------------------

Bytes evp_kwp(const Bytes& kek, const std::uint8_t* in, std::size_t len, bool encrypt) {
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_wrap_pad(), nullptr, kek.data(), nullptr,
                        encrypt ? 1 : 0) != 1)
    bench::die("EVP wrap_pad init");
  Bytes out(len + 16);
  int n1 = 0, n2 = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data(), &n1, in, static_cast<int>(len)) != 1 ||
      EVP_CipherFinal_ex(ctx.get(), out.data() + n1, &n2) != 1)
    bench::die("EVP wrap_pad");
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

Bytes evp_oaep_sha1_encrypt(EVP_PKEY* pub, const std::uint8_t* in, std::size_t len) {
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(pub, nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha1()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) != 1)
    bench::die("EVP OAEP init");
  std::size_t n = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &n, in, len) != 1)
    bench::die("EVP OAEP size");
  Bytes out(n);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &n, in, len) != 1)
    bench::die("EVP OAEP encrypt");
  out.resize(n);
  return out;
}

ossl::UniquePtr<EVP_PKEY> rsa_public_of(const Json& bundle) {
  auto n = must(base64url_decode(bundle["key"]["n"].get<std::string>()), "n");
  auto e = must(base64url_decode(bundle["key"]["e"].get<std::string>()), "e");
  ossl::UniquePtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  ossl::UniquePtr<BIGNUM> bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  ossl::UniquePtr<BIGNUM> bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  OSSL_PARAM_BLD_push_BN(bld.get(), "n", bn_n.get());
  OSSL_PARAM_BLD_push_BN(bld.get(), "e", bn_e.get());
  ossl::UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    bench::die("RSA public key from JWK");
  return ossl::UniquePtr<EVP_PKEY>(key);
}

// The private key object of a vault key version (label kv:<name>:<version>).
CK_OBJECT_HANDLE vault_object(const p11::Session& s, const std::string& label) {
  const CK_FUNCTION_LIST* f = s.module().functions();
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                      {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  CK_ULONG got = 0;
  if (f->C_FindObjectsInit(s.handle(), t, 2) != CKR_OK ||
      f->C_FindObjects(s.handle(), &h, 1, &got) != CKR_OK ||
      f->C_FindObjectsFinal(s.handle()) != CKR_OK || got != 1)
    bench::die("find vault object " + label);
  return h;
}

// --- measuring -----------------------------------------------------------------------------------

// One measured variant: re-wraps per second of each round, and the process CPU time per item
// (user + system, every thread: SoftHSM and SQLite run in this process), which a loaded machine
// disturbs far less than the wall clock.
struct Series {
  std::vector<double> rate, cpu;
  void push_back(std::pair<double, double> sample) {
    rate.push_back(sample.first);
    cpu.push_back(sample.second);
  }
  bool empty() const { return rate.empty(); }
};

struct Rates {
  Series keyport, floor, keyport_jobs2, crypto;
};

double rate(std::size_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Runs fn (which returns the number of items) and returns {items per second, CPU s per item}.
std::pair<double, double> timed(const std::function<std::size_t()>& fn) {
  const double c0 = cpu_seconds();
  const double t0 = bench::now_seconds();
  std::size_t n = fn();
  const double s = bench::now_seconds() - t0;
  const double c = cpu_seconds() - c0;
  return {rate(n, s), n > 0 ? c / static_cast<double>(n) : 0};
}

std::size_t keyport_run(const fs::path& p, const migrate::KeyEncryptionKey& from,
                        const migrate::KeyEncryptionKey& to, int jobs) {
  auto kr = open_keyring(p, false);
  migrate::RunOptions ro;
  ro.jobs = jobs;
  auto r = must(migrate::run_migration(*kr, from, to, ro), "run_migration");
  if (r.failed != 0 || r.rewrapped != r.total)
    bench::die("run_migration did not re-wrap every item");
  return static_cast<std::size_t>(r.rewrapped);
}

// The goal ratio is keyport's median rate over the floor's median rate. Beside it: the range of
// the per-round ratios (floor and keyport run back to back in each round, under about the same
// load) and the ratio of CPU time per item, floor over keyport.
void print_rates(const char* name, const Rates& r) {
  const double f = bench::median(r.floor.rate);
  const double f_cpu = bench::median(r.floor.cpu);
  std::printf("%s\n", name);
  std::printf("  floor (raw ops + raw sqlite)   %10.0f re-wraps/s\n", f);
  auto line = [&](const char* what, const Series& k, bool goal) {
    const double m = bench::median(k.rate);
    double lo = 0, hi = 0;
    for (std::size_t i = 0; i < k.rate.size() && i < r.floor.rate.size(); ++i) {
      const double q = r.floor.rate[i] > 0 ? k.rate[i] / r.floor.rate[i] : 0;
      lo = i == 0 ? q : std::min(lo, q);
      hi = i == 0 ? q : std::max(hi, q);
    }
    const double k_cpu = bench::median(k.cpu);
    std::printf("  %-30s %10.0f re-wraps/s   ratio %.2f%s (rounds %.2f-%.2f; CPU ratio %.2f)\n",
                what, m, f > 0 ? m / f : 0, goal ? " (goal >= 0.80)" : "", lo, hi,
                k_cpu > 0 ? f_cpu / k_cpu : 0);
  };
  line("keyport migrate run --jobs 1", r.keyport, true);
  if (!r.keyport_jobs2.empty())
    line("keyport migrate run --jobs 2", r.keyport_jobs2, false);
  if (!r.crypto.empty())
    std::printf("  crypto only (reference)        %10.0f re-wraps/s\n",
                bench::median(r.crypto.rate));
}

// Child mode: runs one migration between two host AES KEKs and prints VmHWM (KiB).
int child_memory(const char* db, const char* keyfile) {
  std::ifstream kf(keyfile);
  std::string a_hex, b_hex;
  kf >> a_hex >> b_hex;
  auto a = must(migrate::SecretKek::create("keyring:primary/1",
                                           SecretBytes(must(hex_decode(a_hex), "key a"))),
                "kek a");
  auto b = must(migrate::SecretKek::create("keyring:primary/2",
                                           SecretBytes(must(hex_decode(b_hex), "key b"))),
                "kek b");
  const long before = vm_hwm_kib();
  std::size_t n = keyport_run(db, *a, *b, 1);
  std::printf("%ld %ld %zu\n", before, vm_hwm_kib(), n);
  return 0;
}

long spawn_memory_child(const fs::path& db, const fs::path& keyfile, long* out_before) {
  int fds[2];
  if (::pipe(fds) != 0)
    bench::die("pipe");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::execl("/proc/self/exe", "keyport_bench_migrate", "--child-memory", db.c_str(),
            keyfile.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    bench::die("memory child failed: " + out);
  long before = 0, peak = 0;
  std::size_t items = 0;
  if (std::sscanf(out.c_str(), "%ld %ld %zu", &before, &peak, &items) != 3)
    bench::die("memory child output: " + out);
  *out_before = before;
  return peak;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && !std::strcmp(argv[1], "--child-memory"))
    return child_memory(argv[2], argv[3]);
  std::size_t aes_items = 20000, vault_items = 1000, mem_small = 100000, mem_large = 1000000,
              rotation = 100000;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const std::size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--aes-items")
      aes_items = v;
    else if (a == "--vault-items")
      vault_items = v;
    else if (a == "--rounds")
      rounds = static_cast<int>(v);
    else if (a == "--mem-small")
      mem_small = v;
    else if (a == "--mem-large")
      mem_large = v;
    else if (a == "--rotation")
      rotation = v;
    else
      bench::die("unknown option " + a);
  }
  const fs::path dir =
      fs::path(KEYPORT_BINARY_DIR) / "bench-tmp" / ("migrate-" + std::to_string(::getpid()));
  bench::make_token_folder(dir / "tokens", "bench:1111:2222 vault:3333:4444");
  auto module = must(p11::Module::load(p11::Module::default_path()), "load module");
  const SecretBytes pin = SecretBytes::from_string("2222");
  p11::Uri bench_uri, vault_uri;
  bench_uri.token = "bench";
  vault_uri.token = "vault";
  auto bench_slot = must(p11::find_token(*module, bench_uri), "find bench token");
  auto vault_slot = must(p11::find_token(*module, vault_uri), "find vault token");
  auto bench_session = must(p11::Session::open(module, bench_slot.id), "open session");
  must_ok(bench_session.login(pin), "login bench");
  auto vault_session = must(p11::Session::open(module, vault_slot.id), "open vault session");
  must_ok(vault_session.login(SecretBytes::from_string("4444")), "login vault");
  std::printf("keyport migrate benchmark (%s %s; %d rounds)\n\n",
              bench_slot.token->manufacturer.c_str(), bench_slot.token->firmware().c_str(), rounds);
  std::fflush(stdout);

  // --- 1a. AES key wrap under a primary key ---
  {
    SecretBytes a_key = random_secret(32), b_key = random_secret(32);
    const Bytes a_raw(a_key.reveal(SecretAccess::unsafe()).begin(),
                      a_key.reveal(SecretAccess::unsafe()).end());
    const Bytes b_raw(b_key.reveal(SecretAccess::unsafe()).begin(),
                      b_key.reveal(SecretAccess::unsafe()).end());
    auto a = must(migrate::SecretKek::create("keyring:primary/1", a_key.clone()), "kek a");
    auto b = must(migrate::SecretKek::create("keyring:primary/2", b_key.clone()), "kek b");
    const fs::path base = dir / "aes-base.db";
    fill(base, a->id(), "AES-KWP", aes_items,
         [&](const SecretBytes& k) { return must(a->wrap(k), "wrap"); });
    Rates r;
    for (int round = 0; round < rounds; ++round) {
      for (const char* which : {"floor", "keyport", "keyport2"}) {
        const fs::path copy = dir / (std::string("aes-") + which + ".db");
        fs::copy_file(base, copy, fs::copy_options::overwrite_existing);
        if (!std::strcmp(which, "floor")) {
          r.floor.push_back(timed([&] {
            return raw_migrate(copy, a->id(), b->id(), "AES-KWP",
                               [&](const std::uint8_t* w, std::size_t n) {
                                 Bytes plain = evp_kwp(a_raw, w, n, false);
                                 Bytes out = evp_kwp(b_raw, plain.data(), plain.size(), true);
                                 OPENSSL_cleanse(plain.data(), plain.size());
                                 return out;
                               });
          }));
        } else {
          const int jobs = !std::strcmp(which, "keyport") ? 1 : 2;
          (jobs == 1 ? r.keyport : r.keyport_jobs2).push_back(timed([&] {
            return keyport_run(copy, *a, *b, jobs);
          }));
        }
        fs::remove(copy);
        fs::remove(copy.string() + "-wal");
        fs::remove(copy.string() + "-shm");
      }
    }
    char title[160];
    std::snprintf(title, sizeof title,
                  "1a. AES key wrap (RFC 5649) under a primary key, %zu items per round",
                  aes_items);
    print_rates(title, r);
    std::fflush(stdout);
  }

  // --- 1b. RSA-OAEP under a vault KEK ---
  {
    vault::VaultOptions vo;
    vo.module = module;
    vo.token_label = "vault";
    vo.pin = SecretBytes::from_string("4444");
    vault::CallContext ctx{"bench"};
    std::shared_ptr<vault::Vault> src, dst;
    for (auto [name, out] : {std::pair{"src", &src}, std::pair{"dst", &dst}}) {
      vault::VaultConfig c;
      c.name = std::string("bench-") + name;
      must_ok(vault::Vault::init(dir / name, c), "vault init");
      vault::VaultOptions o;
      o.module = module;
      o.token_label = "vault";
      o.pin = vo.pin.clone();
      *out = std::shared_ptr<vault::Vault>(
          must(vault::Vault::open(dir / name, std::move(o)), "vault open"));
    }
    Json ba = must(src->create_key(ctx, "kek-a", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}),
                   "create kek-a");
    Json bb = must(dst->create_key(ctx, "kek-b", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}),
                   "create kek-b");
    auto a = must(migrate::VaultKek::open(src, "kek-a", "", "RSA-OAEP"), "vault kek a");
    auto b = must(migrate::VaultKek::open(dst, "kek-b", "", "RSA-OAEP"), "vault kek b");
    auto pub_a = rsa_public_of(ba);
    auto pub_b = rsa_public_of(bb);
    const fs::path base = dir / "vault-base.db";
    fill(base, a->id(), "RSA-OAEP", vault_items, [&](const SecretBytes& k) {
      auto v = k.reveal(SecretAccess::unsafe());
      return evp_oaep_sha1_encrypt(pub_a.get(), v.data(), v.size());
    });
    const CK_OBJECT_HANDLE a_obj = vault_object(vault_session, "kv:kek-a:" + a->version());
    const CK_FUNCTION_LIST* f = module->functions();
    Rates r;
    for (int round = 0; round < rounds; ++round) {
      for (const char* which : {"floor", "keyport", "crypto"}) {
        const fs::path copy = dir / (std::string("vault-") + which + ".db");
        fs::copy_file(base, copy, fs::copy_options::overwrite_existing);
        if (!std::strcmp(which, "floor")) {
          r.floor.push_back(timed([&] {
            return raw_migrate(
                copy, a->id(), b->id(), "RSA-OAEP", [&](const std::uint8_t* w, std::size_t n) {
                  Json un{{"alg", "RSA-OAEP"}, {"value", base64url_encode(std::span(w, n))}};
                  Json plain = must(src->unwrap_key(ctx, "kek-a", a->version(), un), "unwrap");
                  Json wr{{"alg", "RSA-OAEP"}, {"value", plain["value"]}};
                  Json out = must(dst->wrap_key(ctx, "kek-b", b->version(), wr), "wrap");
                  return must(base64url_decode(out["value"].get<std::string>()), "b64");
                });
          }));
        } else if (!std::strcmp(which, "keyport")) {
          r.keyport.push_back(timed([&] { return keyport_run(copy, *a, *b, 1); }));
        } else {
          // Crypto only: read the items once, then time the raw calls alone.
          std::vector<Bytes> items;
          {
            auto kr = open_keyring(copy, false);
            for (std::size_t i = 0; i < vault_items; ++i) {
              auto w = must(kr->find_wrapping(key_id(i), a->id()), "find");
              items.push_back(w->wrapped);
            }
          }
          r.crypto.push_back(timed([&] {
            CK_RSA_PKCS_OAEP_PARAMS p{CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, nullptr, 0};
            CK_MECHANISM m{CKM_RSA_PKCS_OAEP, &p, sizeof p};
            for (const auto& w : items) {
              std::uint8_t plain[512];
              CK_ULONG len = sizeof plain;
              if (f->C_DecryptInit(vault_session.handle(), &m, a_obj) != CKR_OK ||
                  f->C_Decrypt(vault_session.handle(), const_cast<std::uint8_t*>(w.data()),
                               static_cast<CK_ULONG>(w.size()), plain, &len) != CKR_OK)
                bench::die("raw C_Decrypt OAEP");
              Bytes out = evp_oaep_sha1_encrypt(pub_b.get(), plain, len);
              OPENSSL_cleanse(plain, sizeof plain);
            }
            return items.size();
          }));
        }
        fs::remove(copy);
        fs::remove(copy.string() + "-wal");
        fs::remove(copy.string() + "-shm");
      }
    }
    char title[160];
    std::snprintf(title, sizeof title,
                  "1b. RSA-OAEP (2048) under a vault KEK, vault to vault, %zu items per round",
                  vault_items);
    print_rates(title, r);
    std::fflush(stdout);
  }

  // --- 2. Peak memory ---
  {
    SecretBytes a_key = random_secret(32), b_key = random_secret(32);
    const fs::path keyfile = dir / "mem-keys.txt";
    {
      std::ofstream kf(keyfile);
      kf << hex_encode(a_key.reveal(SecretAccess::unsafe())) << " "
         << hex_encode(b_key.reveal(SecretAccess::unsafe())) << "\n";
    }
    auto a = must(migrate::SecretKek::create("keyring:primary/1", a_key.clone()), "kek a");
    long peaks[2] = {0, 0}, befores[2] = {0, 0};
    const std::size_t sizes[2] = {mem_small, mem_large};
    for (int i = 0; i < 2; ++i) {
      const fs::path db = dir / ("mem-" + std::to_string(sizes[i]) + ".db");
      const double t0 = bench::now_seconds();
      fill(db, a->id(), "AES-KWP", sizes[i],
           [&](const SecretBytes& k) { return must(a->wrap(k), "wrap"); });
      const double t1 = bench::now_seconds();
      peaks[i] = spawn_memory_child(db, keyfile, &befores[i]);
      std::printf(
          "2.  peak memory (VmHWM) of run over %9zu items: %7ld KiB (%ld KiB before the "
          "run; fill %.1f s, run %.1f s)\n",
          sizes[i], peaks[i], befores[i], t1 - t0, bench::now_seconds() - t1);
      std::fflush(stdout);
      fs::remove(db);
      fs::remove(db.string() + "-wal");
      fs::remove(db.string() + "-shm");
    }
    std::printf("    ratio %zu / %zu items: %.3f (goal <= 1.20)\n\n", mem_large, mem_small,
                peaks[0] > 0 ? static_cast<double>(peaks[1]) / static_cast<double>(peaks[0]) : 0);
    std::fflush(stdout);
  }

  // --- 3. KEK rotation, flat versus hierarchical ---
  {
    auto make_token_kek = [&](const std::string& label, const Bytes& value) {
      p11::Template t;
      t.object_class(CKO_SECRET_KEY)
          .key_type(CKK_AES)
          .token(true)
          .private_object(true)
          .sensitive(true)
          .extractable(false)
          .encrypt(true)
          .decrypt(true)
          .wrap(true)
          .unwrap(true)
          .label(label)
          .set_secret(CKA_VALUE, SecretBytes(value));
      must(bench_session.create_object(t), "create token KEK");
      return must(migrate::TokenKek::open(module, bench_slot.id, pin.clone(), label),
                  "open token KEK");
    };
    const Bytes a_value = random_bytes(32);
    auto a = make_token_kek("rot-old", a_value);
    auto b = make_token_kek("rot-new", random_bytes(32));
    // Flat: every data key wrapped by the token KEK (RFC 5649, by OpenSSL with its value).
    const fs::path flat = dir / "flat.db";
    fill(flat, a->id(), "AES-KWP", rotation, [&](const SecretBytes& k) {
      auto v = k.reveal(SecretAccess::unsafe());
      return evp_kwp(a_value, v.data(), v.size(), true);
    });
    // Hierarchical: the data keys under a primary key, the primary key under the token KEK.
    const fs::path tree = dir / "tree.db";
    SecretBytes primary = random_secret(32);
    auto p = must(migrate::SecretKek::create("keyring:default/1", primary.clone()), "primary");
    fill(tree, p->id(), "AES-KWP", rotation,
         [&](const SecretBytes& k) { return must(p->wrap(k), "wrap"); });
    {
      auto kr = open_keyring(tree, false);
      migrate::KeyRecord k;
      k.key_id = "default/1";
      k.kind = migrate::KeyKind::kPrimary;
      k.name = "default";
      k.epoch = 1;
      migrate::WrappingRecord w;
      w.key_id = k.key_id;
      w.kek = a->id();
      w.alg = "AES-KWP";
      w.wrapped = must(a->wrap(primary), "wrap primary");
      must_ok(kr->add_key(k, w), "add primary");
    }
    double flat_s = 0, tree_s = 0;
    std::size_t flat_n = 0, tree_n = 0;
    {
      const double t0 = bench::now_seconds();
      flat_n = keyport_run(flat, *a, *b, 1);
      flat_s = bench::now_seconds() - t0;
    }
    {
      const double t0 = bench::now_seconds();
      tree_n = keyport_run(tree, *a, *b, 1);
      tree_s = bench::now_seconds() - t0;
    }
    std::printf(
        "3.  KEK rotation over %zu data keys (token AES KEK to token AES KEK, in the "
        "token, --jobs 1):\n",
        rotation);
    std::printf("    flat:         %7zu re-wraps  %9.3f s\n", flat_n, flat_s);
    std::printf("    hierarchical: %7zu re-wrap   %9.3f s   (flat takes %.0fx as long)\n", tree_n,
                tree_s, tree_s > 0 ? flat_s / tree_s : 0);
  }
  std::fflush(stdout);
  fs::remove_all(dir);
  return 0;
}
