// SPDX-License-Identifier: Apache-2.0
// "No key in clear, proven": keyport's export (every key type), the vault's BYOK import and the
// key generation behind them, run through OpenSC's pkcs11-spy wrapping SoftHSM, and the spy's
// log checked (tests/hardening/spy_log.h): no secret attribute value ever read, every session
// object destroyed, every session closed.
//
// The keyport CLI runs as a child process with KEYPORT_PKCS11_MODULE = pkcs11-spy.so and
// PKCS11SPY = SoftHSM (one log per run). The vault runs in this process in attached-token mode on
// the spy module (VaultOptions::module): its own-folder mode loads the SoftHSM library named at
// build time (KEYPORT_VAULT_SOFTHSM_MODULE), so `keyport vault import --data` cannot be pointed at
// the spy without a hook in vault/.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <map>

#include "core/encoding.h"
#include "core/json.h"
#include "pkcs11/module.h"
#include "tests/cli/cli_rig.h"
#include "tests/hardening/spy_log.h"
#include "tests/support/support.h"
#include "vault/release.h"
#include "vault/vault.h"

using namespace keyport;
using keyport::test::cli::Rig;
using keyport::test::cli::Run;
using keyport::test::cli::RunOptions;
using keyport::test::cli::sh_quote;
namespace fs = std::filesystem;
namespace spy = keyport::test::spy;

namespace {

constexpr const char* kSpyModule = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";
constexpr const char* kSoftHsm = "/usr/lib/softhsm/libsofthsm2.so";

const std::string kAllTypes[] = {"rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384",
                                 "ec-p521",  "ec-p256k", "aes-128",  "aes-192", "aes-256"};

std::string describe(const spy::Report& r) {
  std::string s = std::to_string(r.calls) + " calls, " + std::to_string(r.sessions_opened) +
                  " sessions, " + std::to_string(r.ephemeral_objects) + " session objects, " +
                  std::to_string(r.wraps) + " wraps, " + std::to_string(r.unwraps) + " unwraps, " +
                  std::to_string(r.own_plain_reads) + " reads of own non-sensitive objects";
  for (const auto& v : r.violations) {
    s += "\n  VIOLATION: " + v;
  }
  return s;
}

// Runs keyport through the spy; the log goes to <dir>/spy/<name>.log.
Run spied(const Rig& rig, const std::string& name, const std::string& args, fs::path* log) {
  fs::create_directories(rig.dir() / "spy");
  *log = rig.dir() / "spy" / (name + ".log");
  RunOptions o;
  o.keyport_pin = rig.pin();
  o.env = {"KEYPORT_PKCS11_MODULE=" + std::string(kSpyModule), "PKCS11SPY=" + std::string(kSoftHsm),
           "PKCS11SPY_OUTPUT=" + log->string()};
  return rig.keyport(args, o);
}

spy::Report check_log(const fs::path& log) {
  INFO("spy log " << log);
  REQUIRE(fs::exists(log));
  auto calls = spy::parse_file(log);
  REQUIRE(!calls.empty());
  return spy::check(calls);
}

void require_spy() {
  if (!fs::exists(kSpyModule)) {
    FAIL("pkcs11-spy is missing: install opensc-pkcs11 (scripts/setup.sh does)");
  }
}

}  // namespace

TEST_CASE("the spy log checker flags a secret read, a leaked session object and an open session",
          "[hardening][spy]") {
  // A log in pkcs11-spy's format (as OpenSC 0.23 writes it) with one of each violation: the
  // checker must see them, or the real-run checks below would prove nothing.
  const std::string log = R"(
*************** OpenSC PKCS#11 spy *****************
Loaded: "/usr/lib/softhsm/libsofthsm2.so"

1: C_Initialize
2026-11-29 07:04:30.695
[in] pInitArgs = (nil)
Returned:  0 CKR_OK

5: C_OpenSession
2026-11-29 07:04:30.717
[in] slotID = 0x3ed36a1b
[in] flags = 0x6
[out] *phSession = 0x1
Returned:  0 CKR_OK

80: C_GenerateKey
2026-11-29 07:04:30.719
[in] hSession = 0x1
[in] pMechanism->type = CKM_AES_KEY_GEN
[in] pTemplate[3]: 
    CKA_CLASS             CKO_SECRET_KEY       
    CKA_TOKEN             False
    CKA_VALUE_LEN         00007ffe03014338 / 8
    00000000  20 00 00 00 00 00 00 00                           .......        
[out] hKey = 0x2
Returned:  0 CKR_OK

85: C_GetAttributeValue
2026-11-29 07:04:30.768
[in] hSession = 0x1
[in] hObject = 0x2
[in] pTemplate[1]: 
    CKA_VALUE             000055b761c42a70 / 32
[out] pTemplate[1]: 
    CKA_VALUE             000055b761c42a70 / 32
    00000000  00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF  ..."3DUfw........
    00000010  00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF  ..."3DUfw........
Returned:  0 CKR_OK

86: C_GetAttributeValue
2026-11-29 07:04:30.768
[in] hSession = 0x1
[in] hObject = 0x2
[in] pTemplate[1]: 
    CKA_PRIVATE_EXPONENT  0000000000000000 / 0
[out] pTemplate[1]: 
    CKA_PRIVATE_EXPONENT  0000000000000000 / -1
Returned:  17 CKR_ATTRIBUTE_SENSITIVE
)";
  auto calls = spy::parse(log);
  REQUIRE(calls.size() == 5);
  CHECK(calls[2].out.at("hKey") == "0x2");
  CHECK(calls[3].out_templates.at("pTemplate").at(0).length == 32);
  auto r = spy::check(calls);
  INFO(describe(r));
  REQUIRE(r.violations.size() == 3);
  CHECK(r.violations[0].find("returned CKA_VALUE (32 bytes)") != std::string::npos);
  CHECK(r.violations[1].find("never destroyed") != std::string::npos);
  CHECK(r.violations[2].find("never closed") != std::string::npos);
  CHECK(r.sensitive_reads_refused == 1);
}

