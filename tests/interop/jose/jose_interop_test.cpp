// SPDX-License-Identifier: Apache-2.0
// keyport's JOSE output checked by code keyport did not write: the npm "jose" library verifies
// tokens of the SIMULATED authority (with its JWKS) and a release response made by
// skr::build_release_response (with its x5c leaf), and rejects tampered copies (label interop).
// Fails, saying what to do, when Node.js or tests/interop/jose/node_modules is missing.
#include <catch2/catch.hpp>

#include <cctype>
#include <filesystem>
#include <string>

#include "byok/crypto.h"
#include "core/file_io.h"
#include "core/random.h"
#include "core/x509.h"
#include "skr/enclave.h"
#include "skr/jws.h"
#include "tests/skr/skr_rig.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::skr;
using namespace keyport::test::skr;
namespace fs = std::filesystem;

namespace {

void put(const fs::path& dir, const std::string& name, const std::string& text) {
  REQUIRE_OK(write_file_atomic(dir / name, text + "\n", WriteOptions{true, 0644}));
}

// Flips one character of the payload part of a compact JWS.
std::string tamper(const std::string& jws) {
  std::string out = jws;
  const auto at = out.find('.') + 10;
  out[at] = out[at] == 'A' ? 'B' : 'A';
  return out;
}

}  // namespace

TEST_CASE("the npm jose library verifies keyport tokens and release responses", "[interop][jose]") {
  const fs::path script_dir = keyport::test::source_dir() / "tests" / "interop" / "jose";
  if (keyport::test::run_command("node --version") != 0) {
    FAIL("Node.js is not installed: install nodejs (20 or later), then run scripts/setup.sh");
  }
  if (!fs::exists(script_dir / "node_modules" / "jose" / "package.json")) {
    FAIL(
        "tests/interop/jose/node_modules is missing: run scripts/setup.sh (it runs "
        "npm ci --prefix tests/interop/jose)");
  }
  AuthorityRig rig("jose");
  const fs::path dir = keyport::test::make_scratch_subdir("jose-interop");
  put(dir, "jwks.json", dump_json(rig.authority().jwks()));
  put(dir, "issuer.txt", rig.authority().url());
  put(dir, "now.txt", std::to_string(kNow + 60));
  for (PlatformType type : {PlatformType::kSevSnpVm, PlatformType::kTdxVm, PlatformType::kSgx,
                            PlatformType::kAzureVm}) {
    MintOptions o;
    o.type = type;
    put(dir, "token-" + std::string(to_string(type)) + ".jwt", rig.mint(o));
  }
  put(dir, "token-tampered.jwt", tamper(rig.mint()));

  // The vault's half: a CA, a signing certificate it issued, and a released AES key.
  auto ca_key = x509::generate_rsa_key(2048);
  REQUIRE_OK(ca_key);
  x509::CertificateRequest ca_req;
  ca_req.common_name = "keyport SIMULATED vault CA";
  ca_req.is_ca = true;
  auto ca = x509::make_certificate(ca_req, **ca_key, **ca_key, nullptr);
  REQUIRE_OK(ca);
  EVP_PKEY& leaf_key = rsa_key(12);
  x509::CertificateRequest leaf_req;
  leaf_req.common_name = "contoso.vault.azure.net";
  leaf_req.dns_names = {"contoso.vault.azure.net"};
  auto leaf = x509::make_certificate(leaf_req, leaf_key, **ca_key, ca->get());
  REQUIRE_OK(leaf);
  auto signer = SoftwareSigner::from_private_key(pkcs8_pem(leaf_key), JwsAlg::kRs256);
  REQUIRE_OK(signer);
  const std::string runtime_kid = jwk_thumbprint(rig.runtime_public());
  ReleaseResponseInput in;
  in.request_kid = "https://contoso.vault.azure.net/keys/k";
  in.enc = WrapAlg::kRsaAesKeyWrap256;
  in.key_bundle =
      Json{{"key",
            Json{{"kid", "https://contoso.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef"},
                 {"kty", "oct-HSM"},
                 {"key_ops", Json::array({"encrypt", "decrypt"})}}},
           {"attributes", Json{{"enabled", true}, {"exportable", true}}},
           {"tags", Json::object()}};
  in.runtime_kid = runtime_kid;
  auto wrapped = byok::rsa_aes_wrap(rig.runtime_public().spki_der(), in.enc, random_secret(32));
  REQUIRE_OK(wrapped);
  in.wrapped_key = *wrapped;
  auto jws = build_release_response(in, *signer,
                                    {x509::certificate_der(**leaf), x509::certificate_der(**ca)});
  REQUIRE_OK(jws);
  put(dir, "release.json", dump_json(Json{{"value", *jws}}));
  put(dir, "release-tampered.json", dump_json(Json{{"value", tamper(*jws)}}));
  const Bytes t1 = x509::thumbprint_sha1(**leaf);
  std::string kid = hex_encode(t1);
  for (char& c : kid) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  put(dir, "release-x5t.txt", base64url_encode(t1));
  put(dir, "release-kid.txt", kid);
  put(dir, "runtime-kid.txt", runtime_kid);

  std::string out;
  const int rc = keyport::test::run_command(
      "node '" + (script_dir / "verify.mjs").string() + "' '" + dir.string() + "'", &out);
  INFO(out);
  CHECK(rc == 0);
  // verify.mjs starts a failed check's line with "FAIL " (jose's own error names, such as
  // ERR_JWS_SIGNATURE_VERIFICATION_FAILED for the expected rejections, may appear in details).
  CHECK(out.rfind("FAIL ", 0) == std::string::npos);
  CHECK(out.find("\nFAIL ") == std::string::npos);
  CHECK(out.find("8/8 checks passed") != std::string::npos);
}
