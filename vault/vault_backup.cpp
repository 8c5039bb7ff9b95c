// SPDX-License-Identifier: Apache-2.0
// BackupKey and RestoreKey, the backup domain's keys in the vault token, and joining a vault to
// another vault's backup domain (docs/vault.md "Backup and restore").
//
// The domain keys are two token objects of the vault's own token, labelled
// "kp:backup-domain:<uuid>:wrap" (AES-256: C_WrapKey/C_UnwrapKey with CKM_AES_KEY_WRAP_PAD of
// the key versions' objects) and "kp:backup-domain:<uuid>:mac" (a 32-byte generic secret:
// CKM_SHA256_HMAC over the blob). One key, one purpose. Both are private, sensitive and
// extractable only so that a joining vault can receive them (RSA-OAEP + AES-KWP to a key made in
// its own token): they never exist outside a token unwrapped.
#include <mutex>
#include <shared_mutex>

#include "byok/public_key.h"
#include "core/log.h"
#include "core/random.h"
#include "vault/backup_blob.h"
#include "vault/vault_impl.h"

namespace keyport::vault {
namespace {

constexpr const char* kDomainLabelPrefix = "kp:backup-domain:";
constexpr const char* kDomainTransferLabel = "kp:backup-domain-transfer";
constexpr unsigned kDomainTransferBits = 3072;

std::string domain_label(const std::string& domain, const char* role) {
  return std::string(kDomainLabelPrefix) + domain + ":" + role;
}

p11::Template domain_key_template(const std::string& domain, bool mac) {
  p11::Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(mac ? CKK_GENERIC_SECRET : CKK_AES)
      .token(true)
      .private_object(true)
      .sensitive(true)
      .extractable(true)
      .label(domain_label(domain, mac ? "mac" : "wrap"))
      .derive(false)
      .encrypt(false)
      .decrypt(false);
  if (mac) {
    t.sign(true).verify(true).wrap(false).unwrap(false);
  } else {
    t.wrap(true).unwrap(true).sign(false).verify(false);
  }
  return t;
}

Result<std::optional<CK_OBJECT_HANDLE>> find_domain_key(const p11::Session& s,
                                                        const std::string& domain, bool mac) {
  p11::Template t;
  t.token(true).object_class(CKO_SECRET_KEY).label(domain_label(domain, mac ? "mac" : "wrap"));
  KEYPORT_ASSIGN_OR_RETURN(auto found, s.find_objects(t, 2));
  if (found.size() > 1) {
    return internal_error("the vault token holds two backup-domain keys of one kind");
  }
  if (found.empty()) {
    return std::optional<CK_OBJECT_HANDLE>();
  }
  return std::optional<CK_OBJECT_HANDLE>(found.front());
}

struct DomainKeys {
  CK_OBJECT_HANDLE wrap = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE mac = CK_INVALID_HANDLE;
};

Result<DomainKeys> domain_keys(const p11::Session& s, const std::string& domain) {
  KEYPORT_ASSIGN_OR_RETURN(auto w, find_domain_key(s, domain, false));
  KEYPORT_ASSIGN_OR_RETURN(auto m, find_domain_key(s, domain, true));
  if (!w || !m) {
    return make_error(ErrorCode::kPermissionDenied, std::string(kForbidden),
                      "This vault has no backup-domain keys in its token: BackupKey and "
                      "RestoreKey are unavailable.");
  }
  return DomainKeys{*w, *m};
}

Result<Bytes> blob_mac(const p11::Session& s, CK_OBJECT_HANDLE mac_key,
                       std::span<const std::uint8_t> data) {
  CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
  return s.sign(mech, mac_key, data);
}

bool same_bytes(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

// Azure's answer to a blob it cannot use (BadParameter); one message for every altered byte.
tl::unexpected<Error> invalid_backup() {
  return bad_parameter(
      "Backup blob contains invalid or corrupt version. The blob is not a backup of this vault's "
      "backup domain, or it was altered.");
}

// The joining vault's transfer private keys (normally none or one).
Result<std::vector<CK_OBJECT_HANDLE>> transfer_keys(const p11::Session& s) {
  p11::Template t;
  t.token(true).object_class(CKO_PRIVATE_KEY).label(kDomainTransferLabel);
  return s.find_objects(t, 16);
}

Status backups_available(const VaultConfig& config) {
  if (config.backup_domain_join) {
    return make_error(ErrorCode::kPermissionDenied, std::string(kForbidden),
                      "This vault is still waiting for the keys of the backup domain it joins "
                      "(keyport vault init --backup-domain did not finish): BackupKey and "
                      "RestoreKey are unavailable.");
  }
  return {};
}

tl::unexpected<Error> not_joining() {
  return make_error(ErrorCode::kFailedPrecondition,
                    "this vault is not joining a backup domain (only a vault made by keyport "
                    "vault init --backup-domain receives domain keys)");
}

}  // namespace

Result<bool> Vault::Impl::make_domain_keys(const p11::Session& s, const std::string& domain) {
  KEYPORT_ASSIGN_OR_RETURN(auto w, find_domain_key(s, domain, false));
  KEYPORT_ASSIGN_OR_RETURN(auto m, find_domain_key(s, domain, true));
  if (!w) {
    CK_MECHANISM gen{CKM_AES_KEY_GEN, nullptr, 0};
    p11::Template t = domain_key_template(domain, false);
    t.value_len(32);
    KEYPORT_TRY(s.generate_key(gen, t));
  }
  if (!m) {
    CK_MECHANISM gen{CKM_GENERIC_SECRET_KEY_GEN, nullptr, 0};
    p11::Template t = domain_key_template(domain, true);
    t.value_len(32);
    KEYPORT_TRY(s.generate_key(gen, t));
  }
  return !w || !m;
}

Result<bool> Vault::Impl::ensure_backup_domain() {
  if (config.backup_domain_join || config.activation_required) {
    // The keys come from another vault (finish_backup_domain_join) or with the security domain
    // (vault_security_domain.cpp); none of its own meanwhile.
    return false;
  }
  const bool fresh = config.backup_domain.empty();
  if (fresh) {
    config.backup_domain = random_uuid();
  }
  auto made = make_domain_keys(*anchor, config.backup_domain);
  if (!made) {
    log::warn("vault: cannot make the backup-domain keys: " + made.error().describe());
    return false;
  }
  if (fresh) {
    KEYPORT_TRY(config.save(dir, /*overwrite=*/true));
  }
  if (*made) {
    audit_system("BackupDomainKeys", "",
                 "made the backup-domain keys of domain " + config.backup_domain + " in the token");
  }
  return true;
}

Result<DomainKeyValues> Vault::Impl::read_domain_keys(const p11::Session& s,
                                                      const std::string& domain) {
  KEYPORT_ASSIGN_OR_RETURN(DomainKeys dk, domain_keys(s, domain));
  // An ephemeral AES key of the token wraps each domain key (AES-KWP) and unwraps it again as a
  // non-sensitive session key, whose value is the answer: the token's secret bytes are never read.
  CK_MECHANISM gen{CKM_AES_KEY_GEN, nullptr, 0};
  p11::Template et;
  et.object_class(CKO_SECRET_KEY)
      .key_type(CKK_AES)
      .token(false)
      .private_object(true)
      .sensitive(true)
      .extractable(false)
      .wrap(true)
      .unwrap(true)
      .value_len(32);
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE eh, s.generate_key(gen, et));
  p11::ScopedObject ephemeral(s, eh);
  CK_MECHANISM kwp{CKM_AES_KEY_WRAP_PAD, nullptr, 0};
  auto value_of = [&](CK_OBJECT_HANDLE key) -> Result<SecretBytes> {
    KEYPORT_ASSIGN_OR_RETURN(Bytes wrapped, s.wrap_key(kwp, ephemeral.get(), key, 64));
    return token_aes_kw_unwrap(s, ephemeral.get(), wrapped, /*pad=*/true);
  };
  DomainKeyValues v;
  KEYPORT_ASSIGN_OR_RETURN(v.wrap, value_of(dk.wrap));
  KEYPORT_ASSIGN_OR_RETURN(v.mac, value_of(dk.mac));
  KEYPORT_TRY(ephemeral.destroy());
  if (v.wrap.size() != 32 || v.mac.size() != 32) {
    return internal_error("the backup-domain keys are not 32 bytes each");
  }
  return v;
}

Status Vault::Impl::store_domain_keys(const p11::Session& s, const std::string& domain,
                                      const DomainKeyValues& v) {
  KEYPORT_ASSIGN_OR_RETURN(auto have_wrap, find_domain_key(s, domain, false));
  KEYPORT_ASSIGN_OR_RETURN(auto have_mac, find_domain_key(s, domain, true));
  if (have_wrap || have_mac) {
    return make_error(ErrorCode::kAlreadyExists, std::string(kConflict),
                      "This HSM's token already holds keys of backup domain " + domain + ".");
  }
  p11::Template wt = domain_key_template(domain, false);
  wt.set_secret(CKA_VALUE, v.wrap.clone());
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE wh, s.create_object(wt));
  p11::ScopedObject wrap_key(s, wh);
  p11::Template mt = domain_key_template(domain, true);
  mt.set_secret(CKA_VALUE, v.mac.clone());
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE mh, s.create_object(mt));
  p11::ScopedObject mac_key(s, mh);
  // Both must work as the domain's keys before the vault relies on them.
  KEYPORT_TRY(blob_mac(s, mac_key.get(), as_bytes(domain)));
  (void)wrap_key.release();
  (void)mac_key.release();
  return {};
}

