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
  // An empty PIN is passed as a valid pointer with length 0, never as NULL (NULL means "use the
  // PIN pad" to a token with a protected authentication path).
  static CK_UTF8CHAR empty_pin[1] = {0};
  CK_UTF8CHAR* p = bytes.empty() ? empty_pin : const_cast<CK_UTF8CHAR*>(bytes.data());
  return finish_login(
      KP11_CALL_RV(*m_module, C_Login, m_handle, user, p, static_cast<CK_ULONG>(bytes.size())));
}

Status Session::login_protected_path(CK_USER_TYPE user) {
  return finish_login(KP11_CALL_RV(*m_module, C_Login, m_handle, user,
                                   static_cast<CK_UTF8CHAR*>(nullptr), CK_ULONG{0}));
}

bool Session::user_logged_in() const {
  CK_SESSION_INFO info{};
  if (m_handle == CK_INVALID_HANDLE ||
      KP11_CALL_RV(*m_module, C_GetSessionInfo, m_handle, &info) != CKR_OK)
    return false;
  return info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS;
}

Status Session::finish_login(CK_RV rv) {
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

Result<CK_OBJECT_HANDLE> Session::create_object(const Template& t, CK_RV* rv) const {
  CkTemplate ck = t.lower();
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  const CK_RV got = KP11_CALL_RV(*m_module, C_CreateObject, m_handle, ck.data(), ck.size(), &h);
  if (rv != nullptr)
    *rv = got;
  if (got != CKR_OK)
    return tl::unexpected(pkcs11_error(got, "C_CreateObject"));
  return h;
}

Status Session::destroy_object(CK_OBJECT_HANDLE object) const {
  return KP11_CALL(*m_module, C_DestroyObject, m_handle, object);
}

namespace {

Status checked(CK_RV got, CK_RV* rv, const char* function) {
  if (rv != nullptr)
    *rv = got;
  if (got != CKR_OK)
    return tl::unexpected(pkcs11_error(got, function));
  return {};
}

}  // namespace

Result<CK_OBJECT_HANDLE> Session::generate_key(const CK_MECHANISM& mech, const Template& t,
                                               CK_RV* rv) const {
  CkTemplate ck = t.lower();
  CK_MECHANISM m = mech;
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  KEYPORT_TRY(
      checked(KP11_CALL_RV(*m_module, C_GenerateKey, m_handle, &m, ck.data(), ck.size(), &h), rv,
              "C_GenerateKey"));
  return h;
}

Result<std::pair<CK_OBJECT_HANDLE, CK_OBJECT_HANDLE>> Session::generate_key_pair(
    const CK_MECHANISM& mech, const Template& public_template, const Template& private_template,
    CK_RV* rv) const {
  CkTemplate pub = public_template.lower();
  CkTemplate priv = private_template.lower();
  CK_MECHANISM m = mech;
  CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE hpriv = CK_INVALID_HANDLE;
  KEYPORT_TRY(checked(KP11_CALL_RV(*m_module, C_GenerateKeyPair, m_handle, &m, pub.data(),
                                   pub.size(), priv.data(), priv.size(), &hpub, &hpriv),
                      rv, "C_GenerateKeyPair"));
  return std::make_pair(hpub, hpriv);
}

Result<Bytes> Session::wrap_key(const CK_MECHANISM& mech, CK_OBJECT_HANDLE wrapping,
                                CK_OBJECT_HANDLE key, std::size_t guess, CK_RV* rv) const {
  CK_MECHANISM m = mech;
  Bytes out(guess);
  for (int attempt = 0; attempt < 2; ++attempt) {
    CK_ULONG len = out.size();
    CK_RV got = KP11_CALL_RV(*m_module, C_WrapKey, m_handle, &m, wrapping, key, out.data(), &len);
    if (got == CKR_BUFFER_TOO_SMALL && attempt == 0 && len > out.size()) {
      out.resize(len);
      continue;
    }
    KEYPORT_TRY(checked(got, rv, "C_WrapKey"));
    out.resize(len);
    return out;
  }
  return make_error(ErrorCode::kPkcs11, "C_WrapKey kept asking for a larger buffer");
}

Result<CK_OBJECT_HANDLE> Session::unwrap_key(const CK_MECHANISM& mech, CK_OBJECT_HANDLE unwrapping,
                                             std::span<const std::uint8_t> wrapped,
                                             const Template& t, CK_RV* rv) const {
  CkTemplate ck = t.lower();
  CK_MECHANISM m = mech;
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  KEYPORT_TRY(checked(KP11_CALL_RV(*m_module, C_UnwrapKey, m_handle, &m, unwrapping,
                                   const_cast<CK_BYTE*>(wrapped.data()),
                                   static_cast<CK_ULONG>(wrapped.size()), ck.data(), ck.size(), &h),
                      rv, "C_UnwrapKey"));
  return h;
}

Result<Bytes> Session::generate_random(std::size_t n) const {
  Bytes out(n);
  KEYPORT_TRY(KP11_CALL(*m_module, C_GenerateRandom, m_handle, out.data(),
                        static_cast<CK_ULONG>(out.size())));
  return out;
}

Result<Bytes> Session::sign(const CK_MECHANISM& mech, CK_OBJECT_HANDLE key,
                            std::span<const std::uint8_t> data) const {
  CK_MECHANISM m = mech;
  KEYPORT_TRY(KP11_CALL(*m_module, C_SignInit, m_handle, &m, key));
  Bytes sig(1024);
  for (int attempt = 0; attempt < 2; ++attempt) {
    CK_ULONG len = sig.size();
    CK_RV rv = KP11_CALL_RV(*m_module, C_Sign, m_handle, const_cast<CK_BYTE*>(data.data()),
                            static_cast<CK_ULONG>(data.size()), sig.data(), &len);
    if (rv == CKR_BUFFER_TOO_SMALL && attempt == 0 && len > sig.size()) {
      // The operation is still active after CKR_BUFFER_TOO_SMALL (PKCS#11 §5.2).
      sig.resize(len);
      continue;
    }
    if (rv != CKR_OK)
      return tl::unexpected(pkcs11_error(rv, "C_Sign"));
    sig.resize(len);
    return sig;
  }
  return make_error(ErrorCode::kPkcs11, "C_Sign kept asking for a larger buffer");
}

Result<Bytes> Session::encrypt(const CK_MECHANISM& mech, CK_OBJECT_HANDLE key,
                               std::span<const std::uint8_t> plaintext, std::size_t max_out,
                               CK_RV* rv) const {
  CK_MECHANISM m = mech;
  KEYPORT_TRY(
      checked(KP11_CALL_RV(*m_module, C_EncryptInit, m_handle, &m, key), rv, "C_EncryptInit"));
  Bytes out(max_out);
  CK_ULONG len = static_cast<CK_ULONG>(out.size());
  KEYPORT_TRY(
      checked(KP11_CALL_RV(*m_module, C_Encrypt, m_handle, const_cast<CK_BYTE*>(plaintext.data()),
                           static_cast<CK_ULONG>(plaintext.size()), out.data(), &len),
              rv, "C_Encrypt"));
  out.resize(len);
  return out;
}

Result<SecretBytes> Session::decrypt(const CK_MECHANISM& mech, CK_OBJECT_HANDLE key,
                                     std::span<const std::uint8_t> ciphertext, std::size_t max_out,
                                     CK_RV* init_rv, CK_RV* rv) const {
  CK_MECHANISM m = mech;
  KEYPORT_TRY(
      checked(KP11_CALL_RV(*m_module, C_DecryptInit, m_handle, &m, key), init_rv, "C_DecryptInit"));
  SecretBytes out(max_out);
  CK_ULONG len = static_cast<CK_ULONG>(out.size());
  KEYPORT_TRY(
      checked(KP11_CALL_RV(*m_module, C_Decrypt, m_handle, const_cast<CK_BYTE*>(ciphertext.data()),
                           static_cast<CK_ULONG>(ciphertext.size()),
                           out.reveal_mut(SecretAccess::unsafe()).data(), &len),
              rv, "C_Decrypt"));
  out.truncate(len);
  return out;
}

Status Session::init_pin(const SecretBytes& pin) const {
  auto p = pin.reveal(SecretAccess::unsafe());
  return KP11_CALL(*m_module, C_InitPIN, m_handle, const_cast<CK_UTF8CHAR*>(p.data()),
                   static_cast<CK_ULONG>(p.size()));
}

Result<SecretBytes> Session::read_plain_session_key(CK_OBJECT_HANDLE object) const {
  // Checked first: a session object (CKA_TOKEN false), a secret key, not sensitive.
  KEYPORT_ASSIGN_OR_RETURN(auto check,
                           get_attributes(object, {CKA_CLASS, CKA_TOKEN, CKA_SENSITIVE}));
  const auto is = [&](std::size_t i, const Bytes& want) { return check[i] && *check[i] == want; };
  CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
  const Bytes secret_class(reinterpret_cast<const std::uint8_t*>(&secret),
                           reinterpret_cast<const std::uint8_t*>(&secret) + sizeof secret);
  const Bytes no{CK_FALSE};
  if (!is(0, secret_class) || !is(1, no) || !is(2, no)) {
    return make_error(ErrorCode::kInternal,
                      "refusing to read CKA_VALUE: only a non-sensitive session key keyport made "
                      "may be read");
  }
  CK_ATTRIBUTE a{CKA_VALUE, nullptr, 0};
  CK_RV rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, &a, CK_ULONG{1});
  if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 4096)
    return tl::unexpected(
        pkcs11_error(rv == CKR_OK ? CKR_ATTRIBUTE_SENSITIVE : rv, "C_GetAttributeValue"));
  SecretBytes value(static_cast<std::size_t>(a.ulValueLen));
  auto bytes = value.reveal_mut(SecretAccess::unsafe());
  a.pValue = bytes.data();
  rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, &a, CK_ULONG{1});
  if (rv != CKR_OK)
    return tl::unexpected(pkcs11_error(rv, "C_GetAttributeValue"));
  value.truncate(static_cast<std::size_t>(a.ulValueLen));
  return value;
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

