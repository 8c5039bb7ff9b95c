// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of the keyport binary against a private SoftHSM token: exit codes, messages,
// JSON output, and .byok files opened with OpenSSL alone (the KEK's private key never goes near
// keyport).
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>
#include <string>

#include "core/encoding.h"
#include "core/json.h"
#include "core/ossl.h"
#include "tests/cli/cli_rig.h"
#include "tests/support/support.h"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using keyport::Bytes;
using keyport::Json;
using keyport::parse_json_strict;
using keyport::ossl::UniquePtr;
using keyport::test::cli::Rig;
using keyport::test::cli::Run;
using keyport::test::cli::RunOptions;
using keyport::test::cli::sh_quote;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitBadInput = 3;
constexpr int kExitNotFound = 5;
constexpr int kExitExists = 6;
constexpr int kExitAuth = 7;
constexpr int kExitUnsupported = 8;

const std::string kAllTypes[] = {"rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384",
                                 "ec-p521",  "ec-p256k", "aes-128",  "aes-192", "aes-256"};

Json parse_stdout(const Run& r) {
  INFO(r.describe());
  auto j = parse_json_strict(r.out);
  if (!j) {
    INFO(j.error().describe());
  }
  REQUIRE(j.has_value());
  return *j;
}

const Json* find_key(const Json& keys, const std::string& label) {
  for (const auto& k : keys) {
    if (k.value("label", "") == label) {
      return &k;
    }
  }
  return nullptr;
}

// A failed command: its exit code, a distinctive part of its message on stderr, nothing on
// stdout, and the output folder holding exactly `expected_files` (no output file, no
// temporary .NAME.tmp-* file).
void check_failure(const Rig& rig, const Run& r, int code, const std::string& needle,
                   const std::set<std::string>& expected_files = {}) {
  INFO(r.describe());
  CHECK(r.rc == code);
  CHECK_THAT(r.err, Contains(needle));
  CHECK(r.out.empty());
  CHECK(keyport::test::cli::list_dir(rig.out_dir()) == expected_files);
}

// A test rig with a KEK pair on disk: kek.pem (public, SPKI PEM) and the private key in memory.
struct ExportRig {
  explicit ExportRig(const std::string& stem, unsigned kek_bits = 2048)
      : rig(stem), kek(keyport::test::cli::make_rsa_key(kek_bits)) {
    kek_pem = rig.dir() / "kek.pem";
    keyport::test::cli::write_public_pem(*kek, kek_pem);
  }

  // `keyport byok export` of `key` to out/<file>, with --json.
  Run export_key(const std::string& key, const std::string& kid, const std::string& file,
                 const std::string& extra = "", const RunOptions* options = nullptr) const {
    return export_with_kek(key, kek_pem, kid, file, extra, options);
  }
  Run export_with_kek(const std::string& key, const fs::path& kek_file, const std::string& kid,
                      const std::string& file, const std::string& extra = "",
                      const RunOptions* options = nullptr) const {
    std::string args = "byok export --token onprem --key " + sh_quote(key) + " --kek " +
                       sh_quote(kek_file.string()) + " --kid " + sh_quote(kid) + " -o " +
                       sh_quote(out(file).string()) + " --json";
    if (!extra.empty()) {
      args += " " + extra;
    }
    return options != nullptr ? rig.keyport(args, *options) : rig.keyport(args);
  }
  fs::path out(const std::string& file) const { return rig.out_dir() / file; }

  Rig rig;
  UniquePtr<EVP_PKEY> kek;
  fs::path kek_pem;
};

