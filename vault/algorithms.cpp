// SPDX-License-Identifier: Apache-2.0
#include "vault/algorithms.h"

#include <openssl/crypto.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>

#include "core/ecdsa.h"
#include "core/ossl.h"
#include "vault/errors.h"

namespace keyport::vault {
namespace {

constexpr SignAlg kSignAlgs[] = {
    {"RS256", SignScheme::kPkcs1, HashAlg::kSha256, std::nullopt},
    {"RS384", SignScheme::kPkcs1, HashAlg::kSha384, std::nullopt},
    {"RS512", SignScheme::kPkcs1, HashAlg::kSha512, std::nullopt},
    {"PS256", SignScheme::kPss, HashAlg::kSha256, std::nullopt},
    {"PS384", SignScheme::kPss, HashAlg::kSha384, std::nullopt},
    {"PS512", SignScheme::kPss, HashAlg::kSha512, std::nullopt},
    {"ES256", SignScheme::kEcdsa, HashAlg::kSha256, Curve::kP256},
    {"ES384", SignScheme::kEcdsa, HashAlg::kSha384, Curve::kP384},
    {"ES512", SignScheme::kEcdsa, HashAlg::kSha512, Curve::kP521},
    {"ES256K", SignScheme::kEcdsa, HashAlg::kSha256, Curve::kP256K},
};

// DER prefixes of DigestInfo (RFC 8017 §9.2 note 1).
constexpr std::uint8_t kSha256Prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x01, 0x05, 0x00, 0x04, 0x20};
constexpr std::uint8_t kSha384Prefix[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x02, 0x05, 0x00, 0x04, 0x30};
constexpr std::uint8_t kSha512Prefix[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x03, 0x05, 0x00, 0x04, 0x40};
constexpr std::uint8_t kSha1Prefix[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                        0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};

Result<ossl::UniquePtr<EVP_PKEY>> load_spki(std::span<const std::uint8_t> der) {
  const unsigned char* p = der.data();
  ossl::UniquePtr<EVP_PKEY> key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!key) {
    return ossl::crypto_failure("cannot load the stored public key");
  }
  return key;
}

// MGF1 (RFC 8017 §B.2.1) of `seed`, `length` bytes, into SecretBytes.
Result<SecretBytes> mgf1(HashAlg hash, std::span<const std::uint8_t> seed, std::size_t length) {
  const std::size_t h_len = hash_length(hash);
  SecretBytes out;
  std::array<std::uint8_t, 64> block{};
  Bytes input(seed.begin(), seed.end());
  input.resize(seed.size() + 4);
  for (std::uint32_t counter = 0; out.size() < length; ++counter) {
    input[seed.size()] = static_cast<std::uint8_t>(counter >> 24);
    input[seed.size() + 1] = static_cast<std::uint8_t>(counter >> 16);
    input[seed.size() + 2] = static_cast<std::uint8_t>(counter >> 8);
    input[seed.size() + 3] = static_cast<std::uint8_t>(counter);
    unsigned int n = 0;
    if (EVP_Digest(input.data(), input.size(), block.data(), &n, evp_md(hash), nullptr) != 1 ||
        n != h_len) {
      return ossl::crypto_failure("MGF1");
    }
    out.append(std::span<const std::uint8_t>(block.data(), std::min(h_len, length - out.size())));
  }
  secure_wipe(block.data(), block.size());
  secure_wipe(input.data(), input.size());
  return out;
}

}  // namespace

