// SPDX-License-Identifier: Apache-2.0
#include "skr/url.h"

#include <cctype>
#include <charconv>

namespace keyport::skr {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
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
  url.scheme = lower(text.substr(0, sep));
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
  std::string_view host;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close < 2) {
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return std::nullopt;
      }
      port = after.substr(1);
      if (port.empty()) {
        return std::nullopt;
      }
    }
    for (char c : host) {
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) {
        return std::nullopt;
      }
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) {
        return std::nullopt;
      }
    }
    for (char c : host) {
      if (!host_char(c)) {
        return std::nullopt;
      }
    }
  }
  if (host.empty()) {
    return std::nullopt;
  }
  url.host = lower(host);
  if (!port.empty()) {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return std::nullopt;
    }
    url.port = static_cast<std::uint16_t>(value);
  }
  return url;
}

}  // namespace keyport::skr
