// SPDX-License-Identifier: Apache-2.0
// `keyport vault ...` end to end, on a local folder and on a `keyport vault serve` process: init,
// create-key --kek, download, `byok export` to the downloaded KEK with the vault's kid, import,
// sign, and the signature checked with OpenSSL against the on-prem public key.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/encoding.h"
#include "core/json.h"
#include "core/random.h"
#include "tests/cli/cli_rig.h"
#include "tests/support/support.h"
#include "tests/vault/rest_rig.h"
#include "vault/config.h"

using namespace keyport;
using keyport::test::cli::Rig;
using keyport::test::cli::Run;
using keyport::test::cli::sh_quote;
namespace fs = std::filesystem;

namespace {

Json json_of(const Run& r) {
  INFO(r.describe());
  REQUIRE(r.rc == 0);
  auto j = parse_json_strict(r.out);
  REQUIRE(j.has_value());
  return *j;
}

// OpenSSL's own check of a signature over `data` (DER for EC, PKCS#1 v1.5 for RSA).
bool openssl_verifies(EVP_PKEY* pub, const std::string& data, const Bytes& sig) {
  ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pub) == 1);
  int rc = EVP_DigestVerify(ctx.get(), sig.data(), sig.size(),
                            reinterpret_cast<const unsigned char*>(data.data()), data.size());
  ossl::drain_errors();
  return rc == 1;
}

Bytes file_bytes(const fs::path& p) {
  std::string s = test::cli::read_text(p);
  return Bytes(s.begin(), s.end());
}

// The BYOK round trip that both modes share. `where` is "--data DIR" or "--url ... --token-file
// ... --ca-file ...".
void byok_round_trip(const Rig& rig, const std::string& where, const std::string& target_flag) {
  Json kek =
      json_of(rig.keyport("vault create-key " + where + " --name KEK --kek --size 2048 --json"));
  CHECK(kek["key"]["kty"] == "RSA-HSM");
  CHECK(kek["key"]["key_ops"] == Json::array({"import"}));
  const std::string kid = kek["key"]["kid"].get<std::string>();

  Json dl = json_of(rig.keyport("vault download " + where + " --name KEK -o kek.pem --json"));
  CHECK(dl["kid"] == kid);
  CHECK(test::cli::read_text(rig.dir() / "kek.pem").rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);
  // DER too, as `az keyvault key download -e DER`.
  Run der = rig.keyport("vault download " + where + " --name KEK -o kek.der -e DER");
  INFO(der.describe());
  CHECK(der.rc == 0);

  rig.generate("ec-p256", "app-ec");
  rig.generate("rsa-2048", "app-rsa");
  for (const auto& [label, kty, curve] :
       {std::tuple<std::string, std::string, std::string>{"app-ec", "EC", "P-256"},
        {"app-rsa", "RSA", ""}}) {
    Run exp = rig.keyport("byok export --token onprem --key " + label + " --kek kek.pem --kid " +
                          sh_quote(kid) + " " + target_flag + " -o " + label + ".byok");
    INFO(exp.describe());
    REQUIRE(exp.rc == 0);
    Json imp = json_of(rig.keyport("vault import " + where + " --name " + label + " --byok " +
                                   label + ".byok --kty " + kty +
                                   (curve.empty() ? "" : " --curve " + curve) + " --json"));
    CHECK(imp["key"]["kty"] == kty + "-HSM");
  }

  test::cli::write_text(rig.dir() / "message.txt", "pay 100 to Bob\n");
  const std::string message = "pay 100 to Bob\n";
  Json es =
      json_of(rig.keyport("vault sign " + where +
                          " --name app-ec --alg ES256 --in message.txt -o ec.sig --der --json"));
  CHECK(es["alg"] == "ES256");
  Json rs = json_of(rig.keyport("vault sign " + where +
                                " --name app-rsa --alg RS256 --in message.txt -o rsa.sig --json"));
  CHECK(rs["kid"].get<std::string>().rfind(kid.substr(0, kid.find("/keys/")) + "/keys/app-rsa/",
                                           0) == 0);

  // Checked by OpenSSL with the public key read from the on-prem token (not from the vault).
  auto ec_pub = rig.token_public_key("app-ec");
  auto rsa_pub = rig.token_public_key("app-rsa");
  CHECK(openssl_verifies(ec_pub.get(), message, file_bytes(rig.dir() / "ec.sig")));
  CHECK(openssl_verifies(rsa_pub.get(), message, file_bytes(rig.dir() / "rsa.sig")));
  CHECK_FALSE(openssl_verifies(ec_pub.get(), "pay 900 to Bob\n", file_bytes(rig.dir() / "ec.sig")));

  // The vault agrees, and says no for another message (exit 4).
  Run ok = rig.keyport("vault verify " + where +
                       " --name app-ec --alg ES256 --in message.txt --signature ec.sig --der");
  INFO(ok.describe());
  CHECK(ok.rc == 0);
  CHECK(ok.out.find("valid") != std::string::npos);
  test::cli::write_text(rig.dir() / "other.txt", "pay 900 to Bob\n");
  Run no = rig.keyport("vault verify " + where +
                       " --name app-ec --alg ES256 --in other.txt --signature ec.sig --der");
  CHECK(no.rc == 4);

  Json list = json_of(rig.keyport("vault list " + where + " --json"));
  CHECK(list["value"].size() == 3u);
  Json versions = json_of(rig.keyport("vault versions " + where + " --name app-ec --json"));
  CHECK(versions["value"].size() == 1u);

  // Errors map to exit codes: 404 -> 5, 400 -> 3, 409 -> 6.
  Run missing = rig.keyport("vault get " + where + " --name nope");
  CHECK(missing.rc == 5);
  CHECK(missing.err.find("KeyNotFound") != std::string::npos);
  Run wrong_kty = rig.keyport("vault import " + where + " --name x --byok app-ec.byok --kty RSA");
  CHECK(wrong_kty.rc == 3);
  CHECK(rig.keyport("vault delete " + where + " --name app-rsa").rc == 0);
  Run conflict = rig.keyport("vault create-key " + where + " --name app-rsa --kty RSA-HSM");
  CHECK(conflict.rc == 6);
  CHECK(rig.keyport("vault recover " + where + " --name app-rsa").rc == 0);
  Run recovered = rig.keyport("vault get " + where + " --name app-rsa");
  CHECK(recovered.rc == 0);
}

}  // namespace

