// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/session.h"

#include <utility>

#include "core/log.h"
#include "pkcs11/names.h"

namespace keyport::p11 {

bool is_secret_attribute(CK_ATTRIBUTE_TYPE type) {
  switch (type) {
    case CKA_VALUE:
    case CKA_PRIVATE_EXPONENT:
    case CKA_PRIME_1:
    case CKA_PRIME_2:
    case CKA_EXPONENT_1:
    case CKA_EXPONENT_2:
    case CKA_COEFFICIENT:
      return true;
    default:
      return false;
  }
}

Result<Session> Session::open(std::shared_ptr<const Module> module, CK_SLOT_ID slot,
                              bool read_write) {
  CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  KEYPORT_TRY(KP11_CALL(*module, C_OpenSession, slot, flags, static_cast<void*>(nullptr),
                        static_cast<CK_NOTIFY>(nullptr), &h));
  return Session(std::move(module), slot, h);
}

Session::Session(Session&& other) noexcept
    : m_module(std::move(other.m_module)),
      m_slot(other.m_slot),
      m_handle(std::exchange(other.m_handle, CK_INVALID_HANDLE)),
      m_logged_in(std::exchange(other.m_logged_in, false)) {}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    reset();
    m_module = std::move(other.m_module);
    m_slot = other.m_slot;
    m_handle = std::exchange(other.m_handle, CK_INVALID_HANDLE);
    m_logged_in = std::exchange(other.m_logged_in, false);
  }
  return *this;
}

Session::~Session() {
  reset();
}

void Session::reset() noexcept {
  auto st = close();
  if (!st)
    log::warn("closing PKCS#11 session: " + st.error().describe());
}

Status Session::close() {
  if (m_handle == CK_INVALID_HANDLE || !m_module)
    return {};
  // No C_Logout here: login state belongs to the application, not to this session, so logging out
  // would log out every other session of this process on the token. The token logs the
  // application out by itself when its last session closes.
  CK_RV rv = KP11_CALL_RV(*m_module, C_CloseSession, m_handle);
  m_handle = CK_INVALID_HANDLE;
  m_logged_in = false;
  if (rv != CKR_OK)
    return tl::unexpected(pkcs11_error(rv, "C_CloseSession"));
  return {};
}

Status Session::logout() {
  if (m_handle == CK_INVALID_HANDLE)
    return {};
  CK_RV rv = KP11_CALL_RV(*m_module, C_Logout, m_handle);
  m_logged_in = false;
  if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN)
    return tl::unexpected(pkcs11_error(rv, "C_Logout"));
  return {};
}

Status Session::login(const SecretBytes& pin, CK_USER_TYPE user) {
  auto bytes = pin.reveal(SecretAccess::unsafe());
  CK_RV rv =
      KP11_CALL_RV(*m_module, C_Login, m_handle, user, const_cast<CK_UTF8CHAR*>(bytes.data()),
                   static_cast<CK_ULONG>(bytes.size()));
  if (rv == CKR_USER_ALREADY_LOGGED_IN)
    return {};
  if (rv != CKR_OK) {
    Error e = pkcs11_error(rv, "C_Login");
    if (rv == CKR_PIN_INCORRECT)
      return tl::unexpected(Error(ErrorCode::kAuth, "wrong PIN", rv, "C_Login"));
    if (rv == CKR_PIN_LOCKED) {
      return tl::unexpected(
          Error(ErrorCode::kAuth, "the PIN is locked on this token", rv, "C_Login"));
    }
    return tl::unexpected(e.with_context("logging in"));
  }
  m_logged_in = true;
  return {};
}

