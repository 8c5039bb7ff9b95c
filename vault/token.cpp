// SPDX-License-Identifier: Apache-2.0
#include "vault/token.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "byok/public_key.h"
#include "core/log.h"
#include "core/random.h"
#include "pkcs11/keygen.h"
#include "vault/ec_recover.h"
#include "vault/errors.h"

namespace keyport::vault {
namespace {

constexpr std::uint8_t kF4[] = {0x01, 0x00, 0x01};

CK_OBJECT_CLASS class_of(KeyFamily f) {
  return f == KeyFamily::kAes ? CKO_SECRET_KEY : CKO_PRIVATE_KEY;
}

CK_KEY_TYPE key_type_of(KeyFamily f) {
  switch (f) {
    case KeyFamily::kRsa:
      return CKK_RSA;
    case KeyFamily::kEc:
      return CKK_EC;
    case KeyFamily::kAes:
      break;
  }
  return CKK_AES;
}

}  // namespace

SessionPool::SessionPool(std::shared_ptr<const p11::Module> module, CK_SLOT_ID slot,
                         SecretBytes pin, std::size_t max_sessions)
    : m_module(std::move(module)),
      m_slot(slot),
      m_pin(std::move(pin)),
      m_max(max_sessions == 0 ? 1 : max_sessions) {}

SessionPool::~SessionPool() {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_idle.clear();
}

SessionPool::Lease::~Lease() {
  if (m_pool != nullptr && m_session) {
    m_pool->give_back(std::move(m_session));
  }
}

Status SessionPool::close_all() {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_idle.size() != m_open) {
    return make_error(ErrorCode::kInternal,
                      std::to_string(m_open - m_idle.size()) + " PKCS#11 session(s) still in use");
  }
  m_idle.clear();
  m_open = 0;
  return {};
}

void SessionPool::retarget(CK_SLOT_ID slot) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_slot = slot;
}

Result<SessionPool::Lease> SessionPool::acquire() {
  m_acquisitions.fetch_add(1, std::memory_order_relaxed);
  std::unique_ptr<p11::Session> session;
  {
    std::unique_lock<std::mutex> lock(m_mutex);
    m_cv.wait(lock, [this] { return !m_idle.empty() || m_open < m_max; });
    if (!m_idle.empty()) {
      session = std::move(m_idle.back());
      m_idle.pop_back();
    } else {
      ++m_open;
    }
  }
  if (session) {
    // Cheap when still logged in (CKR_USER_ALREADY_LOGGED_IN); repairs a logout by someone else.
    auto st = session->login(m_pin);
    if (st) {
      return Lease(this, std::move(session));
    }
    log::warn("vault: dropping a PKCS#11 session that cannot log in: " + st.error().describe());
    session.reset();
  }
  CK_SLOT_ID slot = 0;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    slot = m_slot;
  }
  auto opened = p11::Session::open(m_module, slot, true);
  Status st = opened ? opened->login(m_pin) : Status(tl::unexpected(opened.error()));
  if (!st) {
    std::lock_guard<std::mutex> lock(m_mutex);
    --m_open;
    m_cv.notify_one();
    return tl::unexpected(st.error());
  }
  return Lease(this, std::make_unique<p11::Session>(std::move(*opened)));
}

void SessionPool::give_back(std::unique_ptr<p11::Session> session) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_idle.push_back(std::move(session));
  m_cv.notify_one();
}

p11::Template key_object_template(const KeyObjectSpec& k, std::string_view label,
                                  std::span<const std::uint8_t> id, bool with_size) {
  p11::Template t;
  t.object_class(class_of(k.spec.family))
      .key_type(key_type_of(k.spec.family))
      .token(true)
      .private_object(true)
      .sensitive(true)
      .extractable(k.exportable)
      .label(label)
      .id(id)
      .derive(false);
  switch (k.spec.family) {
    case KeyFamily::kRsa:
      if (k.kek) {
        t.unwrap(true).decrypt(false).sign(false);
      } else {
        t.unwrap(false).decrypt(true).sign(true);
      }
      break;
    case KeyFamily::kEc:
      t.sign(true);
      break;
    case KeyFamily::kAes:
      t.encrypt(true).decrypt(true).wrap(true).unwrap(true).sign(false).verify(false);
      if (with_size) {
        t.value_len(k.spec.bits / 8);
      }
      break;
  }
  return t;
}

Result<Json> rsa_public_jwk(std::span<const std::uint8_t> n, std::span<const std::uint8_t> e) {
  KEYPORT_ASSIGN_OR_RETURN(auto pub, byok::PublicKey::from_rsa_components(n, e));
  Json j = pub.to_jwk();
  j.erase("kty");
  return j;
}

Result<Json> ec_public_jwk(Curve curve, std::span<const std::uint8_t> point) {
  KEYPORT_ASSIGN_OR_RETURN(auto pub, byok::PublicKey::from_ec_point(curve, point));
  Json j = pub.to_jwk();
  j.erase("kty");
  return j;
}

