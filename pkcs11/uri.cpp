// SPDX-License-Identifier: Apache-2.0
// RFC 7512 PKCS#11 URIs. The parts of the RFC's grammar (§2.3) this file relies on:
//
//   pk11-URI             = "pkcs11:" pk11-path [ "?" pk11-query ]
//   pk11-path            = [ pk11-pattr *(";" pk11-pattr) ]
//   pk11-query           = [ pk11-qattr *("&" pk11-qattr) ]
//   pk11-res-avail       = ":" / "[" / "]" / "@" / "!" / "$" /
//                          "'" / "(" / ")" / "*" / "+" / "," / "="
//   pk11-path-res-avail  = pk11-res-avail / "&"
//   pk11-query-res-avail = pk11-res-avail / "/" / "?" / "|"
//   pk11-pchar           = unreserved / pk11-path-res-avail / pct-encoded
//   pk11-qchar           = unreserved / pk11-query-res-avail / pct-encoded
//   pk11-lib-ver         = "library-version" "=" 1*DIGIT [ "." 1*DIGIT ]
//   pk11-slot-id         = "slot-id" "=" 1*DIGIT
//
// Where p11-kit is lenient keyport fails closed: raw characters outside pk11-pchar/pk11-qchar
// (p11-kit silently drops whitespace), stray separators, repeated attributes (p11-kit keeps the
// last), unknown or vendor attributes (p11-kit ignores unknown query attributes), p11-kit's legacy
// names (object-type, pinfile, type=secretkey), an empty or overflowing slot-id, NUL bytes in text
// values, and pin-source together with pin-value (RFC 7512 §2.4: SHOULD be refused).
#include "pkcs11/uri.h"

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/encoding.h"

namespace keyport::p11 {
namespace {

constexpr std::string_view kScheme = "pkcs11:";
constexpr std::string_view kPrefix = "PKCS#11 URI: ";
constexpr char kHexDigits[] = "0123456789ABCDEF";
// CK_VERSION fields are CK_BYTEs.
constexpr unsigned kMaxVersionPart = 255;

enum class Part { kPath, kQuery };

enum class Attr : std::size_t {
  kToken,
  kManufacturer,
  kModel,
  kSerial,
  kSlotDescription,
  kSlotManufacturer,
  kSlotId,
  kLibraryManufacturer,
  kLibraryDescription,
  kLibraryVersion,
  kObject,
  kId,
  kType,
  kPinSource,
  kPinValue,
  kModuleName,
  kModulePath,
  kCount,
};

struct AttrInfo {
  std::string_view name;
  Attr attr;
  Part part;
};

constexpr std::array<AttrInfo, static_cast<std::size_t>(Attr::kCount)> kAttributes = {{
    {"token", Attr::kToken, Part::kPath},
    {"manufacturer", Attr::kManufacturer, Part::kPath},
    {"model", Attr::kModel, Part::kPath},
    {"serial", Attr::kSerial, Part::kPath},
    {"slot-description", Attr::kSlotDescription, Part::kPath},
    {"slot-manufacturer", Attr::kSlotManufacturer, Part::kPath},
    {"slot-id", Attr::kSlotId, Part::kPath},
    {"library-manufacturer", Attr::kLibraryManufacturer, Part::kPath},
    {"library-description", Attr::kLibraryDescription, Part::kPath},
    {"library-version", Attr::kLibraryVersion, Part::kPath},
    {"object", Attr::kObject, Part::kPath},
    {"id", Attr::kId, Part::kPath},
    {"type", Attr::kType, Part::kPath},
    {"pin-source", Attr::kPinSource, Part::kQuery},
    {"pin-value", Attr::kPinValue, Part::kQuery},
    {"module-name", Attr::kModuleName, Part::kQuery},
    {"module-path", Attr::kModulePath, Part::kQuery},
}};

constexpr std::array<std::string_view, 5> kTypes = {"public", "private", "cert", "secret-key",
                                                    "data"};

using Seen = std::array<bool, static_cast<std::size_t>(Attr::kCount)>;

tl::unexpected<Error> uri_error(std::string_view message) {
  std::string text(kPrefix);
  text += message;
  return make_error(ErrorCode::kInvalidArgument, std::move(text));
}

// An attribute name as it may appear in a message: printable ASCII kept, anything else shown as
// \xHH, long names cut short.
std::string printable(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x21 && c <= 0x7e) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHexDigits[c >> 4];
      out += kHexDigits[c & 0x0f];
    }
  }
  if (text.size() > kMaxShown) {
    out += "...";
  }
  return out;
}

