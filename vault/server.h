// SPDX-License-Identifier: Apache-2.0
// The simulated vault's REST server: Key Vault REST semantics over HTTPS on top of a Vault.
//
// Two layers:
//  - RestApi turns one HTTP request (method, path, query, headers, body) into one response: it
//    routes (Key Vault paths, case-insensitive on `keys`/`deletedkeys` and the operation names,
//    `{version}` optional where Key Vault allows it, a trailing slash tolerated), checks
//    api-version, authenticates the bearer token (401 + the challenge real SDKs expect), checks
//    the caller's key permission (403), parses the JSON body strictly, calls the Vault and
//    serialises its answer or its Key Vault error. It has no socket: the CLI's local-folder mode
//    runs the same routes in-process (handle_as), and tests can call it directly.
//  - Server puts a RestApi behind keyport's HTTP front end (http/server.h) over TLS: TLS material
//    (vault/tls.h), a bounded pool of handler threads, limits and deadlines enforced while reading
//    (a hostile client can neither grow the server's memory nor hold its threads), the access
//    log, DIR/server.json, graceful stop.
//
// No exception escapes: every handler catches everything and answers 500 with a Key Vault error
// body. Tokens never reach a log or an error message.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "http/server.h"
#include "vault/access.h"
#include "vault/identity.h"
#include "vault/release.h"
#include "vault/vault.h"

namespace keyport::vault {

class Throttle;

// The api-version values the server accepts, oldest first: every keys data-plane version Azure has
// published, stable and preview ("2015-06-01" ... "7.6", "2025-07-01", "2026-01-01-preview"): the
// folder names under specification/keyvault/data-plane/Microsoft.KeyVault/{stable,preview} of
// https://github.com/Azure/azure-rest-api-specs.
const std::vector<std::string>& supported_api_versions();
// The newest stable one (what the "not recognized" answer suggests).
std::string_view latest_api_version();
// Whether `version` is `since` or newer, both from supported_api_versions() (false otherwise).
bool api_version_at_least(std::string_view version, std::string_view since);

// One HTTP request, independent of the transport.
struct RestRequest {
  std::string method;  // "GET", "POST", "PUT", "PATCH", "DELETE", ...
  std::string path;    // percent-decoded, without the query string
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::string content_type;                                // "" when absent
  std::string authorization;                               // the header's value, "" when absent
  std::string body;
};

struct RestResponse {
  int status = 200;
  std::string body;                                          // JSON text; empty for 204
  std::vector<std::pair<std::string, std::string>> headers;  // WWW-Authenticate, Allow, ...
  std::string caller = "-";  // the authenticated principal's name (for the access log)
  std::string operation;     // the REST operationId ("GetKey"); "" when no route matched
};

// Whom a managed-identity token must be addressed to (its `aud`).
enum class Audience {
  kVault,            // the vault's challenge resource
  kResourceManager,  // Azure Resource Manager: https://management.core.windows.net/ or
                     // https://management.azure.com/ (keyport's list-subscriptions stand-in)
};

// Decides who a bearer token belongs to.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // The principal of `token` (never empty), or nullopt; then `refusal` may say why (an expired or
  // misaddressed identity token), else the caller says the token is unknown. Access-file tokens
  // are not addressed: `audience` applies to identity tokens.
  virtual std::optional<Principal> authenticate(std::string_view token, Audience audience,
                                                std::string& refusal) = 0;
  // True for --insecure-any-token (every request is logged with a warning).
  virtual bool insecure() const { return false; }
  // Why every token is refused right now ("" when tokens are being checked normally).
  virtual std::string refusal_reason() { return {}; }
};

// Tokens from an access file, reloaded when the file's inode, size or modification time changes
// (one stat(2) per request). Fails closed: while the file is missing or does not load, every token
// is refused (refusal_reason() says why) and an error is logged once; the next good version of
// the file is used as soon as it is written.
class AccessFileAuthenticator final : public Authenticator {
 public:
  static Result<std::unique_ptr<AccessFileAuthenticator>> open(std::filesystem::path file);
  std::optional<Principal> authenticate(std::string_view token, Audience audience,
                                        std::string& refusal) override;
  std::string refusal_reason() override;

