// SPDX-License-Identifier: Apache-2.0
#include "vault/backup_blob.h"

#include <algorithm>

#include "vault/model.h"

namespace keyport::vault {
namespace {

constexpr std::string_view kBackupMagic = "KPBK";
constexpr std::uint8_t kBackupFormat = 1;
constexpr std::size_t kBackupHeaderBytes = 4 + 1 + kBackupDomainBytes + 4;

tl::unexpected<Error> blob_error(std::string what) {
  return make_error(ErrorCode::kFormat, "backup blob: " + std::move(what));
}

bool valid_uuid_text(std::string_view s) {
  if (s.size() != kBackupDomainBytes) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (c == '-')) {
      return false;
    }
    if (!dash && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

Result<std::int64_t> backup_int(const Json& o, std::string_view name, bool optional = false) {
  auto it = o.find(std::string(name));
  if (it == o.end() || it->is_null()) {
    if (optional) {
      return std::int64_t{-1};
    }
    return blob_error("\"" + std::string(name) + "\" is missing");
  }
  constexpr std::int64_t kLastSecond = 253402300799;
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
      (it->is_number_unsigned() && it->get<std::uint64_t>() > kLastSecond) ||
      it->get<std::int64_t>() > kLastSecond) {
    return blob_error("\"" + std::string(name) + "\" must be a time in seconds");
  }
  return it->get<std::int64_t>();
}

Result<bool> backup_bool(const Json& o, std::string_view name) {
  auto it = o.find(std::string(name));
  if (it == o.end() || !it->is_boolean()) {
    return blob_error("\"" + std::string(name) + "\" must be true or false");
  }
  return it->get<bool>();
}

Result<std::string> backup_string(const Json& o, std::string_view name) {
  auto it = o.find(std::string(name));
  if (it == o.end() || !it->is_string()) {
    return blob_error("\"" + std::string(name) + "\" must be a string");
  }
  return it->get<std::string>();
}

Result<Bytes> backup_b64(const Json& o, std::string_view name) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, backup_string(o, name));
  auto b = base64url_decode(text);
  if (!b) {
    return blob_error("\"" + std::string(name) + "\" must be base64url");
  }
  return std::move(*b);
}

