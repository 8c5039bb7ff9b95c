// SPDX-License-Identifier: Apache-2.0
// The HTTPS transport: cpp-httplib's SSLClient (public API only), one kept-alive connection.
#include <httplib.h>
#include <openssl/x509.h>
#include <signal.h>

#include <csignal>

#include "client/transports.h"
#include "skr/url.h"

namespace keyport::vault {
namespace {

// A Content-Length value; anything but digits counts as 0 (httplib refuses it while reading).
std::uint64_t declared_length(const std::string& text) {
  std::uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return 0;
    }
    if (n > (UINT64_MAX - 9) / 10) {
      return UINT64_MAX;
    }
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

class HttpsTransport final : public Transport {
 public:
  HttpsTransport(const std::string& host, int port, HttpsOptions options)
      : m_client(host, port), m_options(std::move(options)) {
    if (!m_options.ca_file.empty()) {
      m_client.set_ca_cert_path(m_options.ca_file);
    }
    m_client.enable_server_certificate_verification(true);
    m_client.set_keep_alive(true);
    m_client.set_connection_timeout(m_options.connect_timeout);
    m_client.set_read_timeout(m_options.read_timeout);
    m_client.set_write_timeout(m_options.write_timeout);
  }

  Result<Answer> send(std::string_view method, const std::string& target,
                      const std::optional<std::string>& body) override {
    httplib::Request req;
    req.method = std::string(method);
    req.path = with_api_version(target);
    // The header is built for this request only; the token stays in SecretBytes otherwise.
    req.headers.emplace(
        "Authorization",
        "Bearer " + std::string(as_chars(m_options.token.reveal(SecretAccess::unsafe()))));
    req.headers.emplace("Accept", "application/json");
    if (body) {
      req.body = *body;
      req.headers.emplace("Content-Type", "application/json");
    }
    // The answer is read whole, so its size is bounded twice: by Content-Length before any body
    // byte is read, and by what actually arrives (chunked answers have no length).
    const std::size_t limit = m_options.max_response_bytes;
    bool too_large = false;
    std::string received;
    req.response_handler = [&](const httplib::Response& r) {
      if (r.has_header("Content-Length")) {
        if (declared_length(r.get_header_value("Content-Length")) > limit) {
          too_large = true;
          return false;
        }
      }
      return true;
    };
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      if (received.size() + n > limit) {
        too_large = true;
        return false;
      }
      received.append(data, n);
      return true;
    };
    auto res = m_client.send(req);
    wipe(req);
    if (too_large) {
      return make_error(ErrorCode::kFormat, "the vault at " + m_options.url +
                                                " sent an answer larger than " +
                                                std::to_string(limit) + " bytes");
    }
    if (!res) {
      std::string why = httplib::to_string(res.error());
      if (res.error() == httplib::Error::SSLServerVerification) {
        why += " (" +
               std::string(X509_verify_cert_error_string(m_client.get_openssl_verify_result())) +
               "; give the vault CA with --ca-file)";
      }
      return make_error(ErrorCode::kIo, "cannot reach the vault at " + m_options.url + ": " + why);
    }
    return Answer{res->status, std::move(received)};
  }

 private:
  static void wipe(httplib::Request& req) {
    for (auto& [name, value] : req.headers) {
      if (name == "Authorization") {
        std::fill(value.begin(), value.end(), '\0');
      }
    }
    std::fill(req.body.begin(), req.body.end(), '\0');
  }

  httplib::SSLClient m_client;
  HttpsOptions m_options;
};

}  // namespace

Result<std::unique_ptr<Transport>> make_https_transport(HttpsOptions options) {
  const std::string& url = options.url;
  auto parsed = skr::parse_url(url);
  if (!parsed || parsed->scheme != "https") {
    return make_error(ErrorCode::kInvalidArgument,
                      "vault URL " + url + ": must be https://host:port");
  }
  if (parsed->path_and_query.find_first_not_of('/') != std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument, "vault URL " + url + ": no path allowed");
  }
  if (options.token.empty()) {
    return make_error(ErrorCode::kAuth, "no bearer token for " + url);
  }
  if (!options.ca_file.empty() && !std::filesystem::exists(options.ca_file)) {
    return make_error(ErrorCode::kNotFound, "--ca-file " + options.ca_file + " does not exist");
  }
  std::signal(SIGPIPE, SIG_IGN);  // a server closing a kept-alive connection must not kill us
  const std::string host = parsed->host;
  const int port = parsed->effective_port();
  return std::unique_ptr<Transport>(new HttpsTransport(host, port, std::move(options)));
}

}  // namespace keyport::vault
