// SPDX-License-Identifier: Apache-2.0
// The Managed HSM security domain (docs/vault.md "Security domain"): activation by download,
// the exchange (transfer) key, upload into a new HSM, the operations' status, and the refusal of
// everything else before activation. The file format is token-free in security_domain.*.
//
// What the security domain carries is the backup domain's two keys (vault_backup.cpp), so that
// the HSM that receives it restores the full backups (vault_full_backup.cpp) of the HSM that made
// it, as Azure's does. Azure's format lets the quorum of share holders open the data in software
// (az keyvault security-domain restore-blob does), so the domain keys' values leave the token
// here, and only here: read as non-sensitive session copies made by an ephemeral token key
// (read_domain_keys), sealed at once in the file's JWE, and wiped.
#include <openssl/x509.h>

#include <mutex>
#include <shared_mutex>

#include "byok/public_key.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/random.h"
#include "core/x509.h"
#include "vault/security_domain.h"
#include "vault/tls.h"
#include "vault/vault_impl.h"

namespace keyport::vault {
namespace {

constexpr const char* kExchangeLabel = "kp:security-domain-exchange";
constexpr const char* kExchangeCertFile = "sd-exchange.pem";  // in DIR/tls/
constexpr unsigned kExchangeBits = 3072;
// The data item keyport's security domain holds: the backup domain and its two keys.
constexpr const char* kDomainTag = "keyport-backup-domain";
constexpr std::string_view kDomainMagic = "keyport-sd-1";
constexpr std::size_t kUuidChars = 36;
constexpr std::size_t kDomainKeyBytes = 32;

Status managed_hsm_only(const VaultConfig& c) {
  if (c.flavor != Flavor::kManagedHsm) {
    return bad_parameter(
        "The security domain is a Managed HSM's: this vault is a Key Vault (keyport vault init "
        "--flavor managed-hsm).");
  }
  return {};
}

tl::unexpected<Error> already_activated(const VaultConfig& c) {
  return make_error(ErrorCode::kAlreadyExists, std::string(kConflict),
                    "The Managed HSM '" + c.name +
                        "' is already activated: its security domain was downloaded or uploaded "
                        "before.");
}

// The one answer to a restore blob that does not open (wrong exchange key, altered, not a
// security domain of keyport's), whatever the reason.
tl::unexpected<Error> unusable_blob() {
  return bad_parameter(
      "The security domain could not be opened: it was not made for this HSM's exchange key, or it "
      "was altered.");
}

// magic || domain uuid || wrap key || mac key
SecretBytes domain_payload(const std::string& domain, const DomainKeyValues& v) {
  SecretBytes out;
  out.append(as_bytes(kDomainMagic));
  out.append(as_bytes(domain));
  out.append(v.wrap.reveal(SecretAccess::unsafe()));
  out.append(v.mac.reveal(SecretAccess::unsafe()));
  return out;
}

Result<std::pair<std::string, DomainKeyValues>> parse_domain_payload(const SecretBytes& p) {
  const auto b = p.reveal(SecretAccess::unsafe());
  const std::size_t want = kDomainMagic.size() + kUuidChars + 2 * kDomainKeyBytes;
  if (b.size() != want || as_chars(b.first(kDomainMagic.size())) != kDomainMagic) {
    return integrity_error();
  }
  std::string domain(as_chars(b.subspan(kDomainMagic.size(), kUuidChars)));
  for (char c : domain) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) {
      return integrity_error();
    }
  }
  const std::size_t at = kDomainMagic.size() + kUuidChars;
  DomainKeyValues v;
  v.wrap = SecretBytes(b.subspan(at, kDomainKeyBytes));
  v.mac = SecretBytes(b.subspan(at + kDomainKeyBytes, kDomainKeyBytes));
  return std::make_pair(std::move(domain), std::move(v));
}

Result<std::vector<CK_OBJECT_HANDLE>> exchange_keys(const p11::Session& s) {
  p11::Template t;
  t.token(true).object_class(CKO_PRIVATE_KEY).label(kExchangeLabel);
  return s.find_objects(t, 16);
}

Json status_json(const char* status, std::string details) {
  return Json{{"status", status}, {"status_details", std::move(details)}};
}

}  // namespace

tl::unexpected<Error> Vault::Impl::not_activated_error() const {
  return make_error(ErrorCode::kPermissionDenied, std::string(kForbidden),
                    "The Managed HSM '" + config.name +
                        "' is not activated: activate it by downloading its security domain (az "
                        "keyvault security-domain download, keyport vault security-domain "
                        "download), or upload one, before any other operation.");
}

