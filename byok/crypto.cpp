// SPDX-License-Identifier: Apache-2.0
// OpenSSL 3 EVP implementations of AES-KW, AES-KWP, RSA-OAEP and the RSA-AES transfer blob.
//
// Failure policy: anything that depends on a ciphertext (its length, an OAEP decoding error, a
// KW/KWP integrity error, a key that does not match) ends in integrity_error(), with the OpenSSL
// error queue drained so that nothing about the cause survives the call. Failures that depend
// only on the caller's own inputs (a KEK of the wrong size, a key DER that does not parse, a
// non-RSA key) get ordinary, descriptive errors.
#include "byok/crypto.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "core/ossl.h"
#include "core/random.h"

namespace keyport::byok {
namespace {

// KW/KWP inputs beyond this are refused before they reach OpenSSL's int-sized length arguments.
constexpr std::size_t kMaxWrapInput = std::size_t{1} << 30;
// The shortest inputs each mode can unwrap: KWP one encrypted block, KW two semiblocks + IV.
constexpr std::size_t kMinKwpWrapped = 2 * kKwSemiblock;
constexpr std::size_t kMinKwWrapped = 3 * kKwSemiblock;
constexpr std::size_t kMinKwPlaintext = 2 * kKwSemiblock;

enum class WrapMode { kKw, kKwp };

bool is_aes_key_size(std::size_t n) {
  return n == 16 || n == 24 || n == 32;
}

Result<const EVP_CIPHER*> wrap_cipher(WrapMode mode, const SecretBytes& kek) {
  const bool pad = mode == WrapMode::kKwp;
  switch (kek.size()) {
    case 16:
      return pad ? EVP_aes_128_wrap_pad() : EVP_aes_128_wrap();
    case 24:
      return pad ? EVP_aes_192_wrap_pad() : EVP_aes_192_wrap();
    case 32:
      return pad ? EVP_aes_256_wrap_pad() : EVP_aes_256_wrap();
    default:
      break;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    std::string(pad ? "AES-KWP" : "AES-KW") +
                        ": the key-encryption key must be 16, 24 or 32 bytes, not " +
                        std::to_string(kek.size()));
}

// Runs one KW/KWP operation. `out` must hold the largest possible result. Returns the number of
// bytes written, or nullopt on any failure (the OpenSSL error queue is then already drained).
std::optional<std::size_t> run_wrap_cipher(const EVP_CIPHER* cipher, bool encrypt,
                                           const SecretBytes& kek, std::span<const std::uint8_t> in,
                                           std::span<std::uint8_t> out) {
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) {
    ossl::drain_errors();
    return std::nullopt;
  }
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  // A null IV selects the default integrity check value of RFC 3394 / RFC 5649.
  if (EVP_CipherInit_ex(ctx.get(), cipher, nullptr, kek.reveal(SecretAccess::unsafe()).data(),
                        nullptr, encrypt ? 1 : 0) != 1) {
    ossl::drain_errors();
    return std::nullopt;
  }
  int update_len = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data(), &update_len, in.data(),
                       static_cast<int>(in.size())) != 1 ||
      update_len < 0 || static_cast<std::size_t>(update_len) > out.size()) {
    ossl::drain_errors();
    return std::nullopt;
  }
  // Wrap modes are one-shot; finalising writes nothing but must still succeed.
  int final_len = 0;
  if (EVP_CipherFinal_ex(ctx.get(), out.data() + update_len, &final_len) != 1 || final_len != 0) {
    ossl::drain_errors();
    return std::nullopt;
  }
  return static_cast<std::size_t>(update_len);
}

Result<Bytes> wrap_with(WrapMode mode, const SecretBytes& kek, const SecretBytes& plaintext) {
  KEYPORT_ASSIGN_OR_RETURN(const EVP_CIPHER* cipher, wrap_cipher(mode, kek));
  const std::size_t n = plaintext.size();
  if (n > kMaxWrapInput) {
    return make_error(ErrorCode::kInvalidArgument, "AES key wrap: the plaintext is too large");
  }
  std::size_t expected = 0;
  if (mode == WrapMode::kKwp) {
    if (n == 0) {
      return make_error(ErrorCode::kInvalidArgument, "AES-KWP: the plaintext is empty");
    }
    expected = kwp_wrapped_size(n);
  } else {
    if (n % kKwSemiblock != 0 || n < kMinKwPlaintext) {
      return make_error(ErrorCode::kInvalidArgument,
                        "AES-KW: the plaintext must be a multiple of 8 bytes and at least 16 "
                        "bytes, not " +
                            std::to_string(n));
    }
    expected = n + kKwSemiblock;
  }
  // The wrapped output is public; it needs no wiping.
  Bytes out(expected);
  const auto written =
      run_wrap_cipher(cipher, true, kek, plaintext.reveal(SecretAccess::unsafe()), out);
  if (!written || *written != expected) {
    return make_error(ErrorCode::kCrypto, "AES key wrap failed");
  }
  return out;
}

