// SPDX-License-Identifier: Apache-2.0
// The identity endpoint's listener (vault/identity.h IdentityServer) on keyport::http: plain HTTP,
// loopback only, with the front end's limits and deadlines (a token request is small: 16 KiB of
// head and 16 KiB of body are plenty).
#include <mutex>

#include "core/json.h"
#include "core/net.h"
#include "core/strings.h"
#include "http/server.h"
#include "vault/identity.h"

namespace keyport::vault {

struct IdentityServer::Impl {
  std::unique_ptr<http::Server> http;
  std::string origin;
  std::mutex mutex;
  bool stopped = false;
};

namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

IdentityRequest identity_request(const http::Request& req) {
  IdentityRequest r;
  r.method = req.method;
  r.path = req.path;
  r.query = req.query;
  r.headers = req.headers;
  r.content_type = req.header("content-type");
  r.body = req.body;
  return r;
}

http::Response json_answer(int status, std::string body) {
  http::Response res;
  res.status = status;
  res.content_type = "application/json; charset=utf-8";
  res.body = std::move(body);
  return res;
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
  http::Options o;
  o.listen = listen;
  o.threads = 2;
  o.limits.max_header_bytes = 16 * 1024;
  o.limits.max_body = 16 * 1024;
  o.limits.max_connections = 256;
  o.handler = [&endpoint](const http::Request& req) {
    IdentityResponse r = endpoint.handle(identity_request(req));
    http::Response res = json_answer(r.status, std::move(r.body));
    res.notes.emplace_back("identity", r.caller);
    return res;
  };
  // The front end's own refusals (400, 408, 413, 431, ...) in the endpoint's OAuth error shape.
  o.error_response = [](int status, std::string_view message) {
    return json_answer(
        status, dump_json(Json{{"error", status >= 500 ? "internal_error" : "invalid_request"},
                               {"error_description", std::string(message)}}));
  };
  if (on_request) {
    o.on_done = [on_request](const http::Request& req, const http::Response& res,
                             std::chrono::nanoseconds) {
      const std::string* who = res.note("identity");
      on_request(req.remote_addr + " identity=" + escape_for_log(who != nullptr ? *who : "-") +
                 " " + escape_for_log(req.method) + " " + escape_for_log(req.path) + " " +
                 std::to_string(res.status));
    };
  }
  KEYPORT_ASSIGN_OR_RETURN(std::unique_ptr<http::Server> server, http::Server::start(std::move(o)));
  auto impl = std::make_unique<Impl>();
  impl->origin =
      "http://" + join_host_port(parsed->host, static_cast<std::uint16_t>(server->port()));
  impl->http = std::move(server);
  return std::unique_ptr<IdentityServer>(new IdentityServer(std::move(impl)));
}

IdentityServer::IdentityServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

IdentityServer::~IdentityServer() {
  stop();
}

const std::string& IdentityServer::origin() const {
  return m_impl->origin;
}

void IdentityServer::stop() {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  if (m_impl->stopped) {
    return;
  }
  m_impl->stopped = true;
  m_impl->http->stop();
}

}  // namespace keyport::vault
