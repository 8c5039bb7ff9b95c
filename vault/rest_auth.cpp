// SPDX-License-Identifier: Apache-2.0
// Who is calling: the authenticators (the access file, --insecure-any-token), the bearer token of
// an Authorization header, and the challenge of a 401.
#include <sys/stat.h>

#include "core/digest.h"
#include "core/encoding.h"
#include "core/log.h"
#include "core/strings.h"
#include "vault/rest_internal.h"

namespace keyport::vault {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kResourceManagerResources[] = {"https://management.core.windows.net/",
                                                          "https://management.azure.com/"};

bool is_resource_manager(std::string_view aud) {
  while (!aud.empty() && aud.back() == '/') {
    aud.remove_suffix(1);
  }
  for (std::string_view r : kResourceManagerResources) {
    if (r.substr(0, r.size() - 1) == aud) {
      return true;
    }
  }
  return false;
}

// Verified identity tokens remembered (a token lives an hour by default; a busy vault sees a few).
constexpr std::size_t kVerifiedTokensKept = 4096;

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

Result<std::unique_ptr<AccessFileAuthenticator>> AccessFileAuthenticator::open(fs::path file) {
  KEYPORT_ASSIGN_OR_RETURN(AccessList list, AccessList::load(file));
  std::unique_ptr<AccessFileAuthenticator> a(
      new AccessFileAuthenticator(std::move(file), std::move(list)));
  return a;
}

AccessFileAuthenticator::AccessFileAuthenticator(fs::path file, AccessList list)
    : m_file(std::move(file)), m_list(std::move(list)), m_stamp(access_file_stamp(m_file)) {}

// One stat(2) per request (about a microsecond): a token granted by editing the file works on the
// very next request, which is what a runbook that edits the file and then calls the vault expects.
void AccessFileAuthenticator::maybe_reload() {
  std::string stamp = access_file_stamp(m_file);
  if (stamp == m_stamp) {
    return;
  }
  m_stamp = std::move(stamp);
  Result<AccessList> list = m_stamp.empty() ? make_error(ErrorCode::kNotFound, "it is missing")
                                            : AccessList::load(m_file);
  if (!list) {
    // Fail closed: a removed token must not keep working because the file broke.
    m_list = AccessList{};
    m_broken = list.error().message();
    log::error("access file " + m_file.string() +
               " does not load; refusing every token until it does: " + m_broken);
    return;
  }
  m_list = std::move(*list);
  m_broken.clear();
  log::info("access file " + m_file.string() + " reloaded (" + std::to_string(m_list.size()) +
            " tokens)");
}

std::optional<Principal> AccessFileAuthenticator::authenticate(std::string_view token,
                                                               Audience audience,
                                                               std::string& refusal) {
  std::lock_guard<std::mutex> lock(m_mutex);
  maybe_reload();
  if (!m_broken.empty()) {
    return std::nullopt;
  }
  if (m_identity_tokens == nullptr || !IdentityTokens::looks_like_jwt(token)) {
    return m_list.authenticate(token);
  }
  const Bytes d = sha256(as_bytes(token));
  std::string digest(d.begin(), d.end());
  auto cached = m_verified.find(digest);
  if (cached == m_verified.end()) {
    auto verified = m_identity_tokens->verify(token);
    if (!verified) {
      return std::nullopt;
    }
    if (m_verified_order.size() >= kVerifiedTokensKept) {
      m_verified.erase(m_verified_order.front());
      m_verified_order.pop_front();
    }
    m_verified_order.push_back(digest);
    cached = m_verified.emplace(std::move(digest), std::move(*verified)).first;
  }
  const IdentityClaims* claims = &cached->second;
  std::string_view expected = m_identity_resource;
  if (audience == Audience::kResourceManager) {
    // Either of Azure Resource Manager's resource ids (az asks for the first).
    expected = is_resource_manager(claims->aud) ? std::string_view(claims->aud)
                                                : kResourceManagerResources[0];
  }
  refusal = identity_claims_refusal(*claims, m_now(), expected);
  if (!refusal.empty()) {
    return std::nullopt;
  }
  const ManagedIdentity* id = m_list.identity_by_object_id(claims->oid);
  if (id == nullptr) {
    refusal = "The managed identity of this token (object id " + escape_for_log(claims->oid) +
              ") is not in the vault's access file.";
    return std::nullopt;
  }
  Principal p{id->name, id->permissions};
  p.object_id = id->object_id;
  return p;
}

void AccessFileAuthenticator::accept_identity_tokens(const IdentityTokens* tokens,
                                                     std::string resource,
                                                     std::function<std::int64_t()> now) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_identity_tokens = tokens;
  m_identity_resource = std::move(resource);
  m_now = std::move(now);
}

Result<std::vector<Principal>> AccessFileAuthenticator::principals() {
  std::lock_guard<std::mutex> lock(m_mutex);
  maybe_reload();
  if (!m_broken.empty()) {
    return make_error(ErrorCode::kFailedPrecondition, m_broken);
  }
  return m_list.principals();
}

Result<std::vector<ManagedIdentity>> AccessFileAuthenticator::identities() {
  std::lock_guard<std::mutex> lock(m_mutex);
  maybe_reload();
  if (!m_broken.empty()) {
    return make_error(ErrorCode::kFailedPrecondition, m_broken);
  }
  return m_list.identities();
}

std::string AccessFileAuthenticator::refusal_reason() {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_broken.empty() ? std::string()
                          : "The vault's access file does not load (" + m_broken +
                                "); every token is refused until it is fixed.";
}

std::optional<Principal> AnyTokenAuthenticator::authenticate(std::string_view token, Audience,
                                                             std::string&) {
  if (token.empty()) {
    return std::nullopt;
  }
  Principal p{"insecure-any-token", all_permissions()};
  p.rbac_exempt = true;
  return p;
}

std::string RestApi::challenge() const {
  return "Bearer authorization=\"https://login.microsoftonline.com/" +
         std::string(kSimulatedTenant) + "\", resource=\"" + m_resource + "\"";
}

namespace rest {

// "Bearer <token>" -> token; "" when absent or another scheme.
std::string_view bearer_token(std::string_view header) {
  std::size_t sp = header.find(' ');
  if (sp == std::string_view::npos || !iequals(header.substr(0, sp), "bearer")) {
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

}  // namespace rest
}  // namespace keyport::vault
