// SPDX-License-Identifier: Apache-2.0
// Target: the HTTP front end's request parsing (http/parser.h RequestParser), the same parse and
// validate path http::Server runs on every byte a client sends, with pipelining: after each whole
// request the parser is reset and fed the rest of the stream, as the server does.
//
// Input: byte 0 picks the size of the pieces the stream is fed in the second pass (1 to 64
// bytes); the rest is the byte stream of one connection.
// Invariants: the parser never uses more bytes than it is given and always makes progress until
// it is done or refuses; no request exceeds the limits (head bytes, field count, body size); a
// refusal has a status the front end answers with and a message; feeding the stream in one piece
// or in small pieces gives the same requests and the same refusal (the parser does not depend on
// how reads split the stream); every answer it would produce serialises to a well-framed response.
// max_len 8 KiB.
#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"
#include "tests/fuzz/fuzz.h"

namespace {

using keyport::http::RequestParser;
using State = RequestParser::State;

keyport::http::Limits fuzz_limits() {
  keyport::http::Limits l;
  l.max_header_bytes = 512;
  l.max_headers = 16;
  l.max_body = 1024;
  return l;
}

// One outcome per request of the stream: "<method> <target> <path> <fields> <body>" or the
// refusal's status (which ends the connection).
std::vector<std::string> run(std::string_view stream, std::size_t step) {
  const auto limits = fuzz_limits();
  std::vector<std::string> out;
  RequestParser p(limits);
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::size_t n = step == 0 ? stream.size() - pos : std::min(step, stream.size() - pos);
    const std::size_t used = p.feed(stream.substr(pos, n));
    KEYPORT_FUZZ_CHECK(used <= n);
    pos += used;
    if (p.state() == State::kFailed) {
      const int s = p.refusal().status;
      KEYPORT_FUZZ_CHECK(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 ||
                         s == 505);
      KEYPORT_FUZZ_CHECK(!p.refusal().message.empty());
      KEYPORT_FUZZ_CHECK(!p.keep_alive());
      out.push_back("refused " + std::to_string(s));
      return out;
    }
    if (p.state() == State::kDone) {
      const auto& r = p.request();
      KEYPORT_FUZZ_CHECK(r.body.size() <= limits.max_body);
      KEYPORT_FUZZ_CHECK(r.headers.size() <= limits.max_headers);
      KEYPORT_FUZZ_CHECK(p.head_bytes() <= limits.max_header_bytes);
      KEYPORT_FUZZ_CHECK(!r.method.empty() && !r.target.empty());
      KEYPORT_FUZZ_CHECK(r.version_minor == 0 || r.version_minor == 1);
      for (const auto& [name, value] : r.headers) {
        KEYPORT_FUZZ_CHECK(!name.empty());
        for (char c : name) {
          KEYPORT_FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
        }
        KEYPORT_FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos);
      }
      std::string fields;
      for (const auto& [name, value] : r.headers) {
        fields += name + "=" + value + ";";
      }
      out.push_back(r.method + " " + r.target + " " + r.path + " " + fields + " " + r.body);
      // The answer to it is framed by the front end whatever the handler puts in it.
      keyport::http::Response res;
      res.status = 200;
      res.body = r.body;
      res.headers = r.headers;
      const std::string wire =
          keyport::http::serialize_response(res, !p.keep_alive(), r.method == "HEAD", 1);
      KEYPORT_FUZZ_CHECK(wire.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
      KEYPORT_FUZZ_CHECK(wire.find("\r\n\r\n") != std::string::npos);
      p.reset();
      continue;
    }
    // Still reading: it made progress (it may stop early, at the end of the head or when empty
    // lines before the request line were dropped, and then takes the rest in the next call).
    KEYPORT_FUZZ_CHECK(used > 0);
  }
  if (p.started()) {
    out.push_back("incomplete");
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(8 * 1024);
  if (size < 1)
    return 0;
  const std::size_t step = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto whole = run(stream, 0);
  const auto pieces = run(stream, step);
  KEYPORT_FUZZ_CHECK(whole == pieces);
  return 0;
}
