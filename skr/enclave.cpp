// SPDX-License-Identifier: Apache-2.0
#include "skr/enclave.h"

#include "byok/crypto.h"
#include "byok/key_material.h"
#include "core/digest.h"
#include "core/strings.h"
#include "core/x509.h"

namespace keyport::skr {
namespace {

constexpr JwsLimits kReleaseLimits{256 * 1024, 128 * 1024, 256 * 1024, 32};

tl::unexpected<Error> rel_error(ErrorCode code, std::string detail, std::string message) {
  return make_error(code, std::move(detail), "release response: " + std::move(message));
}

std::string upper_hex(std::span<const std::uint8_t> bytes) {
  return ascii_upper(hex_encode(bytes));
}

const char* const kSecretJwkMembers[] = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"};

Result<byok::PublicKey> cert_public_key(const X509& cert) {
  ossl::UniquePtr<EVP_PKEY> pk(X509_get_pubkey(const_cast<X509*>(&cert)));
  if (!pk) {
    return ossl::crypto_failure("the certificate has no readable public key");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes spki, x509::public_key_spki(*pk));
  return byok::PublicKey::from_spki_der(spki);
}

Result<const Json*> member_object(const Json& obj, const char* name, const std::string& where) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_object()) {
    return rel_error(ErrorCode::kFormat, "REL-PAYLOAD",
                     where + "." + name + " is missing or not an object");
  }
  return &*it;
}

Result<std::string> member_string(const Json& obj, const char* name, const std::string& where) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) {
    return rel_error(ErrorCode::kFormat, "REL-PAYLOAD",
                     where + "." + name + " is missing or not a string");
  }
  return it->get<std::string>();
}

}  // namespace

std::string encode_key_hsm(std::string_view runtime_kid, WrapAlg enc,
                           std::span<const std::uint8_t> ciphertext) {
  // Member order as Azure writes it; nlohmann::ordered_json keeps insertion order.
  nlohmann::ordered_json doc;
  doc["schema_version"] = "1.0";
  doc["header"]["kid"] = std::string(runtime_kid);
  doc["header"]["alg"] = "dir";
  doc["header"]["enc"] = std::string(wrap_alg_name(enc));
  doc["ciphertext"] = base64url_encode(ciphertext);
  return base64url_encode(as_bytes(doc.dump()));
}

Result<KeyHsm> decode_key_hsm(std::string_view key_hsm) {
  auto fail = [](const std::string& why) {
    return rel_error(ErrorCode::kFormat, "REL-KEY-HSM", "key_hsm: " + why);
  };
  auto raw = base64url_decode(key_hsm);
  if (!raw) {
    return fail("not base64url");
  }
  auto doc = parse_json_strict(as_chars(*raw), JsonLimits{64 * 1024, 8});
  if (!doc || !doc->is_object()) {
    return fail(doc ? "not a JSON object" : doc.error().message());
  }
  if (!json_only_members(*doc, {"schema_version", "header", "ciphertext"}, "key_hsm")) {
    return fail("unexpected members (schema_version, header, ciphertext)");
  }
  KeyHsm out;
  auto sv = doc->find("schema_version");
  if (sv == doc->end() || !sv->is_string() || sv->get_ref<const std::string&>() != "1.0") {
    return fail("schema_version must be \"1.0\"");
  }
  out.schema_version = "1.0";
  auto header = doc->find("header");
  if (header == doc->end() || !header->is_object() ||
      !json_only_members(*header, {"kid", "alg", "enc"}, "key_hsm.header")) {
    return fail("header must be {\"kid\", \"alg\", \"enc\"}");
  }
  auto kid = header->find("kid");
  auto alg = header->find("alg");
  auto enc = header->find("enc");
  if (kid == header->end() || !kid->is_string() || kid->get_ref<const std::string&>().empty()) {
    return fail("header.kid must be a non-empty string");
  }
  if (alg == header->end() || !alg->is_string() || alg->get_ref<const std::string&>() != "dir") {
    return fail("header.alg must be \"dir\"");
  }
  if (enc == header->end() || !enc->is_string()) {
    return fail("header.enc must be a string");
  }
  auto parsed_enc = parse_wrap_alg(enc->get_ref<const std::string&>());
  if (!parsed_enc) {
    return fail("header.enc: " + parsed_enc.error().message());
  }
  auto ct = doc->find("ciphertext");
  if (ct == doc->end() || !ct->is_string()) {
    return fail("ciphertext must be a string");
  }
  auto ct_bytes = base64url_decode(ct->get_ref<const std::string&>());
  if (!ct_bytes || ct_bytes->empty()) {
    return fail("ciphertext is not base64url");
  }
  out.kid = kid->get<std::string>();
  out.enc = *parsed_enc;
  out.ciphertext = std::move(*ct_bytes);
  return out;
}

