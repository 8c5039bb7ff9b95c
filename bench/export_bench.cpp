// SPDX-License-Identifier: Apache-2.0
// Export throughput: keyport's export (transfer::export_key + the .byok text) against the floor,
// the same C_GenerateKey / C_WrapKey x2 / C_DestroyObject calls issued raw in the same process, on
// SoftHSM2 and on NSS softoken (a fresh database made with certutil; skipped with a note when
// NSS or certutil is missing, --no-nss to skip); and the hand-made pkcs11-tool + openssl CLI route
// on SoftHSM (bench/handmade_route.sh).
//
//   keyport_bench_export [--iterations N] [--rounds R] [--handmade N] [--no-nss]
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <fstream>

#include "bench/bench_util.h"
#include "bench/raw_floor.h"
#include "byok/kid.h"
#include "byok/public_key.h"
#include "core/ossl.h"
#include "pkcs11/keygen.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "transfer/export.h"

using namespace keyport;

namespace {

using bench::must;

std::string write_pem(EVP_PKEY* k, const std::filesystem::path& path) {
  ossl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "w"));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), k) != 1)
    bench::die("write KEK PEM");
  return path.string();
}

// keyport's exports against the raw floor on one token, one row per key type; returns the
// seconds per AES-256 export.
double bench_token(const char* what, const p11::Session& session, const p11::SlotInfo& slot,
                   EVP_PKEY* kek, int rounds, int iterations) {
  unsigned char* der = nullptr;
  int der_len = i2d_PUBKEY(kek, &der);
  auto kek_pub =
      must(byok::PublicKey::from_spki_der(std::span<const std::uint8_t>(der, der_len)), "KEK");
  OPENSSL_free(der);
  auto caps = must(p11::probe_wrap_capabilities(session, *slot.token), "probe");
  if (!caps.kwp)
    bench::die(std::string(what) + ": no proven RFC 5649 mechanism");
  double keyport_aes_seconds = 0;
  auto session_kek = must(transfer::SessionKek::import(session, kek_pub), "import KEK");
  auto raw_kek =
      must(p11::import_rsa_public_key(session, kek_pub.rsa_modulus(), kek_pub.rsa_exponent()),
           "raw KEK");
  auto kid = must(
      byok::parse_kid("https://contoso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef"),
      "kid");
  auto mhsm_kid = must(byok::parse_kid("https://contoso.managedhsm.azure.net/keys/KEK/"
                                       "0123456789abcdef0123456789abcdef"),
                       "kid");
  transfer::ExportOptions eo;
  eo.generator = transfer::generator_for(*slot.token);
  bench::RawExporter raw{session.module().functions(), session.handle(), raw_kek.get(), {}};
  raw.kwp_mechanism = *caps.kwp;
  std::printf("keyport export benchmark: %s (%s), KEK RSA-3072, %d rounds x %d exports, medians\n",
              what, session.module().description().c_str(), rounds, iterations);
  std::printf("%-10s %16s %16s %10s\n", "target", "keyport exp/s", "floor exp/s", "ratio");
  for (const char* type : {"ec-p256", "rsa-2048", "aes-256"}) {
    p11::KeyGenRequest req;
    req.spec = must(parse_key_spec(type), "spec");
    req.label = std::string("bench-") + type;
    req.token_object = std::string(type) == "aes-256";  // the hand-made route needs a token object
    auto key = must(p11::generate_portable_key(session, req), "keygen");
    bool aes = req.spec.family == KeyFamily::kAes;
    std::size_t sink = 0;
    auto pair = bench::alternate(
        rounds, iterations,
        [&] {
          auto r = transfer::export_key(
              session, caps, key, session_kek, aes ? mhsm_kid : kid,
              aes ? byok::TargetKind::kManagedHsm : byok::TargetKind::kKeyVault, eo);
          if (!r)
            bench::die(r.error().describe());
          sink += r->file.to_json().size();
        },
        [&] {
          raw.run(key.handle);
          sink += raw.out.size();
        });
    if (sink == 0)
      bench::die("nothing exported");
    std::printf("%-10s %16.0f %16.0f %10.3f\n", type, 1 / pair.a, 1 / pair.b, pair.a / pair.b);
    if (aes)
      keyport_aes_seconds = pair.a;
  }
  return keyport_aes_seconds;
}

