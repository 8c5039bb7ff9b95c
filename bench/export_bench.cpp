// SPDX-License-Identifier: Apache-2.0
// Export throughput on SoftHSM2: keyport's export (transfer::export_key + the .byok text) against
// the floor, the same C_GenerateKey / C_WrapKey x2 / C_DestroyObject calls issued raw in the same
// process; and the hand-made pkcs11-tool + openssl CLI route (bench/handmade_route.sh).
//
//   keyport_bench_export [--iterations N] [--rounds R] [--handmade N]
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

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r)
    bench::die(std::string(what) + ": " + r.error().describe());
  return std::move(*r);
}

std::string write_pem(EVP_PKEY* k, const std::filesystem::path& path) {
  ossl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "w"));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), k) != 1)
    bench::die("write KEK PEM");
  return path.string();
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 200, rounds = 7, handmade = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
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
  unsigned char* der = nullptr;
  int der_len = i2d_PUBKEY(kek.get(), &der);
  auto kek_pub =
      must(byok::PublicKey::from_spki_der(std::span<const std::uint8_t>(der, der_len)), "KEK");
  OPENSSL_free(der);
  auto caps = must(p11::probe_wrap_capabilities(session, *slot.token), "probe");
  double keyport_aes_seconds = 0;
  {
    auto session_kek = must(transfer::SessionKek::import(session, kek_pub), "import KEK");
    auto raw_kek =
        must(p11::import_rsa_public_key(session, kek_pub.rsa_modulus(), kek_pub.rsa_exponent()),
             "raw KEK");
    auto kid =
        must(byok::parse_kid(
                 "https://contoso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef"),
             "kid");
    auto mhsm_kid =
        must(byok::parse_kid(
                 "https://contoso.managedhsm.azure.net/keys/KEK/0123456789abcdef0123456789abcdef"),
             "kid");
    transfer::ExportOptions eo;
    eo.generator = transfer::generator_for(*slot.token);
    bench::RawExporter raw{module->functions(), session.handle(), raw_kek.get(), {}};

    std::printf(
        "keyport export benchmark: SoftHSM %s, KEK RSA-3072, %d rounds x %d exports, medians\n",
        slot.token->firmware().c_str(), rounds, iterations);
    std::printf("%-10s %16s %16s %10s\n", "target", "keyport exp/s", "floor exp/s", "ratio");
    for (const char* type : {"ec-p256", "rsa-2048", "aes-256"}) {
      p11::KeyGenRequest req;
      req.spec = must(parse_key_spec(type), "spec");
      req.label = std::string("bench-") + type;
      req.token_object =
          std::string(type) == "aes-256";  // the hand-made route needs a token object
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
  }  // the session objects (KEKs) go before the session closes

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