Result<Json> Vault::Impl::backup_key(Op& op, std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord latest, resolve(op, name, ""));
  op.version.clear();
  KEYPORT_ASSIGN_OR_RETURN(auto records, store->versions(latest.name));
  KEYPORT_ASSIGN_OR_RETURN(auto policy, store->find_rotation_policy(latest.name));
  KEYPORT_TRY(backups_available(config));
  std::vector<BackupVersion> versions;
  std::shared_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  KEYPORT_ASSIGN_OR_RETURN(DomainKeys dk, domain_keys(*lease, config.backup_domain));
  for (auto& r : records) {
    auto h = handles.find(*lease, r.cka_id, r.spec.family);
    if (!h) {
      return tl::unexpected(detail::lookup_error(h.error(), r));
    }
    CK_MECHANISM kwp{CKM_AES_KEY_WRAP_PAD, nullptr, 0};
    CK_RV rv = CKR_OK;
    auto wrapped = lease->wrap_key(kwp, dk.wrap, *h, 8192, &rv);
    if (!wrapped) {
      if (rv == CKR_KEY_UNEXTRACTABLE || rv == CKR_KEY_NOT_WRAPPABLE) {
        return bad_parameter("Version " + r.version + " of key " + r.name +
                             " was created before this vault supported BackupKey: its token "
                             "object is not extractable, so it cannot be backed up.");
      }
      return tl::unexpected(wrapped.error());
    }
    BackupVersion bv;
    bv.wrapped = std::move(*wrapped);
    bv.record = std::move(r);
    bv.record.cka_id.clear();
    versions.push_back(std::move(bv));
  }
  const std::string payload = backup_payload(latest.name, versions, policy);
  Bytes blob = backup_signed_part(config.backup_domain, payload);
  KEYPORT_ASSIGN_OR_RETURN(Bytes mac, blob_mac(*lease, dk.mac, blob));
  blob.insert(blob.end(), mac.begin(), mac.end());
  op.note = "backed up " + std::to_string(versions.size()) + " version(s), " +
            std::to_string(blob.size()) + " bytes, domain " + config.backup_domain;
  return Json{{"value", base64url_encode(blob)}};
}

