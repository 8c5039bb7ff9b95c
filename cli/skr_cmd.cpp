// SPDX-License-Identifier: Apache-2.0
// keyport policy lint | check, keyport attest init | serve | token (a SIMULATED attestation
// authority), keyport enclave keygen | unwrap (the receiving end of Secure Key Release).
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <map>

#include "byok/key_material.h"
#include "byok/public_key.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "core/file_io.h"
#include "core/strings.h"
#include "core/x509.h"
#include "enclave/token_release.h"
#include "skr/attestation.h"
#include "skr/authority.h"
#include "skr/enclave.h"
#include "skr/key_resolver.h"
#include "skr/policy.h"

namespace keyport::cli {
namespace {
namespace fs = std::filesystem;
using namespace keyport::skr;

constexpr const char* kSimulatedNote =
    "SIMULATED: keyport's attestation authority attests nothing; it signs the claims it is "
    "asked to sign. Use it for tests and demos only.";

bool is_simulated(const Json& claims) {
  auto it = claims.find("x-keyport-simulated");
  return it != claims.end() && it->is_boolean() && it->get<bool>();
}

Json findings_json(const std::vector<PolicyFinding>& list) {
  Json out = Json::array();
  for (const auto& f : list) {
    out.push_back(Json{{"path", f.path}, {"message", f.message}});
  }
  return out;
}

Result<std::int64_t> parse_duration(const std::string& text) {
  if (text.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "--lifetime: empty");
  }
  std::int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 's':
      digits.pop_back();
      break;
    case 'm':
      unit = 60;
      digits.pop_back();
      break;
    case 'h':
      unit = 3600;
      digits.pop_back();
      break;
    case 'd':
      unit = 86400;
      digits.pop_back();
      break;
    default:
      break;
  }
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--lifetime: \"" + text + "\" is not a duration such as 8h, 30m, 3600s");
  }
  const std::int64_t v = std::stoll(digits) * unit;
  if (v <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "--lifetime must be positive");
  }
  return v;
}

// A public key from a PEM file holding a public key, or derived from a private key file.
Result<byok::PublicKey> load_public_key(const std::string& path) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(path, 1u << 20));
  auto pub = byok::PublicKey::from_pem(text);
  if (pub) {
    return pub;
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes secret, read_secret_file(path, 1u << 20));
  auto priv = x509::private_key_from(secret);
  if (!priv) {
    return make_error(ErrorCode::kFormat, path + ": neither a public key PEM nor a private key");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes spki, x509::public_key_spki(**priv));
  return byok::PublicKey::from_spki_der(spki);
}

Status write_output(const std::string& path, std::span<const std::uint8_t> data, bool force,
                    unsigned mode) {
  if (path == "-") {
    std::cout.write(reinterpret_cast<const char*>(data.data()),
                    static_cast<std::streamsize>(data.size()));
    std::cout.flush();
    return {};
  }
  return write_file_atomic(path, data, WriteOptions{force, mode});
}

// ---------------------------------------------------------------------------------------------
// policy lint

struct LintOptions {
  std::string file;
};

