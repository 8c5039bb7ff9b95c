// SPDX-License-Identifier: Apache-2.0
#include "vault/release.h"

#include <arpa/inet.h>
#include <openssl/x509.h>

#include <ctime>
#include <map>
#include <shared_mutex>
#include <utility>
#include <vector>

#include "byok/public_key.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/net.h"
#include "core/x509.h"
#include "pkcs11/wrap.h"
#include "skr/attestation.h"
#include "skr/enclave.h"
#include "skr/jws.h"
#include "skr/key_resolver.h"
#include "skr/policy.h"
#include "vault/model.h"
#include "vault/signing.h"
#include "vault/tls.h"
#include "vault/vault_impl.h"

namespace keyport::vault {
namespace fs = std::filesystem;

namespace {

tl::unexpected<Error> refused() {
  return make_error(ErrorCode::kPermissionDenied, std::string(kForbidden), kReleaseRefused);
}

// Trusted authorities: static JWKS first, OpenID discovery for the others.
class TrustResolver final : public skr::KeyResolver {
 public:
  TrustResolver(std::shared_ptr<skr::StaticKeyResolver> fixed,
                std::vector<std::shared_ptr<skr::OidcKeyResolver>> discovered)
      : m_fixed(std::move(fixed)), m_discovered(std::move(discovered)) {}

  bool trusts(std::string_view issuer) const override {
    if (m_fixed && m_fixed->trusts(issuer)) {
      return true;
    }
    for (const auto& d : m_discovered) {
      if (d->trusts(issuer)) {
        return true;
      }
    }
    return false;
  }

  Result<std::vector<skr::VerificationKey>> keys_for(std::string_view issuer) override {
    if (m_fixed && m_fixed->trusts(issuer)) {
      return m_fixed->keys_for(issuer);
    }
    for (const auto& d : m_discovered) {
      if (d->trusts(issuer)) {
        return d->keys_for(issuer);
      }
    }
    return make_error(ErrorCode::kAttestationInvalid, "JWT-UNTRUSTED-ISS",
                      "the vault does not trust the attestation authority " + std::string(issuer) +
                          " (" + kTrustedAuthoritiesFile + ")");
  }

