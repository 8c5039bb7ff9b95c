// SPDX-License-Identifier: Apache-2.0
#include "vault/attestation.h"

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "byok/public_key.h"
#include "core/digest.h"
#include "core/encoding.h"
#include "core/x509.h"
#include "skr/jws.h"

namespace keyport::vault {

namespace {

tl::unexpected<Error> attestation_invalid(const std::string& what) {
  return tl::unexpected(
      Error(ErrorCode::kAttestationInvalid, "the key attestation does not verify: " + what));
}

Result<std::string> sign_statement(const Json& payload, const SigningIdentity& identity) {
  Json header{{"typ", "JWT"},
              {"x5t#S256", base64url_encode(sha256(identity.chain.front()))},
              {"cty", "keyport-key-attestation"}};
  return skr::sign_compact(std::move(header), as_bytes(dump_json(payload)), *identity.signer);
}

std::string organization_of(const X509& cert) {
  char buf[256] = {0};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(&cert), NID_organizationName, buf,
                                          static_cast<int>(sizeof buf));
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

Result<std::string> string_of(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) {
    return attestation_invalid(std::string("\"") + name + "\" is missing");
  }
  return it->get<std::string>();
}

// A statement: its JWS verified with `key`, its payload an object that says simulated and names
// `kid`, and says it is about `object`.
Result<Json> verified_statement(const std::string& compact, const skr::VerificationKey& key,
                                const std::string& kid, const std::string& object) {
  auto jws = skr::CompactJws::parse(compact);
  if (!jws) {
    return attestation_invalid("the " + object + " statement is not a compact JWS (" +
                               jws.error().message() + ")");
  }
  if (jws->alg() != skr::JwsAlg::kRs256 || !skr::verify_jws(*jws, key)) {
    return attestation_invalid("the " + object +
                               " statement's signature is not the attestation certificate's");
  }
  auto payload = jws->payload_object();
  if (!payload) {
    return attestation_invalid("the " + object + " statement is not a JSON object");
  }
  if (payload->value("simulated", false) != true) {
    return attestation_invalid("the " + object + " statement does not say it is simulated");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string about, string_of(*payload, "object"));
  KEYPORT_ASSIGN_OR_RETURN(std::string named, string_of(*payload, "kid"));
  if (about != object || named != kid) {
    return attestation_invalid("the " + object + " statement is about " + about + " of " + named +
                               ", not " + object + " of " + kid);
  }
  return std::move(*payload);
}

}  // namespace

Result<Json> make_key_attestation(const AttestationFacts& f, const SigningIdentity& identity) {
  Json key{{"kty", f.kty}};
  if (f.spec.curve) {
    key["crv"] = std::string(curve_jwk_name(*f.spec.curve));
  } else {
    key["key_size"] = f.spec.bits;
  }
  const Json token{{"label", f.token_label},
                   {"serial", f.token_serial},
                   {"model", f.token_model},
                   {"manufacturer", f.token_manufacturer}};
  Json priv{{"simulated", true},
            {"statement",
             "SIMULATED key attestation by keyport: what the vault's PKCS#11 token reports about "
             "the key's object. Not a hardware attestation."},
            {"object", f.spec.family == KeyFamily::kAes ? "secret key" : "private key"},
            {"kid", f.kid},
            {"key", key},
            {"origin", f.origin},
            {"token", token},
            {"attributes",
             {{"CKA_LOCAL", f.local},
              {"CKA_SENSITIVE", f.sensitive},
              {"CKA_ALWAYS_SENSITIVE", f.always_sensitive},
              {"CKA_EXTRACTABLE", f.extractable},
              {"CKA_NEVER_EXTRACTABLE", f.never_extractable}}},
            {"iat", f.issued_at}};
  std::string pem;
  for (const Bytes& der : identity.chain) {
    KEYPORT_ASSIGN_OR_RETURN(auto cert, x509::certificate_from_der(der));
    pem += x509::certificate_pem(*cert);
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string priv_jws, sign_statement(priv, identity));
  Json out{{"certificatePemFile", base64url_encode(as_bytes(pem))},
           {"privateKeyAttestation", base64url_encode(as_bytes(priv_jws))},
           {"version", kAttestationVersion}};
  if (f.spki) {
    Json pub{{"simulated", true},
             {"object", "public key"},
             {"kid", f.kid},
             {"spki_sha256", hex_encode(sha256(*f.spki))},
             {"checked_against_private_key_by", f.public_key_checked_by},
             {"iat", f.issued_at}};
    KEYPORT_ASSIGN_OR_RETURN(std::string pub_jws, sign_statement(pub, identity));
    out["publicKeyAttestation"] = base64url_encode(as_bytes(pub_jws));
  }
  return out;
}

