// SPDX-License-Identifier: Apache-2.0
// The in-process transport: a vault folder opened here, its REST routes called directly.
#include <optional>

#include "client/transports.h"

#include "core/encoding.h"
#include "vault/access.h"
#include "vault/server.h"

namespace keyport::vault {
namespace {

// Percent-decoding of one query component; a '%' without two hex digits stays as it is.
std::string decode_component(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit_value(s[i + 1]) >= 0 &&
               hex_digit_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit_value(s[i + 1]) * 16 + hex_digit_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

class FolderTransport final : public Transport {
 public:
  explicit FolderTransport(std::unique_ptr<Vault> v)
      : m_vault(std::move(v)), m_api(*m_vault, nullptr), m_principal{"cli", all_permissions()} {
    m_principal.rbac_exempt = true;  // the folder's owner: Managed HSM local RBAC does not apply
  }

  Result<Answer> send(std::string_view method, const std::string& target,
                      const std::optional<std::string>& body) override {
    RestRequest r;
    r.method = std::string(method);
    const std::string t = with_api_version(target);
    const auto q = t.find('?');
    r.path = t.substr(0, q);
    if (q != std::string::npos) {
      r.query = decode_query(std::string_view(t).substr(q + 1));
    }
    if (body) {
      r.content_type = "application/json";
      r.body = *body;
    }
    RestResponse res = m_api.handle_as(m_principal, r);
    if (body) {
      std::fill(r.body.begin(), r.body.end(), '\0');  // may hold key bytes (import, wrap)
    }
    return Answer{res.status, std::move(res.body)};
  }

 private:
  std::unique_ptr<Vault> m_vault;
  RestApi m_api;
  Principal m_principal;
};

}  // namespace

std::string with_api_version(const std::string& target) {
  if (target.find("api-version=") != std::string::npos) {
    return target;
  }
  return target + (target.find('?') == std::string::npos ? "?" : "&") +
         "api-version=" + std::string(kClientApiVersion);
}

std::vector<std::pair<std::string, std::string>> decode_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos <= query.size()) {
    const std::size_t amp = query.find('&', pos);
    const std::string_view item =
        query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    if (!item.empty()) {
      const auto eq = item.find('=');
      out.emplace_back(
          decode_component(item.substr(0, eq)),
          eq == std::string_view::npos ? std::string() : decode_component(item.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) {
      break;
    }
    pos = amp + 1;
  }
  return out;
}

Result<std::unique_ptr<Transport>> make_folder_transport(const std::filesystem::path& dir,
                                                         FolderOptions options) {
  auto v = Vault::open(dir, std::move(options.vault));
  if (!v) {
    Error e = v.error();
    if (e.code() == ErrorCode::kAlreadyExists) {
      e = e.with_context("is `keyport vault serve` running on it? then use --url");
    }
    return tl::unexpected(std::move(e));
  }
  return std::unique_ptr<Transport>(new FolderTransport(std::move(*v)));
}

}  // namespace keyport::vault
