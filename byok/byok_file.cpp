// SPDX-License-Identifier: Apache-2.0
#include "byok/byok_file.h"

#include <nlohmann/json.hpp>

#include "byok/kid.h"
#include "core/json.h"

namespace keyport::byok {
namespace {

constexpr std::string_view kAlgDir = "dir";

tl::unexpected<Error> member_error(std::string_view member, const std::string& why) {
  return make_error(ErrorCode::kFormat, ".byok member \"" + std::string(member) + "\": " + why);
}

}  // namespace

std::string ByokFile::to_json() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["kid"] = kid;
  header["alg"] = alg;
  header["enc"] = std::string(wrap_alg_name(enc));
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  doc["schema_version"] = schema_version;
  doc["header"] = std::move(header);
  doc["ciphertext"] = base64url_encode(ciphertext);
  doc["generator"] = generator;
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Result<ByokFile> ByokFile::parse(std::string_view text) {
  auto parsed = parse_json_strict(text);
  if (!parsed) {
    return tl::unexpected(parsed.error().with_context("not a valid .byok file"));
  }
  const Json& doc = *parsed;
  if (!doc.is_object()) {
    return make_error(ErrorCode::kFormat,
                      "not a valid .byok file: the top level must be a JSON "
                      "object with schema_version, header and ciphertext");
  }
  KEYPORT_TRY(json_only_members(doc, {"schema_version", "header", "ciphertext", "generator"},
                                ".byok top level"));
  ByokFile file;

  KEYPORT_ASSIGN_OR_RETURN(file.schema_version, json_string(doc, "schema_version", ".byok"));
  if (file.schema_version != kByokSchemaVersion) {
    return member_error("schema_version",
                        "must be \"1.0.0\", got " + json_quoted(file.schema_version));
  }

  KEYPORT_ASSIGN_OR_RETURN(const Json* header, json_object(doc, "header", ".byok"));
  KEYPORT_TRY(json_only_members(*header, {"kid", "alg", "enc"}, ".byok header"));

  KEYPORT_ASSIGN_OR_RETURN(file.kid, json_string(*header, "kid", ".byok header"));
  auto kid = parse_kid(file.kid, /*require_version=*/true);
  if (!kid) {
    return member_error("header.kid", kid.error().message());
  }

  KEYPORT_ASSIGN_OR_RETURN(file.alg, json_string(*header, "alg", ".byok header"));
  if (file.alg != kAlgDir) {
    return member_error("header.alg", "must be \"dir\", got " + json_quoted(file.alg));
  }

  KEYPORT_ASSIGN_OR_RETURN(std::string enc, json_string(*header, "enc", ".byok header"));
  auto alg = parse_wrap_alg(enc);
  if (!alg) {
    return member_error("header.enc", alg.error().message());
  }
  file.enc = *alg;

  KEYPORT_ASSIGN_OR_RETURN(std::string ciphertext, json_string(doc, "ciphertext", ".byok"));
  if (ciphertext.find_first_of("+/") != std::string::npos) {
    return member_error("ciphertext",
                        "uses the standard base64 alphabet ('+' or '/'); .byok ciphertext must be "
                        "base64url ('-' and '_')");
  }
  auto bytes = base64url_decode(ciphertext);
  if (!bytes) {
    return member_error("ciphertext", bytes.error().message());
  }
  if (bytes->empty()) {
    return member_error("ciphertext", "is empty");
  }
  file.ciphertext = std::move(*bytes);

  auto generator = doc.find("generator");
  if (generator != doc.end()) {
    if (!generator->is_string()) {
      return member_error("generator", "must be a string");
    }
    file.generator = generator->get<std::string>();
  }
  return file;
}

}  // namespace keyport::byok
