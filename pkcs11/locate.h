// SPDX-License-Identifier: Apache-2.0
// Which PKCS#11 module to load, named the way administrators configure modules: a path, or the
// name of a module registered with p11-kit (pkcs11.conf(5): one NAME.module file per module with
// `module:` and, for modules that need init arguments, `x-init-reserved:`), with the init string
// some modules need in CK_C_INITIALIZE_ARGS (NSS softoken's "configdir='sql:DIR' ...").
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "pkcs11/module.h"
#include "pkcs11/uri.h"

namespace keyport::p11 {

// A module configuration file of p11-kit.
struct RegisteredModule {
  std::string name;                          // file name without ".module"
  std::string path;                          // `module:`, made absolute
  std::optional<std::string> init_reserved;  // `x-init-reserved:`
  std::filesystem::path config_file;         // where it was read
};

// The folders p11-kit reads module configurations from, lowest precedence first: the packages'
// folder, the administrator's, and the user's ($XDG_CONFIG_HOME/pkcs11/modules, else
// ~/.config/pkcs11/modules), following `user-config:` of the system pkcs11.conf (merge, the
// default; none; only). The user's folder is read for root too. KEYPORT_P11KIT_CONFIG_DIRS
// (colon-separated) replaces the list (tests).
std::vector<std::filesystem::path> p11kit_module_config_dirs();

// Every registered module; a later folder's file of the same name replaces an earlier one.
// Unreadable folders are skipped; a file without `module:` is skipped (p11-kit does the same).
std::vector<RegisteredModule> registered_modules();

// What the command line, the environment and the token URI say about the module.
struct ModuleSelection {
  std::string module;                    // --module: a path or a registered name; empty: not given
  std::optional<std::string> init_args;  // --module-init-args; unset: $KEYPORT_PKCS11_INIT_ARGS
  bool finalize = true;                  // --no-finalize turns it off
};

// The module a selection resolves to, with the init string it will be given.
struct ResolvedModule {
  std::string path;
  std::string init_args;  // empty: none
  std::string origin;     // "--module", "p11-kit module softhsm2 (/usr/share/...)", ...
};

// Resolves in this order: `selection.module` (a registered name when it has no '/' and does not
// end in ".so", else a path), the URI's module-path, the URI's module-name, $KEYPORT_PKCS11_MODULE,
// SoftHSM2's module. Init args: selection.init_args, else $KEYPORT_PKCS11_INIT_ARGS, else the
// registered module's x-init-reserved. An unknown name is kNotFound listing the registered names.
Result<ResolvedModule> resolve_module(const ModuleSelection& selection, const Uri* uri = nullptr);

// resolve_module, then Module::load.
Result<std::shared_ptr<Module>> load_module(const ModuleSelection& selection,
                                            const Uri* uri = nullptr);

}  // namespace keyport::p11
