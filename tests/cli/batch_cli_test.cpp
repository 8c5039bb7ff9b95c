// SPDX-License-Identifier: Apache-2.0
// keyport byok export in batch and multi-target modes, end to end.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "core/json.h"
#include "tests/cli/cli_rig.h"
#include "tests/support/support.h"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using keyport::Json;
using keyport::parse_json_strict;
using keyport::test::cli::Rig;
using keyport::test::cli::Run;
using keyport::test::cli::sh_quote;

std::vector<Json> report_lines(const fs::path& p) {
  std::vector<Json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    auto j = parse_json_strict(line);
    REQUIRE(j.has_value());
    out.push_back(*j);
  }
  return out;
}

}  // namespace

TEST_CASE(
    "a selected batch with one key that cannot leave exits 11 and reports it, and a re-run skips "
    "the rest",
    "[cli][batch]") {
  Rig rig("batch-select");
  for (int i = 0; i < 12; ++i)
    rig.generate("ec-p256", "app-" + std::to_string(i));
  Run nonx = rig.shell(
      "pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label onprem --login --pin " +
      rig.pin() + " --keypairgen --key-type EC:prime256v1 --label app-legacy");
  REQUIRE(nonx.rc == 0);
  auto kek = keyport::test::cli::make_rsa_key(2048);
  keyport::test::cli::write_public_pem(*kek, rig.dir() / "kek.pem");
  std::string args = "byok export --token onprem --select 'app-*' --kek kek.pem --kid " +
                     Rig::vault_kid() + " --out-dir out --jobs 2 --progress plain";
  Run first = rig.keyport(args + " --json");
  INFO(first.describe());
  CHECK(first.rc == 11);
  auto doc = parse_json_strict(first.out);
  REQUIRE(doc.has_value());
  CHECK((*doc)["summary"]["written"] == 12);
  CHECK((*doc)["summary"]["failed"] == 1);
  CHECK_THAT(first.err, Contains("progress: 13/13"));
  auto lines = report_lines(rig.out_dir() / "keyport-export-report.jsonl");
  REQUIRE(lines.size() == 13);
  std::size_t failed = 0;
  for (const auto& l : lines) {
    if (l["outcome"] == "failed") {
      ++failed;
      CHECK(l["key"] == "app-legacy");
      CHECK_THAT(l["error"].get<std::string>(), Contains("not extractable"));
    }
  }
  CHECK(failed == 1);
  CHECK(fs::exists(rig.out_dir() / "app-0.byok"));
  CHECK_FALSE(fs::exists(rig.out_dir() / "app-legacy.byok"));

  Run second = rig.keyport(args + " --json");
  INFO(second.describe());
  CHECK(second.rc == 11);  // the legacy key still cannot leave
  auto doc2 = parse_json_strict(second.out);
  REQUIRE(doc2.has_value());
  CHECK((*doc2)["summary"]["skipped"] == 12);
  CHECK((*doc2)["summary"]["written"] == 0);
}

TEST_CASE("a --select URI narrows by type=, and refuses id=, other types and another token",
          "[cli][batch]") {
  Rig rig("batch-select-uri");
  rig.generate("ec-p256", "app-ec");
  rig.generate("aes-256", "app-aes");
  auto kek = keyport::test::cli::make_rsa_key(2048);
  keyport::test::cli::write_public_pem(*kek, rig.dir() / "kek.pem");
  std::string tail = " --kek kek.pem --kid " + Rig::vault_kid() + " --out-dir out --json";
  // AES keys go to a Managed HSM only (Key Vault refuses oct keys).
  Run secret = rig.keyport(
      "byok export --token onprem --select 'pkcs11:token=onprem;object=app-*;type=secret-key' "
      "--kek kek.pem --kid " +
      Rig::mhsm_kid() + " --out-dir out --json");
  INFO(secret.describe());
  CHECK(secret.rc == 0);
  CHECK(fs::exists(rig.out_dir() / "app-aes.byok"));
  CHECK_FALSE(fs::exists(rig.out_dir() / "app-ec.byok"));
  auto doc = parse_json_strict(secret.out);
  REQUIRE(doc.has_value());
  CHECK((*doc)["summary"]["written"] == 1);

  Run priv =
      rig.keyport("byok export --token onprem --select 'pkcs11:object=app-*;type=private'" + tail);
  INFO(priv.describe());
  CHECK(priv.rc == 0);
  CHECK(fs::exists(rig.out_dir() / "app-ec.byok"));

  Run pub =
      rig.keyport("byok export --token onprem --select 'pkcs11:object=app-*;type=public'" + tail);
  CHECK(pub.rc == 3);
  CHECK_THAT(pub.err, Contains("type=public cannot be exported"));
  Run id = rig.keyport("byok export --token onprem --select 'pkcs11:object=app-*;id=%01'" + tail);
  CHECK(id.rc == 3);
  CHECK_THAT(id.err, Contains("use --key"));
  Run other = rig.keyport(
      "byok export --token onprem --select 'pkcs11:token=elsewhere;object=app-*'" + tail);
  CHECK(other.rc == 3);
  CHECK_THAT(other.err, Contains("different token"));
}