Result<GeneratedKey> generate_key(const p11::Session& s, const KeyObjectSpec& k,
                                  std::string_view label, std::span<const std::uint8_t> id) {
  const p11::Module& m = s.module();
  GeneratedKey out;
  p11::CkTemplate priv = key_object_template(k, label, id).lower();
  if (k.spec.family == KeyFamily::kAes) {
    CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
    KEYPORT_TRY(
        KP11_CALL(m, C_GenerateKey, s.handle(), &mech, priv.data(), priv.size(), &out.handle));
    return out;
  }
  p11::Template pub_t;
  pub_t.object_class(CKO_PUBLIC_KEY).token(false).private_object(false).verify(true);
  CK_MECHANISM mech{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  if (k.spec.family == KeyFamily::kRsa) {
    pub_t.key_type(CKK_RSA).modulus_bits(k.spec.bits).public_exponent(kF4).encrypt(true);
  } else {
    mech.mechanism = CKM_EC_KEY_PAIR_GEN;
    pub_t.key_type(CKK_EC).ec_params(curve_oid_der(*k.spec.curve));
  }
  p11::CkTemplate pub = pub_t.lower();
  CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE;
  KEYPORT_TRY(KP11_CALL(m, C_GenerateKeyPair, s.handle(), &mech, pub.data(), pub.size(),
                        priv.data(), priv.size(), &hpub, &out.handle));
  p11::ScopedObject public_object(s, hpub);
  Result<Json> jwk = [&]() -> Result<Json> {
    if (k.spec.family == KeyFamily::kRsa) {
      KEYPORT_ASSIGN_OR_RETURN(Bytes n, s.get_bytes(hpub, CKA_MODULUS));
      KEYPORT_ASSIGN_OR_RETURN(Bytes e, s.get_bytes(hpub, CKA_PUBLIC_EXPONENT));
      return rsa_public_jwk(n, e);
    }
    KEYPORT_ASSIGN_OR_RETURN(Bytes attr, s.get_bytes(hpub, CKA_EC_POINT));
    KEYPORT_ASSIGN_OR_RETURN(Bytes point, p11::ec_point_from_attribute(attr));
    return ec_public_jwk(*k.spec.curve, point);
  }();
  if (!jwk) {
    (void)s.destroy_object(out.handle);
    return tl::unexpected(jwk.error());
  }
  out.public_jwk = std::move(*jwk);
  return out;
}

Result<std::vector<CK_OBJECT_HANDLE>> find_by_id(const p11::Session& s,
                                                 std::span<const std::uint8_t> id) {
  p11::Template t;
  t.token(true).id(id);
  return s.find_objects(t);
}

Result<CK_OBJECT_HANDLE> find_key_object(const p11::Session& s, std::span<const std::uint8_t> id,
                                         KeyFamily family) {
  p11::Template t;
  t.token(true).object_class(class_of(family)).id(id);
  KEYPORT_ASSIGN_OR_RETURN(auto found, s.find_objects(t, 2));
  if (found.size() != 1) {
    return make_error(ErrorCode::kNotFound,
                      found.empty() ? "the key's token object is missing from the vault token"
                                    : "several token objects carry the key's CKA_ID");
  }
  return found.front();
}

namespace {
std::string id_key(std::span<const std::uint8_t> id) {
  return std::string(reinterpret_cast<const char*>(id.data()), id.size());
}
}  // namespace

Result<CK_OBJECT_HANDLE> KeyObjectCache::find(const p11::Session& s,
                                              std::span<const std::uint8_t> id, KeyFamily family) {
  const std::string key = id_key(id);
  std::optional<CK_OBJECT_HANDLE> cached;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (auto it = m_handles.find(key); it != m_handles.end()) {
      cached = it->second;
    }
  }
  if (cached) {
    auto attrs = s.get_attributes(*cached, {CKA_ID, CKA_CLASS});
    if (attrs && (*attrs)[0] && (*attrs)[1] && (*attrs)[1]->size() == sizeof(CK_OBJECT_CLASS)) {
      CK_OBJECT_CLASS cls = 0;
      std::memcpy(&cls, (*attrs)[1]->data(), sizeof cls);
      const Bytes& got = *(*attrs)[0];
      if (cls == class_of(family) && got.size() == id.size() &&
          std::equal(got.begin(), got.end(), id.begin())) {
        return *cached;
      }
    }
    forget(id);
  }
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE h, find_key_object(s, id, family));
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_handles.size() >= m_capacity) {
    m_handles.clear();  // a vault of more keys than that pays for the searches, with bounded memory
  }
  m_handles[key] = h;
  return h;
}

void KeyObjectCache::forget(std::span<const std::uint8_t> id) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_handles.erase(id_key(id));
}

void KeyObjectCache::clear() {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_handles.clear();
}

std::size_t KeyObjectCache::size() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_handles.size();
}

Result<std::size_t> destroy_by_id(const p11::Session& s, std::span<const std::uint8_t> id) {
  KEYPORT_ASSIGN_OR_RETURN(auto found, find_by_id(s, id));
  for (CK_OBJECT_HANDLE h : found) {
    KEYPORT_TRY(s.destroy_object(h));
  }
  return found.size();
}