TEST_CASE("vault commands on a local folder run the BYOK flow end to end", "[cli][vault]") {
  Rig rig("vault-cli-local");
  const fs::path v = rig.dir() / "vault";
  Json init = json_of(rig.keyport("vault init --data " + sh_quote(v.string()) +
                                  " --flavor key-vault --name contoso --json"));
  CHECK(init["flavor"] == "key-vault");
  // The kid host is contoso.vault.azure.net: byok export needs no --target.
  byok_round_trip(rig, "--data " + sh_quote(v.string()), "");
  // A second init of the same folder is refused (exit 6).
  CHECK(rig.keyport("vault init --data " + sh_quote(v.string())).rc == 6);
  // No vault named: a usage error (exit 3) that says how to name one.
  Run none = rig.keyport("vault list");
  CHECK(none.rc == 3);
  CHECK(none.err.find("--data") != std::string::npos);
}

TEST_CASE("vault commands against a vault server run the BYOK flow over HTTPS", "[cli][vault]") {
  Rig rig("vault-cli-url");
  test::ServerProcess server(rig.dir() / "vault", {"--flavor", "managed-hsm"});
  server.start();
  const std::string where = "--url " + server.url() + " --token-file " +
                            sh_quote(server.token_file().string()) + " --ca-file " +
                            sh_quote(server.ca_file().string());
  // The kid host is 127.0.0.1:<port>: byok export is told the target.
  byok_round_trip(rig, where, "--target managed-hsm");

  // AES goes to Managed HSM.
  rig.generate("aes-256", "app-aes");
  Json kek = json_of(rig.keyport("vault get " + where + " --name KEK --json"));
  Run exp = rig.keyport("byok export --token onprem --key app-aes --kek kek.pem --kid " +
                        sh_quote(kek["key"]["kid"].get<std::string>()) +
                        " --target managed-hsm -o app-aes.byok");
  INFO(exp.describe());
  REQUIRE(exp.rc == 0);
  Json aes = json_of(rig.keyport("vault import " + where +
                                 " --name app-aes --byok app-aes.byok --kty oct --json"));
  CHECK(aes["key"]["kty"] == "oct-HSM");
  Run oct = rig.keyport("vault download " + where + " --name app-aes -o aes.pem");
  CHECK(oct.rc == 8);  // only public keys can be downloaded

  // Authentication and transport failures: 401 -> 7, an untrusted server -> 10.
  test::cli::write_text(rig.dir() / "bad.token", "not-the-token-0123456789\n");
  Run bad = rig.keyport("vault list --url " + server.url() + " --token-file bad.token --ca-file " +
                        sh_quote(server.ca_file().string()));
  CHECK(bad.rc == 7);
  CHECK(bad.err.find("Unauthorized") != std::string::npos);
  CHECK(bad.err.find("not-the-token") == std::string::npos);
  Run untrusted = rig.keyport("vault list --url " + server.url() + " --token-file " +
                              sh_quote(server.token_file().string()));
  CHECK(untrusted.rc == 10);
  // The token can come from the environment too.
  test::cli::RunOptions env;
  env.env = {"KEYPORT_VAULT_TOKEN=" + server.token(), "KEYPORT_VAULT_URL=" + server.url(),
             "KEYPORT_VAULT_CA=" + server.ca_file().string()};
  Run from_env = rig.keyport("vault get --name app-aes --json", env);
  INFO(from_env.describe());
  CHECK(from_env.rc == 0);
  CHECK(server.stop() == 0);
}

