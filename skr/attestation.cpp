// SPDX-License-Identifier: Apache-2.0
#include "skr/attestation.h"

#include <cmath>

#include "core/strings.h"
#include "core/x509.h"
#include "skr/policy.h"

namespace keyport::skr {
namespace {

tl::unexpected<Error> att_error(std::string detail, std::string message) {
  return make_error(ErrorCode::kAttestationInvalid, std::move(detail),
                    "attestation token: " + std::move(message));
}

// Any failure below the attestation layer becomes kAttestationInvalid, keeping its sub-code.
tl::unexpected<Error> as_attestation(const Error& e, std::string_view fallback_detail) {
  std::string detail = e.detail().empty() ? std::string(fallback_detail) : e.detail();
  std::string msg = e.message();
  if (msg.rfind("attestation token: ", 0) != 0) {
    msg = "attestation token: " + msg;
  }
  return make_error(ErrorCode::kAttestationInvalid, std::move(detail), std::move(msg));
}

// A NumericDate claim (RFC 7519 §2): a JSON number. Absent: nullopt; wrong type: error.
Result<std::optional<double>> numeric_date(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) {
    return std::optional<double>();
  }
  if (!it->is_number() || !std::isfinite(it->get<double>())) {
    return att_error("JWT-TIME", std::string("\"") + name + "\" must be a number (NumericDate)");
  }
  return std::optional<double>(it->get<double>());
}

std::string fmt_time(double t) {
  return std::to_string(static_cast<std::int64_t>(t));
}

// The public key of a runtime JWK: n/e, or the x5c leaf, or both when they agree.
Result<byok::PublicKey> runtime_public_key(const Json& jwk) {
  std::optional<byok::PublicKey> from_members;
  if (jwk.contains("n") || jwk.contains("e")) {
    KEYPORT_ASSIGN_OR_RETURN(auto k, byok::PublicKey::from_jwk(jwk));
    from_members = std::move(k);
  }
  std::optional<byok::PublicKey> from_cert;
  if (auto x5c = jwk.find("x5c"); x5c != jwk.end()) {
    if (!x5c->is_array() || x5c->empty() || !(*x5c)[0].is_string()) {
      return make_error(ErrorCode::kFormat, "x5c must be a non-empty array of base64 DER");
    }
    KEYPORT_ASSIGN_OR_RETURN(Bytes der, base64_decode((*x5c)[0].get_ref<const std::string&>()));
    KEYPORT_ASSIGN_OR_RETURN(auto cert, x509::certificate_from_der(der));
    ossl::UniquePtr<EVP_PKEY> pk(X509_get_pubkey(cert.get()));
    if (!pk) {
      return make_error(ErrorCode::kFormat, "x5c[0] has no readable public key");
    }
    KEYPORT_ASSIGN_OR_RETURN(Bytes spki, x509::public_key_spki(*pk));
    KEYPORT_ASSIGN_OR_RETURN(auto k, byok::PublicKey::from_spki_der(spki));
    from_cert = std::move(k);
  }
  if (from_members && from_cert && !(*from_members == *from_cert)) {
    return make_error(ErrorCode::kInvalidArgument, "x5c[0] does not hold the key given by n/e");
  }
  if (from_members) {
    return std::move(*from_members);
  }
  if (from_cert) {
    return std::move(*from_cert);
  }
  return make_error(ErrorCode::kFormat, "no n/e and no x5c");
}

}  // namespace