const EVP_MD* evp_md(HashAlg h) {
  switch (h) {
    case HashAlg::kSha1:
      return EVP_sha1();
    case HashAlg::kSha256:
      return EVP_sha256();
    case HashAlg::kSha384:
      return EVP_sha384();
    case HashAlg::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

std::size_t hash_length(HashAlg h) {
  switch (h) {
    case HashAlg::kSha1:
      return 20;
    case HashAlg::kSha256:
      return 32;
    case HashAlg::kSha384:
      return 48;
    case HashAlg::kSha512:
      return 64;
  }
  return 0;
}

std::optional<SignAlg> find_sign_alg(std::string_view name) {
  for (const auto& a : kSignAlgs) {
    if (a.name == name) {
      return a;
    }
  }
  return std::nullopt;
}

std::optional<RsaPadding> find_rsa_enc_alg(std::string_view name) {
  if (name == "RSA1_5") {
    return RsaPadding::kPkcs1;
  }
  if (name == "RSA-OAEP") {
    return RsaPadding::kOaepSha1;
  }
  if (name == "RSA-OAEP-256") {
    return RsaPadding::kOaepSha256;
  }
  return std::nullopt;
}

std::optional<AesKwAlg> find_aes_kw_alg(std::string_view name) {
  static constexpr std::pair<std::string_view, AesKwAlg> kAlgs[] = {
      {"A128KW", {128, false}},
      {"A192KW", {192, false}},
      {"A256KW", {256, false}},
      {"CKM_AES_KEY_WRAP", {0, false}},
      {"CKM_AES_KEY_WRAP_PAD", {0, true}},
  };
  for (const auto& [n, alg] : kAlgs) {
    if (n == name) {
      return alg;
    }
  }
  return std::nullopt;
}

std::optional<AesEncAlg> find_aes_enc_alg(std::string_view name) {
  static constexpr std::pair<std::string_view, AesEncAlg> kAlgs[] = {
      {"A128GCM", {128, AesMode::kGcm}},       {"A192GCM", {192, AesMode::kGcm}},
      {"A256GCM", {256, AesMode::kGcm}},       {"A128CBC", {128, AesMode::kCbc}},
      {"A192CBC", {192, AesMode::kCbc}},       {"A256CBC", {256, AesMode::kCbc}},
      {"A128CBCPAD", {128, AesMode::kCbcPad}}, {"A192CBCPAD", {192, AesMode::kCbcPad}},
      {"A256CBCPAD", {256, AesMode::kCbcPad}},
  };
  for (const auto& [n, alg] : kAlgs) {
    if (n == name) {
      return alg;
    }
  }
  return std::nullopt;
}

Bytes digest_info(HashAlg hash, std::span<const std::uint8_t> digest) {
  std::span<const std::uint8_t> prefix;
  switch (hash) {
    case HashAlg::kSha1:
      prefix = kSha1Prefix;
      break;
    case HashAlg::kSha256:
      prefix = kSha256Prefix;
      break;
    case HashAlg::kSha384:
      prefix = kSha384Prefix;
      break;
    case HashAlg::kSha512:
      prefix = kSha512Prefix;
      break;
  }
  Bytes out(prefix.begin(), prefix.end());
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

Result<Bytes> rsa_public_encrypt(std::span<const std::uint8_t> spki_der, RsaPadding padding,
                                 std::span<const std::uint8_t> plaintext) {
  KEYPORT_ASSIGN_OR_RETURN(auto key, load_spki(spki_der));
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1) {
    return ossl::crypto_failure("RSA encrypt init");
  }
  int ok = 1;
  switch (padding) {
    case RsaPadding::kPkcs1:
      ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING);
      break;
    case RsaPadding::kOaepSha1:
    case RsaPadding::kOaepSha256: {
      const EVP_MD* md = padding == RsaPadding::kOaepSha1 ? EVP_sha1() : EVP_sha256();
      ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
                   EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md) == 1 &&
                   EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) == 1
               ? 1
               : 0;
      break;
    }
  }
  if (ok != 1) {
    return ossl::crypto_failure("RSA encrypt parameters");
  }
  std::size_t out_len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &out_len, plaintext.data(), plaintext.size()) != 1) {
    return ossl::crypto_failure("RSA encrypt");
  }
  Bytes out(out_len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &out_len, plaintext.data(), plaintext.size()) != 1) {
    ossl::drain_errors();
    return bad_parameter("The plaintext is too long for this key and algorithm.");
  }
  out.resize(out_len);
  return out;
}

Result<bool> verify_digest(std::span<const std::uint8_t> spki_der, const SignAlg& alg,
                           std::span<const std::uint8_t> digest,
                           std::span<const std::uint8_t> signature) {
  KEYPORT_ASSIGN_OR_RETURN(auto key, load_spki(spki_der));
  Bytes sig(signature.begin(), signature.end());
  if (alg.scheme == SignScheme::kEcdsa) {
    auto der = ecdsa_p1363_to_der(signature);
    if (!der) {
      return false;
    }
    sig = std::move(*der);
  }
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) {
    return ossl::crypto_failure("verify init");
  }
  if (alg.scheme != SignScheme::kEcdsa) {
    const EVP_MD* md = evp_md(alg.hash);
    int ok = EVP_PKEY_CTX_set_signature_md(ctx.get(), md);
    if (ok == 1 && alg.scheme == SignScheme::kPss) {
      ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1 &&
                   EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) == 1 &&
                   EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(),
                                                    static_cast<int>(hash_length(alg.hash))) == 1
               ? 1
               : 0;
    } else if (ok == 1) {
      ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING);
    }
    if (ok != 1) {
      return ossl::crypto_failure("verify parameters");
    }
  }
  int rc = EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), digest.data(), digest.size());
  ossl::drain_errors();
  return rc == 1;
}