TEST_CASE("vault rotation, clock and platform report through the CLI against a running server",
          "[cli][vault][rotation]") {
  Rig rig("vault-cli-rotation");
  const fs::path data = rig.dir() / "vault";
  test::ServerProcess server(data, {"--flavor", "managed-hsm"});
  server.start();
  const std::string where = "--url " + server.url() + " --token-file " +
                            sh_quote(server.token_file().string()) + " --ca-file " +
                            sh_quote(server.ca_file().string());
  const std::string local = "--data " + sh_quote(data.string());

  Json app = json_of(
      rig.keyport("vault create-key " + where + " --name app --kty RSA-HSM --size 2048 --json"));
  const std::string v1 = app["key"]["kid"].get<std::string>().substr(
      app["key"]["kid"].get<std::string>().rfind('/') + 1);
  Json old_ec =
      json_of(rig.keyport("vault create-key " + where + " --name old-ec --kty EC-HSM --json"));

  Json def = json_of(rig.keyport("vault rotation-policy get " + where + " --name app --json"));
  CHECK(def["lifetimeActions"][0]["action"]["type"] == "Notify");
  Run text = rig.keyport("vault rotation-policy get " + where + " --name app");
  CHECK(text.out.find("the default policy") != std::string::npos);
  Json set = json_of(rig.keyport("vault rotation-policy set " + where +
                                 " --name app --rotate-after P30D --expires-in P90D --json"));
  CHECK(set["lifetimeActions"][0]["trigger"]["timeAfterCreate"] == "P30D");
  CHECK(set["attributes"]["expiryTime"] == "P90D");
  Run too_soon =
      rig.keyport("vault rotation-policy set " + where + " --name app --rotate-after P3D");
  CHECK(too_soon.rc == 3);
  CHECK(too_soon.err.find("BadParameter") != std::string::npos);

  // A data key wrapped under version 1.
  const std::string dek = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  Json wrapped =
      json_of(rig.keyport("vault wrap-key " + where + " --name app --alg RSA-OAEP --value " + dek +
                          " -o dek.wrapped --json"));
  CHECK(wrapped["bytes"] == 256);

  // The running server follows the folder's clock.
  Json c29 = json_of(rig.keyport("vault clock " + local + " --advance P29D --json"));
  CHECK(c29["clock_offset"] == 29 * 86400);
  CHECK(json_of(rig.keyport("vault versions " + where + " --name app --json"))["value"].size() ==
        1u);
  json_of(rig.keyport("vault clock " + local + " --advance P2D --json"));
  CHECK(json_of(rig.keyport("vault versions " + where + " --name app --json"))["value"].size() ==
        2u);
  // Version 1 still unwraps; the latest version is another key.
  Json unwrapped = json_of(rig.keyport("vault unwrap-key " + where + " --name app --version " + v1 +
                                       " --alg RSA-OAEP --in dek.wrapped --json"));
  CHECK(hex_encode(*base64url_decode(unwrapped["value"].get<std::string>())) == dek);
  CHECK(
      rig.keyport("vault unwrap-key " + where + " --name app --alg RSA-OAEP --in dek.wrapped").rc ==
      3);
  Json third = json_of(rig.keyport("vault rotate " + where + " --name app --json"));
  CHECK(third["key"]["kty"] == "RSA-HSM");
  CHECK(json_of(rig.keyport("vault versions " + where + " --name app --json"))["value"].size() ==
        3u);

  // Platform 1: the versions created before the cut-over (one second after old-ec was made, by the
  // system clock: "now" could fall in the same second on a fast run; the vault's clock is 31 days
  // ahead, so app's rotated versions are after it and old-ec is before).
  const std::int64_t old_created = old_ec["attributes"]["created"].get<std::int64_t>();
  Json cut = json_of(rig.keyport("vault platform-cutover " + local + " --before " +
                                 std::to_string(old_created + 1) + " --json"));
  CHECK(cut["platform1_before"].is_number_integer());
  Json report = json_of(rig.keyport("vault report platform " + where + " --json"));
  INFO(dump_json(report, 2));
  REQUIRE(report["keys"].size() == 1u);
  CHECK(report["keys"][0]["name"] == "old-ec");
  CHECK(report["keys"][0]["action"] == "rotate");
  Run report_text = rig.keyport("vault report platform " + where);
  CHECK(report_text.out.find("old-ec") != std::string::npos);
  CHECK(report_text.out.find("keyport vault rotate --name old-ec") != std::string::npos);
  CHECK(json_of(rig.keyport("vault get " + where +
                            " --name old-ec --json"))["attributes"]["hsmPlatform"] == "1");
  CHECK(server.stop() == 0);

  // The same report from the folder itself once the server is gone; the clock resets.
  Json again = json_of(rig.keyport("vault report platform " + local + " --json"));
  CHECK(again["keys"].size() == 1u);
  Json reset = json_of(rig.keyport("vault clock " + local + " --reset --json"));
  CHECK(reset["clock_offset"] == 0);
  CHECK(rig.keyport("vault clock --data " + sh_quote((rig.dir() / "nothing").string())).rc == 5);
}

