// SPDX-License-Identifier: Apache-2.0
// The vault server the REST benchmarks run in their own process: a fresh SoftHSM folder, the
// server attached to its "vault" token (user PIN 2222), and a logged-in session of the benchmark's
// own on that token for the floor it measures.
#pragma once

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "bench/bench_util.h"
#include "bench/https_client.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "vault/server.h"

namespace keyport::bench {

struct AttachedVault {
  std::shared_ptr<p11::Module> module;
  p11::SlotInfo slot;    // the "vault" token
  p11::Session session;  // the benchmark's own, logged in
  vault::ServerOptions options;
  std::unique_ptr<vault::Server> server;
  std::string url;
  std::filesystem::path ca;
  std::string token;  // the admin bearer token
};

// `tokens`: init-tokens.sh's LABEL:SO:PIN list (the first must be vault:1111:2222);
// `configure` adjusts the server's options before it starts.
inline AttachedVault start_attached_vault(
    const std::filesystem::path& dir, vault::Flavor flavor,
    const std::string& tokens = "vault:1111:2222",
    const std::function<void(vault::ServerOptions&)>& configure = {}) {
  make_token_folder(dir / "hsm", tokens);
  auto module = must(p11::Module::load(p11::Module::default_path()), "load module");
  p11::Uri uri;
  uri.token = "vault";
  auto slot = must(p11::find_token(*module, uri), "find vault token");
  auto session = must(p11::Session::open(module, slot.id), "vault session");
  if (!session.login(SecretBytes::from_string("2222"))) {
    die("vault login");
  }
  vault::ServerOptions so;
  so.data_dir = dir / "vault";
  so.listen = "127.0.0.1:0";
  so.flavor = flavor;
  so.vault_name = "bench";
  so.threads = 8;
  so.access_log = dir / "access.log";
  so.print = [](const std::string&) {};
  so.open_vault = [module](const std::filesystem::path& d) {
    vault::VaultOptions o;
    o.module = module;
    o.token_label = "vault";
    o.pin = SecretBytes::from_string("2222");
    return vault::Vault::open(d, std::move(o));
  };
  if (configure) {
    configure(so);
  }
  auto server = must(vault::Server::start(so), "start server");
  std::string token;
  {
    std::ifstream in(so.data_dir / "admin.token");
    std::getline(in, token);
  }
  std::string url = server->url();
  auto ca = server->ca_file();
  return AttachedVault{std::move(module), std::move(slot), std::move(session), std::move(so),
                       std::move(server), std::move(url),  std::move(ca),      std::move(token)};
}

}  // namespace keyport::bench