Result<std::vector<CK_OBJECT_HANDLE>> Session::find_objects(const Template& match,
                                                            std::size_t max) const {
  CkTemplate t = match.lower();
  KEYPORT_TRY(KP11_CALL(*m_module, C_FindObjectsInit, m_handle, t.data(), t.size()));
  std::vector<CK_OBJECT_HANDLE> out;
  Status status;
  for (;;) {
    CK_OBJECT_HANDLE batch[64];
    CK_ULONG n = 0;
    CK_RV rv = KP11_CALL_RV(*m_module, C_FindObjects, m_handle, batch, CK_ULONG{64}, &n);
    if (rv != CKR_OK) {
      status = tl::unexpected(pkcs11_error(rv, "C_FindObjects"));
      break;
    }
    if (n == 0)
      break;
    out.insert(out.end(), batch, batch + n);
    if (out.size() >= max) {
      out.resize(max);
      break;
    }
  }
  // Always end the search, also after an error, so the session stays usable.
  CK_RV rv = KP11_CALL_RV(*m_module, C_FindObjectsFinal, m_handle);
  if (!status)
    return tl::unexpected(status.error());
  if (rv != CKR_OK)
    return tl::unexpected(pkcs11_error(rv, "C_FindObjectsFinal"));
  return out;
}

Result<CK_OBJECT_HANDLE> Session::create_object(const Template& t) const {
  CkTemplate ck = t.lower();
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  KEYPORT_TRY(KP11_CALL(*m_module, C_CreateObject, m_handle, ck.data(), ck.size(), &h));
  return h;
}

Status Session::destroy_object(CK_OBJECT_HANDLE object) const {
  return KP11_CALL(*m_module, C_DestroyObject, m_handle, object);
}

Result<std::optional<Bytes>> Session::try_get_bytes(CK_OBJECT_HANDLE object,
                                                    CK_ATTRIBUTE_TYPE type) const {
  if (is_secret_attribute(type)) {
    return make_error(ErrorCode::kInternal, "refusing to read " + attribute_name(type) +
                                                ": keyport never reads secret attributes");
  }
  CK_ATTRIBUTE a{type, nullptr, 0};
  CK_RV rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, &a, CK_ULONG{1});
  if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
      a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
    return std::optional<Bytes>();
  }
  if (rv != CKR_OK)
    return tl::unexpected(pkcs11_error(rv, "C_GetAttributeValue"));
  Bytes value(a.ulValueLen);
  a.pValue = value.empty() ? nullptr : value.data();
  if (!value.empty()) {
    rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, &a, CK_ULONG{1});
    if (rv != CKR_OK)
      return tl::unexpected(pkcs11_error(rv, "C_GetAttributeValue"));
    value.resize(a.ulValueLen);
  }
  return std::optional<Bytes>(std::move(value));
}

