// SPDX-License-Identifier: Apache-2.0
// Target profiles: which key types Azure Key Vault (Premium) and Managed HSM accept by BYOK
// (Microsoft Learn, "Import HSM-protected keys (BYOK)": supported key types).
#pragma once

#include <vector>

#include "byok/kid.h"
#include "core/algorithms.h"

namespace keyport::byok {

// "Key Vault" or "Managed HSM", for messages.
std::string_view target_title(TargetKind target);

// OK when `target` accepts `spec` by BYOK import; kUnsupported otherwise, saying why (for example
// "Key Vault accepts AES (oct-HSM) keys only in Managed HSM; use --target managed-hsm").
Status check_target_accepts(TargetKind target, const KeySpec& spec);

// The key specs a target accepts, in all_key_specs() order.
std::vector<KeySpec> accepted_key_specs(TargetKind target);

}  // namespace keyport::byok
