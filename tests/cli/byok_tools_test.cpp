// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of `keyport byok inspect`, `byok wrap` and `byok request`: exit codes,
// messages, JSON output, and .byok files opened with OpenSSL alone. Keys are made with the
// openssl command, so the files keyport reads come from a writer keyport does not share code with.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

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

const char* const kFileKeyWarning = "this key existed in a file";

fs::path corpus(const std::string& name) {
  return keyport::test::source_dir() / "tests" / "vectors" / "byok-lint" / name;
}

Json parse_stdout(const Run& r) {
  INFO(r.describe());
  auto j = keyport::parse_json_strict(r.out);
  REQUIRE(j.has_value());
  return *j;
}

Bytes read_bytes(const fs::path& path) {
  const std::string text = keyport::test::cli::read_text(path);
  return Bytes(text.begin(), text.end());
}

std::string sha256_hex(const Bytes& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) == 1);
  return keyport::hex_encode(std::span<const std::uint8_t>(digest, len));
}

Bytes spki_der(EVP_PKEY* key) {
  const int len = i2d_PUBKEY(key, nullptr);
  REQUIRE(len > 0);
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  REQUIRE(i2d_PUBKEY(key, &p) == len);
  return der;
}

UniquePtr<EVP_PKEY> read_private_pem(const fs::path& path) {
  UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "r"));
  REQUIRE(bio != nullptr);
  UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(key != nullptr);
  return key;
}

// A rig with a KEK pair on disk: kek.pem (public, SPKI) and kek-private.pem (the test rig's
// private half, for --kek-private and for opening files with OpenSSL).
struct ToolsRig {
  explicit ToolsRig(const std::string& stem)
      : rig(stem), kek(keyport::test::cli::make_rsa_key(2048)) {
    kek_pem = rig.dir() / "kek.pem";
    keyport::test::cli::write_public_pem(*kek, kek_pem);
    kek_private_pem = rig.dir() / "kek-private.pem";
    UniquePtr<BIO> bio(BIO_new_file(kek_private_pem.c_str(), "w"));
    REQUIRE(bio != nullptr);
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), kek.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
            1);
  }

  // Runs the openssl command in the rig folder; REQUIREs success.
  void openssl(const std::string& args) const {
    Run r = rig.shell("openssl " + args);
    INFO(r.describe());
    REQUIRE(r.rc == 0);
  }

  Run wrap(const std::string& key, const std::string& kid, const std::string& out,
           const std::string& extra = "", const RunOptions& options = {}) const {
    return rig.keyport("byok wrap --key " + sh_quote(key) + " --kek " + sh_quote(kek_pem.string()) +
                           " --kid " + sh_quote(kid) + " -o " +
                           sh_quote((rig.out_dir() / out).string()) + " " + extra,
                       options);
  }

  // The KWP plaintext of a written .byok file, opened with OpenSSL alone.
  Bytes open(const fs::path& byok) const {
    auto doc = keyport::parse_json_strict(keyport::test::cli::read_text(byok));
    REQUIRE(doc.has_value());
    auto ciphertext = keyport::base64url_decode((*doc)["ciphertext"].get<std::string>());
    REQUIRE(ciphertext.has_value());
    return keyport::test::cli::open_ciphertext(*kek, *ciphertext).plaintext;
  }

  Rig rig;
  UniquePtr<EVP_PKEY> kek;
  fs::path kek_pem;
  fs::path kek_private_pem;
};

}  // namespace

TEST_CASE("byok inspect prints a summary and exits 0 for a good file", "[cli][byok-tools]") {
  Rig rig("inspect-good");
  Run r = rig.keyport("byok inspect " + sh_quote(corpus("good-key-vault-rsa2048.byok").string()));
  INFO(r.describe());
  CHECK(r.rc == kExitOk);
  CHECK_THAT(r.out, Contains("0 errors, 0 warnings"));
  CHECK_THAT(r.out, Contains("256-byte RSA part + 1224-byte AES-KWP part"));
  CHECK_THAT(r.out, Contains("key-vault (from the kid host)"));
  CHECK_THAT(r.out, Contains("info    BYOK-KEY-UNCHECKED"));
}