Result<BackupVersion> parse_backup_version(const Json& v, const std::string& name) {
  if (!v.is_object()) {
    return blob_error("a version must be an object");
  }
  KEYPORT_TRY(json_only_members(
      v,
      {"version", "kty", "spec", "public_jwk", "key_ops", "enabled", "nbf", "exp", "created",
       "updated", "exportable", "tags", "release_policy", "origin", "wrapped"},
      "backup blob version"));
  BackupVersion out;
  KeyVersionRecord& r = out.record;
  r.name = name;
  KEYPORT_ASSIGN_OR_RETURN(r.version, backup_string(v, "version"));
  if (!valid_version(r.version) || std::any_of(r.version.begin(), r.version.end(),
                                               [](char c) { return c >= 'A' && c <= 'F'; })) {
    return blob_error("\"version\" must be 32 lowercase hex characters");
  }
  KEYPORT_ASSIGN_OR_RETURN(r.kty, backup_string(v, "kty"));
  KEYPORT_ASSIGN_OR_RETURN(std::string spec, backup_string(v, "spec"));
  auto parsed = parse_key_spec(spec);
  if (!parsed) {
    return blob_error("\"spec\" is not a key spec");
  }
  r.spec = *parsed;
  const std::string_view base = r.spec.family == KeyFamily::kRsa  ? "RSA"
                                : r.spec.family == KeyFamily::kEc ? "EC"
                                                                  : "oct";
  if (r.kty != base && r.kty != std::string(base) + "-HSM") {
    return blob_error("\"kty\" does not match \"spec\"");
  }
  auto jwk = v.find("public_jwk");
  if (jwk == v.end() || !jwk->is_object()) {
    return blob_error("\"public_jwk\" must be an object");
  }
  r.public_jwk = *jwk;
  auto ops = v.find("key_ops");
  if (ops == v.end()) {
    return blob_error("\"key_ops\" is missing");
  }
  auto parsed_ops = parse_key_ops(*ops, r.spec.family);
  if (!parsed_ops) {
    return blob_error("\"key_ops\": " + parsed_ops.error().message());
  }
  r.key_ops = std::move(*parsed_ops);
  KEYPORT_ASSIGN_OR_RETURN(r.enabled, backup_bool(v, "enabled"));
  KEYPORT_ASSIGN_OR_RETURN(std::int64_t nbf, backup_int(v, "nbf", true));
  KEYPORT_ASSIGN_OR_RETURN(std::int64_t exp, backup_int(v, "exp", true));
  if (nbf >= 0) {
    r.nbf = nbf;
  }
  if (exp >= 0) {
    r.exp = exp;
  }
  KEYPORT_ASSIGN_OR_RETURN(r.created, backup_int(v, "created"));
  KEYPORT_ASSIGN_OR_RETURN(r.updated, backup_int(v, "updated"));
  KEYPORT_ASSIGN_OR_RETURN(r.exportable, backup_bool(v, "exportable"));
  auto tags = parse_tags(Json{{"tags", v.contains("tags") ? v["tags"] : Json()}});
  if (!tags) {
    return blob_error("\"tags\": " + tags.error().message());
  }
  r.tags = tags->value_or(Json::object());
  if (auto p = v.find("release_policy"); p != v.end() && !p->is_null()) {
    if (!p->is_object()) {
      return blob_error("\"release_policy\" must be an object");
    }
    KEYPORT_TRY(
        json_only_members(*p, {"contentType", "data", "immutable"}, "backup blob release_policy"));
    ReleasePolicy rp;
    KEYPORT_ASSIGN_OR_RETURN(rp.content_type, backup_string(*p, "contentType"));
    KEYPORT_ASSIGN_OR_RETURN(rp.data, backup_b64(*p, "data"));
    KEYPORT_ASSIGN_OR_RETURN(rp.immutable, backup_bool(*p, "immutable"));
    r.release_policy = std::move(rp);
  }
  KEYPORT_ASSIGN_OR_RETURN(r.origin, backup_string(v, "origin"));
  if (r.origin != "generated" && r.origin != "byok" && r.origin != "import" &&
      r.origin != "rotated") {
    return blob_error("\"origin\" is unknown");
  }
  KEYPORT_ASSIGN_OR_RETURN(out.wrapped, backup_b64(v, "wrapped"));
  if (out.wrapped.size() < 16 || out.wrapped.size() % 8 != 0) {
    return blob_error("\"wrapped\" is not AES key wrap output");
  }
  return out;
}

}  // namespace

Bytes backup_signed_part(std::string_view domain, std::string_view payload) {
  std::string head(kBackupMagic);
  head.push_back(static_cast<char>(kBackupFormat));
  head.append(domain);
  const auto n = static_cast<std::uint32_t>(payload.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    head.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  head.append(payload);
  return Bytes(head.begin(), head.end());
}

Result<BackupFrame> parse_backup_frame(std::span<const std::uint8_t> blob) {
  if (blob.size() > kMaxBackupBytes) {
    return blob_error("larger than " + std::to_string(kMaxBackupBytes) + " bytes");
  }
  if (blob.size() < kBackupHeaderBytes + kBackupMacBytes) {
    return blob_error("too short");
  }
  if (!std::equal(kBackupMagic.begin(), kBackupMagic.end(), blob.begin())) {
    return blob_error("not a keyport key backup");
  }
  if (blob[4] != kBackupFormat) {
    return blob_error("unknown format " + std::to_string(blob[4]));
  }
  BackupFrame f;
  f.domain.assign(reinterpret_cast<const char*>(blob.data() + 5), kBackupDomainBytes);
  if (!valid_uuid_text(f.domain)) {
    return blob_error("the backup domain is not a UUID");
  }
  std::uint32_t n = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    n = (n << 8) | blob[5 + kBackupDomainBytes + i];
  }
  if (static_cast<std::size_t>(n) != blob.size() - kBackupHeaderBytes - kBackupMacBytes) {
    return blob_error("the payload length does not match the blob's size");
  }
  f.payload.assign(reinterpret_cast<const char*>(blob.data() + kBackupHeaderBytes), n);
  f.signed_part.assign(blob.begin(), blob.end() - kBackupMacBytes);
  f.mac.assign(blob.end() - kBackupMacBytes, blob.end());
  return f;
}