Result<RuntimeKey> select_runtime_key(const Json& claims) {
  auto rt = claims.find("x-ms-runtime");
  if (rt == claims.end() || !rt->is_object()) {
    return att_error("ATT-RUNTIME-MISSING",
                     "no \"x-ms-runtime\" object: the token carries no runtime key to release to");
  }
  auto keys = rt->find("keys");
  if (keys == rt->end() || !keys->is_array()) {
    return att_error("ATT-RUNTIME-MISSING", "\"x-ms-runtime.keys\" is missing or not an array");
  }
  if (keys->empty()) {
    return att_error("ATT-RUNTIME-KEY", "\"x-ms-runtime.keys\" is empty");
  }
  std::vector<std::string> passed_over;
  for (std::size_t i = 0; i < keys->size(); ++i) {
    const Json& k = (*keys)[i];
    const std::string label = "keys[" + std::to_string(i) + "]";
    auto skip = [&](const std::string& why) { passed_over.push_back(label + ": " + why); };
    if (!k.is_object()) {
      skip("not an object");
      continue;
    }
    auto kty = k.find("kty");
    if (kty == k.end() || !kty->is_string() || kty->get_ref<const std::string&>() != "RSA") {
      skip("not an RSA key (kty " + (kty == k.end() ? std::string("missing") : kty->dump()) + ")");
      continue;
    }
    auto kid = k.find("kid");
    if (kid == k.end() || !kid->is_string() || kid->get_ref<const std::string&>().empty()) {
      skip("no kid");
      continue;
    }
    bool encrypt = false;
    if (auto ops = k.find("key_ops"); ops != k.end() && ops->is_array()) {
      for (const auto& op : *ops) {
        encrypt = encrypt || (op.is_string() && op.get_ref<const std::string&>() == "encrypt");
      }
    }
    if (auto use = k.find("use"); use != k.end() && use->is_string()) {
      encrypt = encrypt || use->get_ref<const std::string&>() == "enc";
    }
    if (!encrypt) {
      skip("not marked for encryption (key_ops without \"encrypt\" and use not \"enc\")");
      continue;
    }
    auto pub = runtime_public_key(k);
    if (!pub) {
      skip(pub.error().message());
      continue;
    }
    if (pub->family() != KeyFamily::kRsa || pub->bits() < 2048) {
      skip("RSA-" + std::to_string(pub->bits()) + " is too small (at least 2048 bits)");
      continue;
    }
    return RuntimeKey{kid->get<std::string>(), std::move(*pub), k, i};
  }
  std::string why;
  for (const auto& p : passed_over) {
    why += (why.empty() ? "" : "; ") + p;
  }
  return att_error("ATT-RUNTIME-KEY",
                   "no suitable key in x-ms-runtime.keys (an RSA key of at least 2048 bits with a "
                   "kid, usable for encryption): " +
                       why);
}

Result<AttestationVerifier> AttestationVerifier::create(std::shared_ptr<KeyResolver> keys,
                                                        VerifierOptions options) {
  if (!keys) {
    return make_error(ErrorCode::kInvalidArgument, "an attestation verifier needs a key resolver");
  }
  if (options.clock_skew_seconds < 0 || options.clock_skew_seconds > 300) {
    return make_error(ErrorCode::kInvalidArgument, "clock skew must be 0..300 seconds");
  }
  return AttestationVerifier(std::move(keys), std::move(options));
}

Result<VerifiedToken> AttestationVerifier::verify(std::string_view token) const {
  return verify(token, m_options.expected_issuers);
}

