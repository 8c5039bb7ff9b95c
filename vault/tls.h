// SPDX-License-Identifier: Apache-2.0
// Certificate material for the vault's HTTPS server, made with OpenSSL EVP/X509.
//
// On first start the server creates, in DIR/tls/:
//   ca.pem          a self-signed "keyport vault CA" certificate (EC P-256, 10 years): clients
//                   trust it (NODE_EXTRA_CA_CERTS, curl --cacert, keyport --ca-file);
//   ca-key.pem      its private key, PKCS#8, mode 0600. THIS IS A SIMULATION: the CA key lives
//                   next to the certificates it signs;
//   server.pem      the server certificate (EC P-256, 1 year) signed by the CA, with SANs
//                   127.0.0.1, ::1, localhost, this machine's host name and the vault's own host;
//   server-key.pem  its private key, mode 0600.
// Later starts reuse them; the server certificate alone is reissued (by the same CA) when it does
// not cover a name the server needs, expires within 30 days, or was not signed by ca.pem.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ossl.h"

namespace keyport::vault {

struct TlsMaterial {
  ossl::UniquePtr<X509> cert;                // the server's certificate (leaf)
  std::vector<ossl::UniquePtr<X509>> chain;  // intermediates sent after the leaf (may be empty)
  ossl::UniquePtr<EVP_PKEY> key;             // the leaf's private key
  std::filesystem::path ca_file;  // the vault CA clients trust; empty for --tls-cert material
  bool ca_created = false;        // the CA was made by this call
  bool cert_issued = false;       // the server certificate was (re)issued by this call
};

// The names the server certificate must cover: 127.0.0.1, ::1, localhost, this machine's host
// name (when it is a valid DNS name) and `vault_host` (the host of the vault's base URL, without
// port; skipped when empty or already listed).
std::vector<std::string> tls_names(const std::string& vault_host);

// Loads DIR/tls material, creating the CA and the server certificate when missing and reissuing
// the server certificate as described above. Key files are written with mode 0600.
Result<TlsMaterial> ensure_vault_tls(const std::filesystem::path& tls_dir,
                                     const std::vector<std::string>& names);

// Loads a certificate (PEM; the first block is the leaf, further blocks its chain) and its private
// key (PEM) supplied by the operator. kInvalidArgument when the key does not match the leaf.
Result<TlsMaterial> load_tls_files(const std::filesystem::path& cert_file,
                                   const std::filesystem::path& key_file);

// True when `cert` is valid for `name` (a DNS name or an IP address literal).
bool certificate_covers(X509& cert, const std::string& name);

}  // namespace keyport::vault
