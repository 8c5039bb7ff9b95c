// SPDX-License-Identifier: Apache-2.0
// Hostile clients for the HTTP front end's tests: a raw TCP connection, optionally wrapped in TLS
// (OpenSSL, written for the tests), that sends exactly the bytes a test gives and reads answers
// byte by byte, with every wait bounded by a hang guard scaled by KEYPORT_TEST_TIME_SCALE. Also
// a TLS context for an http::Server made with fresh local certificates, and this process's VmRSS.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"

namespace keyport::test {

// One answer as read off the wire.
struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string header(std::string_view lower_name) const;  // "" when absent
  // error.code of a Key Vault error body ("" when none).
  std::string code() const;
  Json json() const;  // null when the body is not JSON
  std::string describe() const;
};

class RawConnection {
 public:
  // Connects to 127.0.0.1:`port`; with `tls`, runs the TLS handshake too (unless `handshake` is
  // false: then the socket stays silent, as a client that never sends its hello). REQUIREs
  // success.
  RawConnection(int port, SSL_CTX* tls = nullptr, bool handshake = true);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends all of `bytes`; false when the connection failed (reset, closed).
  bool send(std::string_view bytes);
  // Whether an answer (or the end of the connection) can be read within `wait`.
  bool readable(std::chrono::milliseconds wait);
  // Reads one answer (an interim 1xx included), waiting at most the scaled `budget_seconds`;
  // nullopt when the connection ended or the budget ran out first.
  std::optional<RawResponse> read_response(double budget_seconds = 30);
  // Waits until the server closes the connection (EOF, reset or a TLS close); true when it did
  // within the scaled `budget_seconds`. Anything read meanwhile is kept in `leftover()`.
  bool wait_closed(double budget_seconds = 30);
  const std::string& leftover() const { return m_buffer; }
  int fd() const { return m_fd; }

 private:
  // Appends what arrives within `deadline` to m_buffer; 0 at the end of the connection, -1 on
  // timeout, else the number of bytes.
  long read_more(std::chrono::steady_clock::time_point deadline);

  int m_fd = -1;
  SSL* m_ssl = nullptr;
  std::string m_buffer;
  bool m_eof = false;
};

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;

// A client TLS context that trusts the CA in `ca_pem` (no verification when empty).
SslCtx client_tls(const std::string& ca_pem = {});

// A server TLS context with a fresh local CA and server certificate (x509::make_local_tls);
// `ca_pem` receives the CA.
SslCtx server_tls(std::string* ca_pem = nullptr);

// VmRSS of this process in KiB.
long vm_rss_kib();

}  // namespace keyport::test
