// SPDX-License-Identifier: Apache-2.0
// The small URL subset skr needs: "scheme://host[:port][/path][?query]" with http or https, a
// DNS name, IPv4 address or bracketed IPv6 address, no user info, no fragment.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keyport::skr {

struct Url {
  std::string scheme;          // lower case: "https" or "http"
  std::string host;            // lower case; IPv6 without brackets
  std::uint16_t port = 0;      // 0 when not given
  std::string path_and_query;  // "" or starting with '/'

  std::uint16_t effective_port() const { return port != 0 ? port : (scheme == "https" ? 443 : 80); }
  // "host" or "host:port" ("[::1]:8443" for IPv6), port only when given.
  std::string host_port() const;
  // scheme://host_port()
  std::string origin() const;
};

// Parses an http or https URL; nullopt for anything else (other schemes, user info, fragments,
// empty hosts, bad ports, spaces or control characters).
std::optional<Url> parse_url(std::string_view text);

}  // namespace keyport::skr
