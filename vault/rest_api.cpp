// SPDX-License-Identifier: Apache-2.0
// RestApi: one HTTP request to one response. Routes (rest_routes.cpp), checks api-version,
// authenticates (rest_auth.cpp), checks the permission, parses the body, calls the operation's
// handler and pages lists.
#include <algorithm>
#include <cctype>

#include "core/encoding.h"
#include "core/log.h"
#include "core/strings.h"
#include "vault/rbac.h"
#include "vault/rest_internal.h"
#include "vault/throttle.h"

namespace keyport::vault {

using rest::bearer_token;
using rest::kApi73Preview;
using rest::match_route;
using rest::OpCall;
using rest::RestOp;
using rest::RouteMatch;

namespace {

constexpr std::size_t kMaxPage = 25;

// --- responses --------------------------------------------------------------------------------

RestResponse json_response(int status, const Json& body) {
  RestResponse r;
  r.status = status;
  r.body = dump_json(body);
  return r;
}

RestResponse error_response(int status, std::string_view code, std::string message,
                            std::string_view inner = {}) {
  Json err{{"code", std::string(code)}, {"message", std::move(message)}};
  if (!inner.empty()) {
    err["innererror"] = Json{{"code", std::string(inner)}};
  }
  return json_response(status, Json{{"error", std::move(err)}});
}

RestResponse vault_error(const Error& e) {
  return json_response(http_status_for(e), error_body(e));
}

RestResponse bad_request(std::string message) {
  return error_response(400, kBadParameter, std::move(message));
}

const std::string* query_value(const RestRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.query) {
    if (iequals(k, name)) {
      return &v;
    }
  }
  return nullptr;
}

// --- paging -----------------------------------------------------------------------------------

std::string skiptoken_for(std::size_t offset) {
  return base64url_encode(as_bytes("keyport-offset:" + std::to_string(offset)));
}

Result<std::size_t> offset_of(const std::string& token) {
  auto raw = base64url_decode(token);
  const std::string prefix = "keyport-offset:";
  if (raw) {
    std::string text(as_chars(*raw));
    if (text.rfind(prefix, 0) == 0 && text.size() > prefix.size() &&
        text.size() < prefix.size() + 10 &&
        std::all_of(text.begin() + static_cast<std::ptrdiff_t>(prefix.size()), text.end(),
                    [](unsigned char c) { return std::isdigit(c) != 0; })) {
      return static_cast<std::size_t>(std::stoul(text.substr(prefix.size())));
    }
  }
  return bad_parameter("The value of $skiptoken is not valid.");
}

struct Paging {
  std::size_t max = kMaxPage;
  std::size_t offset = 0;
};

// maxresults and $skiptoken of a list request, checked before the vault runs the list (so that a
// 400 is not audited as a successful GetKeys).
Result<Paging> paging_of(const RestRequest& request) {
  Paging p;
  if (const std::string* m = query_value(request, "maxresults")) {
    const bool digits =
        !m->empty() && m->size() < 6 &&
        std::all_of(m->begin(), m->end(), [](unsigned char c) { return std::isdigit(c) != 0; });
    p.max = digits ? static_cast<std::size_t>(std::stoul(*m)) : 0;
    if (p.max < 1 || p.max > kMaxPage) {
      return bad_parameter("The value of maxresults (" + *m + ") must be between 1 and 25.");
    }
  }
  if (const std::string* t = query_value(request, "$skiptoken")) {
    KEYPORT_ASSIGN_OR_RETURN(p.offset, offset_of(*t));
  }
  return p;
}

// Cuts one page out of a KeyListResult / DeletedKeyListResult and links the next.
Json page_of(Json list, const Paging& paging, const RestRequest& request,
             const std::string& base_url, const std::string& api_version) {
  const std::size_t max = paging.max;
  const std::size_t offset = paging.offset;
  Json all = list.contains("value") ? std::move(list["value"]) : Json::array();
  Json page = Json::array();
  for (std::size_t i = offset; i < all.size() && i < offset + max; ++i) {
    page.push_back(std::move(all[i]));
  }
  Json out{{"value", std::move(page)}, {"nextLink", nullptr}};
  if (offset + max < all.size()) {
    std::string path = request.path;
    if (path.size() > 1 && path.back() == '/') {
      path.pop_back();
    }
    out["nextLink"] = base_url + path + "?api-version=" + api_version +
                      "&$skiptoken=" + skiptoken_for(offset + max) +
                      "&maxresults=" + std::to_string(max);
    // Managed HSM role lists: the next page keeps the filter.
    if (const std::string* filter = query_value(request, "$filter")) {
      std::string escaped;
      for (const char ch : *filter) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
          escaped += ch;
        } else {
          static constexpr char kHexDigits[] = "0123456789ABCDEF";
          escaped += '%';
          escaped += kHexDigits[c >> 4];
          escaped += kHexDigits[c & 15];
        }
      }
      out["nextLink"] = out["nextLink"].get<std::string>() + "&$filter=" + escaped;
    }
  }
  return out;
}

