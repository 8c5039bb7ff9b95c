// SPDX-License-Identifier: Apache-2.0
// RotateKey, the rotation policies, the lifetime actions that fall due (Rotate, Notify) and the
// HSM platform report.
#include <climits>
#include <mutex>

#include "core/log.h"
#include "vault/vault_impl.h"

namespace keyport::vault {

Result<RotationPolicy> Vault::Impl::policy_of(const std::string& name,
                                              std::optional<RotationPolicyRecord>* record) {
  KEYPORT_ASSIGN_OR_RETURN(auto rec, store->find_rotation_policy(name));
  if (record != nullptr) {
    *record = rec;
  }
  if (!rec) {
    return default_rotation_policy();
  }
  return rotation_policy_from_json(rec->policy);
}

Result<Json> Vault::Impl::rotate_key(Op& op, std::string_view name, const std::string& why) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, ""));
  Json params = Json::object();
  params["kty"] = r.kty;
  if (r.spec.family == KeyFamily::kEc) {
    params["crv"] = std::string(curve_jwk_name(*r.spec.curve));
  } else {
    params["key_size"] = r.spec.bits;
  }
  params["key_ops"] = r.key_ops;
  params["tags"] = r.tags;
  Json attrs{{"enabled", true}};
  if (r.exportable) {
    attrs["exportable"] = true;
  }
  KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, policy_of(r.name));
  if (policy.expiry_time) {
    attrs["exp"] = now() + policy.expiry_seconds;
  }
  params["attributes"] = std::move(attrs);
  if (r.release_policy) {
    params["release_policy"] = Json{{"contentType", r.release_policy->content_type},
                                    {"data", base64url_encode(r.release_policy->data)},
                                    {"immutable", r.release_policy->immutable}};
  }
  KEYPORT_ASSIGN_OR_RETURN(Json bundle, create_key(op, r.name, params, "rotated"));
  op.note = "rotated " + r.version + " (" + why + ")" +
            (policy.expiry_time ? ", expires in " + *policy.expiry_time : "");
  return bundle;
}

Result<Json> Vault::Impl::get_rotation_policy(Op& op, std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, ""));
  op.version.clear();
  std::optional<RotationPolicyRecord> rec;
  KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, policy_of(r.name, &rec));
  op.note = rec ? "policy set" : "default policy";
  return rotation_policy_response(config.base_url, r.name, policy,
                                  rec ? std::optional<std::int64_t>(rec->created) : std::nullopt,
                                  rec ? std::optional<std::int64_t>(rec->updated) : std::nullopt);
}

Result<Json> Vault::Impl::update_rotation_policy(Op& op, std::string_view name, const Json& body) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, ""));
  op.version.clear();
  KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, parse_rotation_policy(body));
  RotationPolicyRecord rec;
  rec.name = r.name;
  rec.policy = rotation_policy_to_json(policy);
  rec.created = now();
  rec.updated = rec.created;
  KEYPORT_ASSIGN_OR_RETURN(RotationPolicyRecord stored, store->put_rotation_policy(rec));
  last_due_check.store(LLONG_MIN);  // the next call checks the new policy
  op.note = dump_json(stored.policy["lifetimeActions"]);
  return rotation_policy_response(config.base_url, stored.name, policy, stored.created,
                                  stored.updated);
}

Result<std::size_t> Vault::Impl::due_actions() {
  KEYPORT_ASSIGN_OR_RETURN(auto policies, store->rotation_policies());
  const CallContext system{kSystemCaller};
  std::size_t rotated = 0;
  for (const auto& rec : policies) {
    KEYPORT_ASSIGN_OR_RETURN(auto key, store->find_key(rec.name));
    if (!key || key->deleted()) {
      continue;
    }
    KEYPORT_ASSIGN_OR_RETURN(auto latest, store->find_version(rec.name, ""));
    if (!latest) {
      continue;
    }
    KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, rotation_policy_from_json(rec.policy));
    const std::int64_t t = now();
    if (const LifetimeAction* a = policy.find(LifetimeActionType::kRotate)) {
      std::optional<std::int64_t> due;
      if (a->after_create) {
        due = latest->created + a->seconds;
      } else if (latest->exp) {
        due = *latest->exp - a->seconds;
      }
      if (due && t >= *due) {
        Op op;
        op.operation = "RotateKey";
        auto r = rotate_key(op, rec.name,
                            std::string("rotation policy: ") +
                                (a->after_create ? "timeAfterCreate " : "timeBeforeExpiry ") +
                                a->duration);
        auto done = finish(system, op, std::move(r));
        if (!done) {
          log::warn("vault: the scheduled rotation of " + rec.name +
                    " failed: " + done.error().describe());
        } else {
          ++rotated;
        }
        continue;
      }
    }
    if (const LifetimeAction* n = policy.find(LifetimeActionType::kNotify)) {
      if (!n->after_create && latest->exp && rec.notified_version != latest->version &&
          t >= *latest->exp - n->seconds) {
        Op op;
        op.operation = "KeyNearExpiry";
        op.name = latest->name;
        op.version = latest->version;
        op.note = "Notify (timeBeforeExpiry " + n->duration +
                  "): the Event Grid event Key Vault would publish";
        audit(kSystemCaller, op, nullptr);
        KEYPORT_TRY(store->set_notified_version(rec.name, latest->version));
      }
    }
  }
  return rotated;
}