// Checks the --json report of a successful export and the file it names; returns the opened
// ciphertext.
keyport::test::cli::Opened check_export(const ExportRig& x, const Run& r, const fs::path& file,
                                        const std::string& kid, const std::string& type,
                                        const std::string& target) {
  INFO(r.describe());
  REQUIRE(r.rc == kExitOk);
  const Json report = parse_stdout(r);
  CHECK(report.value("file", "") == file.string());
  CHECK(report.value("enc", "") == "CKM_RSA_AES_KEY_WRAP");
  CHECK(report.value("strategy", "") == "composite");
  CHECK(report.value("kid", "") == kid);
  CHECK(report.value("target", "") == target);
  REQUIRE(report.contains("key"));
  CHECK(report["key"].value("type", "") == type);
  REQUIRE(report.contains("warnings"));
  CHECK(report["warnings"].is_array());
  // The only warnings are SoftHSM 2.6 quirks that touch the file (docs/quirks.md).
  for (const auto& w : report["warnings"])
    CHECK_THAT(w.get<std::string>(), Contains("module quirk softhsm-"));

  // Exactly the one file: no temporary file left next to it.
  CHECK(keyport::test::cli::list_dir(x.rig.out_dir()) ==
        std::set<std::string>{file.filename().string()});
  const std::string text = keyport::test::cli::read_text(file);
  CHECK(report.value("bytes", std::size_t{0}) == text.size());
  auto parsed = parse_json_strict(text);
  REQUIRE(parsed.has_value());
  const Json& byok = *parsed;
  REQUIRE(byok.is_object());
  std::set<std::string> members;
  for (auto it = byok.begin(); it != byok.end(); ++it) {
    members.insert(it.key());
  }
  CHECK(members == std::set<std::string>{"schema_version", "header", "ciphertext", "generator"});
  CHECK(byok.value("schema_version", "") == "1.0.0");
  REQUIRE(byok.contains("header"));
  CHECK(byok["header"].value("alg", "") == "dir");
  CHECK(byok["header"].value("enc", "") == "CKM_RSA_AES_KEY_WRAP");
  CHECK(byok["header"].value("kid", "") == kid);
  CHECK_THAT(byok.value("generator", ""), Contains("keyport"));
  REQUIRE(byok.contains("ciphertext"));
  REQUIRE(byok["ciphertext"].is_string());
  auto ciphertext = keyport::base64url_decode(byok["ciphertext"].get<std::string>());
  REQUIRE(ciphertext.has_value());
  CHECK(report.value("ciphertext_bytes", std::size_t{0}) == ciphertext->size());
  return keyport::test::cli::open_ciphertext(*x.kek, *ciphertext);
}

// The PKCS#8 inside a .byok plaintext is the token's private key: its public half equals the
// public key object pkcs11-tool reads from the token.
void check_private_key_matches_token(const ExportRig& x, const Bytes& plaintext,
                                     const std::string& label, int expected_type,
                                     int expected_bits) {
  std::size_t consumed = 0;
  UniquePtr<EVP_PKEY> priv = keyport::test::cli::parse_pkcs8(plaintext, consumed);
  CHECK(EVP_PKEY_get_base_id(priv.get()) == expected_type);
  CHECK(EVP_PKEY_get_bits(priv.get()) == expected_bits);
  UniquePtr<EVP_PKEY> pub = x.rig.token_public_key(label);
  CHECK(EVP_PKEY_eq(priv.get(), pub.get()) == 1);
  // SoftHSM 2.6.1 zero-pads the key data to a multiple of 8 before RFC 5649 wrapping (spec §0):
  // whatever follows the DER must be that padding and nothing else.
  REQUIRE(consumed <= plaintext.size());
  const std::size_t trailing = plaintext.size() - consumed;
  CHECK(trailing < 8);
  for (std::size_t i = consumed; i < plaintext.size(); ++i) {
    CHECK(plaintext[i] == 0);
  }
  if (trailing != 0) {
    WARN("the wrapped PKCS#8 of \"" << label << "\" is followed by " << trailing
                                    << " zero byte(s) (SoftHSM 2.6.1 KWP padding bug)");
  }
}

}  // namespace

// ---- token ----------------------------------------------------------------------------------

