// SPDX-License-Identifier: Apache-2.0
#include "enclave/token_release.h"

#include <span>

#include "core/random.h"
#include "pkcs11/keygen.h"
#include "pkcs11/template.h"
#include "pkcs11/wrap.h"

namespace keyport::enclave {
namespace {

// The stored key: sensitive and not extractable, usable for what its type is for.
p11::Template released_template(const skr::VerifiedRelease& r, const std::string& label,
                                std::span<const std::uint8_t> id) {
  p11::Template t;
  t.token(true).private_object(true).sensitive(true).extractable(false).label(label).id(id);
  switch (r.family()) {
    case KeyFamily::kAes:
      t.object_class(CKO_SECRET_KEY).key_type(CKK_AES).encrypt(true).decrypt(true);
      break;
    case KeyFamily::kRsa:
      t.object_class(CKO_PRIVATE_KEY).key_type(CKK_RSA).sign(true).decrypt(true);
      break;
    case KeyFamily::kEc:
      t.object_class(CKO_PRIVATE_KEY).key_type(CKK_EC).sign(true);
      break;
  }
  return t;
}

}  // namespace

Result<byok::PublicKey> generate_runtime_key(const p11::Session& s, const std::string& label) {
  auto existing = s.find_objects(p11::Template().label(label));
  if (existing && !existing->empty()) {
    return make_error(ErrorCode::kAlreadyExists,
                      "the token already has an object labelled \"" + label + "\"");
  }
  const Bytes id = random_bytes(16);
  const std::uint8_t e65537[] = {0x01, 0x00, 0x01};
  p11::Template pub;
  pub.object_class(CKO_PUBLIC_KEY)
      .key_type(CKK_RSA)
      .token(true)
      .private_object(false)
      .label(label)
      .id(id)
      .modulus_bits(2048)
      .public_exponent(e65537)
      .encrypt(true)
      .wrap(true)
      .verify(false);
  p11::Template priv;
  priv.object_class(CKO_PRIVATE_KEY)
      .key_type(CKK_RSA)
      .token(true)
      .private_object(true)
      .label(label)
      .id(id)
      .sensitive(true)
      .extractable(false)
      .decrypt(true)
      .unwrap(true)
      .sign(false);
  CK_MECHANISM mech{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  KEYPORT_ASSIGN_OR_RETURN(auto pair, s.generate_key_pair(mech, pub, priv));
  const auto [hpub, hpriv] = pair;
  auto extractable = s.get_bool(hpriv, CKA_EXTRACTABLE);
  if (!extractable || *extractable) {
    (void)s.destroy_object(hpriv);
    (void)s.destroy_object(hpub);
    return make_error(ErrorCode::kPkcs11, "the token did not make the runtime key non-extractable");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes n, s.get_bytes(hpub, CKA_MODULUS));
  KEYPORT_ASSIGN_OR_RETURN(Bytes e, s.get_bytes(hpub, CKA_PUBLIC_EXPONENT));
  return byok::PublicKey::from_rsa_components(n, e);
}

Result<std::string> check_runtime_kid(const skr::VerifiedRelease& r, const byok::PublicKey& runtime,
                                      const std::optional<std::string>& runtime_kid) {
  const std::string kid = runtime_kid ? *runtime_kid : skr::jwk_thumbprint(runtime);
  if (r.key_hsm().kid != kid) {
    return make_error(ErrorCode::kInvalidArgument, "REL-KID",
                      "the release is wrapped to the runtime key \"" + r.key_hsm().kid +
                          "\", but this key's kid is \"" + kid + "\"" +
                          (runtime_kid ? std::string()
                                       : " (its RFC 7638 thumbprint; pass --runtime-kid when "
                                         "the attestation token named it otherwise)"));
  }
  return kid;
}

Result<StoredRelease> unwrap_release_in_token(const p11::Session& s, const p11::TokenInfo& token,
                                              const skr::VerifiedRelease& r,
                                              const TokenUnwrapRequest& request) {
  KEYPORT_ASSIGN_OR_RETURN(p11::KeyObject rt, p11::find_key(s, request.runtime_key));
  if (rt.spec.family != KeyFamily::kRsa) {
    return make_error(ErrorCode::kInvalidArgument, "--key must name an RSA runtime key");
  }
  KEYPORT_ASSIGN_OR_RETURN(p11::PublicComponents parts, p11::read_public_components(s, rt));
  KEYPORT_ASSIGN_OR_RETURN(auto runtime_pub,
                           byok::PublicKey::from_rsa_components(parts.modulus, parts.exponent));
  StoredRelease out;
  KEYPORT_ASSIGN_OR_RETURN(out.runtime_kid, check_runtime_kid(r, runtime_pub, request.runtime_kid));
  out.label = request.label ? *request.label
                            : "released-" + r.key_kid().substr(r.key_kid().find_last_of('/') + 1);
  auto clash = s.find_objects(p11::Template().label(out.label));
  if (clash && !clash->empty()) {
    return make_error(ErrorCode::kAlreadyExists,
                      "the token already has an object labelled \"" + out.label + "\" (--label)");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto caps, p11::probe_wrap_capabilities(s, token));
  out.id = random_bytes(16);
  KEYPORT_ASSIGN_OR_RETURN(
      CK_OBJECT_HANDLE h,
      p11::unwrap_rsa_aes(s, caps, p11::WrapStrategy::kAuto, r.key_hsm().enc, rt.handle,
                          (runtime_pub.bits() + 7) / 8, r.key_hsm().ciphertext,
                          released_template(r, out.label, out.id)));
  p11::ScopedObject stored(s, h);  // destroyed unless every check below passes
  // Check what landed in the token against the response's public key, without reading secrets.
  if (r.family() == KeyFamily::kRsa && r.public_key()) {
    KEYPORT_ASSIGN_OR_RETURN(Bytes n, s.get_bytes(h, CKA_MODULUS));
    KEYPORT_ASSIGN_OR_RETURN(Bytes e, s.get_bytes(h, CKA_PUBLIC_EXPONENT));
    KEYPORT_ASSIGN_OR_RETURN(auto stored_pub, byok::PublicKey::from_rsa_components(n, e));
    if (!(stored_pub == *r.public_key())) {
      return make_error(ErrorCode::kIntegrityFailure, "REL-MISMATCH",
                        "the unwrapped RSA key does not match the response's public key");
    }
    out.public_key_sha256 = stored_pub.sha256_fingerprint();
  } else if (r.family() == KeyFamily::kEc && r.public_key()) {
    KEYPORT_ASSIGN_OR_RETURN(Bytes params, s.get_bytes(h, CKA_EC_PARAMS));
    KEYPORT_ASSIGN_OR_RETURN(Curve c, curve_from_oid_der(params));
    if (c != r.public_key()->curve()) {
      return make_error(ErrorCode::kIntegrityFailure, "REL-MISMATCH",
                        "the unwrapped EC key is on another curve than the response's key");
    }
    out.public_key_sha256 = r.public_key()->sha256_fingerprint();
  } else {
    auto kcv = p11::aes_check_value(s, h);
    if (kcv && kcv->size() >= 3) {
      out.kcv = hex_encode(std::span<const std::uint8_t>(kcv->data(), 3));
    }
  }
  KEYPORT_ASSIGN_OR_RETURN(out.spec, p11::key_spec_of(s, h));
  (void)stored.release();  // keep it
  return out;
}

}  // namespace keyport::enclave