TEST_CASE("vault import takes --kty in any case, as byok request does", "[cli][vault]") {
  Rig rig("vault-cli-kty");
  const std::string where = "--data " + sh_quote((rig.dir() / "vault").string());
  REQUIRE(rig.keyport("vault init " + where + " --name contoso").rc == 0);
  Json kek =
      json_of(rig.keyport("vault create-key " + where + " --name KEK --kek --size 2048 --json"));
  const std::string kid = kek["key"]["kid"].get<std::string>();
  REQUIRE(rig.keyport("vault download " + where + " --name KEK -o kek.pem").rc == 0);
  rig.generate("ec-p256", "app-ec");
  rig.generate("rsa-2048", "app-rsa");
  for (const char* label : {"app-ec", "app-rsa"}) {
    Run exp = rig.keyport("byok export --token onprem --key " + std::string(label) +
                          " --kek kek.pem --kid " + sh_quote(kid) + " -o " + label + ".byok");
    INFO(exp.describe());
    REQUIRE(exp.rc == 0);
  }
  // `keyport byok request` accepts the lower-case spelling; the import sends the same body.
  Run request = rig.keyport("byok request app-ec.byok --name app-ec --kty ec --curve P-256");
  INFO(request.describe());
  REQUIRE(request.rc == 0);
  Json ec = json_of(rig.keyport("vault import " + where +
                                " --name app-ec --byok app-ec.byok --kty ec --curve P-256 --json"));
  CHECK(ec["key"]["kty"] == "EC-HSM");
  CHECK(ec["key"]["crv"] == "P-256");
  Json rsa = json_of(rig.keyport("vault import " + where +
                                 " --name app-rsa --byok app-rsa.byok --kty rsa --json"));
  CHECK(rsa["key"]["kty"] == "RSA-HSM");
  // The -HSM spelling still works, and what the builder refuses is refused before the vault.
  Json again = json_of(rig.keyport("vault import " + where +
                                   " --name app-ec --byok app-ec.byok --kty EC-HSM --curve P-256 "
                                   "--json"));
  CHECK(again["key"]["kty"] == "EC-HSM");
  Run no_curve = rig.keyport("vault import " + where + " --name x --byok app-ec.byok --kty ec");
  CHECK(no_curve.rc == 3);
  CHECK(no_curve.err.find("--curve") != std::string::npos);
  Run not_byok = rig.keyport("vault import " + where + " --name x --byok kek.pem --kty ec");
  CHECK(not_byok.rc == 3);
  CHECK(rig.keyport("vault get " + where + " --name x").rc == 5);
}

TEST_CASE("vault create-key --policy lints the release policy before sending it",
          "[cli][vault][skr]") {
  Rig rig("vault-cli-policy");
  const std::string where = "--data " + sh_quote((rig.dir() / "vault").string());
  REQUIRE(rig.keyport("vault init " + where + " --flavor managed-hsm --name contoso").rc == 0);

  // Two errors: both are listed with their JSON paths, and nothing is created.
  test::cli::write_text(rig.dir() / "bad.json", R"({"version": "2.0", "anyOf": []})");
  Run bad = rig.keyport("vault create-key " + where +
                        " --name skr --kty RSA-HSM --size 2048 --policy bad.json");
  INFO(bad.describe());
  CHECK(bad.rc == 3);
  CHECK(bad.err.find("$.version") != std::string::npos);
  CHECK(bad.err.find("$.anyOf") != std::string::npos);
  CHECK(bad.err.find("nothing was sent") != std::string::npos);
  CHECK(rig.keyport("vault get " + where + " --name skr").rc == 5);
  // Refused before any vault is reached: this folder does not exist.
  Run unreached =
      rig.keyport("vault create-key --data " + sh_quote((rig.dir() / "no-such-vault").string()) +
                  " --name skr --kty RSA-HSM --policy bad.json");
  CHECK(unreached.rc == 3);
  CHECK(unreached.err.find("$.version") != std::string::npos);

  // Warnings are printed and the key is created.
  test::cli::write_text(
      rig.dir() / "warn.json",
      R"({"version": "1.0.0", "anyOf": [{"authority": "http://maa.example", "allOf": [)"
      R"({"claim": "x-ms-isolation-tee.x-ms-attestation-type", "equals": "sevsnpvm"}]}]})");
  Run warned = rig.keyport("vault create-key " + where +
                           " --name skr --kty RSA-HSM --size 2048 --policy warn.json --json");
  INFO(warned.describe());
  CHECK(warned.rc == 0);
  CHECK(warned.err.find("warning") != std::string::npos);
  CHECK(warned.err.find("$.anyOf[0].authority") != std::string::npos);
  Json bundle = json_of(rig.keyport("vault get " + where + " --name skr --json"));
  CHECK(bundle["attributes"]["exportable"] == true);
}

TEST_CASE("vault random prints or writes bytes from a Managed HSM and never clobbers a file",
          "[cli][vault]") {
  Rig rig("vault-cli-random");
  const std::string where = "--data " + sh_quote((rig.dir() / "hsm").string());
  REQUIRE(rig.keyport("vault init " + where + " --flavor managed-hsm --name hsm1").rc == 0);
  Run hex = rig.keyport("vault random " + where + " --count 16");
  INFO(hex.describe());
  REQUIRE(hex.rc == 0);
  CHECK(hex.out.size() == 33);  // 32 hex digits and a newline
  Json j = json_of(rig.keyport("vault random " + where + " --count 8 --json"));
  CHECK(j["count"] == 8);
  REQUIRE(rig.keyport("vault random " + where + " --count 64 -o seed.bin").rc == 0);
  CHECK(std::filesystem::file_size(rig.dir() / "seed.bin") == 64);
  CHECK(rig.keyport("vault random " + where + " --count 64 -o seed.bin").rc != 0);
  CHECK(rig.keyport("vault random " + where + " --count 64 -o seed.bin --force").rc == 0);
  CHECK(rig.keyport("vault random " + where + " --count 129").rc == 3);
  const std::string kv = "--data " + sh_quote((rig.dir() / "kv").string());
  REQUIRE(rig.keyport("vault init " + kv + " --name kv1").rc == 0);
  CHECK(rig.keyport("vault random " + kv + " --count 8").rc == 3);
}