TEST_CASE("byok inspect exits 3 for a broken file and names the finding on stdout and stderr",
          "[cli][byok-tools]") {
  Rig rig("inspect-broken");
  Run r = rig.keyport("byok inspect " + sh_quote(corpus("duplicate-header-kid.byok").string()));
  INFO(r.describe());
  CHECK(r.rc == kExitBadInput);
  CHECK_THAT(r.out, Contains("error   BYOK-JSON-DUPLICATE: member \"kid\""));
  CHECK_THAT(r.out, Contains("advice: "));
  CHECK_THAT(r.err, Contains("BYOK-JSON-DUPLICATE"));
}

TEST_CASE("byok inspect --json prints the whole report as one JSON object", "[cli][byok-tools]") {
  Rig rig("inspect-json");
  Run r = rig.keyport("byok inspect --json " + sh_quote(corpus("kid-http.byok").string()));
  CHECK(r.rc == kExitBadInput);
  const Json j = parse_stdout(r);
  CHECK(j["valid"] == false);
  CHECK(j["reader_accepts"] == false);
  CHECK(j["counts"]["error"] == 1);
  REQUIRE(j["findings"].is_array());
  bool found = false;
  for (const Json& f : j["findings"]) {
    found = found || (f["code"] == "BYOK-KID-HTTP" && f["severity"] == "error");
  }
  CHECK(found);
  CHECK(j["ciphertext"]["bytes"] == 1480);
}

TEST_CASE("byok inspect --strict turns warnings into exit 3", "[cli][byok-tools]") {
  Rig rig("inspect-strict");
  const std::string file = sh_quote(corpus("ct-padded.byok").string());
  Run lenient = rig.keyport("byok inspect " + file);
  INFO(lenient.describe());
  CHECK(lenient.rc == kExitOk);
  CHECK_THAT(lenient.out, Contains("warning BYOK-CT-PADDING"));
  Run strict = rig.keyport("byok inspect --strict " + file);
  INFO(strict.describe());
  CHECK(strict.rc == kExitBadInput);
  CHECK_THAT(strict.err, Contains("--strict"));
  CHECK_THAT(strict.err, Contains("BYOK-CT-PADDING"));
}

TEST_CASE("byok inspect refuses KEK files with the codes of the KEK loader", "[cli][byok-tools]") {
  Rig rig("inspect-kek");
  const std::string file = sh_quote(corpus("good-key-vault-rsa2048.byok").string());
  Run missing = rig.keyport("byok inspect " + file + " --kek no-such-kek.pem");
  INFO(missing.describe());
  CHECK(missing.rc == kExitNotFound);
  CHECK(missing.out.empty());

  auto ec = keyport::test::cli::make_ec_key();
  keyport::test::cli::write_public_pem(*ec, rig.dir() / "ec.pem");
  Run ec_kek = rig.keyport("byok inspect " + file + " --kek ec.pem");
  INFO(ec_kek.describe());
  CHECK(ec_kek.rc == kExitUnsupported);
  CHECK_THAT(ec_kek.err, Contains("RSA"));
}

TEST_CASE("byok wrap writes a .byok file that OpenSSL alone opens to the exact PKCS#8 of the key",
          "[cli][byok-tools]") {
  ToolsRig t("wrap-rsa");
  t.openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem");
  Run r = t.wrap("key.pem", Rig::vault_kid(), "key.byok", "--json");
  INFO(r.describe());
  REQUIRE(r.rc == kExitOk);
  CHECK_THAT(r.err, Contains(kFileKeyWarning));
  const Json j = parse_stdout(r);
  CHECK(j["key"]["type"] == "rsa-2048");
  CHECK(j["key"]["format"] == "PKCS#8 PEM");
  CHECK(j["kid"] == Rig::vault_kid());
  CHECK(j["target"] == "key-vault");
  CHECK(j["enc"] == "CKM_RSA_AES_KEY_WRAP");
  CHECK_THAT(j["az_command"].get<std::string>(), Contains("--kty RSA"));

  const fs::path out = t.rig.out_dir() / "key.byok";
  REQUIRE(fs::exists(out));
  CHECK((fs::status(out).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
         fs::perms::others_read));
  CHECK(keyport::test::cli::list_dir(t.rig.out_dir()) == std::set<std::string>{"key.byok"});

  const Bytes plaintext = t.open(out);
  std::size_t consumed = 0;
  auto opened = keyport::test::cli::parse_pkcs8(plaintext, consumed);
  CHECK(consumed == plaintext.size());
  auto original = read_private_pem(t.rig.dir() / "key.pem");
  CHECK(spki_der(opened.get()) == spki_der(original.get()));
  CHECK(j["key"]["public_key_sha256"] == sha256_hex(spki_der(original.get())));
}