std::string backup_payload(const std::string& name, const std::vector<BackupVersion>& versions,
                           const std::optional<RotationPolicyRecord>& policy) {
  Json vs = Json::array();
  for (const auto& v : versions) {
    const KeyVersionRecord& r = v.record;
    Json j = Json::object();
    j["version"] = r.version;
    j["kty"] = r.kty;
    j["spec"] = r.spec.name();
    j["public_jwk"] = r.public_jwk.is_object() ? r.public_jwk : Json::object();
    j["key_ops"] = r.key_ops;
    j["enabled"] = r.enabled;
    if (r.nbf) {
      j["nbf"] = *r.nbf;
    }
    if (r.exp) {
      j["exp"] = *r.exp;
    }
    j["created"] = r.created;
    j["updated"] = r.updated;
    j["exportable"] = r.exportable;
    j["tags"] = r.tags.is_object() ? r.tags : Json::object();
    if (r.release_policy) {
      j["release_policy"] = Json{{"contentType", r.release_policy->content_type},
                                 {"data", base64url_encode(r.release_policy->data)},
                                 {"immutable", r.release_policy->immutable}};
    }
    j["origin"] = r.origin;
    j["wrapped"] = base64url_encode(v.wrapped);
    vs.push_back(std::move(j));
  }
  Json out = Json::object();
  out["format"] = 1;
  out["name"] = name;
  out["versions"] = std::move(vs);
  out["rotation_policy"] = policy ? Json{{"policy", policy->policy},
                                         {"created", policy->created},
                                         {"updated", policy->updated}}
                                  : Json();
  return dump_json(out);
}

Result<BackupContents> parse_backup_payload(std::string_view payload) {
  JsonLimits limits;
  limits.max_bytes = kMaxBackupBytes;
  limits.max_depth = 16;
  auto j = parse_json_strict(payload, limits);
  if (!j) {
    return blob_error("the payload is not JSON: " + j.error().message());
  }
  if (!j->is_object()) {
    return blob_error("the payload must be an object");
  }
  KEYPORT_TRY(
      json_only_members(*j, {"format", "name", "versions", "rotation_policy"}, "backup blob"));
  auto format = j->find("format");
  if (format == j->end() || !format->is_number_integer() || format->get<std::int64_t>() != 1) {
    return blob_error("\"format\" must be 1");
  }
  BackupContents out;
  KEYPORT_ASSIGN_OR_RETURN(out.name, backup_string(*j, "name"));
  if (!valid_key_name(out.name)) {
    return blob_error("\"name\" is not a key name");
  }
  auto versions = j->find("versions");
  if (versions == j->end() || !versions->is_array() || versions->empty()) {
    return blob_error("\"versions\" must be a non-empty array");
  }
  for (const Json& v : *versions) {
    KEYPORT_ASSIGN_OR_RETURN(BackupVersion bv, parse_backup_version(v, out.name));
    for (const auto& seen : out.versions) {
      if (seen.record.version == bv.record.version) {
        return blob_error("a version appears twice");
      }
    }
    out.versions.push_back(std::move(bv));
  }
  if (auto p = j->find("rotation_policy"); p != j->end() && !p->is_null()) {
    if (!p->is_object()) {
      return blob_error("\"rotation_policy\" must be an object or null");
    }
    KEYPORT_TRY(
        json_only_members(*p, {"policy", "created", "updated"}, "backup blob rotation_policy"));
    RotationPolicyRecord rp;
    rp.name = out.name;
    auto pol = p->find("policy");
    if (pol == p->end() || !pol->is_object()) {
      return blob_error("\"rotation_policy.policy\" must be an object");
    }
    rp.policy = *pol;
    KEYPORT_ASSIGN_OR_RETURN(rp.created, backup_int(*p, "created"));
    KEYPORT_ASSIGN_OR_RETURN(rp.updated, backup_int(*p, "updated"));
    out.rotation_policy = std::move(rp);
  }
  return out;
}

