// SPDX-License-Identifier: Apache-2.0
// The C API's cost: one export to .byok through libkeyport's C API (kp_export_byok and
// kp_byok_copy, from libkeyport.a) against the same export through the C++ libraries it wraps
// (load the KEK, parse the kid, find the key, import the KEK, transfer::export_key, the file's
// text), alternated in one process on one SoftHSM2 token, per key type. Goal (issue 20): the C API
// at most 1.05 of the C++ time.
//
//   keyport_bench_capi [--iterations N] [--rounds R]
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "byok/kek.h"
#include "byok/kid.h"
#include "core/ossl.h"
#include "keyport/keyport.h"
#include "pkcs11/keygen.h"
#include "pkcs11/locate.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "transfer/export.h"

using namespace keyport;

namespace {

using bench::must;

void must_ok(kp_status st, kp_error* err, const char* what) {
  if (st != KP_OK) {
    bench::die(std::string(what) + ": " + kp_error_message(err));
  }
}

std::string pem_of(EVP_PKEY* k) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), k);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 200;
  int rounds = 5;
  bench::int_options(argc, argv, {{"--iterations", &iterations}, {"--rounds", &rounds}});
  const auto dir = std::filesystem::path(KEYPORT_BINARY_DIR) / "bench-tmp" /
                   ("capi-" + std::to_string(::getpid()));
  bench::make_token_folder(dir, "bench:1111:2222");
  ::setenv("KEYPORT_BENCH_PIN", "2222", 1);

  // The C API's handles, and the C++ session on the same token (the same module in this process).
  kp_module* module = nullptr;
  kp_token* token = nullptr;
  kp_error* err = nullptr;
  must_ok(kp_module_open(nullptr, nullptr, &module, &err), err, "kp_module_open");
  must_ok(kp_token_open(module, "bench", "env:KEYPORT_BENCH_PIN", nullptr, nullptr, &token, &err),
          err, "kp_token_open");
  auto cxx_module = must(p11::load_module(p11::ModuleSelection{}), "load module");
  p11::Uri uri;
  uri.token = "bench";
  auto slot = must(p11::find_token(*cxx_module, uri), "find token");
  // Logged in already: the C API's token logged in, and PKCS#11 login state is per application.
  auto session = must(p11::Session::open(cxx_module, slot.id), "open session");
  auto caps = must(p11::probe_wrap_capabilities(session, *slot.token), "probe");

  ossl::UniquePtr<EVP_PKEY> kek(EVP_RSA_gen(3072));
  const std::string kek_pem = pem_of(kek.get());
  const char* kid = "https://contoso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef";
  const char* hsm_kid =
      "https://contoso.managedhsm.azure.net/keys/KEK/0123456789abcdef0123456789abcdef";
  std::printf("keyport C API benchmark: SoftHSM2, KEK RSA-3072, %d rounds x %d exports, medians\n",
              rounds, iterations);
  std::printf("%-10s %16s %16s %10s\n", "target", "C API exp/s", "C++ exp/s", "ratio");
  for (const char* type : {"ec-p256", "rsa-2048", "aes-256"}) {
    const std::string label = std::string("bench-") + type;
    must_ok(kp_key_generate(token, type, label.c_str(), nullptr, &err), err, "kp_key_generate");
    const char* this_kid = std::strcmp(type, "aes-256") == 0 ? hsm_kid : kid;
    std::vector<std::uint8_t> buf(16384);
    std::size_t capi_bytes = 0;
    std::size_t cxx_bytes = 0;
    auto capi = [&] {
      kp_export_options o{};
      o.struct_size = sizeof o;
      o.key = label.c_str();
      o.kek = reinterpret_cast<const std::uint8_t*>(kek_pem.data());
      o.kek_len = kek_pem.size();
      o.kid = this_kid;
      kp_byok* b = nullptr;
      must_ok(kp_export_byok(token, &o, &b, &err), err, "kp_export_byok");
      std::size_t len = 0;
      must_ok(kp_byok_copy(b, buf.data(), buf.size(), &len, &err), err, "kp_byok_copy");
      capi_bytes = len;
      kp_byok_free(b);
    };
    auto cxx = [&] {
      auto k = must(byok::load_kek(as_bytes(kek_pem), "KEK"), "load KEK");
      auto id = must(byok::parse_kid(this_kid), "kid");
      std::vector<std::string> warnings;
      auto target = must(transfer::resolve_target(id, std::nullopt, warnings), "target");
      auto key = must(p11::find_key(session, label), "find key");
      auto session_kek = must(transfer::SessionKek::import(session, k.key), "import KEK");
      transfer::ExportOptions eo;
      eo.generator = transfer::generator_for(*slot.token);
      auto r =
          must(transfer::export_key(session, caps, key, session_kek, id, target, eo), "export");
      const std::string text = r.file.to_json();
      std::memcpy(buf.data(), text.data(), text.size());
      cxx_bytes = text.size();
    };
    const bench::Pair t = bench::alternate(rounds, iterations, capi, cxx);
    if (capi_bytes != cxx_bytes) {
      bench::die("the two exports made files of different sizes");
    }
    std::printf("%-10s %16.0f %16.0f %10.3f\n", type, 1.0 / t.a, 1.0 / t.b, t.a / t.b);
  }
  std::printf("ratio: C API time / C++ time per export (goal <= 1.05)\n");
  kp_token_close(token);
  kp_module_close(module);
  std::filesystem::remove_all(dir);
  return 0;
}