TEST_CASE("token list shows the initialised token as a table and as JSON", "[cli]") {
  Rig rig("token-list");
  Run text = rig.keyport("token list");
  {
    INFO(text.describe());
    REQUIRE(text.rc == kExitOk);
    CHECK_THAT(text.out, Contains("LABEL"));
    CHECK_THAT(text.out, Contains("onprem"));
    CHECK_THAT(text.out, Contains("pkcs11:token=onprem"));
  }
  Run json = rig.keyport("token list --json");
  INFO(json.describe());
  REQUIRE(json.rc == kExitOk);
  const Json j = parse_stdout(json);
  CHECK(j.value("module", "") == keyport::test::cli::kSoftHsmModule);
  REQUIRE(j.contains("tokens"));
  REQUIRE(j["tokens"].is_array());
  int found = 0;
  for (const auto& t : j["tokens"]) {
    if (t.value("label", "") == "onprem") {
      ++found;
      CHECK(t.value("initialized", false));
      CHECK(t.value("manufacturer", "") == "SoftHSM project");
      CHECK_THAT(t.value("uri", ""), Contains("pkcs11:token=onprem"));
    }
  }
  CHECK(found == 1);
}

TEST_CASE("token info says SoftHSM can wrap for BYOK only with SHA-1 and the composite strategy",
          "[cli]") {
  Rig rig("token-info");
  Run r = rig.keyport("token info --token onprem --json");
  INFO(r.describe());
  REQUIRE(r.rc == kExitOk);
  const Json j = parse_stdout(r);
  CHECK(j.value("label", "") == "onprem");
  REQUIRE(j.contains("byok_verdict"));
  const Json& verdict = j["byok_verdict"];
  REQUIRE(verdict.contains("CKM_RSA_AES_KEY_WRAP"));
  CHECK(verdict["CKM_RSA_AES_KEY_WRAP"].value("possible", false));
  CHECK(verdict["CKM_RSA_AES_KEY_WRAP"].value("strategy", "") == "composite");
  REQUIRE(verdict.contains("RSA_AES_KEY_WRAP_256"));
  CHECK_FALSE(verdict["RSA_AES_KEY_WRAP_256"].value("possible", true));
  CHECK_THAT(verdict["RSA_AES_KEY_WRAP_256"].value("reason", ""), Contains("SHA-256"));
  REQUIRE(j.contains("capabilities"));
  CHECK_FALSE(j["capabilities"].value("native_rsa_aes_key_wrap", true));
  CHECK(j["capabilities"]["oaep_hashes"].value("SHA-1", false));
  CHECK_FALSE(j["capabilities"]["oaep_hashes"].value("SHA-256", true));
}

// ---- key ------------------------------------------------------------------------------------

TEST_CASE("key generate makes all ten key types sensitive and extractable", "[cli]") {
  Rig rig("keygen-all");
  for (const auto& type : kAllTypes) {
    const Json k = rig.generate(type, "k-" + type);
    CHECK(k.value("type", "") == type);
    CHECK(k.value("label", "") == "k-" + type);
    CHECK(k.value("id", "").size() == 32);  // 16 random bytes by default
  }
  const Json keys = rig.list_keys();
  CHECK(keys.size() == std::size(kAllTypes));
  for (const auto& type : kAllTypes) {
    INFO("key k-" << type);
    const Json* k = find_key(keys, "k-" + type);
    REQUIRE(k != nullptr);
    CHECK(k->value("type", "") == type);
    CHECK(k->value("sensitive", false));
    CHECK(k->value("extractable", false));
    CHECK(k->value("portable", false));
    CHECK(k->value("class", "") == (type.starts_with("aes-") ? "secret-key" : "private"));
  }
}

TEST_CASE("key generate refuses a label that exists and an unknown type and a bad id", "[cli]") {
  Rig rig("keygen-refuse");
  rig.generate("ec-p256", "taken");

  Run dup = rig.keyport("key generate --token onprem --type ec-p256 --label taken");
  check_failure(rig, dup, kExitExists, "already exists");

  Run type = rig.keyport("key generate --token onprem --type rsa-1024 --label small");
  check_failure(rig, type, kExitBadInput, "rsa-1024");

  Run id = rig.keyport("key generate --token onprem --type ec-p256 --label badid --id zz");
  check_failure(rig, id, kExitBadInput, "--id");

  // None of them left a key behind.
  const Json keys = rig.list_keys();
  CHECK(keys.size() == 1);
  CHECK(find_key(keys, "small") == nullptr);
  CHECK(find_key(keys, "badid") == nullptr);
}

