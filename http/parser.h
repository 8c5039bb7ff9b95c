// SPDX-License-Identifier: Apache-2.0
// The request side of the HTTP front end without a socket: an incremental HTTP/1.1 request parser
// that enforces the limits while it reads (http::Limits) and the framing rules of RFC 9112, and
// the response serialiser. http::Server feeds it what it reads; the fuzz target and the unit
// tests feed it raw bytes the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/server.h"

namespace keyport::http {

// What the front end answers itself when a request is refused.
struct Refusal {
  int status = 400;
  std::string message;
};

class RequestParser {
 public:
  enum class State {
    kHead,    // reading the request line and the header fields
    kBody,    // the head is complete and valid; reading the body
    kDone,    // one whole request
    kFailed,  // refused: refusal() says with what; the connection must close
  };

  explicit RequestParser(const Limits& limits);

  // Consumes bytes of the connection's stream and returns how many it used. It stops early at the
  // end of the head (so that the caller can send 100 Continue and set the body deadline before
  // feeding the rest) and at the end of the request (what follows is the next, pipelined,
  // request). It consumes nothing in kDone or kFailed.
  std::size_t feed(std::string_view bytes);

  State state() const { return m_state; }
  // Whether any byte of this request arrived (the idle deadline becomes the header deadline).
  bool started() const { return m_started; }
  // The request so far: method, target, path, query and headers once the head is parsed (as
  // much as was parsed when it failed), the body once it is done.
  const Request& request() const { return m_request; }
  Request take_request() { return std::move(m_request); }
  const Refusal& refusal() const { return m_refusal; }

  // After the head: whether a body follows, and whether the client waits for 100 Continue first
  // (HTTP/1.1, `Expect: 100-continue`, a body announced).
  bool body_expected() const { return m_chunked || m_remaining > 0; }
  bool expects_continue() const { return m_expect_continue; }
  // After the head: whether the connection may carry another request after this one's answer.
  bool keep_alive() const { return m_keep_alive; }
  // Bytes of the request head consumed (request line, fields, the empty line; leading empty lines
  // excluded).
  std::size_t head_bytes() const { return m_head_size; }

  // Ready for the next request of the same connection.
  void reset();

 private:
  enum class Chunk { kSize, kData, kDataEnd, kTrailer };

  std::size_t feed_head(std::string_view bytes);
  std::size_t feed_body(std::string_view bytes);
  std::size_t feed_chunked(std::string_view bytes);
  void parse_head(std::string_view head);
  bool parse_request_line(std::string_view line);
  bool parse_field_line(std::string_view line, bool trailer);
  bool check_framing();
  bool parse_chunk_line(std::string_view line);
  bool fail(int status, std::string message);

  Limits m_limits;
  State m_state = State::kHead;
  bool m_started = false;
  std::string m_head;         // the head so far (bounded by max_header_bytes)
  std::size_t m_scan = 0;     // where the search for the empty line resumes
  std::size_t m_leading = 0;  // empty lines skipped before the request line (RFC 9112 §2.2)
  std::size_t m_head_size = 0;
  Request m_request;
  Refusal m_refusal;
  bool m_chunked = false;
  std::uint64_t m_remaining = 0;  // Content-Length bytes still to read
  bool m_expect_continue = false;
  bool m_keep_alive = false;
  std::size_t m_fields = 0;  // header fields, then trailer fields too
  // Chunked bodies.
  Chunk m_chunk = Chunk::kSize;
  std::string m_line;              // the chunk line or trailer line being read
  std::uint64_t m_chunk_left = 0;  // data bytes of the current chunk still to read
  std::size_t m_crlf = 0;          // bytes of the CRLF after chunk data seen
  std::size_t m_framing = 0;       // chunk lines and CRLFs so far
  std::size_t m_trailer_bytes = 0;
};

// The bytes of `response` on the wire: status line, its fields, Content-Type and Content-Length
// (none for 1xx, 204 and 304), `Connection: close` when `close` (or `Connection: keep-alive` for
// an HTTP/1.0 request that keeps the connection), the body unless `head_request`.
std::string serialize_response(const Response& response, bool close, bool head_request,
                               int request_minor);

// Percent-decoding as the path and the query use it: a valid %XX becomes its byte, anything else
// stays as written; with `plus_is_space`, '+' becomes ' '.
std::string percent_decode(std::string_view text, bool plus_is_space);

}  // namespace keyport::http
