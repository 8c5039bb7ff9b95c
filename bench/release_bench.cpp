// SPDX-License-Identifier: Apache-2.0
// Secure Key Release under load, in one process on SoftHSM2: releases per second over HTTPS
// (POST /keys/{name}/release) from 4 concurrent clients, against the floor measured in the same
// run: the three things a release cannot avoid, timed alone and added up per release --
//   1. verifying the attestation token (skr::AttestationVerifier, the authority's keys given);
//   2. the wrap calls on the vault token (import the runtime public key as a session object,
//      C_GenerateKey of the AES-256 transfer key, C_WrapKey AES-KWP of the vault key, C_WrapKey
//      RSA-OAEP of the AES key: p11::wrap_rsa_aes on the key's own token object);
//   3. the RS256 signature of a release payload of the real size.
// Goal: releases >= 0.6 of the floor.
//
//   keyport_bench_release [--releases N] [--clients C] [--rounds R]
//
// It prints figures and ratios; it asserts nothing.
#include <httplib.h>
#include <signal.h>

#include <cstring>
#include <ctime>
#include <fstream>

#include "bench/attached_vault.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/x509.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "skr/attestation.h"
#include "skr/authority.h"
#include "skr/jws.h"
#include "skr/key_resolver.h"
#include "vault/release.h"
#include "vault/server.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

using bench::HttpsClient;
using bench::must;

double run_clients(int clients, int n, const std::string& url, const fs::path& ca,
                   const std::string& token, const std::function<void(HttpsClient&, int)>& work) {
  // TLS handshakes and keep-alive before timing: one release each.
  return bench::run_clients(
      clients, n, url, ca, token, "7.4", [&](HttpsClient& c) { work(c, 0); }, work);
}

}  // namespace

