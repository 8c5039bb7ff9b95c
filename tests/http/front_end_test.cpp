// SPDX-License-Identifier: Apache-2.0
// http::Server under hostile clients, over real sockets (plain HTTP and TLS) with a trivial
// handler: framing refusals, 100-continue, pipelining, HTTP/1.0, deadlines, the connection cap,
// memory while a body or a header line streams past the limits, and a normal request answered
// while idle and slow clients hold connections. Every wait is a hang guard scaled by
// KEYPORT_TEST_TIME_SCALE; no test asserts on timing.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include "core/json.h"
#include "http/server.h"
#include "tests/http/raw_client.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace std::chrono_literals;
using test::RawConnection;

namespace {

// Key Vault's error shape, as the vault's server gives it.
http::Response kv_error(int status, std::string_view message) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json; charset=utf-8";
  r.body = dump_json(Json{{"error",
                           {{"code", status == 413 ? "RequestEntityTooLarge" : "BadRequest"},
                            {"message", std::string(message)}}}});
  return r;
}

struct Rig {
  http::Options options;
  std::unique_ptr<http::Server> server;
  std::atomic<int> handled{0};
  std::mutex mutex;
  std::vector<std::string> done;  // "<status> <path>" per on_done

  explicit Rig(std::function<void(http::Options&)> tweak = {}) {
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.handler = [this](const http::Request& r) {
      ++handled;
      http::Response res;
      if (r.path == "/throw") {
        throw std::runtime_error("boom");
      }
      if (r.path == "/slow") {
        std::this_thread::sleep_for(300ms);
      }
      res.content_type = "application/json";
      res.body = dump_json(Json{{"method", r.method},
                                {"path", r.path},
                                {"body", r.body.size()},
                                {"host", r.header("host")}});
      return res;
    };
    options.error_response = kv_error;
    options.stamp = [](const http::Request&, http::Response& res) {
      res.headers.emplace_back("x-ms-request-id", "rid");
    };
    options.on_done = [this](const http::Request& r, const http::Response& res,
                             std::chrono::nanoseconds) {
      std::lock_guard<std::mutex> lock(mutex);
      done.push_back(std::to_string(res.status) + " " + r.path);
    };
    if (tweak) {
      tweak(options);
    }
    start();
  }
  void start() {
    auto s = http::Server::start(options);
    REQUIRE_OK(s);
    server = std::move(*s);
  }
  int port() const { return server->port(); }
};

const std::string kGet = "GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n";

// The answer to `wire` on a fresh connection, which must then close.
test::RawResponse refused(Rig& rig, const std::string& wire) {
  RawConnection c(rig.port());
  REQUIRE(c.send(wire));
  auto r = c.read_response();
  REQUIRE(r.has_value());
  INFO(r->describe());
  CHECK(r->header("connection") == "close");
  CHECK(r->header("x-ms-request-id") == "rid");
  CHECK(r->json()["error"]["message"].is_string());
  CHECK(c.wait_closed());
  return *r;
}

}  // namespace

