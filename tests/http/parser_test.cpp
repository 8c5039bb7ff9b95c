// SPDX-License-Identifier: Apache-2.0
// http::RequestParser on raw bytes: RFC 9112 framing, the limits enforced while reading (never
// more than the limit held), pipelining, and the response serialiser.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "http/parser.h"

using namespace keyport;
using http::RequestParser;
using State = RequestParser::State;

namespace {

http::Limits small_limits() {
  http::Limits l;
  l.max_header_bytes = 1024;
  l.max_headers = 10;
  l.max_body = 2048;
  return l;
}

// Feeds all of `bytes` (in pieces of `step`, 0 = at once) until the parser stops consuming.
RequestParser parse(std::string_view bytes, const http::Limits& limits = small_limits(),
                    std::size_t step = 0, std::size_t* consumed = nullptr) {
  RequestParser p(limits);
  std::size_t used = 0;
  while (used < bytes.size()) {
    const std::size_t n = step == 0 ? bytes.size() - used : std::min(step, bytes.size() - used);
    const std::size_t took = p.feed(bytes.substr(used, n));
    used += took;
    if (p.state() == State::kDone || p.state() == State::kFailed) {
      break;
    }
    if (took == 0 && p.state() != State::kBody) {
      break;
    }
  }
  if (consumed != nullptr) {
    *consumed = used;
  }
  return p;
}

}  // namespace

TEST_CASE("a request is parsed into method, target, decoded path and query, and fields", "[http]") {
  const std::string wire =
      "GET /keys/a%20b/%7E?api-version=7.5&x=a+b%26c&flag&=skipped HTTP/1.1\r\n"
      "Host: vault.example:8443\r\n"
      "X-Custom:   padded value \t\r\n"
      "Authorization: Bearer t\r\n"
      "\r\n";
  for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
    INFO("step " << step);
    auto p = parse(wire, small_limits(), step);
    REQUIRE(p.state() == State::kDone);
    const auto& r = p.request();
    CHECK(r.method == "GET");
    CHECK(r.target == "/keys/a%20b/%7E?api-version=7.5&x=a+b%26c&flag&=skipped");
    CHECK(r.path == "/keys/a b/~");
    REQUIRE(r.query.size() == 3);
    CHECK(r.query[0] == std::pair<std::string, std::string>{"api-version", "7.5"});
    CHECK(r.query[1] == std::pair<std::string, std::string>{"x", "a b&c"});
    CHECK(r.query[2] == std::pair<std::string, std::string>{"flag", ""});
    CHECK(*r.query_value("api-version") == "7.5");
    CHECK(r.query_value("missing") == nullptr);
    CHECK(r.header("x-custom") == "padded value");
    CHECK(r.header("authorization") == "Bearer t");
    CHECK(r.has_header("host"));
    CHECK_FALSE(r.has_header("content-length"));
    CHECK(r.body.empty());
    CHECK(p.keep_alive());
    CHECK_FALSE(p.body_expected());
  }
}

TEST_CASE("a request with neither Content-Length nor Transfer-Encoding has an empty body at once",
          "[http]") {
  // RFC 9112 §6.3: the server must not wait for a body that was never announced.
  auto p = parse("POST /keys/k/create HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(p.state() == State::kDone);
  CHECK(p.request().body.empty());
}

TEST_CASE("Content-Length and chunked bodies are read, fed at once or byte by byte", "[http]") {
  const std::string fixed = "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
  const std::string chunked =
      "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value;q=\"a \\\" b\"\r\nhello\r\n"
      "1\r\n \r\n"
      "0005\r\nworld\r\n"
      "0\r\nX-Trailer: t\r\n\r\n";
  for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
    INFO("step " << step);
    auto a = parse(fixed, small_limits(), step);
    REQUIRE(a.state() == State::kDone);
    CHECK(a.request().body == "hello world");
    auto b = parse(chunked, small_limits(), step);
    REQUIRE(b.state() == State::kDone);
    CHECK(b.request().body == "hello world");
    CHECK_FALSE(b.request().has_header("x-trailer"));  // trailers are checked, not merged
  }
}

