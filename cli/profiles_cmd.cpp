// SPDX-License-Identifier: Apache-2.0
// keyport profiles [NAME]: the service profiles that --for accepts (byok/service_profile.h).
#include <ctime>
#include <iostream>
#include <memory>

#include "byok/service_profile.h"
#include "cli/commands.h"

namespace keyport::cli {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    out += (out.empty() ? "" : ", ") + s;
  }
  return out.empty() ? "-" : out;
}

std::string vault_text(const byok::VaultRequirements& v) {
  std::vector<std::string> parts;
  if (v.soft_delete) {
    parts.emplace_back("soft delete");
  }
  if (v.purge_protection) {
    parts.emplace_back("purge protection");
  }
  if (v.protected_subscription) {
    parts.emplace_back("recoveryLevel Recoverable+ProtectedSubscription");
  }
  if (v.two_vaults_in_two_regions) {
    parts.emplace_back("two vaults in two regions");
  }
  return parts.empty() ? "none stated" : join(parts);
}

std::string validity_text(byok::ValidityRule rule) {
  switch (rule) {
    case byok::ValidityRule::kAny:
      return "no rule";
    case byok::ValidityRule::kActiveNow:
      return "activation date (if set) in the past, expiry (if set) in the future";
    case byok::ValidityRule::kNoExpiry:
      return "no expiry date (or 12/31/9999)";
  }
  return "no rule";
}

void print_profile(const byok::ServiceProfile& p) {
  auto line = [](const std::string& label, const std::string& value) {
    std::cout << "  " << label << std::string(label.size() < 13 ? 13 - label.size() : 1, ' ')
              << value << '\n';
  };
  std::cout << p.name << ": " << p.title << '\n';
  line("keys", byok::key_spec_list(p.key_specs));
  line("rule", p.key_rule);
  line("key ops", join(p.key_ops));
  line("identity", join(p.permissions));
  line("validity", validity_text(p.validity));
  line("vault", vault_text(p.vault));
  for (const auto& n : p.operator_notes) {
    line("ensure", n);
  }
  for (const auto& s : p.sources) {
    line("source", s.url);
    line("", s.says);
  }
  std::cout << '\n';
}

struct ProfilesOptions {
  std::optional<std::string> name;
};

Status run_profiles(GlobalOptions& g, const ProfilesOptions& o) {
  std::vector<const byok::ServiceProfile*> list;
  if (o.name) {
    KEYPORT_ASSIGN_OR_RETURN(const byok::ServiceProfile* p, byok::parse_service_profile(*o.name));
    list.push_back(p);
  } else {
    for (const auto& p : byok::all_service_profiles()) {
      list.push_back(&p);
    }
  }
  if (g.json) {
    Json arr = Json::array();
    for (const auto* p : list) {
      arr.push_back(byok::service_profile_json(*p));
    }
    print_json(Json{{"profiles", arr}});
    return {};
  }
  for (const auto* p : list) {
    print_profile(*p);
  }
  std::cout.flush();
  return {};
}

}  // namespace

CLI::Option* add_for_option(CLI::App& cmd, std::optional<std::string>& profile) {
  return cmd.add_option(
      "--for", profile,
      "Refuse keys that this Azure service does not accept, before anything is made: generic, "
      "storage-cmk, sql-tde, disk-encryption, aip-tenant-key, m365-customer-key (keyport "
      "profiles)");
}

Result<const byok::ServiceProfile*> resolve_profile(const std::optional<std::string>& name) {
  if (!name) {
    return nullptr;
  }
  auto p = byok::parse_service_profile(*name);
  if (!p) {
    return tl::unexpected(p.error().with_context("--for"));
  }
  return *p;
}

void note_profile(const GlobalOptions& g, const byok::ServiceProfile& p) {
  if (p.id == byok::ServiceProfileId::kGeneric) {
    return;
  }
  std::string line = "note: " + std::string(p.name) + ": ";
  if (!p.key_ops.empty()) {
    line += "key ops " + join(p.key_ops) + "; ";
  }
  line += "grant the service " + join(p.permissions) + "; vault: " + vault_text(p.vault) +
          " (keyport profiles " + std::string(p.name) + ")";
  note(g, line);
}