TEST_CASE("the spy log checker sees a real secret read through pkcs11-spy", "[hardening][spy]") {
  // The control on the real log format: pkcs11-tool reads the value of a NON-sensitive AES key
  // through the spy; the checker must flag exactly that read.
  require_spy();
  Rig rig("spy-control");
  fs::path log = rig.dir() / "control.log";
  const std::string tool =
      "env PKCS11SPY=" + std::string(kSoftHsm) + " PKCS11SPY_OUTPUT=" + sh_quote(log.string()) +
      " pkcs11-tool --module " + kSpyModule + " --token-label onprem --login --pin " + rig.pin();
  Run gen = rig.shell(tool + " --keygen --key-type AES:32 --label plain --id 01 --extractable");
  INFO(gen.describe());
  REQUIRE(gen.rc == 0);
  Run read = rig.shell(tool + " --read-object --type secrkey --label plain");
  INFO(read.describe());
  REQUIRE(read.rc == 0);
  auto r = check_log(log);
  INFO(describe(r));
  bool flagged = false;
  for (const auto& v : r.violations) {
    flagged = flagged || v.find("returned CKA_VALUE (32 bytes)") != std::string::npos;
  }
  CHECK(flagged);
}

TEST_CASE(
    "no key leaves in clear: key generate and byok export of every key type through "
    "pkcs11-spy, and the vault's import of each",
    "[hardening][spy]") {
  require_spy();
  Rig rig("spy-flow");
  Run init = rig.shell("softhsm2-util --init-token --free --label vault --so-pin 3333 --pin 4444");
  INFO(init.describe());
  REQUIRE(init.rc == 0);

  // The vault, in this process, on the spy (its own log).
  const fs::path vault_log = rig.dir() / "spy" / "vault.log";
  fs::create_directories(vault_log.parent_path());
  ::setenv("SOFTHSM2_CONF", rig.conf().c_str(), 1);
  ::setenv("PKCS11SPY", kSoftHsm, 1);
  ::setenv("PKCS11SPY_OUTPUT", vault_log.c_str(), 1);
  const fs::path vdir = rig.dir() / "vault-data";
  vault::VaultConfig config;
  config.flavor = vault::Flavor::kManagedHsm;
  config.name = "spyhsm";
  config.base_url = "https://spyhsm.managedhsm.azure.net";
  REQUIRE_OK(vault::Vault::init(vdir, config));
  std::vector<std::pair<std::string, std::string>> imported;  // name, kty
  {
    auto module = p11::Module::load(kSpyModule);
    REQUIRE_OK(module);
    vault::VaultOptions o;
    o.module = *module;
    o.token_label = "vault";
    o.pin = SecretBytes::from_string("4444");
    auto opened = vault::Vault::open(vdir, std::move(o));
    REQUIRE_OK(opened);
    auto& v = **opened;
    const vault::CallContext ctx{"spy-test"};
    auto kek = v.create_key(ctx, "KEK",
                            Json{{"kty", "RSA-HSM"}, {"key_size", 2048}, {"key_ops", {"import"}}});
    REQUIRE_OK(kek);
    const std::string kid = (*kek)["key"]["kid"].get<std::string>();
    test::cli::write_text(rig.dir() / "kek.json", dump_json(*kek));

    for (const auto& type : kAllTypes) {
      INFO("key type " << type);
      fs::path log;
      Run gen = spied(rig, "generate-" + type,
                      "key generate --token onprem --type " + type + " --label k-" + type, &log);
      INFO(gen.describe());
      REQUIRE(gen.rc == 0);
      auto rg = check_log(log);
      INFO(describe(rg));
      CHECK(rg.violations.empty());

      Run exp = spied(rig, "export-" + type,
                      "byok export --token onprem --key k-" + type + " --kek kek.json --kid " +
                          sh_quote(kid) + " -o k-" + type + ".byok --json",
                      &log);
      INFO(exp.describe());
      REQUIRE(exp.rc == 0);
      auto re = check_log(log);
      INFO(describe(re));
      CHECK(re.violations.empty());
      CHECK(re.wraps >= 1);              // the target really left through C_WrapKey
      CHECK(re.ephemeral_objects >= 1);  // the transfer key (and the KEK as a session object)
      auto report = parse_json_strict(exp.out);
      REQUIRE_OK(report);
      const std::string kty = (*report)["key"]["kty"].get<std::string>();

      Json key{
          {"kty", kty},
          {"key_hsm",
           base64url_encode(as_bytes(test::cli::read_text(rig.dir() / ("k-" + type + ".byok"))))}};
      if (kty == "EC-HSM") {
        const std::map<std::string, std::string> curves = {{"ec-p256", "P-256"},
                                                           {"ec-p384", "P-384"},
                                                           {"ec-p521", "P-521"},
                                                           {"ec-p256k", "P-256K"}};
        key["crv"] = curves.at(type);
      }
      auto bundle = v.import_key(ctx, "k-" + type, Json{{"key", key}});
      INFO(dump_json((*report)["key"]));
      REQUIRE_OK(bundle);
      imported.emplace_back("k-" + type, kty);
    }
  }  // the vault closes its sessions; the module finalizes when its last user goes

  auto rv = check_log(vault_log);
  INFO(describe(rv));
  CHECK(rv.violations.empty());
  CHECK(rv.unwraps >= std::size(kAllTypes));  // every import went through C_UnwrapKey
  CHECK(imported.size() == std::size(kAllTypes));
  CHECK(rv.functions["C_Finalize"] == 1);
}

