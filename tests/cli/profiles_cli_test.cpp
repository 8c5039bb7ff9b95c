// SPDX-License-Identifier: Apache-2.0
// Service profiles end to end: `keyport profiles --json`, and --for on key generate, byok export,
// byok wrap and vault create-key refusing what a service does not take before anything is made
// (the token is counted with pkcs11-tool, the output folder listed, the vault listed).
#include <catch2/catch.hpp>

#include <openssl/pem.h>

#include <map>

#include "core/json.h"
#include "tests/cli/cli_rig.h"

using namespace keyport;
using namespace keyport::test::cli;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitBadInput = 3;
constexpr int kExitUnsupported = 8;

Json json_of(const Run& r) {
  INFO(r.describe());
  REQUIRE(r.rc == kExitOk);
  auto j = parse_json_strict(r.out);
  REQUIRE(j.has_value());
  return *j;
}

// Objects on the "onprem" token as pkcs11-tool (OpenSC, not keyport) lists them.
int token_objects(const Rig& rig) {
  Run r = rig.shell(std::string("pkcs11-tool --module ") + kSoftHsmModule +
                    " --token-label onprem --login --pin " + rig.pin() + " --list-objects");
  INFO(r.describe());
  REQUIRE(r.rc == 0);
  int n = 0;
  for (std::size_t pos = 0; (pos = r.out.find("Object; ", pos)) != std::string::npos; ++pos) {
    ++n;
  }
  return n;
}

void write_private_pem(EVP_PKEY& key, const fs::path& path) {
  ossl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "w"));
  REQUIRE(bio);
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
}

const std::string kKid = Rig::vault_kid();

}  // namespace

TEST_CASE("keyport profiles --json lists every profile with its key types and sources",
          "[cli][profiles]") {
  Rig rig("profiles-list");
  Json all = json_of(rig.keyport("profiles --json"));
  REQUIRE(all["profiles"].is_array());
  std::vector<std::string> names;
  for (const auto& p : all["profiles"]) {
    names.push_back(p["name"].get<std::string>());
    REQUIRE(p["sources"].is_array());
    CHECK_FALSE(p["sources"].empty());
    for (const auto& s : p["sources"]) {
      CHECK(s["url"].get<std::string>().rfind("https://learn.microsoft.com/", 0) == 0);
    }
  }
  CHECK(names == std::vector<std::string>{"generic", "storage-cmk", "sql-tde", "disk-encryption",
                                          "aip-tenant-key", "m365-customer-key"});
  Json sql = json_of(rig.keyport("profiles sql-tde --json"));
  REQUIRE(sql["profiles"].size() == 1);
  CHECK(sql["profiles"][0]["key_types"] == Json::array({"rsa-2048", "rsa-3072"}));
  CHECK(sql["profiles"][0]["vault"]["purge_protection"] == true);
  CHECK(json_of(rig.keyport("profiles m365-customer-key --json"))["profiles"][0]["vault"]
                                                                 ["two_vaults_in_two_regions"] ==
        true);

  Run text = rig.keyport("profiles storage-cmk");
  INFO(text.describe());
  CHECK(text.rc == kExitOk);
  CHECK_THAT(text.out, Contains("rsa-2048, rsa-3072, rsa-4096"));
  CHECK_THAT(text.out, Contains("purge protection"));

  Run unknown = rig.keyport("profiles storage");
  CHECK(unknown.rc == kExitBadInput);
  CHECK_THAT(unknown.err, Contains("storage-cmk"));
}

TEST_CASE("key generate --for refuses before the token gets a new object", "[cli][profiles]") {
  Rig rig("profiles-generate");
  const int before = token_objects(rig);

  Run ec = rig.keyport("key generate --token onprem --type ec-p256 --label ec --for storage-cmk");
  INFO(ec.describe());
  CHECK(ec.rc == kExitUnsupported);
  CHECK_THAT(ec.err, Contains("storage-cmk"));
  CHECK_THAT(ec.err, Contains("ec-p256"));
  CHECK_THAT(ec.err, Contains("https://learn.microsoft.com/azure/storage/"));

  Run big = rig.keyport("key generate --token onprem --type rsa-4096 --label big --for sql-tde");
  INFO(big.describe());
  CHECK(big.rc == kExitUnsupported);
  CHECK_THAT(big.err, Contains("2048 or 3072"));

  Run aes =
      rig.keyport("key generate --token onprem --type aes-256 --label aes --for aip-tenant-key");
  CHECK(aes.rc == kExitUnsupported);

  Run unknown = rig.keyport("key generate --token onprem --type rsa-2048 --label x --for nope");
  CHECK(unknown.rc == kExitBadInput);
  CHECK_THAT(unknown.err, Contains("m365-customer-key"));

  CHECK(token_objects(rig) == before);
  CHECK(rig.list_keys().empty());

  // What the service takes is made, and the JSON names the profile.
  Json ok = json_of(
      rig.keyport("key generate --token onprem --type rsa-3072 --label tde --for sql-tde --json"));
  CHECK(ok["profile"] == "sql-tde");
  CHECK(ok["type"] == "rsa-3072");
  CHECK(token_objects(rig) > before);
}

