// SPDX-License-Identifier: Apache-2.0
// One setup function per command group; each lives in its own file.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace keyport::byok {
struct ServiceProfile;
}

namespace keyport::cli {

void setup_token_commands(CLI::App& app, GlobalOptions& g);  // token_cmd.cpp
void setup_key_commands(CLI::App& app, GlobalOptions& g);    // key_cmd.cpp
void setup_byok_commands(CLI::App& app, GlobalOptions& g);   // byok_cmd.cpp
// byok inspect, wrap, request under the `byok` subcommand; byok_tools_cmd.cpp.
void setup_byok_tool_commands(CLI::App& byok, GlobalOptions& g);
void setup_vault_commands(CLI::App& app, GlobalOptions& g);  // vault_cmd.cpp
// vault security-domain ... under the `vault` subcommand; vault_sd_cmd.cpp.
void setup_vault_security_domain_commands(CLI::App& vault, GlobalOptions& g);
void setup_migrate_commands(CLI::App& app, GlobalOptions& g);   // migrate_cmd.cpp
void setup_envelope_commands(CLI::App& app, GlobalOptions& g);  // envelope_cmd.cpp
void setup_skr_commands(CLI::App& app, GlobalOptions& g);  // skr_cmd.cpp: policy, attest, enclave
void setup_profiles_commands(CLI::App& app, GlobalOptions& g);  // profiles_cmd.cpp

// --for PROFILE (service profiles, byok/service_profile.h); profiles_cmd.cpp.
CLI::Option* add_for_option(CLI::App& cmd, std::optional<std::string>& profile);
// The profile --for names, nullptr without --for, kInvalidArgument for an unknown name.
Result<const byok::ServiceProfile*> resolve_profile(const std::optional<std::string>& name);
// One stderr note: the key ops, identity permissions and vault settings the service needs.
void note_profile(const GlobalOptions& g, const byok::ServiceProfile& profile);
// vault create-key --for: checks the KeyCreateParameters `body` (kty, size, curve, key_ops, dates)
// and sets key_ops to the service's when none are given. kUnsupported when the service refuses.
Status apply_profile_to_create(const byok::ServiceProfile& profile, Json& body, bool kek);
// After the create: the profile's vault requirements against the new key's recoveryLevel, printed
// as notes; returns {"name", "vault_checks"} for --json.
Json profile_vault_report(const GlobalOptions& g, const byok::ServiceProfile& profile,
                          const Json& bundle);

}  // namespace keyport::cli
