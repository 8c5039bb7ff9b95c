// SPDX-License-Identifier: Apache-2.0
// "host:port" as options and configuration files write it: one parser for --listen, --url and
// the vault's own host, so every caller refuses the same malformed ports.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace keyport {

struct HostPort {
  std::string host;  // as written; an IPv6 address without its brackets
  std::uint16_t port = 0;
};

// Whether port 0 (a listener's "any free port") is accepted.
enum class PortZero { kRefuse, kAllow };

// Parses "host:port" or "[IPv6]:port". The port is decimal digits only (no sign, no "0x", at
// most five digits) from 1 to 65535 (0 too with PortZero::kAllow). The host must not be empty,
// and an IPv6 address must be in brackets (so "::1:443" is refused rather than guessed). Errors
// are kInvalidArgument naming `text`.
Result<HostPort> parse_host_port(std::string_view text, PortZero zero = PortZero::kRefuse);

// The same, but "host" and "[IPv6]" without ":port" mean `default_port`.
Result<HostPort> parse_host_port_or(std::string_view text, std::uint16_t default_port);

// The host part of "host", "host:port", "[IPv6]" or "[IPv6]:port"; a bare IPv6 address ("::1")
// is returned unchanged. Does not validate: for text a parser has already accepted.
std::string host_only(std::string_view host_port);

// "host:port", with brackets around an IPv6 host.
std::string join_host_port(std::string_view host, std::uint16_t port);

// True for an IPv4 or IPv6 address literal (inet_pton; no brackets).
bool is_ip_literal(std::string_view host);

}  // namespace keyport
