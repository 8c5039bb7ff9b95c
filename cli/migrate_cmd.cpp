// SPDX-License-Identifier: Apache-2.0
// keyport migrate plan|run|verify|retire|status: move the keys of a keyring from an old KEK to a
// new one with a crash-safe journal (migrate/migration.h).
#include <atomic>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/log.h"
#include "migrate/cmk_runbook.h"
#include "migrate/kek_spec.h"
#include "migrate/keyring.h"
#include "migrate/migration.h"

namespace keyport::cli {
namespace {

struct MigrateOptions {
  std::string keyring;
  std::string from;
  std::string to;
  std::optional<std::string> pin_source;
  std::optional<std::string> to_pin_source;
  std::optional<std::string> pin;
  int jobs = 1;
  std::size_t batch = 500;
  std::string progress = "auto";
  bool remove_old = false;
  // plan --workload cmk
  std::string workload;
  std::string from_vault;
  std::string to_vault;
  std::string key;
  std::string to_key;
  std::optional<std::string> from_ca_file;
  std::optional<std::string> to_ca_file;
  std::optional<std::string> from_token_file;
  std::optional<std::string> to_token_file;
  std::optional<std::string> to_access;
  std::string identity = "cmk-workload";
  std::optional<std::string> identity_token_file;
  std::optional<std::string> switch_command;
  std::string kty = "RSA-HSM";
  unsigned size = 2048;
  bool portable = false;
};

struct Keks {
  std::unique_ptr<migrate::KekOpener> opener;
  std::unique_ptr<migrate::KeyEncryptionKey> from;
  std::unique_ptr<migrate::KeyEncryptionKey> to;
};

Result<Keks> open_keks(const GlobalOptions& g, const MigrateOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto from_spec, migrate::KekSpec::parse(o.from));
  KEYPORT_ASSIGN_OR_RETURN(auto to_spec, migrate::KekSpec::parse(o.to));
  migrate::KekOpenerOptions oo;
  oo.module = module_selection(g);
  oo.caller = "keyport migrate";
  Keks k;
  k.opener = std::make_unique<migrate::KekOpener>(oo);
  migrate::PinOptions pin = migrate::PinOptions::from_flags(o.pin_source, o.pin);
  auto from = k.opener->open(from_spec, pin);
  if (!from) {
    return tl::unexpected(from.error().with_context("--from"));
  }
  k.from = std::move(*from);
  if (o.to_pin_source) {
    pin.pin_source = o.to_pin_source;
  }
  auto to = k.opener->open(to_spec, pin);
  if (!to) {
    return tl::unexpected(to.error().with_context("--to"));
  }
  k.to = std::move(*to);
  return k;
}

Result<std::unique_ptr<migrate::Keyring>> open_keyring(const std::string& path, bool read_only) {
  migrate::Keyring::Options ko;
  ko.read_only = read_only;
  return migrate::Keyring::open(path, ko);
}

Status check_common(const MigrateOptions& o) {
  if (o.jobs < 1 || o.jobs > 64) {
    return make_error(ErrorCode::kInvalidArgument, "--jobs: 1 to 64");
  }
  if (o.batch < 1 || o.batch > 100000) {
    return make_error(ErrorCode::kInvalidArgument, "--batch: 1 to 100000");
  }
  KEYPORT_TRY(parse_progress_mode(o.progress));
  return {};
}

std::string short_version(const std::string& v) {
  return v.size() > 20 ? v.substr(0, 20) + "..." : v;
}

Status run_cmk_plan(GlobalOptions& g, const MigrateOptions& o) {
  if (o.from_vault.empty() || o.to_vault.empty() || o.key.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--workload cmk needs --from-vault, --key and --to-vault");
  }
  migrate::CmkRunbookInput in;
  KEYPORT_ASSIGN_OR_RETURN(in.from, migrate::VaultRef::parse(o.from_vault));
  KEYPORT_ASSIGN_OR_RETURN(in.to, migrate::VaultRef::parse(o.to_vault));
  in.from.ca_file = o.from_ca_file;
  in.to.ca_file = o.to_ca_file;
  in.from.admin_token_file = o.from_token_file;
  in.to.admin_token_file = o.to_token_file;
  in.key = o.key;
  in.to_key = o.to_key;
  in.kty = o.kty;
  in.size = o.size;
  in.identity = o.identity;
  if (o.identity_token_file) {
    in.identity_token_file = *o.identity_token_file;
  }
  in.to_access_file = o.to_access;
  in.switch_command = o.switch_command;
  in.portable = o.portable;
  KEYPORT_ASSIGN_OR_RETURN(auto rb, migrate::build_cmk_runbook(in));
  if (g.json) {
    print_json(rb.to_json());
  } else {
    std::cout << rb.to_text() << std::flush;
  }
  return {};
}

Status run_plan(GlobalOptions& g, const MigrateOptions& o) {
  if (!o.workload.empty()) {
    if (o.workload != "cmk") {
      return make_error(ErrorCode::kInvalidArgument,
                        "--workload: cmk is the one workload runbook keyport knows");
    }
    return run_cmk_plan(g, o);
  }
  if (o.keyring.empty() || o.from.empty() || o.to.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "plan needs --keyring, --from and --to (or --workload cmk)");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto keyring, open_keyring(o.keyring, true));
  KEYPORT_ASSIGN_OR_RETURN(Keks k, open_keks(g, o));
  KEYPORT_ASSIGN_OR_RETURN(auto plan, migrate::plan_migration(*keyring, *k.from, *k.to));
  for (auto& step : plan.steps) {
    const std::string from_arg = "--from <FROM> --to <TO>";
    auto pos = step.find(from_arg);
    if (pos != std::string::npos) {
      step.replace(pos, from_arg.size(), "--from '" + o.from + "' --to '" + o.to + "'");
    }
  }
  if (g.json) {
    print_json(plan.to_json());
    return {};
  }
  std::cout << "keyring " << o.keyring << ": wrappings per KEK\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& u : plan.keks) {
    std::string role = u.kek == plan.from ? "<- from" : (u.kek == plan.to ? "<- to" : "");
    rows.push_back({u.kek.id, short_version(u.kek.version), u.alg, std::to_string(u.primary_keys),
                    std::to_string(u.data_keys), std::to_string(u.retired), role});
  }
  print_table({"KEK", "version", "alg", "primary", "data", "retired", ""}, rows);
  std::cout << "from: " << plan.from.describe() << " [" << plan.from_kind << ", "
            << k.from->algorithm() << "]\n"
            << "to:   " << plan.to.describe() << " [" << plan.to_kind << ", " << k.to->algorithm()
            << "]\n"
            << "path: " << plan.path
            << (plan.path == "in-token"
                    ? " (both KEKs are in one token: each key is unwrapped into a session object "
                      "and wrapped from it; it never leaves the HSM)\n"
                    : " (each key is unwrapped into host memory, held in SecretBytes, wrapped "
                      "under the new KEK and wiped)\n");
  std::cout << "under --from: " << plan.primary_keys << " primary keys, " << plan.data_keys
            << " data keys (" << plan.already_under_to
            << " of them already have a wrapping under --to: run keeps it, verify checks it)\n";
  std::cout << "old KEK portable: " << (plan.from_portability.portable ? "yes" : "no") << " - "
            << plan.from_portability.reason << "\n";
  if (plan.from_portability.portable) {
    std::cout << "  instead of re-wrapping, the same material can be imported at the "
                 "destination:\n";
    for (const auto& c : plan.from_portability.commands) {
      std::cout << "    " << c << "\n";
    }
  }
  if (plan.migration_id) {
    std::cout << "journal: migration " << *plan.migration_id << " is " << plan.migration_state
              << " (keyport migrate status)\n";
  }
  std::cout << "next:\n";
  for (const auto& s : plan.steps) {
    std::cout << "  " << s << "\n";
  }
  std::cout.flush();
  return {};
}

