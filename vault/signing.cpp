// SPDX-License-Identifier: Apache-2.0
#include "vault/signing.h"

#include <openssl/x509.h>

#include <ctime>
#include <filesystem>

#include "core/file_io.h"
#include "core/log.h"
#include "core/net.h"
#include "core/x509.h"
#include "vault/tls.h"

namespace keyport::vault {

namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kSigningRenewBefore = 30 * 86400;
constexpr std::int64_t kSigningLifetime = 365 * 86400;

// The identity in `cert_file`/`key_file` when it is whole, matches, chains to the CA for `host`
// and stays valid for 30 more days; nullopt otherwise.
std::optional<SigningIdentity> reuse_identity(const fs::path& cert_file, const fs::path& key_file,
                                              const std::string& host, const std::string& ca_pem,
                                              const X509& ca, std::int64_t now) {
  std::error_code ec;
  if (!fs::exists(cert_file, ec) || !fs::exists(key_file, ec)) {
    return std::nullopt;
  }
  auto pem = read_text_file(cert_file, 1u << 20);
  auto key = read_secret_file(key_file, 1u << 20);
  if (!pem || !key) {
    return std::nullopt;
  }
  auto certs = x509::certificates_from_pem(*pem);
  auto pkey = x509::private_key_from(*key);
  if (!certs || !pkey) {
    return std::nullopt;
  }
  std::vector<ossl::UniquePtr<X509>> one;
  one.push_back(std::move(certs->front()));
  x509::ChainCheck check;
  check.host = host;
  check.at = now + kSigningRenewBefore;
  auto spki_cert = x509::public_key_spki(*X509_get0_pubkey(one.front().get()));
  auto spki_key = x509::public_key_spki(**pkey);
  if (!x509::verify_chain(one, ca_pem, check) || !spki_cert || !spki_key ||
      *spki_cert != *spki_key) {
    return std::nullopt;
  }
  auto signer = skr::SoftwareSigner::from_private_key(*key, skr::JwsAlg::kRs256);
  if (!signer) {
    return std::nullopt;
  }
  return SigningIdentity{std::make_shared<skr::SoftwareSigner>(std::move(*signer)),
                         {x509::certificate_der(*one.front()), x509::certificate_der(ca)},
                         ca_pem};
}

}  // namespace

Result<SigningIdentity> ensure_signing_identity(const fs::path& dir, std::string_view vault_host,
                                                const SigningPurpose& purpose) {
  const std::string host = host_only(vault_host);
  const fs::path tls_dir = dir / "tls";
  KEYPORT_TRY(ensure_vault_tls(tls_dir, tls_names(host)));
  KEYPORT_ASSIGN_OR_RETURN(std::string ca_pem, read_text_file(tls_dir / "ca.pem", 1u << 20));
  KEYPORT_ASSIGN_OR_RETURN(auto cas, x509::certificates_from_pem(ca_pem));
  const X509& ca = *cas.front();
  const fs::path cert_file = tls_dir / purpose.cert_file;
  const fs::path key_file = tls_dir / purpose.key_file;
  // Certificates follow the wall clock, as the vault CA's do (vault/tls.cpp), not the vault's
  // own clock, which tests and rotation drills move.
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (auto reused = reuse_identity(cert_file, key_file, host, ca_pem, ca, now)) {
    return std::move(*reused);
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes ca_key_pem, read_secret_file(tls_dir / "ca-key.pem"));
  KEYPORT_ASSIGN_OR_RETURN(auto ca_key, x509::private_key_from(ca_key_pem));
  KEYPORT_ASSIGN_OR_RETURN(auto key, x509::generate_rsa_key(2048));
  x509::CertificateRequest req;
  req.common_name = host;
  req.organization = purpose.organization;
  if (is_ip_literal(host)) {
    req.ip_addresses = {host};
  } else {
    req.dns_names = {host};
  }
  req.code_signing = true;
  req.not_before = now - 3600;
  req.lifetime_seconds = kSigningLifetime;
  KEYPORT_ASSIGN_OR_RETURN(auto cert, x509::make_certificate(req, *key, *ca_key, &ca));
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes key_pem, x509::private_key_pem(*key));
  KEYPORT_TRY(write_file_atomic(key_file, key_pem.reveal(SecretAccess::unsafe()),
                                WriteOptions{true, 0600}));
  KEYPORT_TRY(write_file_atomic(cert_file, x509::certificate_pem(*cert), WriteOptions{true, 0644}));
  KEYPORT_ASSIGN_OR_RETURN(auto signer,
                           skr::SoftwareSigner::from_private_key(key_pem, skr::JwsAlg::kRs256));
  log::info("vault: issued the " + std::string(purpose.organization) + " certificate for " + host +
            " (" + cert_file.string() + ")");
  return SigningIdentity{std::make_shared<skr::SoftwareSigner>(std::move(signer)),
                         {x509::certificate_der(*cert), x509::certificate_der(ca)},
                         std::move(ca_pem)};
}

}  // namespace keyport::vault