Result<SecretBytes> unwrap_with(WrapMode mode, const SecretBytes& kek,
                                std::span<const std::uint8_t> wrapped) {
  KEYPORT_ASSIGN_OR_RETURN(const EVP_CIPHER* cipher, wrap_cipher(mode, kek));
  const std::size_t n = wrapped.size();
  const std::size_t min_len = mode == WrapMode::kKwp ? kMinKwpWrapped : kMinKwWrapped;
  if (n % kKwSemiblock != 0 || n < min_len || n > kMaxWrapInput + 2 * kKwSemiblock) {
    ossl::drain_errors();
    return integrity_error();
  }
  // Scratch for the plaintext lives in SecretBytes so that it is wiped whatever happens.
  SecretBytes out(n);
  const auto written =
      run_wrap_cipher(cipher, false, kek, wrapped, out.reveal_mut(SecretAccess::unsafe()));
  if (!written) {
    return integrity_error();
  }
  // KW yields exactly n - 8 bytes; KWP yields n - 15 .. n - 8 bytes (RFC 5649 MLI range).
  const std::size_t len = *written;
  const bool length_ok = mode == WrapMode::kKw
                             ? len == n - kKwSemiblock
                             : (len > n - 2 * kKwSemiblock && len <= n - kKwSemiblock);
  if (!length_ok) {
    ossl::drain_errors();
    return integrity_error();
  }
  out.truncate(len);
  return out;
}

const EVP_MD* oaep_md(OaepHash hash) {
  switch (hash) {
    case OaepHash::kSha1:
      return EVP_sha1();
    case OaepHash::kSha256:
      return EVP_sha256();
    case OaepHash::kSha384:
      return EVP_sha384();
  }
  return nullptr;
}

std::size_t oaep_md_size(OaepHash hash) {
  switch (hash) {
    case OaepHash::kSha1:
      return 20;
    case OaepHash::kSha256:
      return 32;
    case OaepHash::kSha384:
      return 48;
  }
  return 0;
}

std::size_t rsa_modulus_bytes(EVP_PKEY* pkey) {
  const int bits = EVP_PKEY_get_bits(pkey);
  return bits > 0 ? (static_cast<std::size_t>(bits) + 7) / 8 : 0;
}

Result<ossl::UniquePtr<EVP_PKEY>> parse_rsa_public(std::span<const std::uint8_t> der) {
  if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
    return make_error(ErrorCode::kFormat, "KEK public key: empty or oversized DER");
  }
  const unsigned char* p = der.data();
  ossl::UniquePtr<EVP_PKEY> pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!pkey) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat,
                      "KEK public key: not a DER SubjectPublicKeyInfo that OpenSSL can read");
  }
  if (p != der.data() + der.size()) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat,
                      "KEK public key: trailing bytes after the SubjectPublicKeyInfo");
  }
  if (EVP_PKEY_is_a(pkey.get(), "RSA") != 1 || rsa_modulus_bytes(pkey.get()) == 0) {
    ossl::drain_errors();
    return make_error(ErrorCode::kInvalidArgument, "KEK public key: not an RSA key");
  }
  ossl::drain_errors();
  return pkey;
}

Result<ossl::UniquePtr<EVP_PKEY>> parse_rsa_private(const SecretBytes& der_secret) {
  const auto der = der_secret.reveal(SecretAccess::unsafe());
  if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
    return make_error(ErrorCode::kFormat, "private key: empty or oversized DER");
  }
  const unsigned char* p = der.data();
  ossl::UniquePtr<EVP_PKEY> pkey(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
  if (!pkey) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat,
                      "private key: not a PKCS#8 or PKCS#1 DER key that OpenSSL can read");
  }
  if (p != der.data() + der.size()) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat, "private key: trailing bytes after the key");
  }
  if (EVP_PKEY_is_a(pkey.get(), "RSA") != 1 || rsa_modulus_bytes(pkey.get()) == 0) {
    ossl::drain_errors();
    return make_error(ErrorCode::kInvalidArgument, "private key: not an RSA key");
  }
  // Decoders tried and rejected along the way may have left entries behind.
  ossl::drain_errors();
  return pkey;
}

