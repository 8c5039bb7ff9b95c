// SPDX-License-Identifier: Apache-2.0
#include "vault/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <thread>

#include "byok/kid.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/log.h"
#include "vault/tls.h"

namespace keyport::vault {
namespace fs = std::filesystem;
namespace {

constexpr const char* kServerFile = "server.json";
constexpr const char* kAccessFile = "access.json";
constexpr const char* kTokenFile = "admin.token";
constexpr const char* kJsonType = "application/json; charset=utf-8";
constexpr std::size_t kMaxPage = 25;
constexpr const char* kTenantAuthority =
    "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) {
    ++b;
  }
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) {
    --e;
  }
  return std::string(s.substr(b, e - b));
}

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

// --- routes -----------------------------------------------------------------------------------

enum class Op {
  kCreate,
  kImport,
  kGet,
  kList,
  kVersions,
  kUpdate,
  kDelete,
  kListDeleted,
  kGetDeleted,
  kRecover,
  kPurge,
  kSign,
  kVerify,
  kEncrypt,
  kDecrypt,
  kWrapKey,
  kUnwrapKey,
  kRotate,
  kGetRotationPolicy,
  kSetRotationPolicy,
  kPlatformReport,
  kRelease,
};

struct OpInfo {
  Op op;
  const char* operation_id;
  Permission permission;
  bool needs_body;
};

constexpr OpInfo kOps[] = {
    {Op::kCreate, "CreateKey", Permission::kCreate, true},
    {Op::kImport, "ImportKey", Permission::kImport, true},
    {Op::kGet, "GetKey", Permission::kGet, false},
    {Op::kList, "GetKeys", Permission::kList, false},
    {Op::kVersions, "GetKeyVersions", Permission::kList, false},
    {Op::kUpdate, "UpdateKey", Permission::kUpdate, true},
    {Op::kDelete, "DeleteKey", Permission::kDelete, false},
    {Op::kListDeleted, "GetDeletedKeys", Permission::kList, false},
    {Op::kGetDeleted, "GetDeletedKey", Permission::kGet, false},
    {Op::kRecover, "RecoverDeletedKey", Permission::kRecover, false},
    {Op::kPurge, "PurgeDeletedKey", Permission::kPurge, false},
    {Op::kSign, "Sign", Permission::kSign, true},
    {Op::kVerify, "Verify", Permission::kVerify, true},
    {Op::kEncrypt, "Encrypt", Permission::kEncrypt, true},
    {Op::kDecrypt, "Decrypt", Permission::kDecrypt, true},
    {Op::kWrapKey, "WrapKey", Permission::kWrapKey, true},
    {Op::kUnwrapKey, "UnwrapKey", Permission::kUnwrapKey, true},
    // Access-policy permissions "rotate", "getrotationpolicy", "setrotationpolicy" (Key Vault's
    // how-to-configure-key-rotation: with access policies these three are required).
    {Op::kRotate, "RotateKey", Permission::kRotate, false},
    {Op::kGetRotationPolicy, "GetKeyRotationPolicy", Permission::kGetRotationPolicy, false},
    {Op::kSetRotationPolicy, "UpdateKeyRotationPolicy", Permission::kSetRotationPolicy, true},
    // keyport's own route (not Key Vault's): GET /keyport/platform-report.
    {Op::kPlatformReport, "PlatformReport", Permission::kList, false},
    // Secure Key Release (vault/release.h): access-policy permission "release".
    {Op::kRelease, "ReleaseKey", Permission::kRelease, true},
};

const OpInfo& info_of(Op op) {
  for (const auto& i : kOps) {
    if (i.op == op) {
      return i;
    }
  }
  return kOps[0];
}

// The key operations of POST /keys/{name}[/{version}]/<op>.
std::optional<Op> crypto_op(const std::string& segment) {
  if (segment == "sign") {
    return Op::kSign;
  }
  if (segment == "verify") {
    return Op::kVerify;
  }
  if (segment == "encrypt") {
    return Op::kEncrypt;
  }
  if (segment == "decrypt") {
    return Op::kDecrypt;
  }
  if (segment == "wrapkey") {
    return Op::kWrapKey;
  }
  if (segment == "unwrapkey") {
    return Op::kUnwrapKey;
  }
  return std::nullopt;
}