Result<AttestationReport> verify_key_attestation(const Json& bundle, std::string_view trust_pem) {
  if (!bundle.is_object() || !bundle.contains("key") || !bundle["key"].is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "not a key bundle (no \"key\" object)");
  }
  const Json& key = bundle["key"];
  const Json* att = nullptr;
  if (auto a = bundle.find("attributes"); a != bundle.end() && a->is_object()) {
    if (auto t = a->find("attestation"); t != a->end() && t->is_object()) {
      att = &*t;
    }
  }
  if (att == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the key bundle has no attributes.attestation (use GetKeyAttestation: "
                      "keyport vault get-attestation)");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string kid, string_of(key, "kid"));
  auto decode = [&](const char* member) -> Result<std::string> {
    KEYPORT_ASSIGN_OR_RETURN(std::string b64, string_of(*att, member));
    auto bytes = base64url_decode(b64);
    if (!bytes) {
      return attestation_invalid(std::string(member) + " is not base64url");
    }
    return std::string(bytes->begin(), bytes->end());
  };
  KEYPORT_ASSIGN_OR_RETURN(std::string version, string_of(*att, "version"));
  if (version != kAttestationVersion) {
    return attestation_invalid("version \"" + version + "\" is not keyport's (" +
                               kAttestationVersion + ")");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string pem, decode("certificatePemFile"));
  auto certs = x509::certificates_from_pem(pem);
  if (!certs || certs->empty()) {
    return attestation_invalid("certificatePemFile holds no certificate");
  }
  if (auto st = x509::verify_chain(*certs, trust_pem); !st) {
    return attestation_invalid("the attestation certificate does not chain to the trusted CA (" +
                               st.error().message() + ")");
  }
  const X509& leaf = *certs->front();
  if (organization_of(leaf) != kAttestationOrganization) {
    return attestation_invalid(
        "the certificate was not issued for key attestation (O=" + organization_of(leaf) + ")");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes leaf_spki, x509::public_key_spki(*X509_get0_pubkey(&leaf)));
  KEYPORT_ASSIGN_OR_RETURN(auto leaf_pub, byok::PublicKey::from_spki_der(leaf_spki));
  KEYPORT_ASSIGN_OR_RETURN(auto vkey, skr::VerificationKey::from_public_key(leaf_pub));

  AttestationReport report;
  report.kid = kid;
  report.signer = x509::common_name(leaf);
  KEYPORT_ASSIGN_OR_RETURN(std::string priv, decode("privateKeyAttestation"));
  const bool secret = key.value("kty", "").rfind("oct", 0) == 0;
  KEYPORT_ASSIGN_OR_RETURN(
      report.private_statement,
      verified_statement(priv, vkey, kid, secret ? "secret key" : "private key"));
  if (secret) {
    return report;
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string pub, decode("publicKeyAttestation"));
  KEYPORT_ASSIGN_OR_RETURN(Json pub_statement, verified_statement(pub, vkey, kid, "public key"));
  Json jwk = key;
  jwk.erase("kid");
  jwk.erase("key_ops");
  if (auto kty = jwk.find("kty"); kty != jwk.end() && kty->is_string()) {
    std::string t = kty->get<std::string>();
    if (t.size() > 4 && t.substr(t.size() - 4) == "-HSM") {
      *kty = t.substr(0, t.size() - 4);
    }
  }
  auto bundle_key = byok::PublicKey::from_jwk(jwk);
  if (!bundle_key) {
    return attestation_invalid("the bundle's public key is not readable (" +
                               bundle_key.error().message() + ")");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string hash, string_of(pub_statement, "spki_sha256"));
  if (hash != bundle_key->sha256_fingerprint()) {
    return attestation_invalid("the public key statement is about another public key");
  }
  report.public_statement = std::move(pub_statement);
  return report;
}

}  // namespace keyport::vault
