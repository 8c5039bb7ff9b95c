// SPDX-License-Identifier: Apache-2.0
// keyport byok export: one key to one destination, one key to several destinations, or a batch
// (--select, --manifest) with parallel sessions, a progress bar, a JSON Lines report and resume.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include "byok/byok_file.h"
#include "byok/kek.h"
#include "byok/kid.h"
#include "byok/service_profile.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/progress.h"
#include "core/file_io.h"
#include "core/log.h"
#include "pkcs11/keygen.h"
#include "pkcs11/quirks.h"
#include "pkcs11/wrap.h"
#include "transfer/batch.h"
#include "transfer/export.h"

namespace keyport::cli {
namespace {
namespace fs = std::filesystem;

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

Status check_exclusive(const ExportOptions& o) {
  int modes = (o.key ? 1 : 0) + (o.select ? 1 : 0) + (o.manifest ? 1 : 0);
  if (modes != 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give exactly one of --key, --select or --manifest");
  }
  if (o.manifest && (!o.keks.empty() || !o.kids.empty())) {
    return make_error(ErrorCode::kInvalidArgument,
                      "with --manifest, the KEK and kid of each key come from the manifest");
  }
  if (!o.manifest && o.keks.empty())
    return make_error(ErrorCode::kInvalidArgument, "--kek is required");
  if (!o.kids.empty() && o.kids.size() != o.keks.size()) {
    return make_error(ErrorCode::kInvalidArgument, "give one --kid per --kek (" +
                                                       std::to_string(o.keks.size()) + " KEKs, " +
                                                       std::to_string(o.kids.size()) + " kids)");
  }
  KEYPORT_TRY(parse_progress_mode(o.progress));
  if (o.jobs < 1 || o.jobs > 64)
    return make_error(ErrorCode::kInvalidArgument, "--jobs: 1 to 64");
  return {};
}

struct Plan {
  std::vector<transfer::Destination> destinations;
  std::vector<transfer::BatchItem> items;
  std::vector<transfer::ItemResult> unresolved;  // manifest lines whose key or KEK failed up front
  bool single = false;
};

fs::path default_output(const fs::path& dir, const std::string& label,
                        const transfer::Destination& d, bool several_destinations) {
  return dir / (several_destinations ? label + "." + d.tag + ".byok" : label + ".byok");
}

// The keys of a plan that `profile` refuses, as one kUnsupported error naming them all.
Status check_plan_profile(const byok::ServiceProfile& profile, const Plan& plan) {
  std::vector<std::string> refused;
  std::optional<Error> first;
  for (const auto& item : plan.items) {
    auto st = byok::check_profile_accepts(profile, item.key.spec);
    if (st) {
      continue;
    }
    std::string what = "\"" + item.key.label + "\" (" + item.key.spec.name() + ")";
    if (std::find(refused.begin(), refused.end(), what) == refused.end()) {
      refused.push_back(what);
    }
    if (!first) {
      first = st.error();
    }
  }
  if (refused.empty()) {
    return {};
  }
  std::string list;
  for (const auto& r : refused) {
    list += (list.empty() ? "" : ", ") + r;
  }
  return make_error(ErrorCode::kUnsupported, "profile-refused",
                    "--for " + std::string(profile.name) + " refuses " + list +
                        "; nothing was exported. " + first->message());
}

Status run_export(GlobalOptions& g, const ExportOptions& o) {
  // Everything that can be checked without the HSM is checked first.
  KEYPORT_TRY(check_exclusive(o));
  KEYPORT_ASSIGN_OR_RETURN(WrapAlg enc, parse_wrap_alg(o.enc));
  KEYPORT_ASSIGN_OR_RETURN(p11::WrapStrategy strategy, p11::parse_wrap_strategy(o.strategy));
  KEYPORT_ASSIGN_OR_RETURN(const byok::ServiceProfile* profile, resolve_profile(o.for_profile));
  std::optional<byok::TargetKind> target_opt;
  if (o.target) {
    KEYPORT_ASSIGN_OR_RETURN(auto t, byok::parse_target_kind(*o.target));
    target_opt = t;
  }
  std::vector<std::string> warnings;
  Plan plan;
  std::vector<transfer::ManifestEntry> manifest;
  if (o.manifest) {
    KEYPORT_ASSIGN_OR_RETURN(manifest, transfer::read_manifest(*o.manifest));
    if (manifest.empty())
      return make_error(ErrorCode::kInvalidArgument, "the manifest lists no keys");
  } else {
    for (std::size_t i = 0; i < o.keks.size(); ++i) {
      std::optional<std::string> kid = o.kids.empty() ? std::nullopt : std::optional(o.kids[i]);
      KEYPORT_ASSIGN_OR_RETURN(auto d,
                               transfer::load_destination(o.keks[i], kid, target_opt, warnings));
      plan.destinations.push_back(std::move(d));
    }
  }
  plan.single = o.key && plan.destinations.size() == 1;
  if (o.output && !plan.single) {
    return make_error(ErrorCode::kInvalidArgument,
                      "-o names one file; with several keys or destinations use --out-dir");
  }
  fs::path out_dir = o.out_dir.value_or(".");
  if (!fs::is_directory(out_dir))
    return make_error(ErrorCode::kNotFound, "--out-dir " + out_dir.string() + " does not exist");
  if (plan.single && o.output)
    KEYPORT_TRY(check_output_path(*o.output, o.force));

  KEYPORT_ASSIGN_OR_RETURN(TokenContext ctx, open_token(g, o.token, true));
  const p11::Session& session = *ctx.session;
  KEYPORT_ASSIGN_OR_RETURN(auto caps, p11::probe_wrap_capabilities(session, ctx.token(), true));

  if (o.key) {
    KEYPORT_ASSIGN_OR_RETURN(p11::KeyObject key, p11::find_key(session, *o.key));
    transfer::assign_destination_tags(plan.destinations);
    bool several = plan.destinations.size() > 1;
    for (std::size_t d = 0; d < plan.destinations.size(); ++d) {
      fs::path out = plan.single && o.output
                         ? fs::path(*o.output)
                         : default_output(out_dir, key.label, plan.destinations[d], several);
      plan.items.push_back({key, d, enc, out});
    }
  } else if (o.select) {
    std::string glob = *o.select;
    std::optional<CK_OBJECT_CLASS> only_class;
    if (p11::looks_like_uri(glob)) {
      // pkcs11:object=prefix* selects by label pattern, type= narrows the search to one class;
      // the token attributes name the token, as in --token.
      KEYPORT_ASSIGN_OR_RETURN(p11::Uri uri, p11::Uri::parse(glob));
      if (!uri.object)
        return make_error(ErrorCode::kInvalidArgument, "--select URI needs object=PATTERN");
      if (uri.id) {
        return make_error(ErrorCode::kInvalidArgument,
                          "--select matches labels; to export one key by id= use --key URI");
      }
      if (!uri.matches_token(ctx.token().raw)) {
        return make_error(ErrorCode::kInvalidArgument,
                          "the --select URI names a different token than the one opened (\"" +
                              ctx.token().label + "\"); name the token with --token");
      }
      if (uri.type) {
        KEYPORT_ASSIGN_OR_RETURN(only_class, p11::exportable_class(*uri.type));
      }
      glob = *uri.object;
    }
    KEYPORT_ASSIGN_OR_RETURN(auto all, p11::list_keys(session, /*with_public=*/false, only_class));
    auto keys = transfer::select_keys(all, glob);
    if (keys.empty())
      return make_error(ErrorCode::kNotFound, "no key label matches \"" + glob + "\"");
    transfer::assign_destination_tags(plan.destinations);
    bool several = plan.destinations.size() > 1;
    for (const auto& k : keys) {
      for (std::size_t d = 0; d < plan.destinations.size(); ++d) {
        plan.items.push_back(
            {k, d, enc, default_output(out_dir, k.label, plan.destinations[d], several)});
      }
    }
  } else {
    // Each distinct (KEK file, kid) is one destination, loaded once; a bad one fails its lines
    // only.
    std::map<std::pair<std::string, std::string>, Result<std::size_t>> dests;
    for (const auto& e : manifest) {
      auto k = std::make_pair(e.kek, e.kid.value_or(""));
      if (dests.count(k))
        continue;
      auto d = transfer::load_destination(e.kek, e.kid, target_opt, warnings);
      if (d) {
        dests.emplace(k, plan.destinations.size());
        plan.destinations.push_back(std::move(*d));
      } else {
        dests.emplace(k, tl::unexpected(d.error()));
      }
    }
    transfer::assign_destination_tags(plan.destinations);
    for (const auto& e : manifest) {
      transfer::ItemResult bad;
      bad.label = e.key;
      bad.output = e.output.value_or("");
      bad.outcome = transfer::ItemOutcome::kFailed;
      auto fail = [&](Error err) {
        bad.error = std::move(err);
        plan.unresolved.push_back(bad);
      };
      const auto& d = dests.at(std::make_pair(e.kek, e.kid.value_or("")));
      if (!d) {
        fail(d.error());
        continue;
      }
      const transfer::Destination& dest = plan.destinations[*d];
      bad.kid = dest.kid.url;
      WrapAlg item_enc = enc;
      if (e.enc) {
        auto parsed = parse_wrap_alg(*e.enc);
        if (!parsed) {
          fail(parsed.error());
          continue;
        }
        item_enc = *parsed;
      }
      auto key = p11::find_key(session, e.key);
      if (!key) {
        fail(key.error());
        continue;
      }
      fs::path out =
          e.output ? (fs::path(*e.output).is_absolute() ? fs::path(*e.output) : out_dir / *e.output)
                   : default_output(out_dir, key->label, dest, plan.destinations.size() > 1);
      plan.items.push_back({*key, *d, item_enc, out});
    }
  }

  // --for: every key of the plan must suit the service, or nothing is exported at all.
  if (profile != nullptr) {
    KEYPORT_TRY(check_plan_profile(*profile, plan));
    if (profile->vault.two_vaults_in_two_regions && plan.destinations.size() < 2) {
      warnings.push_back(std::string(profile->name) +
                         " takes two keys in two vaults in two regions: export for the second "
                         "vault too (a second --kek/--kid)");
    }
    note_profile(g, *profile);
  }
  for (const auto& w : warnings)
    log::warn(w);
  transfer::BatchOptions bo;
  bo.jobs = o.jobs;
  bo.force = o.force;
  bo.strategy = strategy;
  bo.generator = transfer::generator_for(ctx.token());
  fs::path report_path;
  std::ofstream report;
  if (!plan.single) {
    report_path = o.report ? fs::path(*o.report) : out_dir / "keyport-export-report.jsonl";
    if (fs::exists(report_path))
      bo.previous_report = report_path;
    report.open(report_path, std::ios::app);
    if (!report)
      return make_error(ErrorCode::kIo, "cannot open report " + report_path.string());
  } else if (o.report) {
    report_path = *o.report;
    report.open(report_path, std::ios::app);
  }
  std::size_t total = plan.items.size() + plan.unresolved.size(), done = 0, failed = 0;
  KEYPORT_ASSIGN_OR_RETURN(ProgressMode mode, parse_progress_mode(o.progress));
  ProgressDisplay progress(plan.single ? ProgressMode::kNone : mode, "keys",
                           static_cast<std::int64_t>(plan.unresolved.size()));
  for (const auto& r : plan.unresolved) {
    ++done;
    ++failed;
    if (report)
      report << dump_json(r.to_json()) << '\n' << std::flush;
  }
  bo.on_item = [&](const transfer::ItemResult& r) {
    ++done;
    if (r.outcome == transfer::ItemOutcome::kFailed)
      ++failed;
    if (report)
      report << dump_json(r.to_json()) << '\n' << std::flush;
    const auto d = static_cast<std::int64_t>(done);
    progress.update({d, static_cast<std::int64_t>(failed), static_cast<std::int64_t>(total), d});
  };
  std::atomic<bool> cancel{false};
  bo.cancel = &cancel;
  std::optional<CancelOnSignal> signals(std::in_place, cancel);
  auto results =
      transfer::run_batch(ctx.module, ctx.slot.id, caps, plan.destinations, plan.items, bo);
  const bool cancelled = cancel.load();
  signals.reset();
  progress.finish();
  if (!results)
    return tl::unexpected(results.error());
  for (const auto& r : plan.unresolved)
    results->push_back(r);

  if (plan.single) {
    const auto& r = results->front();
    for (const auto& w : r.warnings)
      log::warn(w);
    if (r.outcome == transfer::ItemOutcome::kFailed)
      return tl::unexpected(*r.error);
    const auto& item = plan.items.front();
    const auto& dest = plan.destinations[item.destination];
    std::string az_name = o.name.value_or(transfer::azure_key_name_from(item.key.label));
    std::string az =
        transfer::az_import_command(dest.kid, dest.target, item.key.spec, az_name, item.output);
    if (g.json) {
      Json w = Json::array();
      for (const auto& s : warnings)
        w.push_back(s);
      for (const auto& s : r.warnings)
        w.push_back(s);
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
                  {"strategy",
                   std::string(p11::to_string(*p11::choose_strategy(caps, strategy, item.enc)))},
                  {"generator", bo.generator},
                  {"az_command", az},
                  {"warnings", w}});
    } else {
      std::cout << "wrote " << item.output.string() << ": " << item.key.spec.name() << " \""
                << item.key.label << "\" for " << dest.kid.url << " (" << wrap_alg_name(item.enc)
                << ", " << p11::to_string(*p11::choose_strategy(caps, strategy, item.enc))
                << " wrap)\n"
                << "next: " << az << std::endl;
    }
    return {};
  }

