// SPDX-License-Identifier: Apache-2.0
// Names of PKCS#11 constants for messages and logs.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/algorithms.h"
#include "pkcs11/cryptoki.h"

namespace keyport::p11 {

// "CKR_KEY_UNEXTRACTABLE"; "" when unknown.
std::string_view rv_name(CK_RV rv);
// "CKM_AES_KEY_WRAP_PAD"; "0x0000210c" style hex when unknown.
std::string mechanism_name(CK_MECHANISM_TYPE mech);
// "CKA_EXTRACTABLE"; hex when unknown.
std::string attribute_name(CK_ATTRIBUTE_TYPE attr);

// The PKCS#11 hash mechanism and MGF1 function of a SHA digest, by its length in bytes
// (20 SHA-1, 32 SHA-256, 48 SHA-384, 64 SHA-512): the pair RSA-OAEP and RSA-PSS parameters take.
// SHA-256 for any other length.
struct ShaMechanisms {
  CK_MECHANISM_TYPE hash;
  CK_RSA_PKCS_MGF_TYPE mgf;
};
ShaMechanisms sha_mechanisms(std::size_t digest_bytes);

// RSA-OAEP parameters for an OAEP hash: that hash, MGF1 with the same hash, an empty label.
CK_RSA_PKCS_OAEP_PARAMS oaep_params(OaepHash hash);

// Installs rv_name as the namer keyport::Error::describe() uses. Idempotent.
void install_rv_namer();

}  // namespace keyport::p11
