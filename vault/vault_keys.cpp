// SPDX-License-Identifier: Apache-2.0
// Key management: CreateKey, GetKey, GetKeys, GetKeyVersions, UpdateKey, DeleteKey, the deleted
// keys (get, list, recover, purge), and what creates and imports share (the journal guard, the
// common parameters, the commit of a new version).
#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "core/log.h"
#include "core/random.h"
#include "vault/vault_impl.h"

namespace keyport::vault {

using detail::family_of_kty;
using detail::label_of;
using detail::split_kty;

Vault::Impl::Pending::~Pending() {
  if (!m_begun || m_done) {
    return;
  }
  m_v.handles.forget(m_id);
  auto destroyed = destroy_by_id(m_s, m_id);
  if (!destroyed) {
    log::warn(
        "vault: cannot destroy a half-made key object (the journal keeps it for the "
        "next open): " +
        destroyed.error().describe());
    return;
  }
  auto st = m_v.store->remove_pending(m_id);
  if (!st) {
    log::warn("vault: cannot clear a journal entry: " + st.error().describe());
  }
}

Status Vault::Impl::Pending::begin(const std::string& label) {
  KEYPORT_TRY(m_v.store->add_pending({m_id, label, "create", m_v.now()}));
  m_begun = true;
  return {};
}

Result<std::string> Vault::Impl::canonical_live_name(std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(auto key, store->find_key(name));
  if (!key) {
    return std::string(name);
  }
  if (key->deleted()) {
    return deleted_but_recoverable(key->name);
  }
  return key->name;
}

Result<Json> Vault::Impl::commit(Op& op, Pending& pending, KeyVersionRecord rec) {
  if (crash_point == CrashPoint::kAfterTokenObject) {
    pending.abandon();
    op.suppress_audit = true;
    return internal_error("simulated crash after the token object was created");
  }
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord stored, store->commit_new_version(std::move(rec)));
  pending.committed();
  op.name = stored.name;
  op.version = stored.version;
  return key_bundle(config.base_url, stored, recovery());
}

Result<Vault::Impl::CommonIn> Vault::Impl::parse_common(const Json& params, const Json& ops_holder,
                                                        KeyFamily family) {
  CommonIn c;
  if (const Json* ops = member(ops_holder, "key_ops")) {
    KEYPORT_ASSIGN_OR_RETURN(c.key_ops, parse_key_ops(*ops, family));
  } else {
    c.key_ops = default_key_ops(family);
  }
  KEYPORT_ASSIGN_OR_RETURN(AttributesIn a, parse_attributes(params));
  c.enabled = a.enabled.value_or(true);
  c.nbf = a.nbf;
  c.exp = a.exp;
  c.exportable = a.exportable.value_or(false);
  KEYPORT_ASSIGN_OR_RETURN(auto tags, parse_tags(params));
  if (tags) {
    c.tags = std::move(*tags);
  }
  KEYPORT_ASSIGN_OR_RETURN(c.policy, parse_release_policy(params));
  const bool kek = std::find(c.key_ops.begin(), c.key_ops.end(), "import") != c.key_ops.end();
  if (c.exportable && !c.policy) {
    return bad_parameter(
        "A release policy must be provided when creating an exportable key "
        "(attributes.exportable = true needs release_policy).");
  }
  if (c.policy && !c.exportable) {
    return bad_parameter(
        "A release policy can only be set on an exportable key (attributes.exportable = true).");
  }
  if (kek && c.exportable) {
    return bad_parameter("A key exchange key (key_ops [\"import\"]) cannot be exportable.");
  }
  if (!c.exportable && std::find(c.key_ops.begin(), c.key_ops.end(), "export") != c.key_ops.end()) {
    return bad_parameter("The key operation \"export\" needs an exportable key.");
  }
  return c;
}