// ---- byok export: happy paths ---------------------------------------------------------------

TEST_CASE("byok export of an EC P-256 key for Key Vault opens to the token's key", "[cli]") {
  ExportRig x("export-ec", 2048);
  x.rig.generate("ec-p256", "app-ec");
  const fs::path file = x.out("app-ec.byok");
  Run r = x.export_key("app-ec", Rig::vault_kid(), "app-ec.byok");
  auto opened = check_export(x, r, file, Rig::vault_kid(), "ec-p256", "key-vault");
  const Json report = parse_stdout(r);
  CHECK(report["key"].value("kty", "") == "EC-HSM");
  CHECK_THAT(report.value("az_command", ""), Contains("az keyvault key import"));
  CHECK_THAT(report.value("az_command", ""), Contains("--vault-name contoso"));
  CHECK_THAT(report.value("az_command", ""), Contains("--kty EC --curve P-256"));
  CHECK_THAT(report.value("az_command", ""), Contains("--byok-file " + file.string()));
  check_private_key_matches_token(x, opened.plaintext, "app-ec", EVP_PKEY_EC, 256);
}

TEST_CASE("byok export of an RSA key for Key Vault opens to the token's key", "[cli]") {
  ExportRig x("export-rsa", 3072);
  x.rig.generate("rsa-2048", "app-rsa");
  const fs::path file = x.out("app-rsa.byok");
  Run r = x.export_key("app-rsa", Rig::vault_kid(), "app-rsa.byok");
  auto opened = check_export(x, r, file, Rig::vault_kid(), "rsa-2048", "key-vault");
  const Json report = parse_stdout(r);
  CHECK(report["key"].value("kty", "") == "RSA-HSM");
  CHECK_THAT(report.value("az_command", ""), Contains("--vault-name contoso"));
  CHECK_THAT(report.value("az_command", ""), Contains("--kty RSA"));
  CHECK_THAT(report.value("az_command", ""), !Contains("--curve"));
  check_private_key_matches_token(x, opened.plaintext, "app-rsa", EVP_PKEY_RSA, 2048);
}

TEST_CASE("byok export of an AES key for Managed HSM opens to a key of the right length", "[cli]") {
  ExportRig x("export-aes", 4096);
  x.rig.generate("aes-256", "app-aes");
  const fs::path file = x.out("app-aes.byok");
  Run r = x.export_key("app-aes", Rig::mhsm_kid(), "app-aes.byok");
  auto opened = check_export(x, r, file, Rig::mhsm_kid(), "aes-256", "managed-hsm");
  const Json report = parse_stdout(r);
  CHECK(report["key"].value("kty", "") == "oct-HSM");
  CHECK_THAT(report.value("az_command", ""), Contains("--hsm-name contoso"));
  CHECK_THAT(report.value("az_command", ""), !Contains("--vault-name"));
  CHECK_THAT(report.value("az_command", ""), Contains("--kty oct"));
  // 4096-bit KEK + AES-256 target: 512 + 40 bytes.
  CHECK(report.value("ciphertext_bytes", std::size_t{0}) == 552);
  CHECK(opened.plaintext.size() == 32);
}

// ---- byok export: refusals ------------------------------------------------------------------

TEST_CASE("export refuses a key that is not extractable", "[cli]") {
  ExportRig x("export-nonx");
  // pkcs11-tool leaves CKA_EXTRACTABLE unset, which SoftHSM takes as FALSE.
  Run gen = x.rig.shell(std::string("pkcs11-tool --module ") + keyport::test::cli::kSoftHsmModule +
                        " --token-label onprem --login --pin " + x.rig.pin() +
                        " --keypairgen --key-type EC:prime256v1 --label nonx");
  {
    INFO(gen.describe());
    REQUIRE(gen.rc == 0);
  }
  const Json keys = x.rig.list_keys();
  const Json* nonx = find_key(keys, "nonx");
  REQUIRE(nonx != nullptr);
  REQUIRE_FALSE(nonx->value("extractable", true));
  CHECK_FALSE(nonx->value("portable", true));

  Run r = x.export_key("nonx", Rig::vault_kid(), "nonx.byok");
  check_failure(x.rig, r, kExitBadInput, "not extractable");
}

