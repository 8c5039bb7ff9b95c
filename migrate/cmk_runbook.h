// SPDX-License-Identifier: Apache-2.0
// The customer-managed-key (CMK) workload runbook: `keyport migrate plan --workload cmk`.
//
// A workload that uses a customer-managed key (an Azure service such as Storage or SQL, or an
// application of your own) keeps its data under a data encryption key that the vault wraps with
// the CMK (wrapKey) and unwraps for it (unwrapKey); its identity holds get, wrapKey and unwrapKey
// on that key. Moving it to a key in another vault follows the four steps of Microsoft's guidance:
//
//   1. create the new key in the destination (or import the same material, if the old key is
//      portable: made in your HSM and imported with BYOK);
//   2. grant the workload's identity get, wrapKey and unwrapKey there (for the simulated vault: an
//      entry in the destination's access file, reloaded by the server when it changes);
//   3. switch the workload to the new key (the workload unwraps its data key with the old key and
//      wraps it with the new one; the data is not re-encrypted), and check it works;
//   4. keep the old key, enabled for unwrapKey, until no backup needs it: backups taken before the
//      switch hold the data key wrapped by the old key only.
//
// build_cmk_runbook() only composes the commands; it contacts nothing and writes nothing.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"

namespace keyport::migrate {

// A simulated vault named on the command line: a served one (https://host:port) or a folder.
struct VaultRef {
  std::string url;                     // https://127.0.0.1:8443 (empty for a folder)
  std::filesystem::path dir;           // the vault folder (empty for a URL)
  std::optional<std::string> ca_file;  // --ca-file for a URL (default <dir>/tls/ca.pem if known)
  std::optional<std::string> admin_token_file;  // --token-file for the admin's calls

  // "https://..." -> url; anything else -> a folder. kInvalidArgument for http:// or an empty text.
  static Result<VaultRef> parse(std::string_view text);
  // The keyport vault target options: "--url URL [--ca-file F] [--token-file T]" or "--data DIR".
  std::string target_args(bool admin) const;
  std::string describe() const;
};

struct CmkRunbookInput {
  VaultRef from;
  std::string key;  // the CMK the workload uses now
  VaultRef to;
  std::string to_key;  // the new key's name (default: the same name)
  std::string kty = "RSA-HSM";
  unsigned size = 2048;
  std::string identity = "cmk-workload";  // the access-file entry's name
  // The file holding the workload's bearer token (its identity); the grant command reads it from
  // there so that the token never appears on a command line.
  std::string identity_token_file = "<workload.token>";
  // The destination's access file (default <to.dir>/access.json for a folder).
  std::optional<std::string> to_access_file;
  // A command that switches the workload, with {vault}, {ca_file}, {key} and {kid} placeholders
  // (default: the Azure CLI example for a storage account, and the generic instruction).
  std::optional<std::string> switch_command;
  bool portable = false;  // the old key was imported with BYOK (from `--portable`)
  std::string portable_token = "<on-prem token>";  // for the BYOK route
  std::string portable_label = "<the original key's label>";
};

struct RunbookStep {
  int number = 0;
  std::string title;
  std::string why;
  std::vector<std::string> commands;
  std::vector<std::string> notes;
};

struct CmkRunbook {
  std::string workload = "cmk";
  std::string from;  // descriptions
  std::string to;
  std::string key;
  std::string to_key;
  std::vector<RunbookStep> steps;

  Json to_json() const;
  // The runbook as text for a terminal.
  std::string to_text() const;
};

// Composes the four steps. kInvalidArgument when a key name is not a Key Vault key name
// ([0-9a-zA-Z-], 1..127) or both vaults and names are the same.
Result<CmkRunbook> build_cmk_runbook(const CmkRunbookInput& input);

}  // namespace keyport::migrate
