// SPDX-License-Identifier: Apache-2.0
// keyport: the command-line tool. The only place that maps errors to exit codes.
#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string_view>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "core/log.h"
#include "transfer/export.h"

namespace {

// Keys, PINs and bearer tokens pass through this process's memory: no core file may keep them.
// RLIMIT_CORE 0 stops file dumps; PR_SET_DUMPABLE 0 also stops dumps to a core_pattern pipe
// (which ignores RLIMIT_CORE) and ptrace attach by other processes of the same user. Done first,
// before any secret is read. KEYPORT_ALLOW_CORE_DUMPS=1 keeps dumps on for debugging a crash.
void disable_core_dumps() {
  const char* allow = std::getenv("KEYPORT_ALLOW_CORE_DUMPS");
  if (allow != nullptr && std::strcmp(allow, "1") == 0) {
    return;
  }
  const rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

// The command groups and the setup function that adds each (one function may add several).
struct Group {
  std::array<std::string_view, 3> names;
  void (*setup)(CLI::App&, keyport::cli::GlobalOptions&);
  bool owns(std::string_view name) const {
    return !name.empty() && std::find(names.begin(), names.end(), name) != names.end();
  }
};
constexpr Group kGroups[] = {
    {{"token"}, keyport::cli::setup_token_commands},
    {{"key"}, keyport::cli::setup_key_commands},
    {{"byok"}, keyport::cli::setup_byok_commands},
#ifndef KEYPORT_MINIMAL
    {{"vault"}, keyport::cli::setup_vault_commands},
    {{"migrate"}, keyport::cli::setup_migrate_commands},
    {{"envelope"}, keyport::cli::setup_envelope_commands},
    {{"policy", "attest", "enclave"}, keyport::cli::setup_skr_commands},
#endif
    {{"profiles"}, keyport::cli::setup_profiles_commands},
};

// The global options that take a value (their value is not a command name).
bool takes_value(std::string_view arg) {
  return arg == "--module" || arg == "--module-init-args";
}

// The first word of the command line that is neither a global option nor its value: the command
// group, or "" when there is none or the top level's --help comes first.
std::string_view first_command(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      return i + 1 < argc ? std::string_view(argv[i + 1]) : std::string_view();
    }
    if (arg == "-h" || arg == "--help") {
      return {};  // the top level's help, which lists every group
    }
    if (takes_value(arg)) {
      ++i;
    } else if (arg.empty() || arg.front() != '-') {
      return arg;
    }
  }
  return {};
}

// `keyport [GLOBAL FLAGS] --version` without --help: nothing but the version is printed.
bool asks_version_only(int argc, char** argv) {
  bool version = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      return false;
    }
    version = version || arg == "--version";
  }
  return version;
}

int run(int argc, char** argv) {
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
      "7 PIN/permission, 8 unsupported by target or module, 9 denied, 10 I/O, 11 partial batch,\n"
      "12 an earlier step is missing (e.g. migrate verify), 13 remote service unavailable.\n"
      "PINs: --pin-source env:VAR | file:PATH, or $KEYPORT_PIN, or a prompt. Logs: "
      "KEYPORT_LOG=debug.");
  app.add_option("--module", g.module_path,
                 "PKCS#11 module: a path to its .so, or the name of a module registered with "
                 "p11-kit (see `keyport token modules`; default: SoftHSM2's)")
      ->envname("KEYPORT_PKCS11_MODULE");
  app.add_option("--module-init-args", g.module_init_args,
                 "Init string for modules that need one in C_Initialize (NSS softoken: "
                 "\"configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' flags=\"); "
                 "default: the p11-kit module's x-init-reserved")
      ->envname("KEYPORT_PKCS11_INIT_ARGS");
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

  // Only the command group named on the command line is built (CLI11 spends most of a short
  // run's instructions building options); every group when none is known, so that `--help` lists
  // them all and a mistyped group gets CLI11's usual error.
  const std::string_view named = first_command(argc, argv);
  bool known = false;
  for (const auto& group : kGroups) {
    known = known || group.owns(named);
  }
  const bool version_only = named.empty() && asks_version_only(argc, argv);
  for (const auto& group : kGroups) {
    if (known ? group.owns(named) : !version_only) {
      group.setup(app, g);
    }
  }

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

}  // namespace

int main(int argc, char** argv) {
  disable_core_dumps();
  // Errors are values, but a throwing call a library did not wrap (nlohmann's at() on a server
  // answer it did not expect, bad_alloc) must still end with a message and an exit code, not
  // std::terminate and a core-less abort.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "keyport: internal error: " << e.what() << std::endl;
  } catch (...) {
    std::cerr << "keyport: internal error: unknown exception" << std::endl;
  }
  return keyport::cli::kExitFailure;
}