  std::size_t written = 0, skipped = 0;
  for (const auto& r : *results) {
    written += r.outcome == transfer::ItemOutcome::kWritten;
    skipped += r.outcome == transfer::ItemOutcome::kSkipped;
  }
  if (g.json) {
    Json items = Json::array();
    for (const auto& r : *results)
      items.push_back(r.to_json());
    print_json({{"summary",
                 {{"total", results->size()},
                  {"written", written},
                  {"skipped", skipped},
                  {"failed", failed},
                  {"report", report_path.string()}}},
                {"items", items}});
  } else {
    std::cout << "exported " << written << ", skipped " << skipped
              << " (already written and verified), failed " << failed << " of " << results->size()
              << "; report " << report_path.string() << "\n";
    for (const auto& r : *results) {
      if (r.outcome == transfer::ItemOutcome::kFailed) {
        std::cout << "  failed " << r.label << " -> " << r.output.string() << ": "
                  << r.error->describe() << "\n";
      }
    }
    if (written > 0) {
      std::cout << "next: az keyvault key import --vault-name|--hsm-name <name> --name <key> "
                   "--byok-file <file> --kty "
                   "<RSA|EC|oct> [--curve <crv>] for each file\n";
    }
    std::cout.flush();
  }
  if (cancelled)
    return make_error(ErrorCode::kIo, "interrupted; run the same command again to resume");
  if (failed > 0) {
    return tl::unexpected(Error(ErrorCode::kInternal, std::to_string(failed) + " of " +
                                                          std::to_string(results->size()) +
                                                          " exports failed (see the report)")
                              .with_detail("partial"));
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
