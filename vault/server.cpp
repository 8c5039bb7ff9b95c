// SPDX-License-Identifier: Apache-2.0
// The HTTPS server: a RestApi behind keyport's HTTP front end (http/server.h: TLS wiring, limits
// and deadlines, the handler pool), the access log, DIR/server.json, the rotation ticker, graceful
// stop, and serve_until_signal.
#include "vault/server.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>

#include "core/file_io.h"
#include "core/log.h"
#include "core/net.h"
#include "core/random.h"
#include "core/strings.h"
#include "core/version.h"
#include "http/server.h"
#include "vault/rbac.h"
#include "vault/rest_internal.h"
#include "vault/throttle.h"
#include "vault/tls.h"

namespace keyport::vault {
namespace fs = std::filesystem;

namespace {

constexpr const char* kServerInfoFile = "server.json";
constexpr const char* kAccessFile = "access.json";
constexpr const char* kTokenFile = "admin.token";
constexpr const char* kIdentityEnvFile = "identity.env";
constexpr const char* kJsonType = "application/json; charset=utf-8";

}  // namespace

// --- base URL ---------------------------------------------------------------------------------

namespace {

// The host of "https://host[:port]" (an IPv6 address without its brackets).
std::string host_part(const std::string& base_url) {
  return host_only(std::string_view(base_url).substr(base_url.find("://") + 3));
}

bool is_local_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string url_host(const std::string& host) {
  std::string h = host;
  if (h == "0.0.0.0" || h == "::" || h.empty()) {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') {
      h = ascii_lower(name);
    } else {
      h = "127.0.0.1";
    }
  }
  return h.find(':') != std::string::npos ? "[" + h + "]" : h;
}

}  // namespace

std::string effective_base_url(const VaultConfig& config, const std::string& host, int port) {
  if (config.base_url_given) {
    return config.base_url;
  }
  const std::string default_host =
      ascii_lower(config.name) +
      (config.flavor == Flavor::kManagedHsm ? ".managedhsm.azure.net" : ".vault.azure.net");
  const std::string h = host_part(ascii_lower(config.base_url));
  if (!config.base_url.empty() && h != default_host && !is_local_host(h)) {
    return config.base_url;
  }
  return "https://" + url_host(host) + ":" + std::to_string(port);
}

// --- challenge resource -----------------------------------------------------------------------

namespace {

std::string_view azure_resource(Flavor flavor) {
  return flavor == Flavor::kManagedHsm ? "https://managedhsm.azure.net" : "https://vault.azure.net";
}

bool ends_with_label(std::string_view host, std::string_view suffix) {
  return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix;
}

}  // namespace

Result<ChallengeResource> challenge_resource(std::string_view choice, const VaultConfig& config) {
  const std::string base = ascii_lower(config.base_url);
  const std::string host = host_part(base);
  const std::string_view authority = std::string_view(base).substr(base.find("://") + 3);
  ChallengeResource r;
  std::string c = ascii_lower(trim(choice));
  if (c.empty()) {
    const bool azure_host =
        ends_with_label(host, ".vault.azure.net") || ends_with_label(host, ".managedhsm.azure.net");
    c = azure_host ? "azure" : "self";
  }
  if (c == "azure") {
    r.resource = std::string(azure_resource(config.flavor));
    const std::string suffix =
        config.flavor == Flavor::kManagedHsm ? ".managedhsm.azure.net" : ".vault.azure.net";
    if (!ends_with_label(host, suffix)) {
      r.warning = "the challenge names " + r.resource + " but the vault's host " + host +
                  " is not under " + suffix +
                  ": Azure SDKs refuse that challenge unless told not to verify it";
    }
    return r;
  }
  if (c == "self") {
    // SDKs accept a challenge when the request's host ends with "." + the resource's host (the
    // Python SDK compares host:port), so the resource is the base URL minus its first label.
    const std::size_t dot = host.find('.');
    if (is_ip_literal(host) || dot == std::string::npos) {
      r.resource = "https://" + std::string(authority);
      r.warning = "the base URL " + config.base_url +
                  " has no parent domain, so Azure SDKs refuse its challenge unless told not to "
                  "verify it; give the vault a name such as https://" +
                  ascii_lower(config.name) + ".localhost:PORT (vault init --base-url)";
      return r;
    }
    r.resource = "https://" + std::string(authority.substr(dot + 1));
    return r;
  }
  if (c.rfind("https://", 0) == 0 || c.rfind("http://", 0) == 0) {
    std::string u(trim(choice));
    const std::size_t authority_at = u.find("://") + 3;
    while (u.size() > authority_at && u.back() == '/') {
      u.pop_back();
    }
    if (u.size() <= authority_at || u.find('/', authority_at) != std::string::npos) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--challenge-resource " + std::string(choice) +
                            ": give a URL without a path (https://host[:port])");
    }
    r.resource = u;
    return r;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "--challenge-resource " + std::string(choice) + ": give azure, self or a URL");
}