KeyVersionRecord Vault::Impl::new_record(std::string_view name, const std::string& version,
                                         Bytes id, const std::string& kty, const KeySpec& spec,
                                         CommonIn c, Json public_jwk, std::string origin) {
  KeyVersionRecord r;
  r.name = std::string(name);
  r.version = version;
  r.kty = kty;
  r.spec = spec;
  r.public_jwk = std::move(public_jwk);
  r.key_ops = std::move(c.key_ops);
  r.enabled = c.enabled;
  r.nbf = c.nbf;
  r.exp = c.exp;
  r.created = now();
  r.updated = r.created;
  r.exportable = c.exportable;
  r.tags = std::move(c.tags);
  r.release_policy = std::move(c.policy);
  r.cka_id = std::move(id);
  r.origin = std::move(origin);
  return r;
}

Status Vault::Impl::check_profile(const KeySpec& spec) {
  auto st = byok::check_target_accepts(target(), spec);
  if (!st) {
    return bad_parameter(st.error().message());
  }
  return {};
}

Result<Json> Vault::Impl::create_key(Op& op, std::string_view name, const Json& params,
                                     const char* origin) {
  op.name = std::string(name);
  KEYPORT_TRY(check_key_name(name));
  if (!params.is_object()) {
    return bad_parameter("The request body must be a JSON object (KeyCreateParameters).");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string kty_in, string_member(params, "kty"));
  auto kty = split_kty(kty_in);
  if (!kty || kty_in == "oct") {
    return bad_parameter("Invalid kty \"" + kty_in +
                         "\": use RSA-HSM, EC-HSM or oct-HSM (RSA and EC also on key-vault).");
  }
  const KeyFamily family = family_of_kty(kty->first);
  const bool hsm = kty->second || config.flavor == Flavor::kManagedHsm;
  KeySpec spec;
  spec.family = family;
  const Json* size = member(params, "key_size");
  if (size != nullptr && !size->is_number_integer()) {
    return bad_parameter("key_size must be an integer.");
  }
  if (family == KeyFamily::kRsa) {
    spec.bits = size ? static_cast<unsigned>(size->get<std::int64_t>()) : 2048;
    if (spec.bits != 2048 && spec.bits != 3072 && spec.bits != 4096) {
      return bad_parameter("RSA key_size must be 2048, 3072 or 4096.");
    }
    if (const Json* pe = member(params, "public_exponent")) {
      if (!pe->is_number_integer() || pe->get<std::int64_t>() != 65537) {
        return bad_parameter("public_exponent must be 65537.");
      }
    }
  } else if (family == KeyFamily::kEc) {
    std::string crv = "P-256";
    if (const Json* c = member(params, "crv")) {
      if (!c->is_string()) {
        return bad_parameter("crv must be a string.");
      }
      crv = c->get<std::string>();
    }
    auto curve = curve_from_jwk_name(crv);
    if (!curve) {
      return bad_parameter("Invalid crv \"" + crv + "\" (P-256, P-384, P-521, P-256K).");
    }
    spec.curve = *curve;
    spec.bits = curve_bits(*curve);
  } else {
    spec.bits = size ? static_cast<unsigned>(size->get<std::int64_t>()) : 256;
    if (spec.bits != 128 && spec.bits != 192 && spec.bits != 256) {
      return bad_parameter("oct-HSM key_size must be 128, 192 or 256.");
    }
    if (config.flavor == Flavor::kKeyVault) {
      return bad_parameter(
          "oct-HSM keys are available only in Managed HSM; this vault is a Key Vault.");
    }
  }
  KEYPORT_TRY(check_profile(spec));
  KEYPORT_ASSIGN_OR_RETURN(CommonIn common, parse_common(params, params, family));
  const bool kek =
      std::find(common.key_ops.begin(), common.key_ops.end(), "import") != common.key_ops.end();
  if (kek && !hsm) {
    return bad_parameter("A key exchange key (key_ops [\"import\"]) must have kty RSA-HSM.");
  }
  KEYPORT_ASSIGN_OR_RETURN(const std::string canonical, canonical_live_name(name));

  const std::string version = new_version_id();
  Bytes id = random_bytes(16);
  const std::string label = label_of(canonical, version);
  // Exclusive: SoftHSM 2.6's file object store fails (CKR_GENERAL_ERROR) when a token object is
  // created while other threads use token objects.
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  Pending pending(*this, *lease, id);
  KEYPORT_TRY(pending.begin(label));
  KeyObjectSpec ks{spec, kek, kTokenExtractable};
  KEYPORT_ASSIGN_OR_RETURN(GeneratedKey gen, generate_key(*lease, ks, label, id));
  KEYPORT_TRY(check_key_object(*lease, gen.handle, kTokenExtractable));
  const std::string stored_kty = kty->first + (hsm ? "-HSM" : "");
  op.note = kek ? "key exchange key " + spec.name() : spec.name();
  return commit(op, pending,
                new_record(canonical, version, std::move(id), stored_kty, spec, std::move(common),
                           std::move(gen.public_jwk), origin));
}

