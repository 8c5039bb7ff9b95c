// SPDX-License-Identifier: Apache-2.0
// OpenSSL RAII: keyport::ossl::UniquePtr<T> with one deleter per OpenSSL type, and the one
// function that turns the OpenSSL error queue into an Error. No raw *_free outside this file.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/error.h"

namespace keyport::ossl {

template <typename T>
struct Deleter;

#define KEYPORT_OSSL_DELETER(type, fn)                 \
  template <>                                          \
  struct Deleter<type> {                               \
    void operator()(type* p) const noexcept { fn(p); } \
  };

KEYPORT_OSSL_DELETER(EVP_PKEY, EVP_PKEY_free)
KEYPORT_OSSL_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
KEYPORT_OSSL_DELETER(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
KEYPORT_OSSL_DELETER(EVP_MD_CTX, EVP_MD_CTX_free)
KEYPORT_OSSL_DELETER(EVP_CIPHER, EVP_CIPHER_free)
KEYPORT_OSSL_DELETER(EVP_MD, EVP_MD_free)
KEYPORT_OSSL_DELETER(EVP_MAC, EVP_MAC_free)
KEYPORT_OSSL_DELETER(EVP_MAC_CTX, EVP_MAC_CTX_free)
KEYPORT_OSSL_DELETER(EVP_KDF, EVP_KDF_free)
KEYPORT_OSSL_DELETER(EVP_KDF_CTX, EVP_KDF_CTX_free)
KEYPORT_OSSL_DELETER(BIO, BIO_free_all)
KEYPORT_OSSL_DELETER(BIGNUM, BN_clear_free)
KEYPORT_OSSL_DELETER(BN_CTX, BN_CTX_free)
KEYPORT_OSSL_DELETER(X509, X509_free)
KEYPORT_OSSL_DELETER(X509_NAME, X509_NAME_free)
KEYPORT_OSSL_DELETER(X509_STORE, X509_STORE_free)
KEYPORT_OSSL_DELETER(X509_STORE_CTX, X509_STORE_CTX_free)
KEYPORT_OSSL_DELETER(X509_EXTENSION, X509_EXTENSION_free)
KEYPORT_OSSL_DELETER(ASN1_OBJECT, ASN1_OBJECT_free)
KEYPORT_OSSL_DELETER(ASN1_STRING, ASN1_STRING_free)  // also ASN1_INTEGER, ASN1_OCTET_STRING
KEYPORT_OSSL_DELETER(PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free)
KEYPORT_OSSL_DELETER(OSSL_PARAM_BLD, OSSL_PARAM_BLD_free)
KEYPORT_OSSL_DELETER(OSSL_PARAM, OSSL_PARAM_free)
KEYPORT_OSSL_DELETER(EC_GROUP, EC_GROUP_free)
KEYPORT_OSSL_DELETER(EC_POINT, EC_POINT_free)
KEYPORT_OSSL_DELETER(ECDSA_SIG, ECDSA_SIG_free)
KEYPORT_OSSL_DELETER(STACK_OF(X509), sk_X509_free)

#undef KEYPORT_OSSL_DELETER

template <typename T>
using UniquePtr = std::unique_ptr<T, Deleter<T>>;

// Drains and clears the thread's OpenSSL error queue into one line ("" when empty).
std::string drain_errors();

// An Error of category kCrypto: "<what>: <drained OpenSSL errors>". Clears the queue.
Error crypto_error(std::string_view what);
inline tl::unexpected<Error> crypto_failure(std::string_view what) {
  return tl::unexpected<Error>(crypto_error(what));
}

}  // namespace keyport::ossl
