// SPDX-License-Identifier: Apache-2.0
// keyport: the command-line tool. The only place that maps errors to exit codes.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "core/log.h"
#include "transfer/export.h"

int main(int argc, char** argv) {
  using namespace keyport;
  using namespace keyport::cli;

  GlobalOptions g;
  CLI::App app{"keyport: move keys between PKCS#11 HSMs and Azure Key Vault / Managed HSM (BYOK)",
               "keyport"};
  app.set_version_flag("--version", transfer::tool_version());
  app.require_subcommand(1);
  app.fallthrough();
  app.footer(
      "Exit codes: 0 ok, 2 usage, 3 bad input, 4 PKCS#11 or crypto failure, 5 not found, 6 "
      "exists,\n"
      "7 PIN/permission, 8 unsupported by target or module, 9 denied, 10 I/O, 11 partial batch.\n"
      "PINs: --pin-source env:VAR | file:PATH, or $KEYPORT_PIN, or a prompt. Logs: "
      "KEYPORT_LOG=debug.");
  app.add_option("--module", g.module_path, "PKCS#11 module (default: SoftHSM2's)")
      ->envname("KEYPORT_PKCS11_MODULE");
  app.add_flag("--no-finalize", g.no_finalize,
               "Do not call C_Finalize at exit (for modules that crash in it)");
  app.add_flag_function(
      "-v,--verbose",
      [&g](std::int64_t n) {
        g.verbose = static_cast<int>(n);
        log::set_level(n >= 2 ? log::Level::kDebug : log::Level::kInfo);
      },
      "More log output (-vv: every PKCS#11 call)");
  app.add_flag_function(
      "-q,--quiet",
      [&g](std::int64_t) {
        g.quiet = true;
        log::set_level(log::Level::kError);
      },
      "Only errors on stderr");

  setup_token_commands(app, g);
  setup_key_commands(app, g);
  setup_byok_commands(app, g);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (!g.status) {
    const Error& e = g.status.error();
    std::cerr << "keyport: error: " << e.describe() << std::endl;
    return e.detail() == "partial" ? kExitPartial : exit_code_for(e.code());
  }
  return kExitOk;
}