Result<std::vector<std::optional<Bytes>>> Session::get_attributes(
    CK_OBJECT_HANDLE object, const std::vector<CK_ATTRIBUTE_TYPE>& types) const {
  for (CK_ATTRIBUTE_TYPE t : types) {
    if (is_secret_attribute(t)) {
      return make_error(ErrorCode::kInternal, "refusing to read " + attribute_name(t) +
                                                  ": keyport never reads secret attributes");
    }
  }
  // One call with room for any public attribute keyport reads (an RSA-4096 modulus is 512 bytes):
  // a token object's every C_GetAttributeValue costs SoftHSM a refresh from disk, so the usual
  // size-query-then-read pair doubles the cost of listing a large token. A value that does not
  // fit (CKR_BUFFER_TOO_SMALL) falls back to the pair.
  constexpr CK_ULONG kRoom = 1024;
  std::vector<std::optional<Bytes>> out(types.size());
  std::vector<CK_ATTRIBUTE> attrs;
  attrs.reserve(types.size());
  for (std::size_t i = 0; i < types.size(); ++i) {
    out[i].emplace(kRoom);
    attrs.push_back({types[i], out[i]->data(), kRoom});
  }
  auto size = static_cast<CK_ULONG>(attrs.size());
  // CKR_ATTRIBUTE_SENSITIVE / CKR_ATTRIBUTE_TYPE_INVALID still fill in every other value (PKCS#11
  // §5.7), marking the missing ones CK_UNAVAILABLE_INFORMATION.
  CK_RV rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, attrs.data(), size);
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
      rv != CKR_BUFFER_TOO_SMALL) {
    return tl::unexpected(pkcs11_error(rv, "C_GetAttributeValue"));
  }
  if (rv != CKR_BUFFER_TOO_SMALL) {
    for (std::size_t i = 0; i < attrs.size(); ++i) {
      if (attrs[i].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        out[i].reset();
      else
        out[i]->resize(attrs[i].ulValueLen);
    }
    return out;
  }
  for (std::size_t i = 0; i < attrs.size(); ++i)
    attrs[i] = {types[i], nullptr, 0};
  rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, attrs.data(), size);
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
    return tl::unexpected(pkcs11_error(rv, "C_GetAttributeValue"));
  }
  std::vector<CK_ATTRIBUTE> present;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    if (attrs[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
      out[i].reset();
      continue;
    }
    out[i].emplace(attrs[i].ulValueLen);
    present.push_back(
        {attrs[i].type, out[i]->empty() ? nullptr : out[i]->data(), attrs[i].ulValueLen});
    where.push_back(i);
  }
  if (!present.empty()) {
    rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, present.data(),
                      static_cast<CK_ULONG>(present.size()));
    if (rv != CKR_OK)
      return tl::unexpected(pkcs11_error(rv, "C_GetAttributeValue"));
    for (std::size_t j = 0; j < present.size(); ++j)
      out[where[j]]->resize(present[j].ulValueLen);
  }
  return out;
}

Result<Bytes> Session::get_bytes(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const {
  KEYPORT_ASSIGN_OR_RETURN(auto v, try_get_bytes(object, type));
  if (!v) {
    return make_error(ErrorCode::kPkcs11,
                      "the token does not reveal " + attribute_name(type) + " of this object");
  }
  return std::move(*v);
}

Result<CK_ULONG> Session::get_ulong(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const {
  CK_ULONG v = 0;
  CK_ATTRIBUTE a{type, &v, sizeof v};
  CK_RV rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, &a, CK_ULONG{1});
  if (rv != CKR_OK) {
    return tl::unexpected(
        pkcs11_error(rv, "C_GetAttributeValue").with_context("reading " + attribute_name(type)));
  }
  if (a.ulValueLen != sizeof v) {
    return make_error(ErrorCode::kPkcs11, attribute_name(type) + " has an unexpected size");
  }
  return v;
}

Result<bool> Session::get_bool(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const {
  CK_BBOOL v = CK_FALSE;
  CK_ATTRIBUTE a{type, &v, sizeof v};
  CK_RV rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, &a, CK_ULONG{1});
  if (rv != CKR_OK) {
    return tl::unexpected(
        pkcs11_error(rv, "C_GetAttributeValue").with_context("reading " + attribute_name(type)));
  }
  return v == CK_TRUE;
}

Result<std::string> Session::get_string(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const {
  KEYPORT_ASSIGN_OR_RETURN(auto v, try_get_bytes(object, type));
  if (!v)
    return std::string();
  return std::string(v->begin(), v->end());
}

ScopedObject& ScopedObject::operator=(ScopedObject&& other) noexcept {
  if (this != &other) {
    (void)destroy();
    m_session = other.m_session;
    m_handle = std::exchange(other.m_handle, CK_INVALID_HANDLE);
  }
  return *this;
}

ScopedObject::~ScopedObject() {
  auto st = destroy();
  if (!st)
    log::warn("destroying an ephemeral PKCS#11 object: " + st.error().describe());
}

Status ScopedObject::destroy() {
  if (m_session == nullptr || m_handle == CK_INVALID_HANDLE)
    return {};
  CK_OBJECT_HANDLE h = std::exchange(m_handle, CK_INVALID_HANDLE);
  return m_session->destroy_object(h);
}

}  // namespace keyport::p11