// --- Server -----------------------------------------------------------------------------------

namespace {

// Every answer, the ones the HTTP front end makes itself included, names its request and the
// service.
void stamp_response(http::Response& res) {
  if (res.header("x-ms-request-id").empty()) {
    res.headers.emplace_back("x-ms-request-id", random_uuid());  // as Key Vault's are
    // Which service answered (Key Vault sends its build number).
    res.headers.emplace_back("x-ms-keyvault-service-version",
                             "keyport-" + std::string(keyport::version()));
  }
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace
// A named namespace: Server::Impl holds one (an anonymous type would differ per translation unit).
namespace detail {

class AccessLog {
 public:
  Status open(const std::optional<fs::path>& file) {
    if (!file) {
      return {};
    }
    int fd = ::open(file->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      return make_error(ErrorCode::kIo, "cannot open the access log " + file->string());
    }
    m_file = ::fdopen(fd, "a");
    if (m_file == nullptr) {
      ::close(fd);
      return make_error(ErrorCode::kIo, "cannot open the access log " + file->string());
    }
    return {};
  }
  ~AccessLog() {
    if (m_file != nullptr) {
      std::fclose(m_file);
    }
  }
  void write(const std::string& line) {
    std::lock_guard<std::mutex> lock(m_mutex);
    std::FILE* out = m_file != nullptr ? m_file : stderr;
    std::fputs(line.c_str(), out);
    std::fputc('\n', out);
    std::fflush(out);
  }

 private:
  std::mutex m_mutex;
  std::FILE* m_file = nullptr;
};

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

}  // namespace detail
namespace {

// --listen: "host:port" or "[IPv6]:port"; port 0 picks a free port.
Result<HostPort> parse_listen(const std::string& text) {
  auto parsed = parse_host_port(text, PortZero::kAllow);
  if (!parsed) {
    return make_error(ErrorCode::kInvalidArgument, "--listen " + parsed.error().message());
  }
  return parsed;
}

std::string reason_code(int status) {
  switch (status) {
    case 400:
      return std::string(kBadParameter);
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 413:
      return "RequestEntityTooLarge";
    case 414:
      return "RequestUriTooLong";
    default:
      break;
  }
  return status >= 500 ? std::string(kInternalServerError) : "BadRequest";
}

http::Response json_response(int status, const std::string& body) {
  http::Response res;
  res.status = status;
  if (!body.empty()) {
    res.body = body;
    res.content_type = kJsonType;
  }
  return res;
}

// A Key Vault error body: {"error": {"code", "message"}}.
http::Response kv_error(int status, const std::string& code, std::string_view message) {
  return json_response(
      status, dump_json(Json{{"error", {{"code", code}, {"message", std::string(message)}}}}));
}

RestRequest to_rest(const http::Request& req) {
  RestRequest r;
  // HEAD is answered as GET without the body (as before, with cpp-httplib).
  r.method = req.method == "HEAD" ? "GET" : req.method;
  r.path = req.path;
  r.query = req.query;
  r.content_type = req.header("content-type");
  r.authorization = req.header("authorization");
  r.body = req.body;
  return r;
}

// The TLS context of the vault's server: TLS >= 1.2, no compression, no renegotiation, TLS 1.2
// with forward-secret AEAD suites only (no CBC, no SHA-1 MACs, no static RSA; TLS 1.3's suites
// are all AEAD), the server certificate, its key and its chain.
Result<std::unique_ptr<SSL_CTX, detail::SslCtxFree>> make_tls_context(const TlsMaterial& tls) {
  std::unique_ptr<SSL_CTX, detail::SslCtxFree> ctx(SSL_CTX_new(TLS_server_method()));
  bool ok = ctx != nullptr;
  if (ok) {
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    ok = SSL_CTX_set_cipher_list(ctx.get(), "ECDHE+AESGCM:ECDHE+CHACHA20") == 1 &&
         SSL_CTX_use_certificate(ctx.get(), tls.cert.get()) == 1 &&
         SSL_CTX_use_PrivateKey(ctx.get(), tls.key.get()) == 1;
  }
  for (const auto& c : tls.chain) {
    ok = ok && SSL_CTX_add1_chain_cert(ctx.get(), c.get()) == 1;
  }
  if (!ok || SSL_CTX_check_private_key(ctx.get()) != 1) {
    return make_error(ErrorCode::kCrypto,
                      "cannot set up TLS with the server certificate: " + ossl::drain_errors());
  }
  return ctx;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  TlsMaterial tls;
  std::unique_ptr<SSL_CTX, detail::SslCtxFree> tls_context;
  std::unique_ptr<Authenticator> auth;
  AccessFileAuthenticator* access_auth = nullptr;  // auth, when it is the access file
  std::unique_ptr<Vault> vault;
  std::optional<IdentityTokens> identity_tokens;
  std::unique_ptr<IdentityEndpoint> identity_endpoint;
  std::unique_ptr<IdentityServer> identity_server;
  std::unique_ptr<RestApi> api;
  // Set once the vault is open: the listener accepts from the moment it is bound (the port must
  // be known to settle the base URL), and answers 503 until then.
  std::atomic<const RestApi*> ready{nullptr};
  detail::AccessLog access_log;
  std::string url;
  int port = 0;
  // Declared after what its callbacks use, so that it stops first.
  std::unique_ptr<http::Server> http;
  std::thread ticker;  // runs due key rotations while no request comes

  std::mutex mutex;
  std::condition_variable cv;
  bool listener_done = false;
  bool stopped = false;

  // Identity tokens are accepted whenever there is an access file; the endpoint that hands them
  // out runs with --identity-listen.
  Status start_identity(const std::string& resource) {
    KEYPORT_ASSIGN_OR_RETURN(IdentityTokens tokens,
                             IdentityTokens::open(options.data_dir / kIdentityKeyFile));
    identity_tokens.emplace(std::move(tokens));
    Vault* v = vault.get();
    auto now = [v] { return v->now(); };
    if (access_auth != nullptr) {
      access_auth->accept_identity_tokens(&*identity_tokens, resource, now);
    }
    if (!options.identity_listen) {
      return {};
    }
    if (access_auth == nullptr) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--identity-listen needs the access file's identities; it cannot be used "
                        "with --insecure-any-token");
    }
    if (options.identity_token_lifetime < std::chrono::seconds(60) ||
        options.identity_token_lifetime > std::chrono::seconds(86400)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--identity-token-lifetime must be 60 to 86400 seconds");
    }
    AccessFileAuthenticator* a = access_auth;
    identity_endpoint = std::make_unique<IdentityEndpoint>(
        *identity_tokens, [a] { return a->identities(); }, now,
        SecretBytes::from_string(base64url_encode(random_bytes(24))),
        options.identity_token_lifetime);
    KEYPORT_ASSIGN_OR_RETURN(identity_server,
                             IdentityServer::start(*options.identity_listen, *identity_endpoint,
                                                   [this](const std::string& line) {
                                                     access_log.write(utc_now() + " " + line);
                                                   }));
    WriteOptions secret_file;
    secret_file.mode = 0600;
    secret_file.overwrite = true;
    std::string env = identity_endpoint->environment(identity_server->origin());
    Status written = write_file_atomic(options.data_dir / kIdentityEnvFile, env, secret_file);
    secure_wipe(env.data(), env.size());
    KEYPORT_TRY(written);
    print(
        "keyport vault: managed-identity endpoint at " + identity_server->origin() +
        "; applications find it with the variables in " +
        (options.data_dir / kIdentityEnvFile).string() +
        " (IDENTITY_ENDPOINT + IDENTITY_HEADER, MSI_ENDPOINT, AZURE_POD_IDENTITY_AUTHORITY_HOST)");
    return {};
  }

  void print(const std::string& line) const {
    if (options.print) {
      options.print(line);
    } else {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    }
  }

  http::Response serve(const http::Request& req) {
    const RestApi* rest = ready.load();
    if (rest == nullptr) {
      return kv_error(503, "ServiceUnavailable", "The vault is starting; try again.");
    }
    RestResponse r = rest->handle(to_rest(req));
    http::Response res = json_response(r.status, r.body);
    res.headers = std::move(r.headers);
    res.notes = {{"caller", r.caller}, {"operation", r.operation}};
    return res;
  }

  http::Response refusal(int status, std::string_view message) const {
    std::string text(message);
    if (status == 413) {
      text = "The request body is larger than this vault accepts (" +
             std::to_string(options.max_body) + " bytes).";
    }
    return kv_error(status, reason_code(status), text);
  }

  void log_request(const http::Request& req, const http::Response& res,
                   std::chrono::nanoseconds elapsed) {
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.1fms",
                  std::chrono::duration<double, std::milli>(elapsed).count());
    const std::string* caller = res.note("caller");
    const std::string* operation = res.note("operation");
    const std::string rid = res.header("x-ms-request-id");
    // The path and the api-version only: no other query member, never a header. Whatever the
    // client sent is escaped (escape_for_log), so one request is always one line.
    std::string target = req.path;
    if (const std::string* v = req.query_value("api-version")) {
      target += "?api-version=" + *v;
    }
    std::string line = utc_now() + " " +
                       (req.remote_addr.empty() ? std::string("-") : req.remote_addr) +
                       " caller=" + escape_for_log(caller != nullptr ? *caller : std::string("-")) +
                       " " + escape_for_log(req.method.empty() ? std::string("-") : req.method) +
                       " " + escape_for_log(target.empty() ? std::string("-") : target) + " " +
                       std::to_string(res.status) + " " + duration +
                       (operation == nullptr || operation->empty() ? "" : " op=" + *operation) +
                       " rid=" + (rid.empty() ? std::string("-") : rid);
    if (auth && auth->insecure()) {
      line += " INSECURE-ANY-TOKEN";
    }
    access_log.write(line);
  }