Result<Json> Vault::Impl::platform_report(Op& op) {
  KEYPORT_ASSIGN_OR_RETURN(auto keys, store->keys());
  const std::int64_t cutover = platform1_before.load();
  Json out = Json::object();
  out["vault"] = config.base_url;
  out["now"] = now();
  out["cutover"] = cutover != LLONG_MIN ? Json(cutover) : Json(nullptr);
  Json entries = Json::array();
  for (const auto& k : keys) {
    if (k.deleted()) {
      continue;
    }
    KEYPORT_ASSIGN_OR_RETURN(auto versions, store->versions(k.name));
    if (versions.empty() || versions.back().hsm_platform != "1") {
      continue;
    }
    const KeyVersionRecord& latest = versions.back();
    std::size_t on_platform1 = 0;
    for (const auto& v : versions) {
      on_platform1 += v.hsm_platform == "1" ? 1 : 0;
    }
    std::optional<RotationPolicyRecord> rec;
    KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, policy_of(latest.name, &rec));
    const LifetimeAction* rotate = rec ? policy.find(LifetimeActionType::kRotate) : nullptr;
    std::optional<std::int64_t> next;
    if (rotate != nullptr && rotate->after_create) {
      next = latest.created + rotate->seconds;
    } else if (rotate != nullptr && latest.exp) {
      next = *latest.exp - rotate->seconds;
    }
    const bool portable = latest.origin == "byok" || latest.origin == "import";
    const bool wraps = latest.has_op("wrapKey") || latest.has_op("unwrapKey") ||
                       latest.has_op("encrypt") || latest.has_op("decrypt");
    std::string action;
    std::string how;
    if (portable) {
      action = "reimport";
      how =
          "re-import the portable key from its on-prem HSM as a new version: keyport byok "
          "export --kek <this vault's KEK> ... then keyport vault import --name " +
          latest.name + " --byok FILE";
    } else if (wraps) {
      action = "rotate-and-rewrap";
      how =
          std::string(rotate != nullptr ? "its rotation policy rotates it"
                                        : "rotate it: keyport vault rotate --name " + latest.name) +
          "; then re-wrap the data keys wrapped under the old version " + latest.version +
          " (keyport migrate run --keyring K --from vault:DIR#" + latest.name + "/" +
          latest.version + " --to vault:DIR#" + latest.name + ")";
    } else if (rotate != nullptr) {
      action = "rotate-by-policy";
      how = "its rotation policy rotates it; to rotate now: keyport vault rotate --name " +
            latest.name;
    } else {
      action = "rotate";
      how = "rotate it by hand (keyport vault rotate --name " + latest.name +
            ") or give it a rotation policy (keyport vault rotation-policy set)";
    }
    Json e = Json::object();
    e["name"] = latest.name;
    e["kid"] = kid_of(config.base_url, latest.name, latest.version);
    e["kty"] = latest.kty;
    e["created"] = latest.created;
    e["origin"] = latest.origin;
    e["hsmPlatform"] = latest.hsm_platform;
    e["versions_on_platform1"] = on_platform1;
    e["rotation_policy"] = rotate != nullptr;
    e["next_rotation"] = next ? Json(*next) : Json(nullptr);
    e["action"] = action;
    e["how"] = how;
    entries.push_back(std::move(e));
  }
  op.note = std::to_string(entries.size()) + " key(s) on platform 1";
  out["keys"] = std::move(entries);
  return out;
}

// ---------------------------------------------------------------------------------------------

Result<Json> Vault::rotate_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "RotateKey",
                     [&](Op& op) { return m_impl->rotate_key(op, name, "on demand"); });
}

Result<Json> Vault::get_rotation_policy(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "GetKeyRotationPolicy",
                     [&](Op& op) { return m_impl->get_rotation_policy(op, name); });
}

Result<Json> Vault::update_rotation_policy(const CallContext& ctx, std::string_view name,
                                           const Json& policy) {
  return m_impl->run(ctx, "UpdateKeyRotationPolicy",
                     [&](Op& op) { return m_impl->update_rotation_policy(op, name, policy); });
}

Result<std::size_t> Vault::run_due_rotations() {
  m_impl->refresh_settings();
  std::lock_guard<std::mutex> lock(m_impl->due_mutex);
  m_impl->last_due_check.store(m_impl->now());
  return m_impl->due_actions();
}

Result<Json> Vault::platform_report(const CallContext& ctx) {
  return m_impl->run(ctx, "PlatformReport", [&](Op& op) { return m_impl->platform_report(op); });
}

}  // namespace keyport::vault
