// SPDX-License-Identifier: Apache-2.0
#include "byok/import_request.h"

#include <set>

#include "byok/byok_file.h"
#include "byok/kid.h"
#include "byok/lint.h"
#include "byok/profile.h"
#include "core/encoding.h"
#include "core/json.h"

namespace keyport::byok {
namespace {

Status check_name(const std::string& name) {
  if (!is_key_name(name)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--name " + dump_json(Json(name)) +
                          ": an Azure key name is 1 to 127 letters, digits and '-' "
                          "(^[0-9a-zA-Z-]{1,127}$)");
  }
  return {};
}

Result<KeyFamily> parse_kty(const std::string& kty) {
  const std::string want = ascii_lower(kty);
  if (want == "rsa") {
    return KeyFamily::kRsa;
  }
  if (want == "ec") {
    return KeyFamily::kEc;
  }
  if (want == "oct") {
    return KeyFamily::kAes;
  }
  return make_error(ErrorCode::kInvalidArgument, "--kty " + dump_json(Json(kty)) +
                                                     ": use RSA, EC or oct (as az keyvault key "
                                                     "import --kty)");
}

std::string_view hsm_kty(KeyFamily family) {
  return KeySpec{family, 0, std::nullopt}.azure_kty();
}

Result<nlohmann::ordered_json> parse_tags(const std::vector<std::string>& tags) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  std::set<std::string> seen;
  for (const std::string& tag : tags) {
    const std::size_t eq = tag.find('=');
    if (eq == std::string::npos || eq == 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--tags " + dump_json(Json(tag)) + ": give each tag as name=value");
    }
    const std::string name = tag.substr(0, eq);
    if (!seen.insert(name).second) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--tags: the tag " + dump_json(Json(name)) + " is given twice");
    }
    out[name] = tag.substr(eq + 1);
  }
  return out;
}

}  // namespace

std::string ImportRequest::body_text() const {
  return body.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Result<ImportRequest> build_import_request(std::span<const std::uint8_t> byok_file,
                                           const ImportRequestOptions& options) {
  KEYPORT_TRY(check_name(options.name));
  auto file = ByokFile::parse(as_chars(byok_file));
  if (!file) {
    return tl::unexpected(
        file.error().with_context("not a .byok file keyport accepts (keyport byok inspect "
                                  "FILE says why)"));
  }
  KEYPORT_ASSIGN_OR_RETURN(KeyId kid, parse_kid(file->kid, /*require_version=*/true));

  // The key type: --kty, else what the file was found to hold.
  std::optional<KeyFamily> family;
  if (options.kty) {
    KEYPORT_ASSIGN_OR_RETURN(family, parse_kty(*options.kty));
  }
  if (options.detected) {
    if (family && *family != options.detected->family) {
      return make_error(ErrorCode::kInvalidArgument, "--kty " + *options.kty +
                                                         " contradicts the key in the file, " +
                                                         options.detected->name());
    }
    family = options.detected->family;
  }
  if (!family) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--kty is required (RSA, EC or oct): a .byok file does not say which key it "
                      "holds (on a test rig, --kek-private KEK.pem reads it from the file)");
  }

  std::optional<Curve> curve;
  if (options.curve) {
    if (*family != KeyFamily::kEc) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--curve is for EC keys only; this is an " +
                            std::string(KeySpec{*family, 0, std::nullopt}.azure_cli_kty()) +
                            " key");
    }
    auto parsed = curve_from_jwk_name(*options.curve);
    if (!parsed) {
      return make_error(ErrorCode::kInvalidArgument, "--curve: " + parsed.error().message());
    }
    curve = *parsed;
  }
  if (options.detected && options.detected->curve) {
    if (curve && *curve != *options.detected->curve) {
      return make_error(ErrorCode::kInvalidArgument, "--curve " + *options.curve +
                                                         " contradicts the key in the file, " +
                                                         options.detected->name());
    }
    curve = options.detected->curve;
  }
  if (*family == KeyFamily::kEc && !curve) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--curve is required for EC keys (P-256, P-384, P-521, P-256K)");
  }

  if (kid.target) {
    Status accepted;
    if (options.detected) {
      accepted = check_target_accepts(*kid.target, *options.detected);
    } else if (*family == KeyFamily::kAes) {
      accepted = check_target_accepts(*kid.target, KeySpec{KeyFamily::kAes, 256, std::nullopt});
    }
    if (!accepted) {
      return tl::unexpected(
          std::move(accepted).error().with_detail(std::string(lint_code::kProfile)));
    }
  }

  if ((options.exportable || options.immutable) && !options.policy) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(options.exportable ? "--exportable" : "--immutable") +
                          " needs --policy POLICY.json: Azure requires a release policy for the "
                          "first version of an exportable key");
  }
  if (options.policy && !options.exportable) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--policy needs --exportable: only exportable keys have a release policy");
  }
  if (options.policy) {
    auto policy = parse_json_strict(*options.policy);
    if (!policy) {
      return tl::unexpected(policy.error().with_context("--policy"));
    }
    if (!policy->is_object()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--policy: a release policy is a JSON object ({\"version\": \"1.0.0\", "
                        "\"anyOf\": [...]}), not a JSON " +
                            std::string(policy->type_name()));
    }
  }
  KEYPORT_ASSIGN_OR_RETURN(nlohmann::ordered_json tags, parse_tags(options.tags));

  ImportRequest request;
  request.family = *family;
  request.curve = curve;
  request.url = "https://" + kid.host + "/keys/" + options.name +
                "?api-version=" + std::string(kImportApiVersion);

  nlohmann::ordered_json key = nlohmann::ordered_json::object();
  key["kty"] = std::string(hsm_kty(*family));
  if (curve) {
    key["crv"] = std::string(curve_jwk_name(*curve));
  }
  key["key_hsm"] = base64url_encode(byok_file);
  nlohmann::ordered_json& body = request.body;
  body = nlohmann::ordered_json::object();
  body["key"] = std::move(key);
  if (options.hsm) {
    body["hsm"] = true;
  }
  nlohmann::ordered_json attributes = nlohmann::ordered_json::object();
  attributes["enabled"] = options.enabled;
  if (options.exportable) {
    attributes["exportable"] = true;
  }
  body["attributes"] = std::move(attributes);
  if (!options.tags.empty()) {
    body["tags"] = std::move(tags);
  }
  if (options.policy) {
    nlohmann::ordered_json policy = nlohmann::ordered_json::object();
    policy["contentType"] = std::string(kPolicyContentType);
    policy["data"] = base64url_encode(as_bytes(*options.policy));
    policy["immutable"] = options.immutable;
    body["release_policy"] = std::move(policy);
  }
  return request;
}

}  // namespace keyport::byok
