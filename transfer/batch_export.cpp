// SPDX-License-Identifier: Apache-2.0
#include "transfer/batch_export.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <utility>

#include "core/file_io.h"
#include "pkcs11/keygen.h"
#include "pkcs11/uri.h"

namespace keyport::transfer {
namespace {
namespace fs = std::filesystem;

fs::path default_output(const fs::path& dir, const std::string& label, const Destination& d,
                        bool several_destinations) {
  return dir / (several_destinations ? label + "." + d.tag + ".byok" : label + ".byok");
}

// The keys of a plan that `profile` refuses, as one kUnsupported error naming them all.
Status check_plan_profile(const byok::ServiceProfile& profile, const ExportPlan& plan) {
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

// --select: a label glob, or a pkcs11: URI naming the pattern (and maybe the class and token).
Status plan_selection(const BatchExportRequest& rq, const ExportToken& tok, ExportPlan& plan) {
  std::string glob = *rq.select;
  std::optional<CK_OBJECT_CLASS> only_class;
  if (p11::looks_like_uri(glob)) {
    KEYPORT_ASSIGN_OR_RETURN(p11::Uri uri, p11::Uri::parse(glob));
    if (!uri.object) {
      return make_error(ErrorCode::kInvalidArgument, "--select URI needs object=PATTERN");
    }
    if (uri.id) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--select matches labels; to export one key by id= use --key URI");
    }
    if (!uri.matches_token(tok.token->raw)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "the --select URI names a different token than the one opened (\"" +
                            tok.token->label + "\"); name the token with --token");
    }
    if (uri.type) {
      KEYPORT_ASSIGN_OR_RETURN(only_class, p11::exportable_class(*uri.type));
    }
    glob = *uri.object;
  }
  KEYPORT_ASSIGN_OR_RETURN(auto all,
                           p11::list_keys(*tok.session, /*with_public=*/false, only_class));
  auto keys = select_keys(all, glob);
  if (keys.empty()) {
    return make_error(ErrorCode::kNotFound, "no key label matches \"" + glob + "\"");
  }
  assign_destination_tags(plan.destinations);
  const bool several = plan.destinations.size() > 1;
  for (const auto& k : keys) {
    for (std::size_t d = 0; d < plan.destinations.size(); ++d) {
      plan.items.push_back(
          {k, d, rq.enc, default_output(rq.out_dir, k.label, plan.destinations[d], several)});
    }
  }
  return {};
}

// --manifest: each distinct (KEK file, kid) is one destination, loaded once; a bad KEK, enc or key
// fails its lines only.
void plan_manifest(const BatchExportRequest& rq, const std::vector<ManifestEntry>& manifest,
                   const ExportToken& tok, ExportPlan& plan) {
  std::map<std::pair<std::string, std::string>, Result<std::size_t>> dests;
  for (const auto& e : manifest) {
    auto k = std::make_pair(e.kek, e.kid.value_or(""));
    if (dests.count(k)) {
      continue;
    }
    auto d = load_destination(e.kek, e.kid, rq.target, plan.warnings);
    if (d) {
      dests.emplace(k, plan.destinations.size());
      plan.destinations.push_back(std::move(*d));
    } else {
      dests.emplace(k, tl::unexpected(d.error()));
    }
  }
  assign_destination_tags(plan.destinations);
  for (const auto& e : manifest) {
    ItemResult bad;
    bad.label = e.key;
    bad.output = e.output.value_or("");
    bad.outcome = ItemOutcome::kFailed;
    auto fail = [&](Error err) {
      bad.error = std::move(err);
      plan.unresolved.push_back(bad);
    };
    const auto& d = dests.at(std::make_pair(e.kek, e.kid.value_or("")));
    if (!d) {
      fail(d.error());
      continue;
    }
    const Destination& dest = plan.destinations[*d];
    bad.kid = dest.kid.url;
    WrapAlg item_enc = rq.enc;
    if (e.enc) {
      auto parsed = parse_wrap_alg(*e.enc);
      if (!parsed) {
        fail(parsed.error());
        continue;
      }
      item_enc = *parsed;
    }
    auto key = p11::find_key(*tok.session, e.key);
    if (!key) {
      fail(key.error());
      continue;
    }
    fs::path out =
        e.output
            ? (fs::path(*e.output).is_absolute() ? fs::path(*e.output) : rq.out_dir / *e.output)
            : default_output(rq.out_dir, key->label, dest, plan.destinations.size() > 1);
    plan.items.push_back({*key, *d, item_enc, out});
  }
}

}  // namespace

Status check_request(const BatchExportRequest& o) {
  const int modes = (o.key ? 1 : 0) + (o.select ? 1 : 0) + (o.manifest ? 1 : 0);
  if (modes != 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give exactly one of --key, --select or --manifest");
  }
  if (o.manifest && (!o.keks.empty() || !o.kids.empty())) {
    return make_error(ErrorCode::kInvalidArgument,
                      "with --manifest, the KEK and kid of each key come from the manifest");
  }
  if (!o.manifest && o.keks.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "--kek is required");
  }
  if (!o.kids.empty() && o.kids.size() != o.keks.size()) {
    return make_error(ErrorCode::kInvalidArgument, "give one --kid per --kek (" +
                                                       std::to_string(o.keks.size()) + " KEKs, " +
                                                       std::to_string(o.kids.size()) + " kids)");
  }
  if (o.jobs < 1 || o.jobs > 64) {
    return make_error(ErrorCode::kInvalidArgument, "--jobs: 1 to 64");
  }
  return {};
}