TEST_CASE(
    "no key leaves in clear: Secure Key Release from the vault and the enclave's in-token "
    "unwrap through pkcs11-spy",
    "[hardening][spy]") {
  require_spy();
  Rig rig("spy-release");
  Run init = rig.shell("softhsm2-util --init-token --free --label vault --so-pin 3333 --pin 4444");
  INFO(init.describe());
  REQUIRE(init.rc == 0);

  // The simulated authority, and the enclave's runtime key inside the on-prem token (through the
  // spy: the key is made non-extractable there).
  const fs::path auth = rig.dir() / "authority";
  Run a = rig.keyport("attest init --data " + sh_quote(auth.string()));
  INFO(a.describe());
  REQUIRE(a.rc == 0);
  fs::path log;
  Run keygen = spied(rig, "enclave-keygen",
                     "enclave keygen --token onprem --label runtime --pub runtime.pub.pem", &log);
  INFO(keygen.describe());
  REQUIRE(keygen.rc == 0);
  auto rk = check_log(log);
  INFO(describe(rk));
  CHECK(rk.violations.empty());
  Run tok = rig.keyport("attest token --authority " + sh_quote(auth.string()) +
                        " --runtime-key runtime.pub.pem --type sevsnpvm -o token.jwt");
  INFO(tok.describe());
  REQUIRE(tok.rc == 0);
  std::string token = test::cli::read_text(rig.dir() / "token.jwt");
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) {
    token.pop_back();
  }
  auto authority_doc = parse_json_strict(test::cli::read_text(auth / "trusted-authorities.json"));
  REQUIRE_OK(authority_doc);
  const std::string issuer = (*authority_doc)["authorities"][0]["issuer"].get<std::string>();

  // The vault on the spy releases three exportable keys to that token.
  const fs::path vault_log = rig.dir() / "spy" / "vault.log";
  fs::create_directories(vault_log.parent_path());
  ::setenv("SOFTHSM2_CONF", rig.conf().c_str(), 1);
  ::setenv("PKCS11SPY", kSoftHsm, 1);
  ::setenv("PKCS11SPY_OUTPUT", vault_log.c_str(), 1);
  const fs::path vdir = rig.dir() / "vault-data";
  vault::VaultConfig config;
  config.flavor = vault::Flavor::kManagedHsm;
  config.name = "spyhsm";
  config.base_url = "https://spyhsm.managedhsm.azure.net";
  REQUIRE_OK(vault::Vault::init(vdir, config));
  test::cli::write_text(vdir / vault::kTrustedAuthoritiesFile, dump_json(*authority_doc));
  const std::string policy = dump_json(Json{
      {"version", "1.0.0"},
      {"anyOf", Json::array({Json{{"authority", issuer},
                                  {"allOf", Json::array({Json{{"claim", "x-ms-attestation-type"},
                                                              {"equals", "sevsnpvm"}}})}}})}});
  const Json release_policy{{"contentType", "application/json; charset=utf-8"},
                            {"data", base64url_encode(as_bytes(policy))}};
  const std::vector<std::pair<std::string, Json>> keys = {
      {"rel-rsa", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}},
      {"rel-ec", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}}},
      {"rel-aes", Json{{"kty", "oct-HSM"}, {"key_size", 256}}}};
  {
    auto module = p11::Module::load(kSpyModule);
    REQUIRE_OK(module);
    vault::VaultOptions o;
    o.module = *module;
    o.token_label = "vault";
    o.pin = SecretBytes::from_string("4444");
    auto opened = vault::Vault::open(vdir, std::move(o));
    REQUIRE_OK(opened);
    auto& v = **opened;
    const vault::CallContext ctx{"spy-test"};
    vault::ReleaseService service(v);
    for (const auto& [name, params] : keys) {
      INFO("key " << name);
      Json p = params;
      p["attributes"] = Json{{"exportable", true}};
      p["release_policy"] = release_policy;
      REQUIRE_OK(v.create_key(ctx, name, p));
      auto released = service.release(ctx, name, "", Json{{"target", token}}, "7.4");
      REQUIRE_OK(released);
      test::cli::write_text(rig.dir() / (name + ".release.json"), dump_json(*released));
    }
  }
  auto rv = check_log(vault_log);
  INFO(describe(rv));
  CHECK(rv.violations.empty());
  CHECK(rv.wraps >= keys.size());  // each release wrapped inside the vault token

  // The enclave unwraps each released key inside its token, through the spy.
  for (const auto& [name, params] : keys) {
    INFO("key " << name);
    Run un = spied(rig, "enclave-unwrap-" + name,
                   "enclave unwrap --release " + name + ".release.json --vault-ca " +
                       sh_quote((vdir / "tls" / "ca.pem").string()) +
                       " --vault-host spyhsm.managedhsm.azure.net --token onprem --key runtime" +
                       " --label released-" + name,
                   &log);
    INFO(un.describe());
    REQUIRE(un.rc == 0);
    auto re = check_log(log);
    INFO(describe(re));
    CHECK(re.violations.empty());
    CHECK(re.unwraps >= 1);
  }
}

