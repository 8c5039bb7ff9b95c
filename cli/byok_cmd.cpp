// SPDX-License-Identifier: Apache-2.0
// keyport byok export
#include <filesystem>
#include <iostream>
#include <memory>

#include "byok/kek.h"
#include "byok/kid.h"
#include "cli/commands.h"
#include "core/file_io.h"
#include "core/log.h"
#include "pkcs11/keygen.h"
#include "pkcs11/quirks.h"
#include "pkcs11/wrap.h"
#include "transfer/export.h"

namespace keyport::cli {
namespace {

struct ExportOptions {
  TokenOptions token;
  std::string key;
  std::string kek_path;
  std::optional<std::string> kid;
  std::string enc = "CKM_RSA_AES_KEY_WRAP";
  std::string strategy = "auto";
  std::optional<std::string> target;
  std::optional<std::string> output;
  std::optional<std::string> name;
  bool force = false;
};

Status run_export(GlobalOptions& g, const ExportOptions& o) {
  // Everything that can be checked without the HSM is checked first.
  KEYPORT_ASSIGN_OR_RETURN(WrapAlg enc, parse_wrap_alg(o.enc));
  KEYPORT_ASSIGN_OR_RETURN(p11::WrapStrategy strategy, p11::parse_wrap_strategy(o.strategy));
  std::optional<byok::TargetKind> target_opt;
  if (o.target) {
    KEYPORT_ASSIGN_OR_RETURN(auto t, byok::parse_target_kind(*o.target));
    target_opt = t;
  }
  KEYPORT_ASSIGN_OR_RETURN(byok::Kek kek, byok::load_kek_file(o.kek_path));
  std::string kid_text = o.kid.value_or(kek.kid.value_or(""));
  if (kid_text.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--kid is required: the versioned key identifier of the KEK, "
                      "https://<vault>.vault.azure.net/keys/<kek-name>/<version>");
  }
  auto kid = byok::parse_kid(kid_text, true);
  if (!kid)
    return tl::unexpected(kid.error().with_context("--kid"));
  std::vector<std::string> warnings;
  KEYPORT_ASSIGN_OR_RETURN(byok::TargetKind target,
                           transfer::resolve_target(*kid, target_opt, warnings));
  if (kek.kid && o.kid && *kek.kid != *o.kid) {
    warnings.push_back("--kid differs from the kid inside the KEK file " + o.kek_path);
  }
  std::optional<std::filesystem::path> out_path;
  if (o.output) {
    out_path = *o.output;
    KEYPORT_TRY(check_output_path(*out_path, o.force));
  }

  KEYPORT_ASSIGN_OR_RETURN(TokenContext ctx, open_token(g, o.token, true));
  const p11::Session& session = *ctx.session;
  KEYPORT_ASSIGN_OR_RETURN(p11::KeyObject key, p11::find_key(session, o.key));
  if (!out_path) {
    out_path = std::filesystem::path(key.label + ".byok");
    KEYPORT_TRY(check_output_path(*out_path, o.force));
  }
  KEYPORT_ASSIGN_OR_RETURN(auto caps, p11::probe_wrap_capabilities(session, ctx.token(), true));
  KEYPORT_ASSIGN_OR_RETURN(auto session_kek, transfer::SessionKek::import(session, kek.key));
  transfer::ExportOptions eo;
  eo.enc = enc;
  eo.strategy = strategy;
  eo.generator = transfer::generator_for(ctx.token());
  KEYPORT_ASSIGN_OR_RETURN(auto result,
                           transfer::export_key(session, caps, key, session_kek, *kid, target, eo));
  for (auto& w : result.warnings) {
    warnings.push_back(w);
  }
  for (const auto& q : p11::quirks_affecting_export(ctx.token(), result.spec)) {
    warnings.push_back("module quirk " + q.code +
                       (result.spec.family == KeyFamily::kRsa ? " may apply" : " applies") +
                       " to this file: " + q.title + ". " + q.advice);
  }

