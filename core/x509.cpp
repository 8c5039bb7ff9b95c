// SPDX-License-Identifier: Apache-2.0
#include "core/x509.h"

#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <ctime>

#include "core/digest.h"
#include "core/file_io.h"
#include "core/random.h"

namespace keyport::x509 {
namespace {

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

Result<SecretBytes> bio_to_secret(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0) {
    return ossl::crypto_failure("cannot read the memory BIO");
  }
  return SecretBytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(data),
                                                   static_cast<std::size_t>(len)));
}

Status add_extension(X509& cert, const X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, const_cast<X509*>(issuer ? issuer : &cert), &cert, nullptr, nullptr, 0);
  ossl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(&cert, ext.get(), -1) != 1) {
    return ossl::crypto_failure(std::string("cannot add certificate extension ") + OBJ_nid2sn(nid));
  }
  return {};
}

}  // namespace

Result<ossl::UniquePtr<EVP_PKEY>> generate_rsa_key(unsigned bits) {
  if (bits < 2048 || bits > 8192) {
    return make_error(ErrorCode::kInvalidArgument, "RSA key size must be 2048..8192 bits");
  }
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), static_cast<int>(bits)) != 1 ||
      EVP_PKEY_generate(ctx.get(), &raw) != 1) {
    return ossl::crypto_failure("RSA key generation failed");
  }
  return ossl::UniquePtr<EVP_PKEY>(raw);
}

Result<SecretBytes> private_key_pem(const EVP_PKEY& key) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PKCS8PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ossl::crypto_failure("cannot encode the private key as PKCS#8 PEM");
  }
  return bio_to_secret(bio.get());
}

Result<SecretBytes> private_key_der(const EVP_PKEY& key) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      i2d_PKCS8PrivateKey_bio(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ossl::crypto_failure("cannot encode the private key as PKCS#8 DER");
  }
  return bio_to_secret(bio.get());
}

Result<ossl::UniquePtr<EVP_PKEY>> private_key_from(const SecretBytes& pem_or_der) {
  auto bytes = pem_or_der.reveal(SecretAccess::unsafe());
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  if (!bio) {
    return ossl::crypto_failure("cannot allocate a memory BIO");
  }
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    ossl::drain_errors();
    const unsigned char* p = bytes.data();
    key = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(bytes.size()));
    if (key != nullptr && p != bytes.data() + bytes.size()) {
      EVP_PKEY_free(key);
      key = nullptr;
    }
  }
  if (key == nullptr) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat, "not a private key (PKCS#8, PKCS#1 or SEC1)");
  }
  return ossl::UniquePtr<EVP_PKEY>(key);
}

Result<Bytes> public_key_spki(const EVP_PKEY& key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(&key, &der);
  if (len <= 0) {
    return ossl::crypto_failure("cannot encode the public key");
  }
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Result<ossl::UniquePtr<X509>> make_certificate(const CertificateRequest& request,
                                               EVP_PKEY& subject_key, EVP_PKEY& issuer_key,
                                               const X509* issuer_cert) {
  if (request.common_name.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a certificate needs a common name");
  }
  ossl::UniquePtr<X509> cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) {
    return ossl::crypto_failure("cannot create a certificate");
  }
  Bytes serial = random_bytes(16);
  serial[0] &= 0x7f;  // positive
  serial[0] |= 0x01;  // and 16 bytes long
  ossl::UniquePtr<BIGNUM> bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return ossl::crypto_failure("cannot set the serial number");
  }
  const std::int64_t not_before = request.not_before != 0 ? request.not_before : unix_now() - 3600;
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                    static_cast<time_t>(not_before + request.lifetime_seconds)) == nullptr) {
    return ossl::crypto_failure("cannot set the validity period");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  auto add_entry = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                      0) == 1;
  };
  if (request.common_name.size() > 64) {
    return make_error(ErrorCode::kInvalidArgument, "certificate common name longer than 64");
  }
  if (!add_entry("CN", request.common_name) ||
      (!request.organization.empty() && !add_entry("O", request.organization))) {
    return ossl::crypto_failure("cannot set the subject name");
  }
  if (X509_set_issuer_name(cert.get(), issuer_cert ? X509_get_subject_name(issuer_cert) : name) !=
          1 ||
      X509_set_pubkey(cert.get(), &subject_key) != 1) {
    return ossl::crypto_failure("cannot set the issuer name or public key");
  }
  if (request.is_ca) {
    KEYPORT_TRY(add_extension(*cert, issuer_cert, NID_basic_constraints, "critical,CA:TRUE"));
    KEYPORT_TRY(add_extension(*cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    KEYPORT_TRY(add_extension(*cert, issuer_cert, NID_basic_constraints, "critical,CA:FALSE"));
    KEYPORT_TRY(add_extension(*cert, issuer_cert, NID_key_usage,
                              request.server_auth ? "critical,digitalSignature,keyEncipherment"
                                                  : "critical,digitalSignature"));
  }
  if (request.server_auth) {
    KEYPORT_TRY(add_extension(*cert, issuer_cert, NID_ext_key_usage, "serverAuth"));
  }
  std::string san;
  for (const auto& dns : request.dns_names) {
    san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  }
  for (const auto& ip : request.ip_addresses) {
    san += (san.empty() ? "IP:" : ",IP:") + ip;
  }
  if (!san.empty()) {
    KEYPORT_TRY(add_extension(*cert, issuer_cert, NID_subject_alt_name, san.c_str()));
  }
  KEYPORT_TRY(add_extension(*cert, issuer_cert, NID_subject_key_identifier, "hash"));
  if (issuer_cert != nullptr) {
    KEYPORT_TRY(add_extension(*cert, issuer_cert, NID_authority_key_identifier, "keyid:always"));
  }
  if (X509_sign(cert.get(), &issuer_key, EVP_sha256()) <= 0) {
    return ossl::crypto_failure("cannot sign the certificate");
  }
  return cert;
}

Bytes certificate_der(const X509& cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(&cert, &der);
  if (len <= 0) {
    ossl::drain_errors();
    return {};
  }
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

std::string certificate_pem(const X509& cert) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), const_cast<X509*>(&cert)) != 1) {
    ossl::drain_errors();
    return {};
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len > 0 ? len : 0));
}

