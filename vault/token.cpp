// SPDX-License-Identifier: Apache-2.0
#include "vault/token.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "byok/public_key.h"
#include "core/log.h"
#include "core/random.h"
#include "pkcs11/keygen.h"
#include "pkcs11/names.h"
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
  GeneratedKey out;
  const p11::Template priv = key_object_template(k, label, id);
  if (k.spec.family == KeyFamily::kAes) {
    CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
    KEYPORT_ASSIGN_OR_RETURN(out.handle, s.generate_key(mech, priv));
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
  KEYPORT_ASSIGN_OR_RETURN(auto pair, s.generate_key_pair(mech, pub_t, priv));
  const CK_OBJECT_HANDLE hpub = pair.first;
  out.handle = pair.second;
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
  return s.sign(mech, key, data);
}

Result<SecretBytes> token_decrypt(const p11::Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM& mech,
                                  std::span<const std::uint8_t> ciphertext, std::size_t max_out) {
  CK_RV init_rv = CKR_OK;
  auto out = s.decrypt(mech, key, ciphertext, max_out, &init_rv);
  if (out)
    return out;
  if (init_rv == CKR_ARGUMENTS_BAD || init_rv == CKR_MECHANISM_PARAM_INVALID ||
      init_rv == CKR_MECHANISM_INVALID) {
    return make_error(ErrorCode::kUnsupported, "the token refuses this decryption mechanism");
  }
  if (init_rv != CKR_OK) {
    return tl::unexpected(out.error());
  }
  return integrity_error();  // C_Decrypt: whatever the cause, one answer
}

Result<Bytes> token_encrypt(const p11::Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM& mech,
                            std::span<const std::uint8_t> plaintext, std::size_t max_out) {
  CK_RV rv = CKR_OK;
  auto out = s.encrypt(mech, key, plaintext, max_out, &rv);
  if (!out && (rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_PARAM_INVALID ||
               rv == CKR_MECHANISM_INVALID)) {
    return make_error(ErrorCode::kUnsupported, "the token refuses this encryption mechanism");
  }
  return out;
}

Result<Bytes> token_aes_kwp_by_blocks(const p11::Session& s, CK_OBJECT_HANDLE aes_key,
                                      const SecretBytes& key_bytes) {
  // RFC 5649 §4.1: AIV = A65959A6 || 32-bit length; the data zero-padded to n 64-bit blocks.
  const std::size_t len = key_bytes.size();
  const std::size_t n = (len + 7) / 8;
  std::uint8_t a[8] = {0xA6,
                       0x59,
                       0x59,
                       0xA6,
                       static_cast<std::uint8_t>(len >> 24),
                       static_cast<std::uint8_t>(len >> 16),
                       static_cast<std::uint8_t>(len >> 8),
                       static_cast<std::uint8_t>(len)};
  SecretBytes r(n * 8);  // R[1..n], zero-padded
  auto rv = r.reveal_mut(SecretAccess::unsafe());
  std::copy_n(key_bytes.reveal(SecretAccess::unsafe()).begin(), len, rv.begin());
  CK_MECHANISM ecb{CKM_AES_ECB, nullptr, 0};
  SecretBytes block(16);
  auto b = block.reveal_mut(SecretAccess::unsafe());
  const auto encrypt_block = [&]() -> Status {
    KEYPORT_ASSIGN_OR_RETURN(Bytes out, s.encrypt(ecb, aes_key, b, 16));
    if (out.size() != 16) {
      return make_error(ErrorCode::kPkcs11, "CKM_AES_ECB returned " + std::to_string(out.size()) +
                                                " bytes for a block");
    }
    std::copy(out.begin(), out.end(), b.begin());
    secure_wipe(out.data(), out.size());
    return {};
  };
  if (n == 1) {  // one block: C = AES(K, AIV || P)
    std::copy_n(a, 8, b.begin());
    std::copy_n(rv.begin(), 8, b.begin() + 8);
    KEYPORT_TRY(encrypt_block());
    return Bytes(b.begin(), b.end());
  }
  // RFC 3394 §2.2.1 (W) with A = AIV.
  for (std::size_t j = 0; j < 6; ++j) {
    for (std::size_t i = 0; i < n; ++i) {
      std::copy_n(a, 8, b.begin());
      std::copy_n(rv.begin() + static_cast<std::ptrdiff_t>(i * 8), 8, b.begin() + 8);
      KEYPORT_TRY(encrypt_block());
      const std::uint64_t t = n * j + i + 1;
      for (int k = 0; k < 8; ++k) {
        a[k] = static_cast<std::uint8_t>(b[k] ^ static_cast<std::uint8_t>(t >> (56 - 8 * k)));
      }
      std::copy_n(b.begin() + 8, 8, rv.begin() + static_cast<std::ptrdiff_t>(i * 8));
    }
  }
  Bytes out(a, a + 8);
  out.insert(out.end(), rv.begin(), rv.end());
  return out;
}

