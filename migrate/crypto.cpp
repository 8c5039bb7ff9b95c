// SPDX-License-Identifier: Apache-2.0
#include "migrate/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>

#include <climits>
#include <string>

namespace keyport::migrate {
namespace {

const EVP_CIPHER* gcm_cipher(std::size_t key_len) {
  switch (key_len) {
    case 16:
      return EVP_aes_128_gcm();
    case 24:
      return EVP_aes_192_gcm();
    case 32:
      return EVP_aes_256_gcm();
    default:
      return nullptr;
  }
}

bool fits_int(std::size_t n) {
  return n <= static_cast<std::size_t>(INT_MAX);
}

bool nonce_size_ok(std::size_t n) {
  return n >= 1 && n <= kGcmMaxNonceBytes;
}

}  // namespace

Result<SecretBytes> hkdf_sha256(const SecretBytes& ikm, std::span<const std::uint8_t> salt,
                                std::span<const std::uint8_t> info, std::size_t length) {
  if (length == 0 || length > kHkdfSha256MaxOutput) {
    return make_error(ErrorCode::kInvalidArgument,
                      "HKDF-SHA256 output must be 1 to 8160 bytes, not " + std::to_string(length));
  }
  ossl::UniquePtr<EVP_KDF> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) {
    return ossl::crypto_failure("EVP_KDF_fetch(HKDF)");
  }
  ossl::UniquePtr<EVP_KDF_CTX> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) {
    return ossl::crypto_failure("EVP_KDF_CTX_new");
  }
  // OSSL_PARAM wants non-const pointers; OpenSSL does not write through them.
  auto ikm_bytes = ikm.reveal(SecretAccess::unsafe());
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  std::size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(ikm_bytes.data()), ikm_bytes.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()), salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_INFO, const_cast<std::uint8_t*>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.reveal_mut(SecretAccess::unsafe()).data(), length, params) !=
      1) {
    return ossl::crypto_failure("HKDF-SHA256");
  }
  return out;
}

Result<AesGcm> AesGcm::create(const SecretBytes& key) {
  const EVP_CIPHER* cipher = gcm_cipher(key.size());
  if (cipher == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "AES-GCM keys are 16, 24 or 32 bytes, not " + std::to_string(key.size()));
  }
  AesGcm g;
  g.m_enc.reset(EVP_CIPHER_CTX_new());
  g.m_dec.reset(EVP_CIPHER_CTX_new());
  if (!g.m_enc || !g.m_dec) {
    return ossl::crypto_failure("EVP_CIPHER_CTX_new");
  }
  const std::uint8_t* k = key.reveal(SecretAccess::unsafe()).data();
  if (EVP_EncryptInit_ex2(g.m_enc.get(), cipher, k, nullptr, nullptr) != 1 ||
      EVP_DecryptInit_ex2(g.m_dec.get(), cipher, k, nullptr, nullptr) != 1) {
    return ossl::crypto_failure("AES-GCM key setup");
  }
  return g;
}

Status AesGcm::seal(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                    std::span<const std::uint8_t> plaintext, std::span<std::uint8_t> out) {
  if (!nonce_size_ok(nonce.size())) {
    return make_error(ErrorCode::kInvalidArgument,
                      "AES-GCM nonces are 1 to 128 bytes, not " + std::to_string(nonce.size()));
  }
  if (out.size() != plaintext.size() + kGcmTagBytes || !fits_int(plaintext.size()) ||
      !fits_int(aad.size())) {
    return make_error(ErrorCode::kInvalidArgument, "AES-GCM seal: bad buffer sizes");
  }
  EVP_CIPHER_CTX* c = m_enc.get();
  int len = 0;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) !=
          1 ||
      EVP_EncryptInit_ex2(c, nullptr, nullptr, nonce.data(), nullptr) != 1) {
    return ossl::crypto_failure("AES-GCM nonce");
  }
  if (!aad.empty() &&
      EVP_EncryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return ossl::crypto_failure("AES-GCM AAD");
  }
  int total = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(c, out.data(), &len, plaintext.data(),
                          static_cast<int>(plaintext.size())) != 1) {
      return ossl::crypto_failure("AES-GCM encrypt");
    }
    total = len;
  }
  if (EVP_EncryptFinal_ex(c, out.data() + total, &len) != 1) {
    return ossl::crypto_failure("AES-GCM final");
  }
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagBytes),
                          out.data() + plaintext.size()) != 1) {
    return ossl::crypto_failure("AES-GCM tag");
  }
  return {};
}

