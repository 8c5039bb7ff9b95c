// SPDX-License-Identifier: Apache-2.0
// The JWA algorithms the vault's crypto operations accept, and the host-side (OpenSSL) halves of
// those operations: public-key encrypt and verify, DigestInfo encoding, and EME-OAEP decoding
// for the raw-RSA decrypt path. Internal to keyport::vault.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/secret.h"

namespace keyport::vault {

enum class HashAlg { kSha1, kSha256, kSha384, kSha512 };
std::size_t hash_length(HashAlg h);
// OpenSSL's digest for `h` (EVP_sha1() ...): one mapping for the vault and its clients.
const EVP_MD* evp_md(HashAlg h);

enum class SignScheme { kPkcs1, kPss, kEcdsa };

struct SignAlg {
  std::string_view name;  // "RS256"
  SignScheme scheme;
  HashAlg hash;
  std::optional<Curve> curve;  // ES*: the only curve this alg may be used with
};
// Returns the signature algorithm named `name` (RS256/384/512, PS256/384/512, ES256, ES384,
// ES512, ES256K), or nullopt.
std::optional<SignAlg> find_sign_alg(std::string_view name);

enum class RsaPadding { kPkcs1, kOaepSha1, kOaepSha256 };
// RSA1_5, RSA-OAEP, RSA-OAEP-256, or nullopt.
std::optional<RsaPadding> find_rsa_enc_alg(std::string_view name);
// The key wrap algorithms of an oct-HSM key: A128KW/A192KW/A256KW (RFC 3394 under a key of that
// size), CKM_AES_KEY_WRAP (RFC 3394, any key size) and CKM_AES_KEY_WRAP_PAD (RFC 5649, any key
// size).
struct AesKwAlg {
  unsigned bits = 0;  // the key size the name requires; 0 for the CKM_* names
  bool pad = false;   // RFC 5649 (CKM_AES_KEY_WRAP_PAD)
};
std::optional<AesKwAlg> find_aes_kw_alg(std::string_view name);

// The encryption algorithms of an oct-HSM key: A128/192/256 with GCM, CBC (no padding) or CBCPAD
// (PKCS#7 padding).
enum class AesMode { kGcm, kCbc, kCbcPad };
struct AesEncAlg {
  unsigned bits;
  AesMode mode;
};
std::optional<AesEncAlg> find_aes_enc_alg(std::string_view name);
// Azure Managed HSM's AES-GCM: a 12-byte IV the HSM generates, a 16-byte tag.
inline constexpr std::size_t kGcmIvBytes = 12;
inline constexpr std::size_t kGcmTagBytes = 16;
inline constexpr std::size_t kAesBlockBytes = 16;

// Returns DER DigestInfo(hash, digest) (the input of CKM_RSA_PKCS for RS*).
Bytes digest_info(HashAlg hash, std::span<const std::uint8_t> digest);

// Returns the ciphertext of `plaintext` under the RSA public key (DER SPKI), or BadParameter when
// the plaintext is too long for the padding.
Result<Bytes> rsa_public_encrypt(std::span<const std::uint8_t> spki_der, RsaPadding padding,
                                 std::span<const std::uint8_t> plaintext);
// Returns whether `signature` is valid for `digest` under the public key (DER SPKI) with `alg`;
// malformed signatures are simply false.
Result<bool> verify_digest(std::span<const std::uint8_t> spki_der, const SignAlg& alg,
                           std::span<const std::uint8_t> digest,
                           std::span<const std::uint8_t> signature);
// Returns whether the RSA private key parts are consistent: n = p*q, d*e = 1 mod (p-1) and
// mod (q-1), dp = d mod (p-1), dq = d mod (q-1), qi*q = 1 mod p. Intermediate values are cleared.
Result<bool> rsa_private_consistent(std::span<const std::uint8_t> n,
                                    std::span<const std::uint8_t> e, const SecretBytes& d,
                                    const SecretBytes& p, const SecretBytes& q,
                                    const SecretBytes& dp, const SecretBytes& dq,
                                    const SecretBytes& qi);
// EME-OAEP decoding (RFC 8017 §7.1.2 step 3) with MGF1 of the same hash and an empty label, of a
// raw RSA decryption result `em` of `modulus_bytes` bytes. Returns the message, or the one
// integrity_error() whatever is wrong.
Result<SecretBytes> oaep_decode(HashAlg hash, const SecretBytes& em, std::size_t modulus_bytes);

}  // namespace keyport::vault