TEST_CASE("framing that two readers could read differently is refused", "[http]") {
  struct Case {
    const char* what;
    std::string wire;
    int status;
  };
  const std::string host = "Host: h\r\n";
  const std::vector<Case> cases{
      {"two different Content-Length",
       "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"two equal Content-Length",
       "POST / HTTP/1.1\r\n" + host + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nab", 400},
      {"a Content-Length list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 2, 2\r\n\r\nab",
       400},
      {"a signed Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: +2\r\n\r\nab",
       400},
      {"Content-Length with chunked",
       "POST / HTTP/1.1\r\n" + host +
           "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"chunked with Content-Length",
       "POST / HTTP/1.1\r\n" + host +
           "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
       400},
      {"gzip", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", 501},
      {"gzip, chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n",
       501},
      {"chunked twice",
       "POST / HTTP/1.1\r\n" + host +
           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"an empty Transfer-Encoding", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: \r\n\r\n",
       400},
      {"chunked in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"no Host in HTTP/1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"a Host with a path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\n" + host + "X-A: one\r\n two\r\n\r\n", 400},
      {"obs-fold with a tab", "GET / HTTP/1.1\r\n" + host + "X-A: one\r\n\ttwo\r\n\r\n", 400},
      {"whitespace before the first field", "GET / HTTP/1.1\r\n " + host + "\r\n", 400},
      {"space before the colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
      {"a field without colon", "GET / HTTP/1.1\r\n" + host + "nocolon\r\n\r\n", 400},
      {"a NUL in a value", "GET / HTTP/1.1\r\n" + host + std::string("X-A: a\0b\r\n\r\n", 13), 400},
      {"a bare LF", "GET / HTTP/1.1\n" + host + "\r\n", 400},
      {"a bare CR", "GET / HTTP/1.1\r\nX-A: a\rb\r\n" + host + "\r\n", 400},
      {"two spaces in the request line", "GET  / HTTP/1.1\r\n" + host + "\r\n", 400},
      {"no version", "GET /\r\n" + host + "\r\n", 400},
      {"a lower-case version", "GET / http/1.1\r\n" + host + "\r\n", 400},
      {"HTTP/2.0", "GET / HTTP/2.0\r\n" + host + "\r\n", 505},
      {"a target with a space", "GET /a b HTTP/1.1\r\n" + host + "\r\n", 400},
      {"a target with a fragment", "GET /a#b HTTP/1.1\r\n" + host + "\r\n", 400},
      {"a target that is not a path", "GET a HTTP/1.1\r\n" + host + "\r\n", 400},
      {"* without OPTIONS", "GET * HTTP/1.1\r\n" + host + "\r\n", 400},
      {"a method that is not a token", "G(T / HTTP/1.1\r\n" + host + "\r\n", 400},
      {"an unknown expectation", "POST / HTTP/1.1\r\n" + host + "Expect: magic\r\n\r\n", 417},
      {"a chunk size that is not hex",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"a chunk size with a sign",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n-1\r\n", 400},
      {"a chunk size that overflows",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
       400},
      {"a chunk size over the body limit",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
       413},
      {"a bad chunk extension",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1;=x\r\n", 400},
      {"an unterminated quoted chunk extension",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1;a=\"x\r\n", 400},
      {"chunk data without CRLF",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1\r\naXY0\r\n\r\n", 400},
      {"a folded trailer",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n",
       400},
      {"a Content-Length over the limit",
       "POST / HTTP/1.1\r\n" + host + "Content-Length: 2049\r\n\r\n", 413},
      {"a Content-Length that overflows",
       "POST / HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999999\r\n\r\n", 413},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto p = parse(c.wire);
    REQUIRE(p.state() == State::kFailed);
    CHECK(p.refusal().status == c.status);
    CHECK_FALSE(p.refusal().message.empty());
    CHECK_FALSE(p.keep_alive());
  }
}

TEST_CASE("limits hold while reading: a long line is refused before more than the limit is held",
          "[http]") {
  const http::Limits l = small_limits();
  SECTION("a header line longer than the head limit: 431 after at most the limit") {
    std::string wire = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(1 << 20, 'a');
    std::size_t consumed = 0;
    auto p = parse(wire, l, 4096, &consumed);
    REQUIRE(p.state() == State::kFailed);
    CHECK(p.refusal().status == 431);
    CHECK(consumed <= l.max_header_bytes);
  }
  SECTION("a request line longer than the head limit: 414") {
    auto p = parse("GET /" + std::string(4096, 'a') + " HTTP/1.1\r\n", l);
    REQUIRE(p.state() == State::kFailed);
    CHECK(p.refusal().status == 414);
  }
  SECTION("more fields than allowed: 431") {
    std::string wire = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 10; ++i) {
      wire += "X-" + std::to_string(i) + ": v\r\n";
    }
    auto p = parse(wire + "\r\n", l);
    REQUIRE(p.state() == State::kFailed);
    CHECK(p.refusal().status == 431);
  }
  SECTION("a chunked body over the limit: 413 before the chunk is read") {
    std::string wire = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 100; ++i) {
      wire += "400\r\n" + std::string(0x400, 'x') + "\r\n";
    }
    std::size_t consumed = 0;
    auto p = parse(wire, l, 1000, &consumed);
    REQUIRE(p.state() == State::kFailed);
    CHECK(p.refusal().status == 413);
    CHECK(p.request().body.size() <= l.max_body);
    CHECK(consumed < 4 * 1024);
  }
  SECTION("chunk framing without data is bounded too") {
    std::string wire = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 2000; ++i) {
      wire += "1;ext=" + std::string(20, 'e') + "\r\nx\r\n";
    }
    auto p = parse(wire, l);
    REQUIRE(p.state() == State::kFailed);
    CHECK(p.refusal().status == 413);
  }
  SECTION("one chunk line with endless extensions") {
    auto p = parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a=" +
                       std::string(100000, 'b'),
                   l);
    REQUIRE(p.state() == State::kFailed);
    CHECK(p.refusal().status == 400);
  }
  SECTION("trailers count with the head") {
    std::string wire = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
    wire += "X-T: " + std::string(2000, 't') + "\r\n\r\n";
    auto p = parse(wire, l);
    REQUIRE(p.state() == State::kFailed);
    CHECK(p.refusal().status == 431);
  }
}

TEST_CASE("Expect 100-continue, persistence, pipelining and empty lines", "[http]") {
  SECTION("100-continue with an acceptable body") {
    auto p =
        parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    REQUIRE(p.state() == State::kBody);
    CHECK(p.expects_continue());
  }
  SECTION("100-continue with a body over the limit is refused at the head") {
    auto p =
        parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9999\r\n\r\n");
    REQUIRE(p.state() == State::kFailed);
    CHECK(p.refusal().status == 413);
    CHECK_FALSE(p.expects_continue());
  }
  SECTION("HTTP/1.0 closes unless it asks for keep-alive") {
    CHECK_FALSE(parse("GET / HTTP/1.0\r\n\r\n").keep_alive());
    CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive());
    CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive());
  }
  SECTION("pipelined requests are parsed one after the other") {
    const std::string wire =
        "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
        "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        "\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n";
    RequestParser p(small_limits());
    std::string_view rest = wire;
    std::vector<std::string> seen;
    while (!rest.empty()) {
      const std::size_t n = p.feed(rest);
      rest.remove_prefix(n);
      if (p.state() == State::kDone) {
        seen.push_back(p.request().path + ":" + p.request().body);
        p.reset();
      } else {
        REQUIRE(p.state() != State::kFailed);
        REQUIRE(n > 0);
      }
    }
    CHECK(seen == std::vector<std::string>{"/1:", "/2:abc", "/3:"});
  }
  SECTION("absolute-form targets") {
    auto p = parse("GET https://vault.example/keys?api-version=7.5 HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(p.state() == State::kDone);
    CHECK(p.request().path == "/keys");
    CHECK(*p.request().query_value("api-version") == "7.5");
  }
}

TEST_CASE("responses are framed by the front end and cannot be split", "[http]") {
  http::Response r;
  r.status = 200;
  r.content_type = "application/json";
  r.body = "{}";
  r.headers = {{"X-Ok", "yes"},
               {"X-Split", "a\r\nSet-Cookie: evil"},
               {"Bad Name", "v"},
               {"Content-Length", "999"},
               {"Connection", "keep-alive"}};
  const std::string wire = http::serialize_response(r, true, false, 1);
  CHECK(wire ==
        "HTTP/1.1 200 OK\r\nX-Ok: yes\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
  CHECK(http::serialize_response(r, false, true, 1).find("{}") == std::string::npos);
  http::Response empty;
  empty.status = 204;
  CHECK(http::serialize_response(empty, false, false, 0) ==
        "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
}
