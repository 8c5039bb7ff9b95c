// SPDX-License-Identifier: Apache-2.0
// The simulated vault's REST server under load, in one process on SoftHSM2:
//
//  - BYOK imports per second over HTTPS (PUT /keys/{name} with key_hsm) from 4 concurrent
//    clients, against the floor measured in the same run: the two C_UnwrapKey calls of an import
//    alone (RSA-OAEP of the transfer key with the vault's KEK, then AES-KWP of the target into a
//    token object with the vault's own template), issued raw on the vault token, one after the
//    other. Goal: imports >= 0.6 of the floor. Measured for an RSA-2048 and an EC P-256 target.
//  - GET /keys/{name} requests per second over HTTPS (4 clients, keep-alive), and the same
//    requests through RestApi in the process (no TLS, no socket), for scale.
//  - The process's resident memory (VmRSS, /proc/self/status: the server runs in this process)
//    at start, after a warm-up of 2,000 requests, and after N more requests (default 10,000; a mix
//    of GET, sign and list; printed in 5 steps). Goal, read after the warm-up: growth
//    under 5 %.
//
//   keyport_bench_vault [--imports N] [--gets N] [--memory-requests N] [--clients C] [--rounds R]
//
// It prints figures and ratios; it asserts nothing.
#include <httplib.h>
#include <signal.h>

#include <cstring>
#include <fstream>

#include "bench/attached_vault.h"
#include "byok/kid.h"
#include "byok/public_key.h"
#include "core/encoding.h"
#include "core/random.h"
#include "pkcs11/keygen.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "transfer/export.h"
#include "vault/server.h"
#include "vault/token.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

using bench::HttpsClient;
using bench::must;

// The clients' warm-up: TLS handshake and a kept-alive connection before the clock starts.
void warm_get(HttpsClient& c) {
  c.call("GET", "/keys?maxresults=1");
}

double run_clients(int clients, int n, const std::string& url, const fs::path& ca,
                   const std::string& token, const std::function<void(HttpsClient&, int)>& work) {
  return bench::run_clients(clients, n, url, ca, token, "7.5", warm_get, work);
}

}  // namespace