int main(int argc, char** argv) {
  int releases = 200, clients = 4, rounds = 3;
  bench::int_options(argc, argv,
                     {{"--releases", &releases}, {"--clients", &clients}, {"--rounds", &rounds}});
  ::signal(SIGPIPE, SIG_IGN);
  const fs::path dir =
      fs::path(KEYPORT_BINARY_DIR) / "bench-tmp" / ("release-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // The SIMULATED authority, the enclave's runtime key, one token for every release.
  auto authority = must(skr::SimulatedAuthority::init(dir / "maa"), "attest init");
  auto runtime = must(x509::generate_rsa_key(2048), "runtime key");
  auto runtime_pub =
      must(byok::PublicKey::from_spki_der(must(x509::public_key_spki(*runtime), "spki")), "pub");
  skr::MintOptions mo;
  const std::string token_jwt = must(authority.mint(runtime_pub, mo), "mint");
  if (!write_file_atomic(dir / "trusted.json", dump_json(authority.trusted_authorities()),
                         WriteOptions{true, 0644})) {
    bench::die("write trusted authorities");
  }

  auto attached = bench::start_attached_vault(
      dir, vault::Flavor::kKeyVault, "vault:1111:2222",
      [&](vault::ServerOptions& o) { o.release.trusted_authorities = dir / "trusted.json"; });
  auto& slot = attached.slot;
  auto& floor_session = attached.session;
  auto& server = attached.server;
  const vault::ServerOptions& so = attached.options;
  const std::string& url = attached.url;
  const fs::path& ca = attached.ca;
  const std::string& bearer = attached.token;
  const std::string policy = dump_json(Json{
      {"version", "1.0.0"},
      {"anyOf",
       Json::array({Json{
           {"authority", authority.url()},
           {"allOf", Json::array({Json{{"claim", "x-ms-attestation-type"}, {"equals", "sevsnpvm"}},
                                  Json{{"claim", "x-ms-sevsnpvm-is-debuggable"},
                                       {"equals", "false"}}})}}})}});
  Json params{{"kty", "RSA-HSM"},
              {"key_size", 2048},
              {"attributes", Json{{"exportable", true}}},
              {"release_policy", Json{{"data", base64url_encode(as_bytes(policy))}}}};
  HttpsClient admin(url, ca, bearer);
  admin.api = "7.4";
  auto created = admin.call("POST", "/keys/skr/create", &params);
  const std::string kid = created["key"]["kid"].get<std::string>();
  const std::string version = kid.substr(kid.rfind('/') + 1);
  const Json release_body{{"target", token_jwt}};
  const std::string sample = admin.call_text("POST", "/keys/skr/release", dump_json(release_body));
  const std::string sample_jws =
      must(parse_json_strict(sample), "release body")["value"].get<std::string>();
  const std::size_t payload_bytes =
      must(skr::CompactJws::parse(sample_jws,
                                  skr::JwsLimits{256 * 1024, 128 * 1024, 256 * 1024, 32}),
           "parse")
          .payload()
          .size();

  // Floor parts.
  p11::Template find;
  find.token(true).label("kv:skr:" + version);
  auto found = must(floor_session.find_objects(find), "find key object");
  if (found.size() != 1) {
    bench::die("the released key's object is not in the vault token");
  }
  const CK_OBJECT_HANDLE target = found.front();
  auto caps = must(p11::probe_wrap_capabilities(floor_session, *slot.token), "probe");
  auto strategy = must(
      p11::choose_strategy(caps, p11::WrapStrategy::kAuto, WrapAlg::kRsaAesKeyWrap), "strategy");
  auto resolver = must(skr::StaticKeyResolver::from_json(authority.trusted_authorities()), "trust");
  skr::VerifierOptions vo;
  vo.expected_issuers = {authority.url()};
  auto verifier = must(skr::AttestationVerifier::create(resolver, vo), "verifier");
  auto signing_pem =
      must(read_secret_file(so.data_dir / "tls" / vault::kReleaseSigningKey), "signing key");
  auto signer =
      must(skr::SoftwareSigner::from_private_key(signing_pem, skr::JwsAlg::kRs256), "signer");
  const Bytes payload(payload_bytes, 'x');

  auto floor_round = [&]() {
    double t_verify = 0, t_wrap = 0, t_sign = 0;
    for (int i = 0; i < releases; ++i) {
      double t0 = bench::now_seconds();
      auto v = verifier.verify(token_jwt);
      if (!v) {
        bench::die("floor verify: " + v.error().describe());
      }
      double t1 = bench::now_seconds();
      {
        auto pub = must(p11::import_rsa_public_key(floor_session, runtime_pub.rsa_modulus(),
                                                   runtime_pub.rsa_exponent()),
                        "import runtime key");
        must(p11::wrap_rsa_aes(floor_session, caps, strategy, WrapAlg::kRsaAesKeyWrap, pub.get(),
                               256, target),
             "floor wrap");
      }
      double t2 = bench::now_seconds();
      must(signer.sign(payload), "floor sign");
      double t3 = bench::now_seconds();
      t_verify += t1 - t0;
      t_wrap += t2 - t1;
      t_sign += t3 - t2;
    }
    std::printf("  floor parts per release: verify %.3f ms, wrap %.3f ms, sign %.3f ms\n",
                1e3 * t_verify / releases, 1e3 * t_wrap / releases, 1e3 * t_sign / releases);
    return releases / (t_verify + t_wrap + t_sign);
  };
  auto https_round = [&]() {
    const double seconds =
        run_clients(clients, releases, url, ca, bearer, [&](HttpsClient& c, int) {
          c.call_text("POST", "/keys/skr/release", dump_json(release_body));
        });
    return releases / seconds;
  };

  std::printf(
      "keyport release benchmark: SoftHSM %s, RSA-2048 key, RSA-2048 runtime key, "
      "%d HTTPS clients, %d releases x %d rounds\n",
      slot.token->firmware().c_str(), clients, releases, rounds);
  std::vector<double> floor_rates, https_rates;
  for (int r = 0; r < rounds; ++r) {
    floor_rates.push_back(floor_round());
    https_rates.push_back(https_round());
  }
  const double fl = bench::median(floor_rates);
  const double hs = bench::median(https_rates);
  std::printf("%-28s %10.1f /s\n", "releases over HTTPS", hs);
  std::printf("%-28s %10.1f /s\n", "floor (verify+wrap+sign)", fl);
  std::printf("ratio %.3f (goal >= 0.6)\n", hs / fl);

  // Where the rest goes: the same release through RestApi in this process (no TLS, one thread),
  // and GET /keys/{name} over HTTPS, which does no crypto but, like every vault operation,
  // commits one audit row to vault.db (SQLite WAL, synchronous=FULL: one fsync per commit).
  vault::RestApi api(server->vault(), nullptr, 1 << 20, so.release);
  vault::Principal all{"bench", vault::all_permissions()};
  vault::RestRequest rq;
  rq.method = "POST";
  rq.path = "/keys/skr/release";
  rq.query = {{"api-version", "7.4"}};
  rq.content_type = "application/json";
  rq.body = dump_json(release_body);
  const int inproc_n = std::max(4, releases / 4);
  double t0 = bench::now_seconds();
  for (int i = 0; i < inproc_n; ++i) {
    if (api.handle_as(all, rq).status != 200) {
      bench::die("in-process release");
    }
  }
  const double inproc = inproc_n / (bench::now_seconds() - t0);
  const double gets = run_clients(clients, releases, url, ca, bearer, [&](HttpsClient& c, int) {
    auto res = c.http->Get("/keys/skr?api-version=7.4", c.headers);
    if (!res || res->status != 200) {
      bench::die("GET over HTTPS");
    }
  });
  std::printf("%-28s %10.1f /s (one thread, no TLS; ratio to floor %.3f)\n",
              "releases through RestApi", inproc, inproc / fl);
  std::printf("%-28s %10.1f /s (no crypto; one audited commit each)\n", "GET /keys over HTTPS",
              releases / gets);
  server->stop();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