Result<ReceivingKey> make_receiving_key(const p11::Session& s, const std::string& label,
                                        unsigned bits, bool unwrap) {
  p11::Template stale_t;
  stale_t.token(true).object_class(CKO_PRIVATE_KEY).label(label);
  KEYPORT_ASSIGN_OR_RETURN(auto stale, s.find_objects(stale_t, 16));
  for (CK_OBJECT_HANDLE h : stale) {
    KEYPORT_TRY(s.destroy_object(h));
  }
  static constexpr std::uint8_t kExponent[] = {0x01, 0x00, 0x01};
  p11::Template pub_t;
  pub_t.object_class(CKO_PUBLIC_KEY)
      .key_type(CKK_RSA)
      .token(false)
      .private_object(false)
      .modulus_bits(bits)
      .public_exponent(kExponent)
      .encrypt(true)
      .wrap(unwrap)
      .verify(false);
  p11::Template priv_t;
  priv_t.object_class(CKO_PRIVATE_KEY)
      .key_type(CKK_RSA)
      .token(true)
      .private_object(true)
      .sensitive(true)
      .extractable(false)
      .label(label)
      .unwrap(unwrap)
      .decrypt(!unwrap)
      .sign(false)
      .derive(false);
  CK_MECHANISM gen{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  KEYPORT_ASSIGN_OR_RETURN(auto pair, s.generate_key_pair(gen, pub_t, priv_t));
  p11::ScopedObject public_object(s, pair.first);
  p11::ScopedObject private_object(s, pair.second);
  KEYPORT_ASSIGN_OR_RETURN(Bytes n, s.get_bytes(pair.first, CKA_MODULUS));
  KEYPORT_ASSIGN_OR_RETURN(Bytes e, s.get_bytes(pair.first, CKA_PUBLIC_EXPONENT));
  KEYPORT_ASSIGN_OR_RETURN(auto pub, byok::PublicKey::from_rsa_components(n, e));
  return ReceivingKey{std::move(private_object), std::move(pub)};
}

Result<SecretBytes> token_oaep_decrypt(const p11::Session& s, CK_OBJECT_HANDLE key, HashAlg hash,
                                       std::span<const std::uint8_t> ciphertext, std::size_t k,
                                       bool* raw) {
  const p11::ShaMechanisms m = p11::sha_mechanisms(hash_length(hash));
  CK_RSA_PKCS_OAEP_PARAMS oaep{m.hash, m.mgf, CKZ_DATA_SPECIFIED, nullptr, 0};
  CK_MECHANISM mech{CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
  auto out = token_decrypt(s, key, mech, ciphertext, k);
  if (raw != nullptr) {
    *raw = false;
  }
  if (out || out.error().code() != ErrorCode::kUnsupported) {
    return out;
  }
  CK_MECHANISM raw_rsa{CKM_RSA_X_509, nullptr, 0};
  auto em = token_decrypt(s, key, raw_rsa, ciphertext, k);
  if (raw != nullptr) {
    *raw = true;
  }
  if (!em) {
    return tl::unexpected(em.error());
  }
  return oaep_decode(hash, *em, k);
}

Result<Bytes> token_aes_kw_wrap(const p11::Session& s, CK_OBJECT_HANDLE aes_key,
                                const SecretBytes& key_bytes, bool pad) {
  if (pad && key_bytes.size() % 8 != 0) {
    return token_aes_kwp_by_blocks(s, aes_key, key_bytes);
  }
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
  CK_MECHANISM mech{pad ? CKM_AES_KEY_WRAP_PAD : CKM_AES_KEY_WRAP, nullptr, 0};
  KEYPORT_ASSIGN_OR_RETURN(Bytes out,
                           s.wrap_key(mech, aes_key, target.get(), key_bytes.size() + 16));
  KEYPORT_TRY(target.destroy());
  return out;
}

Result<SecretBytes> token_aes_kw_unwrap(const p11::Session& s, CK_OBJECT_HANDLE aes_key,
                                        std::span<const std::uint8_t> wrapped, bool pad) {
  p11::Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(CKK_GENERIC_SECRET)
      .token(false)
      .private_object(true)
      .sensitive(false)
      .extractable(true);
  CK_MECHANISM mech{pad ? CKM_AES_KEY_WRAP_PAD : CKM_AES_KEY_WRAP, nullptr, 0};
  auto h = s.unwrap_key(mech, aes_key, wrapped, t);
  if (!h) {
    return integrity_error();
  }
  p11::ScopedObject key(s, *h);
  // The session key was made non-sensitive on purpose: its value is the answer.
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes value, s.read_plain_session_key(*h));
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
