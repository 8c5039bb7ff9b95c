// SPDX-License-Identifier: Apache-2.0
// The Managed HSM security domain file and its cryptography, token-free: what Azure's
// `az keyvault security-domain download | restore-blob | upload` read and write (docs/vault.md
// "Security domain"). The layout and algorithms are Azure's, as Debian's azure-cli 2.45 reads them
// (azure/cli/command_modules/keyvault/custom.py and its security_domain/ package):
//
//   security domain  {"EncData": {"data": [{"compact_jwe": J, "tag": T}, ...], "kdf": "sp108_kdf"},
//                     "SharedKeys": {"enc_shares": [{"enc_key": S, "x5t_256": X}, ...],
//                                    "required": M, "key_algorithm": "shamir_share"}}
//   restore blob     {"EncData": {...as above, under a new master key},
//                     "WrappedKey": {"enc_key": W, "x5t_256": X}}
//
// - a master key (32 random bytes) is split by Shamir's scheme over GF(257), one share per
//   certificate; a share is one little-endian uint16 per master-key byte, (x << 9) | f(x);
// - S is a compact JWE to certificate X (alg RSA-OAEP-256, enc A256CBC-HS512) of that share;
//   X is the base64url SHA-256 of the certificate's DER;
// - J is a compact JWE (alg "dir", enc A256CBC-HS512, kid T) under the 64 bytes that SP 800-108
//   (counter mode, HMAC-SHA512, label T, empty context) derives from the master key;
// - W is a compact JWE to the HSM's exchange certificate X of the new master key.
//
// Every failure to open something (a JWE, a share, a combination) is the same kIntegrityFailure.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "core/secret.h"

