// SPDX-License-Identifier: Apache-2.0
#include "vault/model.h"

#include <algorithm>
#include <cctype>

#include "core/random.h"
#include "core/strings.h"
#include "skr/policy.h"
#include "vault/errors.h"

namespace keyport::vault {
namespace {

constexpr std::size_t kMaxTags = 15;
constexpr std::size_t kMaxTagName = 512;
constexpr std::size_t kMaxTagValue = 256;

Result<std::optional<std::int64_t>> time_member(const Json& attrs, std::string_view name) {
  const Json* v = member(attrs, name);
  if (v == nullptr) {
    return std::optional<std::int64_t>();
  }
  // 0 .. 9999-12-31T23:59:59Z: a negative time, or one past what a date can show, is refused
  // rather than stored (an unsigned beyond INT64_MAX would wrap to a negative one).
  constexpr std::int64_t kLastSecond = 253402300799;
  if (!v->is_number_integer() ||
      (v->is_number_unsigned() &&
       v->get<std::uint64_t>() > static_cast<std::uint64_t>(kLastSecond)) ||
      v->get<std::int64_t>() < 0 || v->get<std::int64_t>() > kLastSecond) {
    return bad_parameter("attributes." + std::string(name) +
                         " must be an integer number of seconds since 1970-01-01 UTC, from 0 "
                         "to 253402300799 (9999-12-31T23:59:59Z).");
  }
  return std::optional<std::int64_t>(v->get<std::int64_t>());
}

Result<std::optional<bool>> bool_member(const Json& obj, std::string_view name,
                                        std::string_view where) {
  const Json* v = member(obj, name);
  if (v == nullptr) {
    return std::optional<bool>();
  }
  if (!v->is_boolean()) {
    return bad_parameter(std::string(where) + std::string(name) + " must be a boolean.");
  }
  return std::optional<bool>(v->get<bool>());
}

Json policy_json(const ReleasePolicy& p) {
  return Json{{"contentType", p.content_type},
              {"data", base64url_encode(p.data)},
              {"immutable", p.immutable}};
}

Json attributes_json(const KeyVersionRecord& r, const Recovery& recovery) {
  Json a = Json::object();
  a["enabled"] = r.enabled;
  if (r.nbf) {
    a["nbf"] = *r.nbf;
  }
  if (r.exp) {
    a["exp"] = *r.exp;
  }
  a["created"] = r.created;
  a["updated"] = r.updated;
  a["recoveryLevel"] = recovery.level;
  a["recoverableDays"] = recovery.days;
  a["exportable"] = r.exportable;
  const bool hsm = r.kty.size() > 4 && r.kty.substr(r.kty.size() - 4) == "-HSM";
  a["hsmPlatform"] = !r.hsm_platform.empty() ? r.hsm_platform : (hsm ? "2" : "0");
  return a;
}

Json key_json(std::string_view base_url, const KeyVersionRecord& r) {
  Json k = r.public_jwk.is_object() ? r.public_jwk : Json::object();
  k["kid"] = kid_of(base_url, r.name, r.version);
  k["kty"] = r.kty;
  Json ops = Json::array();
  for (const auto& op : r.key_ops) {
    ops.push_back(op);
  }
  k["key_ops"] = std::move(ops);
  return k;
}

void add_deleted_members(Json& j, std::string_view base_url, const KeyRecord& k) {
  j["recoveryId"] = std::string(base_url) + "/deletedkeys/" + k.name;
  j["deletedDate"] = k.deleted_date.value_or(0);
  j["scheduledPurgeDate"] = k.scheduled_purge_date.value_or(0);
}

}  // namespace

bool valid_key_name(std::string_view name) {
  if (name.empty() || name.size() > 127) {
    return false;
  }
  // ASCII only, whatever the C locale says is a letter (std::isalnum follows it).
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
  });
}

Status check_key_name(std::string_view name) {
  if (!valid_key_name(name)) {
    return bad_parameter(
        "The key name must match ^[0-9a-zA-Z-]{1,127}$ (letters, digits and '-' only).");
  }
  return {};
}