TEST_CASE("export refuses a key label that is not on the token", "[cli]") {
  ExportRig x("export-nokey");
  Run r = x.export_key("ghost", Rig::vault_kid(), "ghost.byok");
  check_failure(x.rig, r, kExitNotFound, "ghost");
}

TEST_CASE("export refuses a 1024-bit KEK", "[cli]") {
  ExportRig x("export-kek1024");
  x.rig.generate("ec-p256", "app");
  auto small = keyport::test::cli::make_rsa_key(1024);
  const fs::path pem = x.rig.dir() / "kek1024.pem";
  keyport::test::cli::write_public_pem(*small, pem);
  Run r = x.export_with_kek("app", pem, Rig::vault_kid(), "app.byok");
  check_failure(x.rig, r, kExitUnsupported, "1024-bit");
}

TEST_CASE("export refuses an 8192-bit KEK", "[cli]") {
  ExportRig x("export-kek8192");
  x.rig.generate("ec-p256", "app");
  auto big = keyport::test::cli::make_fake_rsa_public_key(8192);
  const fs::path pem = x.rig.dir() / "kek8192.pem";
  keyport::test::cli::write_public_pem(*big, pem);
  Run r = x.export_with_kek("app", pem, Rig::vault_kid(), "app.byok");
  check_failure(x.rig, r, kExitUnsupported, "8192");
}

TEST_CASE("export refuses an EC KEK", "[cli]") {
  ExportRig x("export-kek-ec");
  x.rig.generate("ec-p256", "app");
  auto ec = keyport::test::cli::make_ec_key();
  const fs::path pem = x.rig.dir() / "kek-ec.pem";
  keyport::test::cli::write_public_pem(*ec, pem);
  Run r = x.export_with_kek("app", pem, Rig::vault_kid(), "app.byok");
  check_failure(x.rig, r, kExitUnsupported, "must be an RSA key");
}

TEST_CASE("export refuses a KEK file whose PEM is broken", "[cli]") {
  ExportRig x("export-kek-broken");
  x.rig.generate("ec-p256", "app");
  const std::string good = keyport::test::cli::read_text(x.kek_pem);
  const fs::path pem = x.rig.dir() / "broken.pem";
  keyport::test::cli::write_text(pem, good.substr(0, good.size() / 2));  // no END line
  Run r = x.export_with_kek("app", pem, Rig::vault_kid(), "app.byok");
  check_failure(x.rig, r, kExitBadInput, "broken.pem");
  CHECK_THAT(r.err, Contains("PEM"));
}

TEST_CASE("export refuses a kid without a key version", "[cli]") {
  ExportRig x("export-kid-noversion");
  x.rig.generate("ec-p256", "app");
  Run r = x.export_key("app", "https://contoso.vault.azure.net/keys/KEK", "app.byok");
  check_failure(x.rig, r, kExitBadInput, "no key version");
}

TEST_CASE("export refuses a kid that is not https", "[cli]") {
  ExportRig x("export-kid-http");
  x.rig.generate("ec-p256", "app");
  Run r = x.export_key(
      "app",
      std::string("http://contoso.vault.azure.net/keys/KEK/") + keyport::test::cli::kKidVersion,
      "app.byok");
  check_failure(x.rig, r, kExitBadInput, "https");
}

TEST_CASE("export refuses an AES key for a Key Vault kid", "[cli]") {
  ExportRig x("export-aes-kv");
  x.rig.generate("aes-256", "app-aes");
  Run r = x.export_key("app-aes", Rig::vault_kid(), "app-aes.byok");
  check_failure(x.rig, r, kExitUnsupported, "Managed HSM");
}