Result<ReleaseSigningIdentity> ReleaseSigningIdentity::create(const JwsSigner& signer,
                                                              const std::vector<Bytes>& chain) {
  if (signer.alg() != JwsAlg::kRs256) {
    return make_error(ErrorCode::kInvalidArgument, "release responses are signed RS256");
  }
  if (chain.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "the signing certificate chain is empty");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto leaf, x509::certificate_from_der(chain.front()));
  Json x5c = Json::array();
  for (const auto& der : chain) {
    KEYPORT_TRY(x509::certificate_from_der(der));
    x5c.push_back(base64_encode(der));
  }
  const Bytes t1 = x509::thumbprint_sha1(*leaf);
  const Bytes t256 = x509::thumbprint_sha256(*leaf);
  Json header{{"kid", upper_hex(t1)},
              {"typ", "JWT"},
              {"x5c", x5c},
              {"x5t", base64url_encode(t1)},
              {"x5t#S256", base64url_encode(t256)}};
  KEYPORT_ASSIGN_OR_RETURN(auto leaf_public, cert_public_key(*leaf));
  KEYPORT_ASSIGN_OR_RETURN(auto leaf_key, VerificationKey::from_public_key(leaf_public));
  ReleaseSigningIdentity identity{std::move(header), std::move(leaf_key)};
  // The signer must hold the leaf's key: find out now rather than on the first release.
  KEYPORT_ASSIGN_OR_RETURN(std::string probe,
                           sign_compact(identity.header, as_bytes(std::string("{}")), signer));
  KEYPORT_ASSIGN_OR_RETURN(auto parsed, CompactJws::parse(probe, kReleaseLimits));
  if (!verify_jws(parsed, identity.leaf_key)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the signer does not hold the key of the chain's first certificate");
  }
  return identity;
}

Result<std::string> build_release_response(const ReleaseResponseInput& input,
                                           const JwsSigner& signer,
                                           const std::vector<Bytes>& chain) {
  KEYPORT_ASSIGN_OR_RETURN(auto identity, ReleaseSigningIdentity::create(signer, chain));
  return build_release_response(input, signer, identity);
}

