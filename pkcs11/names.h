// SPDX-License-Identifier: Apache-2.0
// Names of PKCS#11 constants for messages and logs.
#pragma once

#include <string>
#include <string_view>

#include "pkcs11/cryptoki.h"

namespace keyport::p11 {

// "CKR_KEY_UNEXTRACTABLE"; "" when unknown.
std::string_view rv_name(CK_RV rv);
// "CKM_AES_KEY_WRAP_PAD"; "0x0000210c" style hex when unknown.
std::string mechanism_name(CK_MECHANISM_TYPE mech);
// "CKA_EXTRACTABLE"; hex when unknown.
std::string attribute_name(CK_ATTRIBUTE_TYPE attr);

// Installs rv_name as the namer keyport::Error::describe() uses. Idempotent.
void install_rv_namer();

}  // namespace keyport::p11