struct Match {
  enum class Kind { kRoute, kNoRoute, kBadMethod, kNotImplemented };
  Kind kind = Kind::kNoRoute;
  Op op = Op::kGet;
  std::string name;
  std::string version;
  std::string allow;    // kBadMethod: the methods the path takes
  std::string feature;  // kNotImplemented: what is missing
};

// One path shape: the methods it takes and what each does.
struct Shape {
  std::vector<std::pair<std::string_view, std::optional<Op>>> methods;  // nullopt: not implemented
  std::string feature;
};

Match resolve(const std::string& method, const Shape& shape, std::string name,
              std::string version) {
  Match m;
  for (const auto& [verb, op] : shape.methods) {
    m.allow += (m.allow.empty() ? "" : ", ") + std::string(verb);
  }
  for (const auto& [verb, op] : shape.methods) {
    if (verb != method) {
      continue;
    }
    if (!op) {
      m.kind = Match::Kind::kNotImplemented;
      m.feature = shape.feature;
      return m;
    }
    m.kind = Match::Kind::kRoute;
    m.op = *op;
    m.name = std::move(name);
    m.version = std::move(version);
    return m;
  }
  m.kind = Match::Kind::kBadMethod;
  return m;
}

Match match_route(const std::string& method, std::string path) {
  if (path.empty() || path.front() != '/') {
    return {};
  }
  if (path.size() > 1 && path.back() == '/') {
    path.pop_back();  // a trailing slash: "/keys/name/" is the latest version of name
  }
  std::vector<std::string> seg;
  std::size_t pos = 1;
  while (true) {
    std::size_t next = path.find('/', pos);
    seg.push_back(path.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) {
      break;
    }
    pos = next + 1;
  }
  const std::string root = lower(seg[0]);
  const std::size_t n = seg.size();
  const std::optional<Op> none;
  if (root == "keys") {
    if (n == 1) {
      return resolve(method, {{{"GET", Op::kList}}, ""}, "", "");
    }
    if (n == 2) {
      if (lower(seg[1]) == "restore") {
        return resolve(method, {{{"POST", none}}, "RestoreKey"}, "", "");
      }
      return resolve(method,
                     {{{"GET", Op::kGet},
                       {"PUT", Op::kImport},
                       {"PATCH", Op::kUpdate},
                       {"DELETE", Op::kDelete}},
                      ""},
                     seg[1], "");
    }
    const std::string third = lower(seg[2]);
    if (n == 3) {
      if (third == "create") {
        return resolve(method, {{{"POST", Op::kCreate}}, ""}, seg[1], "");
      }
      if (third == "versions") {
        return resolve(method, {{{"GET", Op::kVersions}}, ""}, seg[1], "");
      }
      if (auto op = crypto_op(third)) {
        return resolve(method, {{{"POST", *op}}, ""}, seg[1], "");
      }
      if (third == "release") {
        return resolve(method, {{{"POST", Op::kRelease}}, ""}, seg[1], "");
      }
      if (third == "rotate") {
        return resolve(method, {{{"POST", Op::kRotate}}, ""}, seg[1], "");
      }
      if (third == "backup") {
        return resolve(method, {{{"POST", none}}, "BackupKey"}, "", "");
      }
      if (third == "rotationpolicy") {
        return resolve(method,
                       {{{"GET", Op::kGetRotationPolicy}, {"PUT", Op::kSetRotationPolicy}}, ""},
                       seg[1], "");
      }
      if (third == "attestation") {
        return resolve(method, {{{"GET", none}}, "GetKeyAttestation"}, "", "");
      }
      return resolve(method, {{{"GET", Op::kGet}, {"PATCH", Op::kUpdate}}, ""}, seg[1], seg[2]);
    }
    if (n == 4) {
      const std::string fourth = lower(seg[3]);
      if (auto op = crypto_op(fourth)) {
        return resolve(method, {{{"POST", *op}}, ""}, seg[1], seg[2]);
      }
      if (fourth == "release") {
        return resolve(method, {{{"POST", Op::kRelease}}, ""}, seg[1], seg[2]);
      }
      if (fourth == "attestation") {
        return resolve(method, {{{"GET", none}}, "GetKeyAttestation"}, "", "");
      }
    }
    return {};
  }
  if (root == "keyport" && n == 2 && lower(seg[1]) == "platform-report") {
    return resolve(method, {{{"GET", Op::kPlatformReport}}, ""}, "", "");
  }
  if (root == "deletedkeys") {
    if (n == 1) {
      return resolve(method, {{{"GET", Op::kListDeleted}}, ""}, "", "");
    }
    if (n == 2) {
      return resolve(method, {{{"GET", Op::kGetDeleted}, {"DELETE", Op::kPurge}}, ""}, seg[1], "");
    }
    if (n == 3 && lower(seg[2]) == "recover") {
      return resolve(method, {{{"POST", Op::kRecover}}, ""}, seg[1], "");
    }
  }
  return {};
}

