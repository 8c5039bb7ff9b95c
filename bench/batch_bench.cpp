// SPDX-License-Identifier: Apache-2.0
// Batch export of N EC P-256 token keys (default 1000): keys per second with --jobs 1 and 2
// (selection by label glob as `--select 'pkcs11:object=bulk-*;type=private'` does it, then
// transfer::run_batch, files written and
// published with the same guarantees as the CLI), against two floors measured in the same run, and
// against the loop users would write without batch support: one `keyport byok export` process per
// key.
//
// Both floors find the keys with raw calls (C_FindObjects over the private keys, CKA_LABEL of each,
// fnmatch) and issue the raw C_GenerateKey / C_WrapKey x2 / C_DestroyObject calls per key
// (bench/raw_floor.h). "floor, durable" then writes each output with open/write/close and makes
// them durable with one syncfs(2) at the end: the least any tool that reports success only for
// files on disk must do. "floor, no sync" skips the sync and is printed for reference.
//
//   keyport_bench_batch [--keys N] [--loop M]   (the loop runs M keys and is scaled to N)
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fcntl.h>
#include <fnmatch.h>
#include <unistd.h>

#include <cstring>

#include "bench/bench_util.h"
#include "bench/raw_floor.h"
#include "byok/public_key.h"
#include "core/file_io.h"
#include "core/ossl.h"
#include "pkcs11/keygen.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "transfer/batch.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

using bench::must;

// Raw selection: every private key's handle and label, kept when the label matches `glob`.
std::vector<CK_OBJECT_HANDLE> raw_select(const CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s,
                                         const char* glob) {
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}};
  if (f->C_FindObjectsInit(s, t, 1) != CKR_OK)
    bench::die("raw C_FindObjectsInit");
  std::vector<CK_OBJECT_HANDLE> all;
  CK_OBJECT_HANDLE buf[256];
  CK_ULONG got = 0;
  do {
    if (f->C_FindObjects(s, buf, 256, &got) != CKR_OK)
      bench::die("raw C_FindObjects");
    all.insert(all.end(), buf, buf + got);
  } while (got == 256);
  f->C_FindObjectsFinal(s);
  std::vector<CK_OBJECT_HANDLE> out;
  for (CK_OBJECT_HANDLE h : all) {
    char label[256];
    CK_ATTRIBUTE a{CKA_LABEL, label, sizeof label - 1};
    if (f->C_GetAttributeValue(s, h, &a, 1) != CKR_OK)
      bench::die("raw C_GetAttributeValue");
    label[a.ulValueLen] = 0;
    if (::fnmatch(glob, label, 0) == 0)
      out.push_back(h);
  }
  return out;
}

