// SPDX-License-Identifier: Apache-2.0
#include "skr/url.h"

#include <algorithm>

#include "core/net.h"
#include "core/strings.h"

namespace keyport::skr {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool ipv6_char(char c) {
  return is_hex(c) || c == ':' || c == '.';
}

}  // namespace

std::string Url::host_port() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != 0) {
    h += ":" + std::to_string(port);
  }
  return h;
}

std::string Url::origin() const {
  return scheme + "://" + host_port();
}

std::optional<Url> parse_url(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#') {
      return std::nullopt;
    }
  }
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) {
    return std::nullopt;
  }
  Url url;
  url.scheme = ascii_lower(text.substr(0, sep));
  if (url.scheme != "https" && url.scheme != "http") {
    return std::nullopt;
  }
  std::string_view rest = text.substr(sep + 3);
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    url.path_and_query = std::string(rest.substr(slash));
    if (url.path_and_query.front() == '?') {
      url.path_and_query = "/" + url.path_and_query;
    }
  }
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    return std::nullopt;
  }
  // Port 0 stands for "not given": parse_host_port_or refuses an explicit ":0".
  auto where = parse_host_port_or(authority, 0);
  if (!where) {
    return std::nullopt;
  }
  const bool bracketed = authority.front() == '[';
  if (!std::all_of(where->host.begin(), where->host.end(), bracketed ? ipv6_char : host_char)) {
    return std::nullopt;
  }
  url.host = ascii_lower(where->host);
  url.port = where->port;
  return url;
}

}  // namespace keyport::skr
