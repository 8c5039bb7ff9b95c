// SPDX-License-Identifier: Apache-2.0
#include "byok/kid.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "core/strings.h"

namespace keyport::byok {
namespace {

struct KnownHost {
  std::string_view suffix;  // after "<name>"
  TargetKind target;
  std::string_view cloud;
};

constexpr std::array<KnownHost, 7> kKnownHosts = {{
    {".vault.azure.net", TargetKind::kKeyVault, "AzureCloud"},
    {".vault.azure.cn", TargetKind::kKeyVault, "AzureChinaCloud"},
    {".vault.usgovcloudapi.net", TargetKind::kKeyVault, "AzureUSGovernment"},
    {".vault.microsoftazure.de", TargetKind::kKeyVault, "AzureGermanCloud"},  // retired
    {".managedhsm.azure.net", TargetKind::kManagedHsm, "AzureCloud"},
    {".managedhsm.azure.cn", TargetKind::kManagedHsm, "AzureChinaCloud"},
    {".managedhsm.usgovcloudapi.net", TargetKind::kManagedHsm, "AzureUSGovernment"},
}};

constexpr std::string_view kScheme = "https://";
constexpr std::size_t kVersionChars = 32;
constexpr std::string_view kShape = "https://<host>/keys/<name>/<32-hex version>";

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

tl::unexpected<Error> kid_error(std::string_view url, const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument,
                    "key identifier \"" + std::string(url) + "\": " + why);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    std::size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

// host[:port], already lower-cased. Returns an empty string when valid, else why not.
std::string check_authority(std::string_view authority, std::string_view& host_only) {
  if (authority.empty()) {
    return "the host is empty";
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return "unterminated IPv6 address in the host";
    }
    for (char c : authority.substr(1, close - 1)) {
      if (!is_hex(c) && c != ':' && c != '.') {
        return "invalid character in the IPv6 address";
      }
    }
    if (close == 1) {
      return "the IPv6 address is empty";
    }
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return "unexpected characters after the IPv6 address";
      }
      port = after.substr(1);
      if (port.empty()) {
        return "the port is empty";
      }
    }
  } else {
    std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) {
        return "the port is empty";
      }
    }
    if (host.empty()) {
      return "the host is empty";
    }
    for (std::string_view label : split(host, '.')) {
      if (label.empty()) {
        return "the host has an empty label";
      }
      for (char c : label) {
        if (!is_alnum(c) && c != '-') {
          return std::string("invalid character '") + c + "' in the host";
        }
      }
    }
  }
  if (!port.empty()) {
    if (port.size() > 5) {
      return "the port is out of range";
    }
    unsigned value = 0;
    for (char c : port) {
      if (!is_digit(c)) {
        return "the port must be a number";
      }
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) {
      return "the port is out of range";
    }
  }
  host_only = host;
  return "";
}

}  // namespace