// --- request bodies ---------------------------------------------------------------------------

Result<Json> parse_body(const RestRequest& request, std::size_t max_body) {
  if (trim(request.body).empty()) {
    return bad_parameter("The request body is missing: this operation takes a JSON object.");
  }
  const std::string media = ascii_lower(
      trim(std::string_view(request.content_type).substr(0, request.content_type.find(';'))));
  if (media != "application/json") {
    return bad_parameter(
        "The request's Content-Type (" +
        (request.content_type.empty() ? std::string("none") : "'" + request.content_type + "'") +
        ") is not supported: send application/json.");
  }
  JsonLimits limits;
  limits.max_bytes = max_body;
  auto doc = parse_json_strict(request.body, limits);
  if (!doc) {
    return bad_parameter("The request body is not valid JSON: " + doc.error().message());
  }
  if (!doc->is_object()) {
    return bad_parameter("The request body must be a JSON object.");
  }
  return std::move(*doc);
}

}  // namespace

// --- api versions -----------------------------------------------------------------------------

const std::vector<std::string>& supported_api_versions() {
  // A preview sorts before the stable version it led to.
  static const std::vector<std::string> v{"2015-06-01",
                                          "2016-10-01",
                                          "7.0",
                                          "7.1",
                                          "7.2-preview",
                                          "7.2",
                                          "7.3-preview",
                                          "7.3",
                                          "7.4-preview.1",
                                          "7.4",
                                          "7.5-preview.1",
                                          "7.5",
                                          "7.6-preview.1",
                                          "7.6-preview.2",
                                          "7.6",
                                          "2025-06-01-preview",
                                          "2025-07-01-preview",
                                          "2025-07-01",
                                          "2026-01-01-preview"};
  return v;
}

std::string_view latest_api_version() {
  return "2025-07-01";
}

bool api_version_at_least(std::string_view version, std::string_view since) {
  const auto& v = supported_api_versions();
  auto at = std::find(v.begin(), v.end(), version);
  auto from = std::find(v.begin(), v.end(), since);
  return at != v.end() && from != v.end() && at >= from;
}

// --- throttling -------------------------------------------------------------------------------

namespace {

// The service-limit class of a request: creates by the body's key type, other key operations by
// the stored key's type and size, everything else is a vault-related transaction.
ThrottleClass throttle_class_of(const Vault& vault, const RestOp& op, const std::string& name,
                                const Json& body) {
  const std::string_view id = op.operation_id;
  auto spec_of = [](std::string_view kty, const Json& params) {
    KeySpec spec;
    spec.family = kty.rfind("EC", 0) == 0    ? KeyFamily::kEc
                  : kty.rfind("oct", 0) == 0 ? KeyFamily::kAes
                                             : KeyFamily::kRsa;
    const Json* size = member(params, "key_size");
    spec.bits = size != nullptr && size->is_number_unsigned() ? size->get<unsigned>() : 2048;
    return spec;
  };
  if (id == "CreateKey") {
    const Json* kty = member(body, "kty");
    const std::string k = kty != nullptr && kty->is_string() ? kty->get<std::string>() : "RSA";
    return key_throttle_class(k, spec_of(k, body), /*create=*/true);
  }
  if (id == "ImportKey") {
    const Json* key = member(body, "key");
    const Json* kty = key != nullptr ? member(*key, "kty") : nullptr;
    std::string k = kty != nullptr && kty->is_string() ? kty->get<std::string>() : "RSA";
    const Json* hsm = member(body, "hsm");
    if (hsm != nullptr && hsm->is_boolean() && hsm->get<bool>() &&
        k.find("-HSM") == std::string::npos) {
      k += "-HSM";
    }
    return key_throttle_class(k, spec_of(k, Json::object()), /*create=*/true);
  }
  if (name.empty() || op.paged || id.find("Deleted") != std::string_view::npos ||
      id.find("RotationPolicy") != std::string_view::npos) {
    return vault_throttle_class();
  }
  auto latest = vault.peek_latest(name);
  if (!latest || !latest->has_value()) {
    return vault_throttle_class();
  }
  return key_throttle_class((*latest)->kty, (*latest)->spec, /*create=*/id == "RotateKey");
}

}  // namespace