std::string domain_transfer_json(const DomainKeyTransfer& t) {
  Json out = Json::object();
  out["format"] = 1;
  out["domain"] = t.domain;
  out["enc"] = std::string(wrap_alg_name(t.enc));
  out["transfer_key_sha256"] = t.transfer_key_sha256;
  out["wrap"] = base64url_encode(t.wrap);
  out["mac"] = base64url_encode(t.mac);
  return dump_json(out);
}

Result<DomainKeyTransfer> parse_domain_transfer(std::string_view text) {
  auto transfer_error = [](std::string what) {
    return make_error(ErrorCode::kFormat, "backup-domain transfer: " + std::move(what));
  };
  JsonLimits limits;
  limits.max_bytes = kMaxDomainTransferBytes;
  limits.max_depth = 4;
  auto j = parse_json_strict(text, limits);
  if (!j) {
    return transfer_error("not JSON: " + j.error().message());
  }
  if (!j->is_object()) {
    return transfer_error("must be an object");
  }
  KEYPORT_TRY(json_only_members(*j,
                                {"format", "domain", "enc", "transfer_key_sha256", "wrap", "mac"},
                                "backup-domain transfer"));
  auto format = j->find("format");
  if (format == j->end() || !format->is_number_integer() || format->get<std::int64_t>() != 1) {
    return transfer_error("\"format\" must be 1");
  }
  DomainKeyTransfer t;
  auto str = [&](const char* name) -> Result<std::string> {
    auto it = j->find(name);
    if (it == j->end() || !it->is_string()) {
      return transfer_error("\"" + std::string(name) + "\" must be a string");
    }
    return it->get<std::string>();
  };
  KEYPORT_ASSIGN_OR_RETURN(t.domain, str("domain"));
  if (!valid_uuid_text(t.domain)) {
    return transfer_error("\"domain\" is not a UUID");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string enc, str("enc"));
  auto alg = parse_wrap_alg(enc);
  if (!alg) {
    return transfer_error("\"enc\" is not a transfer algorithm");
  }
  t.enc = *alg;
  KEYPORT_ASSIGN_OR_RETURN(t.transfer_key_sha256, str("transfer_key_sha256"));
  if (t.transfer_key_sha256.size() != 64 ||
      !std::all_of(t.transfer_key_sha256.begin(), t.transfer_key_sha256.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    return transfer_error("\"transfer_key_sha256\" must be 64 lowercase hex characters");
  }
  for (const char* name : {"wrap", "mac"}) {
    KEYPORT_ASSIGN_OR_RETURN(std::string b64, str(name));
    auto b = base64url_decode(b64);
    // RSA-OAEP of at least 2048 bits, then the 40 bytes of a 32-byte key wrapped with padding.
    if (!b || b->size() < 256 + 40 || b->size() > 1024 + 40) {
      return transfer_error("\"" + std::string(name) + "\" is not a wrapped key");
    }
    (std::string_view(name) == "wrap" ? t.wrap : t.mac) = std::move(*b);
  }
  return t;
}

}  // namespace keyport::vault