namespace keyport::vault::sd {

// Azure's bounds: 3..10 certificates, a quorum of 2..10 (at most the number of certificates).
inline constexpr std::size_t kMinCertificates = 3;
inline constexpr std::size_t kMaxCertificates = 10;
inline constexpr unsigned kMinQuorum = 2;
inline constexpr unsigned kMaxQuorum = 10;
// RSA keys of the certificates: at least 2048 bits (az refuses smaller ones).
inline constexpr unsigned kMinRsaBits = 2048;
inline constexpr std::size_t kMasterKeyBytes = 32;
// At most this many data items in a file or blob (keyport writes one).
inline constexpr std::size_t kMaxDataItems = 16;
// The largest security domain or restore blob keyport reads.
inline constexpr std::size_t kMaxDocumentBytes = 256 * 1024;

// SP 800-108 KDF in counter mode with HMAC-SHA512: K(i) = HMAC(key, [i]32 || label || 0x00 ||
// context || [bits]32), the leftmost `bits` (a multiple of 8, 8..4096) of K(1) || K(2) ...
Result<SecretBytes> kdf_sp800_108(const SecretBytes& key, std::string_view label,
                                  std::string_view context, std::size_t bits);

// Shamir's secret sharing over GF(257), byte by byte: `shares` arrays (x = 1..shares) of one
// uint16 per secret byte, any `required` of which give the secret back. 2 <= required <= shares
// <= 127 (kInvalidArgument otherwise).
Result<std::vector<std::vector<std::uint16_t>>> shamir_split(const SecretBytes& secret,
                                                             unsigned shares, unsigned required);
// The secret from `required` share arrays (the first `required` of `shares` are used).
// kIntegrityFailure when they do not combine (lengths differ, an x repeats or is 0, a value is
// out of the field, or a result is not a byte).
Result<SecretBytes> shamir_combine(std::span<const std::vector<std::uint16_t>> shares,
                                   unsigned required);

// A compact JWE with enc A256CBC-HS512 (RFC 7518 5.2.5: the first 32 bytes of the 64-byte CEK
// key the HMAC-SHA512 tag, the last 32 AES-256-CBC).
// alg "dir", the given kid: the CEK is `key` (64 bytes).
Result<std::string> jwe_encrypt_dir(const SecretBytes& key, std::string_view kid,
                                    const SecretBytes& plaintext);
Result<SecretBytes> jwe_decrypt_dir(const SecretBytes& key, std::string_view compact);
// alg "RSA-OAEP-256": a fresh CEK encrypted to the RSA public key `spki_der`.
Result<std::string> jwe_encrypt_rsa(std::span<const std::uint8_t> spki_der,
                                    const SecretBytes& plaintext);
// Opens an alg "RSA-OAEP-256" JWE; `decrypt_cek` turns the encrypted key into the 64-byte CEK (in
// a token, or in software with a private key).
using CekDecryptor = std::function<Result<SecretBytes>(std::span<const std::uint8_t>)>;
Result<SecretBytes> jwe_decrypt_rsa(std::string_view compact, const CekDecryptor& decrypt_cek);

// One certificate of a download request, and of a security domain's shares.
struct Recipient {
  Bytes cert_der;
  Bytes spki_der;        // its RSA public key
  std::string x5t_s256;  // base64url SHA-256 of cert_der
};

// The body of POST /securitydomain/download (Azure's CertificateSet).
struct DownloadRequest {
  std::vector<Recipient> recipients;
  unsigned required = 0;
};

// Reads a CertificateSet: {"certificates": [JWK with "x5c": [base64 DER], ...], "required": M}.
// Each certificate must hold an RSA key of at least 2048 bits; a JWK's "n"/"e", "x5t" and
// "x5t#S256", when present, must match it; no certificate twice; 3..10 certificates, quorum
// 2..min(10, N). kInvalidArgument naming the problem otherwise.
Result<DownloadRequest> parse_download_request(const Json& body);
// The CertificateSet for PEM certificates (each one "CERTIFICATE" block), as az builds it: JWKs
// with kty, key_ops, n, e, x5c, x5t, x5t#S256 and alg RSA-OAEP-256. The same checks.
Result<Json> download_request_json(std::span<const std::string> cert_pems, unsigned required);

// One data item: its tag (the KDF label and the JWE's kid) and its plaintext.
struct Datum {
  std::string tag;
  SecretBytes plaintext;
};

// Makes a security domain for `request` holding `data`: a fresh master key, split and sealed to
// the recipients. Returns the file's JSON text.
Result<std::string> make_security_domain(const DownloadRequest& request,
                                         std::span<const Datum> data);

// A security domain file, read (the JWEs are not opened).
struct SecurityDomainFile {
  struct Share {
    std::string enc_key;  // compact JWE
    std::string x5t_256;
  };
  std::vector<std::pair<std::string, std::string>> data;  // (compact_jwe, tag)
  std::vector<Share> shares;
  unsigned required = 0;
};
// kFormat naming the member when the text is not a security domain (Azure's rules: kdf
// "sp108_kdf", key_algorithm "shamir_share", required 2..10, at least `required` shares).
Result<SecurityDomainFile> parse_security_domain(std::string_view text);

// A share holder's key pair: the certificate (DER) and its private key (PKCS#8 DER).
struct WrappingKey {
  Bytes cert_der;
  SecretBytes private_key_der;
};

// `az keyvault security-domain restore-blob`: opens `required` shares with the wrapping keys
// (matched to shares by certificate thumbprint), recombines the master key, opens the data and
// seals it again under a fresh master key wrapped to `exchange_cert_der`. kInvalidArgument when
// fewer than `required` wrapping keys match a share; kIntegrityFailure when something does not
// open.
Result<std::string> make_restore_blob(const SecurityDomainFile& file,
                                      std::span<const WrappingKey> keys,
                                      std::span<const std::uint8_t> exchange_cert_der);

// The body an HSM receives in POST /securitydomain/upload ({"value": <restore blob text>}), read.
struct RestoreBlob {
  std::vector<std::pair<std::string, std::string>> data;  // (compact_jwe, tag)
  std::string wrapped_key;                                // compact JWE to the exchange key
  std::string x5t_256;                                    // the exchange certificate's thumbprint
};
Result<RestoreBlob> parse_restore_blob(std::string_view text);
// The data of a restore blob under its master key (already unwrapped). kIntegrityFailure when an
// item does not open.
Result<std::vector<Datum>> open_restore_blob(const RestoreBlob& blob, const SecretBytes& master);

// base64url SHA-256 of a certificate's DER (x5t#S256, x5t_256).
std::string thumbprint_s256(std::span<const std::uint8_t> cert_der);

}  // namespace keyport::vault::sd
