// SPDX-License-Identifier: Apache-2.0
// What every command shares: global options, opening a token session, printing text or JSON.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "core/json.h"
#include "pkcs11/locate.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

namespace keyport::cli {

struct GlobalOptions {
  std::string module_path;  // --module / KEYPORT_PKCS11_MODULE: a path or a p11-kit module name
  std::optional<std::string> module_init_args;  // --module-init-args / KEYPORT_PKCS11_INIT_ARGS
  bool no_finalize = false;
  bool json = false;
  int verbose = 0;
  bool quiet = false;
  Status status;  // result of the command that ran
};

// --token, --pin-source, --pin for commands that work on one token.
struct TokenOptions {
  std::string token;  // PKCS#11 URI or a plain token label
  std::optional<std::string> pin_source;
  std::optional<std::string> pin;  // argv: accepted with a warning
};

void add_token_options(CLI::App& cmd, TokenOptions& opts, bool token_required = true);
// Adds --json to a subcommand (same flag as the global one).
void add_json_flag(CLI::App& cmd, GlobalOptions& g);

struct TokenContext {
  std::shared_ptr<p11::Module> module;
  p11::Uri uri;
  p11::SlotInfo slot;
  std::optional<p11::Session> session;
  const p11::TokenInfo& token() const { return *slot.token; }
};

// The module selection of the global options (--module, --module-init-args, --no-finalize).
p11::ModuleSelection module_selection(const GlobalOptions& g);

// Loads the module (p11::load_module: --module, else the URI's module-path or module-name, else
// the default), finds the token,
// opens a read-write session and, when login is true, logs in with the PIN from the sources in
// pkcs11/pin.h.
Result<TokenContext> open_token(const GlobalOptions& g, const TokenOptions& t, bool login);
Result<std::shared_ptr<p11::Module>> load_module(const GlobalOptions& g,
                                                 const p11::Uri* uri = nullptr);
// A URI from --token: a PKCS#11 URI as is, a plain label as pkcs11:token=<label>.
Result<p11::Uri> token_uri(const std::string& token);

// Writes a JSON document (pretty, 2 spaces) to stdout.
void print_json(const Json& j);
// Prints rows as an aligned table with a header.
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);
// A line to stderr that is not an error ("next: az keyvault key import ..."), unless --quiet.
void note(const GlobalOptions& g, const std::string& line);

// Runs `fn` and stores its Status in g.status (CLI11 callbacks cannot return values).
template <typename Fn>
std::function<void()> bind_command(GlobalOptions& g, Fn fn) {
  return [&g, fn]() { g.status = fn(); };
}

}  // namespace keyport::cli