// NSS softoken on a fresh database in `dir` (certutil -N); false with a note when NSS or certutil
// is missing.
bool bench_nss(const std::filesystem::path& dir, EVP_PKEY* kek, int rounds, int iterations) {
  const std::string nss = "/usr/lib/x86_64-linux-gnu/libsoftokn3.so";
  const auto db = dir / "nssdb";
  std::filesystem::create_directories(db);
  std::ofstream(dir / "nss-pw") << "bench-pin-5531\n";
  const std::string make =
      "certutil -N -d sql:" + db.string() + " -f " + (dir / "nss-pw").string() + " >/dev/null 2>&1";
  if (!std::filesystem::exists(nss) || std::system(make.c_str()) != 0) {
    std::printf("NSS softoken: skipped (needs %s and certutil: apt-get install libnss3-tools)\n",
                nss.c_str());
    return false;
  }
  p11::ModuleOptions mo;
  mo.init_args =
      "configdir='sql:" + db.string() + "' certPrefix='' keyPrefix='' secmod='secmod.db' flags=";
  auto module = must(p11::Module::load(nss, mo), "load NSS softoken");
  p11::Uri uri;
  uri.token = "NSS Certificate DB";
  auto slot = must(p11::find_token(*module, uri), "find NSS token");
  auto session = must(p11::Session::open(module, slot.id), "open NSS session");
  if (!session.login(SecretBytes::from_string("bench-pin-5531")))
    bench::die("NSS login");
  bench_token("NSS softoken", session, slot, kek, rounds, iterations);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 200, rounds = 7, handmade = 10;
  bool nss = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--no-nss"))
      nss = false;
    if (i + 1 >= argc)
      continue;
    if (!std::strcmp(argv[i], "--iterations"))
      iterations = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds"))
      rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--handmade"))
      handmade = std::atoi(argv[i + 1]);
  }
  auto dir = std::filesystem::path(KEYPORT_BINARY_DIR) / "bench-tmp" /
             ("export-" + std::to_string(::getpid()));
  bench::make_token_folder(dir, "bench:1111:2222");
  auto module = must(p11::Module::load(p11::Module::default_path()), "load module");
  p11::Uri uri;
  uri.token = "bench";
  auto slot = must(p11::find_token(*module, uri), "find token");
  auto session = must(p11::Session::open(module, slot.id), "open session");
  if (!session.login(SecretBytes::from_string("2222")))
    bench::die("login");

  ossl::UniquePtr<EVP_PKEY> kek(EVP_RSA_gen(3072));
  const double keyport_aes_seconds =
      bench_token("SoftHSM2", session, slot, kek.get(), rounds, iterations);
  if (nss)
    bench_nss(dir, kek.get(), rounds, iterations);

  if (handmade > 0) {
    // The hand-made route for an AES-256 target (the only kind it can wrap at all).
    auto key = must(p11::find_key(session, "bench-aes-256"), "find AES");
    std::string kek_pem = write_pem(kek.get(), dir / "kek.pem");
    std::ofstream(dir / "pin") << "2222";
    std::string cmd = std::string(KEYPORT_SOURCE_DIR) + "/bench/handmade_route.sh " +
                      module->path() + " bench " + (dir / "pin").string() + " " + kek_pem + " " +
                      hex_encode(key.id) + " " + (dir / "handmade").string() + " " +
                      std::to_string(handmade);
    (void)session.close();  // pkcs11-tool runs in other processes on the same token folder
    double t0 = bench::now_seconds();
    if (std::system(cmd.c_str()) != 0)
      bench::die("hand-made route failed: " + cmd);
    double per_key = (bench::now_seconds() - t0) / handmade;
    std::printf(
        "hand-made route (pkcs11-tool + openssl CLI, AES-256 target only): %.1f ms/key, %.0fx "
        "keyport's "
        "%.3f ms/key\n",
        per_key * 1e3, per_key / keyport_aes_seconds, keyport_aes_seconds * 1e3);
    std::printf(
        "  it cannot wrap RSA or EC keys (pkcs11-tool 0.23 wraps secret keys only) and writes the\n"
        "  ephemeral AES key to disk in clear (its OAEP C_WrapKey fails with CKR_ARGUMENTS_BAD)\n");
  }
  std::filesystem::remove_all(dir);
  return 0;
}
