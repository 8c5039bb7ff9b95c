// SPDX-License-Identifier: Apache-2.0
// AES-GCM encrypt on a Managed HSM oct-HSM key over HTTPS, in one process on SoftHSM2:
//
//  - POST /keys/{name}/{version}/encrypt with A256GCM and 1 KiB of data from 4 concurrent HTTPS
//    clients (keep-alive), against the floor measured in the same run: the PKCS#11 calls an
//    encrypt makes, raw on the vault token, one after the other (C_GenerateRandom of the 12-byte
//    IV, C_EncryptInit with CKM_AES_GCM, C_Encrypt of the 1 KiB into ciphertext || tag). Goal:
//    encrypts over HTTPS >= 0.6 of the floor.
//  - GET /keys/{name} over HTTPS from the same clients: the vault's cost per request with no
//    cryptography (TLS, HTTP, JSON, the store's read, the audit row's durable commit), for scale.
//  - The encrypt request through RestApi in the process (no TLS, no socket), for scale.
//
//   keyport_bench_aes [--requests N] [--clients C] [--rounds R] [--bytes B]
//
// It prints figures and ratios; it asserts nothing.
#include <httplib.h>
#include <signal.h>

#include "bench/attached_vault.h"
#include "core/encoding.h"
#include "core/random.h"

using namespace keyport;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  int requests = 4000, clients = 4, rounds = 3, bytes = 1024;
  bench::int_options(argc, argv,
                     {{"--requests", &requests},
                      {"--clients", &clients},
                      {"--rounds", &rounds},
                      {"--bytes", &bytes}});
  ::signal(SIGPIPE, SIG_IGN);
  const fs::path dir =
      fs::path(KEYPORT_BINARY_DIR) / "bench-tmp" / ("aes-" + std::to_string(::getpid()));
  auto v = bench::start_attached_vault(dir, vault::Flavor::kManagedHsm);
  bench::HttpsClient admin(v.url, v.ca, v.token);
  Json params{{"kty", "oct-HSM"}, {"key_size", 256}};
  Json key = admin.call("POST", "/keys/aes/create", &params);
  const std::string kid = key["key"]["kid"].get<std::string>();
  const std::string version = kid.substr(kid.rfind('/') + 1);
  const std::string path = "/keys/aes/" + version + "/encrypt";

  p11::Template find;
  find.token(true).label("kv:aes:" + version);
  auto found = bench::must(v.session.find_objects(find), "find the key object");
  if (found.size() != 1) {
    bench::die("the AES key object is not in the vault token");
  }
  const CK_OBJECT_HANDLE aes = found.front();
  const CK_FUNCTION_LIST* f = v.module->functions();
  const CK_SESSION_HANDLE s = v.session.handle();
  const Bytes plaintext = random_bytes(static_cast<std::size_t>(bytes));
  const std::string body =
      dump_json(Json{{"alg", "A256GCM"}, {"value", base64url_encode(plaintext)}});

  auto floor_round = [&]() {
    std::vector<std::uint8_t> out(plaintext.size() + 16);
    const double t0 = bench::now_seconds();
    for (int i = 0; i < requests; ++i) {
      std::uint8_t iv[12];
      if (f->C_GenerateRandom(s, iv, sizeof iv) != CKR_OK) {
        bench::die("floor C_GenerateRandom");
      }
      CK_GCM_PARAMS gcm{};
      gcm.pIv = iv;
      gcm.ulIvLen = sizeof iv;
      gcm.ulIvBits = 8 * sizeof iv;
      gcm.ulTagBits = 128;
      CK_MECHANISM mech{CKM_AES_GCM, &gcm, sizeof gcm};
      if (f->C_EncryptInit(s, &mech, aes) != CKR_OK) {
        bench::die("floor C_EncryptInit");
      }
      CK_ULONG len = out.size();
      if (f->C_Encrypt(s, const_cast<CK_BYTE*>(plaintext.data()), plaintext.size(), out.data(),
                       &len) != CKR_OK ||
          len != out.size()) {
        bench::die("floor C_Encrypt");
      }
    }
    return requests / (bench::now_seconds() - t0);
  };
  auto https_round = [&](const std::string& method, const std::string& p, const std::string& b) {
    const double seconds = bench::run_clients(
        clients, requests, v.url, v.ca, v.token, "7.5",
        [&](bench::HttpsClient& c) { c.call_text(method, p, b); },
        [&](bench::HttpsClient& c, int) { c.call_text(method, p, b); });
    return requests / seconds;
  };
  vault::RestApi api(v.server->vault(), nullptr);
  vault::Principal all{"bench", vault::all_permissions()};
  all.rbac_exempt = true;  // as the CLI's own folder transport: the floor's comparison, not RBAC's
  vault::RestRequest req;
  req.method = "POST";
  req.path = path;
  req.query = {{"api-version", "7.5"}};
  req.content_type = "application/json";
  req.body = body;
  auto inproc_round = [&]() {
    const double t0 = bench::now_seconds();
    for (int i = 0; i < requests; ++i) {
      auto res = api.handle_as(all, req);
      if (res.status != 200) {
        bench::die("in-process encrypt: " + std::to_string(res.status) + " " + res.body);
      }
    }
    return requests / (bench::now_seconds() - t0);
  };

  std::printf(
      "keyport AES benchmark: SoftHSM %s, A256GCM encrypt of %d bytes, %d requests, %d HTTPS "
      "clients, %d rounds\n",
      v.slot.token->firmware().c_str(), bytes, requests, clients, rounds);
  std::vector<double> floor_rates, https_rates, get_rates, inproc_rates;
  for (int r = 0; r < rounds; ++r) {
    floor_rates.push_back(floor_round());
    https_rates.push_back(https_round("POST", path, body));
    get_rates.push_back(https_round("GET", "/keys/aes", ""));
    inproc_rates.push_back(inproc_round());
  }
  const double fl = bench::median(floor_rates);
  const double hs = bench::median(https_rates);
  const double gs = bench::median(get_rates);
  const double ip = bench::median(inproc_rates);
  std::printf("floor (raw C_GenerateRandom + C_EncryptInit + C_Encrypt): %10.0f op/s\n", fl);
  std::printf(
      "HTTPS, %d clients:                                         %10.0f req/s  ratio %.3f "
      "(goal >= 0.6)\n",
      clients, hs, hs / fl);
  std::printf(
      "GET /keys/{name} over HTTPS, %d clients:                  %10.0f req/s  "
      "encrypt/GET %.3f\n",
      clients, gs, hs / gs);
  std::printf(
      "RestApi in the process, 1 thread:                          %10.0f req/s  ratio %.3f\n", ip,
      ip / fl);
  v.server->stop();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
