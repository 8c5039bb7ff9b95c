// SPDX-License-Identifier: Apache-2.0
#include "skr/authority.h"

#include <openssl/ssl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include "core/digest.h"
#include "core/file_io.h"
#include "core/net.h"
#include "core/random.h"
#include "core/strings.h"
#include "core/x509.h"
#include "http/server.h"
#include "skr/url.h"

namespace keyport::skr {
namespace fs = std::filesystem;
namespace {

constexpr const char* kAuthorityFile = "authority.json";
constexpr const char* kSigningKeyFile = "signing-key.pem";
constexpr const char* kSigningCertFile = "signing-cert.pem";
constexpr const char* kHclAkFile = "hcl-akpub.pem";
constexpr const char* kJwksFile = "jwks.json";
constexpr const char* kTrustFile = "trusted-authorities.json";
constexpr const char* kServerFile = "server.json";

constexpr const char* kNotice =
    "SIMULATED: issued by keyport's simulated attestation authority; no hardware or software "
    "was attested";

// The attestation policy text whose hash tokens carry (x-ms-policy-hash), as MAA computes it:
// BASE64URL(SHA256(UTF8(BASE64URL(UTF8(policy text))))).
constexpr const char* kSimulatedPolicy =
    "version= 1.0;\nauthorizationrules\n{\n    => permit();\n};\nissuancerules\n{\n};\n";

std::string policy_hash() {
  const std::string encoded = base64url_encode(as_bytes(kSimulatedPolicy));
  return base64url_encode(sha256(as_bytes(encoded)));
}

// Stable pseudo-measurements: hex of `bytes` bytes derived from the authority URL and a label,
// so that tokens of one authority agree with each other (as measurements of one image would).
Bytes fake_bytes(const std::string& seed, const std::string& label, std::size_t bytes) {
  Bytes out;
  for (int counter = 0; out.size() < bytes; ++counter) {
    Bytes block = sha256(as_bytes(seed + "|" + label + "|" + std::to_string(counter)));
    out.insert(out.end(), block.begin(), block.end());
  }
  out.resize(bytes);
  return out;
}

std::string fake_hex(const std::string& seed, const std::string& label, std::size_t bytes) {
  return hex_encode(fake_bytes(seed, label, bytes));
}

std::string fake_uuid(const std::string& seed, const std::string& label) {
  return ascii_upper(format_uuid(fake_bytes(seed, label, 16)));
}

Json sevsnp_claims(const std::string& seed, const std::string& report_data) {
  return Json{
      {"x-ms-sevsnpvm-authorkeydigest", fake_hex(seed, "authorkeydigest", 48)},
      {"x-ms-sevsnpvm-bootloader-svn", 3},
      {"x-ms-sevsnpvm-familyId", "01000000000000000000000000000000"},
      {"x-ms-sevsnpvm-guestsvn", 2},
      {"x-ms-sevsnpvm-hostdata", fake_hex(seed, "hostdata", 32)},
      {"x-ms-sevsnpvm-idkeydigest", fake_hex(seed, "idkeydigest", 48)},
      {"x-ms-sevsnpvm-imageId", "02000000000000000000000000000000"},
      {"x-ms-sevsnpvm-is-debuggable", false},
      {"x-ms-sevsnpvm-launchmeasurement", fake_hex(seed, "launchmeasurement", 48)},
      {"x-ms-sevsnpvm-microcode-svn", 115},
      {"x-ms-sevsnpvm-migration-allowed", false},
      {"x-ms-sevsnpvm-reportdata", report_data},
      {"x-ms-sevsnpvm-reportid", fake_hex(seed, "reportid", 32)},
      {"x-ms-sevsnpvm-smt-allowed", true},
      {"x-ms-sevsnpvm-snpfw-svn", 8},
      {"x-ms-sevsnpvm-tee-svn", 0},
      {"x-ms-sevsnpvm-vmpl", 0},
  };
}

Json tdx_claims(const std::string& seed, const std::string& report_data) {
  return Json{
      {"attester_tcb_status", "UpToDate"},
      {"dbgstat", "disabled"},
      {"eat_profile", "https://aka.ms/maa-eat-profile-tdxvm"},
      {"intuse", "generic"},
      {"tdx_mrconfigid", std::string(96, '0')},
      {"tdx_mrowner", std::string(96, '0')},
      {"tdx_mrownerconfig", std::string(96, '0')},
      {"tdx_mrseam", fake_hex(seed, "mrseam", 48)},
      {"tdx_mrsignerseam", std::string(96, '0')},
      {"tdx_mrtd", fake_hex(seed, "mrtd", 48)},
      {"tdx_report_data", report_data},
      {"tdx_rtmr0", fake_hex(seed, "rtmr0", 48)},
      {"tdx_rtmr1", fake_hex(seed, "rtmr1", 48)},
      {"tdx_rtmr2", fake_hex(seed, "rtmr2", 48)},
      {"tdx_rtmr3", std::string(96, '0')},
      {"tdx_seam_attributes", "0000000000000000"},
      {"tdx_seamsvn", 3},
      {"tdx_td_attributes", "0000000010000000"},
      {"tdx_td_attributes_debug", false},
      {"tdx_td_attributes_key_locker", false},
      {"tdx_td_attributes_migratable", false},
      {"tdx_td_attributes_perfmon", false},
      {"tdx_td_attributes_protection_keys", false},
      {"tdx_td_attributes_septve_disable", true},
      {"tdx_tee_tcb_svn", "03000600000000000000000000000000"},
      {"tdx_xfam", "e718060000000000"},
      {"x-ms-compliance-status", "azure-compliant-cvm"},
  };
}

Json sgx_claims(const std::string& seed, const std::string& report_data) {
  const std::string mrenclave = fake_hex(seed, "mrenclave", 32);
  const std::string mrsigner = fake_hex(seed, "mrsigner", 32);
  return Json{
      // The deprecated names MAA still emits next to the x-ms-sgx-* ones.
      {"is-debuggable", false},
      {"product-id", 1},
      {"sgx-mrenclave", mrenclave},
      {"sgx-mrsigner", mrsigner},
      {"svn", 2},
      {"tee", "sgx"},
      {"x-ms-sgx-is-debuggable", false},
      {"x-ms-sgx-mrenclave", mrenclave},
      {"x-ms-sgx-mrsigner", mrsigner},
      {"x-ms-sgx-product-id", 1},
      {"x-ms-sgx-report-data", report_data},
      {"x-ms-sgx-svn", 2},
  };
}

Json azurevm_claims(const std::string& seed) {
  return Json{
      {"x-ms-azurevm-attestation-protocol-ver", "2.0"},
      {"x-ms-azurevm-attested-pcrs", {0, 1, 2, 3, 4, 5, 6, 7}},
      {"x-ms-azurevm-bootdebug-enabled", false},
      {"x-ms-azurevm-dbvalidated", true},
      {"x-ms-azurevm-dbxvalidated", true},
      {"x-ms-azurevm-debuggersdisabled", true},
      {"x-ms-azurevm-default-securebootkeysvalidated", true},
      {"x-ms-azurevm-elam-enabled", false},
      {"x-ms-azurevm-flightsigning-enabled", false},
      {"x-ms-azurevm-hvci-policy", 0},
      {"x-ms-azurevm-hypervisordebug-enabled", false},
      {"x-ms-azurevm-is-windows", false},
      {"x-ms-azurevm-kerneldebug-enabled", false},
      {"x-ms-azurevm-osbuild", "NotApplicable"},
      {"x-ms-azurevm-osdistro", "Ubuntu"},
      {"x-ms-azurevm-ostype", "Linux"},
      {"x-ms-azurevm-osversion-major", 22},
      {"x-ms-azurevm-osversion-minor", 4},
      {"x-ms-azurevm-signingdisabled", true},
      {"x-ms-azurevm-testsigning-enabled", false},
      {"x-ms-azurevm-vmid", fake_uuid(seed, "vmid")},
  };
}

Result<Json> read_json_file(const fs::path& path) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(path, 1u << 20));
  auto doc = parse_json_strict(text);
  if (!doc) {
    return tl::unexpected(doc.error().with_context(path.string()));
  }
  return doc;
}