// The floor's output: the bytes written with open/write/close.
void raw_write(const fs::path& out, const std::vector<std::uint8_t>& bytes) {
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
    bench::die("raw write " + out.string());
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  int n = 1000, loop = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--keys"))
      n = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--loop"))
      loop = std::atoi(argv[i + 1]);
  }
  fs::path dir =
      fs::path(KEYPORT_BINARY_DIR) / "bench-tmp" / ("batch-" + std::to_string(::getpid()));
  bench::make_token_folder(dir / "hsm", "bench:1111:2222");
  auto module = must(p11::Module::load(p11::Module::default_path()), "module");
  p11::Uri uri;
  uri.token = "bench";
  auto slot = must(p11::find_token(*module, uri), "token");
  auto session = must(p11::Session::open(module, slot.id), "session");
  if (!session.login(SecretBytes::from_string("2222")))
    bench::die("login");

  std::printf("generating %d EC P-256 token keys...\n", n);
  double t0 = bench::now_seconds();
  std::vector<p11::KeyObject> keys;
  for (int i = 0; i < n; ++i) {
    p11::KeyGenRequest r;
    r.spec = *parse_key_spec("ec-p256");
    r.label = "bulk-" + std::to_string(i);
    keys.push_back(must(p11::generate_portable_key(session, r), "keygen"));
  }
  std::printf("  %.1f s\n", bench::now_seconds() - t0);

  ossl::UniquePtr<EVP_PKEY> kek(EVP_RSA_gen(3072));
  {
    ossl::UniquePtr<BIO> bio(BIO_new_file((dir / "kek.pem").c_str(), "w"));
    PEM_write_bio_PUBKEY(bio.get(), kek.get());
  }
  std::vector<std::string> warnings;
  std::vector<transfer::Destination> dests;
  dests.push_back(must(
      transfer::load_destination(
          (dir / "kek.pem").string(),
          std::string("https://contoso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef"),
          std::nullopt, warnings),
      "destination"));
  auto caps = must(p11::probe_wrap_capabilities(session, *slot.token), "probe");

  auto run = [&](int jobs) {
    fs::path out = dir / ("out-j" + std::to_string(jobs));
    fs::remove_all(out);
    fs::create_directories(out);
    double start = bench::now_seconds();
    // What the CLI does for --select 'pkcs11:object=bulk-*;type=private': list the private keys
    // once (the floor, too, searches the private keys), then run the batch.
    auto all = must(p11::list_keys(session, false, CKO_PRIVATE_KEY), "list");
    auto selected = transfer::select_keys(all, "bulk-*");
    std::vector<transfer::BatchItem> items;
    for (const auto& k : selected)
      items.push_back({k, 0, WrapAlg::kRsaAesKeyWrap, out / (k.label + ".byok")});
    transfer::BatchOptions o;
    o.jobs = jobs;
    o.generator = transfer::generator_for(*slot.token);
    auto results = must(transfer::run_batch(module, slot.id, caps, dests, items, o), "batch");
    double secs = bench::now_seconds() - start;
    for (const auto& r : results) {
      if (r.outcome != transfer::ItemOutcome::kWritten)
        bench::die("batch item failed: " + r.error->describe());
    }
    return secs;
  };
  auto raw_kek = must(p11::import_rsa_public_key(session, dests[0].kek.key.rsa_modulus(),
                                                 dests[0].kek.key.rsa_exponent()),
                      "raw KEK");
  auto floor = [&](bool durable) {
    fs::path out = dir / "out-floor";
    fs::remove_all(out);
    fs::create_directories(out);
    bench::RawExporter raw{module->functions(), session.handle(), raw_kek.get(), {}};
    double start = bench::now_seconds();
    auto handles = raw_select(module->functions(), session.handle(), "bulk-*");
    std::size_t i = 0;
    for (CK_OBJECT_HANDLE h : handles) {
      raw.run(h);
      raw_write(out / ("k" + std::to_string(i++) + ".bin"), raw.out);
    }
    if (durable) {
      int fd = ::open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0 || ::syncfs(fd) != 0)
        bench::die("syncfs");
      ::close(fd);
    }
    if (i != keys.size())
      bench::die("raw selection found " + std::to_string(i) + " keys");
    return bench::now_seconds() - start;
  };

  // Alternate the runs and keep the best of three of each (the least disturbed).
  double j1 = 1e9, j2 = 1e9, fl = 1e9, fl_nosync = 1e9;
  for (int round = 0; round < 3; ++round) {
    fl_nosync = std::min(fl_nosync, floor(false));
    fl = std::min(fl, floor(true));
    j1 = std::min(j1, run(1));
    j2 = std::min(j2, run(2));
  }
  (void)raw_kek.destroy();

  // The loop: one keyport process per key, as a shell script would do without batch support.
  {
    std::FILE* pin = std::fopen((dir / "pin").c_str(), "w");
    std::fputs("2222", pin);
    std::fclose(pin);
  }
  fs::create_directories(dir / "out-loop");
  std::string cmd = "cd " + dir.string() + " && for i in $(seq 0 " + std::to_string(loop - 1) +
                    "); do " + KEYPORT_CLI +
                    std::string(
                        " -q byok export --token bench --key bulk-$i --kek kek.pem --kid "
                        "https://contoso.vault.azure.net/keys/KEK/"
                        "0123456789abcdef0123456789abcdef -o out-loop/bulk-$i.byok "
                        "--pin-source file:pin >/dev/null || exit 1; done");
  (void)session.close();
  double ls = bench::now_seconds();
  if (std::system(cmd.c_str()) != 0)
    bench::die("loop failed");
  double loop_per_key = (bench::now_seconds() - ls) / loop;

  std::printf("batch export of %d EC P-256 keys under an RSA-3072 KEK (SoftHSM %s, best of 3)\n", n,
              slot.token->firmware().c_str());
  std::printf("%-32s %10s %10s %14s %14s\n", "", "seconds", "keys/s", "vs floor", "loop / this");
  std::printf("%-32s %10.2f %10.0f %14.2f %14s\n", "floor, no sync (reference)", fl_nosync,
              n / fl_nosync, fl_nosync / fl, "");
  std::printf("%-32s %10.2f %10.0f %14s %14s\n", "floor, durable (raw + syncfs)", fl, n / fl,
              "1.00", "");
  std::printf("%-32s %10.2f %10.0f %14.2f %14.1f\n", "keyport batch --jobs 1", j1, n / j1, j1 / fl,
              loop_per_key * n / j1);
  std::printf("%-32s %10.2f %10.0f %14.2f %14.1f\n", "keyport batch --jobs 2", j2, n / j2, j2 / fl,
              loop_per_key * n / j2);
  std::printf("%-32s %10.2f %10.0f %14s %14s\n", "process per key (measured on ", loop_per_key * n,
              1 / loop_per_key, "", "");
  std::printf("  %d keys, scaled to %d)\n", loop, n);
  fs::remove_all(dir);
  return 0;
}
