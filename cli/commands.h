// SPDX-License-Identifier: Apache-2.0
// One setup function per command group; each lives in its own file.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace keyport::cli {

void setup_token_commands(CLI::App& app, GlobalOptions& g);  // token_cmd.cpp
void setup_key_commands(CLI::App& app, GlobalOptions& g);    // key_cmd.cpp
void setup_byok_commands(CLI::App& app, GlobalOptions& g);   // byok_cmd.cpp
// byok inspect, wrap, request under the `byok` subcommand; byok_tools_cmd.cpp.
void setup_byok_tool_commands(CLI::App& byok, GlobalOptions& g);

}  // namespace keyport::cli