Result<BackupContents> Vault::Impl::authentic_backup(Op& op, const p11::Session& s,
                                                     std::span<const std::uint8_t> blob) {
  KEYPORT_TRY(backups_available(config));
  auto frame = parse_backup_frame(blob);
  if (!frame) {
    op.failure_reason = frame.error().message();
    return invalid_backup();
  }
  if (frame->domain != config.backup_domain) {
    return bad_parameter("The backup blob was made in a different backup domain (" + frame->domain +
                         ") than this vault's (" + config.backup_domain +
                         "): a backup restores only into a vault of its domain (keyport vault init "
                         "--backup-domain; Azure: the same geography and subscription).");
  }
  KEYPORT_ASSIGN_OR_RETURN(DomainKeys dk, domain_keys(s, config.backup_domain));
  KEYPORT_ASSIGN_OR_RETURN(Bytes mac, blob_mac(s, dk.mac, frame->signed_part));
  if (!same_bytes(mac, frame->mac)) {
    op.failure_reason = "the blob's MAC does not verify";
    return invalid_backup();
  }
  auto contents = parse_backup_payload(frame->payload);
  if (!contents) {
    // Authentic but unreadable: a blob of a newer keyport, or a bug.
    op.failure_reason = contents.error().message();
    return invalid_backup();
  }
  op.note = "domain " + frame->domain;
  return std::move(*contents);
}