Status AesGcm::open(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                    std::span<const std::uint8_t> sealed, std::span<std::uint8_t> out) {
  if (!nonce_size_ok(nonce.size()) || sealed.size() < kGcmTagBytes ||
      out.size() != sealed.size() - kGcmTagBytes || !fits_int(sealed.size()) ||
      !fits_int(aad.size())) {
    secure_wipe(out.data(), out.size());
    return integrity_error();
  }
  EVP_CIPHER_CTX* c = m_dec.get();
  const std::size_t ct_len = sealed.size() - kGcmTagBytes;
  int len = 0;
  bool ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                                nullptr) == 1 &&
            EVP_DecryptInit_ex2(c, nullptr, nullptr, nonce.data(), nullptr) == 1;
  if (ok && !aad.empty()) {
    ok = EVP_DecryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1;
  }
  if (ok && ct_len > 0) {
    ok = EVP_DecryptUpdate(c, out.data(), &len, sealed.data(), static_cast<int>(ct_len)) == 1;
  }
  if (ok) {
    ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagBytes),
                             const_cast<std::uint8_t*>(sealed.data() + ct_len)) == 1;
  }
  std::uint8_t final_block[16];
  if (ok) {
    ok = EVP_DecryptFinal_ex(c, final_block, &len) == 1;
  }
  if (!ok) {
    ossl::drain_errors();
    secure_wipe(out.data(), out.size());
    return integrity_error();
  }
  return {};
}

Result<Bytes> AesGcm::seal(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                           std::span<const std::uint8_t> plaintext) {
  Bytes out(plaintext.size() + kGcmTagBytes);
  KEYPORT_TRY(seal(nonce, aad, plaintext, out));
  return out;
}

Result<Bytes> AesGcm::open(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                           std::span<const std::uint8_t> sealed) {
  if (sealed.size() < kGcmTagBytes) {
    return integrity_error();
  }
  Bytes out(sealed.size() - kGcmTagBytes);
  KEYPORT_TRY(open(nonce, aad, sealed, out));
  return out;
}

Result<Bytes> keyed_fingerprint(const SecretBytes& fingerprint_key, const SecretBytes& key) {
  if (fingerprint_key.size() < 16) {
    return make_error(ErrorCode::kInvalidArgument, "fingerprint key too short");
  }
  ossl::UniquePtr<EVP_MAC> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) {
    return ossl::crypto_failure("EVP_MAC_fetch(HMAC)");
  }
  ossl::UniquePtr<EVP_MAC_CTX> ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) {
    return ossl::crypto_failure("EVP_MAC_CTX_new");
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                          OSSL_PARAM_construct_end()};
  auto fk = fingerprint_key.reveal(SecretAccess::unsafe());
  auto k = key.reveal(SecretAccess::unsafe());
  Bytes out(32);
  std::size_t out_len = 0;
  if (EVP_MAC_init(ctx.get(), fk.data(), fk.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), k.data(), k.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &out_len, out.size()) != 1) {
    return ossl::crypto_failure("HMAC-SHA256");
  }
  out.resize(out_len);
  return out;
}

bool ct_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<Bytes> aes_check_value(const SecretBytes& key) {
  const EVP_CIPHER* cipher = key.size() == 16   ? EVP_aes_128_ecb()
                             : key.size() == 24 ? EVP_aes_192_ecb()
                             : key.size() == 32 ? EVP_aes_256_ecb()
                                                : nullptr;
  if (cipher == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "check values need an AES key");
  }
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  std::uint8_t zero[16] = {};
  Bytes out(32);
  int n1 = 0, n2 = 0;
  if (!ctx ||
      EVP_EncryptInit_ex2(ctx.get(), cipher, key.reveal(SecretAccess::unsafe()).data(), nullptr,
                          nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &n1, zero, 16) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1) {
    return ossl::crypto_failure("AES-ECB check value");
  }
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

}  // namespace keyport::migrate