Result<Json> Vault::Impl::get_key(Op& op, std::string_view name, std::string_view version) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
  if (!r.enabled) {
    return key_disabled("get");
  }
  return key_bundle(config.base_url, r, recovery());
}

Result<Json> Vault::Impl::list_keys() {
  KEYPORT_ASSIGN_OR_RETURN(auto keys, store->keys());
  Json values = Json::array();
  for (const auto& k : keys) {
    if (k.deleted()) {
      continue;
    }
    KEYPORT_ASSIGN_OR_RETURN(auto latest, store->find_version(k.name, ""));
    if (latest) {
      values.push_back(key_item(config.base_url, *latest, false, recovery()));
    }
  }
  return list_result(std::move(values));
}

Result<Json> Vault::Impl::list_key_versions(Op& op, std::string_view name) {
  op.name = std::string(name);
  if (!valid_key_name(name)) {
    return key_not_found(name);
  }
  KEYPORT_ASSIGN_OR_RETURN(auto key, store->find_key(name));
  if (!key || key->deleted()) {
    return key_not_found(name);
  }
  op.name = key->name;
  KEYPORT_ASSIGN_OR_RETURN(auto versions, store->versions(name));
  Json values = Json::array();
  for (const auto& v : versions) {
    values.push_back(key_item(config.base_url, v, true, recovery()));
  }
  return list_result(std::move(values));
}

Result<Json> Vault::Impl::update_key(Op& op, std::string_view name, std::string_view version,
                                     const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
  if (!params.is_object()) {
    return bad_parameter("The request body must be a JSON object (KeyUpdateParameters).");
  }
  std::vector<std::string> changed;
  if (const Json* ops = member(params, "key_ops")) {
    KEYPORT_ASSIGN_OR_RETURN(auto new_ops, parse_key_ops(*ops, r.spec.family));
    const bool now_kek = std::find(new_ops.begin(), new_ops.end(), "import") != new_ops.end();
    if (now_kek != r.is_kek()) {
      return bad_parameter(
          "The key operation \"import\" cannot be added to or removed from an existing key: a "
          "key exchange key is created as one.");
    }
    if (!r.exportable && std::find(new_ops.begin(), new_ops.end(), "export") != new_ops.end()) {
      return bad_parameter("The key operation \"export\" needs an exportable key.");
    }
    r.key_ops = std::move(new_ops);
    changed.push_back("key_ops");
  }
  KEYPORT_ASSIGN_OR_RETURN(AttributesIn a, parse_attributes(params));
  if (a.exportable && *a.exportable != r.exportable) {
    return bad_parameter("attributes.exportable cannot be changed after a key is created.");
  }
  if (a.enabled) {
    r.enabled = *a.enabled;
    changed.push_back("enabled");
  }
  if (a.nbf) {
    r.nbf = a.nbf;
    changed.push_back("nbf");
  }
  if (a.exp) {
    r.exp = a.exp;
    changed.push_back("exp");
  }
  if (r.nbf && r.exp && *r.exp < *r.nbf) {
    return bad_parameter("attributes.exp must not be earlier than attributes.nbf.");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto tags, parse_tags(params));
  if (tags) {
    r.tags = std::move(*tags);
    changed.push_back("tags");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto policy, parse_release_policy(params));
  if (policy) {
    if (r.release_policy && r.release_policy->immutable && !(*policy == *r.release_policy)) {
      return bad_parameter(
          "The release policy of this key is immutable: it cannot be changed or made mutable.");
    }
    if (!r.exportable) {
      return bad_parameter(
          "A release policy can only be set on an exportable key (attributes.exportable).");
    }
    r.release_policy = std::move(*policy);
    changed.push_back("release_policy");
  }
  r.updated = now();
  KEYPORT_TRY(store->update_version(r));
  std::string note;
  for (const auto& c : changed) {
    note += (note.empty() ? "" : ", ") + c;
  }
  op.note = note.empty() ? "no change" : "updated " + note;
  return key_bundle(config.base_url, r, recovery());
}