Result<Json> Vault::Impl::sd_download(Op& op, const Json& certificate_set) {
  KEYPORT_TRY(managed_hsm_only(config));
  std::lock_guard<std::mutex> one_at_a_time(sd_mutex);
  if (activated.load()) {
    return already_activated(config);
  }
  auto request = sd::parse_download_request(certificate_set);
  if (!request) {
    return bad_parameter(request.error().message());
  }
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  VaultConfig next = config;
  next.activation_required = false;
  if (next.backup_domain.empty()) {
    next.backup_domain = random_uuid();
  }
  KEYPORT_TRY(make_domain_keys(*lease, next.backup_domain));
  std::string file;
  {
    KEYPORT_ASSIGN_OR_RETURN(DomainKeyValues values, read_domain_keys(*lease, next.backup_domain));
    std::vector<sd::Datum> data;
    data.push_back(sd::Datum{kDomainTag, domain_payload(next.backup_domain, values)});
    KEYPORT_ASSIGN_OR_RETURN(file, sd::make_security_domain(*request, data));
  }
  KEYPORT_TRY(next.save(dir, /*overwrite=*/true));
  config = next;
  has_backup_domain = true;
  activated.store(true);
  op.note = "activated: security domain of backup domain " + config.backup_domain + " for " +
            std::to_string(request->recipients.size()) + " certificates, quorum " +
            std::to_string(request->required);
  sd_last_status =
      status_json("Success", "The security domain was downloaded: the Managed HSM is activated.");
  return Json{{"value", std::move(file)}};
}

Result<Json> Vault::Impl::sd_transfer_key(Op& op) {
  KEYPORT_TRY(managed_hsm_only(config));
  std::lock_guard<std::mutex> one_at_a_time(sd_mutex);
  if (activated.load()) {
    return already_activated(config);
  }
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  KEYPORT_ASSIGN_OR_RETURN(ReceivingKey k,
                           make_receiving_key(*lease, kExchangeLabel, kExchangeBits, false));
  const byok::PublicKey& pub = k.public_key;
  const Bytes n = pub.rsa_modulus();
  const Bytes e = pub.rsa_exponent();

  // Its certificate, issued by the vault CA (DIR/tls/ca.pem).
  const std::filesystem::path tls_dir = dir / "tls";
  KEYPORT_TRY(ensure_vault_tls(tls_dir, tls_names(host)));
  KEYPORT_ASSIGN_OR_RETURN(std::string ca_pem, read_text_file(tls_dir / "ca.pem", 1u << 20));
  KEYPORT_ASSIGN_OR_RETURN(auto cas, x509::certificates_from_pem(ca_pem));
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes ca_key_pem, read_secret_file(tls_dir / "ca-key.pem"));
  KEYPORT_ASSIGN_OR_RETURN(auto ca_key, x509::private_key_from(ca_key_pem));
  const unsigned char* p = pub.spki_der().data();
  ossl::UniquePtr<EVP_PKEY> subject(
      d2i_PUBKEY(nullptr, &p, static_cast<long>(pub.spki_der().size())));
  if (!subject) {
    return ossl::crypto_failure("d2i_PUBKEY");
  }
  x509::CertificateRequest req;
  req.common_name = config.name + " security domain exchange key";
  req.organization = "keyport simulated Managed HSM";
  req.lifetime_seconds = 30 * 86400;
  KEYPORT_ASSIGN_OR_RETURN(auto cert,
                           x509::make_certificate(req, *subject, *ca_key, cas.front().get()));
  const Bytes der = x509::certificate_der(*cert);
  KEYPORT_TRY(write_file_atomic(tls_dir / kExchangeCertFile, x509::certificate_pem(*cert),
                                WriteOptions{true, 0644}));
  (void)k.private_key.release();  // kept until the upload
  Json jwk{{"kty", "RSA"},
           {"key_ops", {"wrapKey", "encrypt"}},
           {"n", base64url_encode(n)},
           {"e", base64url_encode(e)},
           {"x5c", {base64_encode(der)}},
           {"x5t", base64url_encode(sha1(der))},
           {"x5t#S256", sd::thumbprint_s256(der)},
           {"alg", "RSA-OAEP-256"}};
  op.note = "made the security-domain exchange key (RSA-" + std::to_string(pub.bits()) +
            ", certificate SHA-256 " + hex_encode(sha256(der)) + ")";
  // azure-cli 2.45 reads "transfer_key" as a JSON string holding the JWK (json.loads twice).
  return Json{{"key_format", "jwk"}, {"transfer_key", dump_json(jwk)}};
}

