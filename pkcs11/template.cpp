// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/template.h"

#include <algorithm>
#include <cstring>

#include "pkcs11/names.h"

namespace keyport::p11 {

Template& Template::set(CK_ATTRIBUTE_TYPE type, Value value) {
  for (auto& [t, v] : m_attrs) {
    if (t == type) {
      v = std::move(value);
      return *this;
    }
  }
  m_attrs.emplace_back(type, std::move(value));
  return *this;
}

Template& Template::remove(CK_ATTRIBUTE_TYPE type) {
  m_attrs.erase(std::remove_if(m_attrs.begin(), m_attrs.end(),
                               [type](const auto& a) { return a.first == type; }),
                m_attrs.end());
  return *this;
}

const Template::Value* Template::find(CK_ATTRIBUTE_TYPE type) const {
  for (const auto& [t, v] : m_attrs) {
    if (t == type)
      return &v;
  }
  return nullptr;
}

CkTemplate Template::lower() const {
  CkTemplate out;
  out.m_attrs.reserve(m_attrs.size());
  for (const auto& [type, value] : m_attrs) {
    CK_ATTRIBUTE a{type, nullptr, 0};
    auto store = [&](const void* p, std::size_t n) {
      auto& buf = out.m_storage.emplace_back(n);
      if (n != 0)
        std::memcpy(buf.data(), p, n);
      a.pValue = buf.empty() ? nullptr : buf.data();
      a.ulValueLen = static_cast<CK_ULONG>(n);
    };
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            CK_BBOOL b = v ? CK_TRUE : CK_FALSE;
            store(&b, sizeof b);
          } else if constexpr (std::is_same_v<V, CK_ULONG>) {
            store(&v, sizeof v);
          } else if constexpr (std::is_same_v<V, Bytes>) {
            store(v.data(), v.size());
          } else if constexpr (std::is_same_v<V, std::shared_ptr<const SecretBytes>>) {
            auto bytes = v->reveal(SecretAccess::unsafe());
            a.pValue = const_cast<std::uint8_t*>(bytes.data());
            a.ulValueLen = static_cast<CK_ULONG>(bytes.size());
          } else if constexpr (std::is_same_v<V, std::vector<CK_MECHANISM_TYPE>>) {
            store(v.data(), v.size() * sizeof(CK_MECHANISM_TYPE));
          } else if constexpr (std::is_same_v<V, std::shared_ptr<const Template>>) {
            CkTemplate& nested = out.m_nested.emplace_back(v->lower());
            a.pValue = nested.data();
            a.ulValueLen = static_cast<CK_ULONG>(nested.size() * sizeof(CK_ATTRIBUTE));
          }
        },
        value);
    out.m_attrs.push_back(a);
  }
  return out;
}

std::string Template::describe() const {
  std::string out;
  for (const auto& entry : m_attrs) {
    // Not a structured binding: clang 14 (the fuzz and sanitizer builds) cannot capture one.
    const CK_ATTRIBUTE_TYPE type = entry.first;
    const auto& value = entry.second;
    if (!out.empty())
      out += ' ';
    out += attribute_name(type) + '=';
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            out += v ? "true" : "false";
          } else if constexpr (std::is_same_v<V, CK_ULONG>) {
            out += std::to_string(v);
          } else if constexpr (std::is_same_v<V, Bytes>) {
            out +=
                type == CKA_LABEL ? "\"" + std::string(v.begin(), v.end()) + "\"" : hex_encode(v);
          } else if constexpr (std::is_same_v<V, std::shared_ptr<const SecretBytes>>) {
            out += "<secret>";
          } else if constexpr (std::is_same_v<V, std::vector<CK_MECHANISM_TYPE>>) {
            out += '[';
            for (std::size_t i = 0; i < v.size(); ++i)
              out += (i ? "," : "") + mechanism_name(v[i]);
            out += ']';
          } else if constexpr (std::is_same_v<V, std::shared_ptr<const Template>>) {
            out += "{" + v->describe() + "}";
          }
        },
        value);
  }
  return out;
}

}  // namespace keyport::p11