// What run and verify share: the checks of their options, the keyring, both KEKs, the progress
// display and Ctrl-C; `step` is run_migration or verify_migration.
template <typename Report>
Result<Report> run_with_progress(GlobalOptions& g, const MigrateOptions& o,
                                 Result<Report> (*step)(migrate::Keyring&,
                                                        const migrate::KeyEncryptionKey&,
                                                        const migrate::KeyEncryptionKey&,
                                                        const migrate::RunOptions&)) {
  KEYPORT_TRY(check_common(o));
  KEYPORT_ASSIGN_OR_RETURN(auto keyring, open_keyring(o.keyring, false));
  KEYPORT_ASSIGN_OR_RETURN(Keks k, open_keks(g, o));
  KEYPORT_ASSIGN_OR_RETURN(ProgressMode mode, parse_progress_mode(o.progress));
  ProgressDisplay bar(mode, "items");
  migrate::RunOptions ro;
  ro.jobs = o.jobs;
  ro.batch = o.batch;
  ro.on_progress = [&bar](const migrate::Progress& p) {
    bar.update({p.done, p.failed, p.total, p.done + p.failed});
  };
  std::atomic<bool> cancel{false};
  ro.cancel = &cancel;
  Result<Report> report = make_error(ErrorCode::kInternal, "not run");
  {
    CancelOnSignal signals(cancel);
    report = step(*keyring, *k.from, *k.to, ro);
  }
  bar.finish();
  return report;
}

