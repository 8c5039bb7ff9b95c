// SPDX-License-Identifier: Apache-2.0
// Attribute templates as values. A Template is an ordered list of (attribute, value); setting an
// attribute again replaces the old value. Values may be nested templates (CKA_WRAP_TEMPLATE,
// CKA_UNWRAP_TEMPLATE) or mechanism lists (CKA_ALLOWED_MECHANISMS). lower() produces the
// CK_ATTRIBUTE array for exactly one call.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/encoding.h"
#include "core/secret.h"
#include "pkcs11/cryptoki.h"

namespace keyport::p11 {

class Template;

// The CK_ATTRIBUTE array for one C_* call. Borrows secret values from the Template it came from,
// so it must not outlive that Template.
class CkTemplate {
 public:
  CK_ATTRIBUTE* data() { return m_attrs.empty() ? nullptr : m_attrs.data(); }
  CK_ULONG size() const { return static_cast<CK_ULONG>(m_attrs.size()); }

 private:
  friend class Template;
  std::vector<CK_ATTRIBUTE> m_attrs;
  std::deque<std::vector<std::uint8_t>> m_storage;
  std::deque<CkTemplate> m_nested;
};

class Template {
 public:
  using Value = std::variant<bool, CK_ULONG, Bytes, std::shared_ptr<const SecretBytes>,
                             std::vector<CK_MECHANISM_TYPE>, std::shared_ptr<const Template>>;

  Template() = default;

  Template& set(CK_ATTRIBUTE_TYPE type, Value value);
  Template& set_bool(CK_ATTRIBUTE_TYPE type, bool v) { return set(type, v); }
  Template& set_ulong(CK_ATTRIBUTE_TYPE type, CK_ULONG v) { return set(type, v); }
  Template& set_bytes(CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> v) {
    return set(type, Bytes(v.begin(), v.end()));
  }
  Template& set_string(CK_ATTRIBUTE_TYPE type, std::string_view v) {
    return set_bytes(type, as_bytes(v));
  }
  Template& set_secret(CK_ATTRIBUTE_TYPE type, SecretBytes v) {
    return set(type, std::make_shared<const SecretBytes>(std::move(v)));
  }
  Template& set_template(CK_ATTRIBUTE_TYPE type, Template nested) {
    return set(type, std::make_shared<const Template>(std::move(nested)));
  }
  Template& set_mechanisms(CK_ATTRIBUTE_TYPE type, std::vector<CK_MECHANISM_TYPE> mechs) {
    return set(type, std::move(mechs));
  }

  // Named setters for the attributes keyport uses.
  Template& object_class(CK_OBJECT_CLASS c) { return set_ulong(CKA_CLASS, c); }
  Template& key_type(CK_KEY_TYPE t) { return set_ulong(CKA_KEY_TYPE, t); }
  Template& token(bool v) { return set_bool(CKA_TOKEN, v); }
  Template& private_object(bool v) { return set_bool(CKA_PRIVATE, v); }
  Template& sensitive(bool v) { return set_bool(CKA_SENSITIVE, v); }
  Template& extractable(bool v) { return set_bool(CKA_EXTRACTABLE, v); }
  Template& modifiable(bool v) { return set_bool(CKA_MODIFIABLE, v); }
  Template& label(std::string_view v) { return set_string(CKA_LABEL, v); }
  Template& id(std::span<const std::uint8_t> v) { return set_bytes(CKA_ID, v); }
  Template& value_len(CK_ULONG v) { return set_ulong(CKA_VALUE_LEN, v); }
  Template& encrypt(bool v) { return set_bool(CKA_ENCRYPT, v); }
  Template& decrypt(bool v) { return set_bool(CKA_DECRYPT, v); }
  Template& wrap(bool v) { return set_bool(CKA_WRAP, v); }
  Template& unwrap(bool v) { return set_bool(CKA_UNWRAP, v); }
  Template& sign(bool v) { return set_bool(CKA_SIGN, v); }
  Template& verify(bool v) { return set_bool(CKA_VERIFY, v); }
  Template& derive(bool v) { return set_bool(CKA_DERIVE, v); }
  Template& modulus_bits(CK_ULONG v) { return set_ulong(CKA_MODULUS_BITS, v); }
  Template& public_exponent(std::span<const std::uint8_t> v) {
    return set_bytes(CKA_PUBLIC_EXPONENT, v);
  }
  Template& modulus(std::span<const std::uint8_t> v) { return set_bytes(CKA_MODULUS, v); }
  Template& ec_params(std::span<const std::uint8_t> v) { return set_bytes(CKA_EC_PARAMS, v); }

  Template& remove(CK_ATTRIBUTE_TYPE type);
  bool has(CK_ATTRIBUTE_TYPE type) const { return find(type) != nullptr; }
  const Value* find(CK_ATTRIBUTE_TYPE type) const;
  std::size_t size() const { return m_attrs.size(); }

  CkTemplate lower() const;

  // "CKA_CLASS=4 CKA_TOKEN=true CKA_LABEL=\"k1\" CKA_VALUE=<secret>" for debug logs.
  std::string describe() const;

 private:
  std::vector<std::pair<CK_ATTRIBUTE_TYPE, Value>> m_attrs;
};

}  // namespace keyport::p11