  // Also accept managed-identity tokens (vault/identity.h) signed by `tokens` for `resource`,
  // checked against `now` (the vault's clock). `tokens` must outlive this object.
  void accept_identity_tokens(const IdentityTokens* tokens, std::string resource,
                              std::function<std::int64_t()> now);
  // The access file's identities as the file is now, or why it does not load.
  Result<std::vector<ManagedIdentity>> identities();
  // Its principals (AccessList::principals) as the file is now, or why it does not load.
  Result<std::vector<Principal>> principals();

 private:
  AccessFileAuthenticator(std::filesystem::path file, AccessList list);
  void maybe_reload();

  std::filesystem::path m_file;
  std::mutex m_mutex;
  AccessList m_list;
  std::string m_stamp;   // inode, size and mtime of the file last looked at ("" when missing)
  std::string m_broken;  // why the file last looked at does not load ("" when it does)
  const IdentityTokens* m_identity_tokens = nullptr;
  std::string m_identity_resource;
  std::function<std::int64_t()> m_now;
  // Identity tokens whose signature verified, by the SHA-256 of the token (never the token):
  // a hit skips the HMAC and the JSON parsing, not the time, audience and identity checks.
  std::unordered_map<std::string, IdentityClaims> m_verified;
  std::deque<std::string> m_verified_order;  // oldest first, for eviction
};

// --insecure-any-token: any non-empty bearer token is a full administrator named
// "insecure-any-token".
class AnyTokenAuthenticator final : public Authenticator {
 public:
  std::optional<Principal> authenticate(std::string_view token, Audience audience,
                                        std::string& refusal) override;
  bool insecure() const override { return true; }
};

class RestApi {
 public:
  // `vault` and `auth` must outlive the RestApi. `auth` may be null when only handle_as() is used.
  // Key release (POST .../release) follows `release` (vault/release.h).
  RestApi(Vault& vault, Authenticator* auth, std::size_t max_body = 1 << 20,
          ReleaseOptions release = {});

  // Routes, checks api-version, authenticates the bearer token, then proceeds as handle_as().
  RestResponse handle(const RestRequest& request) const noexcept;
  // As handle(), but `caller` is already authenticated (the CLI's local-folder mode).
  RestResponse handle_as(const Principal& caller, const RestRequest& request) const noexcept;

  // The challenge of a 401: Bearer authorization="https://login.microsoftonline.com/<tenant>",
  // resource="<challenge_resource()>".
  std::string challenge() const;
  // Default https://vault.azure.net (managed-hsm: https://managedhsm.azure.net); the server sets
  // what --challenge-resource chose before it serves.
  const std::string& challenge_resource() const { return m_resource; }
  void set_challenge_resource(std::string resource) { m_resource = std::move(resource); }
  // --throttle azure (vault/throttle.h): requests over Key Vault's limits get 429 + Retry-After.
  void set_throttle(std::shared_ptr<Throttle> throttle) { m_throttle = std::move(throttle); }

 private:
  RestResponse dispatch(const Principal* caller, const RestRequest& request) const;

  Vault& m_vault;
  Authenticator* m_auth;
  std::size_t m_max_body;
  std::shared_ptr<ReleaseService> m_release;
  std::string m_resource;
  std::shared_ptr<Throttle> m_throttle;
};