 private:
  std::shared_ptr<skr::StaticKeyResolver> m_fixed;
  std::vector<std::shared_ptr<skr::OidcKeyResolver>> m_discovered;
};

Result<std::shared_ptr<skr::KeyResolver>> load_trust(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    // No file: the vault trusts no authority, so every release is refused (and audited).
    return std::shared_ptr<skr::KeyResolver>(std::make_shared<TrustResolver>(
        nullptr, std::vector<std::shared_ptr<skr::OidcKeyResolver>>{}));
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(file, 4u << 20));
  KEYPORT_ASSIGN_OR_RETURN(Json doc, parse_json_strict(text));
  const std::string where = file.string();
  if (!doc.is_object() || !doc.contains("authorities") || !doc["authorities"].is_array()) {
    return make_error(ErrorCode::kFormat, where + ": expected {\"authorities\": [...]}");
  }
  Json fixed = Json{{"authorities", Json::array()}};
  std::vector<std::shared_ptr<skr::OidcKeyResolver>> discovered;
  std::size_t i = 0;
  for (const auto& a : doc["authorities"]) {
    const std::string at = where + ": authorities[" + std::to_string(i++) + "]";
    if (!a.is_object() || !a.contains("issuer") || !a["issuer"].is_string()) {
      return make_error(ErrorCode::kFormat, at + " needs an \"issuer\" string");
    }
    const bool has_jwks = a.contains("jwks");
    const bool has_openid = a.contains("openid");
    if (has_jwks == has_openid) {
      return make_error(ErrorCode::kFormat, at + " needs exactly one of \"jwks\" and \"openid\"");
    }
    if (has_jwks) {
      fixed["authorities"].push_back(Json{{"issuer", a["issuer"]}, {"jwks", a["jwks"]}});
      continue;
    }
    const Json& o = a["openid"];
    if (!o.is_object()) {
      return make_error(ErrorCode::kFormat, at + ".openid must be an object");
    }
    skr::OidcOptions opts;
    opts.trusted_issuers = {a["issuer"].get<std::string>()};
    if (o.contains("ca_file")) {
      if (!o["ca_file"].is_string()) {
        return make_error(ErrorCode::kFormat, at + ".openid.ca_file must be a string");
      }
      opts.ca_file = o["ca_file"].get<std::string>();
    }
    if (o.contains("connect_to")) {
      if (!o["connect_to"].is_object()) {
        return make_error(ErrorCode::kFormat, at + ".openid.connect_to must be an object");
      }
      for (const auto& [host, target] : o["connect_to"].items()) {
        if (!target.is_string()) {
          return make_error(ErrorCode::kFormat, at + ".openid.connect_to values are \"ip:port\"");
        }
        opts.connect_to[host] = target.get<std::string>();
      }
    }
    auto r = skr::OidcKeyResolver::create(std::move(opts));
    if (!r) {
      return tl::unexpected(r.error().with_context(at));
    }
    discovered.push_back(std::move(*r));
  }
  std::shared_ptr<skr::StaticKeyResolver> fixed_resolver;
  if (!fixed["authorities"].empty()) {
    auto s = skr::StaticKeyResolver::from_json(fixed);
    if (!s) {
      return tl::unexpected(s.error().with_context(where));
    }
    fixed_resolver = std::move(*s);
  }
  return std::shared_ptr<skr::KeyResolver>(
      std::make_shared<TrustResolver>(std::move(fixed_resolver), std::move(discovered)));
}

}  // namespace
// A named namespace: ReleaseService::State holds one (an anonymous type would differ per
// translation unit).
namespace detail {

struct FileStamp {
  bool exists = false;
  fs::file_time_type mtime;
  std::uintmax_t size = 0;
  bool operator==(const FileStamp& o) const {
    return exists == o.exists && mtime == o.mtime && size == o.size;
  }
};
}  // namespace detail
namespace {

detail::FileStamp stamp_of(const fs::path& file) {
  detail::FileStamp s;
  std::error_code ec;
  s.mtime = fs::last_write_time(file, ec);
  if (ec) {
    return s;
  }
  s.size = fs::file_size(file, ec);
  s.exists = !ec;
  return s;
}

}  // namespace

struct ReleaseService::State {
  // Signing identity.
  std::shared_ptr<skr::SoftwareSigner> signer;
  std::vector<Bytes> chain;  // leaf, CA
  // The header and leaf key every release response uses, worked out once per identity.
  std::shared_ptr<const skr::ReleaseSigningIdentity> identity;
  std::string ca_pem;
  // Trust.
  fs::path trust_file;
  detail::FileStamp trust_stamp;
  std::shared_ptr<skr::KeyResolver> resolver;
};

namespace {

Status ensure_release_identity(ReleaseService::State& st, Vault& vault) {
  KEYPORT_ASSIGN_OR_RETURN(SigningIdentity id,
                           ensure_signing_identity(vault.dir(), vault.host(),
                                                   {kReleaseSigningCert, kReleaseSigningKey,
                                                    "keyport SIMULATED vault (release signing)"}));
  st.signer = std::move(id.signer);
  st.chain = std::move(id.chain);
  st.ca_pem = std::move(id.ca_pem);
  return {};
}

struct ReleaseRequest {
  std::string target;
  std::optional<std::string> nonce;
  WrapAlg enc = WrapAlg::kRsaAesKeyWrap;
};

Result<ReleaseRequest> parse_request(const Json& params) {
  ReleaseRequest r;
  const Json* target = member(params, "target");
  if (target == nullptr || !target->is_string() || target->get_ref<const std::string&>().empty()) {
    return bad_parameter(
        "target (the attestation token of the environment the key is released to) is required "
        "and must be a non-empty string.");
  }
  r.target = target->get<std::string>();
  if (const Json* nonce = member(params, "nonce")) {
    if (!nonce->is_string()) {
      return bad_parameter("nonce must be a string.");
    }
    r.nonce = nonce->get<std::string>();
  }
  if (const Json* enc = member(params, "enc")) {
    if (!enc->is_string()) {
      return bad_parameter("enc must be a string.");
    }
    auto alg = parse_wrap_alg(enc->get_ref<const std::string&>());
    if (!alg) {
      return bad_parameter("enc \"" + enc->get<std::string>() +
                           "\" is not a key release algorithm (CKM_RSA_AES_KEY_WRAP, "
                           "RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384).");
    }
    r.enc = *alg;
  }
  return r;
}

}  // namespace

