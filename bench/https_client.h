// SPDX-License-Identifier: Apache-2.0
// What the vault and release benchmarks share: an HTTPS client of the vault's REST server
// (cpp-httplib, keep-alive, trusting the vault CA) and a pool of such clients, each on its own
// thread, working through N items. Header-only, for benchmarks that link cpp-httplib and OpenSSL.
#pragma once

#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "core/error.h"
#include "core/json.h"

namespace keyport::bench {

struct HttpsClient {
  std::unique_ptr<httplib::SSLClient> http;
  httplib::Headers headers;  // the bearer token
  std::string api = "7.5";   // appended as ?api-version= by send()

  HttpsClient(const std::string& url, const std::filesystem::path& ca, const std::string& token) {
    const std::string hostport = url.substr(url.find("://") + 3);
    const auto colon = hostport.rfind(':');
    http = std::make_unique<httplib::SSLClient>(hostport.substr(0, colon),
                                                std::stoi(hostport.substr(colon + 1)));
    http->set_ca_cert_path(ca.string());
    http->enable_server_certificate_verification(true);
    http->set_keep_alive(true);
    // Without TCP_NODELAY a request with a body (headers and body are separate writes) waits for
    // the server's delayed ACK of the headers: about 40 ms per POST/PUT on Linux loopback. The
    // vault's server sets it; clients such as the Azure SDKs (Node.js sockets) do by default.
    http->set_tcp_nodelay(true);
    http->set_read_timeout(120);
    headers = {{"Authorization", "Bearer " + token}};
  }

  // One request; `body` (JSON text) when not empty. Sent once more when the connection was gone
  // (the server closes kept-alive connections idle for 5 s).
  httplib::Result send(const std::string& method, const std::string& path,
                       const std::string& body = {}) {
    httplib::Request req;
    req.method = method;
    req.path = path + (path.find('?') == std::string::npos ? "?" : "&") + "api-version=" + api;
    req.headers = headers;
    if (!body.empty()) {
      req.body = body;
      req.headers.emplace("Content-Type", "application/json");
    }
    auto res = http->send(req);
    if (!res) {
      res = http->send(req);
    }
    return res;
  }

  // The answer's body; exits the benchmark unless the status is 200.
  std::string call_text(const std::string& method, const std::string& path,
                        const std::string& body = {}) {
    auto res = send(method, path, body);
    if (!res) {
      die(method + " " + path + ": " + httplib::to_string(res.error()));
    }
    if (res->status != 200) {
      die(method + " " + path + ": HTTP " + std::to_string(res->status) + " " + res->body);
    }
    return res->body;
  }
  Json call(const std::string& method, const std::string& path, const Json* body = nullptr) {
    return must(parse_json_strict(call_text(method, path, body ? dump_json(*body) : "")),
                "answer body");
  }
};

// Runs `work(client, item)` for items [0, n) split over `clients` threads, each with its own
// client, and returns the wall-clock seconds. `warm(client)` runs once per client before the clock
// starts (TLS handshake, keep-alive connection).
inline double run_clients(int clients, int n, const std::string& url,
                          const std::filesystem::path& ca, const std::string& token,
                          const std::string& api, const std::function<void(HttpsClient&)>& warm,
                          const std::function<void(HttpsClient&, int)>& work) {
  std::vector<std::unique_ptr<HttpsClient>> cs;
  for (int c = 0; c < clients; ++c) {
    cs.push_back(std::make_unique<HttpsClient>(url, ca, token));
    cs.back()->api = api;
    warm(*cs.back());
  }
  std::atomic<int> next{0};
  const double t0 = now_seconds();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
        work(*cs[c], i);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return now_seconds() - t0;
}

}  // namespace keyport::bench