TEST_CASE("a CSV manifest exports each key to its own KEK and names the failing line",
          "[cli][batch]") {
  Rig rig("batch-manifest");
  rig.generate("ec-p384", "web");
  rig.generate("rsa-2048", "db");
  rig.generate("aes-256", "blob");
  auto kek1 = keyport::test::cli::make_rsa_key(2048);
  auto kek2 = keyport::test::cli::make_rsa_key(3072);
  keyport::test::cli::write_public_pem(*kek1, rig.dir() / "kv.pem");
  keyport::test::cli::write_public_pem(*kek2, rig.dir() / "mhsm.pem");
  keyport::test::cli::write_text(rig.dir() / "keys.csv",
                                 "key,kek,kid,output\n"
                                 "web,kv.pem," +
                                     Rig::vault_kid() +
                                     ",web-kv.byok\n"
                                     "db,kv.pem," +
                                     Rig::vault_kid() +
                                     ",\n"
                                     "blob,mhsm.pem," +
                                     Rig::mhsm_kid() +
                                     ",blob.byok\n"
                                     "blob,kv.pem," +
                                     Rig::vault_kid() +
                                     ",blob-kv.byok\n"
                                     "missing,kv.pem," +
                                     Rig::vault_kid() + ",\n");
  Run r = rig.keyport("byok export --token onprem --manifest keys.csv --out-dir out --json");
  INFO(r.describe());
  CHECK(r.rc == 11);
  auto doc = parse_json_strict(r.out);
  REQUIRE(doc.has_value());
  CHECK((*doc)["summary"]["written"] == 3);
  CHECK((*doc)["summary"]["failed"] == 2);
  CHECK(fs::exists(rig.out_dir() / "web-kv.byok"));
  CHECK(fs::exists(rig.out_dir() / "blob.byok"));
  CHECK_FALSE(fs::exists(rig.out_dir() / "blob-kv.byok"));  // AES is refused for Key Vault
  bool saw_missing = false, saw_aes = false;
  for (const auto& item : (*doc)["items"]) {
    if (item["outcome"] != "failed")
      continue;
    std::string err = item["error"];
    saw_missing = saw_missing || (item["key"] == "missing" &&
                                  err.find("no private or secret key") != std::string::npos);
    saw_aes = saw_aes || (item["key"] == "blob" && err.find("Managed HSM") != std::string::npos);
  }
  CHECK(saw_missing);
  CHECK(saw_aes);
  // The RSA key without an output column got a name of its own.
  bool db_written = false;
  for (const auto& e : fs::directory_iterator(rig.out_dir())) {
    db_written = db_written || e.path().filename().string().rfind("db.", 0) == 0;
  }
  CHECK(db_written);
}

TEST_CASE("one key to several vaults writes a file per vault and -o is refused there",
          "[cli][batch]") {
  Rig rig("multi-target");
  rig.generate("ec-p256", "portable");
  auto kek = keyport::test::cli::make_rsa_key(2048);
  keyport::test::cli::write_public_pem(*kek, rig.dir() / "kek.pem");
  std::string v = keyport::test::cli::kKidVersion;
  std::string pairs = " --kek kek.pem --kid https://prod-weu.vault.azure.net/keys/KEK/" + v +
                      " --kek kek.pem --kid https://prod-neu.vault.azure.net/keys/KEK/" + v +
                      " --kek kek.pem --kid https://central.managedhsm.azure.net/keys/KEK/" + v;
  Run r = rig.keyport("byok export --token onprem --key portable --out-dir out" + pairs);
  INFO(r.describe());
  REQUIRE(r.rc == 0);
  for (const char* name :
       {"portable.prod-weu.byok", "portable.prod-neu.byok", "portable.central.byok"}) {
    CHECK(fs::exists(rig.out_dir() / name));
  }
  Run bad = rig.keyport("byok export --token onprem --key portable -o x.byok" + pairs);
  CHECK(bad.rc == 3);
  CHECK_THAT(bad.err, Contains("--out-dir"));
  Run unpaired =
      rig.keyport("byok export --token onprem --key portable --kek kek.pem --kek kek.pem --kid " +
                  Rig::vault_kid());
  CHECK(unpaired.rc == 3);
  CHECK_THAT(unpaired.err, Contains("one --kid per --kek"));
}
