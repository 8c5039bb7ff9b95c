// SPDX-License-Identifier: Apache-2.0
// The vault's signing identities: an RSA-2048 key and a certificate issued by the vault CA
// (DIR/tls/ca.pem, vault/tls.h) for each kind of statement the vault signs (release responses,
// key attestations), kept in DIR/tls/ and reissued when missing, not matching its key, not chaining
// to the CA, or expiring within 30 days. One key per purpose.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "skr/jws.h"

namespace keyport::vault {

struct SigningPurpose {
  const char* cert_file;     // in DIR/tls/
  const char* key_file;      // in DIR/tls/, mode 0600
  const char* organization;  // the certificate's O=, which says what the key signs
};

struct SigningIdentity {
  std::shared_ptr<skr::SoftwareSigner> signer;  // RS256
  std::vector<Bytes> chain;                     // DER: the signing certificate, then the CA
  std::string ca_pem;                           // the vault CA
};

// Loads or (re)issues the identity for `purpose` under the CA of the vault folder `dir`. The
// certificate names `vault_host` (the vault's host, a port allowed); it follows the wall clock, not
// the vault's settable clock.
Result<SigningIdentity> ensure_signing_identity(const std::filesystem::path& dir,
                                                std::string_view vault_host,
                                                const SigningPurpose& purpose);

}  // namespace keyport::vault
