// SPDX-License-Identifier: Apache-2.0
// The vault's REST server (vault::Server, in this process on the test SoftHSM's "vault" token)
// under the hostile clients of issue 18's probe, over raw TLS: each finding of the probe is a test
// here. Without a token: a chunked body streamed past --max-body, a header line streamed past the
// head limit; 50 sockets that never send a TLS hello and 8 bodies sent a byte at a time while a
// legitimate GET is answered; framing refusals in Key Vault's error shape with the request id;
// a POST without Content-Length, Expect: 100-continue over the limit, pipelining, HTTP/1.0.
#include <catch2/catch.hpp>

#include <atomic>
#include <sstream>
#include <thread>

#include "tests/http/raw_client.h"
#include "tests/support/support.h"
#include "tests/vault/rest_rig.h"

using namespace keyport;
using namespace std::chrono_literals;
using test::RawConnection;

namespace {

struct HostileRig {
  test::RestRig rig;
  std::string token;
  test::SslCtx client;
  int port = 0;

  explicit HostileRig(const std::string& stem,
                      const std::function<void(vault::ServerOptions&)>& tweak = {})
      : rig(vault::Flavor::kKeyVault, stem) {
    if (tweak) {
      rig.stop();
      tweak(rig.options);
      rig.start();
    }
    token = rig.admin_token();
    client = test::client_tls(test::slurp(rig.ca_file()));
    port = rig.server->port();
  }
  std::unique_ptr<RawConnection> connect(bool handshake = true) {
    return std::make_unique<RawConnection>(port, client.get(), handshake);
  }
  std::string get(const std::string& path, bool with_token = true) const {
    return "GET " + path + (path.find('?') == std::string::npos ? "?" : "&") +
           "api-version=7.5 HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
           (with_token ? "Authorization: Bearer " + token + "\r\n" : std::string()) + "\r\n";
  }
};

void check_kv_refusal(const test::RawResponse& r, int status, const std::string& code) {
  INFO(r.describe());
  CHECK(r.status == status);
  CHECK(r.code() == code);
  CHECK(r.json()["error"]["message"].is_string());
  CHECK(r.header("content-type").rfind("application/json", 0) == 0);
  CHECK(r.header("x-ms-request-id").size() == 36);
  CHECK(r.header("x-ms-keyvault-service-version").rfind("keyport-", 0) == 0);
}

}  // namespace

TEST_CASE("a chunked body streamed past --max-body without a token gets 413, memory bounded",
          "[vault][rest][hardening]") {
  HostileRig h("hostile-chunked");
  const long before = test::vm_rss_kib();
  auto c = h.connect();
  REQUIRE(
      c->send("PUT /keys/big?api-version=7.5 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk = "10000\r\n" + std::string(0x10000, 'c') + "\r\n";
  std::size_t sent = 0;
  bool answered = false;
  // The probe sent 256 MiB and the server grew by 528 MiB before it answered 401.
  while (sent < (256u << 20) && !answered) {
    if (!c->send(chunk)) {
      break;
    }
    sent += chunk.size();
    answered = c->readable(0ms);
  }
  auto r = c->read_response();
  REQUIRE(r.has_value());
  check_kv_refusal(*r, 413, "RequestEntityTooLarge");
  CHECK(r->header("connection") == "close");
  CHECK(c->wait_closed());
  const long after = test::vm_rss_kib();
  INFO("sent " << sent / 1024 << " KiB; VmRSS " << before << " -> " << after << " KiB");
  CHECK(sent < (64u << 20));
  CHECK(after - before < 32 * 1024);
}

TEST_CASE("a header line streamed past the head limit gets 431 without being buffered",
          "[vault][rest][hardening]") {
  HostileRig h("hostile-header");
  const long before = test::vm_rss_kib();
  auto c = h.connect();
  REQUIRE(c->send("GET /keys?api-version=7.5 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "));
  const std::string piece(0x10000, 'h');
  std::size_t sent = 0;
  bool answered = false;
  // The probe's 128 MiB header line grew the server to 273 MiB.
  while (sent < (128u << 20) && !answered) {
    if (!c->send(piece)) {
      break;
    }
    sent += piece.size();
    answered = c->readable(0ms);
  }
  auto r = c->read_response();
  REQUIRE(r.has_value());
  check_kv_refusal(*r, 431, "BadRequest");
  CHECK(c->wait_closed());
  const long after = test::vm_rss_kib();
  INFO("sent " << sent / 1024 << " KiB; VmRSS " << before << " -> " << after << " KiB");
  CHECK(sent < (32u << 20));
  CHECK(after - before < 32 * 1024);
}

TEST_CASE("50 silent sockets and 8 slow bodies do not hold the vault from a legitimate GET",
          "[vault][rest][hardening]") {
  HostileRig h("hostile-starve");
  // The probe: 50 sockets that never send a TLS hello delayed a GET to 59 s; eight bodies at one
  // byte a second delayed it 13 s (each held one of the 8 workers).
  std::vector<std::unique_ptr<RawConnection>> silent;
  for (int i = 0; i < 50; ++i) {
    silent.push_back(h.connect(false));
  }
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(h.connect());
    REQUIRE(slow.back()->send("PUT /keys/slow" + std::to_string(i) +
                              "?api-version=7.5 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n"));
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop) {
      for (auto& s : slow) {
        s->send("{");
      }
      std::this_thread::sleep_for(200ms);
    }
  });
  for (int i = 0; i < 3; ++i) {
    auto c = h.connect();
    REQUIRE(c->send(h.get("/keys")));
    // A hang guard only (scaled): the answer does not wait for any of the attackers.
    auto r = c->read_response(20);
    REQUIRE(r.has_value());
    INFO(r->describe());
    CHECK(r->status == 200);
  }
  stop = true;
  trickle.join();
}

