// SPDX-License-Identifier: Apache-2.0
// The customer-managed-key runbook (`keyport migrate plan --workload cmk`), end to end: a sample
// workload (tests/migrate/cmk_workload.cpp, which knows only the vault REST API) keeps records
// under a CMK in one `keyport vault serve`; the runbook's commands, run as printed by a shell, move
// it to a key in a second `keyport vault serve`. Afterwards every record written before and after
// the switch reads back, the workload no longer needs the old vault, the old key still opens a
// backup taken before the switch, and the workload's identity got nothing beyond
// get/wrapKey/unwrapKey.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/file_io.h"
#include "core/random.h"
#include "migrate/cmk_runbook.h"
#include "tests/migrate/migrate_rig.h"
#include "tests/vault/rest_rig.h"

extern char** environ;

using namespace keyport;
namespace fs = std::filesystem;

namespace {

struct Shell {
  int rc = -1;
  std::string out;
  std::string err;
};

// Runs `command` with /bin/sh, the keyport binary's folder first on PATH.
Shell sh(const std::string& command, const fs::path& dir) {
  static int n = 0;
  ++n;
  const fs::path out = dir / ("sh-" + std::to_string(n) + ".out");
  const fs::path err = dir / ("sh-" + std::to_string(n) + ".err");
  std::vector<std::string> env = test::keyport_env();
  const std::string bin_dir = fs::path(KEYPORT_CLI_BINARY).parent_path().string();
  bool has_path = false;
  for (auto& e : env) {
    if (e.rfind("PATH=", 0) == 0) {
      e = "PATH=" + bin_dir + ":" + e.substr(5);
      has_path = true;
    }
  }
  if (!has_path) {
    env.push_back("PATH=" + bin_dir + ":/usr/bin:/bin");
  }
  std::vector<char*> envp;
  for (auto& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  std::string c = command;
  char sh_path[] = "/bin/sh";
  char dash_c[] = "-c";
  char* argv[] = {sh_path, dash_c, c.data(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, sh_path, &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(spawned == 0);
  auto child = test::wait_child(pid);
  Shell s;
  s.rc = child.rc;
  s.out = test::slurp(out);
  s.err = test::slurp(err);
  return s;
}

std::string q(const std::string& s) {
  return "'" + s + "'";
}

// Adds the workload's identity to an access file, as whoever set the workload up did.
void grant(const fs::path& access, const std::string& token, const std::string& name) {
  auto text = read_text_file(access, 1u << 20);
  REQUIRE_OK(text);
  auto j = parse_json_strict(*text);
  REQUIRE_OK(j);
  (*j)["tokens"][token] = Json{{"name", name}, {"permissions", {"get", "wrapKey", "unwrapKey"}}};
  WriteOptions w;
  w.overwrite = true;
  w.mode = 0600;
  REQUIRE_OK(write_file_atomic(access, j->dump(2), w));
}

}  // namespace

TEST_CASE("the cmk runbook moves a sample workload between two vault servers with no record lost",
          "[migrate][cli][vault]") {
  const fs::path dir = test::make_scratch_subdir("cmk");
  const std::string workload = KEYPORT_CMK_WORKLOAD;
  test::ServerProcess src(dir / "src", {"--name", "src"});
  test::ServerProcess dst(dir / "dst", {"--name", "dst"});
  src.start();
  dst.start();
  INFO("source " << src.url() << ", destination " << dst.url());

  // The workload's identity: a bearer token in a file, known to the source vault.
  const fs::path token_file = dir / "workload.token";
  const std::string token = hex_encode(random_bytes(24));
  WriteOptions w;
  w.mode = 0600;
  REQUIRE_OK(write_file_atomic(token_file, token + "\n", w));
  grant(dir / "src" / "access.json", token, "cmk-workload");

  const std::string src_admin = " --url " + src.url() + " --ca-file " + src.ca_file().string() +
                                " --token-file " + src.token_file().string();
  auto created = sh("keyport vault create-key" + src_admin +
                        " --name app-cmk --kty RSA-HSM --size 2048 --ops wrapKey unwrapKey",
                    dir);
  INFO(created.out << created.err);
  REQUIRE(created.rc == 0);

  // The workload starts on the source vault and writes records; a backup is taken.
  const fs::path state = dir / "state";
  const std::string as_workload =
      " --state " + state.string() + " --token-file " + token_file.string();
  auto init = sh(q(workload) + " init" + as_workload + " --vault " + src.url() + " --ca " +
                     src.ca_file().string() + " --key app-cmk",
                 dir);
  INFO(init.out << init.err);
  REQUIRE(init.rc == 0);
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 12; ++i) {
    const std::string id = "before-" + std::to_string(i);
    expected[id] = "record " + std::to_string(i) + " written under the old key";
    auto put =
        sh(q(workload) + " put" + as_workload + " --id " + id + " --text " + q(expected[id]), dir);
    INFO(put.err);
    REQUIRE(put.rc == 0);
  }
  const fs::path backup = dir / "backup-before-switch";
  fs::copy(state, backup, fs::copy_options::recursive);

  // Before the runbook, the workload's token means nothing to the destination.
  auto refused =
      sh("keyport vault get --url " + dst.url() + " --ca-file " + dst.ca_file().string() +
             " --token-file " + token_file.string() + " --name app-cmk",
         dir);
  CHECK(refused.rc != 0);

  // The runbook.
  const std::string switch_cmd =
      q(workload) + " switch-key" + as_workload + " --vault {vault} --ca {ca_file} --key {key}";
  auto plan = test::run_keyport({"migrate",
                                 "plan",
                                 "--workload",
                                 "cmk",
                                 "--from-vault",
                                 src.url(),
                                 "--from-ca-file",
                                 src.ca_file().string(),
                                 "--from-token-file",
                                 src.token_file().string(),
                                 "--key",
                                 "app-cmk",
                                 "--to-vault",
                                 dst.url(),
                                 "--to-ca-file",
                                 dst.ca_file().string(),
                                 "--to-token-file",
                                 dst.token_file().string(),
                                 "--to-access",
                                 (dir / "dst" / "access.json").string(),
                                 "--to-key",
                                 "app-cmk-west",
                                 "--identity",
                                 "cmk-workload",
                                 "--identity-token-file",
                                 token_file.string(),
                                 "--switch-command",
                                 switch_cmd,
                                 "--json"});
  INFO(plan.out << plan.err);
  REQUIRE(plan.rc == 0);
  auto rb = parse_json_strict(plan.out);
  REQUIRE_OK(rb);
  REQUIRE((*rb)["steps"].size() == 4);
  // The token never appears in the runbook.
  CHECK(plan.out.find(token) == std::string::npos);
  // The same runbook as text names the four steps.
  auto text = test::run_keyport({"migrate", "plan", "--workload", "cmk", "--from-vault", src.url(),
                                 "--key", "app-cmk", "--to-vault", dst.url()});
  REQUIRE(text.rc == 0);
  CHECK(text.out.find("1. Create the new key") != std::string::npos);
  CHECK(text.out.find("4. Keep the old key") != std::string::npos);

  // Steps 1 to 3, every command as printed.
  for (int step = 0; step < 3; ++step) {
    for (const auto& c : (*rb)["steps"][step]["commands"]) {
      auto r = sh(c.get<std::string>(), dir);
      INFO("step " << step + 1 << ": " << c.get<std::string>() << "\n" << r.out << r.err);
      REQUIRE(r.rc == 0);
    }
  }
  // The workload now names the new key of the destination.
  auto config = parse_json_strict(test::slurp(state / "config.json"));
  REQUIRE_OK(config);
  CHECK((*config)["kid"].get<std::string>().find("/keys/app-cmk-west/") != std::string::npos);
  CHECK((*config)["vault"] == dst.url());

  // It goes on writing, and reads everything, old and new.
  for (int i = 0; i < 5; ++i) {
    const std::string id = "after-" + std::to_string(i);
    expected[id] = "record " + std::to_string(i) + " written under the new key";
    auto put =
        sh(q(workload) + " put" + as_workload + " --id " + id + " --text " + q(expected[id]), dir);
    REQUIRE(put.rc == 0);
  }
  auto dump = sh(q(workload) + " dump" + as_workload, dir);
  INFO(dump.err);
  REQUIRE(dump.rc == 0);
  auto all = parse_json_strict(dump.out);
  REQUIRE_OK(all);
  CHECK(all->size() == expected.size());
  for (const auto& [id, value] : expected) {
    INFO(id);
    REQUIRE(all->contains(id));
    CHECK((*all)[id] == value);
  }

  // Step 4: the old key is still there, and it still opens the backup taken before the switch.
  for (const auto& c : (*rb)["steps"][3]["commands"]) {
    auto r = sh(c.get<std::string>(), dir);
    INFO(c.get<std::string>() << "\n" << r.out << r.err);
    CHECK(r.rc == 0);
  }
  auto old_backup =
      sh(q(workload) + " dump --state " + backup.string() + " --token-file " + token_file.string(),
         dir);
  INFO(old_backup.err);
  REQUIRE(old_backup.rc == 0);
  auto backed = parse_json_strict(old_backup.out);
  REQUIRE_OK(backed);
  CHECK(backed->size() == 12);
  CHECK((*backed)["before-3"] == expected["before-3"]);

  // The workload's identity got get/wrapKey/unwrapKey on the destination and nothing else.
  auto create_as_workload =
      sh("keyport vault create-key --url " + dst.url() + " --ca-file " + dst.ca_file().string() +
             " --token-file " + token_file.string() + " --name not-allowed --kty RSA-HSM",
         dir);
  CHECK(create_as_workload.rc != 0);

  // With the source vault gone, the current state still reads in full; the backup does not.
  CHECK(src.stop() == 0);
  auto after_stop = sh(q(workload) + " dump" + as_workload, dir);
  REQUIRE(after_stop.rc == 0);
  auto still = parse_json_strict(after_stop.out);
  REQUIRE_OK(still);
  CHECK(still->size() == expected.size());
  auto backup_without_old =
      sh(q(workload) + " dump --state " + backup.string() + " --token-file " + token_file.string(),
         dir);
  CHECK(backup_without_old.rc != 0);
  CHECK(dst.stop() == 0);
}

TEST_CASE("the cmk runbook refuses a move to the same key and names every step",
          "[migrate][unit]") {
  migrate::CmkRunbookInput in;
  auto a = migrate::VaultRef::parse("https://127.0.0.1:8443/");
  REQUIRE_OK(a);
  CHECK(a->url == "https://127.0.0.1:8443");
  CHECK_ERROR_CODE(migrate::VaultRef::parse("http://127.0.0.1:8443"), ErrorCode::kInvalidArgument);
  in.from = *a;
  in.to = *a;
  in.key = "app";
  CHECK_ERROR_CODE(migrate::build_cmk_runbook(in), ErrorCode::kInvalidArgument);
  in.to_key = "bad name!";
  CHECK_ERROR_CODE(migrate::build_cmk_runbook(in), ErrorCode::kInvalidArgument);
  in.to_key = "app-2";
  in.to.dir = "/srv/vault-west";
  in.to.url.clear();
  in.portable = true;
  auto rb = migrate::build_cmk_runbook(in);
  REQUIRE_OK(rb);
  REQUIRE(rb->steps.size() == 4);
  // Portable: the same material is imported (KEK, download, byok export, import).
  CHECK(rb->steps[0].commands.size() == 4);
  CHECK(rb->steps[0].commands[2].find("keyport byok export") == 0);
  CHECK(rb->steps[1].commands[0].find("/srv/vault-west/access.json") != std::string::npos);
  CHECK(rb->steps[1].commands[0].find("\"wrapKey\", \"unwrapKey\"") != std::string::npos);
  CHECK(rb->steps[3].notes[0].find("do not delete") == 0);
}
