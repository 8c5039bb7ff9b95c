// SPDX-License-Identifier: Apache-2.0
#include "client/client.h"

#include <cctype>
#include <chrono>
#include <functional>
#include <thread>

#include <utility>

#include "client/transports.h"
#include "core/encoding.h"
#include "vault/model.h"

namespace keyport::vault {
namespace {

// A path segment from the caller: a key name by Key Vault's rule, a version of letters and
// digits, so that neither can reach another route ("app/versions", "app?x", "../deletedkeys").
Result<std::string> key_path(std::string_view name, std::string_view version = {}) {
  KEYPORT_TRY(check_key_name(name));
  std::string p = "/keys/" + std::string(name);
  if (!version.empty()) {
    for (char c : version) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
        return bad_parameter("A key version is letters and digits only (32 hex digits).");
      }
    }
    p += "/" + std::string(version);
  }
  return p;
}

Result<std::string> deleted_key_path(std::string_view name) {
  KEYPORT_TRY(check_key_name(name));
  return "/deletedkeys/" + std::string(name);
}

std::string with_page_size(std::string path, std::optional<unsigned> page_size) {
  if (page_size) {
    path += "?maxresults=" + std::to_string(*page_size);
  }
  return path;
}

Result<Json> parse_answer(const Transport::Answer& a) {
  if (a.status < 200 || a.status >= 300) {
    return tl::unexpected(error_from_response(a.status, a.body));
  }
  if (a.status == 204 || a.body.empty()) {
    return Json();
  }
  auto j = parse_json_strict(a.body);
  if (!j) {
    return make_error(ErrorCode::kFormat,
                      "the vault's answer is not valid JSON: " + j.error().message());
  }
  return std::move(*j);
}

// "RSA-HSM" -> "RSA": the CLI has always taken both spellings; build_import_request takes the
// family only.
std::string family_of_kty(std::string kty) {
  const std::string suffix = "-hsm";
  if (kty.size() > suffix.size() && ascii_lower(kty.substr(kty.size() - suffix.size())) == suffix) {
    kty.resize(kty.size() - suffix.size());
  }
  return kty;
}

}  // namespace

Error error_from_response(int status, std::string_view body) {
  std::string code = "HTTP" + std::to_string(status);
  std::string message = "the vault answered HTTP " + std::to_string(status);
  auto parsed = parse_json_strict(body);
  if (parsed && parsed->is_object() && parsed->contains("error") &&
      (*parsed)["error"].is_object()) {
    const Json& e = (*parsed)["error"];
    if (e.contains("code") && e["code"].is_string()) {
      code = e["code"].get<std::string>();
    }
    if (e.contains("message") && e["message"].is_string()) {
      message = e["message"].get<std::string>();
    }
  }
  ErrorCode category = ErrorCode::kInvalidArgument;
  if (status == 404) {
    category = ErrorCode::kNotFound;
  } else if (status == 401) {
    category = ErrorCode::kAuth;
  } else if (status == 403) {
    category = ErrorCode::kPermissionDenied;
  } else if (status == 409) {
    category = ErrorCode::kAlreadyExists;
  } else if (status >= 500) {
    category = ErrorCode::kUnavailable;
  }
  return Error(category,
               "vault: " + code + ": " + message + " (HTTP " + std::to_string(status) + ")")
      .with_detail(code);
}

Result<std::string> byok_import_body(std::span<const std::uint8_t> byok_file,
                                     byok::ImportRequestOptions options) {
  if (options.kty) {
    options.kty = family_of_kty(*options.kty);
  }
  KEYPORT_ASSIGN_OR_RETURN(byok::ImportRequest request,
                           byok::build_import_request(byok_file, options));
  return request.body.dump();
}

std::string_view to_string(KeyOperation op) {
  switch (op) {
    case KeyOperation::kEncrypt:
      return "encrypt";
    case KeyOperation::kDecrypt:
      return "decrypt";
    case KeyOperation::kWrapKey:
      return "wrapkey";
    case KeyOperation::kUnwrapKey:
      return "unwrapkey";
  }
  return "";
}

Client::Client(std::unique_ptr<Transport> transport) : m_transport(std::move(transport)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::connect(HttpsOptions options) {
  KEYPORT_ASSIGN_OR_RETURN(auto t, make_https_transport(std::move(options)));
  return Client(std::move(t));
}

Result<Client> Client::open_folder(const std::filesystem::path& dir, FolderOptions options) {
  KEYPORT_ASSIGN_OR_RETURN(auto t, make_folder_transport(dir, std::move(options)));
  return Client(std::move(t));
}

Status Client::check_key_name(std::string_view name) {
  return vault::check_key_name(name);
}

Result<Json> Client::call(std::string_view method, const std::string& target,
                          const std::optional<std::string>& body) {
  if (!m_transport) {
    return make_error(ErrorCode::kInternal, "the vault client was moved from");
  }
  KEYPORT_ASSIGN_OR_RETURN(Transport::Answer a, m_transport->send(method, target, body));
  return parse_answer(a);
}

Result<Json> Client::create_key(std::string_view name, const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name));
  return call("POST", path + "/create", dump_json(params));
}