std::string quoted(std::string_view name) {
  return "'" + printable(name) + "'";
}

bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// pk11-pchar / pk11-qchar without pct-encoded.
bool is_allowed_raw(unsigned char c, Part part) {
  if (is_unreserved(c)) {
    return true;
  }
  switch (c) {
    case ':':
    case '[':
    case ']':
    case '@':
    case '!':
    case '$':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case '=':
      return true;
    default:
      break;
  }
  if (part == Part::kPath) {
    return c == '&';
  }
  return c == '/' || c == '?' || c == '|';
}

// Percent-decodes `raw` into `out` (at least raw.size() bytes) and returns the decoded length.
// Messages about a secret value say what is wrong but never which character.
Result<std::size_t> percent_decode(std::string_view raw, Part part, std::string_view name,
                                   bool secret, std::span<std::uint8_t> out) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '%') {
      if (raw.size() - i < 3 || hex_digit_value(raw[i + 1]) < 0 ||
          hex_digit_value(raw[i + 2]) < 0) {
        return uri_error("malformed percent-encoding in the value of " + quoted(name) +
                         " (expected '%' and two hex digits)");
      }
      out[n++] =
          static_cast<std::uint8_t>(hex_digit_value(raw[i + 1]) * 16 + hex_digit_value(raw[i + 2]));
      i += 2;
      continue;
    }
    const auto byte = static_cast<unsigned char>(c);
    if (!is_allowed_raw(byte, part)) {
      std::string message = "the value of " + quoted(name) + " contains ";
      if (secret) {
        message += "a character";
      } else if (byte >= 0x21 && byte <= 0x7e) {
        message += "the character '" + std::string(1, c) + "'";
      } else {
        message += "the byte 0x" + std::string{kHexDigits[byte >> 4], kHexDigits[byte & 0x0f]};
      }
      message += " that must be percent-encoded";
      return uri_error(message);
    }
    out[n++] = byte;
  }
  return n;
}

Result<std::string> decode_text(std::string_view raw, Part part, std::string_view name) {
  std::string out(raw.size(), '\0');
  auto n = percent_decode(raw, part, name, false,
                          {reinterpret_cast<std::uint8_t*>(out.data()), out.size()});
  if (!n) {
    return tl::unexpected(std::move(n).error());
  }
  out.resize(*n);
  return out;
}

// A text attribute: no NUL byte, since values end up in C strings (dlopen paths, labels).
//
// A value longer than the fixed-width PKCS#11 field it names is accepted: it simply matches no
// module (p11-kit flags it as unrecognized instead). RFC 7512 §7 has such an example itself:
// "Name with a small A with acute: á" is 34 bytes, the token label holds 32.
Result<std::string> decode_field(std::string_view raw, Part part, const AttrInfo& info) {
  KEYPORT_ASSIGN_OR_RETURN(std::string value, decode_text(raw, part, info.name));
  if (value.find('\0') != std::string::npos) {
    return uri_error("the value of " + quoted(info.name) + " contains a NUL byte");
  }
  return value;
}