TEST_CASE("vault encrypt and decrypt run AES-GCM and AES-CBCPAD on a Managed HSM oct key",
          "[cli][vault]") {
  Rig rig("vault-cli-aes");
  const std::string where = "--data " + sh_quote((rig.dir() / "hsm").string());
  REQUIRE(rig.keyport("vault init " + where + " --flavor managed-hsm --name hsm1").rc == 0);
  // A known key, so that OpenSSL can check the CBCPAD ciphertext.
  const Bytes k = random_bytes(32);
  test::cli::write_text(rig.dir() / "k.jwk",
                        Json{{"kty", "oct-HSM"}, {"k", base64url_encode(k)}}.dump());
  REQUIRE(rig.keyport("vault import " + where + " --name aes --jwk k.jwk").rc == 0);
  const Bytes msg = random_bytes(1000);
  test::cli::write_text(rig.dir() / "msg", std::string(msg.begin(), msg.end()));

  Json enc =
      json_of(rig.keyport("vault encrypt " + where +
                          " --name aes --alg A256GCM --in msg -o msg.enc --aad 0a0b --json"));
  CHECK(enc["bytes"] == 1000);
  CHECK(enc.contains("value"));  // a ciphertext is not secret
  const std::string iv = enc["iv"].get<std::string>(), tag = enc["tag"].get<std::string>();
  CHECK(iv.size() == 24);
  CHECK(tag.size() == 32);
  const std::string dec = "vault decrypt " + where +
                          " --name aes --alg A256GCM --in msg.enc --iv " + iv + " --tag " + tag;
  REQUIRE(rig.keyport(dec + " --aad 0a0b -o msg.out").rc == 0);
  CHECK(file_bytes(rig.dir() / "msg.out") == msg);
  // Without the aad, or with another tag: refused, and nothing written.
  Run no_aad = rig.keyport(dec + " -o msg.bad");
  CHECK(no_aad.rc == 3);
  CHECK(no_aad.err.find("Decryption failed") != std::string::npos);
  CHECK_FALSE(fs::exists(rig.dir() / "msg.bad"));
  CHECK(rig.keyport("vault decrypt " + where + " --name aes --alg A256GCM --in msg.enc --iv " + iv +
                    " --tag 00" + tag.substr(2) + " --aad 0a0b -o msg.bad")
            .rc == 3);
  CHECK_FALSE(fs::exists(rig.dir() / "msg.bad"));
  // The output file is never clobbered.
  CHECK(rig.keyport(dec + " --aad 0a0b -o msg.out").rc != 0);

  // CBCPAD with our IV: OpenSSL's AES-256-CBC with PKCS#7 padding gives the same bytes.
  const std::string cbc_iv = "000102030405060708090a0b0c0d0e0f";
  Json cbc = json_of(rig.keyport("vault encrypt " + where +
                                 " --name aes --alg A256CBCPAD --in msg -o msg.cbc --iv " + cbc_iv +
                                 " --json"));
  CHECK(cbc["iv"] == cbc_iv);
  CHECK(cbc["bytes"] == 1008);
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  const Bytes ivb = *hex_decode(cbc_iv);
  REQUIRE(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, k.data(), ivb.data()) == 1);
  Bytes expect(msg.size() + 16);
  int n1 = 0, n2 = 0;
  REQUIRE(EVP_EncryptUpdate(ctx.get(), expect.data(), &n1, msg.data(),
                            static_cast<int>(msg.size())) == 1);
  REQUIRE(EVP_EncryptFinal_ex(ctx.get(), expect.data() + n1, &n2) == 1);
  expect.resize(static_cast<std::size_t>(n1 + n2));
  CHECK(file_bytes(rig.dir() / "msg.cbc") == expect);
  REQUIRE(rig.keyport("vault decrypt " + where + " --name aes --alg A256CBCPAD --in msg.cbc --iv " +
                      cbc_iv + " -o msg.cbc.out")
              .rc == 0);
  CHECK(file_bytes(rig.dir() / "msg.cbc.out") == msg);
  // Bad hex is bad input, refused before anything is sent.
  Run bad_hex =
      rig.keyport("vault encrypt " + where + " --name aes --alg A256CBCPAD --in msg --iv xyz");
  CHECK(bad_hex.rc == 3);
  CHECK(bad_hex.err.find("--iv is not hex") != std::string::npos);
}

