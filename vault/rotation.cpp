// SPDX-License-Identifier: Apache-2.0
#include "vault/rotation.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>

#include "core/file_io.h"
#include "core/log.h"
#include "core/strings.h"
#include "vault/errors.h"
#include "vault/model.h"

namespace keyport::vault {
namespace fs = std::filesystem;
namespace {

constexpr std::int64_t kMinTrigger = 7 * kDay;  // "the minimum value is seven days"
constexpr std::int64_t kMinExpiry = 28 * kDay;  // "It should be at least 28 days."
constexpr std::int64_t kDefaultNotify = 30 * kDay;
constexpr std::int64_t kMaxDuration = 100 * 365 * kDay;
constexpr const char* kSettingsFile = "settings.json";

const char* type_name(LifetimeActionType t) {
  return t == LifetimeActionType::kRotate ? "Rotate" : "Notify";
}

Result<std::int64_t> duration_member(const Json& obj, std::string_view name, std::string& text) {
  const Json* v = member(obj, name);
  if (v == nullptr || !v->is_string()) {
    return bad_parameter(std::string(name) + " must be an ISO 8601 duration string (e.g. P90D).");
  }
  text = ascii_upper(v->get<std::string>());
  auto seconds = parse_iso8601_duration(text);
  if (!seconds) {
    return bad_parameter(std::string(name) + ": " + seconds.error().message());
  }
  return *seconds;
}

Result<LifetimeAction> parse_action(const Json& item, std::size_t index) {
  const std::string where = "lifetimeActions[" + std::to_string(index) + "]";
  if (!item.is_object()) {
    return bad_parameter(where + " must be an object {trigger, action}.");
  }
  const Json* action = member(item, "action");
  const Json* type = action != nullptr && action->is_object() ? member(*action, "type") : nullptr;
  if (type == nullptr || !type->is_string()) {
    return bad_parameter(where + ".action.type must be \"Rotate\" or \"Notify\".");
  }
  LifetimeAction a;
  const std::string t = ascii_lower(type->get<std::string>());  // compared case-insensitively
  if (t == "rotate") {
    a.type = LifetimeActionType::kRotate;
  } else if (t == "notify") {
    a.type = LifetimeActionType::kNotify;
  } else {
    return bad_parameter(where + ".action.type \"" + type->get<std::string>() +
                         "\" is not valid: use \"Rotate\" or \"Notify\".");
  }
  const Json* trigger = member(item, "trigger");
  if (trigger == nullptr || !trigger->is_object()) {
    return bad_parameter(where +
                         ".trigger must be an object with timeAfterCreate or "
                         "timeBeforeExpiry.");
  }
  const bool after = member(*trigger, "timeAfterCreate") != nullptr;
  const bool before = member(*trigger, "timeBeforeExpiry") != nullptr;
  if (after == before) {
    return bad_parameter(where +
                         ".trigger must have exactly one of timeAfterCreate and "
                         "timeBeforeExpiry.");
  }
  a.after_create = after;
  KEYPORT_ASSIGN_OR_RETURN(
      a.seconds,
      duration_member(*trigger, after ? "timeAfterCreate" : "timeBeforeExpiry", a.duration));
  if (a.type == LifetimeActionType::kNotify && a.after_create) {
    return bad_parameter(where +
                         ": a Notify action takes timeBeforeExpiry only (timeAfterCreate applies "
                         "to Rotate).");
  }
  if (a.seconds < kMinTrigger) {
    return bad_parameter(where + ": " + a.duration +
                         " is too short; a lifetime action's trigger must be at least 7 days "
                         "(P7D).");
  }
  return a;
}

}  // namespace

Result<std::int64_t> parse_iso8601_duration(std::string_view text) {
  auto invalid = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      "\"" + std::string(text) +
                          "\" is not an ISO 8601 duration (PnYnMnWnDTnHnMnS, e.g. P90D, P1Y, "
                          "PT48H)");
  };
  if (text.size() < 3 || (text[0] != 'P' && text[0] != 'p')) {
    return invalid();
  }
  std::int64_t total = 0;
  bool time_part = false;
  bool any = false;
  std::string order = "YMWD";  // the units still allowed, in order
  std::int64_t number = -1;
  const std::string upper_text = ascii_upper(text);
  for (std::size_t i = 1; i < upper_text.size(); ++i) {
    const char c = upper_text[i];
    if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      number = (number < 0 ? 0 : number) * 10 + (c - '0');
      if (number > kMaxDuration) {
        return invalid();
      }
      continue;
    }
    if (c == 'T') {
      if (time_part || number >= 0) {
        return invalid();
      }
      time_part = true;
      order = "HMS";
      continue;
    }
    const auto pos = order.find(c);
    if (number < 0 || pos == std::string::npos) {
      return invalid();
    }
    order = order.substr(pos + 1);
    std::int64_t unit = 0;
    if (!time_part) {
      unit = c == 'Y' ? 365 * kDay : c == 'M' ? 30 * kDay : c == 'W' ? 7 * kDay : kDay;
    } else {
      unit = c == 'H' ? 3600 : c == 'M' ? 60 : 1;
    }
    total += number * unit;
    if (total > kMaxDuration) {
      return invalid();
    }
    number = -1;
    any = true;
  }
  if (!any || number >= 0 || (time_part && order == "HMS")) {
    return invalid();
  }
  return total;
}

