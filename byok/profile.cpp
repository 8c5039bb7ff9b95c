// SPDX-License-Identifier: Apache-2.0
#include "byok/profile.h"

#include <algorithm>
#include <string>

namespace keyport::byok {

std::string_view target_title(TargetKind target) {
  return target == TargetKind::kManagedHsm ? "Managed HSM" : "Key Vault";
}

namespace {

std::string accepted_list(TargetKind target) {
  std::string out;
  for (const KeySpec& spec : accepted_key_specs(target)) {
    out += (out.empty() ? "" : ", ") + spec.name();
  }
  return out;
}

}  // namespace

Status check_target_accepts(TargetKind target, const KeySpec& spec) {
  const auto& known = all_key_specs();
  if (std::find(known.begin(), known.end(), spec) == known.end()) {
    return make_error(ErrorCode::kUnsupported,
                      std::string(target_title(target)) + " does not accept " + spec.name() +
                          " keys by BYOK import; accepted: " + accepted_list(target));
  }
  if (spec.family == KeyFamily::kAes && target == TargetKind::kKeyVault) {
    return make_error(
        ErrorCode::kUnsupported,
        "Key Vault does not take AES (oct-HSM) keys by BYOK; only Managed HSM does: "
        "wrap to a Managed HSM KEK (a https://<hsm>.managedhsm.azure.net/keys/... kid), "
        "or choose an RSA or EC key");
  }
  return {};
}

std::vector<KeySpec> accepted_key_specs(TargetKind target) {
  std::vector<KeySpec> out;
  for (const KeySpec& spec : all_key_specs()) {
    if (spec.family == KeyFamily::kAes && target == TargetKind::kKeyVault) {
      continue;
    }
    out.push_back(spec);
  }
  return out;
}

}  // namespace keyport::byok