Status check_key_object(const p11::Session& s, CK_OBJECT_HANDLE h, bool exportable) {
  KEYPORT_ASSIGN_OR_RETURN(bool sensitive, s.get_bool(h, CKA_SENSITIVE));
  KEYPORT_ASSIGN_OR_RETURN(bool extractable, s.get_bool(h, CKA_EXTRACTABLE));
  if (!sensitive) {
    return make_error(ErrorCode::kPkcs11, "the token did not honour CKA_SENSITIVE=TRUE");
  }
  if (extractable != exportable) {
    return make_error(ErrorCode::kPkcs11, std::string("the token did not honour CKA_EXTRACTABLE=") +
                                              (exportable ? "TRUE" : "FALSE"));
  }
  return {};
}

Result<Bytes> token_sign(const p11::Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM& mech,
                         std::span<const std::uint8_t> data) {
  const p11::Module& m = s.module();
  KEYPORT_TRY(KP11_CALL(m, C_SignInit, s.handle(), &mech, key));
  Bytes sig(1024);
  CK_ULONG len = sig.size();
  KEYPORT_TRY(KP11_CALL(m, C_Sign, s.handle(), const_cast<CK_BYTE*>(data.data()),
                        static_cast<CK_ULONG>(data.size()), sig.data(), &len));
  sig.resize(len);
  return sig;
}

Result<SecretBytes> token_decrypt(const p11::Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM& mech,
                                  std::span<const std::uint8_t> ciphertext, std::size_t max_out) {
  const p11::Module& m = s.module();
  CK_RV rv = KP11_CALL_RV(m, C_DecryptInit, s.handle(), &mech, key);
  if (rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_MECHANISM_INVALID) {
    return make_error(ErrorCode::kUnsupported, "the token refuses this decryption mechanism");
  }
  if (rv != CKR_OK) {
    return tl::unexpected(p11::pkcs11_error(rv, "C_DecryptInit"));
  }
  SecretBytes out(max_out);
  CK_ULONG len = static_cast<CK_ULONG>(out.size());
  rv = KP11_CALL_RV(m, C_Decrypt, s.handle(), const_cast<CK_BYTE*>(ciphertext.data()),
                    static_cast<CK_ULONG>(ciphertext.size()),
                    out.reveal_mut(SecretAccess::unsafe()).data(), &len);
  if (rv != CKR_OK) {
    return integrity_error();
  }
  out.truncate(len);
  return out;
}

Result<Bytes> token_aes_kw_wrap(const p11::Session& s, CK_OBJECT_HANDLE aes_key,
                                const SecretBytes& key_bytes) {
  p11::Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(CKK_GENERIC_SECRET)
      .token(false)
      .private_object(true)
      .sensitive(false)
      .extractable(true)
      .set_secret(CKA_VALUE, key_bytes.clone());
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE h, s.create_object(t));
  p11::ScopedObject target(s, h);
  CK_MECHANISM mech{CKM_AES_KEY_WRAP, nullptr, 0};
  Bytes out(key_bytes.size() + 16);
  CK_ULONG len = out.size();
  KEYPORT_TRY(
      KP11_CALL(s.module(), C_WrapKey, s.handle(), &mech, aes_key, target.get(), out.data(), &len));
  out.resize(len);
  KEYPORT_TRY(target.destroy());
  return out;
}

Result<SecretBytes> token_aes_kw_unwrap(const p11::Session& s, CK_OBJECT_HANDLE aes_key,
                                        std::span<const std::uint8_t> wrapped) {
  const p11::Module& m = s.module();
  p11::Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(CKK_GENERIC_SECRET)
      .token(false)
      .private_object(true)
      .sensitive(false)
      .extractable(true);
  p11::CkTemplate ck = t.lower();
  CK_MECHANISM mech{CKM_AES_KEY_WRAP, nullptr, 0};
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  CK_RV rv =
      KP11_CALL_RV(m, C_UnwrapKey, s.handle(), &mech, aes_key, const_cast<CK_BYTE*>(wrapped.data()),
                   static_cast<CK_ULONG>(wrapped.size()), ck.data(), ck.size(), &h);
  if (rv != CKR_OK) {
    return integrity_error();
  }
  p11::ScopedObject key(s, h);
  // The session key was made non-sensitive on purpose: its value is the answer.
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes value, s.read_plain_session_key(h));
  KEYPORT_TRY(key.destroy());
  return value;
}

Result<Bytes> ec_public_point_by_signing(const p11::Session& s, CK_OBJECT_HANDLE key, Curve curve) {
  // A digest as wide as the curve's hash (SHA-256/384/512): nothing is truncated but P-521's.
  const std::size_t digest_len = curve == Curve::kP384 ? 48 : (curve == Curve::kP521 ? 64 : 32);
  Bytes d1 = random_bytes(digest_len);
  Bytes d2 = random_bytes(digest_len);
  CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
  KEYPORT_ASSIGN_OR_RETURN(Bytes s1, token_sign(s, key, mech, d1));
  KEYPORT_ASSIGN_OR_RETURN(Bytes s2, token_sign(s, key, mech, d2));
  return recover_ecdsa_public_key(curve, d1, s1, d2, s2);
}

}  // namespace keyport::vault