TEST_CASE("byok wrap never overwrites an existing file without --force", "[cli][byok-tools]") {
  ToolsRig t("wrap-force");
  t.openssl("ecparam -genkey -name prime256v1 -out ec.pem");
  REQUIRE(t.wrap("ec.pem", Rig::vault_kid(), "ec.byok").rc == kExitOk);
  const std::string before = keyport::test::cli::read_text(t.rig.out_dir() / "ec.byok");
  Run again = t.wrap("ec.pem", Rig::vault_kid(), "ec.byok");
  INFO(again.describe());
  CHECK(again.rc == kExitExists);
  CHECK(keyport::test::cli::read_text(t.rig.out_dir() / "ec.byok") == before);
  Run forced = t.wrap("ec.pem", Rig::vault_kid(), "ec.byok", "--force");
  INFO(forced.describe());
  CHECK(forced.rc == kExitOk);
  CHECK(keyport::test::cli::read_text(t.rig.out_dir() / "ec.byok") != before);
  CHECK(keyport::test::cli::list_dir(t.rig.out_dir()) == std::set<std::string>{"ec.byok"});
}

TEST_CASE("byok wrap takes an encrypted key's passphrase from env: or file:, never guesses",
          "[cli][byok-tools]") {
  ToolsRig t("wrap-encrypted");
  t.openssl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out plain.pem");
  t.openssl("pkcs8 -topk8 -v2 aes-256-cbc -in plain.pem -out enc.pem -passout pass:s3cret");
  keyport::test::cli::write_text(t.rig.dir() / "pass.txt", "s3cret\n");
  keyport::test::cli::write_text(t.rig.dir() / "wrong.txt", "S3cret\n");

  RunOptions env;
  env.env = {"KEY_PASS=s3cret"};
  Run from_env = t.wrap("enc.pem", Rig::vault_kid(), "env.byok",
                        "--passphrase-source env:KEY_PASS --json", env);
  INFO(from_env.describe());
  CHECK(from_env.rc == kExitOk);
  CHECK(parse_stdout(from_env)["key"]["format"] == "encrypted PKCS#8 PEM");
  Run from_file =
      t.wrap("enc.pem", Rig::vault_kid(), "file.byok", "--passphrase-source file:pass.txt");
  INFO(from_file.describe());
  CHECK(from_file.rc == kExitOk);

  auto original = read_private_pem(t.rig.dir() / "plain.pem");
  for (const char* name : {"env.byok", "file.byok"}) {
    std::size_t consumed = 0;
    const Bytes plaintext = t.open(t.rig.out_dir() / name);
    auto opened = keyport::test::cli::parse_pkcs8(plaintext, consumed);
    CHECK(consumed == plaintext.size());
    CHECK(spki_der(opened.get()) == spki_der(original.get()));
  }

  Run wrong =
      t.wrap("enc.pem", Rig::vault_kid(), "wrong.byok", "--passphrase-source file:wrong.txt");
  INFO(wrong.describe());
  CHECK(wrong.rc == kExitAuth);
  CHECK_THAT(wrong.err, Contains("passphrase"));
  Run none = t.wrap("enc.pem", Rig::vault_kid(), "none.byok");
  INFO(none.describe());
  CHECK(none.rc == kExitAuth);
  CHECK_THAT(none.err, Contains("--passphrase-source"));
  Run unset =
      t.wrap("enc.pem", Rig::vault_kid(), "unset.byok", "--passphrase-source env:NOPE_UNSET");
  CHECK(unset.rc == kExitNotFound);
  CHECK(keyport::test::cli::list_dir(t.rig.out_dir()) ==
        std::set<std::string>{"env.byok", "file.byok"});
}

