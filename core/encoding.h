// SPDX-License-Identifier: Apache-2.0
// base64url (RFC 4648 §5), standard base64 (§4) and hex.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/secret.h"
#include "core/strings.h"  // ascii_lower, which used to live here

namespace keyport {

using Bytes = std::vector<std::uint8_t>;

inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Encodes with the URL-safe alphabet and no '=' padding.
std::string base64url_encode(std::span<const std::uint8_t> data);

// Decodes base64url with or without correct '=' padding. Rejects characters outside the URL-safe
// alphabet (including '+' and '/'), whitespace, misplaced or excess padding, impossible lengths
// (len % 4 == 1) and non-zero trailing bits.
Result<Bytes> base64url_decode(std::string_view text);

// Same rules as base64url_decode, but the result goes straight into SecretBytes.
Result<SecretBytes> base64url_decode_secret(std::string_view text);

// Standard alphabet with padding.
std::string base64_encode(std::span<const std::uint8_t> data);
// Standard alphabet, padding required to be correct when present; same strictness otherwise.
Result<Bytes> base64_decode(std::string_view text);

// What a lenient reader sees in a base64-ish string (used by linters to report, not to accept).
struct Base64Shape {
  bool has_padding = false;
  bool has_std_chars = false;  // '+' or '/'
  bool has_url_chars = false;  // '-' or '_'
  bool has_other = false;      // anything else outside both alphabets
};
Base64Shape inspect_base64(std::string_view text);

// The value of one hex digit (0-9, a-f, A-F), or -1 for any other character.
int hex_digit_value(char c);

// Lowercase hex.
std::string hex_encode(std::span<const std::uint8_t> data);
// The 8-4-4-4-12 form of 16 bytes, lower case ("" when `data` is not 16 bytes long).
std::string format_uuid(std::span<const std::uint8_t> data);
// What percent_decode does with a '%' not followed by two hex digits.
enum class BadEscape {
  kRefuse,  // kFormat
  kKeep,    // kept as it is (request targets: a lenient decoder never fails)
};
// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in form bodies).
Result<std::string> percent_decode(std::string_view text, bool plus_is_space = false,
                                   BadEscape bad = BadEscape::kRefuse);
// Accepts upper or lower case, even length only; optional "0x" prefix is NOT accepted.
Result<Bytes> hex_decode(std::string_view text);

}  // namespace keyport