Status apply_profile_to_create(const byok::ServiceProfile& p, Json& body, bool kek) {
  if (kek) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--for describes a key a service uses; a key exchange key (--kek) only "
                      "imports keys: drop one of them");
  }
  const std::string kty = body.value("kty", "");
  KeySpec spec;
  if (kty == "RSA" || kty == "RSA-HSM") {
    spec.family = KeyFamily::kRsa;
    spec.bits = body.value("key_size", 2048u);  // Key Vault's default
  } else if (kty == "EC" || kty == "EC-HSM") {
    KEYPORT_ASSIGN_OR_RETURN(Curve curve, curve_from_jwk_name(body.value("crv", "P-256")));
    spec.family = KeyFamily::kEc;
    spec.curve = curve;
    spec.bits = curve_bits(curve);
  } else if (kty == "oct" || kty == "oct-HSM") {
    spec.family = KeyFamily::kAes;
    spec.bits = body.value("key_size", 256u);
  } else {
    return make_error(ErrorCode::kInvalidArgument,
                      "--kty " + kty + ": RSA-HSM, EC-HSM or oct-HSM (RSA and EC: software keys)");
  }
  KEYPORT_TRY(byok::check_profile_accepts(p, spec));
  if (body.contains("key_ops")) {
    KEYPORT_TRY(byok::check_profile_key_ops(p, body["key_ops"].get<std::vector<std::string>>()));
  } else if (!p.key_ops.empty()) {
    body["key_ops"] = p.key_ops;  // what the service calls, as Microsoft's own examples set them
  }
  if (body.contains("attributes") && body["attributes"].is_object()) {
    const Json& a = body["attributes"];
    auto when = [&a](const char* member) -> std::optional<std::int64_t> {
      if (a.contains(member) && a[member].is_number_integer()) {
        return a[member].get<std::int64_t>();
      }
      return std::nullopt;
    };
    KEYPORT_TRY(byok::check_profile_validity(p, when("nbf"), when("exp"), std::time(nullptr)));
  }
  return {};
}

Json profile_vault_report(const GlobalOptions& g, const byok::ServiceProfile& p,
                          const Json& bundle) {
  byok::VaultFacts facts;
  if (bundle.contains("attributes") && bundle["attributes"].is_object()) {
    const Json& a = bundle["attributes"];
    if (a.contains("recoveryLevel") && a["recoveryLevel"].is_string()) {
      facts.recovery_level = a["recoveryLevel"].get<std::string>();
    }
    if (a.contains("recoverableDays") && a["recoverableDays"].is_number_integer()) {
      facts.recoverable_days = a["recoverableDays"].get<std::int64_t>();
    }
  }
  Json checks = Json::array();
  for (const byok::VaultCheck& c : byok::check_vault_settings(p, facts)) {
    std::string line = "note: " + std::string(p.name) + ": vault " + c.requirement + ": " +
                       std::string(byok::to_string(c.outcome)) + ": " + c.detail;
    if (c.outcome == byok::CheckOutcome::kNotMet &&
        (c.requirement == "purge-protection" || c.requirement == "protected-subscription")) {
      // The simulated vault always reports Recoverable+Purgeable: it has no such setting.
      line += ". keyport's simulated vault cannot turn this on; make sure the real vault has it";
    }
    note(g, line + " (" + c.source_url + ")");
    checks.push_back(byok::vault_check_json(c));
  }
  note_profile(g, p);
  return Json{{"name", std::string(p.name)}, {"vault_checks", checks}};
}

void setup_profiles_commands(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<ProfilesOptions>();
  auto* cmd = app.add_subcommand(
      "profiles",
      "List the service profiles that --for takes (key generate, byok export, byok wrap, vault\n"
      "create-key): the key types and sizes each Azure service accepts, the key operations and\n"
      "identity permissions it needs, and the vault settings it requires, with the Microsoft\n"
      "pages they come from (docs/service-profiles.md).\n"
      "Examples:\n"
      "  keyport profiles\n"
      "  keyport profiles sql-tde\n"
      "  keyport profiles --json\n"
      "  keyport key generate --token onprem --type rsa-3072 --label tde --for sql-tde");
  cmd->add_option("NAME", o->name,
                  "One profile: generic, storage-cmk, sql-tde, disk-encryption, aip-tenant-key, "
                  "m365-customer-key");
  add_json_flag(*cmd, g);
  cmd->callback(bind_command(g, [&g, o]() { return run_profiles(g, *o); }));
}

}  // namespace keyport::cli