Result<ossl::UniquePtr<X509>> certificate_from_der(std::span<const std::uint8_t> der) {
  const unsigned char* p = der.data();
  ossl::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != der.data() + der.size()) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat, "not one DER X.509 certificate");
  }
  return cert;
}

Result<std::vector<ossl::UniquePtr<X509>>> certificates_from_pem(std::string_view pem) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    return ossl::crypto_failure("cannot allocate a memory BIO");
  }
  std::vector<ossl::UniquePtr<X509>> out;
  while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(c);
  }
  ossl::drain_errors();  // the end of the text shows up as a PEM "no start line" error
  if (out.empty()) {
    return make_error(ErrorCode::kFormat, "no PEM CERTIFICATE block found");
  }
  return out;
}

Bytes thumbprint_sha1(const X509& cert) {
  return sha1(certificate_der(cert));
}
Bytes thumbprint_sha256(const X509& cert) {
  return sha256(certificate_der(cert));
}

std::string common_name(const X509& cert) {
  X509_NAME* name = X509_get_subject_name(&cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) {
    return "";
  }
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    ossl::drain_errors();
    return "";
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

Status verify_chain(std::span<const ossl::UniquePtr<X509>> chain, std::string_view trust_pem,
                    const ChainCheck& check) {
  if (chain.empty()) {
    return make_error(ErrorCode::kIntegrityFailure, "empty certificate chain");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto anchors, certificates_from_pem(trust_pem));
  ossl::UniquePtr<X509_STORE> store(X509_STORE_new());
  if (!store) {
    return ossl::crypto_failure("cannot create an X509_STORE");
  }
  for (const auto& a : anchors) {
    if (X509_STORE_add_cert(store.get(), a.get()) != 1) {
      return ossl::crypto_failure("cannot add a trust anchor");
    }
  }
  ossl::UniquePtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
  if (!untrusted) {
    return ossl::crypto_failure("cannot allocate a certificate stack");
  }
  for (std::size_t i = 1; i < chain.size(); ++i) {
    if (sk_X509_push(untrusted.get(), chain[i].get()) <= 0) {
      return ossl::crypto_failure("cannot build the untrusted chain");
    }
  }
  ossl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1) {
    return ossl::crypto_failure("cannot initialise chain verification");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (check.at != 0) {
    X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(check.at));
  }
  if (!check.host.empty()) {
    const bool is_ip = check.host.find_first_not_of("0123456789.") == std::string::npos ||
                       check.host.find(':') != std::string::npos;
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, check.host.c_str())
                   : X509_VERIFY_PARAM_set1_host(param, check.host.c_str(), check.host.size());
    if (ok != 1) {
      return ossl::crypto_failure("cannot set the host to check");
    }
  }
  int rc = X509_verify_cert(ctx.get());
  if (rc != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ossl::drain_errors();
    return make_error(ErrorCode::kIntegrityFailure,
                      std::string("certificate chain does not verify against the trusted CA: ") +
                          X509_verify_cert_error_string(err));
  }
  return {};
}

Result<LocalTls> make_local_tls(std::string_view ca_name,
                                const std::vector<std::string>& extra_dns_names) {
  KEYPORT_ASSIGN_OR_RETURN(auto ca_key, generate_rsa_key(2048));
  KEYPORT_ASSIGN_OR_RETURN(auto server_key, generate_rsa_key(2048));
  CertificateRequest ca_req;
  ca_req.common_name = std::string(ca_name);
  ca_req.is_ca = true;
  ca_req.lifetime_seconds = 10LL * 365 * 86400;
  KEYPORT_ASSIGN_OR_RETURN(auto ca_cert, make_certificate(ca_req, *ca_key, *ca_key, nullptr));
  CertificateRequest leaf;
  leaf.common_name = "localhost";
  leaf.server_auth = true;
  leaf.dns_names = {"localhost"};
  for (const auto& n : extra_dns_names) {
    if (n != "localhost") {
      leaf.dns_names.push_back(n);
    }
  }
  leaf.ip_addresses = {"127.0.0.1", "::1"};
  leaf.lifetime_seconds = 2LL * 365 * 86400;
  KEYPORT_ASSIGN_OR_RETURN(auto server_cert,
                           make_certificate(leaf, *server_key, *ca_key, ca_cert.get()));
  LocalTls out;
  out.ca_cert_pem = certificate_pem(*ca_cert);
  out.server_cert_pem = certificate_pem(*server_cert);
  KEYPORT_ASSIGN_OR_RETURN(out.server_key_pem, private_key_pem(*server_key));
  return out;
}

Status write_local_tls(const std::filesystem::path& dir, const LocalTls& tls, bool overwrite) {
  WriteOptions pub{overwrite, 0644};
  WriteOptions priv{overwrite, 0600};
  KEYPORT_TRY(write_file_atomic(dir / kTlsKeyFile,
                                tls.server_key_pem.reveal(SecretAccess::unsafe()), priv));
  KEYPORT_TRY(write_file_atomic(dir / kTlsCertFile, tls.server_cert_pem, pub));
  KEYPORT_TRY(write_file_atomic(dir / kTlsCaFile, tls.ca_cert_pem, pub));
  return {};
}

}  // namespace keyport::x509