Result<Json> Client::import_key(std::string_view name, const std::string& body) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name));
  return call("PUT", path, body);
}

Result<Json> Client::import_byok(std::span<const std::uint8_t> byok_file,
                                 const byok::ImportRequestOptions& options) {
  KEYPORT_ASSIGN_OR_RETURN(std::string body, byok_import_body(byok_file, options));
  return import_key(options.name, body);
}

Result<Json> Client::import_jwk(std::string_view name, const SecretBytes& jwk_text, bool hsm) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name));
  KEYPORT_ASSIGN_OR_RETURN(Json jwk,
                           parse_json_strict(as_chars(jwk_text.reveal(SecretAccess::unsafe()))));
  if (!jwk.is_object()) {
    return make_error(ErrorCode::kFormat, "a plain import takes one JWK object");
  }
  Json body{{"key", std::move(jwk)}};
  if (hsm) {
    body["hsm"] = true;
  }
  std::optional<std::string> text = dump_json(body);
  body.clear();  // the JWK's private members go no further than this call
  auto r = call("PUT", path, text);
  // Best effort: std::string has no guaranteed wipe, but the bytes need not outlive the call.
  std::fill(text->begin(), text->end(), '\0');
  return r;
}

Result<Json> Client::get_key(std::string_view name, std::string_view version) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name, version));
  return call("GET", path);
}

Result<Json> Client::update_key(std::string_view name, std::string_view version,
                                const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name, version));
  return call("PATCH", path, dump_json(params));
}

Result<Json> Client::list_all(std::string target) {
  Json all = Json::array();
  // A vault that keeps sending nextLinks is stopped rather than followed for ever.
  for (int page = 0; page < 100000; ++page) {
    KEYPORT_ASSIGN_OR_RETURN(Json r, call("GET", target));
    if (r.contains("value") && r["value"].is_array()) {
      for (auto& v : r["value"]) {
        all.push_back(std::move(v));
      }
    }
    if (!r.contains("nextLink") || !r["nextLink"].is_string()) {
      return all;
    }
    // The nextLink is absolute (the vault's base URL); the same transport follows its path.
    const std::string next = r["nextLink"].get<std::string>();
    const auto scheme = next.find("://");
    const auto slash = next.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (slash == std::string::npos) {
      return make_error(ErrorCode::kFormat, "the vault sent a nextLink without a path: " + next);
    }
    target = next.substr(slash);
  }
  return make_error(ErrorCode::kFormat, "the vault's list did not end after 100000 pages");
}

Result<Json> Client::list_keys(std::optional<unsigned> page_size) {
  return list_all(with_page_size("/keys", page_size));
}

Result<Json> Client::list_deleted_keys(std::optional<unsigned> page_size) {
  return list_all(with_page_size("/deletedkeys", page_size));
}

Result<Json> Client::list_versions(std::string_view name, std::optional<unsigned> page_size) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name));
  return list_all(with_page_size(path + "/versions", page_size));
}

Result<Json> Client::delete_key(std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name));
  return call("DELETE", path);
}

Result<Json> Client::get_deleted_key(std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, deleted_key_path(name));
  return call("GET", path);
}

Result<Json> Client::recover_deleted_key(std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, deleted_key_path(name));
  return call("POST", path + "/recover");
}

Status Client::purge_deleted_key(std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, deleted_key_path(name));
  KEYPORT_TRY(call("DELETE", path));
  return {};
}

Result<Json> Client::sign(std::string_view name, std::string_view version, std::string_view alg,
                          std::span<const std::uint8_t> digest) {
  Json body{{"alg", alg}, {"value", base64url_encode(digest)}};
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name, version));
  return call("POST", path + "/sign", dump_json(body));
}

Result<Json> Client::verify(std::string_view name, std::string_view version, std::string_view alg,
                            std::span<const std::uint8_t> digest,
                            std::span<const std::uint8_t> signature) {
  Json body{
      {"alg", alg}, {"digest", base64url_encode(digest)}, {"value", base64url_encode(signature)}};
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name, version));
  return call("POST", path + "/verify", dump_json(body));
}

