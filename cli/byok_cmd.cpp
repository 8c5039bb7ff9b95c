// SPDX-License-Identifier: Apache-2.0
// keyport byok export: one key to one destination, one key to several destinations, or a batch
// (--select, --manifest). The export itself is transfer::run_batch_export; this file parses the
// options, shows progress, turns Ctrl-C into a cancellation and prints the outcome.
#include <atomic>
#include <iostream>
#include <memory>

#include "byok/byok_file.h"
#include "byok/kid.h"
#include "byok/service_profile.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "core/file_io.h"
#include "core/log.h"
#include "pkcs11/wrap.h"
#include "transfer/batch_export.h"
#include "transfer/export.h"

namespace keyport::cli {
namespace {

struct ExportOptions {
  TokenOptions token;
  std::optional<std::string> key;
  std::optional<std::string> select;
  std::optional<std::string> manifest;
  std::vector<std::string> keks;
  std::vector<std::string> kids;
  std::string enc = "CKM_RSA_AES_KEY_WRAP";
  std::string strategy = "auto";
  std::optional<std::string> target;
  std::optional<std::string> output;
  std::optional<std::string> out_dir;
  std::optional<std::string> name;
  std::optional<std::string> report;
  std::string progress = "auto";
  int jobs = 1;
  bool force = false;
  std::optional<std::string> for_profile;
};

Status run_export(GlobalOptions& g, const ExportOptions& o) {
  transfer::BatchExportRequest rq;
  rq.key = o.key;
  rq.select = o.select;
  if (o.manifest) {
    rq.manifest = *o.manifest;
  }
  rq.keks = o.keks;
  rq.kids = o.kids;
  rq.jobs = o.jobs;
  rq.force = o.force;
  if (o.output) {
    rq.output = *o.output;
  }
  rq.out_dir = o.out_dir.value_or(".");
  if (o.report) {
    rq.report = *o.report;
  }
  // Everything that can be checked without the HSM is checked first.
  KEYPORT_TRY(transfer::check_request(rq));
  KEYPORT_ASSIGN_OR_RETURN(ProgressMode mode, parse_progress_mode(o.progress));
  KEYPORT_ASSIGN_OR_RETURN(rq.enc, parse_wrap_alg(o.enc));
  KEYPORT_ASSIGN_OR_RETURN(rq.strategy, p11::parse_wrap_strategy(o.strategy));
  KEYPORT_ASSIGN_OR_RETURN(rq.profile, resolve_profile(o.for_profile));
  if (o.target) {
    KEYPORT_ASSIGN_OR_RETURN(auto t, byok::parse_target_kind(*o.target));
    rq.target = t;
  }

  std::optional<TokenContext> ctx;
  std::optional<ProgressDisplay> progress;
  std::optional<CancelOnSignal> signals;
  std::atomic<bool> cancel{false};
  transfer::BatchExportHooks hooks;
  hooks.open_token = [&]() -> Result<transfer::ExportToken> {
    KEYPORT_ASSIGN_OR_RETURN(auto opened, open_token(g, o.token, true));
    ctx.emplace(std::move(opened));
    return transfer::ExportToken{ctx->module, ctx->slot.id, &*ctx->session, &ctx->token()};
  };
  hooks.on_plan = [&](const transfer::ExportPlan& plan) {
    if (rq.profile != nullptr) {
      note_profile(g, *rq.profile);
    }
    for (const auto& w : plan.warnings) {
      log::warn(w);
    }
  };
  // Ctrl-C asks the batch to stop only while keys are exported; before, it ends the process.
  hooks.on_start = [&](const transfer::ExportPlan& plan) {
    progress.emplace(plan.single ? ProgressMode::kNone : mode, "keys",
                     static_cast<std::int64_t>(plan.unresolved.size()));
    signals.emplace(cancel);
  };
  hooks.on_progress = [&](const transfer::BatchExportProgress& p) {
    const auto done = static_cast<std::int64_t>(p.done);
    progress->update(
        {done, static_cast<std::int64_t>(p.failed), static_cast<std::int64_t>(p.total), done});
  };
  hooks.cancel = &cancel;
  auto ran = transfer::run_batch_export(rq, hooks);
  signals.reset();
  if (progress) {
    progress->finish();
  }
  if (!ran) {
    return tl::unexpected(ran.error());
  }
  const transfer::BatchExportResult& res = *ran;
  const transfer::ExportPlan& plan = res.plan;

  if (plan.single) {
    const auto& r = res.results.front();
    for (const auto& w : r.warnings) {
      log::warn(w);
    }
    if (r.outcome == transfer::ItemOutcome::kFailed) {
      return tl::unexpected(*r.error);
    }
    const auto& item = plan.items.front();
    const auto& dest = plan.destinations[item.destination];
    const std::string az_name = o.name.value_or(transfer::azure_key_name_from(item.key.label));
    const std::string az =
        transfer::az_import_command(dest.kid, dest.target, item.key.spec, az_name, item.output);
    const std::string strategy = res.strategy ? std::string(p11::to_string(*res.strategy)) : "";
    if (g.json) {
      Json w = Json::array();
      for (const auto& s : plan.warnings) {
        w.push_back(s);
      }
      for (const auto& s : r.warnings) {
        w.push_back(s);
      }
      auto text = read_text_file(item.output);
      auto file = text ? byok::ByokFile::parse(*text) : tl::unexpected(text.error());
      print_json({{"file", item.output.string()},
                  {"bytes", text ? text->size() : 0},
                  {"ciphertext_bytes", file ? file->ciphertext.size() : 0},
                  {"sha256", r.sha256},
                  {"key",
                   {{"label", item.key.label},
                    {"type", item.key.spec.name()},
                    {"kty", item.key.spec.azure_kty()}}},
                  {"kid", dest.kid.url},
                  {"target", std::string(byok::to_string(dest.target))},
                  {"enc", std::string(wrap_alg_name(item.enc))},
                  {"strategy", strategy},
                  {"generator", res.generator},
                  {"az_command", az},
                  {"warnings", w}});
    } else {
      std::cout << "wrote " << item.output.string() << ": " << item.key.spec.name() << " \""
                << item.key.label << "\" for " << dest.kid.url << " (" << wrap_alg_name(item.enc)
                << ", " << strategy << " wrap)\n"
                << "next: " << az << std::endl;
    }
    return {};
  }

  if (g.json) {
    Json items = Json::array();
    for (const auto& r : res.results) {
      items.push_back(r.to_json());
    }
    print_json({{"summary",
                 {{"total", res.results.size()},
                  {"written", res.written},
                  {"skipped", res.skipped},
                  {"failed", res.failed},
                  {"report", res.report_path.string()}}},
                {"items", items}});
  } else {
    std::cout << "exported " << res.written << ", skipped " << res.skipped
              << " (already written and verified), failed " << res.failed << " of "
              << res.results.size() << "; report " << res.report_path.string() << "\n";
    for (const auto& r : res.results) {
      if (r.outcome == transfer::ItemOutcome::kFailed) {
        std::cout << "  failed " << r.label << " -> " << r.output.string() << ": "
                  << r.error->describe() << "\n";
      }
    }
    if (res.written > 0) {
      std::cout << "next: az keyvault key import --vault-name|--hsm-name <name> --name <key> "
                   "--byok-file <file> --kty "
                   "<RSA|EC|oct> [--curve <crv>] for each file\n";
    }
    std::cout.flush();
  }
  return res.status();
}

}  // namespace

void setup_byok_commands(CLI::App& app, GlobalOptions& g) {
  auto* byok = app.add_subcommand("byok", "Azure BYOK transfer files (.byok)");
  byok->require_subcommand(1);

  auto o = std::make_shared<ExportOptions>();
  auto* exp = byok->add_subcommand(
      "export",
      "Wrap token keys for import into Key Vault or Managed HSM, inside the token, and write .byok "
      "files.\n"
      "A key never leaves the token in clear: an ephemeral AES-256 key wraps it (RFC 5649) and the "
      "KEK\n"
      "wraps that key (RSA-OAEP). Get the KEK with\n"
      "  az keyvault key create --kty RSA-HSM --size 4096 --ops import --name KEK --vault-name V\n"
      "  az keyvault key download --name KEK --vault-name V --file KEK.pem\n"
      "One key:          --key LABEL --kek KEK.pem --kid URL [-o OUT.byok]\n"
      "Several vaults:   --key LABEL --kek A.pem --kid URL_A --kek B.pem --kid URL_B   (one file "
      "each)\n"
      "Many keys:        --select 'app-*' --kek KEK.pem --kid URL --out-dir DIR [--jobs 2]\n"
      "From a manifest:  --manifest keys.csv (columns key,kek,kid[,enc][,output]) or keys.json\n"
      "For a service:    --for storage-cmk|sql-tde|disk-encryption|aip-tenant-key|"
      "m365-customer-key\n"
      "                  refuses keys the service does not take before anything is exported\n"
      "Batches append one JSON line per key to DIR/keyport-export-report.jsonl; running the same\n"
      "command again skips files already written and verified, so an interrupted batch resumes.");
  add_token_options(*exp, o->token);
  auto* key = exp->add_option("--key", o->key,
                              "One key: PKCS#11 URI (pkcs11:object=...;type=private) or label");
  auto* select = exp->add_option(
      "--select", o->select,
      "Keys whose label matches a pattern: 'prefix*' or 'pkcs11:token=T;object=prefix*' "
      "(add ;type=private or ;type=secret-key to search one class: faster on large tokens)");
  auto* manifest = exp->add_option("--manifest", o->manifest,
                                   "A JSON or CSV manifest of keys, KEKs, kids and outputs");
  key->excludes(select)->excludes(manifest);
  select->excludes(manifest);
  exp->add_option(
      "--kek", o->keks,
      "KEK public key: SPKI PEM or DER (az keyvault key download), or JWK. Repeat with --kid for "
      "several destinations");
  exp->add_option("--kid", o->kids,
                  "Versioned KEK id https://<vault>.vault.azure.net/keys/<kek>/<version> (default: "
                  "the kid of a "
                  "JWK KEK); one per --kek");
  exp->add_option(
      "--enc", o->enc,
      "CKM_RSA_AES_KEY_WRAP (OAEP SHA-1, default), RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384");
  exp->add_option("--strategy", o->strategy,
                  "auto (default), native (CKM_RSA_AES_KEY_WRAP), composite (KWP + OAEP)");
  exp->add_option("--target", o->target,
                  "key-vault or managed-hsm, for kid hosts that are not Azure's");
  exp->add_option("-o,--output", o->output,
                  "Output file for one key and one destination (default: <label>.byok); never "
                  "overwritten without "
                  "--force");
  exp->add_option("--out-dir", o->out_dir,
                  "Folder for the files of a batch or of several destinations "
                  "(<label>[.<vault>].byok; default .)");
  exp->add_option("--name", o->name,
                  "Key name for the printed az import command (default: the label)");
  exp->add_option("--jobs", o->jobs, "Parallel PKCS#11 sessions for a batch (default 1)");
  exp->add_option("--progress", o->progress, "auto (a bar on a terminal), bar, plain, none");
  exp->add_option("--report", o->report,
                  "JSON Lines report (default for batches: <out-dir>/keyport-export-report.jsonl)");
  exp->add_flag("--force", o->force, "Overwrite output files that exist");
  add_for_option(*exp, o->for_profile);
  add_json_flag(*exp, g);
  exp->callback(bind_command(g, [&g, o]() { return run_export(g, *o); }));

  setup_byok_tool_commands(*byok, g);
}

}  // namespace keyport::cli