Result<Json> Vault::Impl::restore_key(Op& op, const Json& params) {
  if (!params.is_object()) {
    return bad_parameter("The request body must be a JSON object (KeyRestoreParameters).");
  }
  const Json* value = member(params, "value");
  if (value == nullptr || !value->is_string()) {
    return bad_parameter("The request needs a base64url string member \"value\".");
  }
  if (value->get_ref<const std::string&>().size() > kMaxBackupBytes * 4 / 3 + 4) {
    return invalid_backup();
  }
  auto blob = base64url_decode(value->get_ref<const std::string&>());
  if (!blob) {
    return bad_parameter("Member \"value\" is not valid base64url.");
  }
  return restore_blob(op, *blob);
}

Result<Json> Vault::Impl::restore_blob(Op& op, std::span<const std::uint8_t> blob) {
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  KEYPORT_ASSIGN_OR_RETURN(BackupContents contents_value, authentic_backup(op, *lease, blob));
  auto* contents = &contents_value;
  KEYPORT_ASSIGN_OR_RETURN(DomainKeys dk, domain_keys(*lease, config.backup_domain));
  op.name = contents->name;
  KEYPORT_ASSIGN_OR_RETURN(auto existing, store->find_key(contents->name));
  if (existing) {
    return make_error(
        ErrorCode::kAlreadyExists, std::string(kConflict),
        "There was a conflict restoring the key '" + existing->name +
            "'. A key with this name already exists" +
            (existing->deleted() ? " in the deleted state (recover or purge it)." : "."));
  }
  for (const auto& v : contents->versions) {
    if (v.record.spec.family == KeyFamily::kAes && config.flavor == Flavor::kKeyVault) {
      return bad_parameter(
          "oct-HSM keys are available only in Managed HSM; this vault is a Key Vault.");
    }
  }
  std::vector<std::unique_ptr<Pending>> pending;
  std::vector<KeyVersionRecord> records;
  for (auto& v : contents->versions) {
    KeyVersionRecord r = std::move(v.record);
    r.cka_id = random_bytes(16);
    const std::string label = detail::label_of(r.name, r.version);
    pending.push_back(std::make_unique<Pending>(*this, *lease, r.cka_id));
    KEYPORT_TRY(pending.back()->begin(label));
    KeyObjectSpec ks{r.spec, r.is_kek(), kTokenExtractable};
    p11::Template t = key_object_template(ks, label, r.cka_id, /*with_size=*/false);
    CK_MECHANISM kwp{CKM_AES_KEY_WRAP_PAD, nullptr, 0};
    auto h = lease->unwrap_key(kwp, dk.wrap, v.wrapped, t);
    if (!h) {
      op.failure_reason =
          "the token refused to unwrap version " + r.version + ": " + h.error().message();
      return invalid_backup();
    }
    records.push_back(std::move(r));
  }
  if (crash_point == CrashPoint::kAfterTokenObject) {
    for (auto& p : pending) {
      p->abandon();
    }
    op.suppress_audit = true;
    return internal_error("simulated crash after the token objects were created");
  }
  KEYPORT_TRY(store->restore_key(records, contents->rotation_policy));
  for (auto& p : pending) {
    p->committed();
  }
  KEYPORT_ASSIGN_OR_RETURN(auto latest, store->find_version(records.front().name, ""));
  if (!latest) {
    return internal_error("the restored key vanished");
  }
  op.version = latest->version;
  op.note = "restored " + std::to_string(records.size()) + " version(s), " + op.note;
  return key_bundle(config.base_url, *latest, recovery());
}

