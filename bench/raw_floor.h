// SPDX-License-Identifier: Apache-2.0
// The floor every export benchmark compares against: exactly the PKCS#11 calls keyport's composite
// export makes (C_GenerateKey of the transfer key with the same template, C_WrapKey with
// the module's RFC 5649 mechanism, C_WrapKey with CKM_RSA_PKCS_OAEP SHA-1, C_DestroyObject), issued
// straight through the function list with stack buffers and no layer around them.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/bench_util.h"
#include "pkcs11/cryptoki.h"

namespace keyport::bench {

struct RawExporter {
  const CK_FUNCTION_LIST* f;
  CK_SESSION_HANDLE s;
  CK_OBJECT_HANDLE kek;
  std::vector<std::uint8_t> out;
  // The module's RFC 5649 mechanism (SoftHSM 2.6: CKM_AES_KEY_WRAP_PAD; NSS: _KWP).
  CK_MECHANISM_TYPE kwp_mechanism = CKM_AES_KEY_WRAP_PAD;

  void run(CK_OBJECT_HANDLE target) {
    CK_BBOOL t = CK_TRUE, fa = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = 32;
    CK_ATTRIBUTE at[] = {{CKA_CLASS, &cls, sizeof cls},
                         {CKA_KEY_TYPE, &kt, sizeof kt},
                         {CKA_TOKEN, &fa, 1},
                         {CKA_PRIVATE, &t, 1},
                         {CKA_SENSITIVE, &t, 1},
                         {CKA_EXTRACTABLE, &t, 1},
                         {CKA_ENCRYPT, &fa, 1},
                         {CKA_DECRYPT, &fa, 1},
                         {CKA_SIGN, &fa, 1},
                         {CKA_VERIFY, &fa, 1},
                         {CKA_DERIVE, &fa, 1},
                         {CKA_WRAP, &t, 1},
                         {CKA_UNWRAP, &fa, 1},
                         {CKA_VALUE_LEN, &len, sizeof len}};
    CK_MECHANISM gen{CKM_AES_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE eph = 0;
    if (f->C_GenerateKey(s, &gen, at, 14, &eph) != CKR_OK)
      die("raw C_GenerateKey");
    std::uint8_t kwp[4096];
    CK_ULONG kwp_len = sizeof kwp;
    CK_MECHANISM kwp_m{kwp_mechanism, nullptr, 0};
    if (f->C_WrapKey(s, &kwp_m, eph, target, kwp, &kwp_len) != CKR_OK)
      die("raw C_WrapKey KWP");
    CK_RSA_PKCS_OAEP_PARAMS p{CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, nullptr, 0};
    CK_MECHANISM oaep{CKM_RSA_PKCS_OAEP, &p, sizeof p};
    std::uint8_t rsa[512];
    CK_ULONG rsa_len = sizeof rsa;
    if (f->C_WrapKey(s, &oaep, kek, eph, rsa, &rsa_len) != CKR_OK)
      die("raw C_WrapKey OAEP");
    if (f->C_DestroyObject(s, eph) != CKR_OK)
      die("raw C_DestroyObject");
    out.assign(rsa, rsa + rsa_len);
    out.insert(out.end(), kwp, kwp + kwp_len);
  }
};

}  // namespace keyport::bench