int main(int argc, char** argv) {
  int imports = 120, gets = 2000, memory_requests = 10000, clients = 4, rounds = 3;
  bench::int_options(argc, argv,
                     {{"--imports", &imports},
                      {"--gets", &gets},
                      {"--memory-requests", &memory_requests},
                      {"--clients", &clients},
                      {"--rounds", &rounds}});
  ::signal(SIGPIPE, SIG_IGN);
  const fs::path dir =
      fs::path(KEYPORT_BINARY_DIR) / "bench-tmp" / ("vault-" + std::to_string(::getpid()));
  auto attached = bench::start_attached_vault(dir, vault::Flavor::kKeyVault,
                                              "vault:1111:2222 onprem:3333:4444");
  auto& module = attached.module;
  auto& vault_slot = attached.slot;
  auto& floor_session = attached.session;
  auto& server = attached.server;
  const std::string& url = attached.url;
  const fs::path& ca = attached.ca;
  const std::string& token = attached.token;
  p11::Uri uri;
  uri.token = "onprem";
  auto onprem_slot = must(p11::find_token(*module, uri), "find onprem token");
  auto onprem = must(p11::Session::open(module, onprem_slot.id), "onprem session");
  if (!onprem.login(SecretBytes::from_string("4444"))) {
    bench::die("onprem login");
  }
  auto onprem_caps = must(p11::probe_wrap_capabilities(onprem, *onprem_slot.token), "probe");
  HttpsClient admin(url, ca, token);
  const unsigned kek_bits = 3072;
  Json kek_params{{"kty", "RSA-HSM"}, {"key_size", kek_bits}, {"key_ops", Json::array({"import"})}};
  Json kek = admin.call("POST", "/keys/KEK/create", &kek_params);
  const std::string kid = kek["key"]["kid"].get<std::string>();
  const std::string kek_version = kid.substr(kid.rfind('/') + 1);
  auto kek_pub = must(byok::PublicKey::from_jwk(kek["key"]), "KEK public key");
  auto parsed_kid = must(byok::parse_kid(kid), "kid");

  // The KEK's private object, for the floor.
  p11::Template find;
  find.token(true).label("kv:KEK:" + kek_version);
  auto found = must(floor_session.find_objects(find), "find KEK object");
  if (found.size() != 1) {
    bench::die("the KEK object is not in the vault token");
  }
  const CK_OBJECT_HANDLE kek_handle = found.front();
  const CK_FUNCTION_LIST* f = module->functions();

  std::printf("keyport vault benchmark: SoftHSM %s, KEK RSA-%u, %d HTTPS clients, %d rounds\n",
              vault_slot.token->firmware().c_str(), kek_bits, clients, rounds);
  std::printf("%-9s %8s %14s %14s %8s\n", "target", "imports", "HTTPS imp/s", "floor imp/s",
              "ratio");
  int serial = 0;
  for (const char* type : {"rsa-2048", "ec-p256"}) {
    const KeySpec spec = must(parse_key_spec(type), "spec");
    p11::KeyGenRequest req;
    req.spec = spec;
    req.label = std::string("bench-") + type;
    auto key = must(p11::generate_portable_key(onprem, req), "keygen");
    auto skek = must(transfer::SessionKek::import(onprem, kek_pub), "session KEK");
    transfer::ExportOptions eo;
    eo.generator = "keyport bench";
    std::vector<Bytes> blobs;
    std::vector<std::string> bodies;
    for (int i = 0; i < imports; ++i) {
      auto r = must(transfer::export_key(onprem, onprem_caps, key, skek, parsed_kid,
                                         byok::TargetKind::kKeyVault, eo),
                    "export");
      blobs.push_back(r.file.ciphertext);
      Json k{{"kty", std::string(spec.azure_kty())},
             {"key_hsm", base64url_encode(as_bytes(r.file.to_json()))}};
      if (spec.curve) {
        k["crv"] = std::string(curve_jwk_name(*spec.curve));
      }
      bodies.push_back(dump_json(Json{{"key", k}}));
    }
    const std::size_t k_bytes = kek_bits / 8;
    vault::KeyObjectSpec ks{spec, false, false};

    // The floor: the two C_UnwrapKey calls of each blob, raw, timed alone.
    auto floor_round = [&]() {
      double timed = 0;
      for (int i = 0; i < imports; ++i) {
        const Bytes& ct = blobs[i];
        CK_BBOOL t = CK_TRUE, fa = CK_FALSE;
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_KEY_TYPE kt = CKK_AES;
        CK_ATTRIBUTE aes_t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
                                {CKA_TOKEN, &fa, 1},           {CKA_SENSITIVE, &t, 1},
                                {CKA_EXTRACTABLE, &fa, 1},     {CKA_UNWRAP, &t, 1}};
        CK_RSA_PKCS_OAEP_PARAMS oaep{CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, nullptr, 0};
        CK_MECHANISM rsa{CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
        CK_MECHANISM kwp{CKM_AES_KEY_WRAP_PAD, nullptr, 0};
        Bytes id = random_bytes(16);
        p11::Template target = vault::key_object_template(
            ks, "kv:floor:" + std::to_string(++serial), id, /*with_size=*/false);
        p11::CkTemplate ck = target.lower();
        CK_OBJECT_HANDLE aes = 0, obj = 0;
        const double t0 = bench::now_seconds();
        if (f->C_UnwrapKey(floor_session.handle(), &rsa, kek_handle,
                           const_cast<CK_BYTE*>(ct.data()), k_bytes, aes_t, 6, &aes) != CKR_OK) {
          bench::die("floor C_UnwrapKey (RSA-OAEP)");
        }
        if (f->C_UnwrapKey(floor_session.handle(), &kwp, aes,
                           const_cast<CK_BYTE*>(ct.data() + k_bytes), ct.size() - k_bytes,
                           ck.data(), ck.size(), &obj) != CKR_OK) {
          bench::die("floor C_UnwrapKey (AES-KWP)");
        }
        timed += bench::now_seconds() - t0;
        f->C_DestroyObject(floor_session.handle(), obj);
        f->C_DestroyObject(floor_session.handle(), aes);
      }
      return imports / timed;
    };
    auto https_round = [&](int round) {
      const double seconds =
          run_clients(clients, imports, url, ca, token, [&](HttpsClient& c, int i) {
            httplib::Request r;
            r.method = "PUT";
            r.path = "/keys/" + std::string(type) + "-" + std::to_string(round) + "-" +
                     std::to_string(i) + "?api-version=7.5";
            r.headers = c.headers;
            r.headers.emplace("Content-Type", "application/json");
            r.body = bodies[i];
            auto res = c.http->send(r);
            if (!res || res->status != 200) {
              bench::die(std::string("import over HTTPS failed: ") +
                         (res ? std::to_string(res->status) + " " + res->body
                              : httplib::to_string(res.error())));
            }
          });
      return imports / seconds;
    };
    std::vector<double> floor_rates, https_rates;
    for (int r = 0; r < rounds; ++r) {
      floor_rates.push_back(floor_round());
      https_rates.push_back(https_round(r));
    }
    const double fl = bench::median(floor_rates);
    const double hs = bench::median(https_rates);
    std::printf("%-9s %8d %14.1f %14.1f %8.3f\n", type, imports, hs, fl, hs / fl);
  }

  // GETs: over HTTPS and in the process.
  Json ec_params{{"kty", "EC-HSM"}};
  admin.call("POST", "/keys/getme/create", &ec_params);
  const double get_s = run_clients(clients, gets, url, ca, token,
                                   [&](HttpsClient& c, int) { c.call("GET", "/keys/getme"); });
  vault::RestApi api(server->vault(), nullptr);
  vault::Principal all{"bench", vault::all_permissions()};
  vault::RestRequest g;
  g.method = "GET";
  g.path = "/keys/getme";
  g.query = {{"api-version", "7.5"}};
  const double t0 = bench::now_seconds();
  for (int i = 0; i < gets; ++i) {
    if (api.handle_as(all, g).status != 200) {
      bench::die("in-process GET");
    }
  }
  const double inproc = gets / (bench::now_seconds() - t0);
  std::printf(
      "GET /keys/{name}: %.0f req/s over HTTPS (%d clients), %.0f req/s through RestApi "
      "in the process (ratio %.3f)\n",
      gets / get_s, clients, inproc, (gets / get_s) / inproc);

  // Memory: warm up with the same mix, then N more requests.
  Json sign_body{{"alg", "ES256"}, {"value", base64url_encode(random_bytes(32))}};
  auto mix = [&](HttpsClient& c, int i) {
    switch (i % 4) {
      case 0:
      case 1:
        c.call("GET", "/keys/getme");
        break;
      case 2:
        c.call("POST", "/keys/getme/sign", &sign_body);
        break;
      default:
        c.call("GET", "/keys?maxresults=5");
        break;
    }
  };
  // Both figures are printed: growth over the whole run of requests ("from start", the process
  // as it was after the import and GET phases) and after a warm-up of the same mix (thread pool,
  // TLS sessions, session pool, SQLite page caches and malloc arenas reach their working size).
  // The goal is read on the second; the series shows whether memory still climbs at the end.
  const int warmup = std::min(memory_requests, 2000);
  const long rss_start = bench::vm_rss_kib();
  run_clients(clients, warmup, url, ca, token, mix);
  const long rss_before = bench::vm_rss_kib();
  std::vector<long> series;
  const int chunks = memory_requests >= 1000 ? 5 : 1;
  double mem_s = 0;
  for (int k = 0; k < chunks; ++k) {
    const int n = memory_requests / chunks + (k == chunks - 1 ? memory_requests % chunks : 0);
    mem_s += run_clients(clients, n, url, ca, token, mix);
    series.push_back(bench::vm_rss_kib());
  }
  const long rss_after = series.back();
  auto pct = [](long from, long to) {
    return 100.0 * static_cast<double>(to - from) / static_cast<double>(from);
  };
  std::string steps;
  for (long v : series) {
    steps += " " + std::to_string(v);
  }
  std::printf(
      "VmRSS: %ld KiB at start, %ld KiB after a warm-up of %d requests, %ld KiB after %d more "
      "(GET, sign, list; %.0f req/s)\n"
      "  growth after the warm-up: %.2f %% (goal < 5 %%); from start: %.2f %%; series (KiB):%s\n",
      rss_start, rss_before, warmup, rss_after, memory_requests, memory_requests / mem_s,
      pct(rss_before, rss_after), pct(rss_start, rss_after), steps.c_str());
  server->stop();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
