// SPDX-License-Identifier: Apache-2.0
// Small X.509 helpers for keyport's simulated services: RSA key generation, certificates (a
// self-signed CA, a server certificate it signs, the self-signed signing certificate of the
// simulated attestation authority), PEM/DER conversion, thumbprints, and chain verification.
// Everything here is public-key material except the private keys, which leave only as PKCS#8 in
// SecretBytes.
//
// make_local_tls() is the one call a local HTTPS server needs: a fresh CA plus a server
// certificate for 127.0.0.1 and localhost (and any extra names), written as three PEM files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "core/ossl.h"
#include "core/secret.h"

namespace keyport::x509 {

// Generates an RSA key pair (e = 65537). kInvalidArgument unless 2048 <= bits <= 8192.
Result<ossl::UniquePtr<EVP_PKEY>> generate_rsa_key(unsigned bits = 2048);

// PKCS#8 "PRIVATE KEY" PEM (unencrypted) or PKCS#8 DER of a private key.
Result<SecretBytes> private_key_pem(const EVP_PKEY& key);
Result<SecretBytes> private_key_der(const EVP_PKEY& key);
// Reads one private key: PKCS#8 PEM or DER, or PKCS#1 / SEC1 PEM. kFormat otherwise.
Result<ossl::UniquePtr<EVP_PKEY>> private_key_from(const SecretBytes& pem_or_der);
// DER SubjectPublicKeyInfo of a key (public or private).
Result<Bytes> public_key_spki(const EVP_PKEY& key);

struct CertificateRequest {
  // The subject's commonName (for the authority: its URL, as Azure Attestation's certificates).
  std::string common_name;
  std::string organization;  // optional O=
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // dotted IPv4 or IPv6 text
  bool is_ca = false;                     // basicConstraints CA:TRUE, keyCertSign + cRLSign
  bool server_auth = false;               // extendedKeyUsage serverAuth, digitalSignature
  bool code_signing = false;              // digitalSignature only (token / JWS signing certs)
  std::int64_t not_before = 0;            // unix seconds; 0 = now - 1 hour
  std::int64_t lifetime_seconds = 5 * 365 * 86400;
};

// Issues a certificate for `subject_key` signed by `issuer_key` (SHA-256). issuer_cert null
// means self-signed (issuer name = subject name). Random 16-byte serial, subject and authority
// key identifiers.
Result<ossl::UniquePtr<X509>> make_certificate(const CertificateRequest& request,
                                               EVP_PKEY& subject_key, EVP_PKEY& issuer_key,
                                               const X509* issuer_cert);

Bytes certificate_der(const X509& cert);
std::string certificate_pem(const X509& cert);
Result<ossl::UniquePtr<X509>> certificate_from_der(std::span<const std::uint8_t> der);
// Every "CERTIFICATE" block of a PEM text, in order. kFormat when there is none.
Result<std::vector<ossl::UniquePtr<X509>>> certificates_from_pem(std::string_view pem);

// SHA-1 and SHA-256 of the certificate's DER (x5t and x5t#S256 of a JWS header).
Bytes thumbprint_sha1(const X509& cert);
Bytes thumbprint_sha256(const X509& cert);
// The certificate's subject commonName ("" when it has none).
std::string common_name(const X509& cert);

struct ChainCheck {
  // DNS name or IP address the leaf must be valid for (X509_check_host / X509_check_ip_asc);
  // empty: not checked.
  std::string host;
  // Verification time in unix seconds; 0 = now.
  std::int64_t at = 0;
};

// Verifies that `chain[0]` (the leaf) chains to one of the certificates in `trust_pem` through
// the other certificates of `chain` (X509_verify_cert). kIntegrityFailure naming OpenSSL's reason
// when it does not; kFormat when trust_pem holds no certificate.
Status verify_chain(std::span<const ossl::UniquePtr<X509>> chain, std::string_view trust_pem,
                    const ChainCheck& check = {});

// A local TLS setup: a fresh self-signed CA and a server certificate it signs, valid for
// 127.0.0.1, ::1, localhost and `extra_dns_names`.
struct LocalTls {
  std::string ca_cert_pem;
  std::string server_cert_pem;  // leaf only
  SecretBytes server_key_pem;   // PKCS#8
};
Result<LocalTls> make_local_tls(std::string_view ca_name,
                                const std::vector<std::string>& extra_dns_names = {});

// File names write_local_tls() uses inside its folder.
inline constexpr const char* kTlsCaFile = "tls-ca.pem";
inline constexpr const char* kTlsCertFile = "tls-server-cert.pem";
inline constexpr const char* kTlsKeyFile = "tls-server-key.pem";

// Writes make_local_tls()'s three files into `dir` (the key with mode 0600), replacing older
// ones when overwrite is set (else kAlreadyExists).
Status write_local_tls(const std::filesystem::path& dir, const LocalTls& tls, bool overwrite);

}  // namespace keyport::x509