// ADDRESS:PORT; port 0 asks for any free port.
Result<HostPort> parse_listen(std::string_view listen) {
  auto where = parse_host_port(listen, PortZero::kAllow);
  if (!where) {
    return tl::unexpected(where.error().with_context("--listen takes ADDRESS:PORT"));
  }
  return where;
}

}  // namespace

std::string_view to_string(PlatformType type) {
  switch (type) {
    case PlatformType::kSevSnpVm:
      return "sevsnpvm";
    case PlatformType::kTdxVm:
      return "tdxvm";
    case PlatformType::kSgx:
      return "sgx";
    case PlatformType::kAzureVm:
      return "azurevm";
  }
  return "?";
}

Result<PlatformType> parse_platform_type(std::string_view name) {
  for (auto t : {PlatformType::kSevSnpVm, PlatformType::kTdxVm, PlatformType::kSgx,
                 PlatformType::kAzureVm}) {
    if (to_string(t) == name) {
      return t;
    }
  }
  return make_error(ErrorCode::kInvalidArgument, "unknown attestation type \"" + std::string(name) +
                                                     "\" (sevsnpvm, tdxvm, sgx, azurevm)");
}

std::string default_runtime_kid(PlatformType type, const byok::PublicKey& runtime_key) {
  if (type == PlatformType::kAzureVm) {
    return kCvmRuntimeKid;
  }
  return jwk_thumbprint(runtime_key);
}

