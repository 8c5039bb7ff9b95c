// SPDX-License-Identifier: Apache-2.0
#include "skr/key_resolver.h"

#include <httplib.h>

#include <chrono>

#include "core/file_io.h"
#include "core/net.h"
#include "skr/policy.h"
#include "skr/url.h"

namespace keyport::skr {
namespace {

tl::unexpected<Error> resolver_error(std::string detail, std::string message) {
  return make_error(ErrorCode::kAttestationInvalid, std::move(detail), std::move(message));
}

std::int64_t now_of(const Clock& clock) {
  return clock ? clock() : system_now();
}

// A --connect-to target, "IP:PORT" or "[IPv6]:PORT", through the one host:port parser.
Result<std::pair<std::string, int>> split_host_port(const std::string& value) {
  auto hp = parse_host_port(value);
  if (!hp) {
    return make_error(ErrorCode::kInvalidArgument,
                      "connect-to target must be IP:PORT: " + hp.error().message());
  }
  return std::make_pair(hp->host, static_cast<int>(hp->port));
}

}  // namespace

std::int64_t system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------------

Result<std::shared_ptr<StaticKeyResolver>> StaticKeyResolver::from_json(const Json& doc) {
  if (!doc.is_object() || !doc.contains("authorities") || !doc.at("authorities").is_array()) {
    return make_error(ErrorCode::kFormat,
                      "a trusted-authorities document is {\"authorities\": [{\"issuer\": ..., "
                      "\"jwks\": {\"keys\": [...]}}]}");
  }
  auto out = std::make_shared<StaticKeyResolver>();
  const Json& list = doc.at("authorities");
  if (list.empty()) {
    return make_error(ErrorCode::kFormat, "$.authorities: no authority listed");
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = "$.authorities[" + std::to_string(i) + "]";
    const Json& a = list[i];
    if (!a.is_object()) {
      return make_error(ErrorCode::kFormat, where + ": not an object");
    }
    KEYPORT_TRY(json_only_members(a, {"issuer", "jwks", "x-keyport-simulated"}, where));
    auto issuer = a.find("issuer");
    if (issuer == a.end() || !issuer->is_string() ||
        issuer->get_ref<const std::string&>().empty()) {
      return make_error(ErrorCode::kFormat, where + ".issuer: a non-empty string is required");
    }
    auto jwks = a.find("jwks");
    if (jwks == a.end()) {
      return make_error(ErrorCode::kFormat, where + ".jwks: missing");
    }
    auto parsed = parse_jwks(*jwks);
    if (!parsed) {
      return tl::unexpected(parsed.error().with_context(where + ".jwks"));
    }
    out->add(issuer->get_ref<const std::string&>(), std::move(parsed->keys));
  }
  return out;
}

Result<std::shared_ptr<StaticKeyResolver>> StaticKeyResolver::from_file(
    const std::filesystem::path& path) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(path, 4u << 20));
  auto doc = parse_json_strict(text);
  if (!doc) {
    return tl::unexpected(doc.error().with_context(path.string()));
  }
  auto r = from_json(*doc);
  if (!r) {
    return tl::unexpected(r.error().with_context(path.string()));
  }
  return r;
}

void StaticKeyResolver::add(std::string_view issuer, std::vector<VerificationKey> keys) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_keys.insert_or_assign(normalize_authority(issuer),
                          std::make_pair(std::string(issuer), std::move(keys)));
}

std::vector<std::string> StaticKeyResolver::issuers() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  std::vector<std::string> out;
  for (const auto& [norm, entry] : m_keys) {
    out.push_back(entry.first);
  }
  return out;
}

bool StaticKeyResolver::trusts(std::string_view issuer) const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_keys.count(normalize_authority(issuer)) != 0;
}

Result<std::vector<VerificationKey>> StaticKeyResolver::keys_for(std::string_view issuer) {
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = m_keys.find(normalize_authority(issuer));
  if (it == m_keys.end()) {
    return resolver_error("JWT-UNTRUSTED-ISS", "issuer \"" + std::string(issuer) +
                                                   "\" is not a trusted attestation authority");
  }
  return it->second.second;
}

// ---------------------------------------------------------------------------------------------

Result<std::string> https_get(std::string_view url_text, const OidcOptions& options) {
  auto url = parse_url(url_text);
  if (!url) {
    return make_error(ErrorCode::kInvalidArgument, "not a URL: \"" + std::string(url_text) + "\"");
  }
  if (url->scheme != "https") {
    return make_error(ErrorCode::kInvalidArgument,
                      "refusing plain HTTP: \"" + std::string(url_text) + "\" (HTTPS only)");
  }
  int port = url->effective_port();
  std::map<std::string, std::string> addr_map;
  if (auto it = options.connect_to.find(url->host); it != options.connect_to.end()) {
    KEYPORT_ASSIGN_OR_RETURN(auto target, split_host_port(it->second));
    addr_map[url->host] = target.first;
    port = target.second;
  }
  httplib::SSLClient client(url->host, port);
  if (!addr_map.empty()) {
    client.set_hostname_addr_map(addr_map);
  }
  if (!options.ca_file.empty()) {
    if (!std::filesystem::exists(options.ca_file)) {
      return make_error(ErrorCode::kNotFound, "CA file " + options.ca_file + " does not exist");
    }
    client.set_ca_cert_path(options.ca_file);
  }
  client.enable_server_certificate_verification(true);
  client.set_follow_location(false);
  client.set_connection_timeout(options.timeout_seconds, 0);
  client.set_read_timeout(options.timeout_seconds, 0);
  client.set_write_timeout(options.timeout_seconds, 0);
  std::string body;
  bool too_large = false;
  const std::string path = url->path_and_query.empty() ? "/" : url->path_and_query;
  auto res = client.Get(path, httplib::Headers{{"Accept", "application/json"}},
                        [&](const char* data, std::size_t len) {
                          if (body.size() + len > options.max_document_bytes) {
                            too_large = true;
                            return false;
                          }
                          body.append(data, len);
                          return true;
                        });
  if (too_large) {
    return make_error(ErrorCode::kIo, "GET " + std::string(url_text) + ": response larger than " +
                                          std::to_string(options.max_document_bytes) + " bytes");
  }
  if (!res) {
    std::string why = httplib::to_string(res.error());
    if (res.error() == httplib::Error::SSLServerVerification) {
      why += " (the server certificate does not chain to the given CA or names another host)";
    }
    return make_error(ErrorCode::kIo, "GET " + std::string(url_text) + " failed: " + why);
  }
  if (res->status < 200 || res->status > 299) {
    return make_error(ErrorCode::kIo,
                      "GET " + std::string(url_text) + ": HTTP " + std::to_string(res->status));
  }
  return body;
}