Status run_lint(GlobalOptions& g, const LintOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(o.file, 1u << 20));
  PolicyLint lint = lint_policy(text);
  if (g.json) {
    print_json(Json{{"file", o.file},
                    {"valid", lint.errors.empty()},
                    {"errors", findings_json(lint.errors)},
                    {"warnings", findings_json(lint.warnings)}});
  } else {
    for (const auto& e : lint.errors) {
      std::cout << "error    " << e.describe() << "\n";
    }
    for (const auto& w : lint.warnings) {
      std::cout << "warning  " << w.describe() << "\n";
    }
    std::cout << o.file << ": " << lint.errors.size() << " error(s), " << lint.warnings.size()
              << " warning(s)" << (lint.errors.empty() ? ": valid release policy" : "")
              << std::endl;
  }
  if (!lint.errors.empty()) {
    return make_error(ErrorCode::kFormat, o.file + ": not a valid release policy (" +
                                              lint.errors.front().describe() + ")");
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// policy check

struct CheckOptions {
  std::string policy;
  std::string token;
  std::optional<std::string> authority_jwks;
  std::vector<std::string> trust_authority;
  std::optional<std::string> ca_file;
  std::vector<std::string> connect_to;
  std::optional<std::int64_t> now;
  std::int64_t skew = 60;
};

Result<std::map<std::string, std::string>> parse_connect_to(const std::vector<std::string>& list) {
  std::map<std::string, std::string> out;
  for (const auto& item : list) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--connect-to takes HOST=IP:PORT, got \"" + item + "\"");
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

Result<std::string> read_token(const std::string& path) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(path, 1u << 20));
  text = std::string(trim(text));
  if (!text.empty() && text.front() == '{') {
    // An attest response {"token": "..."} is accepted as well as the bare JWT.
    auto doc = parse_json_strict(text);
    if (doc && doc->is_object() && doc->contains("token") && (*doc)["token"].is_string()) {
      return (*doc)["token"].get<std::string>();
    }
  }
  return text;
}

Result<std::shared_ptr<KeyResolver>> make_resolver(const CheckOptions& o,
                                                   const ReleasePolicy& policy) {
  if (o.authority_jwks && !o.trust_authority.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give either --authority-jwks or --trust-authority, not both");
  }
  if (o.authority_jwks) {
    fs::path p = *o.authority_jwks;
    if (fs::is_directory(p)) {
      p /= "trusted-authorities.json";
    }
    KEYPORT_ASSIGN_OR_RETURN(auto r, StaticKeyResolver::from_file(p));
    return std::shared_ptr<KeyResolver>(r);
  }
  OidcOptions oidc;
  if (o.trust_authority.empty()) {
    for (const auto& a : policy.authorities) {
      oidc.trusted_issuers.push_back(a.authority);
    }
  } else {
    oidc.trusted_issuers = o.trust_authority;
  }
  if (o.ca_file) {
    oidc.ca_file = *o.ca_file;
  }
  KEYPORT_ASSIGN_OR_RETURN(oidc.connect_to, parse_connect_to(o.connect_to));
  KEYPORT_ASSIGN_OR_RETURN(auto r, OidcKeyResolver::create(std::move(oidc)));
  return std::shared_ptr<KeyResolver>(r);
}