Result<ossl::UniquePtr<EVP_PKEY_CTX>> oaep_context(EVP_PKEY* pkey, OaepHash hash, bool encrypt) {
  const EVP_MD* md = oaep_md(hash);
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx || md == nullptr) {
    return ossl::crypto_failure("RSA-OAEP: cannot create a context");
  }
  const int init = encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get());
  // No label is set: OAEP then uses the empty label.
  if (init <= 0 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md) <= 0 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) <= 0) {
    return ossl::crypto_failure(std::string("RSA-OAEP with ") + std::string(to_string(hash)) +
                                ": cannot set up the operation");
  }
  return ctx;
}

Result<Bytes> oaep_encrypt(EVP_PKEY* pkey, OaepHash hash, std::span<const std::uint8_t> in) {
  const std::size_t k = rsa_modulus_bytes(pkey);
  const std::size_t h = oaep_md_size(hash);
  if (k < 2 * h + 2 || in.size() > k - 2 * h - 2) {
    return make_error(ErrorCode::kInvalidArgument,
                      "RSA-OAEP: " + std::to_string(in.size()) + " bytes do not fit a " +
                          std::to_string(k * 8) + "-bit key with " + std::string(to_string(hash)));
  }
  KEYPORT_ASSIGN_OR_RETURN(auto ctx, oaep_context(pkey, hash, true));
  // OpenSSL is given a valid pointer even for an empty message.
  static const std::uint8_t kNothing = 0;
  const std::uint8_t* in_ptr = in.empty() ? &kNothing : in.data();
  std::size_t out_len = k;
  Bytes out(k);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &out_len, in_ptr, in.size()) <= 0) {
    return ossl::crypto_failure("RSA-OAEP encryption failed");
  }
  if (out_len != k) {
    ossl::drain_errors();
    return make_error(ErrorCode::kInternal, "RSA-OAEP: ciphertext is not the modulus length");
  }
  return out;
}

// Every failure that depends on the ciphertext is integrity_error(); only a context that cannot
// be set up at all (a provider refusing the hash, say) is reported as kCrypto.
Result<SecretBytes> oaep_decrypt(EVP_PKEY* pkey, OaepHash hash,
                                 std::span<const std::uint8_t> ciphertext) {
  const std::size_t k = rsa_modulus_bytes(pkey);
  if (ciphertext.size() != k) {
    ossl::drain_errors();
    return integrity_error();
  }
  KEYPORT_ASSIGN_OR_RETURN(auto ctx, oaep_context(pkey, hash, false));
  SecretBytes out(k);
  std::size_t out_len = k;
  if (EVP_PKEY_decrypt(ctx.get(), out.reveal_mut(SecretAccess::unsafe()).data(), &out_len,
                       ciphertext.data(), ciphertext.size()) <= 0 ||
      out_len > k) {
    ossl::drain_errors();
    return integrity_error();
  }
  out.truncate(out_len);
  return out;
}

}  // namespace

Result<Bytes> aes_kwp_wrap(const SecretBytes& kek, const SecretBytes& plaintext) {
  return wrap_with(WrapMode::kKwp, kek, plaintext);
}

Result<SecretBytes> aes_kwp_unwrap(const SecretBytes& kek, std::span<const std::uint8_t> wrapped) {
  return unwrap_with(WrapMode::kKwp, kek, wrapped);
}

Result<Bytes> aes_kw_wrap(const SecretBytes& kek, const SecretBytes& plaintext) {
  return wrap_with(WrapMode::kKw, kek, plaintext);
}

Result<SecretBytes> aes_kw_unwrap(const SecretBytes& kek, std::span<const std::uint8_t> wrapped) {
  return unwrap_with(WrapMode::kKw, kek, wrapped);
}

Result<Bytes> rsa_oaep_encrypt(std::span<const std::uint8_t> spki_der, OaepHash hash,
                               const SecretBytes& plaintext) {
  KEYPORT_ASSIGN_OR_RETURN(auto pkey, parse_rsa_public(spki_der));
  return oaep_encrypt(pkey.get(), hash, plaintext.reveal(SecretAccess::unsafe()));
}