Result<std::shared_ptr<OidcKeyResolver>> OidcKeyResolver::create(OidcOptions options) {
  std::vector<std::string> trusted;
  for (const auto& issuer : options.trusted_issuers) {
    auto url = parse_url(issuer);
    if (!url || url->scheme != "https") {
      return make_error(ErrorCode::kInvalidArgument,
                        "trusted authority \"" + issuer +
                            "\" is not an https URL; OpenID discovery runs over HTTPS only");
    }
    trusted.push_back(normalize_authority(issuer));
  }
  for (const auto& [host, target] : options.connect_to) {
    KEYPORT_TRY(split_host_port(target));
  }
  if (options.cache_ttl_seconds < 0 || options.timeout_seconds <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "cache TTL and timeout must be positive");
  }
  std::shared_ptr<OidcKeyResolver> out(new OidcKeyResolver(std::move(options)));
  out->m_trusted = std::move(trusted);
  return out;
}

bool OidcKeyResolver::trusts(std::string_view issuer) const {
  const std::string n = normalize_authority(issuer);
  for (const auto& t : m_trusted) {
    if (t == n) {
      return true;
    }
  }
  return false;
}

void OidcKeyResolver::clear_cache() {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_cache.clear();
}

std::size_t OidcKeyResolver::fetch_count() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_fetches;
}

Result<std::vector<VerificationKey>> OidcKeyResolver::keys_for(std::string_view issuer) {
  if (!trusts(issuer)) {
    return resolver_error("JWT-UNTRUSTED-ISS", "issuer \"" + std::string(issuer) +
                                                   "\" is not a trusted attestation authority");
  }
  const std::string norm = normalize_authority(issuer);
  const std::int64_t now = now_of(m_options.clock);
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto it = m_cache.find(norm);
    if (it != m_cache.end() && now - it->second.fetched_at < m_options.cache_ttl_seconds &&
        now >= it->second.fetched_at) {
      return it->second.keys;
    }
  }
  // Fetch outside the lock; concurrent misses may fetch twice, which is harmless.
  auto keys = fetch(norm);
  if (!keys) {
    return keys;
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  m_cache[norm] = Entry{*keys, now};
  return keys;
}

Result<std::vector<VerificationKey>> OidcKeyResolver::fetch(const std::string& issuer) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    ++m_fetches;
  }
  const std::string config_url = issuer + "/.well-known/openid-configuration";
  auto fail = [&](const std::string& detail, const std::string& why) {
    return resolver_error(detail, "cannot obtain the signing keys of \"" + issuer + "\": " + why);
  };
  auto config_text = https_get(config_url, m_options);
  if (!config_text) {
    return fail("ATT-KEYS", config_text.error().message());
  }
  auto config = parse_json_strict(*config_text);
  if (!config || !config->is_object()) {
    return fail("ATT-KEYS", config_url + " is not a JSON object" +
                                (config ? std::string() : ": " + config.error().message()));
  }
  if (auto iss = config->find("issuer"); iss != config->end()) {
    if (!iss->is_string() || !authority_matches(iss->get_ref<const std::string&>(), issuer)) {
      return fail("ATT-KEYS", "the metadata names another issuer (" + iss->dump() + ")");
    }
  }
  auto jwks_uri = config->find("jwks_uri");
  if (jwks_uri == config->end() || !jwks_uri->is_string()) {
    return fail("ATT-KEYS", "the metadata has no string \"jwks_uri\"");
  }
  const std::string& uri = jwks_uri->get_ref<const std::string&>();
  auto parsed_uri = parse_url(uri);
  if (!parsed_uri || parsed_uri->scheme != "https") {
    return fail("ATT-JWKS-HTTP",
                "jwks_uri \"" + uri + "\" is not an https URL; keys are fetched over HTTPS only");
  }
  auto jwks_text = https_get(uri, m_options);
  if (!jwks_text) {
    return fail("ATT-KEYS", jwks_text.error().message());
  }
  auto jwks_doc = parse_json_strict(*jwks_text);
  if (!jwks_doc) {
    return fail("ATT-KEYS", uri + ": " + jwks_doc.error().message());
  }
  auto jwks = parse_jwks(*jwks_doc);
  if (!jwks) {
    return fail("ATT-KEYS", uri + ": " + jwks.error().message());
  }
  return std::move(jwks->keys);
}

}  // namespace keyport::skr