// --- RestApi ----------------------------------------------------------------------------------

RestApi::RestApi(Vault& vault, Authenticator* auth, std::size_t max_body, ReleaseOptions release)
    : m_vault(vault),
      m_auth(auth),
      m_max_body(max_body),
      m_release(std::make_shared<ReleaseService>(vault, std::move(release))),
      m_resource(vault.config().flavor == Flavor::kManagedHsm ? "https://managedhsm.azure.net"
                                                              : "https://vault.azure.net") {}

RestResponse RestApi::handle(const RestRequest& request) const noexcept {
  try {
    return dispatch(nullptr, request);
  } catch (const std::exception& e) {
    log::error(std::string("REST handler failed: ") + e.what());
  } catch (...) {
    log::error("REST handler failed with an unknown exception");
  }
  return error_response(500, kInternalServerError, "The server failed to handle the request.");
}

RestResponse RestApi::handle_as(const Principal& caller,
                                const RestRequest& request) const noexcept {
  try {
    return dispatch(&caller, request);
  } catch (const std::exception& e) {
    log::error(std::string("REST handler failed: ") + e.what());
  } catch (...) {
    log::error("REST handler failed with an unknown exception");
  }
  return error_response(500, kInternalServerError, "The server failed to handle the request.");
}

RestResponse RestApi::dispatch(const Principal* preauth, const RestRequest& request) const {
  // 1. Route: 404 for paths Key Vault does not have, 405 for methods a path does not take.
  RouteMatch m = match_route(request.method, request.path);
  switch (m.kind) {
    case RouteMatch::Kind::kNoRoute:
      return error_response(404, "NotFound",
                            "No HTTP resource was found that matches the request URI '" +
                                m_vault.config().base_url + request.path + "'.");
    case RouteMatch::Kind::kBadMethod: {
      RestResponse r = error_response(
          405, "MethodNotAllowed",
          "The requested resource does not support http method '" + request.method + "'.");
      r.headers.emplace_back("Allow", m.allow);
      return r;
    }
    case RouteMatch::Kind::kNotImplemented:
    case RouteMatch::Kind::kRoute:
      break;
  }

  // 2. api-version.
  const std::string* api_version = query_value(request, "api-version");
  if (api_version == nullptr || api_version->empty()) {
    return bad_request(
        "The api-version query parameter (?api-version=) is required for all "
        "requests.");
  }
  const bool resource_manager = m.kind == RouteMatch::Kind::kRoute && m.op->resource_manager;
  const auto& versions = supported_api_versions();
  if (!resource_manager &&
      std::find(versions.begin(), versions.end(), *api_version) == versions.end()) {
    return bad_request("The specified version (" + *api_version +
                       ") is not recognized. Consider using the latest supported version (" +
                       std::string(latest_api_version()) + ").");
  }
  // 2b. Operations newer than the requested version (RestOp::since).
  if (m.kind == RouteMatch::Kind::kRoute && m.op->since != nullptr &&
      !api_version_at_least(*api_version, m.op->since)) {
    return bad_request("The operation " + std::string(m.op->operation_id) +
                       " is not available in api-version " + *api_version +
                       "; it was introduced in api-version " + m.op->since + ".");
  }

  // 3. Who is calling. Before any body check: SDKs send their first request without a token and
  // without its body, and expect the challenge.
  Principal principal;
  if (preauth != nullptr) {
    principal = *preauth;
  } else {
    std::string_view token = bearer_token(request.authorization);
    std::optional<Principal> found;
    std::string refusal;
    if (!token.empty() && m_auth != nullptr) {
      found = m_auth->authenticate(
          token, resource_manager ? Audience::kResourceManager : Audience::kVault, refusal);
    }
    if (!found) {
      const std::string broken = m_auth != nullptr ? m_auth->refusal_reason() : std::string();
      RestResponse r = error_response(
          401, kUnauthorized,
          token.empty()      ? "AKV10000: Request is missing a Bearer or PoP token."
          : !broken.empty()  ? broken
          : !refusal.empty() ? refusal
                             : "The bearer token is not valid for this vault (it is not in the "
                               "vault's access file).");
      r.headers.emplace_back("WWW-Authenticate", challenge());
      return r;
    }
    if (m_auth->insecure()) {
      log::warn("--insecure-any-token: accepted a request without checking its token (" +
                request.method + " " + request.path + ")");
    }
    principal = std::move(*found);
  }

  RestResponse result;
  // 4. Permission (before 501: Key Vault checks it first).
  auto forbidden = [&](Permission needed, const std::string& operation) {
    RestResponse f = error_response(
        403, kForbidden,
        "The user, group or application 'name=" + principal.name + "' does not have keys " +
            std::string(to_string(needed)) + " permission on key vault '" + m_vault.config().name +
            ";location=local'. Ask the vault's administrator to add it to the access file.",
        "ForbiddenByPolicy");
    f.caller = principal.name;
    f.operation = operation;
    return f;
  };
  // Managed HSM local RBAC (vault/rbac.h) replaces the access file's permissions once initialised.
  const bool rbac_applies = m_vault.config().flavor == Flavor::kManagedHsm &&
                            !principal.rbac_exempt && m_vault.rbac().initialised();
  auto rbac_forbidden = [&](std::string_view action, std::string_view resource,
                            const std::string& operation) {
    RestResponse f = error_response(
        403, kForbidden,
        "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
        "assignments or role definitions were changed recently, please observe propagation "
        "time.\r\nCaller: name=" +
            principal.name + (principal.object_id.empty() ? "" : ";oid=" + principal.object_id) +
            "\r\nAction: '" + std::string(action.empty() ? "(none)" : action) + "'\r\nResource: '" +
            std::string(resource) +
            "'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC' "
            "\r\nVault: " +
            m_vault.config().name + ";location=local\r\n",
        "ForbiddenByRbac");
    f.caller = principal.name;
    f.operation = operation;
    return f;
  };
  // Whether RBAC lets the caller run `operation`; the key's scope applies to key data actions.
  auto rbac_allows = [&](const std::string& operation, std::string_view& action,
                         std::string& resource) {
    action = data_action_for(operation);
    const bool on_key = action.find("/keys/") != std::string_view::npos && !m.name.empty();
    resource = on_key ? "/keys/" + m.name : "/";
    return !action.empty() && m_vault.rbac().permits(principal, action, on_key ? m.name : "");
  };
  if (m.kind == RouteMatch::Kind::kNotImplemented) {
    if (rbac_applies) {
      std::string_view action;
      std::string resource;
      if (!rbac_allows(m.feature, action, resource)) {
        return rbac_forbidden(action, resource, m.feature);
      }
    } else if (const Permission needed = rest::not_implemented_permission(m.feature);
               !principal.allows(needed)) {
      return forbidden(needed, m.feature);
    }
    result = error_response(501, "NotImplemented",
                            m.feature + " is not implemented by the keyport simulated vault.");
    result.caller = principal.name;
    return result;
  }
  const RestOp& op = *m.op;
  if (rbac_applies && !op.resource_manager) {
    std::string_view action;
    std::string resource;
    if (!rbac_allows(op.operation_id, action, resource)) {
      return rbac_forbidden(action, resource, op.operation_id);
    }
  } else if (op.administrative && principal.permissions != all_permissions()) {
    RestResponse f = error_response(
        403, kForbidden,
        "The user, group or application 'name=" + principal.name +
            "' may not manage roles or settings: without Managed HSM local RBAC only a caller "
            "with every key permission in the access file may.",
        "ForbiddenByPolicy");
    f.caller = principal.name;
    f.operation = op.operation_id;
    return f;
  } else if (!op.any_caller && !op.administrative && !principal.allows(op.permission)) {
    return forbidden(op.permission, op.operation_id);
  }

  // 4b. A Managed HSM that is not activated answers its security-domain operations only.
  if (!op.before_activation && !op.resource_manager) {
    if (auto active = m_vault.require_activated(); !active) {
      result = vault_error(active.error());
      result.caller = principal.name;
      result.operation = op.operation_id;
      return result;
    }
  }

  // 5. Body.
  Json body;
  if (op.needs_body) {
    auto parsed = parse_body(request, m_max_body);
    if (!parsed) {
      result = vault_error(parsed.error());
      result.caller = principal.name;
      result.operation = op.operation_id;
      return result;
    }
    body = std::move(*parsed);
    // Members newer than the requested version: exportable keys and release policies (7.3).
    if (op.key_properties && !api_version_at_least(*api_version, kApi73Preview)) {
      const char* member = body.contains("release_policy") ? "release_policy"
                           : body.contains("attributes") && body["attributes"].is_object() &&
                                   body["attributes"].contains("exportable")
                               ? "attributes.exportable"
                               : nullptr;
      if (member != nullptr) {
        result = bad_request(std::string("The property '") + member +
                             "' is not available in api-version " + *api_version +
                             "; it was introduced in api-version " + kApi73Preview + ".");
        result.caller = principal.name;
        result.operation = op.operation_id;
        return result;
      }
    }
  }

  // 5b. Paging parameters of lists.
  const bool is_list = op.paged;
  Paging paging;
  if (is_list) {
    auto p = paging_of(request);
    if (!p) {
      result = vault_error(p.error());
      result.caller = principal.name;
      result.operation = op.operation_id;
      return result;
    }
    paging = *p;
  }

  // 5c. --throttle azure: over the limits, 429 with Retry-After (not counted, as in Key Vault).
  if (m_throttle) {
    const ThrottleClass c = throttle_class_of(m_vault, op, m.name, body);
    if (std::optional<long> wait = m_throttle->admit(c, Throttle::Clock::now())) {
      result = error_response(
          429, "Throttled",
          "Request was not processed because too many requests were received (" + c.name + ": " +
              std::to_string(c.limit) + " per 10 seconds per vault). Retry after " +
              std::to_string(*wait) + " seconds.");
      result.headers.emplace_back("Retry-After", std::to_string(*wait));
      result.caller = principal.name;
      result.operation = op.operation_id;
      return result;
    }
  }

  // 6. The vault.
  const CallContext ctx{principal.name};
  const std::string* filter = query_value(request, "$filter");
  const std::string no_filter;
  Result<Json> r =
      op.handler(OpCall{m_vault, *m_release, ctx, m.name, m.version, body, *api_version, m.scope,
                        filter != nullptr ? *filter : no_filter});
  if (r && is_list) {
    r = page_of(std::move(*r), paging, request, m_vault.config().base_url, *api_version);
  }
  if (!r) {
    result = vault_error(r.error());
  } else if (op.success_status == 204) {
    result.status = 204;
  } else if (op.success_status == 202) {
    // A long-running operation (full backup or restore): the status route to poll.
    result = json_response(202, *r);
    const std::string id = op.operation_id;
    const std::string status_path =
        id == "HSMSecurityDomain_Download" ? "/securitydomain/download/pending"
        : id == "HSMSecurityDomain_Upload"
            ? "/securitydomain/upload/pending"
            : std::string(id == "FullBackup" ? "/backup/" : "/restore/") + r->value("jobId", "") +
                  "/pending";
    result.headers.emplace_back("Azure-AsyncOperation", m_vault.config().base_url + status_path +
                                                            "?api-version=" + *api_version);
    result.headers.emplace_back("Retry-After", "1");
  } else {
    result = json_response(op.success_status, *r);
  }
  result.caller = principal.name;
  result.operation = op.operation_id;
  return result;
}

}  // namespace keyport::vault