Status run_check(GlobalOptions& g, const CheckOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(std::string policy_text, read_text_file(o.policy, 1u << 20));
  auto parsed = parse_policy(policy_text);
  if (!parsed) {
    return tl::unexpected(parsed.error().with_context(o.policy));
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string token, read_token(o.token));
  KEYPORT_ASSIGN_OR_RETURN(auto resolver, make_resolver(o, parsed->policy));
  VerifierOptions vo;
  vo.clock_skew_seconds = o.skew;
  if (o.now) {
    const std::int64_t fixed = *o.now;
    vo.clock = [fixed] { return fixed; };
  }
  KEYPORT_ASSIGN_OR_RETURN(auto verifier, AttestationVerifier::create(resolver, vo));
  Json warnings = findings_json(parsed->warnings);
  auto verified = verifier.verify(token);
  if (!verified) {
    const Error& e = verified.error();
    if (g.json) {
      print_json(
          Json{{"token", Json{{"valid", false}, {"error", e.detail()}, {"message", e.message()}}},
               {"allowed", false},
               {"warnings", warnings}});
    } else {
      std::cout << "token:  INVALID (" << e.detail() << ")\n        " << e.message()
                << "\npolicy: not evaluated" << std::endl;
    }
    return make_error(ErrorCode::kAttestationInvalid, e.detail(),
                      "the attestation token is not valid, so nothing can be released: " +
                          e.message() + " [" + e.detail() + "]");
  }
  Decision d = evaluate(parsed->policy, verified->claims());
  const RuntimeKey& rk = verified->runtime_key();
  if (g.json) {
    Json trace = Json::array();
    for (const auto& t : d.trace) {
      trace.push_back(t);
    }
    print_json(
        Json{{"token", Json{{"valid", true},
                            {"issuer", verified->issuer()},
                            {"signing_kid", verified->signing_kid()},
                            {"exp", verified->expires_at()},
                            {"runtime_key", Json{{"kid", rk.kid},
                                                 {"index", rk.index},
                                                 {"bits", rk.public_key.bits()},
                                                 {"sha256", rk.public_key.sha256_fingerprint()}}},
                            {"simulated", is_simulated(verified->claims())}}},
             {"allowed", d.allowed},
             {"passed_path", d.passed_path},
             {"failing_path", d.failing_path},
             {"reason", d.reason},
             {"trace", trace},
             {"warnings", warnings}});
  } else {
    std::cout << "token:  valid, issuer " << verified->issuer() << ", runtime key \"" << rk.kid
              << "\" (RSA-" << rk.public_key.bits() << "), expires " << verified->expires_at()
              << (is_simulated(verified->claims())
                      ? "\n        (issued by keyport's SIMULATED attestation authority)"
                      : "")
              << "\n";
    for (const auto& w : parsed->warnings) {
      std::cout << "warning " << w.describe() << "\n";
    }
    for (const auto& t : d.trace) {
      std::cout << "  " << t << "\n";
    }
    std::cout << "policy: " << (d.allowed ? "ALLOWED" : "DENIED") << ": " << d.reason << std::endl;
  }
  if (!d.allowed) {
    return make_error(
        ErrorCode::kPolicyDenied, "SKR-DENIED",
        "the release policy denies this token at " + d.failing_path + ": " + d.reason);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// attest init | serve | token

struct AttestInitOptions {
  std::string data;
  std::string url = kDefaultAuthorityUrl;
  bool force = false;
};

Status run_attest_init(GlobalOptions& g, const AttestInitOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto a, SimulatedAuthority::init(o.data, o.url, o.force));
  const fs::path dir = fs::absolute(o.data);
  if (g.json) {
    print_json(Json{{"url", a.url()},
                    {"kid", a.kid()},
                    {"dir", dir.string()},
                    {"jwks_file", (dir / "jwks.json").string()},
                    {"trusted_authorities_file", (dir / "trusted-authorities.json").string()},
                    {"ca_file", (dir / x509::kTlsCaFile).string()},
                    {"simulated", true}});
  } else {
    std::cout << "SIMULATED attestation authority " << a.url() << " in " << dir.string()
              << "\n  signing key kid " << a.kid() << "\n  trust file "
              << (dir / "trusted-authorities.json").string() << " (policy check --authority-jwks)"
              << "\n  HTTPS CA   " << (dir / x509::kTlsCaFile).string() << std::endl;
  }
  note(g, kSimulatedNote);
  return {};
}

struct AttestServeOptions {
  std::string data;
  std::string listen = "127.0.0.1:0";
};

Status run_attest_serve(GlobalOptions& g, const AttestServeOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto a, SimulatedAuthority::open(o.data));
  // Block the stop signals in every thread, so that this one can wait for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  KEYPORT_ASSIGN_OR_RETURN(auto server, AuthorityServer::start(a, o.listen));
  if (g.json) {
    print_json(server->info());
  } else {
    std::cout << "SIMULATED attestation authority " << a.url() << " listening on "
              << server->endpoint() << "\n  GET " << server->endpoint()
              << "/.well-known/openid-configuration\n  GET " << server->endpoint()
              << "/certs\n  CA file " << server->info()["ca_file"].get<std::string>()
              << "\n  details in " << (fs::path(o.data) / "server.json").string()
              << "\nStop with Ctrl-C or SIGTERM." << std::endl;
  }
  note(g, kSimulatedNote);
  int sig = 0;
  sigwait(&set, &sig);
  server->stop();
  note(g, "attest serve: stopped (signal " + std::to_string(sig) + ")");
  return {};
}