Status apply_claim_overrides(Json& claims, const Json& overrides) {
  if (!overrides.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "claim overrides must be a JSON object");
  }
  for (const auto& [name, value] : overrides.items()) {
    std::vector<std::string> segments;
    std::size_t start = 0;
    while (true) {
      const auto dot = name.find('.', start);
      segments.push_back(name.substr(start, dot == std::string::npos ? dot : dot - start));
      if (segments.back().empty()) {
        return make_error(ErrorCode::kInvalidArgument,
                          "claim override \"" + name + "\" has an empty dot-path segment");
      }
      if (dot == std::string::npos) {
        break;
      }
      start = dot + 1;
    }
    Json patch = value;
    for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
      Json wrapper = Json::object();
      wrapper[*it] = std::move(patch);
      patch = std::move(wrapper);
    }
    claims.merge_patch(patch);
  }
  return {};
}

Result<SimulatedAuthority> SimulatedAuthority::init(const fs::path& dir, std::string url,
                                                    bool overwrite, Clock clock) {
  auto parsed = parse_url(url);
  if (!parsed || parsed->scheme != "https" ||
      !(parsed->path_and_query.empty() || parsed->path_and_query == "/")) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "the authority URL must be https://HOST[:PORT] without a path, got \"" + url + "\"");
  }
  url = parsed->origin();
  if (url.size() > 64) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the authority URL is longer than 64 characters (it is the certificate's "
                      "common name)");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  }
  KEYPORT_TRY(check_output_path(dir / kAuthorityFile, overwrite));

  KEYPORT_ASSIGN_OR_RETURN(auto signing_key, x509::generate_rsa_key(2048));
  x509::CertificateRequest req;
  req.common_name = url;
  req.organization = "keyport SIMULATED attestation authority";
  req.code_signing = true;
  KEYPORT_ASSIGN_OR_RETURN(auto cert,
                           x509::make_certificate(req, *signing_key, *signing_key, nullptr));
  KEYPORT_ASSIGN_OR_RETURN(auto hcl_key, x509::generate_rsa_key(2048));
  KEYPORT_ASSIGN_OR_RETURN(Bytes hcl_spki, x509::public_key_spki(*hcl_key));
  KEYPORT_ASSIGN_OR_RETURN(auto hcl_pub, byok::PublicKey::from_spki_der(hcl_spki));
  std::vector<std::string> names;
  if (parsed->host.find_first_not_of("0123456789.") != std::string::npos &&
      parsed->host.find(':') == std::string::npos) {
    names.push_back(parsed->host);
  }
  KEYPORT_ASSIGN_OR_RETURN(
      auto tls, x509::make_local_tls("keyport SIMULATED attestation authority TLS CA", names));
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes key_pem, x509::private_key_pem(*signing_key));

  const std::int64_t now = clock ? clock() : system_now();
  Json info{{"url", url},
            {"created", now},
            {"x-keyport-simulated", true},
            {"notice",
             "SIMULATED attestation authority made by keyport attest init: it signs "
             "whatever it is asked to and attests nothing"}};
  WriteOptions priv{overwrite, 0600};
  WriteOptions pub{overwrite, 0644};
  KEYPORT_TRY(
      write_file_atomic(dir / kSigningKeyFile, key_pem.reveal(SecretAccess::unsafe()), priv));
  KEYPORT_TRY(write_file_atomic(dir / kSigningCertFile, x509::certificate_pem(*cert), pub));
  KEYPORT_TRY(write_file_atomic(dir / kHclAkFile, hcl_pub.pem(), pub));
  KEYPORT_TRY(x509::write_local_tls(dir, tls, overwrite));
  KEYPORT_TRY(write_file_atomic(dir / kAuthorityFile, dump_json(info, 2) + "\n", pub));
  KEYPORT_ASSIGN_OR_RETURN(SimulatedAuthority out, open(dir, clock));
  KEYPORT_TRY(write_file_atomic(dir / kJwksFile, dump_json(out.jwks(), 2) + "\n", pub));
  KEYPORT_TRY(
      write_file_atomic(dir / kTrustFile, dump_json(out.trusted_authorities(), 2) + "\n", pub));
  return out;
}