TEST_CASE("vault backup and restore through the CLI: round trip, no clobber, other domain refused",
          "[cli][vault]") {
  Rig rig("vault-cli-backup");
  const std::string a = "--data " + sh_quote((rig.dir() / "a").string());
  const std::string b = "--data " + sh_quote((rig.dir() / "b").string());
  REQUIRE(rig.keyport("vault init " + a + " --name va --soft-delete-retention-days 7").rc == 0);
  REQUIRE(rig.keyport("vault init " + b + " --name vb").rc == 0);
  CHECK(rig.keyport("vault init --data x --soft-delete-retention-days 6").rc == 2);
  Json k = json_of(rig.keyport("vault create-key " + a + " --name k1 --kty EC-HSM --json"));
  CHECK(k["attributes"]["recoveryLevel"] == "CustomizedRecoverable+Purgeable");
  CHECK(k["attributes"]["recoverableDays"] == 7);
  Json out = json_of(rig.keyport("vault backup k1 " + a + " --out k1.blob --json"));
  CHECK(out["name"] == "k1");
  Run again = rig.keyport("vault backup k1 " + a + " --out k1.blob");
  CHECK(again.rc == 6);  // no clobber without --force
  CHECK(rig.keyport("vault backup k1 " + a + " --out k1.blob --force").rc == 0);
  // Another vault (another backup domain) refuses the blob and stays empty.
  Run other = rig.keyport("vault restore " + b + " k1.blob");
  CHECK(other.rc == 3);
  CHECK(other.err.find("different backup domain") != std::string::npos);
  CHECK(json_of(rig.keyport("vault list " + b + " --json"))["value"].empty());
  // The same vault after delete and purge restores it.
  CHECK(rig.keyport("vault restore " + a + " k1.blob").rc == 6);  // the name exists: 409
  REQUIRE(rig.keyport("vault delete " + a + " --name k1").rc == 0);
  REQUIRE(rig.keyport("vault purge " + a + " --name k1").rc == 0);
  Json restored = json_of(rig.keyport("vault restore " + a + " k1.blob --json"));
  CHECK(restored["key"]["kid"] == k["key"]["kid"]);
  CHECK(rig.keyport("vault backup missing " + a + " --out m.blob").rc == 5);
}

TEST_CASE("vault get-attestation and verify-attestation: verified, tampered, wrong CA",
          "[cli][vault]") {
  Rig rig("vault-cli-attestation");
  const std::string where = "--data " + sh_quote((rig.dir() / "hsm").string());
  REQUIRE(rig.keyport("vault init " + where + " --flavor managed-hsm --name hsm1").rc == 0);
  REQUIRE(rig.keyport("vault create-key " + where + " --name ec --kty EC-HSM").rc == 0);
  Run got = rig.keyport("vault get-attestation " + where + " --name ec -o ec.att.json");
  INFO(got.describe());
  REQUIRE(got.rc == 0);
  CHECK(got.out.find("SIMULATED") != std::string::npos);
  // Against the folder's CA (default for --data) and an explicit --trust.
  Json ok = json_of(rig.keyport("vault verify-attestation " + where + " --name ec --json"));
  CHECK(ok["verified"] == true);
  CHECK(ok["private"]["attributes"]["CKA_LOCAL"] == true);
  const std::string ca = sh_quote((rig.dir() / "hsm" / "tls" / "ca.pem").string());
  CHECK(rig.keyport("vault verify-attestation --in ec.att.json --trust " + ca).rc == 0);
  // Another vault's CA: exit 9 (an attestation check said no).
  const std::string other = "--data " + sh_quote((rig.dir() / "other").string());
  REQUIRE(rig.keyport("vault init " + other + " --flavor managed-hsm --name hsm2").rc == 0);
  REQUIRE(rig.keyport("vault create-key " + other + " --name k --kty EC-HSM").rc == 0);
  REQUIRE(rig.keyport("vault get-attestation " + other + " --name k -o k.att.json").rc == 0);
  Run wrong_ca = rig.keyport("vault verify-attestation --in k.att.json --trust " + ca);
  CHECK(wrong_ca.rc == 9);
  CHECK(wrong_ca.err.find("does not chain") != std::string::npos);
  // The bundle's public key replaced by another key's.
  Json a = *parse_json_strict(test::cli::read_text(rig.dir() / "ec.att.json"));
  Json b = *parse_json_strict(test::cli::read_text(rig.dir() / "k.att.json"));
  a["key"]["x"] = b["key"]["x"];
  a["key"]["y"] = b["key"]["y"];
  test::cli::write_text(rig.dir() / "swapped.json", a.dump());
  Run swapped = rig.keyport("vault verify-attestation --in swapped.json --trust " + ca);
  CHECK(swapped.rc == 9);
  // The file is never clobbered; a Key Vault has no GetKeyAttestation.
  CHECK(rig.keyport("vault get-attestation " + where + " --name ec -o ec.att.json").rc != 0);
  const std::string kv = "--data " + sh_quote((rig.dir() / "kv").string());
  REQUIRE(rig.keyport("vault init " + kv + " --name kv1").rc == 0);
  REQUIRE(rig.keyport("vault create-key " + kv + " --name r --kty EC-HSM").rc == 0);
  CHECK(rig.keyport("vault get-attestation " + kv + " --name r").rc == 3);
}