  http::Options http_options(const HostPort& listen) {
    http::Options h;
    h.listen = join_host_port(listen.host, listen.port);
    h.tls = tls_context.get();
    h.threads = options.threads;
    h.limits = options.limits;
    h.limits.max_body = options.max_body;
    h.handler = [this](const http::Request& req) {
      try {
        return serve(req);
      } catch (...) {
        return kv_error(500, std::string(kInternalServerError),
                        "The server failed to handle the request.");
      }
    };
    h.error_response = [this](int status, std::string_view message) {
      return refusal(status, message);
    };
    h.stamp = [](const http::Request&, http::Response& res) { stamp_response(res); };
    h.on_done = [this](const http::Request& req, const http::Response& res,
                       std::chrono::nanoseconds elapsed) { log_request(req, res, elapsed); };
    return h;
  }
};

Server::Server(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

Server::~Server() {
  stop();
}

const std::string& Server::url() const {
  return m_impl->url;
}

int Server::port() const {
  return m_impl->port;
}

std::string Server::identity_origin() const {
  return m_impl->identity_server ? m_impl->identity_server->origin() : std::string();
}

std::size_t Server::connections() const {
  return m_impl->http ? m_impl->http->connections() : 0;
}

const fs::path& Server::ca_file() const {
  return m_impl->tls.ca_file;
}

Vault& Server::vault() {
  return *m_impl->vault;
}

Result<std::unique_ptr<Server>> Server::start(ServerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  ServerOptions& o = impl->options;
  if (o.data_dir.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "the vault server needs a data folder (--data)");
  }
  if (o.tls_cert.has_value() != o.tls_key.has_value()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give both --tls-cert and --tls-key, or neither");
  }
  if (o.max_body < 1024) {
    return make_error(ErrorCode::kInvalidArgument, "--max-body must be at least 1024 bytes");
  }
  if (o.threads < 1 || o.threads > 256) {
    return make_error(ErrorCode::kInvalidArgument, "the server needs 1 to 256 threads");
  }
  KEYPORT_ASSIGN_OR_RETURN(HostPort listen, parse_listen(o.listen));
  std::error_code ec;
  fs::create_directories(o.data_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create " + o.data_dir.string() + ": " + ec.message());
  }

  // The vault's configuration, if it has one yet.
  std::optional<VaultConfig> existing;
  if (fs::exists(o.data_dir / kVaultConfigFile)) {
    KEYPORT_ASSIGN_OR_RETURN(VaultConfig vc, VaultConfig::load(o.data_dir));
    if (o.flavor && *o.flavor != vc.flavor) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--flavor " + std::string(to_string(*o.flavor)) + ": the vault in " +
                            o.data_dir.string() + " is a " + std::string(to_string(vc.flavor)) +
                            " vault");
    }
    existing = std::move(vc);
  }

  if (!o.throttle.empty()) {
    if (o.throttle != "azure") {
      return make_error(ErrorCode::kInvalidArgument,
                        "--throttle " + o.throttle + ": the only value is azure");
    }
    if ((existing ? existing->flavor : o.flavor.value_or(Flavor::kKeyVault)) != Flavor::kKeyVault) {
      return make_error(ErrorCode::kUnsupported,
                        "--throttle azure applies Key Vault's service limits; Managed HSM's are "
                        "not modelled");
    }
  }

  // Who may call.
  if (o.insecure_any_token) {
    impl->auth = std::make_unique<AnyTokenAuthenticator>();
  } else {
    const fs::path access = o.access_file.value_or(o.data_dir / kAccessFile);
    if (!fs::exists(access)) {
      if (o.access_file) {
        return make_error(ErrorCode::kNotFound,
                          "the access file " + access.string() + " does not exist");
      }
      KEYPORT_ASSIGN_OR_RETURN(auto created,
                               create_access_file(access, o.data_dir / kTokenFile, "admin"));
      impl->print("keyport vault: created the access file " + created.access_file.string() +
                  " with one admin token; clients read it from " + created.token_file.string() +
                  " (mode 0600)");
    }
    KEYPORT_ASSIGN_OR_RETURN(auto a, AccessFileAuthenticator::open(access));
    impl->access_auth = a.get();
    impl->auth = std::move(a);
  }

  // TLS.
  if (o.tls_cert) {
    KEYPORT_ASSIGN_OR_RETURN(impl->tls, load_tls_files(*o.tls_cert, *o.tls_key));
  } else {
    std::string vault_host;
    if (existing) {
      vault_host = host_part(ascii_lower(existing->base_url));
    }
    KEYPORT_ASSIGN_OR_RETURN(impl->tls,
                             ensure_vault_tls(o.data_dir / "tls", tls_names(vault_host)));
  }
  KEYPORT_ASSIGN_OR_RETURN(impl->tls_context, make_tls_context(impl->tls));
  KEYPORT_TRY(impl->access_log.open(o.access_log));
  Impl* raw = impl.get();

  // Bind (port 0: the kernel picks one), then settle the base URL with the real port. Requests
  // that arrive before the vault is open are answered 503.
  KEYPORT_ASSIGN_OR_RETURN(impl->http, http::Server::start(impl->http_options(listen)));
  impl->port = impl->http->port();
  const std::string listen_url =
      "https://" + url_host(listen.host) + ":" + std::to_string(impl->port);
  if (!existing) {
    VaultConfig c;
    c.flavor = o.flavor.value_or(Flavor::kKeyVault);
    c.name = o.vault_name;
    c.base_url = listen_url;
    KEYPORT_TRY(Vault::init(o.data_dir, c));
    impl->print("keyport vault: initialised a " + std::string(to_string(c.flavor)) + " vault \"" +
                c.name + "\" in " + o.data_dir.string());
  } else {
    const std::string base = effective_base_url(*existing, listen.host, impl->port);
    if (!iequals(base, existing->base_url)) {
      VaultConfig updated = *existing;
      updated.base_url = base;
      KEYPORT_TRY(updated.save(o.data_dir, /*overwrite=*/true));
    }
  }

  // The vault.
  if (o.open_vault) {
    KEYPORT_ASSIGN_OR_RETURN(impl->vault, o.open_vault(o.data_dir));
  } else {
    KEYPORT_ASSIGN_OR_RETURN(impl->vault, Vault::open(o.data_dir));
  }
  impl->url = listen_url;
  // Managed HSM local RBAC: initialised at the first start of a managed-hsm folder (new or made
  // before RBAC), with assignments equivalent to the access file's permissions (vault/rbac.h).
  if (impl->vault->config().flavor == Flavor::kManagedHsm && impl->access_auth != nullptr &&
      !impl->vault->rbac().initialised()) {
    KEYPORT_ASSIGN_OR_RETURN(std::vector<Principal> principals, impl->access_auth->principals());
    KEYPORT_TRY(impl->vault->rbac().initialise(principals, "vault"));
    impl->print(
        "keyport vault: Managed HSM local RBAC initialised: " + std::to_string(principals.size()) +
        " access-file principal(s) given equivalent role assignments at \"/\"; from now "
        "on role assignments, not the access file's permissions, decide what callers may");
  }
  impl->api = std::make_unique<RestApi>(*impl->vault, impl->auth.get(), o.max_body, o.release);
  KEYPORT_ASSIGN_OR_RETURN(ChallengeResource resource,
                           challenge_resource(o.challenge_resource, impl->vault->config()));
  impl->api->set_challenge_resource(resource.resource);
  if (!resource.warning.empty()) {
    impl->print("keyport vault: warning: " + resource.warning);
  }
  KEYPORT_TRY(impl->start_identity(resource.resource));
  if (!o.throttle.empty()) {
    impl->api->set_throttle(std::make_shared<Throttle>(o.throttle_window));
    impl->print(
        "keyport vault: --throttle azure: Key Vault's service limits per 10 seconds apply; "
        "requests beyond them get 429 with Retry-After");
  }
  impl->ready.store(impl->api.get());

  impl->ticker = std::thread([raw] {
    std::unique_lock<std::mutex> lock(raw->mutex);
    while (!raw->stopped) {
      raw->cv.wait_for(lock, raw->options.tick);
      if (raw->stopped) {
        break;
      }
      lock.unlock();
      auto done = raw->vault->run_due_rotations();
      if (!done) {
        log::warn("vault: scheduled key rotation failed: " + done.error().describe());
      }
      lock.lock();
    }
  });
  std::unique_ptr<Server> server(new Server(std::move(impl)));

  Impl& s = *server->m_impl;
  const VaultConfig& cfg = s.vault->config();
  Json info{
      {"url", s.url},
      {"base_url", cfg.base_url},
      {"pid", static_cast<long>(::getpid())},
      {"flavor", std::string(to_string(cfg.flavor))},
      {"name", cfg.name},
      {"ca_file", s.tls.ca_file.string()},
      {"challenge_resource", s.api->challenge_resource()},
      {"identity_endpoint", s.identity_server ? Json(s.identity_server->origin()) : Json(nullptr)},
      {"access_file", o.insecure_any_token
                          ? Json(nullptr)
                          : Json(o.access_file.value_or(o.data_dir / kAccessFile).string())}};
  s.print("keyport vault: serving the " + std::string(to_string(cfg.flavor)) + " vault \"" +
          cfg.name + "\" at " + s.url + " (kids: " + cfg.base_url + "/keys/...)");
  if (!s.tls.ca_file.empty()) {
    s.print("keyport vault: TLS certificate issued by " + s.tls.ca_file.string() +
            "; clients trust it with NODE_EXTRA_CA_CERTS=" + s.tls.ca_file.string() +
            " (curl --cacert, keyport --ca-file)");
  }
  if (o.insecure_any_token) {
    const std::string warning =
        "WARNING: --insecure-any-token: ANY bearer token is accepted as a full administrator. "
        "Never use this outside a throw-away test.";
    log::warn(warning);
    s.print("keyport vault: " + warning);
  }
  WriteOptions w;
  w.overwrite = true;
  KEYPORT_TRY(write_file_atomic(o.data_dir / kServerInfoFile, dump_json(info, 2) + "\n", w));
  return server;
}