Result<SimulatedAuthority> SimulatedAuthority::open(const fs::path& dir, Clock clock) {
  KEYPORT_ASSIGN_OR_RETURN(Json info, read_json_file(dir / kAuthorityFile));
  KEYPORT_ASSIGN_OR_RETURN(std::string url, json_string(info, "url", kAuthorityFile));
  auto parsed = parse_url(url);
  if (!parsed || parsed->scheme != "https") {
    return make_error(ErrorCode::kFormat, std::string(kAuthorityFile) + ": url is not https");
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes key_pem, read_secret_file(dir / kSigningKeyFile));
  KEYPORT_ASSIGN_OR_RETURN(SoftwareSigner signer,
                           SoftwareSigner::from_private_key(key_pem, JwsAlg::kRs256));
  KEYPORT_ASSIGN_OR_RETURN(std::string cert_pem, read_text_file(dir / kSigningCertFile));
  KEYPORT_ASSIGN_OR_RETURN(auto certs, x509::certificates_from_pem(cert_pem));
  ossl::UniquePtr<EVP_PKEY> cert_key(X509_get_pubkey(certs.front().get()));
  if (!cert_key) {
    return ossl::crypto_failure("signing-cert.pem has no readable key");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes cert_spki, x509::public_key_spki(*cert_key));
  if (cert_spki != signer.public_key().spki_der()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "signing-cert.pem does not belong to signing-key.pem");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string hcl_pem, read_text_file(dir / kHclAkFile));
  KEYPORT_ASSIGN_OR_RETURN(auto hcl, byok::PublicKey::from_pem(hcl_pem));

  SimulatedAuthority out;
  out.m_dir = dir;
  out.m_url = parsed->origin();
  const Bytes der = x509::certificate_der(*certs.front());
  out.m_kid = base64_encode(sha256(der));
  out.m_cert_b64 = base64_encode(der);
  out.m_hcl_ak_jwk = hcl.to_jwk();
  out.m_hcl_ak_jwk["kid"] = "HCLAkPub";
  out.m_hcl_ak_jwk["key_ops"] = Json::array({"sign"});
  out.m_signer = std::make_shared<SoftwareSigner>(std::move(signer));
  out.m_clock = std::move(clock);
  return out;
}

Json SimulatedAuthority::jwks() const {
  Json key = m_signer->public_key().to_jwk();
  key["kid"] = m_kid;
  key["use"] = "sig";
  key["alg"] = "RS256";
  key["x5c"] = Json::array({m_cert_b64});
  return Json{{"keys", Json::array({key})}, {"x-keyport-simulated", true}};
}

Json SimulatedAuthority::openid_configuration() const {
  return Json{
      {"issuer", m_url},
      {"jwks_uri", m_url + "/certs"},
      {"id_token_signing_alg_values_supported", Json::array({"RS256"})},
      {"response_types_supported", Json::array({"token", "none"})},
      {"revocation_endpoint", m_url + "/revoke"},
      {"claims_supported",
       Json::array({"iss", "iat", "nbf", "exp", "jti", "x-ms-ver", "x-ms-attestation-type",
                    "x-ms-policy-hash", "x-ms-runtime", "x-ms-compliance-status",
                    "x-ms-isolation-tee", "x-keyport-simulated"})},
      {"x-keyport-simulated", true},
      {"service_documentation", std::string(kNotice)},
  };
}

Json SimulatedAuthority::trusted_authorities() const {
  return Json{
      {"authorities",
       Json::array({Json{{"issuer", m_url}, {"jwks", jwks()}, {"x-keyport-simulated", true}}})}};
}