const std::string* query_value(const RestRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.query) {
    if (lower(k) == name) {
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
  }
  return out;
}

// --- request bodies ---------------------------------------------------------------------------

Result<Json> parse_body(const RestRequest& request, std::size_t max_body) {
  if (trim(request.body).empty()) {
    return bad_parameter("The request body is missing: this operation takes a JSON object.");
  }
  std::string media = lower(trim(request.content_type.substr(0, request.content_type.find(';'))));
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

// "Bearer <token>" -> token; "" when absent or another scheme.
std::string_view bearer_token(std::string_view header) {
  std::size_t sp = header.find(' ');
  if (sp == std::string_view::npos || lower(header.substr(0, sp)) != "bearer") {
    return {};
  }
  std::string_view t = header.substr(sp);
  while (!t.empty() && t.front() == ' ') {
    t.remove_prefix(1);
  }
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) {
    t.remove_suffix(1);
  }
  return t;
}

}  // namespace

// --- api versions -----------------------------------------------------------------------------

const std::vector<std::string>& supported_api_versions() {
  static const std::vector<std::string> v{"7.0", "7.1", "7.2", "7.3",
                                          "7.4", "7.5", "7.6", "2025-07-01"};
  return v;
}

std::string_view latest_api_version() {
  return supported_api_versions().back();
}

// --- authenticators ---------------------------------------------------------------------------

Result<std::unique_ptr<AccessFileAuthenticator>> AccessFileAuthenticator::open(fs::path file) {
  KEYPORT_ASSIGN_OR_RETURN(AccessList list, AccessList::load(file));
  std::unique_ptr<AccessFileAuthenticator> a(
      new AccessFileAuthenticator(std::move(file), std::move(list)));
  return a;
}

namespace {
// What identifies one version of the access file: a write in place changes size or mtime, an
// atomic replace (rename) changes the inode even within one mtime tick.
std::string access_file_stamp(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return {};
  }
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}
}  // namespace

AccessFileAuthenticator::AccessFileAuthenticator(fs::path file, AccessList list)
    : m_file(std::move(file)), m_list(std::move(list)), m_stamp(access_file_stamp(m_file)) {}

// One stat(2) per request (about a microsecond): a token granted by editing the file works on the
// very next request, which is what a runbook that edits the file and then calls the vault expects.
void AccessFileAuthenticator::maybe_reload() {
  std::string stamp = access_file_stamp(m_file);
  if (stamp.empty() || stamp == m_stamp) {
    return;
  }
  m_stamp = std::move(stamp);
  auto list = AccessList::load(m_file);
  if (!list) {
    log::error(
        "access file " + m_file.string() +
        " changed but does not load; keeping the previous tokens: " + list.error().message());
    return;
  }
  m_list = std::move(*list);
  log::info("access file " + m_file.string() + " reloaded (" + std::to_string(m_list.size()) +
            " tokens)");
}

std::optional<Principal> AccessFileAuthenticator::authenticate(std::string_view token) {
  std::lock_guard<std::mutex> lock(m_mutex);
  maybe_reload();
  return m_list.authenticate(token);
}