Status BatchExportResult::status() const {
  if (cancelled) {
    return make_error(ErrorCode::kIo, "interrupted; run the same command again to resume");
  }
  if (failed > 0) {
    return tl::unexpected(Error(ErrorCode::kInternal, std::to_string(failed) + " of " +
                                                          std::to_string(results.size()) +
                                                          " exports failed (see the report)")
                              .with_detail("partial"));
  }
  return {};
}

Result<BatchExportResult> run_batch_export(const BatchExportRequest& rq,
                                           const BatchExportHooks& hooks) {
  // Everything that can be checked without the token is checked first.
  KEYPORT_TRY(check_request(rq));
  if (!hooks.open_token) {
    return make_error(ErrorCode::kInvalidArgument, "run_batch_export: no open_token hook");
  }
  BatchExportResult out;
  ExportPlan& plan = out.plan;
  std::vector<ManifestEntry> manifest;
  if (rq.manifest) {
    KEYPORT_ASSIGN_OR_RETURN(manifest, read_manifest(*rq.manifest));
    if (manifest.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "the manifest lists no keys");
    }
  } else {
    for (std::size_t i = 0; i < rq.keks.size(); ++i) {
      std::optional<std::string> kid = rq.kids.empty() ? std::nullopt : std::optional(rq.kids[i]);
      KEYPORT_ASSIGN_OR_RETURN(auto d, load_destination(rq.keks[i], kid, rq.target, plan.warnings));
      plan.destinations.push_back(std::move(d));
    }
  }
  plan.single = rq.key && plan.destinations.size() == 1;
  if (rq.output && !plan.single) {
    return make_error(ErrorCode::kInvalidArgument,
                      "-o names one file; with several keys or destinations use --out-dir");
  }
  if (!fs::is_directory(rq.out_dir)) {
    return make_error(ErrorCode::kNotFound, "--out-dir " + rq.out_dir.string() + " does not exist");
  }
  if (plan.single && rq.output) {
    KEYPORT_TRY(check_output_path(*rq.output, rq.force));
  }

  KEYPORT_ASSIGN_OR_RETURN(ExportToken tok, hooks.open_token());
  if (!tok.module || tok.session == nullptr || tok.token == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "run_batch_export: open_token gave no token");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto caps, p11::probe_wrap_capabilities(*tok.session, *tok.token, true));

  if (rq.key) {
    KEYPORT_ASSIGN_OR_RETURN(p11::KeyObject key, p11::find_key(*tok.session, *rq.key));
    assign_destination_tags(plan.destinations);
    const bool several = plan.destinations.size() > 1;
    for (std::size_t d = 0; d < plan.destinations.size(); ++d) {
      fs::path file = plan.single && rq.output
                          ? *rq.output
                          : default_output(rq.out_dir, key.label, plan.destinations[d], several);
      plan.items.push_back({key, d, rq.enc, file});
    }
  } else if (rq.select) {
    KEYPORT_TRY(plan_selection(rq, tok, plan));
  } else {
    plan_manifest(rq, manifest, tok, plan);
  }

  // A service profile: every key of the plan must suit the service, or nothing is exported.
  if (rq.profile != nullptr) {
    KEYPORT_TRY(check_plan_profile(*rq.profile, plan));
    if (rq.profile->vault.two_vaults_in_two_regions && plan.destinations.size() < 2) {
      plan.warnings.push_back(std::string(rq.profile->name) +
                              " takes two keys in two vaults in two regions: export for the "
                              "second vault too (a second --kek/--kid)");
    }
  }
  if (hooks.on_plan) {
    hooks.on_plan(plan);
  }

  BatchOptions bo;
  bo.jobs = rq.jobs;
  bo.force = rq.force;
  bo.strategy = rq.strategy;
  bo.generator = generator_for(*tok.token);
  bo.cancel = hooks.cancel;
  out.generator = bo.generator;
  std::ofstream report;
  if (!plan.single) {
    out.report_path = rq.report ? *rq.report : rq.out_dir / "keyport-export-report.jsonl";
    if (fs::exists(out.report_path)) {
      bo.previous_report = out.report_path;
    }
    report.open(out.report_path, std::ios::app);
    if (!report) {
      return make_error(ErrorCode::kIo, "cannot open report " + out.report_path.string());
    }
  } else if (rq.report) {
    out.report_path = *rq.report;
    report.open(out.report_path, std::ios::app);
  }
  BatchExportProgress progress;
  progress.total = plan.items.size() + plan.unresolved.size();
  for (const auto& r : plan.unresolved) {
    ++progress.done;
    ++progress.failed;
    if (report) {
      report << dump_json(r.to_json()) << '\n' << std::flush;
    }
  }
  // run_batch serialises on_item; the counts are read again only after it returned.
  bo.on_item = [&](const ItemResult& r) {
    ++progress.done;
    if (r.outcome == ItemOutcome::kFailed) {
      ++progress.failed;
    }
    if (report) {
      report << dump_json(r.to_json()) << '\n' << std::flush;
    }
    if (hooks.on_progress) {
      hooks.on_progress(progress);
    }
  };
  if (hooks.on_start) {
    hooks.on_start(plan);
  }
  KEYPORT_ASSIGN_OR_RETURN(
      out.results, run_batch(tok.module, tok.slot, caps, plan.destinations, plan.items, bo));
  out.cancelled = hooks.cancel != nullptr && hooks.cancel->load();
  for (const auto& r : plan.unresolved) {
    out.results.push_back(r);
  }
  if (!plan.items.empty()) {
    auto used = p11::choose_strategy(caps, rq.strategy, plan.items.front().enc);
    if (used) {
      out.strategy = *used;
    }
  }
  out.failed = progress.failed;
  for (const auto& r : out.results) {
    out.written += r.outcome == ItemOutcome::kWritten;
    out.skipped += r.outcome == ItemOutcome::kSkipped;
  }
  return out;
}

}  // namespace keyport::transfer