Result<Json> Client::key_operation(KeyOperation op, std::string_view name, std::string_view version,
                                   std::string_view alg, const SecretBytes& value,
                                   const KeyOperationExtras& extras) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name, version));
  Json body{{"alg", alg}, {"value", base64url_encode(value.reveal(SecretAccess::unsafe()))}};
  for (const auto& [member, bytes] : {std::pair{"iv", &extras.iv}, std::pair{"aad", &extras.aad},
                                      std::pair{"tag", &extras.tag}}) {
    if (bytes->has_value()) {
      body[member] = base64url_encode(**bytes);
    }
  }
  std::optional<std::string> text = dump_json(body);
  body.clear();
  auto r = call("POST", path + "/" + std::string(to_string(op)), text);
  std::fill(text->begin(), text->end(), '\0');
  return r;
}

Result<Json> Client::release(std::string_view name, std::string_view version,
                             std::string_view target, const std::optional<std::string>& enc,
                             const std::optional<std::string>& nonce) {
  Json body{{"target", target}};
  if (enc) {
    body["enc"] = *enc;
  }
  if (nonce) {
    body["nonce"] = *nonce;
  }
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name, version));
  return call("POST", path + "/release", dump_json(body));
}

Result<Json> Client::rotate_key(std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name));
  return call("POST", path + "/rotate");
}

Result<std::string> Client::backup_key(std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name));
  KEYPORT_ASSIGN_OR_RETURN(Json answer, call("POST", path + "/backup"));
  const Json* value = answer.is_object() && answer.contains("value") ? &answer["value"] : nullptr;
  if (value == nullptr || !value->is_string()) {
    return make_error(ErrorCode::kFormat, "the BackupKey answer has no string \"value\"");
  }
  return value->get<std::string>();
}

Result<Json> Client::restore_key(std::string_view blob) {
  return call("POST", "/keys/restore", dump_json(Json{{"value", std::string(blob)}}));
}

Result<Json> Client::get_rotation_policy(std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name));
  return call("GET", path + "/rotationpolicy");
}

Result<Json> Client::set_rotation_policy(std::string_view name, const Json& policy) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name));
  return call("PUT", path + "/rotationpolicy", dump_json(policy));
}

Result<Json> Client::random_bytes(int count) {
  return call("POST", "/rng", dump_json(Json{{"count", count}}));
}

