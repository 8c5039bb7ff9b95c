// SPDX-License-Identifier: Apache-2.0
// keyport against the quirk module (tests/modules/quirk): SoftHSM behind a proxy that adds what
// no Debian module does. Each quirk's export either verifies with OpenSSL or is refused with
// exit 8 (or 3) and no file.
#include <catch2/catch.hpp>

#include "cli/exit_codes.h"
#include "tests/modules/module_rig.h"

using namespace keyport;
using keyport::test::cli::sh_quote;
using keyport::test::modules::ModuleRig;
using keyport::test::modules::ModuleUnderTest;
namespace fs = std::filesystem;

namespace {

ModuleUnderTest quirk(const std::string& quirks, std::vector<std::string> env = {}) {
  ModuleUnderTest m;
  m.global_args = "--module " + sh_quote(KEYPORT_QUIRK_MODULE);
  env.push_back("KEYPORT_QUIRKS=" + quirks);
  m.env = std::move(env);
  return m;
}

const Json* candidate(const Json& info, const std::string& mechanism) {
  for (const auto& c : info["self_tests"]["rfc5649_candidates"]) {
    if (c.value("mechanism", "") == mechanism)
      return &c;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("quirk module: CKM_RSA_AES_KEY_WRAP offered natively is proven and used end to end",
          "[modules][quirk]") {
  ModuleRig m("quirk-native", quirk("native-rsa-aes"));
  const Json info = m.token_info();
  INFO(info.dump(2));
  CHECK(info["self_tests"]["oaep_hashes"]["SHA-1"]["rsa_aes_key_wrap"] == "passed");
  // SoftHSM underneath refuses OAEP SHA-256, and so does the native mechanism built on it.
  CHECK(info["self_tests"]["oaep_hashes"]["SHA-256"]["rsa_aes_key_wrap"] == "refused");
  CHECK(info["byok_verdict"]["CKM_RSA_AES_KEY_WRAP"]["strategy"] == "native");
  for (const std::string type : {"rsa-2048", "ec-p384", "aes-256"}) {
    m.generate(type, "n-" + type);
    const std::string file = "n-" + type + ".byok";
    CHECK(m.check_export(m.export_key("n-" + type, "CKM_RSA_AES_KEY_WRAP", file), "n-" + type,
                         "CKM_RSA_AES_KEY_WRAP", file) == "native");
  }
  // --strategy native for a hash the module refuses: exit 8, no file.
  m.generate("ec-p256", "n-sha256");
  auto r = m.export_key("n-sha256", "RSA_AES_KEY_WRAP_256", "refused.byok", "--strategy native");
  CHECK(r.rc == cli::kExitUnsupported);
  CHECK(test::cli::list_dir(m.rig().out_dir()).count("refused.byok") == 0);
}

TEST_CASE("quirk module: a token without any RFC 5649 mechanism refuses export, exit 8, no file",
          "[modules][quirk]") {
  ModuleRig m("quirk-hide", quirk("hide=0x210A"));
  m.generate("ec-p256", "h1");
  const Json info = m.token_info();
  CHECK(info["self_tests"]["rfc5649_candidates"].empty());
  CHECK(info["byok_verdict"]["CKM_RSA_AES_KEY_WRAP"]["possible"] == false);
  m.check_refused(m.export_key("h1", "CKM_RSA_AES_KEY_WRAP", "h1.byok"), cli::kExitUnsupported,
                  "RFC 5649");
}

TEST_CASE(
    "quirk module: CKM_AES_KEY_WRAP_PAD with its PKCS#7 meaning fails the self-test and no "
    "broken file is written",
    "[modules][quirk]") {
  ModuleRig m("quirk-pkcs7", quirk("pad-pkcs7"));
  m.generate("aes-256", "p1");
  const Json info = m.token_info();
  INFO(info.dump(2));
  const Json* pad = candidate(info, "CKM_AES_KEY_WRAP_PAD");
  REQUIRE(pad != nullptr);
  CHECK((*pad)["rfc5649"] == "no");
  CHECK((*pad)["wrap_multiple_of_8"] == "failed");
  m.check_refused(m.export_key("p1", "CKM_RSA_AES_KEY_WRAP", "p1.byok"), cli::kExitUnsupported,
                  "self-tests of the listed candidates failed");
}

TEST_CASE("quirk module: RFC 5649 under Thales Luna's vendor code is proven and used",
          "[modules][quirk]") {
  // Luna's model: CKM_AES_KEY_WRAP_PAD means PKCS#7 padding, CKM_AES_KWP (0x80000171) RFC 5649.
  ModuleRig m("quirk-luna", quirk("pad-pkcs7,alias=0x80000171:0x210A"));
  const Json info = m.token_info();
  INFO(info.dump(2));
  const Json* luna = candidate(info, "0x80000171");
  REQUIRE(luna != nullptr);
  // SoftHSM underneath zero-pads a 20-byte key: RFC 5649 for multiples of 8 only.
  CHECK((*luna)["rfc5649"] == "multiples of 8 only");
  CHECK((*candidate(info, "CKM_AES_KEY_WRAP_PAD"))["rfc5649"] == "no");
  for (const std::string type : {"aes-128", "ec-p256", "rsa-2048"}) {
    m.generate(type, "l-" + type);
    const std::string file = "l-" + type + ".byok";
    CHECK(m.check_export(m.export_key("l-" + type, "CKM_RSA_AES_KEY_WRAP", file), "l-" + type,
                         "CKM_RSA_AES_KEY_WRAP", file) == "composite");
  }
}

TEST_CASE(
    "quirk module: a module that needs init arguments gets them from the option, the "
    "environment, or p11-kit's x-init-reserved",
    "[modules][quirk]") {
  ModuleRig m("quirk-init", quirk("init-args=configdir=keyport-test"));
  auto bare = m.keyport("token list --json");
  INFO(bare.describe());
  CHECK(bare.rc == cli::kExitBadInput);
  CHECK(bare.err.find("--module-init-args") != std::string::npos);
  CHECK(bare.err.find("CKR_ARGUMENTS_BAD") != std::string::npos);

  auto with_option = m.keyport("--module-init-args configdir=keyport-test token list --json");
  INFO(with_option.describe());
  CHECK(with_option.rc == 0);
  auto wrong = m.keyport("--module-init-args configdir=other token list --json");
  CHECK(wrong.rc == cli::kExitBadInput);

  ModuleUnderTest by_env = quirk("init-args=configdir=keyport-test",
                                 {"KEYPORT_PKCS11_INIT_ARGS=configdir=keyport-test"});
  ModuleRig e("quirk-init-env", by_env);
  e.generate("ec-p256", "via-env");

  // A p11-kit module file in the user's configuration folder: --module NAME and module-name=.
  const fs::path config = m.dir() / "xdg";
  fs::create_directories(config / "pkcs11" / "modules");
  test::cli::write_text(config / "pkcs11" / "modules" / "kp-quirk.module",
                        std::string("# keyport test\nmodule: ") + KEYPORT_QUIRK_MODULE +
                            "\nx-init-reserved: configdir=keyport-test\n");
  ModuleUnderTest by_name =
      quirk("init-args=configdir=keyport-test", {"XDG_CONFIG_HOME=" + config.string()});
  by_name.global_args = "--module kp-quirk";
  ModuleRig n("quirk-init-name", by_name);
  n.generate("aes-128", "via-name");
  auto modules = n.keyport("token modules --json");
  INFO(modules.describe());
  REQUIRE(modules.rc == 0);
  CHECK(modules.out.find("kp-quirk") != std::string::npos);
  by_name.global_args = "";
  by_name.token = "pkcs11:token=onprem?module-name=kp-quirk";
  ModuleRig u("quirk-init-uri", by_name);
  u.generate("aes-128", "via-uri");
  auto unknown = u.keyport("--module no-such-module token list");
  CHECK(unknown.rc == cli::kExitNotFound);
  CHECK(unknown.err.find("kp-quirk") != std::string::npos);  // the names that exist
}

TEST_CASE(
    "quirk module: a module that refuses batched attribute reads and odd CK_ULONG sizes "
    "still lists and exports",
    "[modules][quirk]") {
  ModuleRig m("quirk-batch", quirk("no-batch,ulong-exact"));
  m.generate("rsa-2048", "b-rsa");
  m.generate("aes-192", "b-aes");
  const Json keys = m.list_keys();
  REQUIRE(keys.size() == 2);
  for (const auto& k : keys)
    CHECK((k["type"] == "rsa-2048" || k["type"] == "aes-192"));
  CHECK(m.check_export(m.export_key("b-rsa", "CKM_RSA_AES_KEY_WRAP", "b.byok"), "b-rsa",
                       "CKM_RSA_AES_KEY_WRAP", "b.byok") == "composite");
}

TEST_CASE("quirk module: a token that requires no login is used without a PIN",
          "[modules][quirk]") {
  ModuleUnderTest q = quirk("no-login", {"KEYPORT_QUIRK_PIN=2222"});
  q.keyport_pin = false;  // no KEYPORT_PIN, no --pin-source: nothing to give
  ModuleRig m("quirk-nologin", q);
  m.generate("ec-p256", "nl");
  CHECK(m.list_keys().size() == 1);
  CHECK(m.check_export(m.export_key("nl", "CKM_RSA_AES_KEY_WRAP", "nl.byok"), "nl",
                       "CKM_RSA_AES_KEY_WRAP", "nl.byok") == "composite");
}

TEST_CASE("quirk module: a KEK on a token that requires no login wraps and unwraps without a PIN",
          "[modules][quirk]") {
  ModuleUnderTest q = quirk("no-login", {"KEYPORT_QUIRK_PIN=2222"});
  q.keyport_pin = false;
  ModuleRig m("quirk-nologin-kek", q);
  m.generate("aes-256", "env-kek");
  test::cli::write_text(m.dir() / "plain.txt", "envelope through a token without login\n");
  const std::string kek = sh_quote("pkcs11:token=onprem;object=env-kek");
  const std::string keyring = sh_quote((m.dir() / "app.keyring").string());
  auto enc = m.keyport("envelope encrypt --keyring " + keyring + " --kek " + kek + " -i " +
                       sh_quote((m.dir() / "plain.txt").string()) + " -o " +
                       sh_quote((m.dir() / "plain.kpev").string()));
  INFO(enc.describe());
  REQUIRE(enc.rc == 0);
  auto dec = m.keyport("envelope decrypt --keyring " + keyring + " --kek " + kek + " -i " +
                       sh_quote((m.dir() / "plain.kpev").string()) + " -o " +
                       sh_quote((m.dir() / "back.txt").string()));
  INFO(dec.describe());
  REQUIRE(dec.rc == 0);
  CHECK(test::cli::read_text(m.dir() / "back.txt") == "envelope through a token without login\n");
}

TEST_CASE("quirk module: a token with a PIN pad is logged in with a NULL PIN and says so",
          "[modules][quirk]") {
  ModuleUnderTest q = quirk("pin-pad", {"KEYPORT_QUIRK_PIN=2222"});
  q.keyport_pin = false;
  ModuleRig m("quirk-pinpad", q);
  auto r = m.on_token("key generate --type aes-128 --label pp --json");
  INFO(r.describe());
  CHECK(r.rc == 0);
  CHECK(r.err.find("PIN pad") != std::string::npos);
}

TEST_CASE("quirk module: NUL-padded token strings never reach a URI or a table",
          "[modules][quirk]") {
  ModuleRig m("quirk-nul", quirk("nul-padded"));
  auto r = m.keyport("token list --json");
  INFO(r.describe());
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("%00") == std::string::npos);
  auto j = parse_json_strict(r.out);
  REQUIRE(j.has_value());
  // SoftHSM's initialised token, and the empty slot it always adds.
  int onprem = 0;
  for (const auto& t : (*j)["tokens"]) {
    CHECK(t.value("model", "") == "SoftHSM v2");
    onprem += t.value("label", "") == "onprem" ? 1 : 0;
  }
  CHECK(onprem == 1);
  m.generate("ec-p256", "nul");  // the URI keyport builds finds the token
}

TEST_CASE(
    "quirk module: a key type the module cannot make is refused before anything is "
    "created",
    "[modules][quirk]") {
  // CKM_EC_KEY_PAIR_GEN hidden: no EC type can be made.
  ModuleRig m("quirk-noec", quirk("hide=0x1040"));
  auto r = m.on_token("key generate --type ec-p256 --label e1 --json");
  INFO(r.describe());
  CHECK(r.rc == cli::kExitUnsupported);
  CHECK(r.err.find("CKM_EC_KEY_PAIR_GEN") != std::string::npos);
  CHECK(m.list_keys().empty());
  const Json doctor = m.token_info(true);
  INFO(doctor.dump(2));
  REQUIRE(doctor["key_types"].size() == 10);
  for (const auto& row : doctor["key_types"]) {
    const std::string type = row["key_type"];
    if (type.rfind("ec-", 0) == 0)
      CHECK(row["generate"] != "yes");
    else
      CHECK(row["generate"] == "yes");
    // Key Vault takes RSA and EC, Managed HSM also AES; the composite route works for all.
    CHECK(row["managed_hsm"]["export"] == true);
    CHECK(row["key_vault"]["export"] == (type.rfind("aes-", 0) != 0));
  }
}