TEST_CASE("framing refusals carry Key Vault's error shape, the request id and Connection: close",
          "[vault][rest][hardening]") {
  HostileRig h("hostile-framing");
  struct Case {
    const char* what;
    std::string wire;
    int status;
    const char* code;
  };
  const std::string head = "POST /keys/k/create?api-version=7.5 HTTP/1.1\r\n";
  const std::vector<Case> cases{
      {"different Content-Length",
       head + "Host: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400,
       "BadParameter"},
      {"duplicate Content-Length",
       head + "Host: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400,
       "BadParameter"},
      {"Content-Length with chunked",
       head + "Host: 127.0.0.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
              "0\r\n\r\n",
       400, "BadParameter"},
      {"Transfer-Encoding gzip", head + "Host: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
       "InternalServerError"},
      {"no Host", head + "Content-Length: 2\r\n\r\n{}", 400, "BadParameter"},
      {"obs-fold",
       head + "Host: 127.0.0.1\r\nContent-Type: application/json;\r\n charset=utf-8\r\n"
              "Content-Length: 2\r\n\r\n{}",
       400, "BadParameter"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto conn = h.connect();
    REQUIRE(conn->send(c.wire));
    auto r = conn->read_response();
    REQUIRE(r.has_value());
    check_kv_refusal(*r, c.status, c.code);
    CHECK(r->header("connection") == "close");
    CHECK(conn->wait_closed());
  }
  // Each refusal is one access-log line with its request id.
  h.rig.stop();
  const std::string log = test::slurp(h.rig.access_log());
  std::istringstream in(log);
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    CHECK(line.find(" rid=") != std::string::npos);
  }
  CHECK(lines == cases.size());
}

TEST_CASE("a POST without Content-Length has an empty body: answered at once, not waited for",
          "[vault][rest][hardening]") {
  HostileRig h("hostile-nolength");
  auto c = h.connect();
  // The GET right behind it is the next request, not the POST's body.
  REQUIRE(
      c->send("POST /keys/k/create?api-version=7.5 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              "Authorization: Bearer " +
              h.token + "\r\nContent-Type: application/json\r\n\r\n" + h.get("/keys")));
  auto first = c->read_response();
  REQUIRE(first.has_value());
  INFO(first->describe());
  CHECK(first->status == 400);  // an empty create body
  auto second = c->read_response();
  REQUIRE(second.has_value());
  CHECK(second->status == 200);
}

TEST_CASE("Expect: 100-continue over --max-body gets 413 and never 100",
          "[vault][rest][hardening]") {
  HostileRig h("hostile-expect");
  auto c = h.connect();
  REQUIRE(
      c->send("PUT /keys/k?api-version=7.5 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              "Content-Type: application/json\r\nExpect: 100-continue\r\n"
              "Content-Length: 104857600\r\n\r\n"));
  auto r = c->read_response();
  REQUIRE(r.has_value());
  check_kv_refusal(*r, 413, "RequestEntityTooLarge");
  CHECK(c->wait_closed());
  CHECK(c->leftover().find(" 100 ") == std::string::npos);
}

TEST_CASE("pipelined requests are all answered in order, and HTTP/1.0 closes",
          "[vault][rest][hardening]") {
  HostileRig h("hostile-pipeline");
  {
    auto c = h.connect();
    REQUIRE(c->send(h.get("/keys/first") + h.get("/keys") + h.get("/keys/third")));
    auto a = c->read_response();
    auto b = c->read_response();
    auto d = c->read_response();
    REQUIRE((a && b && d));
    CHECK(a->status == 404);
    CHECK(a->json()["error"]["message"].get<std::string>().find("first") != std::string::npos);
    CHECK(b->status == 200);
    CHECK(d->status == 404);
    CHECK(d->json()["error"]["message"].get<std::string>().find("third") != std::string::npos);
  }
  {
    auto c = h.connect();
    REQUIRE(c->send("GET /keys?api-version=7.5 HTTP/1.0\r\nAuthorization: Bearer " + h.token +
                    "\r\n\r\n"));
    auto r = c->read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(r->header("connection") == "close");
    CHECK(c->wait_closed());
  }
}

TEST_CASE("the vault's deadlines and connection cap come from ServerOptions::limits",
          "[vault][rest][hardening]") {
  SECTION("the TLS handshake deadline") {
    HostileRig h("hostile-handshake",
                 [](vault::ServerOptions& o) { o.limits.handshake_timeout = 300ms; });
    auto silent = h.connect(false);
    CHECK(silent->wait_closed());
  }
  SECTION("the connection cap") {
    HostileRig h("hostile-cap", [](vault::ServerOptions& o) { o.limits.max_connections = 3; });
    std::vector<std::unique_ptr<RawConnection>> held;
    for (int i = 0; i < 3; ++i) {
      held.push_back(h.connect(false));
    }
    REQUIRE(test::wait_until([&] { return h.rig.server->connections() == 3; }, 10));
    RawConnection extra(h.port);
    CHECK(extra.wait_closed());
    held.pop_back();
    REQUIRE(test::wait_until([&] { return h.rig.server->connections() < 3; }, 10));
    auto c = h.connect();
    REQUIRE(c->send(h.get("/keys")));
    auto r = c->read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
  }
}