TEST_CASE("export refuses RSA_AES_KEY_WRAP_256 because SoftHSM has no OAEP SHA-256", "[cli]") {
  ExportRig x("export-enc256");
  x.rig.generate("ec-p256", "app");
  Run r = x.export_key("app", Rig::vault_kid(), "app.byok", "--enc RSA_AES_KEY_WRAP_256");
  check_failure(x.rig, r, kExitUnsupported, "SHA-256");
}

TEST_CASE("export reports a token label that does not exist", "[cli]") {
  ExportRig x("export-notoken");
  Run r =
      x.rig.keyport("byok export --token nosuch --key app --kek " + sh_quote(x.kek_pem.string()) +
                    " --kid " + Rig::vault_kid() + " -o " + sh_quote(x.out("app.byok").string()));
  check_failure(x.rig, r, kExitNotFound, "nosuch");
}

TEST_CASE("export reports a wrong PIN", "[cli]") {
  ExportRig x("export-wrongpin");
  x.rig.generate("ec-p256", "app");
  RunOptions wrong;
  wrong.keyport_pin = "9999";
  Run r = x.export_key("app", Rig::vault_kid(), "app.byok", "", &wrong);
  check_failure(x.rig, r, kExitAuth, "wrong PIN");
}

TEST_CASE("export never overwrites an existing file unless --force is given", "[cli]") {
  ExportRig x("export-exists");
  x.rig.generate("ec-p256", "app");
  const fs::path file = x.out("app.byok");
  const std::string before = "precious, not a byok file\n";
  keyport::test::cli::write_text(file, before);

  Run r = x.export_key("app", Rig::vault_kid(), "app.byok");
  check_failure(x.rig, r, kExitExists, "already exists", {"app.byok"});
  CHECK(keyport::test::cli::read_text(file) == before);

  Run forced = x.export_key("app", Rig::vault_kid(), "app.byok", "--force");
  auto opened = check_export(x, forced, file, Rig::vault_kid(), "ec-p256", "key-vault");
  CHECK(keyport::test::cli::read_text(file) != before);
  check_private_key_matches_token(x, opened.plaintext, "app", EVP_PKEY_EC, 256);
}

TEST_CASE("export needs --target for a kid host that is not Azure's and then warns", "[cli]") {
  ExportRig x("export-unknown-host");
  x.rig.generate("ec-p256", "app");
  const std::string kid =
      std::string("https://127.0.0.1:8443/keys/KEK/") + keyport::test::cli::kKidVersion;
  Run r = x.export_key("app", kid, "app.byok");
  check_failure(x.rig, r, kExitBadInput, "--target");

  Run ok = x.export_key("app", kid, "app.byok", "--target key-vault");
  INFO(ok.describe());
  REQUIRE(ok.rc == kExitOk);
  CHECK_THAT(ok.err, Contains("warning"));
  CHECK_THAT(ok.err, Contains("127.0.0.1:8443"));
  const Json report = parse_stdout(ok);
  CHECK(report.value("target", "") == "key-vault");
  REQUIRE(report["warnings"].is_array());
  std::size_t host_warnings = 0;
  for (const auto& w : report["warnings"]) {
    host_warnings += w.get<std::string>().find("127.0.0.1:8443") != std::string::npos;
  }
  CHECK(host_warnings == 1);
  CHECK(keyport::test::cli::list_dir(x.rig.out_dir()) == std::set<std::string>{"app.byok"});
}

// ---- PINs -----------------------------------------------------------------------------------

