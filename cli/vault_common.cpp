// SPDX-License-Identifier: Apache-2.0
// How the `keyport vault` commands reach their vault (cli/vault_common.h).
#include "cli/vault_common.h"

#include <cstdlib>

#include "client/folder.h"
#include "vault/access.h"

namespace keyport::cli {

std::string env_or(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

vault::VaultOptions own_folder_options() {
  vault::VaultOptions o;
  o.softhsm_module = env_or("KEYPORT_VAULT_PKCS11_MODULE");
  return o;
}

void add_target_options(CLI::App& cmd, Target& t) {
  cmd.add_option("--data", t.data, "Local vault folder (default $KEYPORT_VAULT_DATA)");
  cmd.add_option("--url", t.url,
                 "A running vault server, https://host:port (default $KEYPORT_VAULT_URL)");
  cmd.add_option("--token-file", t.token_file,
                 "File holding the bearer token for --url (else $KEYPORT_VAULT_TOKEN)");
  cmd.add_option("--ca-file", t.ca_file,
                 "The vault CA certificate for --url (DIR/tls/ca.pem; default $KEYPORT_VAULT_CA, "
                 "else the system's trust store)");
}

Result<vault::Client> connect(const Target& t) {
  std::string url = t.url;
  std::string data = t.data;
  if (url.empty() && data.empty()) {
    url = env_or("KEYPORT_VAULT_URL");
    if (url.empty()) {
      data = env_or("KEYPORT_VAULT_DATA");
    }
  }
  if (!url.empty()) {
    vault::HttpsOptions h;
    h.url = url;
    if (!t.token_file.empty()) {
      KEYPORT_ASSIGN_OR_RETURN(h.token, vault::read_token_file(t.token_file));
    } else {
      h.token = SecretBytes::from_string(env_or("KEYPORT_VAULT_TOKEN"));
    }
    if (h.token.empty()) {
      return make_error(ErrorCode::kAuth,
                        "no bearer token for " + url +
                            ": give --token-file (the server's DIR/admin.token) or set "
                            "KEYPORT_VAULT_TOKEN");
    }
    h.ca_file = t.ca_file.empty() ? env_or("KEYPORT_VAULT_CA") : t.ca_file;
    auto c = vault::Client::connect(std::move(h));
    if (!c && c.error().code() == ErrorCode::kInvalidArgument) {
      return tl::unexpected(c.error().with_context("--url"));
    }
    return c;
  }
  if (data.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "which vault? give --data DIR (or $KEYPORT_VAULT_DATA) or --url https://... "
                      "(or $KEYPORT_VAULT_URL)");
  }
  vault::FolderOptions f;
  f.vault = own_folder_options();
  f.vault.backup_storage = t.backup_storage;
  return vault::Client::open_folder(data, std::move(f));
}

}  // namespace keyport::cli