Result<std::pair<KeyRecord, KeyVersionRecord>> Vault::Impl::deleted_key(Op& op,
                                                                        std::string_view name) {
  op.name = std::string(name);
  if (!valid_key_name(name)) {
    return deleted_key_not_found(name);
  }
  KEYPORT_ASSIGN_OR_RETURN(auto key, store->find_key(name));
  if (!key || !key->deleted()) {
    return deleted_key_not_found(name);
  }
  KEYPORT_ASSIGN_OR_RETURN(auto latest, store->find_version(name, ""));
  if (!latest) {
    return internal_error("the deleted key " + key->name + " has no versions");
  }
  op.name = key->name;
  op.version = latest->version;
  return std::make_pair(std::move(*key), std::move(*latest));
}

Result<Json> Vault::Impl::delete_key(Op& op, std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord latest, resolve(op, name, ""));
  const std::int64_t t = now();
  KEYPORT_TRY(
      store->mark_deleted(latest.name, t, t + config.soft_delete_retention_days * kSecondsPerDay));
  KEYPORT_ASSIGN_OR_RETURN(auto deleted, deleted_key(op, latest.name));
  return deleted_key_bundle(config.base_url, deleted.first, deleted.second, recovery());
}

Result<Json> Vault::Impl::list_deleted_keys() {
  KEYPORT_ASSIGN_OR_RETURN(auto keys, store->keys());
  Json values = Json::array();
  for (const auto& k : keys) {
    if (!k.deleted()) {
      continue;
    }
    KEYPORT_ASSIGN_OR_RETURN(auto latest, store->find_version(k.name, ""));
    if (latest) {
      values.push_back(deleted_key_item(config.base_url, k, *latest, recovery()));
    }
  }
  return list_result(std::move(values));
}

Result<Json> Vault::Impl::recover_deleted_key(Op& op, std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(auto deleted, deleted_key(op, name));
  KEYPORT_TRY(store->mark_recovered(deleted.first.name));
  return key_bundle(config.base_url, deleted.second, recovery());
}

Status Vault::Impl::purge_deleted_key(Op& op, std::string_view name) {
  op.success_status = 204;
  KEYPORT_ASSIGN_OR_RETURN(auto deleted, deleted_key(op, name));
  op.version.clear();
  if (config.purge_protection) {
    // Key Vault's answer (403 Forbidden) when purge protection is on.
    return make_error(ErrorCode::kPermissionDenied, std::string(kForbidden),
                      "Operation \"purge\" is not allowed because purge protection is enabled for "
                      "this vault. Key Vault service will automatically purge it after the "
                      "retention period has passed.\r\nVault: " +
                          config.name);
  }
  KEYPORT_ASSIGN_OR_RETURN(op.note, purge_now(deleted.first.name));
  return {};
}

