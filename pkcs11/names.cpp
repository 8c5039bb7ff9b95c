// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/names.h"

#include <cstdio>

#include "core/error.h"

namespace keyport::p11 {
namespace {

struct Named {
  unsigned long value;
  const char* name;
};

#define KP_N(x) \
  { x, #x }

constexpr Named kRv[] = {
    KP_N(CKR_OK),
    KP_N(CKR_CANCEL),
    KP_N(CKR_HOST_MEMORY),
    KP_N(CKR_SLOT_ID_INVALID),
    KP_N(CKR_GENERAL_ERROR),
    KP_N(CKR_FUNCTION_FAILED),
    KP_N(CKR_ARGUMENTS_BAD),
    KP_N(CKR_NO_EVENT),
    KP_N(CKR_NEED_TO_CREATE_THREADS),
    KP_N(CKR_CANT_LOCK),
    KP_N(CKR_ATTRIBUTE_READ_ONLY),
    KP_N(CKR_ATTRIBUTE_SENSITIVE),
    KP_N(CKR_ATTRIBUTE_TYPE_INVALID),
    KP_N(CKR_ATTRIBUTE_VALUE_INVALID),
    KP_N(CKR_DATA_INVALID),
    KP_N(CKR_DATA_LEN_RANGE),
    KP_N(CKR_DEVICE_ERROR),
    KP_N(CKR_DEVICE_MEMORY),
    KP_N(CKR_DEVICE_REMOVED),
    KP_N(CKR_ENCRYPTED_DATA_INVALID),
    KP_N(CKR_ENCRYPTED_DATA_LEN_RANGE),
    KP_N(CKR_FUNCTION_CANCELED),
    KP_N(CKR_FUNCTION_NOT_PARALLEL),
    KP_N(CKR_FUNCTION_NOT_SUPPORTED),
    KP_N(CKR_KEY_HANDLE_INVALID),
    KP_N(CKR_KEY_SIZE_RANGE),
    KP_N(CKR_KEY_TYPE_INCONSISTENT),
    KP_N(CKR_KEY_NOT_NEEDED),
    KP_N(CKR_KEY_CHANGED),
    KP_N(CKR_KEY_NEEDED),
    KP_N(CKR_KEY_INDIGESTIBLE),
    KP_N(CKR_KEY_FUNCTION_NOT_PERMITTED),
    KP_N(CKR_KEY_NOT_WRAPPABLE),
    KP_N(CKR_KEY_UNEXTRACTABLE),
    KP_N(CKR_MECHANISM_INVALID),
    KP_N(CKR_MECHANISM_PARAM_INVALID),
    KP_N(CKR_OBJECT_HANDLE_INVALID),
    KP_N(CKR_OPERATION_ACTIVE),
    KP_N(CKR_OPERATION_NOT_INITIALIZED),
    KP_N(CKR_PIN_INCORRECT),
    KP_N(CKR_PIN_INVALID),
    KP_N(CKR_PIN_LEN_RANGE),
    KP_N(CKR_PIN_EXPIRED),
    KP_N(CKR_PIN_LOCKED),
    KP_N(CKR_SESSION_CLOSED),
    KP_N(CKR_SESSION_COUNT),
    KP_N(CKR_SESSION_HANDLE_INVALID),
    KP_N(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    KP_N(CKR_SESSION_READ_ONLY),
    KP_N(CKR_SESSION_EXISTS),
    KP_N(CKR_SESSION_READ_ONLY_EXISTS),
    KP_N(CKR_SESSION_READ_WRITE_SO_EXISTS),
    KP_N(CKR_SIGNATURE_INVALID),
    KP_N(CKR_SIGNATURE_LEN_RANGE),
    KP_N(CKR_TEMPLATE_INCOMPLETE),
    KP_N(CKR_TEMPLATE_INCONSISTENT),
    KP_N(CKR_TOKEN_NOT_PRESENT),
    KP_N(CKR_TOKEN_NOT_RECOGNIZED),
    KP_N(CKR_TOKEN_WRITE_PROTECTED),
    KP_N(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    KP_N(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    KP_N(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    KP_N(CKR_USER_ALREADY_LOGGED_IN),
    KP_N(CKR_USER_NOT_LOGGED_IN),
    KP_N(CKR_USER_PIN_NOT_INITIALIZED),
    KP_N(CKR_USER_TYPE_INVALID),
    KP_N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    KP_N(CKR_USER_TOO_MANY_TYPES),
    KP_N(CKR_WRAPPED_KEY_INVALID),
    KP_N(CKR_WRAPPED_KEY_LEN_RANGE),
    KP_N(CKR_WRAPPING_KEY_HANDLE_INVALID),
    KP_N(CKR_WRAPPING_KEY_SIZE_RANGE),
    KP_N(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    KP_N(CKR_RANDOM_SEED_NOT_SUPPORTED),
    KP_N(CKR_RANDOM_NO_RNG),
    KP_N(CKR_DOMAIN_PARAMS_INVALID),
    KP_N(CKR_BUFFER_TOO_SMALL),
    KP_N(CKR_SAVED_STATE_INVALID),
    KP_N(CKR_INFORMATION_SENSITIVE),
    KP_N(CKR_STATE_UNSAVEABLE),
    KP_N(CKR_CRYPTOKI_NOT_INITIALIZED),
    KP_N(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    KP_N(CKR_MUTEX_BAD),
    KP_N(CKR_MUTEX_NOT_LOCKED),
    KP_N(CKR_FUNCTION_REJECTED),
};

constexpr Named kMech[] = {
    KP_N(CKM_RSA_PKCS_KEY_PAIR_GEN),
    KP_N(CKM_RSA_PKCS),
    KP_N(CKM_RSA_X_509),
    KP_N(CKM_RSA_PKCS_OAEP),
    KP_N(CKM_RSA_PKCS_PSS),
    KP_N(CKM_SHA256_RSA_PKCS),
    KP_N(CKM_SHA384_RSA_PKCS),
    KP_N(CKM_SHA512_RSA_PKCS),
    KP_N(CKM_SHA256_RSA_PKCS_PSS),
    KP_N(CKM_SHA384_RSA_PKCS_PSS),
    KP_N(CKM_SHA512_RSA_PKCS_PSS),
    KP_N(CKM_SHA_1),
    KP_N(CKM_SHA256),
    KP_N(CKM_SHA384),
    KP_N(CKM_SHA512),
    KP_N(CKM_EC_KEY_PAIR_GEN),
    KP_N(CKM_ECDSA),
    KP_N(CKM_ECDSA_SHA256),
    KP_N(CKM_ECDSA_SHA384),
    KP_N(CKM_ECDSA_SHA512),
    KP_N(CKM_ECDH1_DERIVE),
    KP_N(CKM_AES_KEY_GEN),
    KP_N(CKM_AES_ECB),
    KP_N(CKM_AES_CBC),
    KP_N(CKM_AES_CBC_PAD),
    KP_N(CKM_AES_GCM),
    KP_N(CKM_AES_KEY_WRAP),
    KP_N(CKM_AES_KEY_WRAP_PAD),
    KP_N(CKM_AES_KEY_WRAP_KWP),
    KP_N(CKM_RSA_AES_KEY_WRAP),
    KP_N(CKM_GENERIC_SECRET_KEY_GEN),
    KP_N(CKM_SHA256_HMAC),
};

constexpr Named kAttr[] = {
    KP_N(CKA_CLASS),
    KP_N(CKA_TOKEN),
    KP_N(CKA_PRIVATE),
    KP_N(CKA_LABEL),
    KP_N(CKA_VALUE),
    KP_N(CKA_KEY_TYPE),
    KP_N(CKA_ID),
    KP_N(CKA_SENSITIVE),
    KP_N(CKA_ENCRYPT),
    KP_N(CKA_DECRYPT),
    KP_N(CKA_WRAP),
    KP_N(CKA_UNWRAP),
    KP_N(CKA_SIGN),
    KP_N(CKA_VERIFY),
    KP_N(CKA_DERIVE),
    KP_N(CKA_MODULUS),
    KP_N(CKA_MODULUS_BITS),
    KP_N(CKA_PUBLIC_EXPONENT),
    KP_N(CKA_PRIVATE_EXPONENT),
    KP_N(CKA_PRIME_1),
    KP_N(CKA_PRIME_2),
    KP_N(CKA_EXPONENT_1),
    KP_N(CKA_EXPONENT_2),
    KP_N(CKA_COEFFICIENT),
    KP_N(CKA_VALUE_LEN),
    KP_N(CKA_EXTRACTABLE),
    KP_N(CKA_LOCAL),
    KP_N(CKA_NEVER_EXTRACTABLE),
    KP_N(CKA_ALWAYS_SENSITIVE),
    KP_N(CKA_MODIFIABLE),
    KP_N(CKA_EC_PARAMS),
    KP_N(CKA_EC_POINT),
    KP_N(CKA_WRAP_WITH_TRUSTED),
    KP_N(CKA_TRUSTED),
    KP_N(CKA_WRAP_TEMPLATE),
    KP_N(CKA_UNWRAP_TEMPLATE),
    KP_N(CKA_ALLOWED_MECHANISMS),
    KP_N(CKA_CHECK_VALUE),
    KP_N(CKA_START_DATE),
    KP_N(CKA_END_DATE),
};

#undef KP_N

template <std::size_t N>
const char* find(const Named (&table)[N], unsigned long value) {
  for (const auto& n : table) {
    if (n.value == value)
      return n.name;
  }
  return nullptr;
}

std::string hex(unsigned long v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%08lx", v);
  return buf;
}

}  // namespace

std::string_view rv_name(CK_RV rv) {
  const char* n = find(kRv, rv);
  return n ? std::string_view(n) : std::string_view();
}

std::string mechanism_name(CK_MECHANISM_TYPE mech) {
  const char* n = find(kMech, mech);
  return n ? std::string(n) : hex(mech);
}

std::string attribute_name(CK_ATTRIBUTE_TYPE attr) {
  const char* n = find(kAttr, attr);
  return n ? std::string(n) : hex(attr);
}

void install_rv_namer() {
  set_rv_namer([](unsigned long rv) { return rv_name(rv); });
}

ShaMechanisms sha_mechanisms(std::size_t digest_bytes) {
  switch (digest_bytes) {
    case 20:
      return {CKM_SHA_1, CKG_MGF1_SHA1};
    case 48:
      return {CKM_SHA384, CKG_MGF1_SHA384};
    case 64:
      return {CKM_SHA512, CKG_MGF1_SHA512};
    default:
      return {CKM_SHA256, CKG_MGF1_SHA256};
  }
}

CK_RSA_PKCS_OAEP_PARAMS oaep_params(OaepHash hash) {
  const ShaMechanisms m = sha_mechanisms(hash == OaepHash::kSha1     ? 20
                                         : hash == OaepHash::kSha384 ? 48
                                                                     : 32);
  return {m.hash, m.mgf, CKZ_DATA_SPECIFIED, nullptr, 0};
}

}  // namespace keyport::p11
