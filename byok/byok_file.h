// SPDX-License-Identifier: Apache-2.0
// The .byok transfer file (Microsoft Learn, BYOK specification, "Key Transfer Blob"):
//   {"schema_version":"1.0.0",
//    "header":{"kid":"https://<host>/keys/<kek>/<version>","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},
//    "ciphertext":"<base64url, no padding, of RSA-OAEP(k) || AES-KWP(k, key)>",
//    "generator":"<tool; HSM model and firmware>"}
#pragma once

#include <string>
#include <string_view>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"

namespace keyport::byok {

// The only schema_version of the transfer format.
inline constexpr std::string_view kByokSchemaVersion = "1.0.0";

struct ByokFile {
  std::string schema_version{kByokSchemaVersion};
  std::string kid;
  std::string alg = "dir";
  WrapAlg enc = WrapAlg::kRsaAesKeyWrap;
  Bytes ciphertext;
  std::string generator;

  // The file's exact text: members in the order above, two-space indentation, ciphertext
  // base64url without padding, a trailing newline.
  std::string to_json() const;

  // Strict reader: duplicate members, unknown members, a wrong schema_version ("1.0.0"), alg other
  // than "dir", an unknown enc, a kid that is not a versioned key identifier, or ciphertext that is
  // not base64url (padded or not) are kFormat errors naming the member. generator is optional.
  static Result<ByokFile> parse(std::string_view text);
};

}  // namespace keyport::byok