struct ServerOptions {
  std::filesystem::path data_dir;
  // "host:port"; port 0 picks a free port. IPv6 as "[::1]:8443".
  std::string listen = "127.0.0.1:8443";
  // When vault.json is missing the server initialises a vault of this flavour (default key-vault);
  // when it exists, a different flavour is an error.
  std::optional<Flavor> flavor;
  std::string vault_name = "keyport";  // for a vault the server initialises
  // Secure Key Release: trusted attestation authorities (default DIR/trusted-authorities.json),
  // clock skew (vault/release.h).
  ReleaseOptions release;
  // Operator-supplied certificate and key (PEM). Both or neither; default: DIR/tls (vault/tls.h).
  std::optional<std::filesystem::path> tls_cert;
  std::optional<std::filesystem::path> tls_key;
  // Default DIR/access.json, created at first start with one admin token (its copy for clients
  // in DIR/admin.token). Ignored with insecure_any_token.
  std::optional<std::filesystem::path> access_file;
  bool insecure_any_token = false;
  // Serve the managed-identity endpoint (vault/identity.h) on this loopback "host:port" (port 0:
  // any); its environment goes to DIR/identity.env (mode 0600) and server.json.
  std::optional<std::string> identity_listen;
  std::chrono::seconds identity_token_lifetime{3600};
  // "azure": Key Vault's service limits (vault/throttle.h), 429 with Retry-After beyond them;
  // "" (default): no limit. Key Vault flavour only.
  std::string throttle;
  std::chrono::milliseconds throttle_window{10000};  // Key Vault's; tests make it longer
  // What the 401 challenge names as its resource: "azure", "self", a URL, or "" (see
  // challenge_resource() below).
  std::string challenge_resource;
  std::size_t max_body = 1 << 20;  // 413 beyond this, while the body is read (wins over limits)
  std::size_t threads = 8;         // handler threads (connections are read on the event loop)
  // The HTTP front end's other limits and deadlines (http/server.h): head size and field count,
  // TLS handshake, head, body, idle and write deadlines, open connections.
  http::Limits limits;
  // Append one line per request here; default stderr.
  std::optional<std::filesystem::path> access_log;
  // Opens the vault once the base URL is known (tests: attached-token mode). Default: own-folder
  // mode, Vault::open(dir).
  std::function<Result<std::unique_ptr<Vault>>(const std::filesystem::path&)> open_vault;
  // Where the start-up lines go (the URL, the CA, the access file); default stdout.
  std::function<void(const std::string&)> print;
  // How often the server runs due key rotations when no request does (requests run them too).
  std::chrono::milliseconds tick{1000};
};

class Server {
 public:
  // Prepares TLS material and the access file, binds the listening socket, settles the vault's
  // base URL (https://<listen host:port> unless vault.json names a non-local one), opens the vault,
  // starts serving on a background thread and writes DIR/server.json {url, pid, ca_file, flavor}.
  static Result<std::unique_ptr<Server>> start(ServerOptions options);

  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const std::string& url() const;  // https://127.0.0.1:<port>
  int port() const;
  const std::filesystem::path& ca_file() const;  // empty with --tls-cert
  // http://127.0.0.1:PORT of the managed-identity endpoint ("" without identity_listen).
  std::string identity_origin() const;
  // Connections open right now (the HTTP front end's count; 0 once stopped).
  std::size_t connections() const;
  Vault& vault();

  // Stops accepting, lets in-flight requests finish, joins the workers, closes the vault and
  // removes DIR/server.json. Idempotent; thread-safe.
  void stop();
  // Blocks until the server stops (by stop() or a listener failure).
  void wait();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// `keyport vault serve`: starts a Server and runs it until SIGINT or SIGTERM.
Status serve_until_signal(ServerOptions options);

// The base URL a server listening on `host`:`port` gives a vault: vault.json's when an operator
// chose it (base_url_given) or when it names a host that is neither the Azure default for the
// vault nor a loopback address, else https://<host>:<port>.
std::string effective_base_url(const VaultConfig& config, const std::string& host, int port);

// The resource a 401 challenge names, which is also the audience of managed-identity tokens.
struct ChallengeResource {
  std::string resource;  // "https://vault.azure.net", "https://localhost:8443", ...
  std::string warning;   // non-empty when SDKs that verify the challenge will refuse it
};
// `choice` is "azure" (https://vault.azure.net, managed-hsm: https://managedhsm.azure.net), "self"
// (the base URL's parent origin: https://kpvault.localhost:8443 -> https://localhost:8443, which
// Azure SDKs accept because the vault's host is a subdomain of it), a URL without a path, or ""
// (azure for hosts under .vault.azure.net and .managedhsm.azure.net, self otherwise).
Result<ChallengeResource> challenge_resource(std::string_view choice, const VaultConfig& config);

}  // namespace keyport::vault