struct TokenOptionsCmd {
  std::string authority;
  std::string runtime_key;
  std::string runtime_kid;
  std::string type = "sevsnpvm";
  std::optional<std::string> claims;
  std::string nonce;
  std::string lifetime = "8h";
  std::optional<std::int64_t> now;
  std::string output;
  bool force = false;
};

Status run_token(GlobalOptions& g, const TokenOptionsCmd& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto a, SimulatedAuthority::open(o.authority));
  KEYPORT_ASSIGN_OR_RETURN(auto runtime, load_public_key(o.runtime_key));
  MintOptions m;
  KEYPORT_ASSIGN_OR_RETURN(m.type, parse_platform_type(o.type));
  m.runtime_kid = o.runtime_kid;
  m.nonce = o.nonce;
  KEYPORT_ASSIGN_OR_RETURN(m.lifetime_seconds, parse_duration(o.lifetime));
  m.issued_at = o.now;
  if (o.claims) {
    KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(*o.claims, 1u << 20));
    auto doc = parse_json_strict(text);
    if (!doc) {
      return tl::unexpected(doc.error().with_context(*o.claims));
    }
    if (!doc->is_object()) {
      return make_error(ErrorCode::kInvalidArgument, *o.claims + ": claims must be a JSON object");
    }
    m.claim_overrides = std::move(*doc);
  }
  KEYPORT_ASSIGN_OR_RETURN(Json claims, a.claims(runtime, m));
  KEYPORT_ASSIGN_OR_RETURN(std::string token, a.sign(claims));
  if (o.output != "-") {
    KEYPORT_TRY(write_output(o.output, as_bytes(token + "\n"), o.force, 0644));
  } else {
    std::cout << token << std::endl;
  }
  const std::string kid =
      m.runtime_kid.empty() ? default_runtime_kid(m.type, runtime) : m.runtime_kid;
  if (g.json && o.output != "-") {
    print_json(Json{{"file", o.output},
                    {"issuer", a.url()},
                    {"type", o.type},
                    {"runtime_kid", kid},
                    {"exp", claims.value("exp", Json(nullptr))},
                    {"simulated", true}});
  } else if (o.output != "-") {
    std::cout << "wrote " << o.output << ": SIMULATED " << o.type << " attestation token from "
              << a.url() << " for runtime key \"" << kid << "\"" << std::endl;
  }
  note(g, kSimulatedNote);
  return {};
}

// ---------------------------------------------------------------------------------------------
// enclave keygen | unwrap

struct KeygenOptions {
  std::string output;
  std::optional<std::string> pub;
  TokenOptions token;
  std::optional<std::string> label;
  bool force = false;
};