Result<Json> SimulatedAuthority::claims(const byok::PublicKey& runtime_key,
                                        const MintOptions& options) const {
  if (runtime_key.family() != KeyFamily::kRsa) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the runtime key must be an RSA public key (the vault wraps to it)");
  }
  if (options.lifetime_seconds <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "token lifetime must be positive");
  }
  const std::int64_t now =
      options.issued_at ? *options.issued_at : (m_clock ? m_clock() : system_now());
  const std::string kid = options.runtime_kid.empty()
                              ? default_runtime_kid(options.type, runtime_key)
                              : options.runtime_kid;
  Json runtime_jwk = runtime_key.to_jwk();
  runtime_jwk["kid"] = kid;
  runtime_jwk["key_ops"] = Json::array({"encrypt"});
  const std::string nonce = options.nonce.empty() ? hex_encode(random_bytes(8)) : options.nonce;
  Json runtime{{"client-payload", Json{{"nonce", nonce}}}, {"keys", Json::array({runtime_jwk})}};
  // The TEE's report data binds the runtime data: SHA-256 of it, zero padded to 64 bytes.
  Bytes report = sha256(as_bytes(dump_json(runtime)));
  report.resize(64, 0);
  const std::string report_data = hex_encode(report);
  const std::string& seed = m_url;

  Json claims{
      {"iss", m_url},
      {"iat", now},
      {"nbf", now},
      {"exp", now + options.lifetime_seconds},
      {"jti", hex_encode(random_bytes(32))},
      {"x-ms-ver", "1.0"},
      {"x-ms-policy-hash", policy_hash()},
      {"x-ms-runtime", runtime},
      {"x-keyport-simulated", true},
      {"x-keyport-notice", kNotice},
  };
  switch (options.type) {
    case PlatformType::kSevSnpVm:
      claims["x-ms-attestation-type"] = "sevsnpvm";
      claims["x-ms-compliance-status"] = "azure-compliant-uvm";
      claims.update(sevsnp_claims(seed, report_data));
      break;
    case PlatformType::kTdxVm:
      claims["x-ms-attestation-type"] = "tdxvm";
      claims.update(tdx_claims(seed, report_data));
      break;
    case PlatformType::kSgx:
      claims["x-ms-attestation-type"] = "sgx";
      claims.update(sgx_claims(seed, report_data));
      break;
    case PlatformType::kAzureVm: {
      claims["x-ms-attestation-type"] = "azurevm";
      // Simulator choice: CVM-POLICY and the CLI's default CVM policy test the top-level name.
      claims["x-ms-compliance-status"] = "azure-compliant-cvm";
      claims.update(azurevm_claims(seed));
      Json tee = sevsnp_claims(seed, report_data);
      tee["x-ms-attestation-type"] = "sevsnpvm";
      tee["x-ms-compliance-status"] = "azure-compliant-cvm";
      tee["x-ms-runtime"] = Json{
          {"keys", Json::array({m_hcl_ak_jwk})},
          {"vm-configuration", Json{{"console-enabled", true},
                                    {"secure-boot", true},
                                    {"tpm-enabled", true},
                                    {"tpm-persisted", true},
                                    {"vmUniqueId", fake_uuid(seed, "vmid")}}},
      };
      claims["x-ms-isolation-tee"] = std::move(tee);
      break;
    }
  }
  KEYPORT_TRY(apply_claim_overrides(claims, options.claim_overrides));
  return claims;
}

Result<std::string> SimulatedAuthority::mint(const byok::PublicKey& runtime_key,
                                             const MintOptions& options) const {
  KEYPORT_ASSIGN_OR_RETURN(Json payload, claims(runtime_key, options));
  return sign(payload);
}

Result<std::string> SimulatedAuthority::sign(const Json& payload,
                                             const Json& header_overrides) const {
  Json header{{"alg", "RS256"}, {"jku", m_url + "/certs"}, {"kid", m_kid}, {"typ", "JWT"}};
  if (!header_overrides.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "header overrides must be an object");
  }
  header.merge_patch(header_overrides);
  return sign_compact(std::move(header), as_bytes(dump_json(payload)), *m_signer);
}

// ---------------------------------------------------------------------------------------------

struct AuthorityServer::Impl {
  std::unique_ptr<http::Server> server;
};

namespace {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

// The authority's TLS context: its own CA-issued certificate and key (the folder's files), TLS >=
// 1.2 with forward-secret AEAD suites, as the vault's server.
Result<std::unique_ptr<SSL_CTX, SslCtxFree>> authority_tls(const std::string& cert,
                                                           const std::string& key) {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_server_method()));
  const bool ok = ctx != nullptr && SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) == 1 &&
                  SSL_CTX_set_cipher_list(ctx.get(), "ECDHE+AESGCM:ECDHE+CHACHA20") == 1 &&
                  SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) == 1 &&
                  SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) == 1 &&
                  SSL_CTX_check_private_key(ctx.get()) == 1;
  if (!ok) {
    return make_error(ErrorCode::kCrypto, "cannot load the TLS certificate and key " + cert + ", " +
                                              key + ": " + ossl::drain_errors());
  }
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  return ctx;
}

}  // namespace