TEST_CASE("vault full-backup and full-restore: a tampered blob restores nothing, refusals",
          "[cli][vault]") {
  Rig rig("vault-cli-full-backup");
  const std::string where = "--data " + sh_quote((rig.dir() / "hsm").string());
  const std::string storage =
      where + " --backup-storage " + sh_quote((rig.dir() / "storage").string());
  const fs::path container = rig.dir() / "storage" / "acct.blob.core.windows.net" / "bkp";
  fs::create_directories(container);
  test::cli::write_text(rig.dir() / "sas", "sv=2024&sig=simulated\n");
  REQUIRE(rig.keyport("vault init --data " + sh_quote((rig.dir() / "hsm").string()) +
                      " --flavor managed-hsm --name hsm1")
              .rc == 0);
  for (const char* k : {"a", "b"}) {
    REQUIRE(rig.keyport("vault create-key " + where + " --name " + k + " --kty EC-HSM").rc == 0);
  }
  const std::string sas = " --sas-token-file sas";
  Json done = json_of(rig.keyport("vault full-backup " + storage +
                                  " --storage-url https://acct.blob.core.windows.net/bkp" + sas +
                                  " --json"));
  CHECK(done["status"] == "Succeeded");
  const std::string folder_url = done["azureStorageBlobContainerUri"].get<std::string>();
  const std::string folder = folder_url.substr(folder_url.rfind('/') + 1);
  CHECK(fs::exists(container / folder / "keys" / "a.blob"));
  for (const char* k : {"a", "b"}) {
    REQUIRE(rig.keyport("vault delete " + where + " --name " + k).rc == 0);
    REQUIRE(rig.keyport("vault purge " + where + " --name " + k).rc == 0);
  }
  // One character of b's blob changed: the whole restore fails, and a is not restored either.
  const fs::path b_blob = container / folder / "keys" / "b.blob";
  std::string text = test::cli::read_text(b_blob);
  text[text.size() / 2] = text[text.size() / 2] == 'A' ? 'B' : 'A';
  test::cli::write_text(b_blob, text);
  const std::string restore = "vault full-restore " + storage + " --folder-url " + folder_url + sas;
  Run tampered = rig.keyport(restore);
  INFO(tampered.describe());
  CHECK(tampered.rc != 0);
  CHECK(tampered.err.find("job failed") != std::string::npos);
  CHECK(rig.keyport("vault get " + where + " --name a").rc == 5);
  // Selective restore of the untouched key works; then the full restore finds a exists.
  Run selective = rig.keyport(restore + " --key a");
  INFO(selective.describe());
  REQUIRE(selective.rc == 0);
  CHECK(rig.keyport("vault get " + where + " --name a").rc == 0);
  CHECK(rig.keyport(restore).err.find("exists already") != std::string::npos);
  // Refusals before any job: a bad container name, a folder that climbs, no storage configured.
  CHECK(rig.keyport("vault full-backup " + storage +
                    " --storage-url https://acct.blob.core.windows.net/BAD_Name" + sas)
            .rc == 3);
  CHECK(rig.keyport("vault full-restore " + storage +
                    " --folder-url https://acct.blob.core.windows.net/bkp/..%2f.." + sas)
            .rc == 3);
  CHECK(rig.keyport("vault full-backup --data " + sh_quote((rig.dir() / "hsm").string()) +
                    " --storage-url https://acct.blob.core.windows.net/bkp" + sas)
            .rc == 3);
}

TEST_CASE(
    "vault role and setting commands manage Managed HSM local RBAC on a folder and over HTTPS",
    "[cli][vault][rbac]") {
  Rig rig("vault-cli-rbac");
  const fs::path v = rig.dir() / "mhsm";
  json_of(rig.keyport("vault init --data " + sh_quote(v.string()) +
                      " --flavor managed-hsm --name contoso --json"));
  const std::string local = "--data " + sh_quote(v.string());
  Json defs = json_of(rig.keyport("vault role definition list " + local + " --json"));
  CHECK(defs["value"].size() == 9);
  Json user = json_of(rig.keyport("vault role definition show " + local +
                                  " --name 'Managed HSM Crypto User' --json"));
  CHECK(user["name"] == "21dbd100-6940-42c2-9190-5d6cb909625b");
  Json custom =
      json_of(rig.keyport("vault role definition create " + local +
                          " --role-definition '{\"roleName\": \"reader\", \"dataActions\": "
                          "[\"Microsoft.KeyVault/managedHsm/keys/read/action\"]}' --json"));
  CHECK(custom["properties"]["type"] == "CustomRole");
  Run builtin =
      rig.keyport("vault role definition delete " + local + " --name 'Managed HSM Administrator'");
  CHECK(builtin.rc == 3);
  CHECK(rig.keyport("vault role definition list " + local + " --custom-role-only")
            .out.find("reader") != std::string::npos);
  Json setting = json_of(rig.keyport("vault setting update " + local +
                                     " --name AllowKeyManagementOperationsThroughARM --value true "
                                     "--json"));
  CHECK(setting["value"] == "true");
  CHECK(rig.keyport("vault setting update " + local +
                    " --name AllowKeyManagementOperationsThroughARM --value maybe")
            .rc == 3);

  // Over HTTPS: the first serve initialises RBAC for the access file's admin; a second token,
  // added to the access file, needs an assignment.
  test::ServerProcess server(v, {});
  server.start();
  const std::string where = "--url " + server.url() + " --token-file " +
                            sh_quote(server.token_file().string()) + " --ca-file " +
                            sh_quote(server.ca_file().string());
  Json mine =
      json_of(rig.keyport("vault role assignment list " + where + " --assignee admin --json"));
  CHECK(mine["value"].size() == 3);
  json_of(rig.keyport("vault create-key " + where + " --name app --kty oct-HSM --size 256 --json"));
  Json made = json_of(rig.keyport("vault role assignment create " + where +
                                  " --role reader --assignee ci --scope /keys/app --json"));
  CHECK(made["properties"]["scope"] == "/keys/app");
  Json ci = json_of(rig.keyport("vault role assignment list " + where + " --assignee ci --json"));
  CHECK(ci["value"].size() == 1);
  Run del = rig.keyport("vault role assignment delete " + where +
                        " --assignee ci --role reader --scope /keys/app");
  INFO(del.describe());
  CHECK(del.rc == 0);
  Json none = json_of(rig.keyport("vault role assignment list " + where + " --assignee ci --json"));
  CHECK(none["value"].empty());
  Json shown = json_of(rig.keyport("vault setting show " + where +
                                   " --name AllowKeyManagementOperationsThroughARM --json"));
  CHECK(shown["value"] == "true");
  CHECK(server.stop() == 0);
}

