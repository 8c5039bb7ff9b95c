// SPDX-License-Identifier: Apache-2.0
// keyport against openCryptoki 3.8.1's soft token (Debian's opencryptoki), started by the test
// in a private mount namespace (tests/modules/opencryptoki.sh: its own pkcsslotd, stopped by
// PID; the system's openCryptoki folders are not touched). The soft token makes RSA and AES keys
// and does RSA-OAEP, but has no AES key wrap of any kind and no EC: keys generate and list,
// exports are refused clearly (exit 8, no file), and EC is refused before anything is created.
#include <catch2/catch.hpp>

#include "cli/exit_codes.h"
#include "tests/cli/cli_rig.h"
#include "tests/support/oracle.h"
#include "tests/support/support.h"

using namespace keyport;
using keyport::test::cli::sh_quote;
namespace fs = std::filesystem;

namespace {

struct Step {
  int rc = -1;
  std::string out;
  std::string err;
};

Step step(const fs::path& work, const std::string& name) {
  Step s;
  const fs::path base = work / "steps" / name;
  REQUIRE(fs::exists(base.string() + ".rc"));
  s.rc = std::stoi(test::cli::read_text(base.string() + ".rc"));
  s.out = test::cli::read_text(base.string() + ".out");
  s.err = test::cli::read_text(base.string() + ".err");
  return s;
}

Json json_of(const Step& s) {
  INFO(s.out << s.err);
  REQUIRE(s.rc == 0);
  auto j = parse_json_strict(s.out);
  REQUIRE(j.has_value());
  return *j;
}

}  // namespace

TEST_CASE(
    "openCryptoki soft token: RSA and AES keys generate and list, exports and EC are refused "
    "with exit 8 and leave nothing",
    "[modules][opencryptoki]") {
  const fs::path work = test::make_scratch_subdir("opencryptoki");
  auto kek = test::oracle::rsa_keygen(2048);
  test::cli::write_text(work / "kek.pem", test::oracle::spki_pem(kek.get()));
  std::string log;
  const std::string cmd =
      "unshare --mount --propagation private bash " +
      sh_quote((test::source_dir() / "tests/modules/opencryptoki.sh").string()) + " " +
      sh_quote(KEYPORT_CLI_BINARY) + " " + sh_quote(work.string()) + " " +
      sh_quote((work / "kek.pem").string());
  const int rc = test::run_command(cmd, &log);
  INFO(cmd << "\n"
           << log
           << "\n(needs root, mount namespaces and Debian's opencryptoki: scripts/setup.sh "
              "installs it)");
  REQUIRE(rc == 0);

  const Json tokens = json_of(step(work, "list-tokens"));
  bool found = false;
  for (const auto& t : tokens["tokens"]) {
    if (t.value("label", "") == "keyport-ock") {
      found = true;
      CHECK(t.value("uri", "").find("%00") == std::string::npos);
    }
  }
  CHECK(found);

  const Json info = json_of(step(work, "info"));
  INFO(info.dump(2));
  CHECK(info["self_tests"]["rfc5649_candidates"].empty());
  CHECK(info["self_tests"]["oaep_hashes"]["SHA-256"]["rsa_oaep"] == "passed");
  CHECK(info["byok_verdict"]["CKM_RSA_AES_KEY_WRAP"]["possible"] == false);
  for (const auto& row : info["key_types"]) {
    const std::string type = row["key_type"];
    if (type.rfind("ec-", 0) == 0)
      CHECK(row["generate"] != "yes");
    else
      CHECK(row["generate"] == "yes");
    CHECK(row["key_vault"]["export"] == false);
    CHECK(row["managed_hsm"]["export"] == false);
  }

  const Json rsa = json_of(step(work, "gen-rsa"));
  CHECK(rsa.value("type", "") == "rsa-2048");
  json_of(step(work, "gen-aes"));
  const Step ec = step(work, "gen-ec");
  INFO(ec.err);
  CHECK(ec.rc == cli::kExitUnsupported);
  CHECK(ec.err.find("CKM_EC_KEY_PAIR_GEN") != std::string::npos);

  const Json keys = json_of(step(work, "list"));
  CHECK(keys["keys"].size() == 2);

  const Step exported = step(work, "export");
  INFO(exported.err);
  CHECK(exported.rc == cli::kExitUnsupported);
  CHECK(exported.err.find("RFC 5649") != std::string::npos);
  CHECK(test::cli::list_dir(work / "out").empty());
  CHECK(json_of(step(work, "list-after"))["keys"].size() == 2);
}