const LifetimeAction* RotationPolicy::find(LifetimeActionType type) const {
  for (const auto& a : actions) {
    if (a.type == type) {
      return &a;
    }
  }
  return nullptr;
}

RotationPolicy default_rotation_policy() {
  RotationPolicy p;
  LifetimeAction notify;
  notify.type = LifetimeActionType::kNotify;
  notify.after_create = false;
  notify.duration = "P30D";
  notify.seconds = kDefaultNotify;
  p.actions.push_back(notify);
  return p;
}

namespace {
Result<RotationPolicy> parse_policy(const Json& body, bool strict);
}  // namespace

Result<RotationPolicy> parse_rotation_policy(const Json& body) {
  return parse_policy(body, true);
}

namespace {

Result<RotationPolicy> parse_policy(const Json& body, bool strict) {
  if (!body.is_object()) {
    return bad_parameter("The request body must be a JSON object (KeyRotationPolicy).");
  }
  RotationPolicy p;
  if (const Json* attrs = member(body, "attributes")) {
    if (!attrs->is_object()) {
      return bad_parameter("attributes must be a JSON object.");
    }
    if (member(*attrs, "expiryTime") != nullptr) {
      std::string text;
      KEYPORT_ASSIGN_OR_RETURN(p.expiry_seconds, duration_member(*attrs, "expiryTime", text));
      if (p.expiry_seconds < kMinExpiry) {
        return bad_parameter("attributes.expiryTime " + text +
                             " is too short: it should be at least 28 days (P28D).");
      }
      p.expiry_time = text;
    }
  }
  const Json* actions = member(body, "lifetimeActions");
  if (actions != nullptr && !actions->is_array()) {
    return bad_parameter("lifetimeActions must be an array.");
  }
  if (actions == nullptr || actions->empty()) {
    RotationPolicy d = default_rotation_policy();
    d.expiry_time = p.expiry_time;
    d.expiry_seconds = p.expiry_seconds;
    return d;
  }
  if (actions->size() > 2) {
    return bad_parameter("lifetimeActions can have at most two items: one Rotate and one Notify.");
  }
  for (std::size_t i = 0; i < actions->size(); ++i) {
    KEYPORT_ASSIGN_OR_RETURN(LifetimeAction a, parse_action((*actions)[i], i));
    if (p.find(a.type) != nullptr) {
      return bad_parameter(std::string("lifetimeActions has two ") + type_name(a.type) +
                           " actions; at most one of each is allowed.");
    }
    // The expiry rules bind Rotate only. A Notify before expiry needs no expiryTime (Key Vault's
    // own default policy is one) and may fire at creation; so every policy the vault answers
    // with, the default included, is accepted when sent back.
    const bool rotate = a.type == LifetimeActionType::kRotate;
    if (strict && rotate && !a.after_create && !p.expiry_time) {
      return bad_parameter(
          "A Rotate action with timeBeforeExpiry needs attributes.expiryTime in the policy.");
    }
    if (strict && rotate && p.expiry_time && a.seconds > p.expiry_seconds - kMinTrigger) {
      return bad_parameter("Rotate trigger " + a.duration +
                           " must fall at least 7 days before the expiry time " + *p.expiry_time +
                           ".");
    }
    p.actions.push_back(std::move(a));
  }
  return p;
}

}  // namespace