bool valid_version(std::string_view version) {
  return version.size() == 32 && std::all_of(version.begin(), version.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

std::string new_version_id() {
  return hex_encode(random_bytes(16));
}

const Json* member(const Json& obj, std::string_view name) {
  if (!obj.is_object()) {
    return nullptr;
  }
  auto it = obj.find(std::string(name));
  if (it == obj.end() || it->is_null()) {
    return nullptr;
  }
  return &*it;
}

const Json* member_ci(const Json& obj, std::string_view name) {
  if (!obj.is_object()) {
    return nullptr;
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (iequals(it.key(), name) && !it->is_null()) {
      return &*it;
    }
  }
  return nullptr;
}

Result<std::string> string_member(const Json& obj, std::string_view name) {
  const Json* v = member(obj, name);
  if (v == nullptr || !v->is_string()) {
    return bad_parameter("The request needs a string member \"" + std::string(name) + "\".");
  }
  return v->get<std::string>();
}

Result<Bytes> base64url_member(const Json& obj, std::string_view name) {
  const Json* v = member(obj, name);
  if (v == nullptr || !v->is_string()) {
    return bad_parameter("The request needs a base64url string member \"" + std::string(name) +
                         "\".");
  }
  auto bytes = base64url_decode(v->get_ref<const std::string&>());
  if (!bytes) {
    return bad_parameter("Member \"" + std::string(name) + "\" is not valid base64url.");
  }
  return std::move(*bytes);
}

Result<std::optional<Bytes>> optional_base64url_member(const Json& obj, std::string_view name) {
  if (member(obj, name) == nullptr) {
    return std::optional<Bytes>();
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes bytes, base64url_member(obj, name));
  return std::optional<Bytes>(std::move(bytes));
}

Result<SecretBytes> base64url_secret_member(const Json& obj, std::string_view name) {
  const Json* v = member(obj, name);
  if (v == nullptr || !v->is_string()) {
    return bad_parameter("The request needs a base64url string member \"" + std::string(name) +
                         "\".");
  }
  auto bytes = base64url_decode_secret(v->get_ref<const std::string&>());
  if (!bytes) {
    return bad_parameter("Member \"" + std::string(name) + "\" is not valid base64url.");
  }
  return std::move(*bytes);
}

std::optional<Bytes> decode_base64_any(std::string_view text) {
  if (auto b = base64url_decode(text)) {
    return std::move(*b);
  }
  if (auto b = base64_decode(text)) {
    return std::move(*b);
  }
  return std::nullopt;
}

Result<AttributesIn> parse_attributes(const Json& params) {
  AttributesIn out;
  const Json* attrs = member(params, "attributes");
  if (attrs == nullptr) {
    return out;
  }
  if (!attrs->is_object()) {
    return bad_parameter("attributes must be a JSON object.");
  }
  KEYPORT_ASSIGN_OR_RETURN(out.enabled, bool_member(*attrs, "enabled", "attributes."));
  KEYPORT_ASSIGN_OR_RETURN(out.exportable, bool_member(*attrs, "exportable", "attributes."));
  KEYPORT_ASSIGN_OR_RETURN(out.nbf, time_member(*attrs, "nbf"));
  KEYPORT_ASSIGN_OR_RETURN(out.exp, time_member(*attrs, "exp"));
  if (out.nbf && out.exp && *out.exp < *out.nbf) {
    return bad_parameter("attributes.exp must not be earlier than attributes.nbf.");
  }
  return out;
}

Result<std::optional<Json>> parse_tags(const Json& params) {
  const Json* tags = member(params, "tags");
  if (tags == nullptr) {
    return std::optional<Json>();
  }
  if (!tags->is_object()) {
    return bad_parameter("tags must be a JSON object of strings.");
  }
  if (tags->size() > kMaxTags) {
    return bad_parameter("A key can have at most 15 tags.");
  }
  for (auto it = tags->begin(); it != tags->end(); ++it) {
    if (!it->is_string()) {
      return bad_parameter("The value of tag \"" + it.key() + "\" must be a string.");
    }
    if (it.key().empty() || it.key().size() > kMaxTagName ||
        it->get_ref<const std::string&>().size() > kMaxTagValue) {
      return bad_parameter("Tag names are 1..512 characters and tag values at most 256.");
    }
  }
  return std::optional<Json>(*tags);
}

Result<std::optional<ReleasePolicy>> parse_release_policy(const Json& params) {
  const Json* p = member(params, "release_policy");
  if (p == nullptr) {
    return std::optional<ReleasePolicy>();
  }
  if (!p->is_object()) {
    return bad_parameter("release_policy must be a JSON object.");
  }
  ReleasePolicy out;
  if (const Json* ct = member(*p, "contentType")) {
    if (!ct->is_string() || ct->get_ref<const std::string&>().rfind("application/json", 0) != 0) {
      return bad_parameter(
          "release_policy.contentType must be \"application/json; charset=utf-8\".");
    }
    out.content_type = ct->get<std::string>();
  }
  KEYPORT_ASSIGN_OR_RETURN(auto immutable, bool_member(*p, "immutable", "release_policy."));
  out.immutable = immutable.value_or(false);
  const Json* data = member(*p, "data");
  if (data == nullptr || !data->is_string()) {
    return bad_parameter("release_policy.data (base64url of the policy JSON) is required.");
  }
  auto bytes = decode_base64_any(data->get_ref<const std::string&>());
  if (!bytes || bytes->empty()) {
    return bad_parameter("release_policy.data is not valid base64url.");
  }
  auto doc = parse_json_strict(as_chars(*bytes));
  if (!doc || !doc->is_object()) {
    return bad_parameter("release_policy.data does not hold a JSON object" +
                         (doc ? std::string() : ": " + doc.error().message()));
  }
  // Azure refuses a policy it cannot read when it is set (400 BadParameter), not only when a
  // release is attempted; the grammar is skr's, the one a release evaluates.
  auto parsed = skr::parse_policy(as_chars(*bytes));
  if (!parsed) {
    return bad_parameter("release_policy.data is not a valid key release policy: " +
                         parsed.error().message());
  }
  out.data = std::move(*bytes);
  return std::optional<ReleasePolicy>(std::move(out));
}

std::vector<std::string> default_key_ops(KeyFamily family) {
  switch (family) {
    case KeyFamily::kRsa:
      return {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"};
    case KeyFamily::kEc:
      return {"sign", "verify"};
    case KeyFamily::kAes:
      break;
  }
  return {"encrypt", "decrypt", "wrapKey", "unwrapKey"};
}

Result<std::vector<std::string>> parse_key_ops(const Json& ops, KeyFamily family) {
  if (!ops.is_array()) {
    return bad_parameter("key_ops must be an array of strings.");
  }
  std::vector<std::string> allowed;
  switch (family) {
    case KeyFamily::kRsa:
      allowed = {"encrypt", "decrypt",   "sign",   "verify",
                 "wrapKey", "unwrapKey", "import", "export"};
      break;
    case KeyFamily::kEc:
      allowed = {"sign", "verify", "export"};
      break;
    case KeyFamily::kAes:
      allowed = {"encrypt", "decrypt", "wrapKey", "unwrapKey", "export"};
      break;
  }
  std::vector<std::string> out;
  for (const auto& op : ops) {
    if (!op.is_string()) {
      return bad_parameter("key_ops must be an array of strings.");
    }
    const std::string& name = op.get_ref<const std::string&>();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return bad_parameter(
          "Invalid key operation \"" + name + "\" for a " +
          (family == KeyFamily::kRsa
               ? std::string("RSA")
               : (family == KeyFamily::kEc ? std::string("EC") : std::string("oct"))) +
          " key.");
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(name);
    }
  }
  if (std::find(out.begin(), out.end(), "import") != out.end() && out.size() != 1) {
    return bad_parameter(
        "The key operation \"import\" is mutually exclusive with all other key operations: a "
        "key exchange key has key_ops [\"import\"] only.");
  }
  return out;
}

std::string kid_of(std::string_view base_url, std::string_view name, std::string_view version) {
  std::string kid = std::string(base_url) + "/keys/" + std::string(name);
  if (!version.empty()) {
    kid += "/" + std::string(version);
  }
  return kid;
}

Json key_bundle(std::string_view base_url, const KeyVersionRecord& r, const Recovery& recovery) {
  Json b = Json::object();
  b["key"] = key_json(base_url, r);
  b["attributes"] = attributes_json(r, recovery);
  b["tags"] = r.tags.is_object() ? r.tags : Json::object();
  if (r.release_policy) {
    b["release_policy"] = policy_json(*r.release_policy);
  }
  return b;
}

Json key_item(std::string_view base_url, const KeyVersionRecord& r, bool versioned,
              const Recovery& recovery) {
  Json item = Json::object();
  item["kid"] = kid_of(base_url, r.name, versioned ? std::string_view(r.version) : "");
  item["attributes"] = attributes_json(r, recovery);
  item["tags"] = r.tags.is_object() ? r.tags : Json::object();
  return item;
}

Json deleted_key_bundle(std::string_view base_url, const KeyRecord& k, const KeyVersionRecord& r,
                        const Recovery& recovery) {
  Json b = key_bundle(base_url, r, recovery);
  add_deleted_members(b, base_url, k);
  return b;
}

Json deleted_key_item(std::string_view base_url, const KeyRecord& k, const KeyVersionRecord& r,
                      const Recovery& recovery) {
  Json item = key_item(base_url, r, false, recovery);
  add_deleted_members(item, base_url, k);
  return item;
}

Json list_result(Json values) {
  return Json{{"value", std::move(values)}, {"nextLink", nullptr}};
}

Json operation_result(std::string_view kid, std::span<const std::uint8_t> value) {
  return Json{{"kid", std::string(kid)}, {"value", base64url_encode(value)}};
}

}  // namespace keyport::vault
