// SPDX-License-Identifier: Apache-2.0
// Managed-identity tokens against access-file tokens (issue 18): the same vault server in this
// process (own-folder mode, SoftHSM), the same requests over HTTPS from C clients, alternating
// rounds, once with the admin's access-file token and once with a managed-identity token fetched
// from the server's identity endpoint (IMDS path). Printed per operation (GET /keys/{name} and
// POST .../sign with ES256): requests per second of each and the ratio MI / access file (goal
// >= 0.95: checking a signed JWT, its claims and the identity must not slow the vault).
// Also printed: token requests per second at the identity endpoint (plain HTTP, one client).
//
//   keyport_bench_identity [--requests N] [--clients C] [--rounds R]
//
// It prints figures and ratios; it asserts nothing.
#include <httplib.h>
#include <signal.h>

#include <cstring>
#include <fstream>

#include "bench/bench_util.h"
#include "bench/https_client.h"
#include "core/digest.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/random.h"
#include "vault/server.h"

using namespace keyport;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  int requests = 2000, clients = 4, rounds = 5;
  bench::int_options(argc, argv,
                     {{"--requests", &requests}, {"--clients", &clients}, {"--rounds", &rounds}});
  ::signal(SIGPIPE, SIG_IGN);
  const fs::path dir =
      fs::path(KEYPORT_BINARY_DIR) / "bench-tmp" / ("identity-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "vault");

  // An access file with an admin token and one system-assigned identity.
  const std::string admin = base64url_encode(random_bytes(32));
  Json access{
      {"tokens", {{admin, {{"name", "admin"}, {"permissions", {"get", "create", "sign"}}}}}},
      {"identities",
       {{"app",
         {{"client_id", "11111111-1111-4111-8111-111111111111"},
          {"object_id", "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"},
          {"system_assigned", true},
          {"permissions", {"get", "sign"}}}}}}};
  WriteOptions secret;
  secret.mode = 0600;
  if (!write_file_atomic(dir / "vault" / "access.json", dump_json(access), secret)) {
    bench::die("cannot write the access file");
  }

  vault::ServerOptions so;
  so.data_dir = dir / "vault";
  so.listen = "127.0.0.1:0";
  so.identity_listen = "127.0.0.1:0";
  so.threads = 8;
  so.access_log = dir / "access.log";
  so.print = [](const std::string&) {};
  auto server = bench::must(vault::Server::start(so), "start server");
  const std::string url = server->url();
  const fs::path ca = server->ca_file();
  std::string resource;
  {
    std::ifstream in(so.data_dir / "server.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    resource = bench::must(parse_json_strict(text), "server.json")["challenge_resource"];
  }

  // A managed-identity token from the IMDS path, timed.
  const std::string origin = server->identity_origin();
  httplib::Client identity(origin.substr(0, origin.rfind(':')).substr(7),
                           std::stoi(origin.substr(origin.rfind(':') + 1)));
  identity.set_keep_alive(true);
  identity.set_tcp_nodelay(true);
  const httplib::Headers metadata{{"Metadata", "true"}};
  const std::string token_path =
      "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + resource;
  std::string mi_token;
  const int token_requests = 200;
  const double t0 = bench::now_seconds();
  for (int i = 0; i < token_requests; ++i) {
    auto res = identity.Get(token_path, metadata);
    if (!res || res->status != 200) {
      bench::die("the identity endpoint did not issue a token");
    }
    mi_token = bench::must(parse_json_strict(res->body), "token answer")["access_token"];
  }
  const double token_rate = token_requests / (bench::now_seconds() - t0);

  bench::HttpsClient setup(url, ca, admin);
  Json params{{"kty", "EC-HSM"}, {"crv", "P-256"}};
  setup.call("POST", "/keys/k/create", &params);
  const std::string sign_body =
      dump_json(Json{{"alg", "ES256"}, {"value", base64url_encode(sha256(as_bytes("bench")))}});

  auto warm = [](bench::HttpsClient& c) { c.call("GET", "/keys/k"); };
  auto get = [](bench::HttpsClient& c, int) { c.call_text("GET", "/keys/k"); };
  auto sign = [&](bench::HttpsClient& c, int) { c.call_text("POST", "/keys/k/sign", sign_body); };

  std::printf(
      "keyport identity benchmark: %d HTTPS clients, %d requests per round, %d rounds "
      "(median round)\n",
      clients, requests, rounds);
  std::printf("identity endpoint: %.0f tokens/s (IMDS path, one client, keep-alive)\n", token_rate);
  std::printf("%-6s %18s %18s %8s\n", "op", "access-file req/s", "identity req/s", "ratio");
  for (auto [name, work] :
       {std::pair<const char*, std::function<void(bench::HttpsClient&, int)>>{"GET", get},
        {"sign", sign}}) {
    std::vector<double> file_rates, mi_rates;
    for (int r = 0; r < rounds; ++r) {
      const double a = bench::run_clients(clients, requests, url, ca, admin, "7.5", warm, work);
      const double b = bench::run_clients(clients, requests, url, ca, mi_token, "7.5", warm, work);
      file_rates.push_back(requests / a);
      mi_rates.push_back(requests / b);
    }
    const double fa = bench::median(file_rates);
    const double mi = bench::median(mi_rates);
    std::printf("%-6s %18.0f %18.0f %8.3f\n", name, fa, mi, mi / fa);
  }
  server->stop();
  fs::remove_all(dir);
  return 0;
}