TEST_CASE("vault init --backup-domain: a second own-folder vault joins and restores, others refuse",
          "[cli][vault]") {
  Rig rig("vault-cli-join");
  const fs::path dir_a = rig.dir() / "a";
  const std::string a = "--data " + sh_quote(dir_a.string());
  const std::string b = "--data " + sh_quote((rig.dir() / "b").string());
  const std::string c = "--data " + sh_quote((rig.dir() / "c").string());
  REQUIRE(rig.keyport("vault init " + a + " --name va").rc == 0);
  // A vault never opened has no backup domain yet: refused, and nothing is made.
  Run fresh = rig.keyport("vault init " + b + " --backup-domain " + sh_quote(dir_a.string()));
  CHECK(fresh.rc == 12);
  CHECK(fresh.err.find("has no backup domain yet") != std::string::npos);
  CHECK_FALSE(fs::exists(rig.dir() / "b"));
  Json k = json_of(rig.keyport("vault create-key " + a + " --name k1 --kty EC-HSM --json"));
  REQUIRE(rig.keyport("vault backup k1 " + a + " --out k1.blob").rc == 0);

  // Not a vault folder; a folder in use (its lock held, as a running `vault serve` holds it).
  fs::create_directories(rig.dir() / "empty");
  Run not_vault = rig.keyport("vault init " + b + " --backup-domain " +
                              sh_quote((rig.dir() / "empty").string()));
  CHECK(not_vault.rc == 5);
  CHECK(not_vault.err.find("is not a vault folder") != std::string::npos);
  {
    const int fd = ::open((dir_a / "vault.lock").c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
    Run busy = rig.keyport("vault init " + b + " --backup-domain " + sh_quote(dir_a.string()));
    ::close(fd);
    CHECK(busy.rc == 6);
    CHECK(busy.err.find("is in use") != std::string::npos);
    CHECK_FALSE(fs::exists(rig.dir() / "b"));
  }

  Json joined = json_of(rig.keyport("vault init " + b + " --name vb --backup-domain " +
                                    sh_quote(dir_a.string()) + " --json"));
  const std::string domain = joined["backup_domain"].get<std::string>();
  auto config_a = vault::VaultConfig::load(dir_a);
  REQUIRE_OK(config_a);
  CHECK(domain == config_a->backup_domain);
  auto config_b = vault::VaultConfig::load(rig.dir() / "b");
  REQUIRE_OK(config_b);
  CHECK(config_b->backup_domain == domain);
  CHECK_FALSE(config_b->backup_domain_join);
  // Joining again into the same folder: it is a vault now.
  CHECK(rig.keyport("vault init " + b + " --backup-domain " + sh_quote(dir_a.string())).rc == 6);

  // A's backup restores into B and signs there with A's key; C (its own domain) refuses it.
  Json restored = json_of(rig.keyport("vault restore " + b + " k1.blob --json"));
  CHECK(restored["key"]["kid"].get<std::string>().find("/keys/k1/") != std::string::npos);
  CHECK(restored["key"]["x"] == k["key"]["x"]);
  REQUIRE(rig.keyport("vault init " + c + " --name vc").rc == 0);
  Run other = rig.keyport("vault restore " + c + " k1.blob");
  CHECK(other.rc == 3);
  CHECK(other.err.find("different backup domain") != std::string::npos);
  // B's backups restore into A too (one domain, both ways).
  REQUIRE(rig.keyport("vault create-key " + b + " --name k2 --kty EC-HSM").rc == 0);
  REQUIRE(rig.keyport("vault backup k2 " + b + " --out k2.blob").rc == 0);
  CHECK(rig.keyport("vault restore " + a + " k2.blob").rc == 0);
  CHECK(rig.keyport("vault restore " + c + " k2.blob").rc == 3);
}