Result<std::string> build_release_response(const ReleaseResponseInput& input,
                                           const JwsSigner& signer,
                                           const ReleaseSigningIdentity& identity) {
  if (signer.alg() != JwsAlg::kRs256) {
    return make_error(ErrorCode::kInvalidArgument, "release responses are signed RS256");
  }
  if (input.runtime_kid.empty() || input.wrapped_key.empty() || input.request_kid.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a release response needs the request kid, the runtime kid and the "
                      "wrapped key");
  }
  if (!input.key_bundle.is_object() || !input.key_bundle.contains("key") ||
      !input.key_bundle.at("key").is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "key_bundle must be a KeyBundle with \"key\"");
  }
  Json bundle = input.key_bundle;
  Json& key = bundle["key"];
  for (const char* m : kSecretJwkMembers) {
    if (key.contains(m)) {
      return make_error(ErrorCode::kInvalidArgument,
                        std::string("key_bundle.key holds private member \"") + m + "\"");
    }
  }
  if (key.contains("key_hsm")) {
    return make_error(ErrorCode::kInvalidArgument, "key_bundle.key already has key_hsm");
  }
  key["key_hsm"] = encode_key_hsm(input.runtime_kid, input.enc, input.wrapped_key);

  Json request{{"api-version", input.api_version},
               {"enc", std::string(wrap_alg_name(input.enc))},
               {"kid", input.request_kid}};
  if (input.nonce) {
    request["nonce"] = *input.nonce;
  }
  Json payload{{"request", request}, {"response", Json{{"key", bundle}}}};
  KEYPORT_ASSIGN_OR_RETURN(std::string jws,
                           sign_compact(identity.header, as_bytes(dump_json(payload)), signer));
  // Sign, then verify what was produced before handing it out: a wrong key or a faulty
  // signature never leaves the vault.
  KEYPORT_ASSIGN_OR_RETURN(auto parsed, CompactJws::parse(jws, kReleaseLimits));
  if (!verify_jws(parsed, identity.leaf_key)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the signer does not hold the key of the chain's first certificate");
  }
  return jws;
}