Result<std::string> Vault::Impl::purge_now(const std::string& name) {
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto journal, store->purge(name, now()));
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  std::size_t destroyed = 0;
  std::size_t deferred = 0;
  for (const auto& p : journal) {
    handles.forget(p.cka_id);
    auto n = destroy_by_id(*lease, p.cka_id);
    if (!n) {
      log::warn("vault: purge of " + p.label +
                " deferred to the next open: " + n.error().describe());
      ++deferred;
      continue;
    }
    destroyed += *n;
    auto st = store->remove_pending(p.cka_id);
    if (!st) {
      log::warn("vault: cannot clear a journal entry: " + st.error().describe());
    }
  }
  return "purged " + std::to_string(journal.size()) + " version(s), destroyed " +
         std::to_string(destroyed) + " token object(s)" +
         (deferred == 0 ? "" : ", " + std::to_string(deferred) + " deferred");
}

Result<std::size_t> Vault::Impl::purge_due() {
  KEYPORT_ASSIGN_OR_RETURN(auto keys, store->keys());
  const std::int64_t t = now();
  std::size_t purged = 0;
  for (const auto& k : keys) {
    if (!k.deleted() || !k.scheduled_purge_date || *k.scheduled_purge_date > t) {
      continue;
    }
    Op op;
    op.operation = "PurgeDeletedKey";
    op.name = k.name;
    op.success_status = 204;
    auto note = purge_now(k.name);
    if (!note) {
      audit(kSystemCaller, op, &note.error());
      return tl::unexpected(note.error());
    }
    op.note = "scheduledPurgeDate passed: " + *note;
    audit(kSystemCaller, op, nullptr);
    ++purged;
  }
  return purged;
}

// ---------------------------------------------------------------------------------------------

Result<Json> Vault::create_key(const CallContext& ctx, std::string_view name, const Json& params) {
  return m_impl->run(ctx, "CreateKey",
                     [&](Op& op) { return m_impl->create_key(op, name, params); });
}

Result<Json> Vault::get_key(const CallContext& ctx, std::string_view name,
                            std::string_view version) {
  return m_impl->run(ctx, "GetKey", [&](Op& op) { return m_impl->get_key(op, name, version); });
}

Result<Json> Vault::list_keys(const CallContext& ctx) {
  return m_impl->run(ctx, "GetKeys", [&](Op&) { return m_impl->list_keys(); });
}

Result<Json> Vault::list_key_versions(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "GetKeyVersions",
                     [&](Op& op) { return m_impl->list_key_versions(op, name); });
}

Result<Json> Vault::update_key(const CallContext& ctx, std::string_view name,
                               std::string_view version, const Json& params) {
  return m_impl->run(ctx, "UpdateKey",
                     [&](Op& op) { return m_impl->update_key(op, name, version, params); });
}

Result<Json> Vault::delete_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "DeleteKey", [&](Op& op) { return m_impl->delete_key(op, name); });
}

Result<Json> Vault::get_deleted_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "GetDeletedKey", [&](Op& op) {
    return m_impl->deleted_key(op, name).map([this](const auto& d) {
      return deleted_key_bundle(m_impl->config.base_url, d.first, d.second, m_impl->recovery());
    });
  });
}

Result<Json> Vault::list_deleted_keys(const CallContext& ctx) {
  return m_impl->run(ctx, "GetDeletedKeys", [&](Op&) { return m_impl->list_deleted_keys(); });
}

Result<Json> Vault::recover_deleted_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "RecoverDeletedKey",
                     [&](Op& op) { return m_impl->recover_deleted_key(op, name); });
}

Status Vault::purge_deleted_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "PurgeDeletedKey",
                     [&](Op& op) { return m_impl->purge_deleted_key(op, name); });
}

}  // namespace keyport::vault
