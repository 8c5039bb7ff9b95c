// SPDX-License-Identifier: Apache-2.0
// OpenID Connect discovery (skr/key_resolver.h OidcKeyResolver) against the simulated authority's
// HTTPS server in this process: discovery, the cache and its TTL, the CA check, and refusals of
// plain HTTP. A small cpp-httplib server written here serves crafted metadata.
#include <catch2/catch.hpp>

#include <httplib.h>

#include <atomic>
#include <thread>

#include "core/x509.h"
#include "skr/attestation.h"
#include "skr/authority.h"
#include "skr/key_resolver.h"
#include "tests/skr/skr_rig.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::skr;
using namespace keyport::test::skr;

namespace {

std::unique_ptr<AuthorityServer> serve(const AuthorityRig& rig) {
  auto server = AuthorityServer::start(rig.authority(), "127.0.0.1:0");
  REQUIRE_OK(server);
  return std::move(*server);
}

AttestationVerifier oidc_verifier(std::shared_ptr<OidcKeyResolver> resolver) {
  VerifierOptions o;
  o.clock = [] { return kNow; };
  auto v = AttestationVerifier::create(std::move(resolver), o);
  REQUIRE_OK(v);
  return *std::move(v);
}

// A TLS server (the authority folder's certificate) answering the two discovery paths with
// whatever the test says.
class CraftedServer {
 public:
  CraftedServer(const std::filesystem::path& tls_dir, std::string config, std::string jwks)
      : m_server((tls_dir / x509::kTlsCertFile).c_str(), (tls_dir / x509::kTlsKeyFile).c_str()) {
    REQUIRE(m_server.is_valid());
    m_server.Get("/.well-known/openid-configuration",
                 [config](const httplib::Request&, httplib::Response& res) {
                   res.set_content(config, "application/json");
                 });
    m_server.Get("/certs", [jwks](const httplib::Request&, httplib::Response& res) {
      res.set_content(jwks, "application/json");
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
  }
  ~CraftedServer() {
    m_server.stop();
    m_thread.join();
  }
  int port() const { return m_port; }

 private:
  httplib::SSLServer m_server;
  int m_port = 0;
  std::thread m_thread;
};

}  // namespace

TEST_CASE("OpenID discovery over HTTPS finds the authority keys and verifies a token",
          "[skr][oidc]") {
  AuthorityRig rig;
  auto server = serve(rig);
  const Json& info = server->info();
  CHECK(info["url"] == rig.authority().url());
  CHECK(info["endpoint"] == server->endpoint());
  CHECK(std::filesystem::exists(rig.authority().dir() / "server.json"));
  auto resolver = OidcKeyResolver::create(server->client_options());
  REQUIRE_OK(resolver);
  AttestationVerifier v = oidc_verifier(*resolver);
  auto token = v.verify(rig.mint());
  REQUIRE_OK(token);
  CHECK(token->signing_kid() == rig.authority().kid());
  CHECK((*resolver)->fetch_count() == 1);
  CHECK(server->requests() == 2);  // metadata, then the JWKS
  // A second token uses the cache.
  REQUIRE_OK(v.verify(rig.mint()));
  CHECK((*resolver)->fetch_count() == 1);
  CHECK(server->requests() == 2);
  server->stop();
  CHECK_FALSE(std::filesystem::exists(rig.authority().dir() / "server.json"));
}

TEST_CASE("cached authority keys expire after their TTL", "[skr][oidc]") {
  AuthorityRig rig;
  auto server = serve(rig);
  std::atomic<std::int64_t> now{kNow};
  OidcOptions o = server->client_options();
  o.cache_ttl_seconds = 600;
  o.clock = [&now] { return now.load(); };
  auto resolver = OidcKeyResolver::create(o);
  REQUIRE_OK(resolver);
  REQUIRE_OK((*resolver)->keys_for(rig.authority().url()));
  now += 599;
  REQUIRE_OK((*resolver)->keys_for(rig.authority().url()));
  CHECK((*resolver)->fetch_count() == 1);
  now += 1;
  REQUIRE_OK((*resolver)->keys_for(rig.authority().url()));
  CHECK((*resolver)->fetch_count() == 2);
  (*resolver)->clear_cache();
  REQUIRE_OK((*resolver)->keys_for(rig.authority().url()));
  CHECK((*resolver)->fetch_count() == 3);
}

TEST_CASE("discovery refuses a server whose certificate does not chain to the CA file",
          "[skr][oidc]") {
  AuthorityRig rig;
  AuthorityRig stranger("stranger");
  auto server = serve(rig);
  OidcOptions o = server->client_options();
  o.ca_file = (stranger.authority().dir() / x509::kTlsCaFile).string();
  auto resolver = OidcKeyResolver::create(o);
  REQUIRE_OK(resolver);
  auto r = oidc_verifier(*resolver).verify(rig.mint());
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == ErrorCode::kAttestationInvalid);
  CHECK(r.error().detail() == "ATT-KEYS");
  CHECK(r.error().message().find("SSLServerVerification") != std::string::npos);
}

TEST_CASE("discovery refuses plain HTTP for the issuer and for jwks_uri", "[skr][oidc]") {
  OidcOptions plain;
  plain.trusted_issuers = {"http://simulated-maa.keyport.localhost"};
  CHECK_ERROR_CODE(OidcKeyResolver::create(plain), ErrorCode::kInvalidArgument);

  AuthorityRig rig;
  Json config = rig.authority().openid_configuration();
  config["jwks_uri"] = "http://127.0.0.1:9/certs";
  CraftedServer crafted(rig.authority().dir(), dump_json(config),
                        dump_json(rig.authority().jwks()));
  OidcOptions o;
  o.trusted_issuers = {rig.authority().url()};
  o.ca_file = (rig.authority().dir() / x509::kTlsCaFile).string();
  o.connect_to["simulated-maa.keyport.localhost"] = "127.0.0.1:" + std::to_string(crafted.port());
  auto resolver = OidcKeyResolver::create(o);
  REQUIRE_OK(resolver);
  auto r = oidc_verifier(*resolver).verify(rig.mint());
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == ErrorCode::kAttestationInvalid);
  CHECK(r.error().detail() == "ATT-JWKS-HTTP");
  // https_get itself refuses http URLs.
  CHECK_ERROR_CODE(https_get("http://127.0.0.1:9/", o), ErrorCode::kInvalidArgument);
}