  std::string text = result.file.to_json();
  WriteOptions wo;
  wo.overwrite = o.force;
  KEYPORT_TRY(write_file_atomic(*out_path, text, wo));

  std::string az_name = o.name.value_or(transfer::azure_key_name_from(key.label));
  std::string az = transfer::az_import_command(*kid, target, result.spec, az_name, *out_path);
  for (const auto& w : warnings)
    log::warn(w);
  if (g.json) {
    Json warn_json = Json::array();
    for (const auto& w : warnings)
      warn_json.push_back(w);
    print_json(
        {{"file", out_path->string()},
         {"bytes", text.size()},
         {"key",
          {{"label", key.label}, {"type", result.spec.name()}, {"kty", result.spec.azure_kty()}}},
         {"kid", kid->url},
         {"target", std::string(byok::to_string(target))},
         {"enc", std::string(wrap_alg_name(enc))},
         {"strategy", std::string(p11::to_string(result.strategy_used))},
         {"ciphertext_bytes", result.file.ciphertext.size()},
         {"generator", result.file.generator},
         {"az_command", az},
         {"warnings", warn_json}});
  } else {
    std::cout << "wrote " << out_path->string() << ": " << result.spec.name() << " \"" << key.label
              << "\" for " << kid->url << " (" << wrap_alg_name(enc) << ", "
              << p11::to_string(result.strategy_used) << " wrap, " << result.file.ciphertext.size()
              << "-byte ciphertext)\n"
              << "next: " << az << std::endl;
  }
  return {};
}

}  // namespace

void setup_byok_commands(CLI::App& app, GlobalOptions& g) {
  auto* byok = app.add_subcommand("byok", "Azure BYOK transfer files (.byok)");
  byok->require_subcommand(1);

  auto o = std::make_shared<ExportOptions>();
  auto* exp = byok->add_subcommand(
      "export",
      "Wrap a token key for import into Key Vault or Managed HSM, inside the token, and write a "
      ".byok file.\n"
      "The key never leaves the token in clear: an ephemeral AES-256 key wraps it (RFC 5649) and "
      "the KEK\n"
      "wraps that key (RSA-OAEP). Get the KEK with\n"
      "  az keyvault key create --kty RSA-HSM --size 4096 --ops import --name KEK --vault-name V\n"
      "  az keyvault key download --name KEK --vault-name V --file KEK.pem");
  add_token_options(*exp, o->token);
  exp->add_option("--key", o->key,
                  "The key to export: PKCS#11 URI (pkcs11:object=...;type=private) or label")
      ->required();
  exp->add_option("--kek", o->kek_path,
                  "The KEK public key: SPKI PEM or DER (az keyvault key download), or JWK")
      ->required();
  exp->add_option("--kid", o->kid,
                  "Versioned KEK id https://<vault>.vault.azure.net/keys/<kek>/<version> (default: "
                  "the kid of a JWK KEK)");
  exp->add_option(
      "--enc", o->enc,
      "CKM_RSA_AES_KEY_WRAP (OAEP SHA-1, default), RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384");
  exp->add_option("--strategy", o->strategy,
                  "auto (default), native (CKM_RSA_AES_KEY_WRAP), composite (KWP + OAEP)");
  exp->add_option("--target", o->target,
                  "key-vault or managed-hsm, for kid hosts that are not Azure's");
  exp->add_option("-o,--output", o->output,
                  "Output .byok file (default: <label>.byok); never overwritten without --force");
  exp->add_option("--name", o->name,
                  "Key name for the printed az import command (default: the label)");
  exp->add_flag("--force", o->force, "Overwrite the output file if it exists");
  add_json_flag(*exp, g);
  exp->callback(bind_command(g, [&g, o]() { return run_export(g, *o); }));
}

}  // namespace keyport::cli