ReleaseService::ReleaseService(Vault& vault, ReleaseOptions options)
    : m_vault(vault), m_options(std::move(options)) {}

ReleaseService::~ReleaseService() = default;

Result<std::shared_ptr<const ReleaseService::State>> ReleaseService::state() {
  std::lock_guard<std::mutex> lock(m_mutex);
  const fs::path trust_file =
      m_options.trusted_authorities.value_or(m_vault.dir() / kTrustedAuthoritiesFile);
  const detail::FileStamp stamp = stamp_of(trust_file);
  if (m_state && m_state->trust_stamp == stamp) {
    return m_state;
  }
  auto next = std::make_shared<State>();
  if (m_state) {
    next->signer = m_state->signer;
    next->chain = m_state->chain;
    next->ca_pem = m_state->ca_pem;
    next->identity = m_state->identity;
  } else {
    KEYPORT_TRY(ensure_release_identity(*next, m_vault));
    KEYPORT_ASSIGN_OR_RETURN(auto identity,
                             skr::ReleaseSigningIdentity::create(*next->signer, next->chain));
    next->identity = std::make_shared<const skr::ReleaseSigningIdentity>(std::move(identity));
  }
  next->trust_file = trust_file;
  next->trust_stamp = stamp;
  KEYPORT_ASSIGN_OR_RETURN(next->resolver, load_trust(trust_file));
  m_state = next;
  return m_state;
}

Result<std::string> ReleaseService::vault_ca_pem() {
  KEYPORT_ASSIGN_OR_RETURN(auto st, state());
  return st->ca_pem;
}