Result<Json> Vault::Impl::sd_upload(Op& op, const Json& body) {
  KEYPORT_TRY(managed_hsm_only(config));
  std::lock_guard<std::mutex> one_at_a_time(sd_mutex);
  if (activated.load()) {
    return already_activated(config);
  }
  auto fail = [&](tl::unexpected<Error> e) {
    sd_last_status = status_json("Failed", e.value().message());
    return e;
  };
  const auto value = body.is_object() ? body.find("value") : body.end();
  if (!body.is_object() || value == body.end() || !value->is_string()) {
    return fail(bad_parameter(
        "The body must be {\"value\": <the restore blob of az keyvault security-domain "
        "restore-blob, as a string>}."));
  }
  auto blob = sd::parse_restore_blob(value->get_ref<const std::string&>());
  if (!blob) {
    return fail(bad_parameter(
        "The security domain is not a restore blob: " + blob.error().message() + "."));
  }
  auto cert_pem = read_text_file(dir / "tls" / kExchangeCertFile, 1u << 20);
  auto certs = cert_pem
                   ? x509::certificates_from_pem(*cert_pem)
                   : Result<std::vector<ossl::UniquePtr<X509>>>(tl::unexpected(cert_pem.error()));
  if (!certs) {
    return fail(bad_parameter(
        "This HSM has no exchange key: get it first (GET /securitydomain/upload, az keyvault "
        "security-domain init-recovery)."));
  }
  const Bytes cert_der = x509::certificate_der(*certs->front());
  if (blob->x5t_256 != sd::thumbprint_s256(cert_der)) {
    return fail(bad_parameter("The restore blob was made for another exchange key (x5t_256 " +
                              blob->x5t_256 + "; this HSM's is " + sd::thumbprint_s256(cert_der) +
                              ")."));
  }
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  KEYPORT_ASSIGN_OR_RETURN(auto keys, exchange_keys(*lease));
  if (keys.size() != 1) {
    return fail(bad_parameter("This HSM's token holds " + std::to_string(keys.size()) +
                              " exchange keys: get a new one (GET /securitydomain/upload)."));
  }
  const CK_OBJECT_HANDLE exchange = keys.front();
  const std::size_t k = kExchangeBits / 8;
  auto master = sd::jwe_decrypt_rsa(blob->wrapped_key, [&](std::span<const std::uint8_t> ek) {
    return ek.size() == k ? token_oaep_decrypt(*lease, exchange, HashAlg::kSha256, ek, k)
                          : Result<SecretBytes>(integrity_error());
  });
  if (!master || master->size() != sd::kMasterKeyBytes) {
    op.failure_reason = "the wrapped master key did not open";
    return fail(unusable_blob());
  }
  auto data = sd::open_restore_blob(*blob, *master);
  if (!data) {
    op.failure_reason = "a data item did not open under the master key";
    return fail(unusable_blob());
  }
  const sd::Datum* domain_item = nullptr;
  for (const auto& d : *data) {
    if (d.tag == kDomainTag) {
      domain_item = &d;
    }
  }
  if (domain_item == nullptr) {
    op.failure_reason = "no keyport-backup-domain item";
    return fail(unusable_blob());
  }
  auto payload = parse_domain_payload(domain_item->plaintext);
  if (!payload) {
    op.failure_reason = "the keyport-backup-domain item is malformed";
    return fail(unusable_blob());
  }
  const std::string& domain = payload->first;
  if (auto st = store_domain_keys(*lease, domain, payload->second); !st) {
    return fail(tl::unexpected(st.error()));
  }
  VaultConfig next = config;
  next.activation_required = false;
  next.backup_domain = domain;
  if (auto saved = next.save(dir, /*overwrite=*/true); !saved) {
    return fail(tl::unexpected(saved.error()));
  }
  config = next;
  has_backup_domain = true;
  activated.store(true);
  if (auto d = lease->destroy_object(exchange); !d) {
    log::warn("vault: cannot destroy the security-domain exchange key: " + d.error().describe());
  }
  std::error_code ec;
  std::filesystem::remove(dir / "tls" / kExchangeCertFile, ec);
  op.note = "activated: security domain of backup domain " + domain + " uploaded";
  sd_last_status = status_json("Success",
                               "The security domain was uploaded: the Managed HSM is activated. "
                               "Restore its keys from a full backup (PUT /restore).");
  return sd_last_status;
}

Result<Json> Vault::Impl::sd_status() const {
  KEYPORT_TRY(managed_hsm_only(config));
  std::lock_guard<std::mutex> lock(sd_mutex);
  if (sd_last_status.is_null()) {
    if (activated.load()) {
      return status_json("Success", "The Managed HSM is activated.");
    }
    return make_error(ErrorCode::kNotFound, "NotFound",
                      "No security-domain operation has run on this Managed HSM: it is not "
                      "activated.");
  }
  return sd_last_status;
}

// ---------------------------------------------------------------------------------------------

bool Vault::activated() const {
  return m_impl->activated.load();
}

Status Vault::require_activated() const {
  if (m_impl->activated.load()) {
    return {};
  }
  return m_impl->not_activated_error();
}

Result<Json> Vault::security_domain_download(const CallContext& ctx, const Json& certificate_set) {
  return m_impl->run(ctx, "HSMSecurityDomain_Download",
                     [&](Op& op) { return m_impl->sd_download(op, certificate_set); });
}

Result<Json> Vault::security_domain_transfer_key(const CallContext& ctx) {
  return m_impl->run(ctx, "HSMSecurityDomain_TransferKey",
                     [&](Op& op) { return m_impl->sd_transfer_key(op); });
}

Result<Json> Vault::security_domain_upload(const CallContext& ctx, const Json& body) {
  return m_impl->run(ctx, "HSMSecurityDomain_Upload",
                     [&](Op& op) { return m_impl->sd_upload(op, body); });
}

Result<Json> Vault::security_domain_status(const CallContext& ctx, bool upload) {
  return m_impl->run(
      ctx, upload ? "HSMSecurityDomain_UploadPending" : "HSMSecurityDomain_DownloadPending",
      [&](Op&) { return m_impl->sd_status(); });
}

}  // namespace keyport::vault