bool is_key_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxKeyNameChars &&
         std::all_of(name.begin(), name.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

std::string_view to_string(TargetKind kind) {
  switch (kind) {
    case TargetKind::kKeyVault:
      return "key-vault";
    case TargetKind::kManagedHsm:
      return "managed-hsm";
  }
  return "";
}

Result<TargetKind> parse_target_kind(std::string_view name) {
  const std::string want = ascii_lower(name);
  for (TargetKind kind : {TargetKind::kKeyVault, TargetKind::kManagedHsm}) {
    if (want == to_string(kind)) {
      return kind;
    }
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown target \"" + std::string(name) + "\" (key-vault, managed-hsm)");
}

Result<KeyId> parse_kid(std::string_view url, bool require_version) {
  if (url.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the key identifier is empty (expected " + std::string(kShape) + ")");
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return kid_error(url, "contains whitespace, control or non-ASCII characters");
    }
  }
  const std::string scheme_part = ascii_lower(url.substr(0, std::min(url.size(), kScheme.size())));
  if (scheme_part != kScheme) {
    if (ascii_lower(url.substr(0, 7)) == "http://") {
      return kid_error(url, "must use https, not http");
    }
    return kid_error(url, "must start with https:// (expected " + std::string(kShape) + ")");
  }
  if (url.find('?') != std::string_view::npos) {
    return kid_error(url, "query strings are not allowed");
  }
  if (url.find('#') != std::string_view::npos) {
    return kid_error(url, "fragments are not allowed");
  }
  if (url.find('%') != std::string_view::npos) {
    return kid_error(url, "percent-escapes are not allowed");
  }
  if (url.find('\\') != std::string_view::npos) {
    return kid_error(url, "backslashes are not allowed");
  }
  std::string_view rest = url.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (authority.find('@') != std::string_view::npos) {
    return kid_error(url, "user information (\"user@\") is not allowed in the host");
  }
  KeyId id;
  const std::string host = ascii_lower(authority);
  std::string_view host_only;
  std::string why = check_authority(host, host_only);
  if (!why.empty()) {
    return kid_error(url, why);
  }
  if (slash == std::string_view::npos) {
    return kid_error(url, "has no path (expected " + std::string(kShape) + ")");
  }
  std::string_view path = rest.substr(slash + 1);
  // One trailing slash is tolerated and dropped in the normalised form.
  if (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);
  }
  if (path.empty()) {
    return kid_error(url, "has no path (expected " + std::string(kShape) + ")");
  }
  std::vector<std::string_view> segments = split(path, '/');
  for (std::string_view segment : segments) {
    if (segment.empty()) {
      return kid_error(url, "has an empty path segment");
    }
  }
  if (segments[0] != "keys") {
    return kid_error(url, "path must start with /keys/ (expected " + std::string(kShape) + ")");
  }
  if (segments.size() < 2) {
    return kid_error(url, "has no key name (expected " + std::string(kShape) + ")");
  }
  const std::string_view name = segments[1];
  if (name.size() > kMaxKeyNameChars) {
    return kid_error(url, "key name is longer than 127 characters");
  }
  for (char c : name) {
    if (!is_alnum(c) && c != '-') {
      return kid_error(
          url, "key name \"" + std::string(name) + "\" may only contain letters, digits and '-'");
    }
  }
  if (segments.size() > 3) {
    return kid_error(url, "unexpected path segment \"" + std::string(segments[3]) +
                              "\" after the version (expected " + std::string(kShape) + ")");
  }
  if (segments.size() == 3) {
    const std::string_view version = segments[2];
    if (version.size() != kVersionChars) {
      return kid_error(url, "version \"" + std::string(version) + "\" is " +
                                std::to_string(version.size()) +
                                " characters; a key version is 32 hexadecimal characters");
    }
    for (char c : version) {
      if (!is_hex(c)) {
        return kid_error(url, "version \"" + std::string(version) +
                                  "\" is not hexadecimal; a key version is 32 hexadecimal "
                                  "characters");
      }
    }
    id.version = std::string(version);
  } else if (require_version) {
    return kid_error(url, "has no key version; give the full identifier " + std::string(kShape) +
                              " (az keyvault key show --query key.kid)");
  }

  id.host = host;
  id.key_name = std::string(name);
  id.vault_name = std::string(host_only.substr(0, host_only.find('.')));
  id.url = std::string(kScheme) + id.host + "/keys/" + id.key_name;
  if (!id.version.empty()) {
    id.url += "/" + id.version;
  }
  for (const KnownHost& known : kKnownHosts) {
    if (host_only.size() > known.suffix.size() && host_only.ends_with(known.suffix)) {
      std::string_view label = host_only.substr(0, host_only.size() - known.suffix.size());
      if (label.find('.') == std::string_view::npos) {
        id.target = known.target;
        id.cloud = std::string(known.cloud);
      }
      break;
    }
  }
  return id;
}

}  // namespace keyport::byok
