// SPDX-License-Identifier: Apache-2.0
#include "core/net.h"

#include <arpa/inet.h>

#include <optional>

namespace keyport {
namespace {

tl::unexpected<Error> bad(std::string_view text, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument,
                    "\"" + std::string(text) + "\": " + std::string(why));
}

Result<HostPort> parse(std::string_view text, PortZero zero,
                       std::optional<std::uint16_t> default_port) {
  HostPort out;
  std::string_view host;
  std::optional<std::string_view> port;  // the text after ':', when there is a ':'
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return bad(text, "no ']' after the IPv6 address");
    }
    host = text.substr(1, close - 1);
    const std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return bad(text, "expected ':' and a port after ']'");
      }
      port = after.substr(1);
    }
  } else {
    const auto colon = text.find(':');
    host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = text.substr(colon + 1);
      if (port->find(':') != std::string_view::npos) {
        return bad(text, "write an IPv6 address in brackets: [address]:port");
      }
    }
  }
  if (host.empty()) {
    return bad(text, "no host");
  }
  out.host = std::string(host);
  if (!port) {
    if (!default_port) {
      return bad(text, "expected host:port");
    }
    out.port = *default_port;
    return out;
  }
  const std::string range = zero == PortZero::kAllow ? "0 to 65535" : "1 to 65535";
  if (port->empty() || port->size() > 5 || port->find_first_not_of("0123456789") != port->npos) {
    return bad(text, "the port must be a decimal number from " + range);
  }
  unsigned value = 0;
  for (char c : *port) {
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535 || (value == 0 && zero == PortZero::kRefuse)) {
    return bad(text, "the port must be a decimal number from " + range);
  }
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view text, PortZero zero) {
  return parse(text, zero, std::nullopt);
}

Result<HostPort> parse_host_port_or(std::string_view text, std::uint16_t default_port) {
  return parse(text, PortZero::kRefuse, default_port);
}

std::string host_only(std::string_view host_port) {
  if (!host_port.empty() && host_port.front() == '[') {
    return std::string(host_port.substr(1, host_port.find(']') - 1));
  }
  const auto colon = host_port.find(':');
  if (colon != std::string_view::npos && host_port.find(':', colon + 1) != std::string_view::npos) {
    return std::string(host_port);  // a bare IPv6 address
  }
  return std::string(host_port.substr(0, colon));
}

std::string join_host_port(std::string_view host, std::uint16_t port) {
  const std::string h =
      host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]" : std::string(host);
  return h + ":" + std::to_string(port);
}

bool is_ip_literal(std::string_view host) {
  const std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

}  // namespace keyport
