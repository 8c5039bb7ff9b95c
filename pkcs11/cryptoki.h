// SPDX-License-Identifier: Apache-2.0
// The PKCS#11 header keyport uses (p11-kit's v2.40 header, CRYPTOKI_COMPAT names) plus the few
// PKCS#11 3.0 additions it lacks, declared here from the OASIS PKCS#11 3.0 specification.
#pragma once

#include <p11-kit/pkcs11.h>

// PKCS#11 3.0 §2.1.21 (RSA AES KEY WRAP): parameters of CKM_RSA_AES_KEY_WRAP.
struct CK_RSA_AES_KEY_WRAP_PARAMS {
  CK_ULONG ulAESKeyBits;
  CK_RSA_PKCS_OAEP_PARAMS* pOAEPParams;
};

#ifndef CKM_AES_KEY_WRAP_KWP
// PKCS#11 3.0: RFC 5649 key wrap with padding (SoftHSM calls RFC 5649 CKM_AES_KEY_WRAP_PAD).
#define CKM_AES_KEY_WRAP_KWP (0x210BUL)
#endif

// Vendor codes for RFC 5649, used only after a self-test proved them (pkcs11/selftest.h).
// Thales Luna: CKM_AES_KWP = CKM_VENDOR_DEFINED + 0x171 (Luna SDK headers).
inline constexpr CK_MECHANISM_TYPE kCkmLunaAesKwp = CKM_VENDOR_DEFINED + 0x171UL;
// AWS CloudHSM Client SDK 5: CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD = CKM_VENDOR_DEFINED | 0x216F
// (cloudhsm_pkcs11_vendor_defs.h); the CloudHSM user guide calls it RFC 5649.
inline constexpr CK_MECHANISM_TYPE kCkmCloudHsmAesKeyWrapZeroPad = CKM_VENDOR_DEFINED | 0x216FUL;

#ifndef CKM_SHA384
#define CKM_SHA384 (0x260UL)
#endif
