// SPDX-License-Identifier: Apache-2.0
// The identity endpoint's listener (vault/identity.h IdentityServer).
#include <httplib.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/net.h"
#include "core/strings.h"
#include "vault/identity.h"

namespace keyport::vault {

struct IdentityServer::Impl {
  const IdentityEndpoint* endpoint = nullptr;
  std::function<void(const std::string&)> on_request;
  httplib::Server http;
  std::thread listener;
  std::string origin;
  std::mutex mutex;
  bool stopped = false;
};

namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

IdentityRequest identity_request(const httplib::Request& req) {
  IdentityRequest r;
  r.method = req.method;
  r.path = req.path;
  for (const auto& [k, v] : req.params) {
    r.query.emplace_back(k, v);
  }
  for (const auto& [k, v] : req.headers) {
    r.headers.emplace_back(ascii_lower(k), v);
  }
  r.content_type = req.get_header_value("Content-Type");
  r.body = req.body;
  return r;
}

}  // namespace

Result<std::unique_ptr<IdentityServer>> IdentityServer::start(
    const std::string& listen, const IdentityEndpoint& endpoint,
    std::function<void(const std::string&)> on_request) {
  auto parsed = parse_host_port(listen, PortZero::kAllow);
  if (!parsed) {
    return make_error(ErrorCode::kInvalidArgument, "--identity-listen " + parsed.error().message());
  }
  if (!is_loopback(parsed->host)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--identity-listen " + listen +
                          ": the identity endpoint is plain HTTP and gives tokens to whoever "
                          "asks, so it listens on a loopback address only (127.0.0.1, ::1)");
  }
  auto impl = std::make_unique<Impl>();
  impl->endpoint = &endpoint;
  impl->on_request = std::move(on_request);
  Impl* raw = impl.get();
  auto handler = [raw](const httplib::Request& req, httplib::Response& res) {
    IdentityResponse r = raw->endpoint->handle(identity_request(req));
    res.status = r.status;
    res.set_content(r.body, "application/json; charset=utf-8");
    if (raw->on_request) {
      raw->on_request(req.remote_addr + " identity=" + escape_for_log(r.caller) + " " +
                      escape_for_log(req.method) + " " + escape_for_log(req.path) + " " +
                      std::to_string(r.status));
    }
  };
  impl->http.Get(".*", handler);
  impl->http.Post(".*", handler);
  impl->http.set_payload_max_length(64 * 1024);
  impl->http.set_read_timeout(5);
  impl->http.set_write_timeout(5);
  impl->http.set_keep_alive_timeout(5);
  impl->http.set_tcp_nodelay(true);
  int port = parsed->port == 0 ? impl->http.bind_to_any_port(parsed->host)
                               : (impl->http.bind_to_port(parsed->host, parsed->port)
                                      ? static_cast<int>(parsed->port)
                                      : -1);
  if (port <= 0) {
    return make_error(ErrorCode::kIo, "cannot listen on " + listen + " (address in use?)");
  }
  impl->origin = "http://" + join_host_port(parsed->host, static_cast<std::uint16_t>(port));
  impl->listener = std::thread([raw] { raw->http.listen_after_bind(); });
  for (int i = 0; i < 5000 && !impl->http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::unique_ptr<IdentityServer> server(new IdentityServer(std::move(impl)));
  if (!server->m_impl->http.is_running()) {
    server->stop();
    return make_error(ErrorCode::kIo, "the identity endpoint did not start");
  }
  return server;
}

IdentityServer::IdentityServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

IdentityServer::~IdentityServer() {
  stop();
}

const std::string& IdentityServer::origin() const {
  return m_impl->origin;
}

void IdentityServer::stop() {
  {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    if (m_impl->stopped) {
      return;
    }
    m_impl->stopped = true;
  }
  m_impl->http.stop();
  if (m_impl->listener.joinable()) {
    m_impl->listener.join();
  }
}

}  // namespace keyport::vault
