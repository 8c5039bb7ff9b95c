// SPDX-License-Identifier: Apache-2.0
#include "tests/support/oracle.h"

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdexcept>

namespace keyport::test::oracle {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + ossl::drain_errors());
}

const EVP_MD* md_for(WrapAlg alg) {
  switch (wrap_alg_hash(alg)) {
    case OaepHash::kSha1:
      return EVP_sha1();
    case OaepHash::kSha256:
      return EVP_sha256();
    case OaepHash::kSha384:
      return EVP_sha384();
  }
  return EVP_sha1();
}

Bytes bn_param(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1)
    fail(std::string("get ") + name);
  ossl::UniquePtr<BIGNUM> owned(bn);
  Bytes out(BN_num_bytes(bn));
  BN_bn2bin(bn, out.data());
  return out;
}

}  // namespace

ossl::UniquePtr<EVP_PKEY> rsa_keygen(unsigned bits) {
  ossl::UniquePtr<EVP_PKEY> k(EVP_RSA_gen(bits));
  if (!k)
    fail("EVP_RSA_gen");
  return k;
}

ossl::UniquePtr<EVP_PKEY> ec_keygen(const char* group) {
  ossl::UniquePtr<EVP_PKEY> k(EVP_EC_gen(group));
  if (!k)
    fail("EVP_EC_gen");
  return k;
}

Bytes spki_der(EVP_PKEY* key) {
  unsigned char* p = nullptr;
  int n = i2d_PUBKEY(key, &p);
  if (n <= 0)
    fail("i2d_PUBKEY");
  Bytes out(p, p + n);
  OPENSSL_free(p);
  return out;
}

std::string spki_pem(EVP_PKEY* key) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), key) != 1)
    fail("PEM_write_bio_PUBKEY");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Bytes pkcs8_der(EVP_PKEY* key) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (i2d_PKCS8PrivateKey_bio(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail("i2d_PKCS8PrivateKey_bio");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return Bytes(data, data + len);
}

Bytes unwrap_transfer_blob(EVP_PKEY* kek_private, WrapAlg alg, const Bytes& ct) {
  std::size_t mod = static_cast<std::size_t>(EVP_PKEY_get_size(kek_private));
  if (ct.size() < mod + 16)
    throw std::runtime_error("transfer blob too short");
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(kek_private, nullptr));
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md_for(alg)) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md_for(alg)) != 1) {
    fail("OAEP setup");
  }
  unsigned char aes[512];
  std::size_t aes_len = sizeof aes;
  if (EVP_PKEY_decrypt(ctx.get(), aes, &aes_len, ct.data(), mod) != 1)
    fail("OAEP decrypt");
  if (aes_len != 32)
    throw std::runtime_error("transfer key is not 32 bytes");
  ossl::UniquePtr<EVP_CIPHER_CTX> c(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX_set_flags(c.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex(c.get(), EVP_aes_256_wrap_pad(), nullptr, aes, nullptr, 0) != 1)
    fail("KWP init");
  Bytes out(ct.size() - mod + 16);
  int n1 = 0, n2 = 0;
  if (EVP_CipherUpdate(c.get(), out.data(), &n1, ct.data() + mod,
                       static_cast<int>(ct.size() - mod)) != 1)
    fail("KWP");
  if (EVP_CipherFinal_ex(c.get(), out.data() + n1, &n2) != 1)
    fail("KWP final");
  OPENSSL_cleanse(aes, sizeof aes);
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

ossl::UniquePtr<EVP_PKEY> parse_pkcs8(const Bytes& der, std::size_t* out_der_len) {
  const unsigned char* p = der.data();
  ossl::UniquePtr<PKCS8_PRIV_KEY_INFO> p8(
      d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  if (!p8)
    fail("d2i_PKCS8_PRIV_KEY_INFO");
  if (out_der_len)
    *out_der_len = static_cast<std::size_t>(p - der.data());
  ossl::UniquePtr<EVP_PKEY> k(EVP_PKCS82PKEY(p8.get()));
  if (!k)
    fail("EVP_PKCS82PKEY");
  return k;
}

Bytes rsa_modulus(EVP_PKEY* key) {
  return bn_param(key, OSSL_PKEY_PARAM_RSA_N);
}

Bytes ec_public_point(EVP_PKEY* key) {
  EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "uncompressed");
  unsigned char buf[200];
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof buf, &len) != 1)
    fail("EC pub");
  return Bytes(buf, buf + len);
}

std::string ec_group_name(EVP_PKEY* key) {
  char name[64];
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) != 1)
    fail("group");
  return std::string(name, len);
}

Bytes aes_check_value(const Bytes& key) {
  const EVP_CIPHER* cipher = key.size() == 16   ? EVP_aes_128_ecb()
                             : key.size() == 24 ? EVP_aes_192_ecb()
                                                : EVP_aes_256_ecb();
  ossl::UniquePtr<EVP_CIPHER_CTX> c(EVP_CIPHER_CTX_new());
  unsigned char zero[16] = {};
  Bytes out(32);
  int n = 0;
  if (EVP_EncryptInit_ex(c.get(), cipher, nullptr, key.data(), nullptr) != 1)
    fail("ECB init");
  EVP_CIPHER_CTX_set_padding(c.get(), 0);
  if (EVP_EncryptUpdate(c.get(), out.data(), &n, zero, 16) != 1)
    fail("ECB");
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool verify_sha256(EVP_PKEY* pub, const Bytes& data, const Bytes& signature) {
  ossl::UniquePtr<EVP_MD_CTX> md(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, pub) != 1)
    fail("verify init");
  int rc = EVP_DigestVerify(md.get(), signature.data(), signature.size(), data.data(), data.size());
  ossl::drain_errors();
  return rc == 1;
}

ossl::UniquePtr<EVP_PKEY> rsa_public_from(const Bytes& n, const Bytes& e) {
  ossl::UniquePtr<BIGNUM> bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  ossl::UniquePtr<BIGNUM> bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  ossl::UniquePtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get());
  ossl::UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* out = nullptr;
  if (EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    fail("RSA fromdata");
  }
  return ossl::UniquePtr<EVP_PKEY>(out);
}

ossl::UniquePtr<EVP_PKEY> ec_public_from(const char* group, const Bytes& point) {
  ossl::UniquePtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
  OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  ossl::UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* out = nullptr;
  if (EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    fail("EC fromdata");
  }
  return ossl::UniquePtr<EVP_PKEY>(out);
}

}  // namespace keyport::test::oracle