TEST_CASE("byok wrap takes a hex AES key for Managed HSM and refuses it for Key Vault",
          "[cli][byok-tools]") {
  ToolsRig t("wrap-aes");
  const std::string hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  keyport::test::cli::write_text(t.rig.dir() / "aes.hex", hex + "\n");
  Run refused = t.wrap("aes.hex", Rig::vault_kid(), "kv.byok");
  INFO(refused.describe());
  CHECK(refused.rc == kExitUnsupported);
  CHECK_THAT(refused.err, Contains("Managed HSM"));
  CHECK(keyport::test::cli::list_dir(t.rig.out_dir()).empty());

  Run ok = t.wrap("aes.hex", Rig::mhsm_kid(), "aes.byok", "--json");
  INFO(ok.describe());
  REQUIRE(ok.rc == kExitOk);
  const Json j = parse_stdout(ok);
  CHECK(j["key"]["type"] == "aes-256");
  CHECK(j["key"]["format"] == "hex AES");
  CHECK(j["target"] == "managed-hsm");
  auto key = keyport::hex_decode(hex);
  REQUIRE(key.has_value());
  CHECK(t.open(t.rig.out_dir() / "aes.byok") == *key);
}

TEST_CASE("byok wrap refuses keys Azure does not take and files that are not keys",
          "[cli][byok-tools]") {
  ToolsRig t("wrap-refused");
  t.openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.pem");
  t.openssl("genpkey -algorithm ED25519 -out ed25519.pem");
  keyport::test::cli::write_text(t.rig.dir() / "junk.txt", "not a key\n");
  for (const char* key : {"rsa1024.pem", "ed25519.pem"}) {
    Run r = t.wrap(key, Rig::vault_kid(), "x.byok");
    INFO(r.describe());
    CHECK(r.rc == kExitUnsupported);
    CHECK_THAT(r.err, Contains("cannot be imported"));
  }
  Run junk = t.wrap("junk.txt", Rig::vault_kid(), "x.byok");
  INFO(junk.describe());
  CHECK(junk.rc == kExitBadInput);
  CHECK(keyport::test::cli::list_dir(t.rig.out_dir()).empty());
}

TEST_CASE("byok inspect --kek-private unwraps a wrapped file and reports its key",
          "[cli][byok-tools]") {
  ToolsRig t("inspect-private");
  t.openssl("ecparam -genkey -name prime256v1 -out ec.pem");
  REQUIRE(t.wrap("ec.pem", Rig::mhsm_kid(), "ec.byok").rc == kExitOk);
  Run r = t.rig.keyport("byok inspect --json " + sh_quote((t.rig.out_dir() / "ec.byok").string()) +
                        " --kek kek.pem --kek-private kek-private.pem");
  INFO(r.describe());
  CHECK(r.rc == kExitOk);
  CHECK_THAT(r.err, Contains("test rigs"));
  const Json j = parse_stdout(r);
  CHECK(j["valid"] == true);
  CHECK(j["counts"]["warning"] == 0);
  CHECK(j["key"]["type"] == "ec-p256");
  CHECK(j["key"]["kty"] == "EC-HSM");
  auto original = read_private_pem(t.rig.dir() / "ec.pem");
  CHECK(j["key"]["public_key_sha256"] == sha256_hex(spki_der(original.get())));
  CHECK(j["kek_sha256"] == sha256_hex(spki_der(t.kek.get())));
  CHECK(j["ciphertext"]["split_source"] == "kek");

  // The same file against another KEK's private key.
  auto other = keyport::test::cli::make_rsa_key(2048);
  UniquePtr<BIO> bio(BIO_new_file((t.rig.dir() / "other.pem").c_str(), "w"));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), other.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
          1);
  bio.reset();
  Run wrong = t.rig.keyport("byok inspect " + sh_quote((t.rig.out_dir() / "ec.byok").string()) +
                            " --kek-private other.pem");
  INFO(wrong.describe());
  CHECK(wrong.rc == kExitBadInput);
  CHECK_THAT(wrong.out, Contains("not unwrapped"));
}