TEST_CASE("framing refusals get the error shape and Connection: close, then the connection closes",
          "[http]") {
  Rig rig;
  struct Case {
    const char* what;
    std::string wire;
    int status;
  };
  const std::vector<Case> cases{
      {"duplicate Content-Length",
       "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
      {"different Content-Length",
       "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
      {"Content-Length with chunked",
       "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n",
       400},
      {"an unknown Transfer-Encoding",
       "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"no Host", "GET /x HTTP/1.1\r\nAccept: */*\r\n\r\n", 400},
      {"two Hosts", "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"obs-fold", "GET /x HTTP/1.1\r\nHost: h\r\nX-A: a\r\n  b\r\n\r\n", 400},
      {"space before the colon", "GET /x HTTP/1.1\r\nHost : h\r\n\r\n", 400},
      {"a bad chunk size",
       "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400},
      {"a chunk size that overflows",
       "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "10000000000000000\r\n",
       400},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto r = refused(rig, c.wire);
    CHECK(r.status == c.status);
  }
  CHECK(rig.handled == 0);
  std::lock_guard<std::mutex> lock(rig.mutex);
  CHECK(rig.done.size() == cases.size());  // every refusal reaches the access log
}

TEST_CASE("a POST without Content-Length has an empty body and is answered without waiting",
          "[http]") {
  Rig rig;
  RawConnection c(rig.port());
  // The GET pipelined behind it must be read as the next request, not as the POST's body.
  REQUIRE(c.send("POST /a HTTP/1.1\r\nHost: h\r\n\r\n" + kGet));
  auto first = c.read_response();
  REQUIRE(first.has_value());
  CHECK(first->status == 200);
  CHECK(first->json()["path"] == "/a");
  CHECK(first->json()["body"] == 0);
  auto second = c.read_response();
  REQUIRE(second.has_value());
  CHECK(second->json()["path"] == "/ok");
}

TEST_CASE("Expect: 100-continue gets 100 only for a body within the limit", "[http]") {
  Rig rig([](http::Options& o) { o.limits.max_body = 1024; });
  SECTION("over the limit: 413 and no 100") {
    RawConnection c(rig.port());
    REQUIRE(
        c.send("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
               "Content-Length: 1048576\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 413);
    CHECK(r->code() == "RequestEntityTooLarge");
    CHECK(r->header("connection") == "close");
    CHECK(c.wait_closed());
    CHECK(c.leftover().find("100 Continue") == std::string::npos);
  }
  SECTION("within the limit: 100, then the answer") {
    RawConnection c(rig.port());
    REQUIRE(
        c.send("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
               "Content-Length: 5\r\n\r\n"));
    auto interim = c.read_response();
    REQUIRE(interim.has_value());
    CHECK(interim->status == 100);
    REQUIRE(c.send("hello"));
    auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(r->json()["body"] == 5);
  }
}

TEST_CASE("pipelined requests are all answered, in order", "[http]") {
  Rig rig;
  RawConnection c(rig.port());
  std::string wire;
  for (const char* p : {"/first", "/slow", "/third"}) {
    wire += "GET " + std::string(p) + " HTTP/1.1\r\nHost: h\r\n\r\n";
  }
  REQUIRE(c.send(wire));
  for (const char* p : {"/first", "/slow", "/third"}) {
    auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(r->json()["path"] == p);
  }
}

TEST_CASE("HTTP/1.0 closes the connection unless it asks for keep-alive", "[http]") {
  Rig rig;
  {
    RawConnection c(rig.port());
    REQUIRE(c.send("GET /old HTTP/1.0\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(r->header("connection") == "close");
    CHECK(c.wait_closed());
  }
  {
    RawConnection c(rig.port());
    REQUIRE(c.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->header("connection") == "keep-alive");
    REQUIRE(c.send("GET /b HTTP/1.0\r\n\r\n"));
    auto r2 = c.read_response();
    REQUIRE(r2.has_value());
    CHECK(r2->json()["path"] == "/b");
    CHECK(c.wait_closed());
  }
}

TEST_CASE("handshake, header, body and idle deadlines close the connection", "[http]") {
  auto short_deadlines = [](http::Options& o) {
    o.limits.handshake_timeout = 300ms;
    o.limits.header_timeout = 300ms;
    o.limits.body_timeout = 600ms;
    o.limits.idle_timeout = 300ms;
  };
  SECTION("no TLS hello") {
    auto tls = test::server_tls();
    Rig rig([&](http::Options& o) {
      short_deadlines(o);
      o.tls = tls.get();
    });
    auto client = test::client_tls();
    RawConnection c(rig.port(), client.get(), /*handshake=*/false);
    CHECK(c.wait_closed());
  }
  SECTION("a head that never ends: 408") {
    Rig rig(short_deadlines);
    RawConnection c(rig.port());
    REQUIRE(c.send("GET /x HTTP/1.1\r\nHost: h\r\n"));
    auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 408);
    CHECK(c.wait_closed());
  }
  SECTION("a head sent a byte at a time is cut at the total deadline") {
    Rig rig(short_deadlines);
    RawConnection c(rig.port());
    const std::string wire = "GET /x HTTP/1.1\r\nX-Pad: " + std::string(100000, 'p');
    bool cut = false;
    for (std::size_t i = 0; i < wire.size() && !cut; ++i) {
      cut = !c.send(wire.substr(i, 1)) || c.readable(50ms);
    }
    CHECK(cut);
    auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 408);
  }
  SECTION("a body trickled a byte at a time is cut at the total deadline") {
    Rig rig(short_deadlines);
    RawConnection c(rig.port());
    REQUIRE(c.send("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n"));
    bool cut = false;
    for (int i = 0; i < 100000 && !cut; ++i) {
      cut = !c.send("b") || c.readable(50ms);
    }
    CHECK(cut);
    auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 408);
    CHECK(c.wait_closed());
    CHECK(rig.handled == 0);
  }
  SECTION("an idle kept-alive connection") {
    Rig rig(short_deadlines);
    RawConnection c(rig.port());
    REQUIRE(c.send(kGet));
    REQUIRE(c.read_response().has_value());
    CHECK(c.wait_closed());
  }
}

TEST_CASE("open connections are capped, and a slot frees when a connection closes", "[http]") {
  Rig rig([](http::Options& o) { o.limits.max_connections = 4; });
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawConnection>(rig.port()));
  }
  REQUIRE(test::wait_until([&] { return rig.server->connections() == 4; }, 10));
  RawConnection extra(rig.port());
  CHECK(extra.wait_closed());
  held.pop_back();
  REQUIRE(test::wait_until([&] { return rig.server->connections() < 4; }, 10));
  RawConnection next(rig.port());
  REQUIRE(next.send(kGet));
  auto r = next.read_response();
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
}