Result<VerifiedRelease> verify_release_response(std::string_view body, const ReleaseTrust& trust) {
  std::string compact;
  const auto first = body.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && body[first] == '{') {
    auto doc = parse_json_strict(body, JsonLimits{512 * 1024, 16});
    if (!doc || !doc->is_object() || !doc->contains("value") || !doc->at("value").is_string()) {
      return rel_error(ErrorCode::kFormat, "REL-PAYLOAD",
                       "the body is not {\"value\": \"<JWS>\"}" +
                           (doc ? std::string() : ": " + doc.error().message()));
    }
    compact = doc->at("value").get<std::string>();
  } else {
    compact = std::string(trim(body));
  }
  auto jws = CompactJws::parse(compact, kReleaseLimits);
  if (!jws) {
    return rel_error(jws.error().code(), jws.error().detail(), jws.error().message());
  }
  if (jws->alg() != JwsAlg::kRs256) {
    return rel_error(ErrorCode::kIntegrityFailure, "REL-HEADER",
                     "alg is " + std::string(to_string(jws->alg())) +
                         ", release responses are "
                         "RS256");
  }
  const Json& header = jws->header();
  auto x5c = header.find("x5c");
  if (x5c == header.end() || !x5c->is_array() || x5c->empty()) {
    return rel_error(ErrorCode::kIntegrityFailure, "REL-CHAIN", "the header has no x5c chain");
  }
  std::vector<ossl::UniquePtr<X509>> chain;
  for (const auto& entry : *x5c) {
    if (!entry.is_string()) {
      return rel_error(ErrorCode::kFormat, "REL-CHAIN", "x5c entries must be base64 strings");
    }
    auto der = base64_decode(entry.get_ref<const std::string&>());
    if (!der) {
      return rel_error(ErrorCode::kFormat, "REL-CHAIN", "an x5c entry is not base64");
    }
    auto cert = x509::certificate_from_der(*der);
    if (!cert) {
      return rel_error(ErrorCode::kFormat, "REL-CHAIN", "an x5c entry is not a certificate");
    }
    chain.push_back(std::move(*cert));
  }
  x509::ChainCheck check;
  check.host = trust.vault_host;
  check.at = trust.clock ? trust.clock() : 0;
  if (auto ok = x509::verify_chain(chain, trust.vault_ca_pem, check); !ok) {
    return rel_error(
        ok.error().code() == ErrorCode::kFormat ? ErrorCode::kFormat : ErrorCode::kIntegrityFailure,
        "REL-CHAIN", ok.error().message());
  }
  KEYPORT_ASSIGN_OR_RETURN(auto leaf_key, cert_public_key(*chain.front()));
  KEYPORT_ASSIGN_OR_RETURN(auto vk, VerificationKey::from_public_key(leaf_key));
  if (!verify_jws(*jws, vk)) {
    return rel_error(ErrorCode::kIntegrityFailure, "REL-SIGNATURE",
                     "the signature does not verify with the x5c leaf certificate's key");
  }
  const Bytes t1 = x509::thumbprint_sha1(*chain.front());
  const Bytes t256 = x509::thumbprint_sha256(*chain.front());
  if (auto kid = header.find("kid"); kid != header.end()) {
    if (!kid->is_string() || !iequals(kid->get_ref<const std::string&>(), upper_hex(t1))) {
      return rel_error(ErrorCode::kIntegrityFailure, "REL-HEADER",
                       "header kid is not the leaf certificate's SHA-1 thumbprint");
    }
  }
  if (auto x5t = header.find("x5t"); x5t != header.end()) {
    if (!x5t->is_string() || x5t->get_ref<const std::string&>() != base64url_encode(t1)) {
      return rel_error(ErrorCode::kIntegrityFailure, "REL-HEADER",
                       "header x5t is not the leaf certificate's SHA-1 thumbprint");
    }
  }
  if (auto x5t256 = header.find("x5t#S256"); x5t256 != header.end()) {
    if (!x5t256->is_string() || x5t256->get_ref<const std::string&>() != base64url_encode(t256)) {
      return rel_error(ErrorCode::kIntegrityFailure, "REL-HEADER",
                       "header x5t#S256 is not the leaf certificate's SHA-256 thumbprint");
    }
  }
  // Payload shape.
  auto payload = jws->payload_object(kReleaseLimits);
  if (!payload) {
    return rel_error(ErrorCode::kFormat, "REL-PAYLOAD", payload.error().message());
  }
  KEYPORT_ASSIGN_OR_RETURN(const Json* request, member_object(*payload, "request", "payload"));
  KEYPORT_ASSIGN_OR_RETURN(std::string api, member_string(*request, "api-version", "request"));
  KEYPORT_ASSIGN_OR_RETURN(std::string enc_name, member_string(*request, "enc", "request"));
  KEYPORT_ASSIGN_OR_RETURN(std::string request_kid, member_string(*request, "kid", "request"));
  auto enc = parse_wrap_alg(enc_name);
  if (!enc) {
    return rel_error(ErrorCode::kFormat, "REL-PAYLOAD", "request.enc: " + enc.error().message());
  }
  std::optional<std::string> nonce;
  if (auto n = request->find("nonce"); n != request->end()) {
    if (!n->is_string()) {
      return rel_error(ErrorCode::kFormat, "REL-PAYLOAD", "request.nonce is not a string");
    }
    nonce = n->get<std::string>();
  }
  if (trust.expected_nonce && nonce != trust.expected_nonce) {
    return rel_error(ErrorCode::kAttestationInvalid, "REL-NONCE",
                     nonce ? "request.nonce differs from the nonce sent"
                           : "the response does not echo the nonce sent");
  }
  KEYPORT_ASSIGN_OR_RETURN(const Json* response, member_object(*payload, "response", "payload"));
  KEYPORT_ASSIGN_OR_RETURN(const Json* bundle, member_object(*response, "key", "response"));
  KEYPORT_ASSIGN_OR_RETURN(const Json* key, member_object(*bundle, "key", "response.key"));
  KEYPORT_ASSIGN_OR_RETURN(std::string key_kid, member_string(*key, "kid", "response.key.key"));
  KEYPORT_ASSIGN_OR_RETURN(std::string kty, member_string(*key, "kty", "response.key.key"));
  KEYPORT_ASSIGN_OR_RETURN(std::string key_hsm_text,
                           member_string(*key, "key_hsm", "response.key.key"));
  for (const char* m : kSecretJwkMembers) {
    if (key->contains(m)) {
      return rel_error(ErrorCode::kFormat, "REL-PAYLOAD",
                       std::string("response.key.key carries private member \"") + m + "\"");
    }
  }
  KEYPORT_ASSIGN_OR_RETURN(KeyHsm key_hsm, decode_key_hsm(key_hsm_text));
  if (key_hsm.enc != *enc) {
    return rel_error(ErrorCode::kFormat, "REL-KEY-HSM",
                     "key_hsm.header.enc " + std::string(wrap_alg_name(key_hsm.enc)) +
                         " differs from request.enc " + enc_name);
  }
  VerifiedRelease out;
  if (kty == "RSA" || kty == "RSA-HSM") {
    out.m_family = KeyFamily::kRsa;
  } else if (kty == "EC" || kty == "EC-HSM") {
    out.m_family = KeyFamily::kEc;
  } else if (kty == "oct" || kty == "oct-HSM") {
    out.m_family = KeyFamily::kAes;
  } else {
    return rel_error(ErrorCode::kFormat, "REL-PAYLOAD", "unsupported kty \"" + kty + "\"");
  }
  Json jwk = *key;
  jwk.erase("key_hsm");
  if (out.m_family != KeyFamily::kAes) {
    auto pub = byok::PublicKey::from_jwk(jwk);
    if (!pub) {
      return rel_error(ErrorCode::kFormat, "REL-PAYLOAD",
                       "response.key.key: " + pub.error().message());
    }
    out.m_public = std::move(*pub);
  }
  out.m_payload = std::move(*payload);
  out.m_key_jwk = std::move(jwk);
  out.m_key_kid = std::move(key_kid);
  out.m_kty = std::move(kty);
  out.m_key_hsm = std::move(key_hsm);
  out.m_signer_subject = x509::common_name(*chain.front());
  (void)api;
  (void)request_kid;
  return out;
}

