// SPDX-License-Identifier: Apache-2.0
// Where the signing keys of attestation authorities come from (Microsoft Learn, "Secure key release
// policy grammar": attestation token requirements; "Microsoft Azure Attestation"):
//
// - StaticKeyResolver: a configured list of trusted authorities, issuer -> JWKS, usually read
//   from a "trusted authorities" file:
//     {"authorities": [{"issuer": "https://...", "jwks": {"keys": [...]}}, ...]}
//   (keyport attest init writes one for its simulated authority);
// - OidcKeyResolver: OpenID Connect discovery over HTTPS: GET
// {iss}/.well-known/openid-configuration,
//   then its "jwks_uri" (HTTPS only, never plain HTTP), with the server certificate checked
//   against a CA file, results cached for a TTL. Only issuers in its trust list are ever fetched.
//
// Issuers are compared as policy authorities are (skr/policy.h normalize_authority: scheme and
// host case, one trailing '/').
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "skr/jws.h"

namespace keyport::skr {

// Unix seconds; injected by tests. An empty Clock means the system clock.
using Clock = std::function<std::int64_t()>;
// Returns the system clock's unix time.
std::int64_t system_now();

// A source of authority signing keys. Implementations are thread-safe.
class KeyResolver {
 public:
  virtual ~KeyResolver() = default;
  // True when `issuer` is one of the authorities this resolver trusts (nothing is fetched).
  virtual bool trusts(std::string_view issuer) const = 0;
  // The usable signing keys of `issuer`. kAttestationInvalid with detail JWT-UNTRUSTED-ISS when
  // the issuer is not trusted, ATT-KEYS when its keys cannot be obtained (the message says why),
  // ATT-JWKS-HTTP when discovery points at plain HTTP.
  virtual Result<std::vector<VerificationKey>> keys_for(std::string_view issuer) = 0;
};

// A fixed issuer -> keys table.
class StaticKeyResolver final : public KeyResolver {
 public:
  StaticKeyResolver() = default;
  // Reads a trusted-authorities document (above). kFormat naming the member on malformed input;
  // each JWKS must pass parse_jwks().
  static Result<std::shared_ptr<StaticKeyResolver>> from_json(const Json& doc);
  static Result<std::shared_ptr<StaticKeyResolver>> from_file(const std::filesystem::path& path);

  // Adds (or replaces) the keys of one issuer.
  void add(std::string_view issuer, std::vector<VerificationKey> keys);
  std::vector<std::string> issuers() const;

  bool trusts(std::string_view issuer) const override;
  Result<std::vector<VerificationKey>> keys_for(std::string_view issuer) override;

 private:
  mutable std::mutex m_mutex;
  std::map<std::string, std::pair<std::string, std::vector<VerificationKey>>> m_keys;
};

struct OidcOptions {
  // The authorities whose metadata may be fetched: https URLs, e.g. the policy's authorities.
  std::vector<std::string> trusted_issuers;
  // PEM file of CA certificates the HTTPS servers must chain to; empty: the system store.
  std::string ca_file;
  // Host -> "ip:port" to connect to instead of resolving the host (curl's --connect-to): lets a
  // simulated authority named https://simulated-maa.keyport.localhost listen on 127.0.0.1:PORT.
  // The TLS name check still uses the host.
  std::map<std::string, std::string> connect_to;
  std::int64_t cache_ttl_seconds = 3600;
  int timeout_seconds = 10;
  std::size_t max_document_bytes = 1 << 20;
  Clock clock;
};

class OidcKeyResolver final : public KeyResolver {
 public:
  // kInvalidArgument when a trusted issuer is not an https URL or a connect_to entry is malformed.
  static Result<std::shared_ptr<OidcKeyResolver>> create(OidcOptions options);

  bool trusts(std::string_view issuer) const override;
  Result<std::vector<VerificationKey>> keys_for(std::string_view issuer) override;
  // Forgets cached keys.
  void clear_cache();
  // How many discovery round trips (metadata + JWKS) were made; for tests of the cache.
  std::size_t fetch_count() const;

 private:
  explicit OidcKeyResolver(OidcOptions options) : m_options(std::move(options)) {}
  Result<std::vector<VerificationKey>> fetch(const std::string& issuer);

  struct Entry {
    std::vector<VerificationKey> keys;
    std::int64_t fetched_at = 0;
  };
  OidcOptions m_options;
  std::vector<std::string> m_trusted;  // normalised
  mutable std::mutex m_mutex;
  std::map<std::string, Entry> m_cache;
  std::size_t m_fetches = 0;
};

// GETs an https URL and returns the body (2xx only, at most max_bytes, no redirects), checking
// the server certificate against `ca_file` (empty: system store) and honouring `connect_to`.
// kIo on network or TLS failures, kInvalidArgument for non-https URLs.
Result<std::string> https_get(std::string_view url, const OidcOptions& options);

}  // namespace keyport::skr
