// SPDX-License-Identifier: Apache-2.0
// Test rig for the vault's REST server: an HTTPS client (cpp-httplib's SSLClient trusting the vault
// CA, written for the tests), a server started in the test process on the test SoftHSM's "vault"
// token, and `keyport vault serve` as a child process.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "pkcs11/session.h"
#include "vault/server.h"

namespace keyport::test {

// One HTTP exchange as the test saw it.
struct Answer {
  int status = 0;    // 0: no answer (transport failure; see `error`)
  std::string body;  // raw
  Json json;         // parsed body (null when not JSON)
  httplib::Headers headers;
  std::string error;  // transport failure
  std::string header(const std::string& name) const;
  // "<status> <body>" for INFO().
  std::string describe() const;
  // error.code of a Key Vault error body ("" when none).
  std::string code() const;
};

struct Call {
  Call(std::string m, std::string t, std::optional<std::string> b = std::nullopt)
      : method(std::move(m)), target(std::move(t)), body(std::move(b)) {}
  std::string method = "GET";
  std::string target;  // path and query, e.g. "/keys?api-version=7.5"
  std::optional<std::string> body;
  std::string content_type = "application/json";
  bool with_token = true;
  std::optional<std::string> token;  // overrides the client's token
  httplib::Headers headers;
};

class RestClient {
 public:
  RestClient(const std::string& url, const std::filesystem::path& ca_file, std::string token);
  Answer send(const Call& call);
  // Shorthands that add ?api-version=<api> to `path`.
  Answer get(const std::string& path);
  Answer post(const std::string& path, const Json& body);
  Answer put(const std::string& path, const Json& body);
  Answer patch(const std::string& path, const Json& body);
  Answer del(const std::string& path);
  std::string api = "7.5";
  const std::string& url() const { return m_url; }

 private:
  std::string with_api(const std::string& path) const;
  std::string m_url;
  std::unique_ptr<httplib::SSLClient> m_client;
  std::string m_token;
};

// A Vault REST server in this process, on the test SoftHSM's "vault" token (attached mode). The
// rig's own session logs in to that token first, so stopping the server never logs the rig out.
struct RestRig {
  p11::Session session;
  std::filesystem::path dir;
  vault::ServerOptions options;
  std::unique_ptr<vault::Server> server;
  std::vector<std::string> printed;  // the server's start-up lines

  // A fresh folder; `flavor` initialises it at the first start. Tokens: DIR/access.json made by
  // the server (admin) unless `access` gives the access file's content.
  RestRig(vault::Flavor flavor, const std::string& stem,
          const std::optional<Json>& access = std::nullopt);
  void start();
  void stop();
  // The admin token the server wrote to DIR/admin.token (or "" when `access` was given).
  std::string admin_token() const;
  RestClient client(const std::string& token) const;
  RestClient client() const { return client(admin_token()); }
  const std::string& url() const { return server->url(); }
  std::filesystem::path ca_file() const { return dir / "tls" / "ca.pem"; }
  std::filesystem::path access_log() const { return dir / "access.log"; }
  // Token objects (CKA_TOKEN=TRUE) on the vault token.
  std::size_t token_objects() const;
};

// `keyport vault serve ...` as a child process with stdout and stderr in files of `dir`.
class ServerProcess {
 public:
  ServerProcess(std::filesystem::path data_dir, std::vector<std::string> extra_args,
                std::vector<std::string> extra_env = {});
  ~ServerProcess();
  // Starts and waits (up to 60 s) for DIR/server.json; REQUIREs success.
  void start();
  // SIGTERM, then waits up to 30 s; returns the exit status (-1: had to be killed).
  int stop();
  // SIGKILL, as a crash would, and reaps the process.
  void kill_hard();
  const std::string& url() const { return m_url; }
  pid_t pid() const { return m_pid; }
  std::filesystem::path ca_file() const { return m_dir / "tls" / "ca.pem"; }
  std::filesystem::path token_file() const { return m_dir / "admin.token"; }
  std::string token() const;
  std::string output() const;  // stdout + stderr so far
  RestClient client() const { return RestClient(m_url, ca_file(), token()); }

 private:
  std::filesystem::path m_dir;
  std::vector<std::string> m_args;
  std::vector<std::string> m_env;
  pid_t m_pid = -1;
  std::string m_url;
  int m_runs = 0;
};

// The keyport binary under test.
std::string keyport_binary();

// Reads a whole file as text (REQUIREs it exists).
std::string slurp(const std::filesystem::path& path);

}  // namespace keyport::test