TEST_CASE("idle sockets and slow bodies do not delay a normal request", "[http]") {
  std::string ca;
  auto tls = test::server_tls(&ca);
  Rig rig([&](http::Options& o) {
    o.tls = tls.get();
    o.threads = 2;  // fewer workers than slow clients
  });
  auto client = test::client_tls(ca);
  // 50 sockets that never send a TLS hello.
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 50; ++i) {
    idle.push_back(std::make_unique<RawConnection>(rig.port(), client.get(), false));
  }
  // 8 clients sending their bodies a byte at a time.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(std::make_unique<RawConnection>(rig.port(), client.get()));
    REQUIRE(
        slow.back()->send("PUT /slow-body HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n"));
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop) {
      for (auto& s : slow) {
        s->send("x");
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  for (int i = 0; i < 3; ++i) {
    RawConnection c(rig.port(), client.get());
    REQUIRE(c.send(kGet));
    auto r = c.read_response(20);
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
  }
  stop = true;
  trickle.join();
  CHECK(rig.handled == 3);
}

TEST_CASE("a chunked body streamed past the limit gets 413 while memory stays bounded", "[http]") {
  Rig rig([](http::Options& o) { o.limits.max_body = 1 << 20; });
  const long before = test::vm_rss_kib();
  RawConnection c(rig.port());
  REQUIRE(c.send("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk = "10000\r\n" + std::string(0x10000, 'c') + "\r\n";
  std::size_t sent = 0;
  bool answered = false;
  // Up to 256 MiB; the server must answer long before.
  while (sent < (256u << 20) && !answered) {
    if (!c.send(chunk)) {
      break;
    }
    sent += chunk.size();
    answered = c.readable(0ms);
  }
  auto r = c.read_response();
  REQUIRE(r.has_value());
  CHECK(r->status == 413);
  CHECK(r->code() == "RequestEntityTooLarge");
  CHECK(c.wait_closed());
  const long after = test::vm_rss_kib();
  INFO("sent " << sent / 1024 << " KiB; VmRSS " << before << " -> " << after << " KiB");
  CHECK(sent < (64u << 20));
  CHECK(after - before < 32 * 1024);
  CHECK(rig.handled == 0);
}

TEST_CASE("a header line streamed past the limit gets 431 without being buffered", "[http]") {
  Rig rig;
  const long before = test::vm_rss_kib();
  RawConnection c(rig.port());
  REQUIRE(c.send("GET /x HTTP/1.1\r\nHost: h\r\nX-Big: "));
  const std::string piece(0x10000, 'h');
  std::size_t sent = 0;
  bool answered = false;
  while (sent < (128u << 20) && !answered) {
    if (!c.send(piece)) {
      break;
    }
    sent += piece.size();
    answered = c.readable(0ms);
  }
  auto r = c.read_response();
  REQUIRE(r.has_value());
  CHECK(r->status == 431);
  CHECK(c.wait_closed());
  const long after = test::vm_rss_kib();
  INFO("sent " << sent / 1024 << " KiB; VmRSS " << before << " -> " << after << " KiB");
  CHECK(sent < (32u << 20));
  CHECK(after - before < 32 * 1024);
}

TEST_CASE("a handler that throws is answered 500 in the error shape", "[http]") {
  Rig rig;
  RawConnection c(rig.port());
  REQUIRE(c.send("GET /throw HTTP/1.1\r\nHost: h\r\n\r\n" + kGet));
  auto r = c.read_response();
  REQUIRE(r.has_value());
  CHECK(r->status == 500);
  CHECK(r->json()["error"]["message"].is_string());
  auto next = c.read_response();  // the connection carries on
  REQUIRE(next.has_value());
  CHECK(next->status == 200);
}

TEST_CASE("stop() lets a request in a handler finish and answers it with Connection: close",
          "[http]") {
  Rig rig;
  RawConnection busy(rig.port());
  RawConnection idle(rig.port());
  REQUIRE(busy.send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"));
  REQUIRE(test::wait_until([&] { return rig.handled == 1; }, 10, 1ms));
  rig.server->stop();
  auto r = busy.read_response();
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->header("connection") == "close");
  CHECK(busy.wait_closed());
  CHECK(idle.wait_closed());
  rig.server->stop();  // idempotent
}

TEST_CASE("plain HTTP and TLS listeners answer on any free port", "[http]") {
  std::string ca;
  auto tls = test::server_tls(&ca);
  Rig secure([&](http::Options& o) { o.tls = tls.get(); });
  tls.reset();  // the server holds its own reference
  auto client = test::client_tls(ca);
  RawConnection c(secure.port(), client.get());
  REQUIRE(c.send(kGet));
  auto r = c.read_response();
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->header("x-ms-request-id") == "rid");

  http::Options bad;
  bad.listen = "127.0.0.1:99999";
  bad.handler = [](const http::Request&) { return http::Response{}; };
  CHECK_FALSE(http::Server::start(bad).has_value());
  bad.listen = "127.0.0.1:" + std::to_string(secure.port());
  CHECK_FALSE(http::Server::start(bad).has_value());  // in use
}