template <typename T>
std::optional<T> parse_decimal(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  for (char c : text) {
    if (!is_digit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

struct LibraryVersion {
  unsigned major = 0;
  std::optional<unsigned> minor;
};

// "M" or "M.m", decimal, each part a CK_BYTE.
std::optional<LibraryVersion> parse_library_version(std::string_view text) {
  const auto dot = text.find('.');
  const auto major = parse_decimal<unsigned>(text.substr(0, dot));
  if (!major || *major > kMaxVersionPart) {
    return std::nullopt;
  }
  LibraryVersion version;
  version.major = *major;
  if (dot != std::string_view::npos) {
    const auto minor = parse_decimal<unsigned>(text.substr(dot + 1));
    if (!minor || *minor > kMaxVersionPart) {
      return std::nullopt;
    }
    version.minor = *minor;
  }
  return version;
}

const AttrInfo* find_attribute(std::string_view name) {
  for (const auto& info : kAttributes) {
    if (info.name == name) {
      return &info;
    }
  }
  return nullptr;
}

// The Uri member of a plain text attribute; nullptr for the attributes with their own rules.
std::optional<std::string> Uri::*text_member(Attr attr) {
  switch (attr) {
    case Attr::kToken:
      return &Uri::token;
    case Attr::kManufacturer:
      return &Uri::manufacturer;
    case Attr::kModel:
      return &Uri::model;
    case Attr::kSerial:
      return &Uri::serial;
    case Attr::kSlotDescription:
      return &Uri::slot_description;
    case Attr::kSlotManufacturer:
      return &Uri::slot_manufacturer;
    case Attr::kLibraryManufacturer:
      return &Uri::library_manufacturer;
    case Attr::kLibraryDescription:
      return &Uri::library_description;
    case Attr::kObject:
      return &Uri::object;
    case Attr::kPinSource:
      return &Uri::pin_source;
    case Attr::kModuleName:
      return &Uri::module_name;
    case Attr::kModulePath:
      return &Uri::module_path;
    default:
      return nullptr;
  }
}

Status parse_attribute(std::string_view segment, Part part, Uri& uri, Seen& seen) {
  const bool in_path = part == Part::kPath;
  if (segment.empty()) {
    return uri_error(in_path ? "empty path attribute (a stray ';')"
                             : "empty query attribute (a stray '&')");
  }
  const auto eq = segment.find('=');
  if (eq == std::string_view::npos) {
    // A query segment without '=' is not echoed: it may be a PIN typed in the wrong place.
    return uri_error(in_path ? "path attribute " + quoted(segment) + " has no '=' and no value"
                             : std::string("a query attribute has no '=' and no value"));
  }
  const std::string_view name = segment.substr(0, eq);
  const std::string_view raw = segment.substr(eq + 1);
  if (name.empty()) {
    return uri_error(in_path ? "a path attribute has an empty name"
                             : "a query attribute has an empty name");
  }
  const AttrInfo* info = find_attribute(name);
  if (info == nullptr) {
    return uri_error("unknown attribute " + quoted(name) + " in the " +
                     (in_path ? "path" : "query") +
                     " (unknown and vendor attributes are refused, never ignored)");
  }
  if (info->part != part) {
    return uri_error("attribute " + quoted(name) + " belongs in the " +
                     (in_path ? "query" : "path") + ", not the " + (in_path ? "path" : "query"));
  }
  auto& was_seen = seen[static_cast<std::size_t>(info->attr)];
  if (was_seen) {
    return uri_error("attribute " + quoted(name) + " is repeated");
  }
  was_seen = true;

  if (const auto member = text_member(info->attr); member != nullptr) {
    KEYPORT_ASSIGN_OR_RETURN(uri.*member, decode_field(raw, part, *info));
    return {};
  }
  switch (info->attr) {
    case Attr::kSlotId: {
      KEYPORT_ASSIGN_OR_RETURN(std::string text, decode_field(raw, part, *info));
      const auto id = parse_decimal<CK_SLOT_ID>(text);
      if (!id) {
        return uri_error("slot-id must be a decimal number from 0 to " +
                         std::to_string(std::numeric_limits<CK_SLOT_ID>::max()) + ", not '" +
                         printable(text) + "'");
      }
      uri.slot_id = *id;
      return {};
    }
    case Attr::kLibraryVersion: {
      KEYPORT_ASSIGN_OR_RETURN(std::string text, decode_field(raw, part, *info));
      const auto version = parse_library_version(text);
      if (!version) {
        return uri_error("library-version must be M or M.m with decimal numbers up to 255, not '" +
                         printable(text) + "'");
      }
      // Canonical form: no leading zeros, so that equal versions compare equal as text.
      std::string canonical = std::to_string(version->major);
      if (version->minor) {
        canonical += "." + std::to_string(*version->minor);
      }
      uri.library_version = std::move(canonical);
      return {};
    }
    case Attr::kId: {
      Bytes id(raw.size());
      KEYPORT_ASSIGN_OR_RETURN(const std::size_t n, percent_decode(raw, part, name, false, id));
      id.resize(n);
      uri.id = std::move(id);
      return {};
    }
    case Attr::kType: {
      KEYPORT_ASSIGN_OR_RETURN(std::string text, decode_field(raw, part, *info));
      bool known = false;
      for (auto type : kTypes) {
        known = known || text == type;
      }
      if (!known) {
        return uri_error("type must be one of public, private, cert, secret-key, data; not '" +
                         printable(text) + "'");
      }
      uri.type = std::move(text);
      return {};
    }
    case Attr::kPinValue: {
      // Decoded straight into SecretBytes: the PIN never sits in a std::string.
      SecretBytes pin(raw.size());
      auto n = percent_decode(raw, part, name, true, pin.reveal_mut(SecretAccess::unsafe()));
      if (!n) {
        return tl::unexpected(std::move(n).error());
      }
      pin.truncate(*n);
      uri.pin_value = std::make_shared<const SecretBytes>(std::move(pin));
      return {};
    }
    default:
      break;
  }
  return make_error(ErrorCode::kInternal, "PKCS#11 URI: attribute table is inconsistent");
}

Status parse_component(std::string_view text, Part part, Uri& uri, Seen& seen) {
  if (text.empty()) {
    return {};
  }
  const char separator = part == Part::kPath ? ';' : '&';
  std::size_t start = 0;
  while (true) {
    const auto end = text.find(separator, start);
    const auto segment =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    KEYPORT_TRY(parse_attribute(segment, part, uri, seen));
    if (end == std::string_view::npos) {
      return {};
    }
    start = end + 1;
  }
}

// One attribute to format: `encode_all` percent-encodes every byte (used for id).
struct FormatItem {
  std::string_view name;
  std::span<const std::uint8_t> value;
  Part part;
  bool encode_all;
};

std::size_t encoded_size(const FormatItem& item) {
  std::size_t n = 0;
  for (auto byte : item.value) {
    n += (!item.encode_all && is_allowed_raw(byte, item.part)) ? 1 : 3;
  }
  return n;
}

void append_encoded(std::string& out, const FormatItem& item) {
  for (auto byte : item.value) {
    if (!item.encode_all && is_allowed_raw(byte, item.part)) {
      out += static_cast<char>(byte);
    } else {
      out += '%';
      out += kHexDigits[byte >> 4];
      out += kHexDigits[byte & 0x0f];
    }
  }
}

std::string_view rtrim_spaces(std::string_view text) {
  const auto last = text.find_last_not_of(' ');
  return last == std::string_view::npos ? std::string_view() : text.substr(0, last + 1);
}

// A URI value against a space-padded field. Trailing spaces are trimmed on both sides, so a value
// matches exactly when, padded to the field's width, it equals the field (p11-kit's rule).
bool field_matches(const std::optional<std::string>& wanted, const unsigned char* field,
                   std::size_t size) {
  if (!wanted) {
    return true;
  }
  return rtrim_spaces(*wanted) == trim_padded(field, size);
}

}  // namespace

Result<Uri> Uri::parse(std::string_view text) {
  if (!looks_like_uri(text)) {
    return uri_error("expected the scheme 'pkcs11:'");
  }
  std::string_view path = text.substr(kScheme.size());
  std::string_view query;
  bool has_query = false;
  // '?' is not a pk11-pchar, so the first one ends the path; later ones are query characters.
  if (const auto question = path.find('?'); question != std::string_view::npos) {
    query = path.substr(question + 1);
    path = path.substr(0, question);
    has_query = true;
  }
  Uri uri;
  Seen seen{};
  KEYPORT_TRY(parse_component(path, Part::kPath, uri, seen));
  if (has_query) {
    KEYPORT_TRY(parse_component(query, Part::kQuery, uri, seen));
  }
  if (uri.pin_source && uri.pin_value) {
    // RFC 7512 §2.4: a URI with both SHOULD be refused as invalid.
    return uri_error("pin-source and pin-value must not be used together");
  }
  return uri;
}

std::string Uri::format(bool include_pin_value) const {
  auto text = [](const std::optional<std::string>& value) {
    return std::span<const std::uint8_t>(as_bytes(*value));
  };
  const std::string slot_text = slot_id ? std::to_string(*slot_id) : std::string();

  std::vector<FormatItem> items;
  auto add_text = [&](std::string_view name, const std::optional<std::string>& value, Part part) {
    if (value) {
      items.push_back({name, text(value), part, false});
    }
  };
  add_text("token", token, Part::kPath);
  add_text("manufacturer", manufacturer, Part::kPath);
  add_text("model", model, Part::kPath);
  add_text("serial", serial, Part::kPath);
  add_text("slot-description", slot_description, Part::kPath);
  add_text("slot-manufacturer", slot_manufacturer, Part::kPath);
  if (slot_id) {
    items.push_back({"slot-id", as_bytes(slot_text), Part::kPath, false});
  }
  add_text("library-manufacturer", library_manufacturer, Part::kPath);
  add_text("library-description", library_description, Part::kPath);
  add_text("library-version", library_version, Part::kPath);
  add_text("object", object, Part::kPath);
  if (id) {
    items.push_back({"id", *id, Part::kPath, true});
  }
  add_text("type", type, Part::kPath);
  add_text("pin-source", pin_source, Part::kQuery);
  if (include_pin_value && pin_value) {
    items.push_back({"pin-value", pin_value->reveal(SecretAccess::unsafe()), Part::kQuery, false});
  }
  add_text("module-name", module_name, Part::kQuery);
  add_text("module-path", module_path, Part::kQuery);

  // Reserve the exact size first: the string never reallocates, so no unwiped copy of a PIN is
  // left behind in freed memory.
  std::size_t size = kScheme.size();
  for (const auto& item : items) {
    size += item.name.size() + 2 + encoded_size(item);  // separator, name, '=', value
  }
  std::string out;
  out.reserve(size);
  out += kScheme;
  bool first_path = true;
  bool first_query = true;
  for (const auto& item : items) {
    if (item.part == Part::kPath) {
      if (!first_path) {
        out += ';';
      }
      first_path = false;
    } else {
      out += first_query ? '?' : '&';
      first_query = false;
    }
    out += item.name;
    out += '=';
    append_encoded(out, item);
  }
  return out;
}

bool Uri::matches_token(const CK_TOKEN_INFO& info) const {
  return field_matches(token, info.label, sizeof(info.label)) &&
         field_matches(manufacturer, info.manufacturerID, sizeof(info.manufacturerID)) &&
         field_matches(model, info.model, sizeof(info.model)) &&
         field_matches(serial, info.serialNumber, sizeof(info.serialNumber));
}

bool Uri::matches_slot(CK_SLOT_ID id_value, const CK_SLOT_INFO& info) const {
  if (slot_id && *slot_id != id_value) {
    return false;
  }
  return field_matches(slot_description, info.slotDescription, sizeof(info.slotDescription)) &&
         field_matches(slot_manufacturer, info.manufacturerID, sizeof(info.manufacturerID));
}

bool Uri::matches_library(const CK_INFO& info) const {
  if (!field_matches(library_manufacturer, info.manufacturerID, sizeof(info.manufacturerID)) ||
      !field_matches(library_description, info.libraryDescription,
                     sizeof(info.libraryDescription))) {
    return false;
  }
  if (library_version) {
    // A version that does not parse (only possible if set by hand) matches nothing.
    const auto wanted = parse_library_version(*library_version);
    if (!wanted || info.libraryVersion.major != wanted->major) {
      return false;
    }
    // "M" alone matches any minor version.
    if (wanted->minor && info.libraryVersion.minor != *wanted->minor) {
      return false;
    }
  }
  return true;
}

bool Uri::has_token_attributes() const {
  return token || manufacturer || model || serial || slot_description || slot_manufacturer ||
         slot_id;
}

bool Uri::has_object_attributes() const {
  return object || id || type;
}

std::string trim_padded(const unsigned char* field, std::size_t size) {
  if (field == nullptr) {
    return {};
  }
  // Spaces are the standard padding; some modules pad with NUL bytes (tpm2-pkcs11's model field)
  // or end the text with a NUL and leave garbage after it: the text ends at the first NUL.
  std::size_t end = 0;
  while (end < size && field[end] != '\0') {
    ++end;
  }
  while (end > 0 && field[end - 1] == ' ') {
    --end;
  }
  return std::string(reinterpret_cast<const char*>(field), end);
}

bool looks_like_uri(std::string_view text) {
  if (text.size() < kScheme.size()) {
    return false;
  }
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (c != kScheme[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace keyport::p11
