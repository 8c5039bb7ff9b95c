// SPDX-License-Identifier: Apache-2.0
// Where the vault's token comes from (internal to keyport::vault): an attached token of a module
// the caller loaded, or the vault's own SoftHSM2 token folder hsm/ (created on first use).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/error.h"
#include "core/secret.h"
#include "pkcs11/module.h"
#include "pkcs11/token.h"

namespace keyport::vault {

// The label of the token in an own-folder vault.
inline constexpr const char* kOwnTokenLabel = "keyport-vault";

struct VaultToken {
  std::shared_ptr<p11::Module> module;
  CK_SLOT_ID slot = 0;
  SecretBytes pin;
  p11::TokenInfo info;
};

// Finds the initialised token `label` in `module`. Returns kNotFound naming the tokens present.
Result<VaultToken> attach_token(std::shared_ptr<p11::Module> module, const std::string& label,
                                SecretBytes pin);

// Own-folder mode: creates hsm/ (softhsm2.conf, tokens/, random PINs in hsm/pin and hsm/so-pin,
// mode 0600) when absent, loads `module_path` with SOFTHSM2_CONF pointing at hsm/softhsm2.conf,
// and initialises the token on first use. Returns kUnsupported when the SoftHSM library is
// already loaded in this process for anything but this folder (SoftHSM reads SOFTHSM2_CONF only
// in C_Initialize).
Result<VaultToken> open_own_token(const std::filesystem::path& hsm_dir,
                                  const std::string& module_path);

}  // namespace keyport::vault