Status run_run(GlobalOptions& g, const MigrateOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto report,
                           run_with_progress<migrate::RunReport>(g, o, &migrate::run_migration));
  if (g.json) {
    print_json(report.to_json());
  } else {
    std::cout << "migration " << report.migration_id << " (" << report.path << "): re-wrapped "
              << report.rewrapped << ", already done " << report.already_done << ", failed "
              << report.failed << " of " << report.total << " in " << report.seconds << " s ("
              << report.transactions << " transactions)\n";
    for (const auto& f : report.failures) {
      std::cout << "  failed " << f.key_id << ": " << f.message << "\n";
    }
    if (report.failed == 0 && !report.cancelled) {
      std::cout << "next: keyport migrate verify --keyring " << o.keyring << " --from '" << o.from
                << "' --to '" << o.to << "'\n";
    }
    std::cout.flush();
  }
  if (report.cancelled) {
    return make_error(ErrorCode::kIo, "interrupted; run the same command again to resume");
  }
  if (report.failed > 0) {
    return tl::unexpected(Error(ErrorCode::kInternal, std::to_string(report.failed) + " of " +
                                                          std::to_string(report.total) +
                                                          " items failed (keyport migrate status)")
                              .with_detail("partial"));
  }
  return {};
}

Status run_verify(GlobalOptions& g, const MigrateOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto report, run_with_progress<migrate::VerifyReport>(g, o, &migrate::verify_migration));
  if (g.json) {
    print_json(report.to_json());
  } else {
    std::cout << "migration " << report.migration_id << ": verified " << report.verified << " of "
              << report.total << " by " << report.method << ", mismatched " << report.mismatched
              << ", old wrapping unreadable " << report.failed << ", not migrated "
              << report.missing << " (" << report.seconds << " s)\n";
    for (const auto& f : report.failures) {
      std::cout << "  " << f.key_id << ": " << f.message << "\n";
    }
    if (report.all_verified()) {
      std::cout << "every item verified; next: keyport migrate retire --keyring " << o.keyring
                << " --from '" << o.from << "' --to '" << o.to << "' [--remove-old-wrappings]\n";
    }
    std::cout.flush();
  }
  if (report.cancelled) {
    return make_error(ErrorCode::kIo, "interrupted; run the same command again");
  }
  if (!report.all_verified()) {
    return tl::unexpected(
        Error(ErrorCode::kInternal, std::to_string(report.total - report.verified) + " of " +
                                        std::to_string(report.total) + " items did not verify")
            .with_detail("partial"));
  }
  return {};
}

Status run_retire(GlobalOptions& g, const MigrateOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto keyring, open_keyring(o.keyring, false));
  KEYPORT_ASSIGN_OR_RETURN(Keks k, open_keks(g, o));
  KEYPORT_ASSIGN_OR_RETURN(
      auto report, migrate::retire_migration(*keyring, k.from->id(), k.to->id(), o.remove_old));
  if (g.json) {
    print_json(report.to_json());
  } else {
    std::cout << "migration " << report.migration_id << " retired: " << report.items
              << " items; old wrappings " << (o.remove_old ? "removed: " : "marked retired: ")
              << (o.remove_old ? report.removed : report.retired) << "\n"
              << "note: " << report.note << std::endl;
  }
  return {};
}

