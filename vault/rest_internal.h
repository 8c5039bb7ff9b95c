// SPDX-License-Identifier: Apache-2.0
// INTERNAL to keyport::vault: what the REST files share.
//   rest_routes.cpp  the operations table (each operation with its handler) and path matching;
//   rest_auth.cpp    the authenticators, bearer-token parsing, the 401 challenge;
//   rest_api.cpp     RestApi: route, api-version, authenticate, authorise, body, call, page;
//   server.cpp       the HTTPS server (keyport::http, TLS wiring, access log, serve_until_signal).
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json.h"
#include "vault/access.h"
#include "vault/release.h"
#include "vault/server.h"
#include "vault/vault.h"

namespace keyport::vault::rest {

// What a handler gets: the request's parts the vault call needs.
struct OpCall {
  Vault& vault;
  ReleaseService& release;
  const CallContext& ctx;
  const std::string& name;
  const std::string& version;
  const Json& body;
  const std::string& api_version;
  const std::string& scope;   // Managed HSM RBAC routes: the {scope} of the path, as sent
  const std::string& filter;  // $filter ("" when absent)
};

// api-versions where features arrived: Secure Key Release (exportable keys, release policies, the
// release operation) and rotation (rotate, rotation policies) in 7.3-preview; soft delete (the
// deletedkeys routes) in 2016-10-01.
inline constexpr const char* kApi73Preview = "7.3-preview";
inline constexpr const char* kApi2016 = "2016-10-01";
// Managed HSM local RBAC (7.2) and settings (7.4-preview.1).
inline constexpr const char* kApi72 = "7.2";
inline constexpr const char* kApi74Preview = "7.4-preview.1";

// One REST operation: its operationId, the access-policy permission it needs, and its handler.
struct RestOp {
  const char* operation_id;
  Permission permission;
  bool needs_body;
  bool paged;          // a list: maxresults and $skiptoken apply to its answer
  int success_status;  // 200, 202 (a long-running operation: Azure-AsyncOperation), 204 (no body)
  Result<Json> (*handler)(const OpCall& call);
  const char* since = nullptr;  // the first api-version with this operation; nullptr: every one
  bool key_properties = false;  // the body holds key properties (create, import, update)
  bool any_caller = false;      // every authenticated caller may (no key permission applies)
  // Not Key Vault's: an Azure Resource Manager call keyport stands in for. Its api-version is
  // ARM's (any value is taken), identity tokens must be addressed to ARM.
  bool resource_manager = false;
  // Managed HSM role management and settings: without RBAC (a key-vault folder, a managed-hsm one
  // whose RBAC is not initialised) only a caller with every access-file permission may.
  bool administrative = false;
  // Managed HSM's security domain: the only operations of an HSM that is not activated yet.
  bool before_activation = false;
};

struct RouteMatch {
  enum class Kind { kRoute, kNoRoute, kBadMethod, kNotImplemented };
  Kind kind = Kind::kNoRoute;
  const RestOp* op = nullptr;  // kRoute
  std::string name;
  std::string version;
  std::string allow;    // kBadMethod: the methods the path takes
  std::string feature;  // kNotImplemented: what is missing
  std::string scope;    // Managed HSM RBAC routes: the path before /providers/...
};

// Routes a request: Key Vault paths, case-insensitive on `keys`/`deletedkeys` and the operation
// names, `{version}` optional where Key Vault allows it, a trailing slash tolerated.
RouteMatch match_route(const std::string& method, std::string path);

// The permission Key Vault checks for an operation keyport does not implement (RouteMatch::feature:
// BackupKey, RestoreKey, GetKeyAttestation). Key Vault checks it before anything else, so a caller
// without it gets 403, not 501.
Permission not_implemented_permission(std::string_view feature);

// "Bearer <token>" -> token; "" when absent or another scheme.
std::string_view bearer_token(std::string_view header);

}  // namespace keyport::vault::rest