TEST_CASE(
    "no key leaves in clear: envelope encryption and a migration between two token KEKs "
    "through pkcs11-spy",
    "[hardening][spy]") {
  require_spy();
  Rig rig("spy-migrate");
  const std::string old_kek = "pkcs11:token=onprem;object=kek-old";
  const std::string new_kek = "pkcs11:token=onprem;object=kek-new";
  fs::path log;
  for (const char* label : {"kek-old", "kek-new"}) {
    Run gen =
        spied(rig, std::string("generate-") + label,
              std::string("key generate --token onprem --type aes-256 --label ") + label, &log);
    INFO(gen.describe());
    REQUIRE(gen.rc == 0);
  }
  test::cli::write_text(rig.dir() / "message.txt", std::string(200000, 'm') + "end\n");
  const std::string pin = " --pin-source env:KEYPORT_PIN";
  std::vector<std::pair<std::string, std::string>> steps = {
      {"envelope-encrypt", "envelope encrypt --keyring keyring.db --kek " + sh_quote(old_kek) +
                               pin + " -i message.txt -o message.env"},
      {"migrate-plan", "migrate plan --keyring keyring.db --from " + sh_quote(old_kek) + " --to " +
                           sh_quote(new_kek) + pin},
      {"migrate-run", "migrate run --keyring keyring.db --from " + sh_quote(old_kek) + " --to " +
                          sh_quote(new_kek) + pin},
      {"migrate-verify", "migrate verify --keyring keyring.db --from " + sh_quote(old_kek) +
                             " --to " + sh_quote(new_kek) + pin},
      {"envelope-decrypt", "envelope decrypt --keyring keyring.db --kek " + sh_quote(new_kek) +
                               pin + " -i message.env -o message.out"},
  };
  for (const auto& [name, args] : steps) {
    INFO("step " << name);
    Run r = spied(rig, name, args, &log);
    INFO(r.describe());
    REQUIRE(r.rc == 0);
    auto report = check_log(log);
    INFO(describe(report));
    CHECK(report.violations.empty());
    if (report.own_plain_reads > 0) {
      WARN(name << ": " << report.own_plain_reads
                << " value(s) read back from keyport's own non-sensitive session objects");
    }
  }
  CHECK(test::cli::read_text(rig.dir() / "message.out") ==
        test::cli::read_text(rig.dir() / "message.txt"));
}