TEST_CASE("discovery refuses metadata that names another issuer", "[skr][oidc]") {
  AuthorityRig rig;
  Json config = rig.authority().openid_configuration();
  config["issuer"] = "https://someone-else.example";
  CraftedServer crafted(rig.authority().dir(), dump_json(config),
                        dump_json(rig.authority().jwks()));
  OidcOptions o;
  o.trusted_issuers = {rig.authority().url()};
  o.ca_file = (rig.authority().dir() / x509::kTlsCaFile).string();
  o.connect_to["simulated-maa.keyport.localhost"] = "127.0.0.1:" + std::to_string(crafted.port());
  auto resolver = OidcKeyResolver::create(o);
  REQUIRE_OK(resolver);
  auto r = (*resolver)->keys_for(rig.authority().url());
  REQUIRE_FALSE(r);
  CHECK(r.error().detail() == "ATT-KEYS");
  CHECK(r.error().message().find("another issuer") != std::string::npos);
}

TEST_CASE("discovery accepts metadata with only jwks_uri as Azure's mock serves it",
          "[skr][oidc]") {
  AuthorityRig rig;
  Json config{{"jwks_uri", rig.authority().url() + "/certs"}};
  Json jwks = rig.authority().jwks();
  jwks["keys"][0].erase("x5c");
  CraftedServer crafted(rig.authority().dir(), dump_json(config), dump_json(jwks));
  OidcOptions o;
  o.trusted_issuers = {rig.authority().url()};
  o.ca_file = (rig.authority().dir() / x509::kTlsCaFile).string();
  o.connect_to["simulated-maa.keyport.localhost"] = "127.0.0.1:" + std::to_string(crafted.port());
  auto resolver = OidcKeyResolver::create(o);
  REQUIRE_OK(resolver);
  REQUIRE_OK(oidc_verifier(*resolver).verify(rig.mint()));
}

TEST_CASE("discovery never contacts an issuer outside its trust list", "[skr][oidc]") {
  AuthorityRig rig;
  auto server = serve(rig);
  OidcOptions o = server->client_options();
  o.trusted_issuers = {"https://sharedweu.weu.attest.azure.net"};
  auto resolver = OidcKeyResolver::create(o);
  REQUIRE_OK(resolver);
  auto r = oidc_verifier(*resolver).verify(rig.mint());
  REQUIRE_FALSE(r);
  CHECK(r.error().detail() == "JWT-UNTRUSTED-ISS");
  CHECK(server->requests() == 0);
}