Status run_status(GlobalOptions& g, const MigrateOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto keyring, open_keyring(o.keyring, true));
  KEYPORT_ASSIGN_OR_RETURN(auto list, migrate::migration_status(*keyring));
  KEYPORT_ASSIGN_OR_RETURN(auto usage, keyring->kek_usage());
  if (g.json) {
    Json m = Json::array();
    for (const auto& s : list) {
      m.push_back(s.to_json());
    }
    Json keks = Json::array();
    for (const auto& u : usage) {
      keks.push_back(Json{{"kek", {{"id", u.kek.id}, {"version", u.kek.version}}},
                          {"alg", u.alg},
                          {"primary_keys", u.primary_keys},
                          {"data_keys", u.data_keys},
                          {"retired", u.retired}});
    }
    print_json(Json{{"keyring", o.keyring}, {"keks", keks}, {"migrations", m}});
    return {};
  }
  if (list.empty()) {
    std::cout << "no migration in keyring " << o.keyring << "\n";
  }
  for (const auto& s : list) {
    std::cout << "migration " << s.id << ": " << s.state << "\n"
              << "  from " << s.from.describe() << "\n"
              << "  to   " << s.to.describe() << "\n"
              << "  items " << s.total << ": done " << s.done << ", verified " << s.verified
              << ", failed " << s.failed << ", mismatched " << s.mismatched << ", pending "
              << s.pending << "\n";
  }
  std::cout.flush();
  return {};
}

void add_keyring_option(CLI::App& cmd, MigrateOptions& o, bool required = true) {
  cmd.add_option("--keyring", o.keyring, "The keyring database (SQLite)")->required(required);
}

void add_kek_options(CLI::App& cmd, MigrateOptions& o, bool required = true) {
  cmd.add_option("--from", o.from,
                 "The old KEK: vault:DIR#NAME[/VERSION] or pkcs11:token=T;object=K")
      ->required(required);
  cmd.add_option("--to", o.to, "The new KEK (same syntax)")->required(required);
  cmd.add_option("--pin-source", o.pin_source,
                 "Where token PINs come from: env:VAR or file:PATH (else $KEYPORT_PIN, a prompt)");
  cmd.add_option("--to-pin-source", o.to_pin_source,
                 "PIN source for the --to token when it differs from --pin-source");
  cmd.add_option("--pin", o.pin, "User PIN on the command line (visible in the process list)");
}

void add_batch_options(CLI::App& cmd, MigrateOptions& o) {
  cmd.add_option("--jobs", o.jobs, "Parallel workers, each with its own PKCS#11 session (1)");
  cmd.add_option("--batch", o.batch, "Items per journal transaction (500)");
  cmd.add_option("--progress", o.progress, "auto (a bar on a terminal), bar, plain, none");
}

}  // namespace