Json rotation_policy_to_json(const RotationPolicy& policy) {
  Json actions = Json::array();
  for (const auto& a : policy.actions) {
    actions.push_back(
        Json{{"trigger", {{a.after_create ? "timeAfterCreate" : "timeBeforeExpiry", a.duration}}},
             {"action", {{"type", type_name(a.type)}}}});
  }
  Json attrs = Json::object();
  if (policy.expiry_time) {
    attrs["expiryTime"] = *policy.expiry_time;
  }
  return Json{{"lifetimeActions", std::move(actions)}, {"attributes", std::move(attrs)}};
}

Result<RotationPolicy> rotation_policy_from_json(const Json& stored) {
  auto p = parse_policy(stored, false);
  if (!p) {
    return internal_error("vault database holds an invalid rotation policy: " +
                          p.error().message());
  }
  return p;
}

Json rotation_policy_response(std::string_view base_url, std::string_view name,
                              const RotationPolicy& policy, std::optional<std::int64_t> created,
                              std::optional<std::int64_t> updated) {
  Json j = rotation_policy_to_json(policy);
  Json out = Json::object();
  out["id"] = kid_of(base_url, name, "") + "/rotationpolicy";
  out["lifetimeActions"] = std::move(j["lifetimeActions"]);
  out["attributes"] = std::move(j["attributes"]);
  if (created) {
    out["attributes"]["created"] = *created;
  }
  if (updated) {
    out["attributes"]["updated"] = *updated;
  }
  return out;
}

// --- settings ----------------------------------------------------------------------------------

Result<VaultSettings> read_vault_settings(const fs::path& dir) {
  VaultSettings s;
  const fs::path file = dir / kSettingsFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return s;
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(file, 1 << 16));
  KEYPORT_ASSIGN_OR_RETURN(Json j, parse_json_strict(text));
  const std::string where = file.string();
  if (!j.is_object()) {
    return make_error(ErrorCode::kFormat, where + " must hold a JSON object");
  }
  KEYPORT_TRY(json_only_members(j, {"schema", "clock_offset", "platform1_before"}, where));
  if (const Json* o = member(j, "clock_offset")) {
    if (!o->is_number_integer()) {
      return make_error(ErrorCode::kFormat, where + ": clock_offset must be an integer");
    }
    s.clock_offset = o->get<std::int64_t>();
  }
  if (const Json* c = member(j, "platform1_before")) {
    if (!c->is_number_integer()) {
      return make_error(ErrorCode::kFormat, where + ": platform1_before must be an integer");
    }
    s.platform1_before = c->get<std::int64_t>();
  }
  return s;
}

Status write_vault_settings(const fs::path& dir, const VaultSettings& s) {
  Json j{{"schema", 1}, {"clock_offset", s.clock_offset}};
  j["platform1_before"] = s.platform1_before ? Json(*s.platform1_before) : Json(nullptr);
  WriteOptions w;
  w.overwrite = true;
  return write_file_atomic(dir / kSettingsFile, dump_json(j, 2) + "\n", w);
}

std::pair<VaultSettings, bool> SettingsWatcher::poll() {
  std::lock_guard<std::mutex> lock(m_mutex);
  struct stat st {};
  const bool exists = ::stat((m_dir / kSettingsFile).c_str(), &st) == 0;
  const std::int64_t mtime_ns =
      exists ? static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec : 0;
  if (!m_first && exists == m_exists &&
      (!exists || (st.st_ino == m_ino && st.st_size == m_size && mtime_ns == m_mtime_ns))) {
    return {m_settings, false};
  }
  m_first = false;
  m_exists = exists;
  m_ino = exists ? st.st_ino : 0;
  m_size = exists ? st.st_size : 0;
  m_mtime_ns = mtime_ns;
  auto read = read_vault_settings(m_dir);
  if (!read) {
    log::error("vault: " + read.error().describe() + " (keeping the previous settings)");
    return {m_settings, false};
  }
  const bool changed = !(*read == m_settings);
  m_settings = *read;
  return {m_settings, changed};
}

}  // namespace keyport::vault
