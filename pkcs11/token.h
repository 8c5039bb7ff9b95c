// SPDX-License-Identifier: Apache-2.0
// Slots, tokens and mechanisms of a module, and finding a token by PKCS#11 URI.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/secret.h"
#include "pkcs11/cryptoki.h"
#include "pkcs11/module.h"
#include "pkcs11/uri.h"

namespace keyport::p11 {

struct TokenInfo {
  std::string label;
  std::string manufacturer;
  std::string model;
  std::string serial;
  CK_FLAGS flags = 0;
  CK_VERSION hardware_version{};
  CK_VERSION firmware_version{};
  CK_TOKEN_INFO raw{};

  bool initialized() const { return (flags & CKF_TOKEN_INITIALIZED) != 0; }
  bool login_required() const { return (flags & CKF_LOGIN_REQUIRED) != 0; }
  // "x.y" of the firmware version.
  std::string firmware() const;
};

struct SlotInfo {
  CK_SLOT_ID id = 0;
  std::string description;
  std::string manufacturer;
  CK_SLOT_INFO raw{};
  std::optional<TokenInfo> token;  // present when a token is in the slot
};

struct MechanismInfo {
  CK_MECHANISM_TYPE type = 0;
  CK_ULONG min_key_size = 0;
  CK_ULONG max_key_size = 0;
  CK_FLAGS flags = 0;
};

// Every slot (with_token_only: only slots holding a token), with token info where present.
Result<std::vector<SlotInfo>> list_slots(const Module& module, bool with_token_only = true);
Result<TokenInfo> token_info(const Module& module, CK_SLOT_ID slot);
Result<std::vector<MechanismInfo>> list_mechanisms(const Module& module, CK_SLOT_ID slot);

// C_InitToken on `slot` with the SO PIN and a label (at most 32 bytes; space-padded).
Status init_token(const Module& module, CK_SLOT_ID slot, const SecretBytes& so_pin,
                  std::string_view label);

// Finds the one initialised token the URI names. kNotFound lists the tokens that exist;
// kInvalidArgument when several match ("add serial= or slot-id= to the URI").
Result<SlotInfo> find_token(const Module& module, const Uri& uri);

}  // namespace keyport::p11