// --- joining a backup domain ---------------------------------------------------------------------

Result<Bytes> Vault::Impl::begin_backup_domain_join(Op& op) {
  if (!config.backup_domain_join) {
    return not_joining();
  }
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  KEYPORT_ASSIGN_OR_RETURN(
      ReceivingKey k, make_receiving_key(*lease, kDomainTransferLabel, kDomainTransferBits, true));
  const byok::PublicKey& pub = k.public_key;
  (void)k.private_key.release();  // kept until finish_backup_domain_join
  op.note = "made the backup-domain transfer key (RSA-" + std::to_string(pub.bits()) +
            ", SHA-256 " + pub.sha256_fingerprint() + ")";
  return pub.spki_der();
}

Result<std::string> Vault::Impl::export_backup_domain(Op& op, std::span<const std::uint8_t> spki) {
  if (config.backup_domain_join) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "this vault is itself still joining a backup domain: it has no domain keys "
                      "to give");
  }
  auto pub = byok::PublicKey::from_spki_der(spki);
  if (!pub) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the transfer key is not a public key: " + pub.error().message());
  }
  if (pub->family() != KeyFamily::kRsa || pub->bits() < kDomainTransferBits) {
    return make_error(ErrorCode::kInvalidArgument, "the transfer key must be RSA of at least " +
                                                       std::to_string(kDomainTransferBits) +
                                                       " bits");
  }
  // RSA-OAEP with SHA-256 when the token can, else the SHA-1 of CKM_RSA_AES_KEY_WRAP.
  WrapAlg alg = WrapAlg::kRsaAesKeyWrap256;
  auto strategy = p11::choose_strategy(caps, p11::WrapStrategy::kAuto, alg);
  if (!strategy) {
    alg = WrapAlg::kRsaAesKeyWrap;
    KEYPORT_ASSIGN_OR_RETURN(strategy, p11::choose_strategy(caps, p11::WrapStrategy::kAuto, alg));
  }
  std::shared_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  KEYPORT_ASSIGN_OR_RETURN(DomainKeys dk, domain_keys(*lease, config.backup_domain));
  KEYPORT_ASSIGN_OR_RETURN(
      p11::ScopedObject kek,
      p11::import_rsa_public_key(*lease, pub->rsa_modulus(), pub->rsa_exponent()));
  const std::size_t modulus_bytes = (pub->bits() + 7) / 8;
  DomainKeyTransfer t;
  t.domain = config.backup_domain;
  t.enc = alg;
  t.transfer_key_sha256 = pub->sha256_fingerprint();
  KEYPORT_ASSIGN_OR_RETURN(
      t.wrap, p11::wrap_rsa_aes(*lease, caps, *strategy, alg, kek.get(), modulus_bytes, dk.wrap));
  KEYPORT_ASSIGN_OR_RETURN(
      t.mac, p11::wrap_rsa_aes(*lease, caps, *strategy, alg, kek.get(), modulus_bytes, dk.mac));
  op.note = "wrapped the keys of backup domain " + t.domain + " (" +
            std::string(wrap_alg_name(alg)) + ") to transfer key RSA-" +
            std::to_string(pub->bits()) + " SHA-256 " + t.transfer_key_sha256;
  return domain_transfer_json(t);
}

