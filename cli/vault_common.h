// SPDX-License-Identifier: Apache-2.0
// What the `keyport vault` command files share: how a command reaches its vault (a local folder or
// a running server, through vault::Client) and the options that say which.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "client/client.h"
#include "core/error.h"
#include "vault/vault.h"

namespace keyport::cli {

// The value of environment variable `name`, or "".
std::string env_or(const char* name);

// Options for opening a vault folder with its own token. $KEYPORT_VAULT_PKCS11_MODULE names the
// PKCS#11 library loaded for DIR/hsm instead of the build's SoftHSM2 (docs/vault.md): pkcs11-spy
// in front of SoftHSM, with PKCS11SPY=<softhsm> and PKCS11SPY_OUTPUT=<log>, records the vault's own
// calls. The library must still be SoftHSM2 underneath: the vault writes DIR/hsm/softhsm2.conf.
vault::VaultOptions own_folder_options();

// Which vault a command works on.
struct Target {
  std::string data;
  std::string url;
  std::string token_file;
  std::string ca_file;
  std::string backup_storage;  // --data: the folder standing in for Blob Storage (full backup)
};

// --data, --url, --token-file, --ca-file.
void add_target_options(CLI::App& cmd, Target& t);

// The client for `t`: --url (HTTPS with the bearer token), else --data (in process), else
// $KEYPORT_VAULT_URL / $KEYPORT_VAULT_DATA. kInvalidArgument when none is given.
Result<vault::Client> connect(const Target& t);

}  // namespace keyport::cli