Result<ReleasedKey> unwrap_released_key(const VerifiedRelease& release,
                                        const SecretBytes& runtime_private_der,
                                        std::string_view runtime_kid) {
  const KeyHsm& blob = release.key_hsm();
  if (blob.kid != runtime_kid) {
    return make_error(ErrorCode::kInvalidArgument, "REL-KID",
                      "release response: key_hsm is wrapped to the runtime key \"" + blob.kid +
                          "\", not to \"" + std::string(runtime_kid) + "\"");
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes material,
                           byok::rsa_aes_unwrap(runtime_private_der, blob.enc, blob.ciphertext));
  ReleasedKey out;
  out.public_jwk = release.key_jwk();
  out.kid = release.key_kid();
  auto mismatch = [](const std::string& why) {
    return make_error(ErrorCode::kIntegrityFailure, "REL-MISMATCH", "release response: " + why);
  };
  if (release.family() == KeyFamily::kAes) {
    const std::size_t n = material.size();
    if (n != 16 && n != 24 && n != 32) {
      return mismatch("the released oct key is " + std::to_string(n) + " bytes, not 16, 24 or 32");
    }
    out.spec = KeySpec{KeyFamily::kAes, static_cast<unsigned>(n * 8), std::nullopt};
    out.material = std::move(material);
    return out;
  }
  auto info = byok::inspect_pkcs8(material);
  if (!info) {
    return mismatch("the released key material is not a PKCS#8 private key");
  }
  // Some HSMs (SoftHSM 2.6.1) pad the wrapped PKCS#8 with zero bytes: drop such padding only.
  const auto bytes = material.reveal(SecretAccess::unsafe());
  for (std::size_t i = info->der_length; i < bytes.size(); ++i) {
    if (bytes[i] != 0) {
      return mismatch("bytes follow the PKCS#8 private key");
    }
  }
  material.truncate(info->der_length);
  if (info->spec.family != release.family() || !release.public_key() ||
      !(info->public_key == *release.public_key())) {
    return mismatch("the unwrapped private key does not belong to the public key in the response");
  }
  out.spec = info->spec;
  out.material = std::move(material);
  return out;
}

}  // namespace keyport::skr
