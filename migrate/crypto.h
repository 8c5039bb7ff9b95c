// SPDX-License-Identifier: Apache-2.0
// The software primitives of envelope encryption and migration checks (OpenSSL 3 EVP):
// HKDF-SHA256 (EVP_KDF "HKDF"), AES-GCM (EVP AES-GCM, a context kept per key for streaming), and
// a keyed fingerprint (HMAC-SHA256, EVP_MAC) that identifies a key without revealing it.
//
// Return types say what is secret: derived keys are SecretBytes. Every GCM open failure is the
// one integrity_error(), whatever went wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "core/encoding.h"
#include "core/error.h"
#include "core/ossl.h"
#include "core/secret.h"

namespace keyport::migrate {

inline constexpr std::size_t kGcmNonceBytes = 12;
// The longest GCM nonce OpenSSL 3 accepts (its GCM_IV_MAX_SIZE, 1024 bits). The envelope format
// uses 12-byte nonces only.
inline constexpr std::size_t kGcmMaxNonceBytes = 128;
inline constexpr std::size_t kGcmTagBytes = 16;
inline constexpr std::size_t kHkdfSha256MaxOutput = 255 * 32;

// HKDF-SHA256 (RFC 5869): extract with `salt` (empty means HashLen zero bytes), expand with `info`
// to `length` bytes. kInvalidArgument when length is 0 or more than 255 * 32.
Result<SecretBytes> hkdf_sha256(const SecretBytes& ikm, std::span<const std::uint8_t> salt,
                                std::span<const std::uint8_t> info, std::size_t length);

// AES-GCM under one key, reused for many messages (segments). Keys of 16, 24 or 32 bytes; nonces
// of 1 to 128 bytes (12 is the norm; longer ones are refused, as OpenSSL 3 refuses them); tags of
// 16 bytes. Not thread-safe: one per thread.
class AesGcm {
 public:
  // Returns kInvalidArgument for another key size.
  static Result<AesGcm> create(const SecretBytes& key);

  AesGcm(AesGcm&&) noexcept = default;
  AesGcm& operator=(AesGcm&&) noexcept = default;

  // Writes ciphertext || tag (plaintext.size() + 16 bytes) to `out`, which must be that large.
  // kInvalidArgument for a nonce of 0 or more than 128 bytes, or a wrong buffer size.
  Status seal(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
              std::span<const std::uint8_t> plaintext, std::span<std::uint8_t> out);
  // Checks the tag of `sealed` (ciphertext || tag) and writes the plaintext (sealed.size() - 16
  // bytes) to `out`. On any failure `out` is wiped and the result is integrity_error().
  Status open(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
              std::span<const std::uint8_t> sealed, std::span<std::uint8_t> out);

  // Convenience forms that allocate.
  Result<Bytes> seal(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> plaintext);
  Result<Bytes> open(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> sealed);

 private:
  AesGcm() = default;
  ossl::UniquePtr<EVP_CIPHER_CTX> m_enc;
  ossl::UniquePtr<EVP_CIPHER_CTX> m_dec;
};

// HMAC-SHA256(fingerprint_key, key): compares keys without revealing them. The fingerprint key is
// random per run (random_secret(32)), so fingerprints mean nothing outside that run.
Result<Bytes> keyed_fingerprint(const SecretBytes& fingerprint_key, const SecretBytes& key);

// Constant-time comparison of two equal-length byte strings (CRYPTO_memcmp); different lengths
// compare unequal.
bool ct_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

// AES-ECB(key, 0^128) computed on the host: the check value of an AES key that has to be on the
// host anyway (compared with one computed in a token).
Result<Bytes> aes_check_value(const SecretBytes& key);

}  // namespace keyport::migrate