void setup_migrate_commands(CLI::App& app, GlobalOptions& g) {
  auto* m = app.add_subcommand(
      "migrate",
      "Move the keys of a keyring from an old KEK to a new one: plan, run, verify, retire.\n"
      "KEK-SPEC: vault:DIR#NAME[/VERSION][?token=LABEL] (a simulated vault folder) or\n"
      "pkcs11:token=LABEL;object=KEY (an AES key or RSA key pair in a token).\n"
      "run is crash-safe and resumable: run it again after an interruption.");
  m->require_subcommand(1);
  m->footer(
      "Examples (token KEK to vault KEK):\n"
      "  K='--keyring app.keyring --from pkcs11:token=onprem;object=kek-2019 --to "
      "vault:./vault#kek-2025'\n"
      "  keyport migrate plan $K            # counts, path, is the old KEK portable?\n"
      "  keyport migrate run $K --jobs 2    # interrupt it at any time; run it again to resume\n"
      "  keyport migrate verify $K          # check values / keyed fingerprints, never keys\n"
      "  keyport migrate retire $K          # only once every item verified; keeps the old KEK\n"
      "  keyport migrate status --keyring app.keyring\n"
      "Exit codes: 4 wrong old KEK (nothing written), 5 nothing under --from, 7 retire refused\n"
      "(not all verified), 11 some items failed (the others went on). docs/migrate.md explains\n"
      "the journal.");
  auto o = std::make_shared<MigrateOptions>();

  auto* plan = m->add_subcommand(
      "plan", "Count what would move, the path it takes, and whether the old KEK is portable");
  add_keyring_option(*plan, *o, false);
  add_kek_options(*plan, *o, false);
  plan->add_option("--workload", o->workload,
                   "cmk: the runbook for a workload that uses a customer-managed key in a vault "
                   "(no keyring)");
  plan->add_option("--from-vault", o->from_vault,
                   "cmk: the vault the workload uses now: https://HOST:PORT or a folder");
  plan->add_option("--key", o->key, "cmk: the customer-managed key it uses now");
  plan->add_option("--to-vault", o->to_vault, "cmk: the destination vault (URL or folder)");
  plan->add_option("--to-key", o->to_key, "cmk: the new key's name (default: --key)");
  plan->add_option("--from-ca-file", o->from_ca_file, "cmk: CA certificate of --from-vault");
  plan->add_option("--to-ca-file", o->to_ca_file, "cmk: CA certificate of --to-vault");
  plan->add_option("--from-token-file", o->from_token_file,
                   "cmk: an administrator's token file for --from-vault");
  plan->add_option("--to-token-file", o->to_token_file,
                   "cmk: an administrator's token file for --to-vault");
  plan->add_option("--to-access", o->to_access,
                   "cmk: the destination's access file (default TO-DIR/access.json)");
  plan->add_option("--identity", o->identity,
                   "cmk: the workload identity's name in the access file (cmk-workload)");
  plan->add_option("--identity-token-file", o->identity_token_file,
                   "cmk: the file holding the workload's bearer token");
  plan->add_option("--switch-command", o->switch_command,
                   "cmk: how the workload is switched, with {vault} {ca_file} {key}");
  plan->add_option("--kty", o->kty, "cmk: the new key's type (RSA-HSM)");
  plan->add_option("--size", o->size, "cmk: the new key's size in bits (2048)");
  plan->add_flag("--portable", o->portable,
                 "cmk: the old key was imported with BYOK: import the same material instead");
  plan->footer(
      "Examples:\n"
      "  keyport migrate plan --keyring app.keyring --from 'pkcs11:token=onprem;object=kek' \\\n"
      "      --to 'vault:./vault#kek-2025'\n"
      "  keyport migrate plan --workload cmk --from-vault https://127.0.0.1:8443 --key app-cmk \\\n"
      "      --to-vault ./vault-west --identity-token-file app.token --json\n"
      "The cmk runbook prints the four steps (create or import the new key, grant the workload\n"
      "get/wrapKey/unwrapKey, switch the workload, keep the old key for backups) with commands.");
  add_json_flag(*plan, g);
  plan->callback(bind_command(g, [&g, o]() { return run_plan(g, *o); }));

  auto* run = m->add_subcommand(
      "run", "Re-wrap every key under the old KEK with the new one, beside the old wrapping");
  add_keyring_option(*run, *o);
  add_kek_options(*run, *o);
  add_batch_options(*run, *o);
  add_json_flag(*run, g);
  run->callback(bind_command(g, [&g, o]() { return run_run(g, *o); }));

  auto* verify = m->add_subcommand(
      "verify", "Prove each new wrapping holds the same key as the old (check values, never keys)");
  add_keyring_option(*verify, *o);
  add_kek_options(*verify, *o);
  add_batch_options(*verify, *o);
  add_json_flag(*verify, g);
  verify->callback(bind_command(g, [&g, o]() { return run_verify(g, *o); }));

  auto* retire = m->add_subcommand(
      "retire", "After every item verified: retire (or remove) the old wrappings; never the KEK");
  add_keyring_option(*retire, *o);
  add_kek_options(*retire, *o);
  retire->add_flag("--remove-old-wrappings", o->remove_old,
                   "Delete the old wrappings from the keyring (default: mark them retired)");
  add_json_flag(*retire, g);
  retire->callback(bind_command(g, [&g, o]() { return run_retire(g, *o); }));

  auto* status = m->add_subcommand("status", "The journal: every migration and its item counts");
  add_keyring_option(*status, *o);
  add_json_flag(*status, g);
  status->callback(bind_command(g, [&g, o]() { return run_status(g, *o); }));
}

}  // namespace keyport::cli