TEST_CASE("byok request prints the PUT body whose key_hsm is the file's exact bytes",
          "[cli][byok-tools]") {
  ToolsRig t("request");
  t.openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem");
  REQUIRE(t.wrap("key.pem", Rig::vault_kid(), "key.byok").rc == kExitOk);
  const fs::path file = t.rig.out_dir() / "key.byok";
  Run r = t.rig.keyport("byok request " + sh_quote(file.string()) +
                        " --name my-key --kty RSA --tags env=test owner=me");
  INFO(r.describe());
  REQUIRE(r.rc == kExitOk);
  CHECK_THAT(r.err, Contains("PUT https://contoso.vault.azure.net/keys/my-key?api-version=7.5"));
  const Json body = parse_stdout(r);
  CHECK(body["key"]["kty"] == "RSA-HSM");
  auto decoded = keyport::base64url_decode(body["key"]["key_hsm"].get<std::string>());
  REQUIRE(decoded.has_value());
  CHECK(*decoded == read_bytes(file));
  CHECK(body["attributes"]["enabled"] == true);
  CHECK(body["tags"] == Json({{"env", "test"}, {"owner", "me"}}));
  CHECK_FALSE(body.contains("release_policy"));

  Run no_kty = t.rig.keyport("byok request " + sh_quote(file.string()) + " --name my-key");
  INFO(no_kty.describe());
  CHECK(no_kty.rc == kExitBadInput);
  CHECK_THAT(no_kty.err, Contains("--kty is required"));
  CHECK(no_kty.out.empty());

  Run bad_enabled = t.rig.keyport("byok request " + sh_quote(file.string()) +
                                  " --name my-key --kty RSA --enabled maybe");
  CHECK(bad_enabled.rc == kExitUsage);
}

TEST_CASE("byok request reads kty and curve with --kek-private and sends a release policy",
          "[cli][byok-tools]") {
  ToolsRig t("request-policy");
  t.openssl("ecparam -genkey -name secp384r1 -out ec.pem");
  REQUIRE(t.wrap("ec.pem", Rig::mhsm_kid(), "ec.byok").rc == kExitOk);
  const std::string file = sh_quote((t.rig.out_dir() / "ec.byok").string());
  const std::string policy =
      "{\"version\": \"1.0.0\", \"anyOf\": [{\"authority\": \"https://maa.example.test\", "
      "\"allOf\": [{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sevsnpvm\"}]}]}\n";
  keyport::test::cli::write_text(t.rig.dir() / "policy.json", policy);

  Run r = t.rig.keyport("byok request " + file +
                        " --name ec-key --kek-private kek-private.pem --exportable --policy "
                        "policy.json --immutable");
  INFO(r.describe());
  REQUIRE(r.rc == kExitOk);
  const Json body = parse_stdout(r);
  CHECK(body["key"]["kty"] == "EC-HSM");
  CHECK(body["key"]["crv"] == "P-384");
  CHECK(body["attributes"]["exportable"] == true);
  CHECK(body["release_policy"]["contentType"] == "application/json; charset=utf-8");
  CHECK(body["release_policy"]["immutable"] == true);
  auto data = keyport::base64url_decode(body["release_policy"]["data"].get<std::string>());
  REQUIRE(data.has_value());
  CHECK(std::string(data->begin(), data->end()) == policy);

  Run no_policy = t.rig.keyport("byok request " + file +
                                " --name ec-key --kty EC --curve P-384 "
                                "--exportable");
  INFO(no_policy.describe());
  CHECK(no_policy.rc == kExitBadInput);
  CHECK_THAT(no_policy.err, Contains("--policy"));
  Run contradiction = t.rig.keyport("byok request " + file +
                                    " --name ec-key --kty RSA --kek-private kek-private.pem");
  INFO(contradiction.describe());
  CHECK(contradiction.rc == kExitBadInput);
  CHECK_THAT(contradiction.err, Contains("contradicts"));
}

TEST_CASE("byok tool help says --kek-private is for test rigs only", "[cli][byok-tools]") {
  Rig rig("tools-help");
  for (const char* command : {"inspect", "request"}) {
    Run r = rig.keyport(std::string("byok ") + command + " --help");
    INFO(r.describe());
    CHECK(r.rc == kExitOk);
    CHECK_THAT(r.out, Contains("TEST RIGS ONLY"));
  }
  Run wrap = rig.keyport("byok wrap --help");
  CHECK(wrap.rc == kExitOk);
  CHECK_THAT(wrap.out, Contains("--passphrase-source"));
  CHECK_THAT(wrap.out, Contains("Examples:"));
}