std::optional<Principal> AnyTokenAuthenticator::authenticate(std::string_view token) {
  if (token.empty()) {
    return std::nullopt;
  }
  return Principal{"insecure-any-token", all_permissions()};
}

// --- RestApi ----------------------------------------------------------------------------------

RestApi::RestApi(Vault& vault, Authenticator* auth, std::size_t max_body, ReleaseOptions release)
    : m_vault(vault),
      m_auth(auth),
      m_max_body(max_body),
      m_release(std::make_shared<ReleaseService>(vault, std::move(release))) {}

std::string RestApi::challenge() const {
  const char* resource = m_vault.config().flavor == Flavor::kManagedHsm
                             ? "https://managedhsm.azure.net"
                             : "https://vault.azure.net";
  return std::string("Bearer authorization=\"") + kTenantAuthority + "\", resource=\"" + resource +
         "\"";
}

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
  Match m = match_route(request.method, request.path);
  switch (m.kind) {
    case Match::Kind::kNoRoute:
      return error_response(404, "NotFound",
                            "No HTTP resource was found that matches the request URI '" +
                                m_vault.config().base_url + request.path + "'.");
    case Match::Kind::kBadMethod: {
      RestResponse r = error_response(
          405, "MethodNotAllowed",
          "The requested resource does not support http method '" + request.method + "'.");
      r.headers.emplace_back("Allow", m.allow);
      return r;
    }
    case Match::Kind::kNotImplemented:
    case Match::Kind::kRoute:
      break;
  }

  // 2. api-version.
  const std::string* api_version = query_value(request, "api-version");
  if (api_version == nullptr || api_version->empty()) {
    return bad_request(
        "The api-version query parameter (?api-version=) is required for all "
        "requests.");
  }
  const auto& versions = supported_api_versions();
  if (std::find(versions.begin(), versions.end(), *api_version) == versions.end()) {
    return bad_request("The specified version (" + *api_version +
                       ") is not recognized. Consider using the latest supported version (" +
                       std::string(latest_api_version()) + ").");
  }

  // 3. Who is calling. Before any body check: SDKs send their first request without a token and
  // without its body, and expect the challenge.
  Principal principal;
  if (preauth != nullptr) {
    principal = *preauth;
  } else {
    std::string_view token = bearer_token(request.authorization);
    std::optional<Principal> found;
    if (!token.empty() && m_auth != nullptr) {
      found = m_auth->authenticate(token);
    }
    if (!found) {
      RestResponse r = error_response(
          401, kUnauthorized,
          token.empty() ? "AKV10000: Request is missing a Bearer or PoP token."
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
  if (m.kind == Match::Kind::kNotImplemented) {
    result = error_response(501, "NotImplemented",
                            m.feature + " is not implemented by the keyport simulated vault.");
    result.caller = principal.name;
    return result;
  }
  const OpInfo& op = info_of(m.op);

  // 4. Permission.
  if (!principal.allows(op.permission)) {
    result = error_response(403, kForbidden,
                            "The user, group or application 'name=" + principal.name +
                                "' does not have keys " + std::string(to_string(op.permission)) +
                                " permission on key vault '" + m_vault.config().name +
                                ";location=local'. Ask the vault's administrator to add it to "
                                "the access file.",
                            "ForbiddenByPolicy");
    result.caller = principal.name;
    result.operation = op.operation_id;
    return result;
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
  }

  // 5b. Paging parameters of lists.
  const bool is_list = m.op == Op::kList || m.op == Op::kVersions || m.op == Op::kListDeleted;
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

  // 6. The vault.
  const CallContext ctx{principal.name};
  Result<Json> r = make_error(ErrorCode::kInternal, "unreachable");
  bool no_content = false;
  switch (m.op) {
    case Op::kCreate:
      r = m_vault.create_key(ctx, m.name, body);
      break;
    case Op::kImport:
      r = m_vault.import_key(ctx, m.name, body);
      break;
    case Op::kGet:
      r = m_vault.get_key(ctx, m.name, m.version);
      break;
    case Op::kList:
      r = m_vault.list_keys(ctx);
      break;
    case Op::kVersions:
      r = m_vault.list_key_versions(ctx, m.name);
      break;
    case Op::kUpdate:
      r = m_vault.update_key(ctx, m.name, m.version, body);
      break;
    case Op::kDelete:
      r = m_vault.delete_key(ctx, m.name);
      break;
    case Op::kListDeleted:
      r = m_vault.list_deleted_keys(ctx);
      break;
    case Op::kGetDeleted:
      r = m_vault.get_deleted_key(ctx, m.name);
      break;
    case Op::kRecover:
      r = m_vault.recover_deleted_key(ctx, m.name);
      break;
    case Op::kPurge: {
      Status st = m_vault.purge_deleted_key(ctx, m.name);
      if (st) {
        r = Json();
        no_content = true;
      } else {
        r = tl::unexpected(st.error());
      }
      break;
    }
    case Op::kSign:
      r = m_vault.sign(ctx, m.name, m.version, body);
      break;
    case Op::kVerify:
      r = m_vault.verify(ctx, m.name, m.version, body);
      break;
    case Op::kEncrypt:
      r = m_vault.encrypt(ctx, m.name, m.version, body);
      break;
    case Op::kDecrypt:
      r = m_vault.decrypt(ctx, m.name, m.version, body);
      break;
    case Op::kWrapKey:
      r = m_vault.wrap_key(ctx, m.name, m.version, body);
      break;
    case Op::kUnwrapKey:
      r = m_vault.unwrap_key(ctx, m.name, m.version, body);
      break;
    case Op::kRotate:
      r = m_vault.rotate_key(ctx, m.name);
      break;
    case Op::kGetRotationPolicy:
      r = m_vault.get_rotation_policy(ctx, m.name);
      break;
    case Op::kSetRotationPolicy:
      r = m_vault.update_rotation_policy(ctx, m.name, body);
      break;
    case Op::kPlatformReport:
      r = m_vault.platform_report(ctx);
      break;
    case Op::kRelease:
      r = m_release->release(ctx, m.name, m.version, body, *api_version);
      break;
  }
  if (r && is_list) {
    r = page_of(std::move(*r), paging, request, m_vault.config().base_url, *api_version);
  }
  if (!r) {
    result = vault_error(r.error());
  } else if (no_content) {
    result.status = 204;
  } else {
    result = json_response(200, *r);
  }
  result.caller = principal.name;
  result.operation = op.operation_id;
  return result;
}

// --- base URL ---------------------------------------------------------------------------------

namespace {

std::string host_part(const std::string& base_url) {
  std::string host = base_url.substr(base_url.find("://") + 3);
  if (!host.empty() && host.front() == '[') {
    return host.substr(1, host.find(']') - 1);
  }
  return host.substr(0, host.find(':'));
}

bool is_local_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string url_host(const std::string& host) {
  std::string h = host;
  if (h == "0.0.0.0" || h == "::" || h.empty()) {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') {
      h = lower(name);
    } else {
      h = "127.0.0.1";
    }
  }
  return h.find(':') != std::string::npos ? "[" + h + "]" : h;
}

}  // namespace

std::string effective_base_url(const std::string& configured, const VaultConfig& config,
                               const std::string& host, int port) {
  const std::string default_host =
      lower(config.name) +
      (config.flavor == Flavor::kManagedHsm ? ".managedhsm.azure.net" : ".vault.azure.net");
  const std::string h = host_part(lower(configured));
  if (!configured.empty() && h != default_host && !is_local_host(h)) {
    return configured;
  }
  return "https://" + url_host(host) + ":" + std::to_string(port);
}

// --- Server -----------------------------------------------------------------------------------

namespace {

// What the access log needs from the handler that ran on this thread.
struct RequestTrace {
  std::chrono::steady_clock::time_point start;
  bool started = false;
  std::string caller = "-";
  std::string operation;
};
thread_local RequestTrace t_trace;

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

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

struct Listen {
  std::string host;
  int port = 0;
};

Result<Listen> parse_listen(const std::string& text) {
  Listen l;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(ErrorCode::kInvalidArgument, "--listen " + text + ": expected [IPv6]:port");
    }
    l.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return make_error(ErrorCode::kInvalidArgument, "--listen " + text + ": expected host:port");
    }
    l.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }) ||
      std::stoi(port) > 65535) {
    return make_error(ErrorCode::kInvalidArgument, "--listen " + text + ": bad port");
  }
  l.port = std::stoi(port);
  return l;
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