Result<VerifiedToken> AttestationVerifier::verify(
    std::string_view token, const std::vector<std::string>& expected_issuers) const {
  // 1. The JWS itself.
  auto jws = CompactJws::parse(token, m_options.limits);
  if (!jws) {
    return as_attestation(jws.error(), "JWS-HEADER");
  }
  // 2. typ
  if (auto typ = jws->header().find("typ"); typ != jws->header().end()) {
    const std::string t = typ->is_string() ? ascii_upper(typ->get<std::string>()) : "";
    if (t != "JWT") {
      return att_error("JWT-TYP", "header \"typ\" is " + typ->dump() + ", not \"JWT\"");
    }
  }
  // 3. payload
  auto claims = jws->payload_object(m_options.limits);
  if (!claims) {
    return as_attestation(claims.error(), "JWT-PAYLOAD");
  }
  // 4. issuer
  auto iss_it = claims->find("iss");
  if (iss_it == claims->end() || !iss_it->is_string() ||
      iss_it->get_ref<const std::string&>().empty()) {
    return att_error("JWT-ISS", "no string \"iss\" claim");
  }
  const std::string issuer = iss_it->get<std::string>();
  if (!expected_issuers.empty()) {
    bool expected = false;
    for (const auto& e : expected_issuers) {
      expected = expected || authority_matches(e, issuer);
    }
    if (!expected) {
      return att_error("JWT-UNTRUSTED-ISS",
                       "issuer \"" + issuer + "\" is not one of the expected authorities");
    }
  }
  if (!m_keys->trusts(issuer)) {
    return att_error("JWT-UNTRUSTED-ISS",
                     "issuer \"" + issuer + "\" is not a trusted attestation authority");
  }
  // 5. signature
  auto keys = m_keys->keys_for(issuer);
  if (!keys) {
    return as_attestation(keys.error(), "ATT-KEYS");
  }
  std::vector<const VerificationKey*> candidates;
  bool kid_matched = false;
  if (!jws->kid().empty()) {
    for (const auto& k : *keys) {
      if (k.kid() == jws->kid()) {
        candidates.push_back(&k);
        kid_matched = true;
      }
    }
  }
  if (candidates.empty()) {
    for (const auto& k : *keys) {
      candidates.push_back(&k);
    }
  }
  const VerificationKey* verified_by = nullptr;
  std::size_t tried = 0;
  for (const VerificationKey* k : candidates) {
    if (!k->fits(jws->alg()) || (m_options.require_x5c && k->x5c().empty())) {
      continue;
    }
    ++tried;
    if (verify_jws(*jws, *k)) {
      verified_by = k;
      break;
    }
  }
  if (verified_by == nullptr) {
    std::string why = std::string(to_string(jws->alg())) + " signature does not verify with ";
    if (kid_matched) {
      why += "the key " + dump_json(Json(jws->kid())) + " of \"" + issuer + "\"";
    } else {
      why += std::to_string(tried) + " key(s) of \"" + issuer + "\"" +
             (jws->kid().empty() ? std::string()
                                 : " (no key has kid " + dump_json(Json(jws->kid())) + ")");
    }
    return att_error("JWS-SIGNATURE", why);
  }
  // 6. validity period
  const std::int64_t now = m_options.clock ? m_options.clock() : system_now();
  const double skew = static_cast<double>(m_options.clock_skew_seconds);
  KEYPORT_ASSIGN_OR_RETURN(auto exp, numeric_date(*claims, "exp"));
  KEYPORT_ASSIGN_OR_RETURN(auto nbf, numeric_date(*claims, "nbf"));
  KEYPORT_ASSIGN_OR_RETURN(auto iat, numeric_date(*claims, "iat"));
  if (!exp) {
    return att_error("JWT-TIME", "no \"exp\" claim (tokens without an expiry are not accepted)");
  }
  if (static_cast<double>(now) >= *exp + skew) {
    return att_error("JWT-EXPIRED", "expired at " + fmt_time(*exp) + " (now " +
                                        std::to_string(now) + ", skew " +
                                        std::to_string(m_options.clock_skew_seconds) + " s)");
  }
  if (nbf && *nbf > static_cast<double>(now) + skew) {
    return att_error("JWT-NOT-YET-VALID",
                     "not valid before " + fmt_time(*nbf) + " (now " + std::to_string(now) + ")");
  }
  if (iat && *iat > static_cast<double>(now) + skew) {
    return att_error("JWT-IAT", "issued in the future (iat " + fmt_time(*iat) + ", now " +
                                    std::to_string(now) + ")");
  }
  // 7. runtime key
  KEYPORT_ASSIGN_OR_RETURN(RuntimeKey runtime, select_runtime_key(*claims));
  const auto exp_value = static_cast<std::int64_t>(*exp);
  return VerifiedToken(std::move(*claims), issuer, std::move(runtime), verified_by->kid(),
                       exp_value);
}

}  // namespace keyport::skr