Result<std::unique_ptr<AuthorityServer>> AuthorityServer::start(const SimulatedAuthority& authority,
                                                                std::string_view listen) {
  KEYPORT_ASSIGN_OR_RETURN(auto where, parse_listen(listen));
  std::signal(SIGPIPE, SIG_IGN);  // a client hanging up must not kill the process
  const fs::path dir = authority.dir();
  const std::string cert = (dir / x509::kTlsCertFile).string();
  const std::string key = (dir / x509::kTlsKeyFile).string();
  for (const auto& f : {cert, key}) {
    if (!fs::exists(f)) {
      return make_error(ErrorCode::kNotFound, f + " is missing (run keyport attest init)");
    }
  }
  KEYPORT_ASSIGN_OR_RETURN(auto tls, authority_tls(cert, key));
  std::unique_ptr<AuthorityServer> self(new AuthorityServer());
  self->m_impl = std::make_unique<Impl>();
  const std::string config = dump_json(authority.openid_configuration(), 2);
  const std::string jwks = dump_json(authority.jwks(), 2);
  AuthorityServer* raw = self.get();
  http::Options options;
  options.listen = std::string(listen);
  options.tls = tls.get();
  options.threads = 4;
  options.handler = [raw, config, jwks](const http::Request& req) {
    http::Response res;
    const bool get = req.method == "GET" || req.method == "HEAD";
    if (get && (req.path == "/.well-known/openid-configuration" || req.path == "/certs")) {
      raw->m_requests.fetch_add(1);
      res.headers = {{"X-Keyport-Simulated", "true"}, {"Cache-Control", "max-age=3600"}};
      res.content_type = "application/json";
      res.body = req.path == "/certs" ? jwks : config;
    } else if (get && req.path == "/") {
      raw->m_requests.fetch_add(1);
      res.headers = {{"X-Keyport-Simulated", "true"}};
      res.content_type = "text/plain";
      res.body = std::string(kNotice) + "\nGET /.well-known/openid-configuration\nGET /certs\n";
    } else {
      res.status = 404;
    }
    return res;
  };
  auto started = http::Server::start(std::move(options));
  if (!started) {
    return tl::unexpected(started.error().with_context("cannot listen on " + std::string(listen)));
  }
  self->m_impl->server = std::move(*started);
  const int port = self->m_impl->server->port();
  self->m_address = where.host;
  self->m_port = static_cast<std::uint16_t>(port);

  auto url = parse_url(authority.url());
  const std::string target = self->m_address + ":" + std::to_string(self->m_port);
  Json connect_to = Json::object();
  if (url) {
    connect_to[url->host] = target;
  }
  self->m_info = Json{
      {"url", authority.url()},
      {"endpoint", self->endpoint()},
      {"address", self->m_address},
      {"port", self->m_port},
      {"ca_file", fs::absolute(dir / x509::kTlsCaFile).string()},
      {"connect_to", connect_to},
      {"pid", static_cast<std::int64_t>(::getpid())},
      {"x-keyport-simulated", true},
  };
  self->m_info_path = dir / kServerFile;
  auto written = write_file_atomic(self->m_info_path, dump_json(self->m_info, 2) + "\n",
                                   WriteOptions{true, 0644});
  if (!written) {
    self->stop();
    return tl::unexpected(written.error());
  }
  return self;
}

std::string AuthorityServer::endpoint() const {
  const bool v6 = m_address.find(':') != std::string::npos;
  return "https://" + (v6 ? "[" + m_address + "]" : m_address) + ":" + std::to_string(m_port);
}

OidcOptions AuthorityServer::client_options() const {
  OidcOptions o;
  o.trusted_issuers = {m_info.value("url", std::string())};
  o.ca_file = m_info.value("ca_file", std::string());
  if (m_info.contains("connect_to") && m_info["connect_to"].is_object()) {
    for (const auto& [host, target] : m_info["connect_to"].items()) {
      if (target.is_string()) {
        o.connect_to[host] = target.get<std::string>();
      }
    }
  }
  return o;
}

void AuthorityServer::stop() {
  if (m_impl && m_impl->server) {
    m_impl->server->stop();
  }
  if (!m_info_path.empty()) {
    std::error_code ec;
    fs::remove(m_info_path, ec);
    m_info_path.clear();
  }
}

AuthorityServer::~AuthorityServer() {
  stop();
}

}  // namespace keyport::skr