TEST_CASE("byok export --for refuses a key before any file is written", "[cli][profiles]") {
  Rig rig("profiles-export");
  auto kek = make_rsa_key(2048);
  write_public_pem(*kek, rig.dir() / "kek.pem");
  rig.generate("ec-p384", "app-ec");
  rig.generate("rsa-2048", "app-rsa");

  Run refused =
      rig.keyport("byok export --token onprem --key app-ec --kek kek.pem --kid " + kKid + " -o " +
                  sh_quote((rig.out_dir() / "app-ec.byok").string()) + " --for disk-encryption");
  INFO(refused.describe());
  CHECK(refused.rc == kExitUnsupported);
  CHECK_THAT(refused.err, Contains("app-ec"));
  CHECK_THAT(refused.err, Contains("nothing was exported"));
  CHECK_THAT(refused.err, Contains("https://learn.microsoft.com/azure/virtual-machines/"));
  CHECK(list_dir(rig.out_dir()).empty());

  // A batch with one refused key writes nothing at all, not even the report.
  Run batch = rig.keyport("byok export --token onprem --select 'app-*' --kek kek.pem --kid " +
                          kKid + " --out-dir " + sh_quote(rig.out_dir().string()) +
                          " --for storage-cmk --progress none");
  INFO(batch.describe());
  CHECK(batch.rc == kExitUnsupported);
  CHECK(list_dir(rig.out_dir()).empty());

  Json ok = json_of(rig.keyport(
      "byok export --token onprem --key app-rsa --kek kek.pem --kid " + kKid + " -o " +
      sh_quote((rig.out_dir() / "app-rsa.byok").string()) + " --for disk-encryption --json"));
  CHECK(fs::exists(rig.out_dir() / "app-rsa.byok"));
  CHECK(ok["key"]["type"] == "rsa-2048");
}

TEST_CASE("byok wrap --for refuses a key file before wrapping", "[cli][profiles]") {
  Rig rig("profiles-wrap");
  auto kek = make_rsa_key(2048);
  write_public_pem(*kek, rig.dir() / "kek.pem");
  auto ec = make_ec_key();
  write_private_pem(*ec, rig.dir() / "ec.pem");
  auto rsa3072 = make_rsa_key(3072);
  write_private_pem(*rsa3072, rig.dir() / "rsa3072.pem");
  auto rsa2048 = make_rsa_key(2048);
  write_private_pem(*rsa2048, rig.dir() / "rsa2048.pem");
  auto wrap = [&](const std::string& key, const std::string& profile) {
    return rig.keyport("byok wrap --key " + key + " --kek kek.pem --kid " + kKid + " -o " +
                       sh_quote((rig.out_dir() / (key + ".byok")).string()) + " --for " + profile);
  };

  Run ec_run = wrap("ec.pem", "m365-customer-key");
  INFO(ec_run.describe());
  CHECK(ec_run.rc == kExitUnsupported);
  CHECK_THAT(ec_run.err, Contains("https://learn.microsoft.com/purview/customer-key-set-up"));
  Run big = wrap("rsa3072.pem", "aip-tenant-key");
  INFO(big.describe());
  CHECK(big.rc == kExitUnsupported);
  CHECK_THAT(big.err, Contains("2048"));
  CHECK(list_dir(rig.out_dir()).empty());

  Run ok = wrap("rsa2048.pem", "aip-tenant-key");
  INFO(ok.describe());
  CHECK(ok.rc == kExitOk);
  CHECK(fs::exists(rig.out_dir() / "rsa2048.pem.byok"));
  CHECK_THAT(ok.err, Contains("decrypt"));  // the note: what the service's identity needs
}

TEST_CASE("vault create-key --for refuses before creating and reports the vault settings",
          "[cli][profiles]") {
  Rig rig("profiles-vault");
  const std::string where = "--data " + sh_quote((rig.dir() / "vault").string());
  json_of(rig.keyport("vault init " + where + " --flavor key-vault --name contoso --json"));

  Run ec = rig.keyport("vault create-key " + where + " --name ec --kty EC-HSM --for storage-cmk");
  INFO(ec.describe());
  CHECK(ec.rc == kExitUnsupported);
  Run ops = rig.keyport("vault create-key " + where +
                        " --name k --kty RSA-HSM --ops sign verify --for sql-tde");
  INFO(ops.describe());
  CHECK(ops.rc == kExitUnsupported);
  CHECK_THAT(ops.err, Contains("wrapKey"));
  Run kek = rig.keyport("vault create-key " + where + " --name KEK --kek --for generic");
  CHECK(kek.rc == kExitBadInput);
  CHECK(json_of(rig.keyport("vault list " + where + " --json"))["value"].empty());

  Json made = json_of(rig.keyport("vault create-key " + where +
                                  " --name tde --kty RSA-HSM --size 3072 --for sql-tde --json"));
  CHECK(made["key"]["key_ops"] == Json::array({"wrapKey", "unwrapKey"}));
  REQUIRE(made["profile"]["vault_checks"].is_array());
  std::map<std::string, std::string> outcome;
  for (const auto& c : made["profile"]["vault_checks"]) {
    outcome[c["requirement"].get<std::string>()] = c["outcome"].get<std::string>();
  }
  // The simulated vault soft-deletes (90 days) and lets keys be purged: no purge protection.
  CHECK(outcome["soft-delete"] == "met");
  CHECK(outcome["purge-protection"] == "not-met");
  CHECK(json_of(rig.keyport("vault list " + where + " --json"))["value"].size() == 1);
}