Result<Json> ReleaseService::release(const CallContext& ctx, std::string_view name,
                                     std::string_view version, const Json& params,
                                     std::string_view api_version) {
  auto task = [&](const KeyVersionRecord& rec, const WithObject& with_object,
                  std::string& audit) -> Result<Json> {
    KEYPORT_ASSIGN_OR_RETURN(ReleaseRequest req, parse_request(params));

    // 2. The key itself.
    if (!rec.exportable) {
      audit = "refused: the key is not exportable";
      return refused();
    }
    if (!rec.enabled) {
      audit = "refused: the key is disabled";
      return refused();
    }
    const std::int64_t now = m_vault.now();
    if ((rec.nbf && now < *rec.nbf) || (rec.exp && now >= *rec.exp)) {
      audit = "refused: the key is outside its nbf/exp window";
      return refused();
    }
    if (!rec.release_policy) {
      audit = "refused: the key has no release policy";
      return refused();
    }
    auto policy = skr::parse_policy(as_chars(rec.release_policy->data));
    if (!policy) {
      audit = "refused: the stored release policy does not parse: " + policy.error().message();
      return refused();
    }

    // 3. Can the vault token wrap with this enc?
    auto strategy = p11::choose_strategy(m_vault.capabilities(), p11::WrapStrategy::kAuto, req.enc);
    if (!strategy) {
      audit = "refused: " + strategy.error().message();
      return bad_parameter("enc " + std::string(wrap_alg_name(req.enc)) +
                           " cannot be used by this vault: " + strategy.error().message());
    }

    // 4. The attestation token.
    auto st = state();
    if (!st) {
      log::error("vault: release configuration: " + st.error().describe());
      audit = "failed: the release configuration does not load: " + st.error().message();
      return internal_error(
          "The vault's key release configuration does not load (see the server log).");
    }
    skr::VerifierOptions vo;
    vo.clock_skew_seconds = m_options.clock_skew_seconds;
    vo.clock = [this] { return m_vault.now(); };
    for (const auto& a : policy->policy.authorities) {
      vo.expected_issuers.push_back(a.authority);
    }
    KEYPORT_ASSIGN_OR_RETURN(auto verifier, skr::AttestationVerifier::create((*st)->resolver, vo));
    auto token = verifier.verify(req.target);
    if (!token) {
      audit =
          "refused: attestation token [" + token.error().detail() + "]: " + token.error().message();
      return refused();
    }

    // 5. The policy.
    skr::Decision d = skr::evaluate(policy->policy, token->claims());
    if (!d.allowed) {
      audit = "refused: the release policy denies the token of " + token->issuer() + " at " +
              d.failing_path + ": " + d.reason;
      return refused();
    }

    // 6. Wrap inside the token, build and sign.
    const skr::RuntimeKey& rk = token->runtime_key();
    Bytes wrapped;
    KEYPORT_TRY(with_object([&](const p11::Session& s, CK_OBJECT_HANDLE target) -> Status {
      KEYPORT_ASSIGN_OR_RETURN(
          p11::ScopedObject pub,
          p11::import_rsa_public_key(s, rk.public_key.rsa_modulus(), rk.public_key.rsa_exponent()));
      KEYPORT_ASSIGN_OR_RETURN(
          wrapped, p11::wrap_rsa_aes(s, m_vault.capabilities(), *strategy, req.enc, pub.get(),
                                     (rk.public_key.bits() + 7) / 8, target));
      return {};
    }));
    const std::string base_url = m_vault.config().base_url;
    skr::ReleaseResponseInput in;
    in.api_version = std::string(api_version);
    in.request_kid = kid_of(base_url, rec.name, version);
    in.enc = req.enc;
    in.nonce = req.nonce;
    in.key_bundle = key_bundle(
        base_url, rec,
        Recovery{m_vault.config().recovery_level(), m_vault.config().soft_delete_retention_days});
    in.runtime_kid = rk.kid;
    in.wrapped_key = std::move(wrapped);
    KEYPORT_ASSIGN_OR_RETURN(std::string jws,
                             skr::build_release_response(in, *(*st)->signer, *(*st)->identity));
    audit = "released (" + std::string(wrap_alg_name(req.enc)) + ") to runtime key \"" + rk.kid +
            "\" (RSA-" + std::to_string(rk.public_key.bits()) + ", SHA-256 " +
            rk.public_key.sha256_fingerprint().substr(0, 16) + "...) attested by " +
            token->issuer() + "; policy clause " + d.passed_path;
    return Json{{"value", std::move(jws)}};
  };
  return m_vault.m_impl->run_key_task(ctx, "ReleaseKey", name, version, task);
}

// The resolve-run-audit frame of a key operation whose work is done elsewhere (the release).
Result<Json> Vault::Impl::run_key_task(const CallContext& ctx, std::string_view operation,
                                       std::string_view name, std::string_view version,
                                       const KeyTask& task) {
  const std::string op_name(operation);
  return run(ctx, op_name.c_str(), [&](Op& op) -> Result<Json> {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
    WithObject with_object = [&](const ObjectTask& fn) -> Status {
      return with_key_object(r, r.spec.family, fn);
    };
    std::string reason;
    Result<Json> out = task(r, with_object, reason);
    if (out) {
      op.note = std::move(reason);
    } else {
      op.failure_reason = std::move(reason);
    }
    return out;
  });
}

}  // namespace keyport::vault
