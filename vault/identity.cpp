// SPDX-License-Identifier: Apache-2.0
#include "vault/identity.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <ctime>

#include "core/digest.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/log.h"
#include "core/random.h"
#include "core/strings.h"
#include "vault/model.h"

namespace keyport::vault {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kIdentityKeyBytes = 32;
constexpr std::size_t kMaxTokenChars = 8192;
constexpr std::size_t kMaxResourceChars = 512;

std::array<std::uint8_t, 32> hmac_sha256(const SecretBytes& key, std::string_view input) {
  std::array<std::uint8_t, 32> out{};
  unsigned int len = 0;
  const auto k = key.reveal(SecretAccess::unsafe());
  HMAC(EVP_sha256(), k.data(), static_cast<int>(k.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), out.data(), &len);
  return out;
}

std::string iso_time(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string issuer_of(std::string_view tenant) {
  return "https://sts.windows.net/" + std::string(tenant) + "/";
}

std::string_view without_trailing_slash(std::string_view s) {
  while (!s.empty() && s.back() == '/') {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

// --- tokens -----------------------------------------------------------------------------------

Result<IdentityTokens> IdentityTokens::open(const fs::path& key_file) {
  std::error_code ec;
  if (!fs::exists(key_file, ec)) {
    SecretBytes key = random_secret(kIdentityKeyBytes);
    std::string text = base64url_encode(key.reveal(SecretAccess::unsafe())) + "\n";
    WriteOptions w;
    w.mode = 0600;
    Status written = write_file_atomic(key_file, text, w);
    secure_wipe(text.data(), text.size());
    if (written) {
      return IdentityTokens(std::move(key));
    }
    if (written.error().code() != ErrorCode::kAlreadyExists) {
      return tl::unexpected(written.error());
    }
    // Another process made it first: use theirs.
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes text, read_secret_file(key_file, 1024));
  std::string_view chars = trim(as_chars(text.reveal(SecretAccess::unsafe())));
  auto key = base64url_decode_secret(chars);
  if (!key || key->size() != kIdentityKeyBytes) {
    return make_error(ErrorCode::kFormat, key_file.string() + " must hold " +
                                              std::to_string(kIdentityKeyBytes) +
                                              " bytes in base64url (delete it to make a new key)");
  }
  return IdentityTokens(std::move(*key));
}

IdentityTokens::IdentityTokens(SecretBytes key) : m_key(std::move(key)) {
  // The kid names the key without revealing it: a digest under a label of its own.
  const auto d = hmac_sha256(m_key, "keyport identity key id");
  m_kid = base64url_encode(std::span<const std::uint8_t>(d.data(), 12));
}

bool IdentityTokens::looks_like_jwt(std::string_view token) {
  if (token.size() > kMaxTokenChars || std::count(token.begin(), token.end(), '.') != 2) {
    return false;
  }
  return std::all_of(token.begin(), token.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}

IdentityTokens::Issued IdentityTokens::issue(const ManagedIdentity& who, std::string_view resource,
                                             std::int64_t now,
                                             std::chrono::seconds lifetime) const {
  Issued out;
  out.not_before = now;
  out.expires_on = now + lifetime.count();
  const Json header{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", m_kid}};
  Json claims{{"aud", std::string(resource)},
              {"iss", issuer_of(kSimulatedTenant)},
              {"iat", now},
              {"nbf", now},
              {"exp", out.expires_on},
              {"tid", std::string(kSimulatedTenant)},
              {"oid", who.object_id},
              {"sub", who.object_id},
              {"appid", who.client_id},
              {"idtyp", "app"},
              {"ver", "1.0"},
              {"jti", random_uuid()},
              {"xms_mirid",
               "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/"
               "keyport/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" +
                   who.name}};
  std::string input = base64url_encode(as_bytes(dump_json(header))) + "." +
                      base64url_encode(as_bytes(dump_json(claims)));
  const auto mac = hmac_sha256(m_key, input);
  out.access_token = input + "." + base64url_encode(mac);
  return out;
}

Result<IdentityClaims> IdentityTokens::verify(std::string_view token) const {
  auto refuse = [] {
    return make_error(ErrorCode::kAuth,
                      "The bearer token is not a token this vault's identity endpoint issued.");
  };
  if (!looks_like_jwt(token)) {
    return refuse();
  }
  const std::size_t first = token.find('.');
  const std::size_t second = token.rfind('.');
  const std::string_view input = token.substr(0, second);
  auto sig = base64url_decode(token.substr(second + 1));
  const auto expected = hmac_sha256(m_key, input);
  // The signature first, in constant time: nothing about an unsigned token is parsed.
  if (!sig || sig->size() != expected.size() ||
      CRYPTO_memcmp(sig->data(), expected.data(), expected.size()) != 0) {
    return refuse();
  }
  auto header_bytes = base64url_decode(token.substr(0, first));
  auto claim_bytes = base64url_decode(token.substr(first + 1, second - first - 1));
  if (!header_bytes || !claim_bytes) {
    return refuse();
  }
  auto header = parse_json_strict(as_chars(*header_bytes));
  auto claims = parse_json_strict(as_chars(*claim_bytes));
  if (!header || !claims || !header->is_object() || !claims->is_object()) {
    return refuse();
  }
  const Json* alg = member(*header, "alg");
  const Json* kid = member(*header, "kid");
  if (alg == nullptr || *alg != "HS256" || kid == nullptr || *kid != m_kid) {
    return refuse();
  }
  IdentityClaims c;
  for (auto [name, field] :
       {std::pair{"aud", &c.aud}, std::pair{"iss", &c.iss}, std::pair{"tid", &c.tid},
        std::pair{"oid", &c.oid}, std::pair{"appid", &c.appid}}) {
    const Json* v = member(*claims, name);
    if (v == nullptr || !v->is_string()) {
      return refuse();
    }
    *field = v->get<std::string>();
  }
  for (auto [name, field] :
       {std::pair{"iat", &c.iat}, std::pair{"nbf", &c.nbf}, std::pair{"exp", &c.exp}}) {
    const Json* v = member(*claims, name);
    if (v == nullptr || !v->is_number_integer()) {
      return refuse();
    }
    *field = v->get<std::int64_t>();
  }
  return c;
}

std::string identity_claims_refusal(const IdentityClaims& claims, std::int64_t now,
                                    std::string_view resource) {
  if (claims.exp <= now) {
    return "The access token expired at " + iso_time(claims.exp) + " (the vault's time is " +
           iso_time(now) + ").";
  }
  if (claims.nbf > now) {
    return "The access token is not valid before " + iso_time(claims.nbf) +
           " (the vault's time is " + iso_time(now) + ").";
  }
  if (without_trailing_slash(claims.aud) != without_trailing_slash(resource)) {
    return "AKV10022: Invalid audience. Expected " + std::string(resource) +
           ", found: " + escape_for_log(claims.aud) + ".";
  }
  if (claims.tid != kSimulatedTenant || claims.iss != issuer_of(kSimulatedTenant)) {
    return "AKV10032: Invalid issuer. Expected one of " + issuer_of(kSimulatedTenant) +
           ", found: " + escape_for_log(claims.iss) + ".";
  }
  return {};
}

// --- the endpoint -----------------------------------------------------------------------------

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

const std::string* find_param(const Params& params, std::initializer_list<std::string_view> names) {
  for (const auto& [k, v] : params) {
    for (std::string_view n : names) {
      if (k == n) {
        return &v;
      }
    }
  }
  return nullptr;
}

std::string header_of(const IdentityRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

IdentityResponse oauth_error(int status, std::string_view error, std::string_view description) {
  IdentityResponse r;
  r.status = status;
  r.body = dump_json(
      Json{{"error", std::string(error)}, {"error_description", std::string(description)}});
  r.caller = "-";
  return r;
}

Result<Params> parse_form(std::string_view body) {
  Params out;
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const std::size_t eq = pair.find('=');
    KEYPORT_ASSIGN_OR_RETURN(std::string k, percent_decode(pair.substr(0, eq), true));
    std::string v;
    if (eq != std::string_view::npos) {
      KEYPORT_ASSIGN_OR_RETURN(v, percent_decode(pair.substr(eq + 1), true));
    }
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

IdentityEndpoint::IdentityEndpoint(const IdentityTokens& tokens, Lookup lookup,
                                   std::function<std::int64_t()> now, SecretBytes secret,
                                   std::chrono::seconds lifetime)
    : m_tokens(tokens),
      m_lookup(std::move(lookup)),
      m_now(std::move(now)),
      m_secret(std::move(secret)),
      m_lifetime(lifetime) {}

std::string IdentityEndpoint::environment(const std::string& origin) const {
  const std::string secret(as_chars(m_secret.reveal(SecretAccess::unsafe())));
  return "IDENTITY_ENDPOINT=" + origin + "/msi/token\nIDENTITY_HEADER=" + secret +
         "\nMSI_ENDPOINT=" + origin + "/msi/token\nMSI_SECRET=" + secret +
         "\nAZURE_POD_IDENTITY_AUTHORITY_HOST=" + origin + "\n";
}

IdentityResponse IdentityEndpoint::handle(const IdentityRequest& request) const noexcept {
  try {
    return dispatch(request);
  } catch (const std::exception& e) {
    log::error(std::string("identity endpoint failed: ") + e.what());
  } catch (...) {
    log::error("identity endpoint failed with an unknown exception");
  }
  return oauth_error(500, "internal_error", "The identity endpoint failed to handle the request.");
}

IdentityResponse IdentityEndpoint::dispatch(const IdentityRequest& r) const {
  const bool imds = r.path == "/metadata/identity/oauth2/token";
  const bool msi = r.path == "/msi/token" || r.path == "/msi/token/";
  if (!imds && !msi) {
    return oauth_error(404, "invalid_request",
                       "Unknown path: token endpoints are /msi/token (App Service, Cloud Shell) "
                       "and /metadata/identity/oauth2/token (IMDS).");
  }
  auto secret_matches = [this](const std::string& given) {
    return !given.empty() && SecretBytes::from_string(given).ct_equal(m_secret);
  };
  Params params = r.query;
  if (imds || (msi && r.method == "POST")) {
    // IMDS and Cloud Shell: the Metadata header keeps browsers and forwarded requests out.
    if (imds && r.method != "GET") {
      return oauth_error(405, "invalid_request", "The IMDS token endpoint takes GET.");
    }
    if (!iequals(header_of(r, "metadata"), "true")) {
      return oauth_error(400, "bad_request_102", "Required metadata header not specified");
    }
    if (r.method == "POST") {
      auto form = parse_form(r.body);
      if (!form) {
        return oauth_error(400, "invalid_request",
                           "The form body does not parse: " + form.error().message());
      }
      params.insert(params.end(), form->begin(), form->end());
    }
  } else if (r.method == "GET") {
    // App Service (2019-08-01: X-IDENTITY-HEADER) and MSI_SECRET (2017-09-01: secret).
    if (!secret_matches(header_of(r, "x-identity-header")) &&
        !secret_matches(header_of(r, "secret"))) {
      return oauth_error(401, "unauthorized_client",
                         "The X-IDENTITY-HEADER (or secret) header is missing or wrong.");
    }
  } else {
    return oauth_error(405, "invalid_request",
                       "The token endpoint takes GET (or POST with a form).");
  }
  if (r.method == "GET" && find_param(params, {"api-version"}) == nullptr) {
    return oauth_error(400, "invalid_request", "Required query variable 'api-version' is missing");
  }
  const std::string* resource = find_param(params, {"resource"});
  if (resource == nullptr || resource->empty()) {
    return oauth_error(400, "invalid_request", "Required query variable 'resource' is missing");
  }
  if (resource->size() > kMaxResourceChars || !printable_ascii(*resource)) {
    return oauth_error(400, "invalid_resource", "The resource is not a valid resource URI.");
  }
  const std::string* client_id = find_param(params, {"client_id", "clientid"});
  const std::string* object_id = find_param(params, {"object_id", "principal_id"});
  const std::string* res_id = find_param(params, {"mi_res_id", "msi_res_id"});
  if ((client_id != nullptr) + (object_id != nullptr) + (res_id != nullptr) > 1) {
    return oauth_error(400, "invalid_request",
                       "client_id, object_id and mi_res_id are mutually exclusive.");
  }

  auto identities = m_lookup();
  if (!identities) {
    return oauth_error(500, "unavailable",
                       "The vault's access file does not load, so no identity has a token: " +
                           identities.error().message());
  }
  const ManagedIdentity* who = nullptr;
  for (const ManagedIdentity& id : *identities) {
    bool match = false;
    if (client_id != nullptr) {
      match = iequals(id.client_id, *client_id);
    } else if (object_id != nullptr) {
      match = iequals(id.object_id, *object_id);
    } else if (res_id != nullptr) {
      const std::size_t slash = res_id->rfind('/');
      match = iequals(id.name, slash == std::string::npos ? *res_id : res_id->substr(slash + 1));
    } else {
      match = id.system_assigned;
    }
    if (match) {
      who = &id;
      break;
    }
  }
  if (who == nullptr) {
    return oauth_error(400, "invalid_request", "Identity not found");
  }
  IdentityTokens::Issued t = m_tokens.issue(*who, *resource, m_now(), m_lifetime);
  IdentityResponse out;
  out.caller = who->name;
  // IMDS and App Service answer numbers as strings.
  out.body = dump_json(Json{{"access_token", t.access_token},
                            {"client_id", who->client_id},
                            {"expires_in", std::to_string(t.expires_on - t.not_before)},
                            {"expires_on", std::to_string(t.expires_on)},
                            {"ext_expires_in", std::to_string(t.expires_on - t.not_before)},
                            {"not_before", std::to_string(t.not_before)},
                            {"resource", *resource},
                            {"token_type", "Bearer"}});
  return out;
}

}  // namespace keyport::vault
