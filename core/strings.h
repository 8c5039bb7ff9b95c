// SPDX-License-Identifier: Apache-2.0
// Locale-free ASCII string helpers. Names, hosts, media types and hex compare case-insensitively
// in ASCII only: std::tolower and std::isspace follow the C locale, which a host program may
// change.
#pragma once

#include <string>
#include <string_view>

namespace keyport {

// ASCII lower / upper case (A-Z resp. a-z only; every other byte unchanged).
std::string ascii_lower(std::string_view text);
std::string ascii_upper(std::string_view text);

// Whether a and b are equal when ASCII letters are compared without case.
bool iequals(std::string_view a, std::string_view b);

// Whether `text` starts with `prefix`, ASCII letters compared without case.
bool starts_with_icase(std::string_view text, std::string_view prefix);

// JSON's and PEM's whitespace (RFC 8259 section 2): space, \t, \n, \r.
constexpr bool is_json_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// `text` for one log line: printable ASCII stays, a backslash becomes "\\", every other byte
// (control bytes, DEL, bytes >= 0x80) becomes "\xNN". A client cannot end the line, start a
// forged one, or send terminal escapes through a logged field.
std::string escape_for_log(std::string_view text);

// `text` without leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r).
std::string_view trim(std::string_view text);

}  // namespace keyport
