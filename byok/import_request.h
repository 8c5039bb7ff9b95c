// SPDX-License-Identifier: Apache-2.0
// The body of `PUT {vault}/keys/{name}` (Key Vault ImportKey) that uploads a .byok file, exactly
// as `az keyvault key import --byok-file` and the SDKs send it (Key Vault REST API ImportKey,
// §3.2):
//   {"key": {"kty": "RSA-HSM" | "EC-HSM" | "oct-HSM", "crv": <EC only>,
//            "key_hsm": <base64url, no padding, of the whole .byok file's bytes>},
//    "hsm": true,                                   (only when asked for)
//    "attributes": {"enabled": true, "exportable": true (only when asked for)},
//    "tags": {...},                                 (only when given)
//    "release_policy": {"contentType": "application/json; charset=utf-8",
//                       "data": <base64url, no padding, of the policy file's bytes>,
//                       "immutable": false}}       (only with a policy)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/algorithms.h"
#include "core/error.h"

namespace keyport::byok {

struct ImportRequestOptions {
  std::string name;                   // the Azure key name: ^[0-9a-zA-Z-]{1,127}$
  std::optional<std::string> kty;     // "RSA", "EC" or "oct" (az --kty; case-insensitive)
  std::optional<std::string> curve;   // EC: "P-256", "P-384", "P-521", "P-256K"
  std::optional<KeySpec> detected;    // what the file holds, when known (a test rig's private KEK)
  bool hsm = false;                   // "hsm": true
  bool enabled = true;                // attributes.enabled
  bool exportable = false;            // attributes.exportable (needs a policy)
  std::optional<std::string> policy;  // the release policy's bytes, sent as they are
  bool immutable = false;             // release_policy.immutable (needs a policy)
  std::vector<std::string> tags;      // "name=value"
};

struct ImportRequest {
  std::string method = "PUT";
  // https://<host from the file's kid>/keys/<name>?api-version=7.5
  std::string url;
  KeyFamily family = KeyFamily::kRsa;
  std::optional<Curve> curve;
  nlohmann::ordered_json body;

  // The body, pretty-printed with two spaces, with a trailing newline.
  std::string body_text() const;
};

inline constexpr std::string_view kImportApiVersion = "7.5";
inline constexpr std::string_view kPolicyContentType = "application/json; charset=utf-8";

// Builds the request for the .byok file's exact bytes. The file must be one that ByokFile::parse
// accepts (kFormat otherwise). kInvalidArgument for a bad name, kty, curve, tag, for
// --exportable or --immutable without a policy, a policy without --exportable, a kty or curve
// that contradicts `detected`, or a policy that is not a JSON object (duplicate members refused).
// kUnsupported (detail "BYOK-PROFILE") for an oct key in a Key Vault (not Managed HSM) file.
Result<ImportRequest> build_import_request(std::span<const std::uint8_t> byok_file,
                                           const ImportRequestOptions& options);

}  // namespace keyport::byok
