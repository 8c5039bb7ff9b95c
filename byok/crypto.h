// SPDX-License-Identifier: Apache-2.0
// Software implementations (OpenSSL 3 EVP) of the primitives the BYOK transfer format is made of:
// AES key wrap (RFC 3394) and AES key wrap with padding (RFC 5649), RSA-OAEP, and the composite
// RSA-AES transfer blob. Used by tests, by `byok wrap` for keys held in files, by the linter, and
// by the enclave side of key release. Keys that live in an HSM are wrapped by pkcs11/wrap.h.
//
// Return types say what is secret: wrap/encrypt return Bytes, unwrap/decrypt return SecretBytes.
// Every unwrap/decrypt failure, whatever its cause (bad padding, bad integrity check, wrong key,
// wrong length), returns the same integrity_error() so that no oracle exists.
#pragma once

#include <cstdint>
#include <span>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/secret.h"

namespace keyport::byok {

// AES key wrap works on 8-byte semiblocks; KWP output for `plaintext` bytes is 8 + 8 * ceil(len /
// 8).
inline constexpr std::size_t kKwSemiblock = 8;
constexpr std::size_t kwp_wrapped_size(std::size_t plaintext) {
  return kKwSemiblock + (plaintext + kKwSemiblock - 1) / kKwSemiblock * kKwSemiblock;
}

// RFC 5649 (NIST SP 800-38F KWP). kek is 16, 24 or 32 bytes (else kInvalidArgument); plaintext
// 1 byte or more. Output length is 8 + 8 * ceil(len / 8).
Result<Bytes> aes_kwp_wrap(const SecretBytes& kek, const SecretBytes& plaintext);
Result<SecretBytes> aes_kwp_unwrap(const SecretBytes& kek, std::span<const std::uint8_t> wrapped);

// RFC 3394 (NIST SP 800-38F KW). plaintext is a multiple of 8 bytes, at least 16.
Result<Bytes> aes_kw_wrap(const SecretBytes& kek, const SecretBytes& plaintext);
Result<SecretBytes> aes_kw_unwrap(const SecretBytes& kek, std::span<const std::uint8_t> wrapped);

// RSAES-OAEP with MGF1 using the same hash and an empty label.
// spki_der: DER SubjectPublicKeyInfo of an RSA key.
Result<Bytes> rsa_oaep_encrypt(std::span<const std::uint8_t> spki_der, OaepHash hash,
                               const SecretBytes& plaintext);
// private_key_der: PKCS#8 PrivateKeyInfo DER (or PKCS#1 RSAPrivateKey DER) of an RSA key.
Result<SecretBytes> rsa_oaep_decrypt(const SecretBytes& private_key_der, OaepHash hash,
                                     std::span<const std::uint8_t> ciphertext);

// The BYOK transfer blob: RSA-OAEP(KEK, k) || AES-KWP(k, key_material), k a fresh AES-256 key that
// is wiped before return. The RSA part is exactly the KEK modulus length.
Result<Bytes> rsa_aes_wrap(std::span<const std::uint8_t> kek_spki_der, WrapAlg alg,
                           const SecretBytes& key_material);
Result<SecretBytes> rsa_aes_unwrap(const SecretBytes& kek_private_der, WrapAlg alg,
                                   std::span<const std::uint8_t> ciphertext);

// Splits a transfer blob into its RSA and KWP parts without decrypting anything. kFormat if the
// blob is shorter than modulus_bytes + 16 or the KWP part is not a multiple of 8.
struct BlobParts {
  std::span<const std::uint8_t> rsa_part;
  std::span<const std::uint8_t> kwp_part;
};
Result<BlobParts> split_transfer_blob(std::span<const std::uint8_t> ciphertext,
                                      std::size_t modulus_bytes);

}  // namespace keyport::byok
