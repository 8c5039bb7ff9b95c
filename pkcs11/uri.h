// SPDX-License-Identifier: Apache-2.0
// PKCS#11 URIs (RFC 7512): pkcs11:token=onprem;object=my-key;type=private?pin-source=file:/p
//
// Parsing fails closed: an attribute this parser does not know is an error, never a wildcard.
// Values are percent-decoded; `id` is binary. Token, slot and library fields match against the
// space-padded fixed-width fields a module reports, after trimming trailing spaces.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"
#include "core/secret.h"
#include "pkcs11/cryptoki.h"

namespace keyport::p11 {

class Uri {
 public:
  // Path attributes (RFC 7512 §2.3).
  std::optional<std::string> token;         // CK_TOKEN_INFO.label
  std::optional<std::string> manufacturer;  // CK_TOKEN_INFO.manufacturerID
  std::optional<std::string> model;         // CK_TOKEN_INFO.model
  std::optional<std::string> serial;        // CK_TOKEN_INFO.serialNumber
  std::optional<std::string> slot_description;
  std::optional<std::string> slot_manufacturer;
  std::optional<CK_SLOT_ID> slot_id;  // decimal
  std::optional<std::string> library_manufacturer;
  std::optional<std::string> library_description;
  std::optional<std::string> library_version;  // "M" or "M.m"
  std::optional<std::string> object;           // CKA_LABEL (UTF-8, no embedded NUL)
  std::optional<Bytes> id;                     // CKA_ID
  // "public", "private", "cert", "secret-key", "data" (RFC 7512 §2.3).
  std::optional<std::string> type;

  // Query attributes (RFC 7512 §2.4).
  std::optional<std::string> pin_source;  // e.g. "file:/path" or "env:VAR" (keyport extension)
  std::shared_ptr<const SecretBytes> pin_value;  // null when absent
  std::optional<std::string> module_name;
  std::optional<std::string> module_path;

  // Parses a URI. The scheme is case-insensitive. Errors (kInvalidArgument) say what is wrong:
  // bad scheme, bad percent-encoding, unknown attribute (named), repeated path attribute, a value
  // that does not fit its attribute (slot-id not a number, type not one of the five, object with a
  // NUL byte, library-version not M[.m]).
  static Result<Uri> parse(std::string_view text);

  // Canonical text: "pkcs11:" then path attributes in the order listed above, then query
  // attributes; characters outside RFC 7512's unreserved/pchar set are percent-encoded. pin-value
  // is included only when include_pin_value is true.
  std::string format(bool include_pin_value = false) const;

  // True if every token attribute present in this URI equals the module's field.
  bool matches_token(const CK_TOKEN_INFO& info) const;
  bool matches_slot(CK_SLOT_ID id, const CK_SLOT_INFO& info) const;
  bool matches_library(const CK_INFO& info) const;
  // True if the URI names a token at all (token, manufacturer, model, serial or slot attributes).
  bool has_token_attributes() const;
  // True if the URI names an object (object, id or type).
  bool has_object_attributes() const;
};

// The text of a fixed-width, space-padded PKCS#11 string field: up to the first NUL byte (some
// modules pad with NULs), without trailing spaces.
std::string trim_padded(const unsigned char* field, std::size_t size);

// Returns true if `text` starts with "pkcs11:" (any case): callers use it to tell a URI from a
// plain label.
bool looks_like_uri(std::string_view text);

}  // namespace keyport::p11