Result<SecretBytes> rsa_oaep_decrypt(const SecretBytes& private_key_der, OaepHash hash,
                                     std::span<const std::uint8_t> ciphertext) {
  KEYPORT_ASSIGN_OR_RETURN(auto pkey, parse_rsa_private(private_key_der));
  return oaep_decrypt(pkey.get(), hash, ciphertext);
}

Result<Bytes> rsa_aes_wrap(std::span<const std::uint8_t> kek_spki_der, WrapAlg alg,
                           const SecretBytes& key_material) {
  if (key_material.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "RSA-AES wrap: the key material is empty");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto kek, parse_rsa_public(kek_spki_der));
  const std::size_t k = rsa_modulus_bytes(kek.get());
  // The transfer key is wiped by SecretBytes when this function returns, on every path.
  const SecretBytes transfer_key = random_secret(kTransferKeyBytes);
  KEYPORT_ASSIGN_OR_RETURN(
      Bytes rsa_part,
      oaep_encrypt(kek.get(), wrap_alg_hash(alg), transfer_key.reveal(SecretAccess::unsafe())));
  if (rsa_part.size() != k) {
    return make_error(ErrorCode::kInternal, "RSA-AES wrap: RSA part is not the modulus length");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes kwp_part, aes_kwp_wrap(transfer_key, key_material));
  Bytes blob;
  blob.reserve(rsa_part.size() + kwp_part.size());
  blob.insert(blob.end(), rsa_part.begin(), rsa_part.end());
  blob.insert(blob.end(), kwp_part.begin(), kwp_part.end());
  return blob;
}

Result<SecretBytes> rsa_aes_unwrap(const SecretBytes& kek_private_der, WrapAlg alg,
                                   std::span<const std::uint8_t> ciphertext) {
  KEYPORT_ASSIGN_OR_RETURN(auto kek, parse_rsa_private(kek_private_der));
  auto parts = split_transfer_blob(ciphertext, rsa_modulus_bytes(kek.get()));
  if (!parts) {
    ossl::drain_errors();
    return integrity_error();
  }
  auto transfer_key = oaep_decrypt(kek.get(), wrap_alg_hash(alg), parts->rsa_part);
  if (!transfer_key && transfer_key.error().code() != ErrorCode::kIntegrityFailure) {
    return tl::unexpected(std::move(transfer_key).error());
  }
  // keyport writes 256-bit transfer keys; any AES key size is read, as PKCS#11's
  // CKM_RSA_AES_KEY_WRAP allows. When OAEP fails the KWP step still runs, under a random key,
  // so that both failure causes take a similar path before the one shared error is returned.
  const bool key_ok = transfer_key && is_aes_key_size(transfer_key->size());
  const SecretBytes aes_key = key_ok ? std::move(*transfer_key) : random_secret(kTransferKeyBytes);
  auto plaintext = aes_kwp_unwrap(aes_key, parts->kwp_part);
  if (!key_ok || !plaintext) {
    ossl::drain_errors();
    return integrity_error();
  }
  return plaintext;
}

Result<BlobParts> split_transfer_blob(std::span<const std::uint8_t> ciphertext,
                                      std::size_t modulus_bytes) {
  if (modulus_bytes == 0) {
    return make_error(ErrorCode::kInvalidArgument, "transfer blob: modulus length is zero");
  }
  // Written so that a huge modulus_bytes cannot overflow.
  if (ciphertext.size() < modulus_bytes || ciphertext.size() - modulus_bytes < kMinKwpWrapped) {
    return make_error(ErrorCode::kFormat, "transfer blob: " + std::to_string(ciphertext.size()) +
                                              " bytes is shorter than the RSA part (" +
                                              std::to_string(modulus_bytes) +
                                              " bytes) plus the shortest AES-KWP part (16 bytes)");
  }
  const std::size_t kwp_len = ciphertext.size() - modulus_bytes;
  if (kwp_len % kKwSemiblock != 0) {
    return make_error(ErrorCode::kFormat, "transfer blob: the AES-KWP part (" +
                                              std::to_string(kwp_len) +
                                              " bytes) is not a multiple of 8 bytes");
  }
  return BlobParts{ciphertext.first(modulus_bytes), ciphertext.subspan(modulus_bytes)};
}

}  // namespace keyport::byok