RestRequest to_rest(const httplib::Request& req) {
  RestRequest r;
  r.method = req.method;
  r.path = req.path;
  for (const auto& [k, v] : req.params) {
    r.query.emplace_back(k, v);
  }
  r.content_type = req.get_header_value("Content-Type");
  r.authorization = req.get_header_value("Authorization");
  r.body = req.body;
  return r;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  TlsMaterial tls;
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<Vault> vault;
  std::unique_ptr<RestApi> api;
  std::unique_ptr<httplib::SSLServer> http;
  AccessLog access_log;
  std::string url;
  int port = 0;
  std::thread listener;
  std::thread ticker;  // runs due key rotations while no request comes

  std::mutex mutex;
  std::condition_variable cv;
  bool listener_done = false;
  bool stopped = false;

  void print(const std::string& line) const {
    if (options.print) {
      options.print(line);
    } else {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    }
  }

  void serve(const httplib::Request& req, httplib::Response& res) {
    RestResponse r = api->handle(to_rest(req));
    t_trace.caller = r.caller;
    t_trace.operation = r.operation;
    res.status = r.status;
    for (const auto& [k, v] : r.headers) {
      res.set_header(k, v);
    }
    if (!r.body.empty()) {
      res.set_content(r.body, kJsonType);
    }
  }

  void log_request(const httplib::Request& req, const httplib::Response& res) {
    std::string duration = "-";
    if (t_trace.started) {
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                            t_trace.start)
                      .count();
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1fms", ms);
      duration = buf;
    }
    // The path and the api-version only: no other query member, never a header.
    std::string target = req.path;
    if (req.has_param("api-version")) {
      target += "?api-version=" + req.get_param_value("api-version");
    }
    std::string line = utc_now() + " " + req.remote_addr + " caller=" + t_trace.caller + " " +
                       req.method + " " + target + " " + std::to_string(res.status) + " " +
                       duration + (t_trace.operation.empty() ? "" : " op=" + t_trace.operation);
    if (auth && auth->insecure()) {
      line += " INSECURE-ANY-TOKEN";
    }
    access_log.write(line);
    t_trace = RequestTrace{};
  }

  void install_handlers() {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      try {
        serve(req, res);
      } catch (...) {
        res.status = 500;
        res.set_content(
            dump_json(Json{{"error",
                            {{"code", kInternalServerError},
                             {"message", "The server failed to handle the request."}}}}),
            kJsonType);
      }
    };
    const std::string any = ".*";
    http->Get(any, handler);
    http->Post(any, handler);
    http->Put(any, handler);
    http->Patch(any, handler);
    http->Delete(any, handler);
    http->Options(any, handler);
    http->set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      t_trace = RequestTrace{};
      t_trace.start = std::chrono::steady_clock::now();
      t_trace.started = true;
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Errors httplib answers itself (413 body too large, 400 unparsable request, ...) get a Key
    // Vault error body too; responses that already carry one are left alone.
    http->set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request&,
                                                                        httplib::Response& res) {
      if (!res.body.empty()) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      std::string message = "The request was refused (HTTP " + std::to_string(res.status) + ").";
      if (res.status == 413) {
        message = "The request body is larger than this vault accepts (" +
                  std::to_string(options.max_body) + " bytes).";
      } else if (res.status == 400) {
        message = "The request is not valid HTTP/1.1.";
      }
      res.set_content(
          dump_json(Json{{"error", {{"code", reason_code(res.status)}, {"message", message}}}}),
          kJsonType);
      return httplib::Server::HandlerResponse::Handled;
    }));
    http->set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                   std::exception_ptr) {
      res.status = 500;
      res.set_content(dump_json(Json{{"error",
                                      {{"code", kInternalServerError},
                                       {"message", "The server failed to handle the request."}}}}),
                      kJsonType);
    });
    http->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      log_request(req, res);
    });
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
  KEYPORT_ASSIGN_OR_RETURN(Listen listen, parse_listen(o.listen));
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
    impl->auth = std::move(a);
  }

  // TLS.
  if (o.tls_cert) {
    KEYPORT_ASSIGN_OR_RETURN(impl->tls, load_tls_files(*o.tls_cert, *o.tls_key));
  } else {
    std::string vault_host;
    if (existing) {
      vault_host = host_part(lower(existing->base_url));
    }
    KEYPORT_ASSIGN_OR_RETURN(impl->tls,
                             ensure_vault_tls(o.data_dir / "tls", tls_names(vault_host)));
  }
  Impl* raw = impl.get();
  impl->http = std::make_unique<httplib::SSLServer>([raw](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate(&ctx, raw->tls.cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(&ctx, raw->tls.key.get()) != 1) {
      return false;
    }
    for (const auto& c : raw->tls.chain) {
      if (SSL_CTX_add1_chain_cert(&ctx, c.get()) != 1) {
        return false;
      }
    }
    return SSL_CTX_check_private_key(&ctx) == 1;
  });
  if (!impl->http->is_valid()) {
    return make_error(ErrorCode::kCrypto,
                      "cannot set up TLS with the server certificate: " + ossl::drain_errors());
  }
  const std::size_t threads = o.threads;
  impl->http->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl->http->set_payload_max_length(o.max_body);
  impl->http->set_keep_alive_max_count(1000);
  impl->http->set_keep_alive_timeout(5);
  impl->http->set_read_timeout(10);
  impl->http->set_write_timeout(10);
  impl->http->set_tcp_nodelay(true);
  KEYPORT_TRY(impl->access_log.open(o.access_log));

  // Bind (port 0: the kernel picks one), then settle the base URL with the real port.
  if (listen.port == 0) {
    impl->port = impl->http->bind_to_any_port(listen.host);
  } else {
    impl->port = impl->http->bind_to_port(listen.host, listen.port) ? listen.port : -1;
  }
  if (impl->port <= 0) {
    return make_error(ErrorCode::kIo, "cannot listen on " + o.listen +
                                          " (address in use, or not an address of this host)");
  }
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
    const std::string base =
        effective_base_url(existing->base_url, *existing, listen.host, impl->port);
    if (lower(base) != lower(existing->base_url)) {
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
  impl->api = std::make_unique<RestApi>(*impl->vault, impl->auth.get(), o.max_body, o.release);
  impl->install_handlers();

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
  impl->listener = std::thread([raw] {
    raw->http->listen_after_bind();
    std::lock_guard<std::mutex> lock(raw->mutex);
    raw->listener_done = true;
    raw->cv.notify_all();
  });
  // stop() acts only once httplib says it is running.
  for (int i = 0; i < 5000 && !impl->http->is_running(); ++i) {
    std::unique_lock<std::mutex> lock(impl->mutex);
    if (impl->listener_done) {
      break;
    }
    impl->cv.wait_for(lock, std::chrono::milliseconds(1));
  }
  std::unique_ptr<Server> server(new Server(std::move(impl)));
  if (!server->m_impl->http->is_running()) {
    server->stop();
    return make_error(ErrorCode::kIo, "the HTTPS listener did not start");
  }

  Impl& s = *server->m_impl;
  const VaultConfig& cfg = s.vault->config();
  Json info{{"url", s.url},
            {"base_url", cfg.base_url},
            {"pid", static_cast<long>(::getpid())},
            {"flavor", std::string(to_string(cfg.flavor))},
            {"name", cfg.name},
            {"ca_file", s.tls.ca_file.string()},
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
  KEYPORT_TRY(write_file_atomic(o.data_dir / kServerFile, dump_json(info, 2) + "\n", w));
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
    s.http->stop();
  }
  if (s.listener.joinable()) {
    s.listener.join();  // returns once every worker finished its connection
  }
  s.cv.notify_all();  // wakes the ticker (it checks `stopped`)
  if (s.ticker.joinable()) {
    s.ticker.join();
  }
  s.api.reset();
  s.vault.reset();
  std::error_code ec;
  fs::remove(s.options.data_dir / kServerFile, ec);
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