Status run_keygen(GlobalOptions& g, const KeygenOptions& o) {
  const bool in_token = !o.token.token.empty();
  std::optional<byok::PublicKey> pub;
  if (in_token) {
    if (!o.label) {
      return make_error(ErrorCode::kInvalidArgument, "--token needs --label");
    }
    if (!o.output.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "-o writes a key file; with --token the key stays in the token");
    }
    if (o.pub) {
      KEYPORT_TRY(check_output_path(*o.pub, o.force));
    }
    KEYPORT_ASSIGN_OR_RETURN(TokenContext ctx, open_token(g, o.token, true));
    KEYPORT_ASSIGN_OR_RETURN(auto k, enclave::generate_runtime_key(*ctx.session, *o.label));
    pub = std::move(k);
  } else {
    if (o.output.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "give -o RUNTIME.key (or --token and --label)");
    }
    KEYPORT_TRY(check_output_path(o.output, o.force));
    if (o.pub) {
      KEYPORT_TRY(check_output_path(*o.pub, o.force));
    }
    KEYPORT_ASSIGN_OR_RETURN(auto key, x509::generate_rsa_key(2048));
    KEYPORT_ASSIGN_OR_RETURN(SecretBytes pem, x509::private_key_pem(*key));
    KEYPORT_ASSIGN_OR_RETURN(Bytes spki, x509::public_key_spki(*key));
    KEYPORT_ASSIGN_OR_RETURN(auto p, byok::PublicKey::from_spki_der(spki));
    KEYPORT_TRY(write_file_atomic(o.output, pem.reveal(SecretAccess::unsafe()),
                                  WriteOptions{o.force, 0600}));
    pub = std::move(p);
  }
  if (o.pub) {
    KEYPORT_TRY(write_file_atomic(*o.pub, pub->pem(), WriteOptions{o.force, 0644}));
  }
  const std::string kid = jwk_thumbprint(*pub);
  if (g.json) {
    print_json(Json{{"key", in_token ? Json(*o.label) : Json(o.output)},
                    {"in_token", in_token},
                    {"public_key", o.pub ? Json(*o.pub) : Json(nullptr)},
                    {"bits", pub->bits()},
                    {"thumbprint", kid},
                    {"sha256", pub->sha256_fingerprint()}});
  } else {
    std::cout << "runtime key RSA-2048 "
              << (in_token ? "in the token as \"" + *o.label + "\""
                           : "in " + o.output + " (mode 0600)")
              << (o.pub ? ", public key in " + *o.pub : std::string())
              << "\n  default runtime kid (RFC 7638 thumbprint): " << kid << std::endl;
  }
  return {};
}

struct UnwrapOptions {
  std::string release;
  std::string vault_ca;
  std::optional<std::string> runtime_key;
  TokenOptions token;
  std::optional<std::string> key_label;
  std::optional<std::string> runtime_kid;
  std::optional<std::string> vault_host;
  std::optional<std::string> nonce;
  std::optional<std::string> output;
  std::optional<std::string> store_label;
  bool force = false;
};

Json release_summary(const VerifiedRelease& r) {
  return Json{{"kid", r.key_kid()},
              {"kty", r.kty()},
              {"enc", std::string(wrap_alg_name(r.key_hsm().enc))},
              {"runtime_kid", r.key_hsm().kid},
              {"signed_by", r.signer_subject()}};
}

Status unwrap_in_token(GlobalOptions& g, const UnwrapOptions& o, const VerifiedRelease& r) {
  KEYPORT_ASSIGN_OR_RETURN(TokenContext ctx, open_token(g, o.token, true));
  enclave::TokenUnwrapRequest rq;
  rq.runtime_key = *o.key_label;
  rq.runtime_kid = o.runtime_kid;
  rq.label = o.store_label;
  KEYPORT_ASSIGN_OR_RETURN(enclave::StoredRelease stored,
                           enclave::unwrap_release_in_token(*ctx.session, ctx.token(), r, rq));
  Json what = release_summary(r);
  what["stored_label"] = stored.label;
  what["stored_id"] = hex_encode(stored.id);
  if (stored.public_key_sha256) {
    what["public_key_sha256"] = *stored.public_key_sha256;
  }
  if (stored.kcv) {
    what["kcv"] = *stored.kcv;
  }
  what["type"] =
      stored.spec.bits != 0 ? stored.spec.name() : std::string(stored.spec.azure_cli_kty());
  what["token"] = ctx.token().label;
  if (g.json) {
    print_json(what);
  } else {
    std::cout << "released key " << r.key_kid() << " (" << r.kty() << ") unwrapped inside token \""
              << ctx.token().label << "\" as \"" << stored.label << "\" (id "
              << hex_encode(stored.id) << "), non-extractable; runtime key \"" << *o.key_label
              << "\" (kid " << stored.runtime_kid << ")" << std::endl;
  }
  return {};
}