void Server::stop() {
  Impl& s = *m_impl;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.stopped) {
      return;
    }
    s.stopped = true;
  }
  if (s.http) {
    s.http->stop();  // returns once the requests in flight are answered
  }
  s.ready.store(nullptr);
  s.cv.notify_all();  // wakes the ticker (it checks `stopped`)
  if (s.ticker.joinable()) {
    s.ticker.join();
  }
  std::error_code ec;
  if (s.identity_server) {
    s.identity_server->stop();
    fs::remove(s.options.data_dir / kIdentityEnvFile, ec);  // it holds the endpoint's secret
  }
  s.api.reset();
  s.vault.reset();
  fs::remove(s.options.data_dir / kServerInfoFile, ec);
  std::lock_guard<std::mutex> lock(s.mutex);
  s.listener_done = true;
  s.cv.notify_all();
}

void Server::wait() {
  {
    std::unique_lock<std::mutex> lock(m_impl->mutex);
    m_impl->cv.wait(lock, [this] { return m_impl->listener_done; });
  }
  stop();
}

Status serve_until_signal(ServerOptions options) {
  // Block the signals before any thread exists, so that only the waiter below receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &set, &old);
  std::signal(SIGPIPE, SIG_IGN);

  auto started = Server::start(std::move(options));
  if (!started) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return tl::unexpected(started.error());
  }
  Server& server = **started;
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (!done.load()) {
      std::fprintf(stderr, "keyport vault: %s received, stopping (finishing in-flight requests)\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      server.stop();
    }
  });
  server.wait();
  done.store(true);
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter if the listener ended alone
  waiter.join();
  started->reset();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  std::fprintf(stderr, "keyport vault: stopped\n");
  return {};
}

}  // namespace keyport::vault
