// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/quirks.h"

namespace keyport::p11 {
namespace {

bool is_softhsm_26(const TokenInfo& t) {
  return t.manufacturer == "SoftHSM project" && t.model == "SoftHSM v2" &&
         t.firmware_version.major == 2 && t.firmware_version.minor == 6;
}

const char* kZeroPadding = "softhsm-kwp-zero-padding";
const char* kEcNoPublic = "softhsm-ec-pkcs8-no-public-key";

}  // namespace

std::string_view to_string(QuirkImpact impact) {
  switch (impact) {
    case QuirkImpact::kInfo:
      return "info";
    case QuirkImpact::kWorkaround:
      return "worked-around";
    case QuirkImpact::kImportRisk:
      return "import-risk";
    case QuirkImpact::kLimitation:
      return "limitation";
  }
  return "";
}

std::vector<Quirk> known_quirks(const TokenInfo& t) {
  std::vector<Quirk> q;
  if (!is_softhsm_26(t))
    return q;
  q.push_back({kZeroPadding, "zero bytes after the PKCS#8 inside the wrapped key",
               "SoftHSM 2.6.x pads the key data with 0x00 to a multiple of 8 before RFC 5649 "
               "wrapping, so the "
               "unwrapped plaintext is DER || 00..00 (EC P-256 and P-521 always, RSA when its DER "
               "length is not a "
               "multiple of 8). Fixed in SoftHSM's develop branch (f94aaff), not in 2.6.1.",
               "OpenSSL and SoftHSM accept it; strict DER parsers (pyca/cryptography) refuse it. "
               "Whether Azure's HSM "
               "accepts it is not known: test the import with a throwaway key first, or use a "
               "module without this bug.",
               QuirkImpact::kImportRisk});
  q.push_back({kEcNoPublic, "EC private keys are wrapped without their public key",
               "The ECPrivateKey inside the PKCS#8 holds only the private scalar (no parameters, "
               "no publicKey): P-256 "
               "is 67 bytes where OpenSSL writes 138.",
               "RFC 5915 makes publicKey optional and OpenSSL recomputes it; an importer that "
               "insists on it would "
               "refuse the key.",
               QuirkImpact::kImportRisk});
  q.push_back(
      {"softhsm-oaep-sha1-only", "RSA-OAEP only with SHA-1",
       "MechParamCheckRSAPKCSOAEP accepts only hashAlg SHA-1, MGF1-SHA1, no label; anything else "
       "is "
       "CKR_ARGUMENTS_BAD.",
       "enc CKM_RSA_AES_KEY_WRAP works (what Azure's BYOK specification documents); "
       "RSA_AES_KEY_WRAP_256 and "
       "_384 cannot be made on this module, and keyport refuses them instead of falling back.",
       QuirkImpact::kLimitation});
  q.push_back(
      {"softhsm-no-rsa-aes-key-wrap", "no one-step CKM_RSA_AES_KEY_WRAP",
       "CKM_RSA_AES_KEY_WRAP (0x1054) is missing from the mechanism list (added in SoftHSM 2.7.0).",
       "keyport uses the composite strategy: ephemeral AES-256 session key, CKM_AES_KEY_WRAP_PAD, "
       "CKM_RSA_PKCS_OAEP; the bytes are the same as the one-step mechanism's.",
       QuirkImpact::kWorkaround});
  q.push_back({"softhsm-extractable-default-false", "CKA_EXTRACTABLE defaults to FALSE",
               "Keys generated without CKA_EXTRACTABLE (pkcs11-tool, libp11) can never be wrapped "
               "(CKR_KEY_UNEXTRACTABLE), and the attribute cannot be turned on later.",
               "Generate BYOK keys with `keyport key generate`, which sets it and checks it.",
               QuirkImpact::kWorkaround});
  q.push_back(
      {"softhsm-unwrapped-aes-value-len-0", "unwrapped AES keys report CKA_VALUE_LEN 0",
       "C_UnwrapKey must not be given CKA_VALUE_LEN, and the resulting key reports 0 (issue #628).",
       "Receivers must learn the AES size from the wrapped length; keyport's vault does.",
       QuirkImpact::kInfo});
  q.push_back(
      {"softhsm-login-rewrites-token-file", "every C_Login rewrites the token file in place",
       "C_Login stores the token's PIN-count flags into token.object by truncating the file and "
       "writing it again, without a temporary file or fsync; a process killed between the two "
       "(kill -9, OOM, power loss) leaves it empty, and the token no longer loads (4 of 300 "
       "random kills in the first 100 ms of `keyport key list` on an idle machine).",
       "Keep a backup of the token folder; restoring token.object from it brings the token and "
       "its keys back (key objects are separate files, not written by a login).",
       QuirkImpact::kInfo});
  return q;
}

std::vector<Quirk> quirks_affecting_export(const TokenInfo& t, const KeySpec& spec) {
  std::vector<Quirk> out;
  for (auto& q : known_quirks(t)) {
    bool padded = spec.family == KeyFamily::kRsa ||
                  (spec.family == KeyFamily::kEc &&
                   (spec.curve == Curve::kP256 || spec.curve == Curve::kP521));
    if (q.code == kZeroPadding && padded)
      out.push_back(q);
    if (q.code == kEcNoPublic && spec.family == KeyFamily::kEc)
      out.push_back(q);
  }
  return out;
}

}  // namespace keyport::p11