Status Vault::Impl::finish_backup_domain_join(Op& op, std::string_view document) {
  if (!config.backup_domain_join) {
    return not_joining();
  }
  KEYPORT_ASSIGN_OR_RETURN(DomainKeyTransfer t, parse_domain_transfer(document));
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  KEYPORT_ASSIGN_OR_RETURN(auto transfer, transfer_keys(*lease));
  if (transfer.size() != 1) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "this vault's token holds " + std::to_string(transfer.size()) +
                          " backup-domain transfer keys (expected the one "
                          "begin_backup_domain_join made)");
  }
  const CK_OBJECT_HANDLE kek = transfer.front();
  KEYPORT_ASSIGN_OR_RETURN(Bytes n, lease->get_bytes(kek, CKA_MODULUS));
  KEYPORT_ASSIGN_OR_RETURN(Bytes e, lease->get_bytes(kek, CKA_PUBLIC_EXPONENT));
  KEYPORT_ASSIGN_OR_RETURN(auto pub, byok::PublicKey::from_rsa_components(n, e));
  if (pub.sha256_fingerprint() != t.transfer_key_sha256) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the domain keys were wrapped to another transfer key (SHA-256 " +
                          t.transfer_key_sha256 + ") than this vault's (" +
                          pub.sha256_fingerprint() + ")");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto have_wrap, find_domain_key(*lease, t.domain, false));
  KEYPORT_ASSIGN_OR_RETURN(auto have_mac, find_domain_key(*lease, t.domain, true));
  if (have_wrap || have_mac) {
    return make_error(ErrorCode::kAlreadyExists,
                      "this vault's token already holds keys of backup domain " + t.domain +
                          " (a token shared with a vault of that domain: name the domain in "
                          "vault.json instead)");
  }
  const std::size_t modulus_bytes = (pub.bits() + 7) / 8;
  auto unwrap = [&](const Bytes& wrapped, bool mac) -> Result<p11::ScopedObject> {
    auto h = p11::unwrap_rsa_aes(*lease, caps, p11::WrapStrategy::kAuto, t.enc, kek, modulus_bytes,
                                 wrapped, domain_key_template(t.domain, mac));
    if (!h) {
      return make_error(
          ErrorCode::kIntegrityFailure,
          "the token refused to unwrap the backup domain's keys: " + h.error().message());
    }
    return p11::ScopedObject(*lease, *h);
  };
  KEYPORT_ASSIGN_OR_RETURN(p11::ScopedObject wrap_key, unwrap(t.wrap, false));
  KEYPORT_ASSIGN_OR_RETURN(p11::ScopedObject mac_key, unwrap(t.mac, true));
  // The MAC key must work as the blob's MAC key before the vault relies on it.
  KEYPORT_TRY(blob_mac(*lease, mac_key.get(), n));
  VaultConfig joined = config;
  joined.backup_domain = t.domain;
  joined.backup_domain_join = false;
  KEYPORT_TRY(joined.save(dir, /*overwrite=*/true));
  config = joined;
  has_backup_domain = true;
  (void)wrap_key.release();
  (void)mac_key.release();
  if (auto d = lease->destroy_object(kek); !d) {
    log::warn("vault: cannot destroy the backup-domain transfer key: " + d.error().describe());
  }
  op.note = "joined backup domain " + t.domain + ": its keys unwrapped into the token (" +
            std::string(wrap_alg_name(t.enc)) + ", transfer key SHA-256 " + t.transfer_key_sha256 +
            ", destroyed)";
  return {};
}

// ---------------------------------------------------------------------------------------------

Result<Json> Vault::backup_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "BackupKey", [&](Op& op) { return m_impl->backup_key(op, name); });
}

Result<Json> Vault::restore_key(const CallContext& ctx, const Json& params) {
  return m_impl->run(ctx, "RestoreKey", [&](Op& op) { return m_impl->restore_key(op, params); });
}

const std::string& Vault::backup_domain() const {
  return m_impl->config.backup_domain;
}

Result<Bytes> Vault::begin_backup_domain_join(const CallContext& ctx) {
  return m_impl->run(ctx, "BackupDomainJoinBegin",
                     [&](Op& op) { return m_impl->begin_backup_domain_join(op); });
}

Result<std::string> Vault::export_backup_domain(const CallContext& ctx,
                                                std::span<const std::uint8_t> transfer_spki) {
  return m_impl->run(ctx, "BackupDomainExport",
                     [&](Op& op) { return m_impl->export_backup_domain(op, transfer_spki); });
}

Status Vault::finish_backup_domain_join(const CallContext& ctx,
                                        std::string_view transfer_document) {
  return m_impl->run(ctx, "BackupDomainJoin", [&](Op& op) {
    return m_impl->finish_backup_domain_join(op, transfer_document);
  });
}

}  // namespace keyport::vault
