// SPDX-License-Identifier: Apache-2.0
// A SIMULATED attestation authority shaped like Microsoft Azure Attestation (spec §5), for tests
// and demos. It attests nothing: it signs whatever claims it is asked to. Every token says so
// (claim "x-keyport-simulated": true), its default issuer host name contains "simulated", and so
// do its OpenID metadata and JWKS.
//
// The authority is a folder:
//   authority.json             {"url", "kid", "created", "x-keyport-simulated": true}
//   signing-key.pem            RSA-2048 PKCS#8 (mode 0600): signs the tokens
//   signing-cert.pem           self-signed certificate, subject CN = the authority URL (as MAA's)
//   hcl-akpub.pem              public key shown as x-ms-isolation-tee's HCLAkPub in CVM tokens
//   jwks.json                  {"keys": [{"kid", "kty", "n", "e", "x5c", "use": "sig", "alg"}]}
//   trusted-authorities.json   {"authorities": [{"issuer": url, "jwks": ...}]} (StaticKeyResolver)
//   tls-ca.pem, tls-server-cert.pem, tls-server-key.pem   the HTTPS server's own CA and cert
//   server.json                written by serve() once it listens, removed when it stops
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "byok/public_key.h"
#include "core/error.h"
#include "core/json.h"
#include "skr/jws.h"
#include "skr/key_resolver.h"

namespace keyport::skr {

inline constexpr const char* kDefaultAuthorityUrl = "https://simulated-maa.keyport.localhost";
// The kid of a CVM's vTPM-held runtime key (spec §4.2).
inline constexpr const char* kCvmRuntimeKid = "TpmEphemeralEncryptionKey";

// The attested platform a token claims to come from (x-ms-attestation-type).
enum class PlatformType { kSevSnpVm, kTdxVm, kSgx, kAzureVm };
// "sevsnpvm", "tdxvm", "sgx", "azurevm".
std::string_view to_string(PlatformType type);
Result<PlatformType> parse_platform_type(std::string_view name);

struct MintOptions {
  PlatformType type = PlatformType::kSevSnpVm;
  // kid of the runtime key in x-ms-runtime.keys; empty: "TpmEphemeralEncryptionKey" for azurevm,
  // the RFC 7638 thumbprint of the key otherwise.
  std::string runtime_kid;
  // x-ms-runtime.client-payload.nonce; empty: 16 random hex digits.
  std::string nonce;
  std::int64_t lifetime_seconds = 8 * 3600;  // MAA: 8 hours, not configurable
  std::optional<std::int64_t> issued_at;     // default: the authority's clock
  // Merged over the generated claims: an object whose member names may be dot paths
  // ("x-ms-isolation-tee.x-ms-sevsnpvm-vmpl"); then RFC 7386 merge patch (objects merge, null
  // removes a claim, anything else replaces).
  Json claim_overrides = Json::object();
};

// Default runtime kid for a platform type and key (MintOptions::runtime_kid).
std::string default_runtime_kid(PlatformType type, const byok::PublicKey& runtime_key);

// Applies MintOptions::claim_overrides semantics to `claims`. kInvalidArgument when `overrides`
// is not an object or has an empty dot-path segment.
Status apply_claim_overrides(Json& claims, const Json& overrides);

class SimulatedAuthority {
 public:
  // Creates the folder's files (the folder may exist but must not hold an authority unless
  // overwrite). `url` must be an https URL without path, query or trailing slash beyond "/".
  static Result<SimulatedAuthority> init(const std::filesystem::path& dir,
                                         std::string url = kDefaultAuthorityUrl,
                                         bool overwrite = false, Clock clock = {});
  // Opens an existing authority folder.
  static Result<SimulatedAuthority> open(const std::filesystem::path& dir, Clock clock = {});

  const std::filesystem::path& dir() const { return m_dir; }
  // The issuer: the authority URL without a trailing slash.
  const std::string& url() const { return m_url; }
  // kid of the signing key: standard base64 of the certificate's SHA-256 (MAA's style).
  const std::string& kid() const { return m_kid; }
  const byok::PublicKey& signing_public_key() const { return m_signer->public_key(); }

  Json jwks() const;
  Json openid_configuration() const;
  Json trusted_authorities() const;

  // The claims a token for `runtime_key` would carry (before signing).
  Result<Json> claims(const byok::PublicKey& runtime_key, const MintOptions& options) const;
  // claims(), signed: the compact JWT.
  Result<std::string> mint(const byok::PublicKey& runtime_key, const MintOptions& options) const;
  // Signs an arbitrary payload with the authority key (tests craft refusal cases with it). The
  // header is {"alg": "RS256", "jku": <url>/certs, "kid": kid(), "typ": "JWT"} with
  // `header_overrides` merged over it (null removes a member).
  Result<std::string> sign(const Json& payload,
                           const Json& header_overrides = Json::object()) const;

 private:
  SimulatedAuthority() = default;
  std::filesystem::path m_dir;
  std::string m_url;
  std::string m_kid;
  std::string m_cert_b64;  // x5c[0]
  Json m_hcl_ak_jwk;
  std::shared_ptr<SoftwareSigner> m_signer;
  Clock m_clock;
};

// The HTTPS server of a simulated authority: GET /.well-known/openid-configuration and
// GET /certs (the JWKS), TLS with the folder's own CA. start() returns once the socket listens
// and DIR/server.json is written:
//   {"url": <issuer>, "endpoint": "https://127.0.0.1:PORT", "address": "127.0.0.1", "port": N,
//    "ca_file": "<DIR>/tls-ca.pem", "connect_to": {"<issuer host>": "127.0.0.1:PORT"}, ...}
class AuthorityServer {
 public:
  // listen: "ADDRESS:PORT" (PORT 0 = any free port).
  static Result<std::unique_ptr<AuthorityServer>> start(const SimulatedAuthority& authority,
                                                        std::string_view listen = "127.0.0.1:0");
  AuthorityServer(const AuthorityServer&) = delete;
  AuthorityServer& operator=(const AuthorityServer&) = delete;
  // Stops the server and removes server.json.
  ~AuthorityServer();

  std::string endpoint() const;
  std::uint16_t port() const { return m_port; }
  // What server.json holds.
  const Json& info() const { return m_info; }
  // The OidcOptions a client needs to reach this server for the authority's URL.
  OidcOptions client_options() const;
  // Number of requests answered (for tests of the resolver cache).
  std::size_t requests() const { return m_requests.load(); }
  void stop();

 private:
  struct Impl;
  AuthorityServer() = default;
  std::unique_ptr<Impl> m_impl;
  std::string m_address;
  std::uint16_t m_port = 0;
  Json m_info;
  std::filesystem::path m_info_path;
  std::atomic<std::size_t> m_requests{0};
};

}  // namespace keyport::skr