TEST_CASE("a PIN from --pin-source file: logs in", "[cli]") {
  Rig rig("pin-file");
  rig.generate("ec-p256", "app");
  const fs::path pin_file = rig.dir() / "user.pin";
  keyport::test::cli::write_text(pin_file, rig.pin() + "\n");
  Run r =
      rig.keyport("key list --token onprem --pin-source " + sh_quote("file:" + pin_file.string()),
                  RunOptions{});
  INFO(r.describe());
  CHECK(r.rc == kExitOk);
  CHECK_THAT(r.out, Contains("app"));

  keyport::test::cli::write_text(pin_file, "0000\n");
  Run wrong =
      rig.keyport("key list --token onprem --pin-source " + sh_quote("file:" + pin_file.string()),
                  RunOptions{});
  INFO(wrong.describe());
  CHECK(wrong.rc == kExitAuth);
  CHECK_THAT(wrong.err, Contains("wrong PIN"));
}

TEST_CASE("a PIN from --pin-source env: logs in", "[cli]") {
  Rig rig("pin-env");
  rig.generate("ec-p256", "app");
  RunOptions o;
  o.env = {"MYPIN=" + rig.pin()};
  Run r = rig.keyport("key list --token onprem --pin-source env:MYPIN", o);
  INFO(r.describe());
  CHECK(r.rc == kExitOk);
  CHECK_THAT(r.out, Contains("app"));
  CHECK_THAT(r.err, !Contains("warning"));
}

TEST_CASE("a PIN given with --pin logs in but warns that it shows in the process list", "[cli]") {
  Rig rig("pin-argv");
  rig.generate("ec-p256", "app");
  Run r = rig.keyport("key list --token onprem --pin " + rig.pin(), RunOptions{});
  INFO(r.describe());
  CHECK(r.rc == kExitOk);
  CHECK_THAT(r.out, Contains("app"));
  CHECK_THAT(r.err, Contains("process list"));
}

TEST_CASE("without any PIN source or terminal the login fails with exit 7", "[cli]") {
  Rig rig("pin-none");
  Run r = rig.keyport("key list --token onprem", RunOptions{});
  INFO(r.describe());
  CHECK(r.rc == kExitAuth);
  CHECK_THAT(r.err, Contains("no user PIN"));
  CHECK(r.out.empty());
}

// ---- usage ----------------------------------------------------------------------------------

TEST_CASE("byok export --help tells how to download the KEK", "[cli]") {
  Rig rig("help");
  Run r = rig.keyport("byok export --help");
  INFO(r.describe());
  CHECK(r.rc == kExitOk);
  CHECK_THAT(r.out + r.err, Contains("az keyvault key download"));
  CHECK_THAT(r.out + r.err, Contains("--kek"));
}

TEST_CASE("an unknown subcommand is a usage error", "[cli]") {
  Rig rig("usage");
  Run top = rig.keyport("frobnicate");
  {
    INFO(top.describe());
    CHECK(top.rc == kExitUsage);
    CHECK_THAT(top.err, Contains("--help"));
  }
  Run sub = rig.keyport("byok frobnicate");
  INFO(sub.describe());
  CHECK(sub.rc == kExitUsage);
  CHECK_THAT(sub.err, Contains("--help"));
  CHECK(keyport::test::cli::list_dir(rig.out_dir()).empty());
}

// main.cpp builds only the command group named on the command line: the group must be found after
// global options and their values, and the top level's --help must still list every group.
TEST_CASE("the command group is found after global options and --help lists every group", "[cli]") {
  Rig rig("groups");
  Run help = rig.keyport("-v --help");
  {
    INFO(help.describe());
    CHECK(help.rc == kExitOk);
    for (const char* group : {"token", "key", "byok", "vault", "migrate", "envelope", "policy",
                              "attest", "enclave", "profiles"}) {
      CHECK_THAT(help.out, Contains(std::string("\n  ") + group + " "));
    }
  }
  // A module path that is also a group's name, then the group: `byok`'s help, not `token`'s.
  Run named = rig.keyport("--module token --module-init-args vault -q byok --help");
  {
    INFO(named.describe());
    CHECK(named.rc == kExitOk);
    CHECK_THAT(named.out, Contains("Usage: keyport byok"));
  }
  Run version = rig.keyport("-q --version");
  INFO(version.describe());
  CHECK(version.rc == kExitOk);
  CHECK_THAT(version.out, Catch::Matchers::StartsWith("keyport "));
}
