// SPDX-License-Identifier: Apache-2.0
// Known behaviour of specific PKCS#11 modules that matters for BYOK, detected from the token info,
// with what it means for an import into Azure (docs/quirks.md has the measurements and sources).
#pragma once

#include <string>
#include <vector>

#include "core/algorithms.h"
#include "pkcs11/token.h"

namespace keyport::p11 {

enum class QuirkImpact {
  kInfo,        // behaviour to know about; nothing to do
  kWorkaround,  // keyport works around it
  kImportRisk,  // the .byok keyport writes is affected; whether Azure minds is not known
  kLimitation,  // something the module cannot do at all
};
std::string_view to_string(QuirkImpact impact);

struct Quirk {
  std::string code;    // stable: "softhsm-kwp-zero-padding"
  std::string title;   // one line
  std::string detail;  // what happens, measured
  std::string advice;  // what it means for import and what to do
  QuirkImpact impact = QuirkImpact::kInfo;
};

// The quirks of the module behind this token (by manufacturer, model and firmware version).
std::vector<Quirk> known_quirks(const TokenInfo& token);

// The quirks among known_quirks(token) that affect a .byok file with a target of this type.
std::vector<Quirk> quirks_affecting_export(const TokenInfo& token, const KeySpec& spec);

}  // namespace keyport::p11
