// SPDX-License-Identifier: Apache-2.0
// Keys made by keyport work with admins' existing tooling: OpenSSL's pkcs11 engine (libp11)
// signs with them through the PKCS#11 URI keyport prints, and the signature verifies against the
// public key read from the token. libp11 itself cannot wrap and makes non-extractable keys
// (spec softhsm-2.6.1.md §7), so it is an interop check only, never a BYOK path.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "core/json.h"
#include "tests/cli/cli_rig.h"
#include "tests/support/support.h"

namespace {

namespace fs = std::filesystem;
using keyport::Json;
using keyport::test::cli::Rig;
using keyport::test::cli::Run;
using keyport::test::cli::sh_quote;

constexpr const char* kEnginePath = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";

// An OpenSSL configuration that loads the pkcs11 engine on SoftHSM (spec §7).
fs::path write_engine_config(const Rig& rig) {
  const fs::path conf = rig.dir() / "openssl-pkcs11.cnf";
  keyport::test::cli::write_text(conf, std::string("openssl_conf = openssl_init\n"
                                                   "\n"
                                                   "[openssl_init]\n"
                                                   "engines = engine_section\n"
                                                   "\n"
                                                   "[engine_section]\n"
                                                   "pkcs11 = pkcs11_section\n"
                                                   "\n"
                                                   "[pkcs11_section]\n"
                                                   "engine_id = pkcs11\n"
                                                   "dynamic_path = ") +
                                           kEnginePath +
                                           "\n"
                                           "MODULE_PATH = " +
                                           keyport::test::cli::kSoftHsmModule +
                                           "\n"
                                           "init = 0\n");
  return conf;
}

// Generates `type` as `label` with keyport, signs a SHA-256 digest through the engine using the
// URI keyport printed, and verifies it with the token's public key; a digest of other data must
// not verify.
void sign_through_engine_and_verify(const Rig& rig, const fs::path& openssl_conf,
                                    const std::string& type, const std::string& label) {
  const Json key = rig.generate(type, label);
  const std::string uri = key.value("uri", "");
  INFO("keyport's URI: " << uri);
  REQUIRE(uri.starts_with("pkcs11:"));
  CHECK(uri.find("object=" + label) != std::string::npos);
  CHECK(uri.find("type=private") != std::string::npos);

  const fs::path data = rig.dir() / (label + ".data");
  const fs::path other = rig.dir() / (label + ".other");
  const fs::path dgst = rig.dir() / (label + ".dgst.bin");
  const fs::path other_dgst = rig.dir() / (label + ".other-dgst.bin");
  const fs::path sig = rig.dir() / (label + ".sig.bin");
  const fs::path pub_der = rig.dir() / (label + ".pub.der");
  const fs::path pub_pem = rig.dir() / (label + ".pub.pem");
  keyport::test::cli::write_text(data, "keyport interop: " + label + "\n");
  keyport::test::cli::write_text(other, "something else entirely\n");

  Run d = rig.shell("openssl dgst -sha256 -binary -out " + sh_quote(dgst.string()) + " " +
                    sh_quote(data.string()) + " && openssl dgst -sha256 -binary -out " +
                    sh_quote(other_dgst.string()) + " " + sh_quote(other.string()));
  {
    INFO(d.describe());
    REQUIRE(d.rc == 0);
  }

  // The private key, addressed only by keyport's URI (+ the PIN), through libp11.
  const std::string inkey = uri + ";pin-value=" + rig.pin();
  Run s = rig.shell("env OPENSSL_CONF=" + sh_quote(openssl_conf.string()) +
                    " openssl pkeyutl -sign -engine pkcs11 -keyform engine -inkey " +
                    sh_quote(inkey) + " -pkeyopt digest:sha256 -in " + sh_quote(dgst.string()) +
                    " -out " + sh_quote(sig.string()));
  {
    INFO(s.describe());
    REQUIRE(s.rc == 0);
    REQUIRE(fs::exists(sig));
    REQUIRE(fs::file_size(sig) > 0);
  }

  // The public key, read from the token without keyport and without libp11.
  Run p =
      rig.shell(std::string("pkcs11-tool --module ") + keyport::test::cli::kSoftHsmModule +
                " --token-label onprem --read-object --type pubkey --label " + sh_quote(label) +
                " -o " + sh_quote(pub_der.string()) + " && openssl pkey -pubin -inform DER -in " +
                sh_quote(pub_der.string()) + " -out " + sh_quote(pub_pem.string()));
  {
    INFO(p.describe());
    REQUIRE(p.rc == 0);
  }

  const std::string verify = "openssl pkeyutl -verify -pubin -inkey " + sh_quote(pub_pem.string()) +
                             " -pkeyopt digest:sha256 -sigfile " + sh_quote(sig.string()) + " -in ";
  Run v = rig.shell(verify + sh_quote(dgst.string()));
  {
    INFO(v.describe());
    CHECK(v.rc == 0);
    CHECK_THAT(v.out, Catch::Matchers::Contains("Signature Verified Successfully"));
  }
  // The check can fail: the same signature over another digest does not verify.
  Run bad = rig.shell(verify + sh_quote(other_dgst.string()));
  INFO(bad.describe());
  CHECK(bad.rc != 0);
  CHECK_THAT(bad.out, !Catch::Matchers::Contains("Signature Verified Successfully"));
}

}  // namespace

TEST_CASE("keys keyport generates sign through the OpenSSL pkcs11 engine by their URI",
          "[interop]") {
  INFO("the OpenSSL pkcs11 engine " << kEnginePath
                                    << " (libengine-pkcs11-openssl: scripts/setup.sh installs it)");
  REQUIRE(fs::exists(kEnginePath));
  Rig rig("libp11-engine");
  const fs::path conf = write_engine_config(rig);
  SECTION("EC P-256") {
    sign_through_engine_and_verify(rig, conf, "ec-p256", "interop-ec");
  }
  SECTION("RSA 2048") {
    sign_through_engine_and_verify(rig, conf, "rsa-2048", "interop-rsa");
  }
}