Result<bool> rsa_private_consistent(std::span<const std::uint8_t> n,
                                    std::span<const std::uint8_t> e, const SecretBytes& d,
                                    const SecretBytes& p, const SecretBytes& q,
                                    const SecretBytes& dp, const SecretBytes& dq,
                                    const SecretBytes& qi) {
  using BnPtr = ossl::UniquePtr<BIGNUM>;  // BN_clear_free
  auto secret_bn = [](const SecretBytes& s) {
    auto b = s.reveal(SecretAccess::unsafe());
    BnPtr bn(BN_secure_new());
    if (bn && BN_bin2bn(b.data(), static_cast<int>(b.size()), bn.get()) == nullptr) {
      bn.reset();
    }
    return bn;
  };
  ossl::UniquePtr<BN_CTX> ctx(BN_CTX_secure_new());
  BnPtr bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  BnPtr bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  BnPtr bn_d = secret_bn(d), bn_p = secret_bn(p), bn_q = secret_bn(q), bn_dp = secret_bn(dp),
        bn_dq = secret_bn(dq), bn_qi = secret_bn(qi);
  BnPtr t(BN_secure_new()), p1(BN_secure_new()), q1(BN_secure_new());
  if (!ctx || !bn_n || !bn_e || !bn_d || !bn_p || !bn_q || !bn_dp || !bn_dq || !bn_qi || !t ||
      !p1 || !q1 || BN_sub(p1.get(), bn_p.get(), BN_value_one()) != 1 ||
      BN_sub(q1.get(), bn_q.get(), BN_value_one()) != 1) {
    return ossl::crypto_failure("RSA key check");
  }
  if (BN_is_zero(p1.get()) || BN_is_zero(q1.get()) || BN_is_negative(p1.get()) ||
      BN_is_negative(q1.get())) {
    return false;
  }
  auto is = [&](int rc, const BIGNUM* want) { return rc == 1 && BN_cmp(t.get(), want) == 0; };
  bool ok = is(BN_mul(t.get(), bn_p.get(), bn_q.get(), ctx.get()), bn_n.get());
  ok = ok && is(BN_mod_mul(t.get(), bn_d.get(), bn_e.get(), p1.get(), ctx.get()), BN_value_one());
  ok = ok && is(BN_mod_mul(t.get(), bn_d.get(), bn_e.get(), q1.get(), ctx.get()), BN_value_one());
  ok = ok && is(BN_nnmod(t.get(), bn_d.get(), p1.get(), ctx.get()), bn_dp.get());
  ok = ok && is(BN_nnmod(t.get(), bn_d.get(), q1.get(), ctx.get()), bn_dq.get());
  ok =
      ok && is(BN_mod_mul(t.get(), bn_qi.get(), bn_q.get(), bn_p.get(), ctx.get()), BN_value_one());
  ossl::drain_errors();
  return ok;
}

Result<SecretBytes> oaep_decode(HashAlg hash, const SecretBytes& em_in, std::size_t k) {
  const std::size_t h_len = hash_length(hash);
  if (k < 2 * h_len + 2 || em_in.size() > k) {
    return integrity_error();
  }
  // Raw RSA output may come without its leading zero bytes: left-pad to k.
  SecretBytes em(k);
  {
    auto src = em_in.reveal(SecretAccess::unsafe());
    auto dst = em.reveal_mut(SecretAccess::unsafe());
    std::copy(src.begin(), src.end(), dst.begin() + static_cast<std::ptrdiff_t>(k - src.size()));
  }
  auto e = em.reveal_mut(SecretAccess::unsafe());
  std::span<std::uint8_t> masked_seed = e.subspan(1, h_len);
  std::span<std::uint8_t> masked_db = e.subspan(1 + h_len);
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes seed_mask, mgf1(hash, masked_db, h_len));
  auto sm = seed_mask.reveal(SecretAccess::unsafe());
  for (std::size_t i = 0; i < h_len; ++i) {
    masked_seed[i] ^= sm[i];
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes db_mask, mgf1(hash, masked_seed, masked_db.size()));
  auto dm = db_mask.reveal(SecretAccess::unsafe());
  for (std::size_t i = 0; i < masked_db.size(); ++i) {
    masked_db[i] ^= dm[i];
  }
  std::array<std::uint8_t, 64> l_hash{};
  unsigned int n = 0;
  if (EVP_Digest(nullptr, 0, l_hash.data(), &n, evp_md(hash), nullptr) != 1) {
    return ossl::crypto_failure("OAEP label hash");
  }
  // Constant-time checks: Y == 0, lHash' == lHash, DB = lHash' || 0x00* || 0x01 || M.
  unsigned bad = e[0];
  bad |= static_cast<unsigned>(CRYPTO_memcmp(masked_db.data(), l_hash.data(), h_len));
  std::size_t one_index = 0;
  unsigned looking = 1;
  for (std::size_t i = h_len; i < masked_db.size(); ++i) {
    const unsigned b = masked_db[i];
    const unsigned is_one = static_cast<unsigned>((b ^ 1u) == 0);
    const unsigned is_zero = static_cast<unsigned>(b == 0);
    // While still looking, a byte must be 0x00 or 0x01.
    bad |= looking & (1u ^ is_one) & (1u ^ is_zero);
    const unsigned found_here = looking & is_one;
    one_index |= (static_cast<std::size_t>(0) - static_cast<std::size_t>(found_here)) & i;
    looking &= ~found_here & 1u;
  }
  bad |= looking;
  if (bad != 0) {
    return integrity_error();
  }
  return SecretBytes(std::span<const std::uint8_t>(masked_db.subspan(one_index + 1)));
}

}  // namespace keyport::vault
