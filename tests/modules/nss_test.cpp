// SPDX-License-Identifier: Apache-2.0
// keyport against NSS softoken (Debian's libnss3), on a fresh NSS database made with certutil
// (libnss3-tools). NSS needs its init string, reads CK_ULONG attributes only with their exact
// size, gives CKM_AES_KEY_WRAP_PAD the PKCS#7 meaning and RFC 5649 the code
// CKM_AES_KEY_WRAP_KWP, does OAEP with SHA-256 and SHA-384 (SoftHSM 2.6.1 does not), and has no
// secp256k1.
#include <catch2/catch.hpp>

#include "cli/exit_codes.h"
#include "tests/modules/module_rig.h"

using namespace keyport;
using keyport::test::cli::sh_quote;
using keyport::test::modules::ModuleRig;
using keyport::test::modules::ModuleUnderTest;
namespace fs = std::filesystem;

namespace {

constexpr const char* kNssToken = "NSS Certificate DB";

std::string init_args(const fs::path& db) {
  return "configdir='sql:" + db.string() + "' certPrefix='' keyPrefix='' secmod='secmod.db' flags=";
}

// A fresh NSS database in <rig>/nssdb with `password` ("" for none), and how keyport reaches it.
ModuleUnderTest nss_database(const test::cli::Rig& base, const std::string& password) {
  const fs::path db = base.dir() / "nssdb";
  fs::create_directories(db);
  const fs::path pw = base.dir() / "nss-password";
  test::cli::write_text(pw, password + "\n");
  auto r = base.shell(password.empty()
                          ? "certutil -N -d " + sh_quote("sql:" + db.string()) + " --empty-password"
                          : "certutil -N -d " + sh_quote("sql:" + db.string()) + " -f " +
                                sh_quote(pw.string()));
  INFO(r.describe() << "\n(certutil is in Debian's libnss3-tools: scripts/setup.sh installs it)");
  REQUIRE(r.rc == 0);
  ModuleUnderTest m;
  m.global_args =
      "--module " + sh_quote(KEYPORT_NSS_MODULE) + " --module-init-args " + sh_quote(init_args(db));
  m.token = kNssToken;
  m.keyport_pin = false;
  if (!password.empty())
    m.pin_args = "--pin-source file:" + sh_quote(pw.string());
  return m;
}

// A rig whose module is NSS on a database in its own folder.
struct NssRig {
  explicit NssRig(const std::string& stem, const std::string& password = "nss-pin-8193")
      : rig(stem, [&](const test::cli::Rig& r) { return nss_database(r, password); }) {}
  ModuleRig rig;
};

}  // namespace

TEST_CASE("NSS softoken: every key type it makes exports with each enc and opens with OpenSSL",
          "[modules][nss]") {
  NssRig n("nss-all");
  ModuleRig& m = n.rig;
  const Json info = m.token_info();
  INFO(info.dump(2));
  CHECK(info["self_tests"]["oaep_hashes"]["SHA-256"]["rsa_oaep"] == "passed");
  CHECK(info["self_tests"]["oaep_hashes"]["SHA-384"]["rsa_oaep"] == "passed");
  const std::vector<std::string> encs = {"CKM_RSA_AES_KEY_WRAP", "RSA_AES_KEY_WRAP_256",
                                         "RSA_AES_KEY_WRAP_384"};
  int n_exports = 0;
  for (const std::string type : {"rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384",
                                 "ec-p521", "aes-128", "aes-192", "aes-256"}) {
    m.generate(type, "k-" + type);
    for (const auto& enc : encs) {
      const std::string file = type + "-" + enc + ".byok";
      CHECK(m.check_export(m.export_key("k-" + type, enc, file), "k-" + type, enc, file) ==
            "composite");
      ++n_exports;
    }
  }
  CHECK(n_exports == 27);
}

TEST_CASE(
    "NSS softoken: RFC 5649 is proven under CKM_AES_KEY_WRAP_KWP, and CKM_AES_KEY_WRAP_PAD "
    "is found not to be it",
    "[modules][nss]") {
  NssRig n("nss-kwp");
  const Json info = n.rig.token_info();
  INFO(info.dump(2));
  bool kwp = false, pad = false;
  for (const auto& c : info["self_tests"]["rfc5649_candidates"]) {
    if (c["mechanism"] == "CKM_AES_KEY_WRAP_KWP") {
      kwp = true;
      CHECK(c["rfc5649"] == "yes");
    }
    if (c["mechanism"] == "CKM_AES_KEY_WRAP_PAD") {
      pad = true;
      CHECK(c["rfc5649"] == "no");
    }
  }
  CHECK(kwp);
  CHECK(pad);
  CHECK(info["capabilities"]["aes_kwp"] == "CKM_AES_KEY_WRAP_KWP");
}

TEST_CASE("NSS softoken: secp256k1, which it cannot make, is refused before anything is created",
          "[modules][nss]") {
  NssRig n("nss-k1");
  auto r = n.rig.on_token("key generate --type ec-p256k --label k1 --json");
  INFO(r.describe());
  CHECK(r.rc == cli::kExitUnsupported);
  CHECK(r.err.find("curve") != std::string::npos);
  CHECK(n.rig.list_keys().empty());
  const Json doctor = n.rig.token_info(true);
  for (const auto& row : doctor["key_types"]) {
    if (row["key_type"] == "ec-p256k")
      CHECK(row["generate"] != "yes");
    else
      CHECK(row["generate"] == "yes");
  }
}

TEST_CASE("NSS softoken: without its init string the error says what it needs", "[modules][nss]") {
  ModuleUnderTest m;
  m.global_args = "--module " + sh_quote(KEYPORT_NSS_MODULE);
  ModuleRig rig("nss-noinit", m);
  auto r = rig.keyport("token list");
  INFO(r.describe());
  CHECK(r.rc == cli::kExitBadInput);
  CHECK(r.err.find("configdir=") != std::string::npos);
  CHECK(r.err.find("certutil -N") != std::string::npos);
}

TEST_CASE("NSS softoken: a database without a password is used without a PIN", "[modules][nss]") {
  NssRig n("nss-nopw", "");
  ModuleRig& m = n.rig;
  m.generate("ec-p256", "np");
  CHECK(m.check_export(m.export_key("np", "RSA_AES_KEY_WRAP_256", "np.byok"), "np",
                       "RSA_AES_KEY_WRAP_256", "np.byok") == "composite");
}
