// SPDX-License-Identifier: Apache-2.0
#include "tests/http/raw_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "core/ossl.h"
#include "core/strings.h"
#include "core/x509.h"
#include "tests/support/support.h"

namespace keyport::test {
using Clock = std::chrono::steady_clock;

std::string RawResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) {
      return v;
    }
  }
  return {};
}

Json RawResponse::json() const {
  auto j = parse_json_strict(body);
  return j ? std::move(*j) : Json();
}

std::string RawResponse::code() const {
  const Json j = json();
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].contains("code") && j["error"]["code"].is_string()) {
    return j["error"]["code"].get<std::string>();
  }
  return {};
}

std::string RawResponse::describe() const {
  std::string out = std::to_string(status);
  for (const auto& [k, v] : headers) {
    out += "\n" + k + ": " + v;
  }
  return out + "\n\n" + body;
}

RawConnection::RawConnection(int port, SSL_CTX* tls, bool handshake) {
  ::signal(SIGPIPE, SIG_IGN);
  m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(m_fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  int one = 1;
  ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // No wait below can block for ever: a blocking call returns after this (scaled) hang guard.
  const auto guard = time_budget(60);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(guard.count() / 1000);
  ::setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(m_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (tls != nullptr) {
    m_ssl = SSL_new(tls);
    REQUIRE(m_ssl != nullptr);
    SSL_set_fd(m_ssl, m_fd);
    SSL_set_tlsext_host_name(m_ssl, "localhost");
    SSL_set1_host(m_ssl, "127.0.0.1");
    if (handshake) {
      const int rc = SSL_connect(m_ssl);
      if (rc != 1) {
        char err[256] = {};
        ERR_error_string_n(ERR_get_error(), err, sizeof err);
        FAIL("TLS handshake failed: " << err);
      }
    }
  }
}

RawConnection::~RawConnection() {
  if (m_ssl != nullptr) {
    SSL_free(m_ssl);
  }
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

bool RawConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    long n = 0;
    if (m_ssl != nullptr) {
      n = SSL_write(m_ssl, bytes.data(),
                    static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 20)));
    } else {
      n = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    }
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool RawConnection::readable(std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  while (true) {
    if (!m_buffer.empty() || m_eof || (m_ssl != nullptr && SSL_pending(m_ssl) > 0)) {
      return true;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{m_fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::max<long>(left, 0))) <= 0) {
      return false;
    }
    if (m_ssl == nullptr) {
      return true;
    }
    // TLS: what arrived may be session tickets only (TLS 1.3 sends them after the handshake),
    // which are not an answer. Read without blocking to see.
    const int flags = ::fcntl(m_fd, F_GETFL);
    ::fcntl(m_fd, F_SETFL, flags | O_NONBLOCK);
    char buf[16384];
    const int n = SSL_read(m_ssl, buf, sizeof buf);
    const int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(m_ssl, n);
    ::fcntl(m_fd, F_SETFL, flags);
    ERR_clear_error();
    if (n > 0) {
      m_buffer.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    if (err != SSL_ERROR_WANT_READ) {
      m_eof = true;
      return true;
    }
    if (left <= 0) {
      return false;
    }
  }
}

long RawConnection::read_more(Clock::time_point deadline) {
  if (m_eof) {
    return 0;
  }
  if (m_ssl == nullptr || SSL_pending(m_ssl) == 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return -1;
    }
    pollfd p{m_fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready == 0) {
      return -1;
    }
  }
  char buf[16384];
  long n = 0;
  if (m_ssl != nullptr) {
    n = SSL_read(m_ssl, buf, sizeof buf);
    if (n <= 0) {
      ERR_clear_error();
    }
  } else {
    n = ::recv(m_fd, buf, sizeof buf, 0);
  }
  if (n <= 0) {
    m_eof = true;
    return 0;
  }
  m_buffer.append(buf, static_cast<std::size_t>(n));
  return n;
}

std::optional<RawResponse> RawConnection::read_response(double budget_seconds) {
  const auto deadline = Clock::now() + time_budget(budget_seconds);
  std::size_t end = std::string::npos;
  while ((end = m_buffer.find("\r\n\r\n")) == std::string::npos) {
    if (read_more(deadline) <= 0) {
      return std::nullopt;
    }
  }
  RawResponse r;
  const std::string head = m_buffer.substr(0, end);
  std::size_t pos = head.find("\r\n");
  const std::string status_line = head.substr(0, pos);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
    return std::nullopt;
  }
  r.status = std::stoi(status_line.substr(9, 3));
  while (pos != std::string::npos && pos < head.size()) {
    const std::size_t next = head.find("\r\n", pos + 2);
    const std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      r.headers.emplace_back(ascii_lower(line.substr(0, colon)),
                             std::string(trim(line.substr(colon + 1))));
    }
    pos = next;
  }
  m_buffer.erase(0, end + 4);
  std::size_t length = 0;
  if (!r.header("content-length").empty()) {
    length = std::stoul(r.header("content-length"));
  }
  while (m_buffer.size() < length) {
    if (read_more(deadline) <= 0) {
      return std::nullopt;
    }
  }
  r.body = m_buffer.substr(0, length);
  m_buffer.erase(0, length);
  return r;
}

bool RawConnection::wait_closed(double budget_seconds) {
  const auto deadline = Clock::now() + time_budget(budget_seconds);
  while (true) {
    const long n = read_more(deadline);
    if (n == 0) {
      return true;
    }
    if (n < 0) {
      return false;
    }
  }
}

SslCtx client_tls(const std::string& ca_pem) {
  SslCtx ctx(SSL_CTX_new(TLS_client_method()));
  REQUIRE(ctx);
  if (ca_pem.empty()) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
  auto certs = x509::certificates_from_pem(ca_pem);
  REQUIRE(certs.has_value());
  for (auto& c : *certs) {
    REQUIRE(X509_STORE_add_cert(store, c.get()) == 1);
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

SslCtx server_tls(std::string* ca_pem) {
  auto tls = x509::make_local_tls("keyport http test CA");
  REQUIRE(tls.has_value());
  if (ca_pem != nullptr) {
    *ca_pem = tls->ca_cert_pem;
  }
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  REQUIRE(ctx);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  auto certs = x509::certificates_from_pem(tls->server_cert_pem);
  REQUIRE(certs.has_value());
  REQUIRE(SSL_CTX_use_certificate(ctx.get(), (*certs)[0].get()) == 1);
  const auto key_pem = tls->server_key_pem.reveal(SecretAccess::unsafe());
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  ossl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(key);
  REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), key.get()) == 1);
  return ctx;
}

long vm_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

}  // namespace keyport::test
