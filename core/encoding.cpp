// SPDX-License-Identifier: Apache-2.0
#include "core/encoding.h"

#include <array>

namespace keyport {
namespace {

constexpr char kUrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kStdAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string encode(std::span<const std::uint8_t> data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  std::size_t rest = data.size() - i;
  if (rest == 1) {
    std::uint32_t v = data[i] << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (pad)
      out += "==";
  } else if (rest == 2) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad)
      out += '=';
  }
  return out;
}

std::array<int, 256> make_table(const char* alphabet) {
  std::array<int, 256> t{};
  t.fill(-1);
  for (int i = 0; i < 64; ++i)
    t[static_cast<unsigned char>(alphabet[i])] = i;
  return t;
}

template <typename Out>
Status decode_into(std::string_view text, const std::array<int, 256>& table, bool padding_required,
                   const char* what, Out& out) {
  std::size_t len = text.size();
  std::size_t pad = 0;
  while (len > 0 && text[len - 1] == '=') {
    --len;
    ++pad;
  }
  if (pad > 2) {
    return make_error(ErrorCode::kFormat, std::string(what) + ": too much '=' padding");
  }
  if (pad > 0 && (len + pad) % 4 != 0) {
    return make_error(ErrorCode::kFormat,
                      std::string(what) + ": padding does not complete a quantum");
  }
  if (pad == 0 && padding_required && len % 4 != 0) {
    return make_error(ErrorCode::kFormat, std::string(what) + ": missing '=' padding");
  }
  if (len % 4 == 1) {
    return make_error(ErrorCode::kFormat, std::string(what) + ": impossible length");
  }
  if (pad > 0 && len % 4 != 4 - pad) {
    return make_error(ErrorCode::kFormat, std::string(what) + ": wrong amount of padding");
  }
  out.resize(len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1));
  std::size_t o = 0;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < len; ++i) {
    int v = table[static_cast<unsigned char>(text[i])];
    if (v < 0) {
      return make_error(ErrorCode::kFormat,
                        std::string(what) + ": invalid character at offset " + std::to_string(i));
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = static_cast<std::uint8_t>((acc >> bits) & 0xFF);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return make_error(ErrorCode::kFormat, std::string(what) + ": non-zero trailing bits");
  }
  return {};
}

struct SecretSink {
  SecretBytes& s;
  void resize(std::size_t n) { s.resize(n); }
  std::uint8_t& operator[](std::size_t i) { return s.reveal_mut(SecretAccess::unsafe())[i]; }
};

}  // namespace

std::string base64url_encode(std::span<const std::uint8_t> data) {
  return encode(data, kUrlAlphabet, false);
}

std::string base64_encode(std::span<const std::uint8_t> data) {
  return encode(data, kStdAlphabet, true);
}

Result<Bytes> base64url_decode(std::string_view text) {
  static const auto table = make_table(kUrlAlphabet);
  Bytes out;
  KEYPORT_TRY(decode_into(text, table, false, "base64url", out));
  return out;
}

Result<SecretBytes> base64url_decode_secret(std::string_view text) {
  static const auto table = make_table(kUrlAlphabet);
  SecretBytes out;
  SecretSink sink{out};
  KEYPORT_TRY(decode_into(text, table, false, "base64url", sink));
  return out;
}

Result<Bytes> base64_decode(std::string_view text) {
  static const auto table = make_table(kStdAlphabet);
  Bytes out;
  KEYPORT_TRY(decode_into(text, table, false, "base64", out));
  return out;
}

Base64Shape inspect_base64(std::string_view text) {
  Base64Shape s;
  for (char c : text) {
    if (c == '=') {
      s.has_padding = true;
    } else if (c == '+' || c == '/') {
      s.has_std_chars = true;
    } else if (c == '-' || c == '_') {
      s.has_url_chars = true;
    } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      s.has_other = true;
    }
  }
  return s;
}

std::string hex_encode(std::span<const std::uint8_t> data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (auto b : data) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string format_uuid(std::span<const std::uint8_t> data) {
  if (data.size() != 16) {
    return {};
  }
  const std::string h = hex_encode(data);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

Result<std::string> percent_decode(std::string_view text, bool plus_is_space, BadEscape bad) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const int hi = c == '%' && i + 2 < text.size() ? hex_digit_value(text[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_digit_value(text[i + 2]) : -1;
    if (lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '%' && bad == BadEscape::kRefuse) {
      return make_error(ErrorCode::kFormat, "a '%' is not followed by two hex digits");
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

Result<Bytes> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) {
    return make_error(ErrorCode::kFormat, "hex: odd number of digits");
  }
  Bytes out(text.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_digit_value(text[2 * i]);
    int lo = hex_digit_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return make_error(ErrorCode::kFormat, "hex: invalid digit at offset " +
                                                std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return out;
}

}  // namespace keyport