CK_ULONG attribute_value_size(CK_ATTRIBUTE_TYPE type) {
  switch (type) {
    // CK_ULONG values (CK_OBJECT_CLASS, CK_KEY_TYPE, CK_MECHANISM_TYPE, ...).
    case CKA_CLASS:
    case CKA_KEY_TYPE:
    case CKA_CERTIFICATE_TYPE:
    case CKA_CERTIFICATE_CATEGORY:
    case CKA_JAVA_MIDP_SECURITY_DOMAIN:
    case CKA_MODULUS_BITS:
    case CKA_PRIME_BITS:
    case CKA_SUB_PRIME_BITS:
    case CKA_VALUE_BITS:
    case CKA_VALUE_LEN:
    case CKA_KEY_GEN_MECHANISM:
    case CKA_HW_FEATURE_TYPE:
    case CKA_MECHANISM_TYPE:
    case CKA_NAME_HASH_ALGORITHM:
      return sizeof(CK_ULONG);
    // CK_BBOOL values.
    case CKA_TOKEN:
    case CKA_PRIVATE:
    case CKA_MODIFIABLE:
    case CKA_COPYABLE:
    case CKA_DESTROYABLE:
    case CKA_TRUSTED:
    case CKA_LOCAL:
    case CKA_SENSITIVE:
    case CKA_ALWAYS_SENSITIVE:
    case CKA_EXTRACTABLE:
    case CKA_NEVER_EXTRACTABLE:
    case CKA_ENCRYPT:
    case CKA_DECRYPT:
    case CKA_WRAP:
    case CKA_UNWRAP:
    case CKA_SIGN:
    case CKA_SIGN_RECOVER:
    case CKA_VERIFY:
    case CKA_VERIFY_RECOVER:
    case CKA_DERIVE:
    case CKA_WRAP_WITH_TRUSTED:
    case CKA_ALWAYS_AUTHENTICATE:
      return sizeof(CK_BBOOL);
    default:
      return 0;
  }
}