Status run_unwrap(GlobalOptions& g, const UnwrapOptions& o) {
  const bool in_token = !o.token.token.empty();
  if (in_token == o.runtime_key.has_value()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give either --runtime-key FILE or --token URI with --key LABEL");
  }
  if (in_token && !o.key_label) {
    return make_error(ErrorCode::kInvalidArgument, "--token needs --key LABEL");
  }
  if (in_token && o.output) {
    return make_error(ErrorCode::kInvalidArgument,
                      "-o writes key material; with --token the key is stored in the token");
  }
  if (o.output && *o.output != "-") {
    KEYPORT_TRY(check_output_path(*o.output, o.force));
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string body, read_text_file(o.release, 1u << 20));
  ReleaseTrust trust;
  KEYPORT_ASSIGN_OR_RETURN(trust.vault_ca_pem, read_text_file(o.vault_ca, 1u << 20));
  if (o.vault_host) {
    trust.vault_host = *o.vault_host;
  }
  trust.expected_nonce = o.nonce;
  KEYPORT_ASSIGN_OR_RETURN(VerifiedRelease release, verify_release_response(body, trust));
  if (in_token) {
    return unwrap_in_token(g, o, release);
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes file, read_secret_file(*o.runtime_key, 1u << 20));
  KEYPORT_ASSIGN_OR_RETURN(byok::KeyMaterial runtime,
                           byok::load_key_material(file.reveal(SecretAccess::unsafe()), nullptr));
  if (runtime.spec.family != KeyFamily::kRsa || !runtime.public_key) {
    return make_error(ErrorCode::kInvalidArgument, "--runtime-key must be an RSA private key");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string kid,
                           enclave::check_runtime_kid(release, *runtime.public_key, o.runtime_kid));
  KEYPORT_ASSIGN_OR_RETURN(ReleasedKey key, unwrap_released_key(release, runtime.encoded, kid));
  Json what = release_summary(release);
  what["type"] = key.spec.name();
  if (key.spec.family == KeyFamily::kAes) {
    KEYPORT_ASSIGN_OR_RETURN(std::string kcv, byok::aes_key_check_value(key.material));
    what["kcv"] = kcv;
  } else if (release.public_key()) {
    what["public_key_sha256"] = release.public_key()->sha256_fingerprint();
  }
  if (o.output) {
    SecretBytes out;
    if (key.spec.family == KeyFamily::kAes) {
      out = key.material.clone();
    } else {
      KEYPORT_ASSIGN_OR_RETURN(auto pkey, x509::private_key_from(key.material));
      KEYPORT_ASSIGN_OR_RETURN(out, x509::private_key_pem(*pkey));
    }
    KEYPORT_TRY(write_output(*o.output, out.reveal(SecretAccess::unsafe()), o.force, 0600));
    what["output"] = *o.output;
    what["output_format"] = key.spec.family == KeyFamily::kAes ? "raw" : "pkcs8-pem";
  }
  if (o.output && *o.output == "-") {
    return {};
  }
  if (g.json) {
    print_json(what);
  } else {
    std::cout << "released key " << release.key_kid() << " (" << key.spec.name()
              << ") verified (signed by " << release.signer_subject() << ") and unwrapped"
              << (o.output ? " into " + *o.output + " (mode 0600)" : std::string(", not written"))
              << "\n  "
              << (what.contains("kcv")
                      ? "KCV " + what["kcv"].get<std::string>()
                      : "public key SHA-256 " + what.value("public_key_sha256", std::string()))
              << std::endl;
  }
  return {};
}

}  // namespace