namespace {

// The final status of a long-running operation whose first answer is `started`.
Result<Json> finish_operation(Json started, const std::string& status_path,
                              const std::function<Result<Json>(const std::string&)>& get) {
  Json status = std::move(started);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(30);
  while (status.value("status", "") == "InProgress") {
    if (std::chrono::steady_clock::now() > deadline) {
      return make_error(ErrorCode::kUnavailable, "the vault's job " + status.value("jobId", "") +
                                                     " is still in progress after 30 minutes");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    KEYPORT_ASSIGN_OR_RETURN(status, get(status_path + status.value("jobId", "") + "/pending"));
  }
  if (status.value("status", "") != "Succeeded") {
    const Json err = status.value("error", Json::object());
    const std::string code =
        err.is_object() ? err.value("code", std::string("Failed")) : std::string("Failed");
    return make_error(code == "Conflict"            ? ErrorCode::kAlreadyExists
                      : code == "KeyNotFound"       ? ErrorCode::kNotFound
                      : code == "ContainerNotFound" ? ErrorCode::kNotFound
                                                    : ErrorCode::kInvalidArgument,
                      code, "the vault's job failed: " + status.value("statusDetails", ""));
  }
  return status;
}

Json sas_parameters(std::string_view storage_uri, const SecretBytes& sas_token) {
  const auto t = sas_token.reveal(SecretAccess::unsafe());
  return Json{{"storageResourceUri", std::string(storage_uri)},
              {"token", std::string(t.begin(), t.end())}};
}

// A query value percent-encoded (RFC 3986 unreserved characters stay).
std::string query_escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// {scope}/providers/Microsoft.Authorization/<kind>[/<name>][?$filter=...]
std::string rbac_target(std::string_view scope, std::string_view kind, std::string_view name,
                        std::string_view filter = {}) {
  std::string s(scope);
  while (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  if (!s.empty() && s.front() != '/') {
    s.insert(s.begin(), '/');
  }
  std::string t = s + "/providers/Microsoft.Authorization/" + std::string(kind);
  if (!name.empty()) {
    t += "/" + query_escape(name);
  }
  if (!filter.empty()) {
    t += "?$filter=" + query_escape(filter);
  }
  return t;
}

}  // namespace

Result<Json> Client::full_backup(std::string_view storage_uri, const SecretBytes& sas_token) {
  std::string body = dump_json(sas_parameters(storage_uri, sas_token));
  auto started = call("POST", "/backup", body);
  std::fill(body.begin(), body.end(), '\0');
  if (!started) {
    return started;
  }
  return finish_operation(std::move(*started), "/backup/",
                          [this](const std::string& p) { return call("GET", p); });
}

Result<Json> Client::full_restore(std::string_view storage_uri, std::string_view folder,
                                  const SecretBytes& sas_token, std::string_view key_name) {
  Json params{{"sasTokenParameters", sas_parameters(storage_uri, sas_token)}};
  std::string path = "/restore";
  if (key_name.empty()) {
    params["folderToRestore"] = std::string(folder);
  } else {
    params["folder"] = std::string(folder);
    KEYPORT_ASSIGN_OR_RETURN(const std::string key, key_path(key_name));
    path = key + "/restore";
  }
  std::string body = dump_json(params);
  params.clear();
  auto started = call("PUT", path, body);
  std::fill(body.begin(), body.end(), '\0');
  if (!started) {
    return started;
  }
  return finish_operation(std::move(*started), "/restore/",
                          [this](const std::string& p) { return call("GET", p); });
}

namespace {

// A security-domain operation's final status: Success, or an error with its details.
Result<Json> settled_security_domain(Result<Json> status) {
  if (!status) {
    return status;
  }
  const std::string state = status->value("status", "");
  if (state == "Failed") {
    return make_error(ErrorCode::kFailedPrecondition, "the security-domain operation failed: " +
                                                          status->value("status_details", ""));
  }
  return status;
}

}  // namespace

Result<Json> Client::security_domain_download(const Json& certificate_set) {
  KEYPORT_ASSIGN_OR_RETURN(Json answer,
                           call("POST", "/securitydomain/download", dump_json(certificate_set)));
  KEYPORT_TRY(settled_security_domain(security_domain_status(false)));
  return answer;
}

Result<Json> Client::security_domain_transfer_key() {
  return call("GET", "/securitydomain/upload");
}

Result<Json> Client::security_domain_upload(std::string_view restore_blob) {
  KEYPORT_TRY(call("POST", "/securitydomain/upload",
                   dump_json(Json{{"value", std::string(restore_blob)}})));
  return settled_security_domain(security_domain_status(true));
}

Result<Json> Client::security_domain_status(bool upload) {
  return call("GET",
              upload ? "/securitydomain/upload/pending" : "/securitydomain/download/pending");
}

Result<Json> Client::key_attestation(std::string_view name, std::string_view version) {
  KEYPORT_ASSIGN_OR_RETURN(const std::string path, key_path(name, version));
  return call("GET", path + "/attestation?api-version=7.6");
}

Result<Json> Client::list_role_definitions(std::string_view scope, std::string_view filter) {
  return list_all(rbac_target(scope, "roleDefinitions", "", filter));
}

Result<Json> Client::get_role_definition(std::string_view scope, std::string_view name) {
  return call("GET", rbac_target(scope, "roleDefinitions", name));
}

Result<Json> Client::set_role_definition(std::string_view scope, std::string_view name,
                                         const Json& properties) {
  return call("PUT", rbac_target(scope, "roleDefinitions", name),
              dump_json(Json{{"properties", properties}}));
}

Result<Json> Client::delete_role_definition(std::string_view scope, std::string_view name) {
  return call("DELETE", rbac_target(scope, "roleDefinitions", name));
}

Result<Json> Client::list_role_assignments(std::string_view scope, std::string_view filter) {
  return list_all(rbac_target(scope, "roleAssignments", "", filter));
}

Result<Json> Client::get_role_assignment(std::string_view scope, std::string_view name) {
  return call("GET", rbac_target(scope, "roleAssignments", name));
}

Result<Json> Client::create_role_assignment(std::string_view scope, std::string_view name,
                                            std::string_view role_definition_id,
                                            std::string_view principal_id) {
  Json body{{"properties",
             {{"roleDefinitionId", std::string(role_definition_id)},
              {"principalId", std::string(principal_id)}}}};
  return call("PUT", rbac_target(scope, "roleAssignments", name), dump_json(body));
}

Result<Json> Client::delete_role_assignment(std::string_view scope, std::string_view name) {
  return call("DELETE", rbac_target(scope, "roleAssignments", name));
}

Result<Json> Client::list_settings() {
  return call("GET", "/settings");
}

Result<Json> Client::get_setting(std::string_view name) {
  return call("GET", "/settings/" + query_escape(name));
}

Result<Json> Client::update_setting(std::string_view name, std::string_view value) {
  return call("PATCH", "/settings/" + query_escape(name),
              dump_json(Json{{"value", std::string(value)}}));
}

Result<Json> Client::platform_report() {
  return call("GET", "/keyport/platform-report");
}

}  // namespace keyport::vault