Result<std::vector<std::optional<Bytes>>> Session::get_attributes(
    CK_OBJECT_HANDLE object, const std::vector<CK_ATTRIBUTE_TYPE>& types) const {
  for (CK_ATTRIBUTE_TYPE t : types) {
    if (is_secret_attribute(t)) {
      return make_error(ErrorCode::kInternal, "refusing to read " + attribute_name(t) +
                                                  ": keyport never reads secret attributes");
    }
  }
  // One call: fixed-size attributes get exactly their size (NSS softoken answers a CK_ULONG
  // attribute asked with any other length as unavailable), the others room for any public value
  // keyport reads (an RSA-4096 modulus is 512 bytes). A token object's every C_GetAttributeValue
  // costs SoftHSM a refresh from disk, so the usual size-query-then-read pair would double the cost
  // of listing a large token.
  constexpr CK_ULONG kRoom = 1024;
  std::vector<std::optional<Bytes>> out(types.size());
  std::vector<CK_ATTRIBUTE> attrs;
  attrs.reserve(types.size());
  for (std::size_t i = 0; i < types.size(); ++i) {
    const CK_ULONG fixed = attribute_value_size(types[i]);
    out[i].emplace(fixed != 0 ? fixed : kRoom);
    attrs.push_back({types[i], out[i]->data(), static_cast<CK_ULONG>(out[i]->size())});
  }
  CK_RV rv = KP11_CALL_RV(*m_module, C_GetAttributeValue, m_handle, object, attrs.data(),
                          static_cast<CK_ULONG>(attrs.size()));
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
      rv != CKR_BUFFER_TOO_SMALL) {
    return tl::unexpected(pkcs11_error(rv, "C_GetAttributeValue"));
  }
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    if (attrs[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
      out[i].reset();
    } else {
      out[i]->resize(attrs[i].ulValueLen);
    }
  }
  if (rv == CKR_OK)
    return out;
  // Some value did not come back. PKCS#11 §5.7 says the others are filled in and only the missing
  // ones marked unavailable, but modules differ (a module may refuse a batch as a whole), and
  // "unavailable in a batch" is not "absent": each missing one is asked for alone, where the
  // module's answer is about that attribute only (sensitive or not on this object: nullopt).
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    if (!out[i]) {
      KEYPORT_ASSIGN_OR_RETURN(out[i], try_get_bytes(object, types[i]));
    }
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