void setup_skr_commands(CLI::App& app, GlobalOptions& g) {
  // --- policy ---
  CLI::App* policy = app.add_subcommand(
      "policy", "Key release policies (Azure Key Vault / Managed HSM Secure Key Release)");
  policy->require_subcommand(1);

  auto lint = std::make_shared<LintOptions>();
  CLI::App* lint_cmd = policy->add_subcommand(
      "lint", "Check a release policy: errors with their JSON paths (exit 3), warnings");
  lint_cmd->add_option("policy", lint->file, "Policy JSON file")->required();
  add_json_flag(*lint_cmd, g);
  lint_cmd->callback(bind_command(g, [&g, lint] { return run_lint(g, *lint); }));

  auto check = std::make_shared<CheckOptions>();
  CLI::App* check_cmd = policy->add_subcommand(
      "check",
      "Verify an attestation token and evaluate a policy against it: exit 0 allowed, 9 denied "
      "or invalid token");
  check_cmd->add_option("--policy", check->policy, "Policy JSON file")->required();
  check_cmd->add_option("--token", check->token, "Attestation token (JWT) file")->required();
  check_cmd->add_option("--authority-jwks", check->authority_jwks,
                        "Trusted authorities file ({\"authorities\":[{\"issuer\",\"jwks\"}]}) or "
                        "a keyport attest folder");
  check_cmd->add_option("--trust-authority", check->trust_authority,
                        "Authority URL to trust, its keys found by OpenID discovery over HTTPS "
                        "(repeatable; default: the policy's authorities)");
  check_cmd->add_option("--ca-file", check->ca_file,
                        "CA certificates for the authorities' HTTPS (default: system store)");
  check_cmd->add_option("--connect-to", check->connect_to,
                        "HOST=IP:PORT: reach HOST at IP:PORT (e.g. a SIMULATED authority's "
                        "server.json connect_to)");
  check_cmd->add_option("--now", check->now, "Evaluate at this unix time instead of now");
  check_cmd->add_option("--skew", check->skew, "Accepted clock skew in seconds (0..300)");
  add_json_flag(*check_cmd, g);
  check_cmd->callback(bind_command(g, [&g, check] { return run_check(g, *check); }));

  // --- attest (SIMULATED) ---
  CLI::App* attest = app.add_subcommand(
      "attest",
      "SIMULATED attestation authority shaped like Microsoft Azure Attestation (tests and demos "
      "only: it attests nothing)");
  attest->require_subcommand(1);

  auto init = std::make_shared<AttestInitOptions>();
  CLI::App* init_cmd = attest->add_subcommand(
      "init", "Create a SIMULATED authority folder: signing key and certificate, JWKS, HTTPS CA");
  init_cmd->add_option("--data", init->data, "Authority folder")->required();
  init_cmd->add_option(
      "--url", init->url,
      "Authority URL (token issuer); default " + std::string(kDefaultAuthorityUrl));
  init_cmd->add_flag("--force", init->force, "Replace an existing authority in the folder");
  add_json_flag(*init_cmd, g);
  init_cmd->callback(bind_command(g, [&g, init] { return run_attest_init(g, *init); }));

  auto serve = std::make_shared<AttestServeOptions>();
  CLI::App* serve_cmd = attest->add_subcommand(
      "serve",
      "Serve a SIMULATED authority's OpenID metadata and JWKS over HTTPS (writes DIR/server.json "
      "when ready; runs until SIGINT/SIGTERM)");
  serve_cmd->add_option("--data", serve->data, "Authority folder (keyport attest init)")
      ->required();
  serve_cmd->add_option("--listen", serve->listen, "ADDRESS:PORT (PORT 0: any free port)");
  add_json_flag(*serve_cmd, g);
  serve_cmd->callback(bind_command(g, [&g, serve] { return run_attest_serve(g, *serve); }));

  auto token = std::make_shared<TokenOptionsCmd>();
  CLI::App* token_cmd = attest->add_subcommand(
      "token",
      "Mint a SIMULATED attestation token (JWT) carrying a runtime key in x-ms-runtime.keys");
  token_cmd->add_option("--authority", token->authority, "Authority folder")->required();
  token_cmd
      ->add_option("--runtime-key", token->runtime_key,
                   "The enclave's RSA public key (PEM; a private key file works too)")
      ->required();
  token_cmd->add_option("--runtime-kid", token->runtime_kid,
                        "kid of the runtime key (default: TpmEphemeralEncryptionKey for azurevm, "
                        "the RFC 7638 thumbprint otherwise)");
  token_cmd->add_option("--type", token->type, "sevsnpvm, tdxvm, sgx or azurevm (CVM)")
      ->check(CLI::IsMember({"sevsnpvm", "tdxvm", "sgx", "azurevm"}));
  token_cmd->add_option("--claims", token->claims,
                        "JSON object merged over the claims (dot paths; null removes a claim)");
  token_cmd->add_option("--nonce", token->nonce, "x-ms-runtime.client-payload.nonce");
  token_cmd->add_option("--lifetime", token->lifetime, "Validity, e.g. 8h (MAA's), 30m, 600s");
  token_cmd->add_option("--now", token->now, "Issue at this unix time");
  token_cmd->add_option("-o,--output", token->output, "Token file (- for stdout)")->required();
  token_cmd->add_flag("--force", token->force, "Overwrite the output file");
  add_json_flag(*token_cmd, g);
  token_cmd->callback(bind_command(g, [&g, token] { return run_token(g, *token); }));

  // --- enclave ---
  CLI::App* enclave = app.add_subcommand(
      "enclave", "The receiving end of Secure Key Release: runtime keys and release responses");
  enclave->require_subcommand(1);

  auto keygen = std::make_shared<KeygenOptions>();
  CLI::App* keygen_cmd = enclave->add_subcommand(
      "keygen",
      "Make an RSA-2048 runtime key: a PKCS#8 file (mode 0600), or a non-extractable key in a "
      "PKCS#11 token");
  keygen_cmd->add_option("-o,--output", keygen->output, "Private key file (PKCS#8 PEM)");
  keygen_cmd->add_option("--pub", keygen->pub, "Also write the public key (PEM)");
  keygen_cmd->add_option("--label", keygen->label, "Label of the key in the token (with --token)");
  add_token_options(*keygen_cmd, keygen->token, /*token_required=*/false);
  keygen_cmd->add_flag("--force", keygen->force, "Overwrite output files");
  add_json_flag(*keygen_cmd, g);
  keygen_cmd->callback(bind_command(g, [&g, keygen] { return run_keygen(g, *keygen); }));

  auto unwrap = std::make_shared<UnwrapOptions>();
  CLI::App* unwrap_cmd = enclave->add_subcommand(
      "unwrap",
      "Verify a release response (x5c chain to --vault-ca, signature, payload) and unwrap the "
      "key with the runtime key; with --token the key is unwrapped inside the token");
  unwrap_cmd->add_option("--release", unwrap->release, "Release response ({\"value\": JWS})")
      ->required();
  unwrap_cmd
      ->add_option("--vault-ca", unwrap->vault_ca,
                   "CA certificate(s) the response's x5c chain must lead to")
      ->required();
  unwrap_cmd->add_option("--runtime-key", unwrap->runtime_key, "Runtime private key file");
  add_token_options(*unwrap_cmd, unwrap->token, /*token_required=*/false);
  unwrap_cmd->add_option("--key", unwrap->key_label, "Runtime key label in the token");
  unwrap_cmd->add_option("--label", unwrap->store_label,
                         "Label for the released key stored in the token");
  unwrap_cmd->add_option("--runtime-kid", unwrap->runtime_kid,
                         "kid the token gave the runtime key (default: its RFC 7638 thumbprint)");
  unwrap_cmd->add_option("--vault-host", unwrap->vault_host,
                         "Host name the signing certificate must be valid for");
  unwrap_cmd->add_option("--nonce", unwrap->nonce, "Nonce the response must echo");
  unwrap_cmd->add_option("-o,--output", unwrap->output,
                         "Write the key (PKCS#8 PEM; AES: raw bytes), mode 0600; - for stdout");
  unwrap_cmd->add_flag("--force", unwrap->force, "Overwrite the output file");
  add_json_flag(*unwrap_cmd, g);
  unwrap_cmd->callback(bind_command(g, [&g, unwrap] { return run_unwrap(g, *unwrap); }));
}

}  // namespace keyport::cli
