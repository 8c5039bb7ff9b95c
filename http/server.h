// SPDX-License-Identifier: Apache-2.0
// keyport's HTTP/1.1 front end (keyport::http): the one HTTP server of the vault's REST API, the
// simulated attestation authority and the managed-identity token endpoint.
//
// It is built to hold under hostile clients (ARCHITECTURE.md, "HTTP front end"):
//  - every limit is enforced while reading: request line + headers (+ trailers) in total, the
//    number of fields, the body (a Content-Length over the limit is refused before a body byte is
//    read; a chunked body as it arrives, its chunk lines and extensions included);
//  - deadlines: the TLS handshake, the whole request head, the whole body (total, not per read),
//    an idle kept-alive connection, the whole response write. A slow or idle client holds one
//    connection slot (max_connections) and a few KiB, never a handler thread: requests are read on
//    an event loop (Boost.Asio, one I/O thread) and only complete requests go to the handler
//    workers;
//  - framing per RFC 9112: duplicate or different Content-Length, Content-Length with
//    Transfer-Encoding, a Transfer-Encoding other than chunked (501), a missing or repeated Host
//    on HTTP/1.1, obs-fold, whitespace before a colon, bad chunk sizes are refused; a request with
//    neither Content-Length nor Transfer-Encoding has no body; `Expect: 100-continue` gets 100
//    only when the announced body is acceptable; pipelined requests are answered in order; an
//    HTTP/1.0 connection closes unless it asked for keep-alive. After a refusal the connection is
//    closed (`Connection: close`).
//
// No exception crosses this API: start() returns errors as values, and a handler that throws is
// answered with error_response(500, ...).
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace keyport::http {

struct Request {
  std::string method;  // as sent
  std::string target;  // the request-target as sent
  std::string path;    // percent-decoded path, without the query
  std::vector<std::pair<std::string, std::string>> query;    // decoded ('+' is a space), in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  std::string body;
  std::string remote_addr;
  int version_minor = 1;  // HTTP/1.<minor>

  std::string header(std::string_view lower_name) const;  // the first; "" when absent
  bool has_header(std::string_view lower_name) const;
  const std::string* query_value(std::string_view name) const;  // first, nullptr when absent
};

struct Response {
  int status = 200;
  // Sent as given, except the framing fields the front end owns (Content-Length,
  // Transfer-Encoding, Connection) and fields whose name or value could split the response (CR,
  // LF, NUL), which are dropped.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type;  // "" = no body type
  std::string body;
  // Not sent: what the handler tells on_done (the access log's caller and operation).
  std::vector<std::pair<std::string, std::string>> notes;

  std::string header(std::string_view name) const;  // case-insensitive; "" when absent
  const std::string* note(std::string_view name) const;
};

struct Limits {
  std::size_t max_header_bytes = 64 * 1024;  // request line + headers (+ trailers)
  std::size_t max_headers = 100;
  std::size_t max_body = 1 << 20;
  std::chrono::milliseconds handshake_timeout{10000}, header_timeout{10000}, body_timeout{30000},
      idle_timeout{5000}, write_timeout{10000};
  std::size_t max_connections = 512;
  // After a response that closes the connection: how long the front end keeps reading (and
  // discarding) what the client still sends, so that the answer is not lost to a TCP reset.
  std::chrono::milliseconds linger_timeout{2000};
};

struct Options {
  std::string listen;       // "host:port" / "[v6]:port", port 0 = any free port
  SSL_CTX* tls = nullptr;   // nullptr = plain HTTP; the Server takes a reference (SSL_CTX_up_ref).
                            // Its ex_data index 0 and password callback user data must be unset
                            // (Boost.Asio's ssl::context owns them).
  std::size_t threads = 8;  // handler workers
  Limits limits;
  std::function<Response(const Request&)> handler;  // must not throw (wrap anyway: 500)
  // Shapes every answer the front end makes itself (400, 408, 413, 417, 431, 501, 505, 500):
  // status + message -> Response. Default: the message as text/plain.
  std::function<Response(int status, std::string_view message)> error_response;
  // Called once per answered request (also front-end refusals; `request` then holds what was
  // parsed): the access log. For handler answers it runs on the worker that ran the handler.
  std::function<void(const Request&, const Response&, std::chrono::nanoseconds elapsed)> on_done;
  // Called on every response before it is sent (adds x-ms-request-id etc.).
  std::function<void(const Request&, Response&)> stamp;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> start(Options options);  // bound and accepting on return
  ~Server();                                                      // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;
  // Stops accepting, closes idle and half-read connections, lets in-flight handlers finish and
  // their answers be written (bounded by write_timeout), then closes everything. Idempotent;
  // thread-safe; must not be called from a handler.
  void stop();
  // Connections open right now (accepted and not yet closed).
  std::size_t connections() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// The reason phrase of a status ("Not Found"); "Unknown" for codes it does not know.
std::string_view reason_phrase(int status);

}  // namespace keyport::http
