// SPDX-License-Identifier: Apache-2.0
// ImportKey: a BYOK transfer blob unwrapped inside the vault token with one of its KEKs, or a
// plain private JWK created as a token object and proven against its public half.
#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "byok/byok_file.h"
#include "byok/kid.h"
#include "byok/public_key.h"
#include "core/random.h"
#include "vault/vault_impl.h"

namespace keyport::vault {

using detail::family_of_kty;
using detail::family_title;
using detail::label_of;
using detail::lookup_error;
using detail::spki_of;
using detail::split_kty;

Result<Json> Vault::Impl::import_key(Op& op, std::string_view name, const Json& params) {
  op.name = std::string(name);
  KEYPORT_TRY(check_key_name(name));
  if (!params.is_object()) {
    return bad_parameter("The request body must be a JSON object (KeyImportParameters).");
  }
  const Json* key = member(params, "key");
  if (key == nullptr || !key->is_object()) {
    return bad_parameter("The request needs a JSON Web Key in member \"key\".");
  }
  bool hsm_flag = false;
  if (const Json* h = member_ci(params, "hsm")) {
    if (!h->is_boolean()) {
      return bad_parameter("Hsm must be a boolean.");
    }
    hsm_flag = h->get<bool>();
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string kty_in, string_member(*key, "kty"));
  auto kty = split_kty(kty_in);
  if (!kty) {
    return bad_parameter("Invalid kty \"" + kty_in +
                         "\" (RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM).");
  }
  const KeyFamily family = family_of_kty(kty->first);
  if (family == KeyFamily::kAes && config.flavor == Flavor::kKeyVault) {
    KeySpec aes{KeyFamily::kAes, 256, std::nullopt};
    KEYPORT_TRY(check_profile(aes));
  }
  KEYPORT_ASSIGN_OR_RETURN(CommonIn common, parse_common(params, *key, family));
  if (std::find(common.key_ops.begin(), common.key_ops.end(), "import") != common.key_ops.end()) {
    return bad_parameter(
        "An imported key cannot be a key exchange key: create the KEK in the vault "
        "(key_ops [\"import\"]).");
  }
  if (member(*key, "key_hsm") != nullptr) {
    if (!kty->second) {
      return bad_parameter("A key with key_hsm (BYOK) must have kty RSA-HSM, EC-HSM or oct-HSM.");
    }
    return import_byok(op, name, *key, family, std::move(common));
  }
  const bool hsm = hsm_flag || kty->second || config.flavor == Flavor::kManagedHsm;
  return import_plain(op, name, *key, family, kty->first + (hsm ? "-HSM" : ""), std::move(common));
}

Result<Json> Vault::Impl::import_byok(Op& op, std::string_view name, const Json& key,
                                      KeyFamily family, CommonIn common) {
  std::optional<Curve> declared_curve;
  if (family == KeyFamily::kEc) {
    const Json* crv = member(key, "crv");
    if (crv == nullptr || !crv->is_string()) {
      return bad_parameter("An EC-HSM key needs crv (P-256, P-384, P-521, P-256K).");
    }
    auto c = curve_from_jwk_name(crv->get_ref<const std::string&>());
    if (!c) {
      return bad_parameter("Invalid crv \"" + crv->get<std::string>() + "\".");
    }
    declared_curve = *c;
  }
  const Json* key_hsm = member(key, "key_hsm");
  if (!key_hsm->is_string()) {
    return bad_parameter("key_hsm must be a base64url string (the whole .byok file).");
  }
  auto blob = decode_base64_any(key_hsm->get_ref<const std::string&>());
  if (!blob) {
    return bad_parameter("key_hsm is neither base64url nor base64.");
  }
  auto file = byok::ByokFile::parse(as_chars(*blob));
  if (!file) {
    return bad_parameter("key_hsm does not hold a valid BYOK transfer blob: " +
                         file.error().message());
  }
  KEYPORT_ASSIGN_OR_RETURN(auto kid, byok::parse_kid(file->kid, true));
  if (kid.host != host) {
    return bad_parameter("The transfer blob is wrapped to KEK " + file->kid +
                         ", a key of another vault (host " + kid.host + "); this vault is " + host +
                         ". Download this vault's KEK and export the key again.");
  }
  const std::string kek_version = ascii_lower(kid.version);
  auto kek_key = store->find_key(kid.key_name);
  auto kek = store->find_version(kid.key_name, kek_version);
  if (!kek_key || !kek) {
    return tl::unexpected(!kek_key ? kek_key.error() : kek.error());
  }
  if (!*kek_key || (*kek_key)->deleted() || !*kek) {
    return bad_parameter("The KEK " + file->kid +
                         " named by the transfer blob does not exist in this vault (or is "
                         "deleted).");
  }
  if (!(*kek)->enabled) {
    return bad_parameter("The KEK " + file->kid + " is disabled.");
  }
  if (!(*kek)->is_kek() || (*kek)->spec.family != KeyFamily::kRsa) {
    return bad_parameter("The key " + file->kid +
                         " is not a key exchange key: its key_ops do not include \"import\".");
  }
  const KeyVersionRecord kek_rec = std::move(**kek);
  const std::string enc(wrap_alg_name(file->enc));
  if (!caps.native_unwrap) {
    if (!caps.composite_unwrap_possible()) {
      return bad_parameter("This vault's HSM (" + caps.module + ", " + caps.token +
                           ") cannot unwrap BYOK transfer blobs (it lacks RSA-OAEP unwrap or "
                           "AES key wrap with padding).");
    }
    if (!caps.hash_ok(wrap_alg_hash(file->enc))) {
      return bad_parameter("enc " + enc + " needs RSA-OAEP with " +
                           std::string(to_string(wrap_alg_hash(file->enc))) +
                           ", which this vault's HSM (" + caps.module + ", " + caps.token +
                           ") cannot do (it offers no CKM_RSA_AES_KEY_WRAP and accepts only "
                           "OAEP-SHA1); export with enc CKM_RSA_AES_KEY_WRAP.");
    }
  }
  const std::size_t modulus_bytes = kek_rec.spec.bits / 8;
  KeySpec spec;
  spec.family = family;
  spec.curve = declared_curve;
  if (family == KeyFamily::kAes) {
    // The KWP part is 8 + the key's length for an AES key (a multiple of 8: no padding).
    const std::size_t ct = file->ciphertext.size();
    const std::size_t key_bytes = ct > modulus_bytes + 8 ? ct - modulus_bytes - 8 : 0;
    if (key_bytes != 16 && key_bytes != 24 && key_bytes != 32) {
      return bad_parameter(
          "The transfer blob does not hold an AES key of 128, 192 or 256 bits "
          "(declared kty oct-HSM).");
    }
    spec.bits = static_cast<unsigned>(key_bytes * 8);
    if (const Json* ks = member(key, "key_size")) {
      if (!ks->is_number_integer() || ks->get<std::int64_t>() != spec.bits) {
        return bad_parameter("key_size does not match the AES key in the transfer blob.");
      }
    }
    KEYPORT_TRY(check_profile(spec));
  } else if (family == KeyFamily::kEc) {
    spec.bits = curve_bits(*declared_curve);
    KEYPORT_TRY(check_profile(spec));
  }
  KEYPORT_ASSIGN_OR_RETURN(const std::string canonical, canonical_live_name(name));

  const std::string version = new_version_id();
  Bytes id = random_bytes(16);
  const std::string label = label_of(canonical, version);
  // Exclusive: SoftHSM 2.6's file object store fails (CKR_GENERAL_ERROR) when a token object is
  // created while other threads use token objects.
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  auto kek_handle = handles.find(*lease, kek_rec.cka_id, KeyFamily::kRsa);
  if (!kek_handle) {
    return tl::unexpected(lookup_error(kek_handle.error(), kek_rec));
  }
  Pending pending(*this, *lease, id);
  KEYPORT_TRY(pending.begin(label));
  KeyObjectSpec ks{spec, false, kTokenExtractable};
  p11::Template t = key_object_template(ks, label, id, /*with_size=*/false);
  auto h = p11::unwrap_rsa_aes(*lease, caps, p11::WrapStrategy::kAuto, file->enc, *kek_handle,
                               modulus_bytes, file->ciphertext, t);
  if (!h) {
    const Error& e = h.error();
    if (e.code() == ErrorCode::kIntegrityFailure || e.code() == ErrorCode::kUnsupported) {
      return bad_parameter("The transfer blob cannot be imported as " + family_title(family) +
                           "-HSM with KEK " + file->kid + ": " + e.message());
    }
    return tl::unexpected(e);
  }
  // From here the object exists: `pending` destroys it on every failure path.
  Json public_jwk = Json::object();
  if (family == KeyFamily::kRsa) {
    KEYPORT_ASSIGN_OR_RETURN(Bytes n, lease->get_bytes(*h, CKA_MODULUS));
    KEYPORT_ASSIGN_OR_RETURN(Bytes e, lease->get_bytes(*h, CKA_PUBLIC_EXPONENT));
    auto jwk = rsa_public_jwk(n, e);
    if (!jwk) {
      return bad_parameter("The imported RSA key is not acceptable: " + jwk.error().message());
    }
    KEYPORT_ASSIGN_OR_RETURN(auto pub, byok::PublicKey::from_rsa_components(n, e));
    spec.bits = pub.bits();
    KEYPORT_TRY(check_profile(spec));
    public_jwk = std::move(*jwk);
  } else if (family == KeyFamily::kEc) {
    KEYPORT_ASSIGN_OR_RETURN(Bytes params, lease->get_bytes(*h, CKA_EC_PARAMS));
    auto curve = curve_from_oid_der(params);
    if (!curve || *curve != *declared_curve) {
      return bad_parameter(
          "The transfer blob holds an EC key on " +
          (curve ? std::string(curve_jwk_name(*curve)) : std::string("an unsupported curve")) +
          ", not the declared crv " + std::string(curve_jwk_name(*declared_curve)) + ".");
    }
    KEYPORT_ASSIGN_OR_RETURN(Bytes point, ec_public_point_by_signing(*lease, *h, *declared_curve));
    KEYPORT_ASSIGN_OR_RETURN(public_jwk, ec_public_jwk(*declared_curve, point));
  } else {
    KEYPORT_ASSIGN_OR_RETURN(CK_ULONG type, lease->get_ulong(*h, CKA_KEY_TYPE));
    if (type != CKK_AES) {
      return bad_parameter("The transfer blob does not hold an AES key.");
    }
  }
  KEYPORT_TRY(check_key_object(*lease, *h, kTokenExtractable));
  op.note = "BYOK " + spec.name() + ", enc " + enc + ", KEK " + file->kid;
  return commit(op, pending,
                new_record(canonical, version, std::move(id), family_title(family) + "-HSM", spec,
                           std::move(common), std::move(public_jwk), "byok"));
}

Result<Json> Vault::Impl::import_plain(Op& op, std::string_view name, const Json& key,
                                       KeyFamily family, const std::string& kty, CommonIn common) {
  KeySpec spec;
  spec.family = family;
  p11::Template t;
  Bytes rsa_n, rsa_e, ec_point;
  if (family == KeyFamily::kRsa) {
    KEYPORT_ASSIGN_OR_RETURN(rsa_n, base64url_member(key, "n"));
    KEYPORT_ASSIGN_OR_RETURN(rsa_e, base64url_member(key, "e"));
    auto pub = byok::PublicKey::from_rsa_components(rsa_n, rsa_e);
    if (!pub) {
      return bad_parameter("The RSA key's n and e are not acceptable: " + pub.error().message());
    }
    spec.bits = pub->bits();
    KEYPORT_TRY(check_profile(spec));
    rsa_n = pub->rsa_modulus();
    rsa_e = pub->rsa_exponent();
    t = key_object_template({spec, false, kTokenExtractable}, "", {}, false);
    t.modulus(rsa_n).public_exponent(rsa_e);
    const std::pair<const char*, CK_ATTRIBUTE_TYPE> parts[] = {
        {"d", CKA_PRIVATE_EXPONENT}, {"p", CKA_PRIME_1},     {"q", CKA_PRIME_2},
        {"dp", CKA_EXPONENT_1},      {"dq", CKA_EXPONENT_2}, {"qi", CKA_COEFFICIENT}};
    std::vector<SecretBytes> values;
    for (const auto& part : parts) {
      KEYPORT_ASSIGN_OR_RETURN(SecretBytes v, base64url_secret_member(key, part.first));
      values.push_back(std::move(v));
    }
    KEYPORT_ASSIGN_OR_RETURN(bool consistent,
                             rsa_private_consistent(rsa_n, rsa_e, values[0], values[1], values[2],
                                                    values[3], values[4], values[5]));
    if (!consistent) {
      return bad_parameter(
          "The RSA private key parts (n, e, d, p, q, dp, dq, qi) are not consistent.");
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
      t.set_secret(parts[i].second, std::move(values[i]));
    }
  } else if (family == KeyFamily::kEc) {
    KEYPORT_ASSIGN_OR_RETURN(std::string crv, string_member(key, "crv"));
    auto curve = curve_from_jwk_name(crv);
    if (!curve) {
      return bad_parameter("Invalid crv \"" + crv + "\" (P-256, P-384, P-521, P-256K).");
    }
    spec.curve = *curve;
    spec.bits = curve_bits(*curve);
    KEYPORT_TRY(check_profile(spec));
    Json pub_jwk = Json{{"kty", "EC"}, {"crv", std::string(curve_jwk_name(*curve))}};
    for (const char* m : {"x", "y"}) {
      const Json* v = member(key, m);
      if (v == nullptr) {
        return bad_parameter(std::string("An EC key needs member \"") + m + "\".");
      }
      pub_jwk[m] = *v;
    }
    auto pub = byok::PublicKey::from_jwk(pub_jwk);
    if (!pub) {
      return bad_parameter("The EC key's x and y are not acceptable: " + pub.error().message());
    }
    ec_point = pub->ec_point();
    KEYPORT_ASSIGN_OR_RETURN(SecretBytes d, base64url_secret_member(key, "d"));
    if (d.size() != curve_field_bytes(*curve)) {
      return bad_parameter("Member \"d\" must be exactly " +
                           std::to_string(curve_field_bytes(*curve)) + " bytes for " + crv + ".");
    }
    t = key_object_template({spec, false, kTokenExtractable}, "", {}, false);
    t.ec_params(curve_oid_der(*curve)).set_secret(CKA_VALUE, std::move(d));
  } else {
    KEYPORT_ASSIGN_OR_RETURN(SecretBytes k, base64url_secret_member(key, "k"));
    if (k.size() != 16 && k.size() != 24 && k.size() != 32) {
      return bad_parameter("Member \"k\" must be a 128, 192 or 256-bit AES key.");
    }
    spec.bits = static_cast<unsigned>(k.size() * 8);
    KEYPORT_TRY(check_profile(spec));
    t = key_object_template({spec, false, kTokenExtractable}, "", {}, false);
    t.set_secret(CKA_VALUE, std::move(k));
  }
  KEYPORT_ASSIGN_OR_RETURN(const std::string canonical, canonical_live_name(name));

  const std::string version = new_version_id();
  Bytes id = random_bytes(16);
  const std::string label = label_of(canonical, version);
  t.label(label).id(id);
  // Exclusive: SoftHSM 2.6's file object store fails (CKR_GENERAL_ERROR) when a token object is
  // created while other threads use token objects.
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
  Pending pending(*this, *lease, id);
  KEYPORT_TRY(pending.begin(label));
  auto h = lease->create_object(t);
  if (!h) {
    if (h.error().code() == ErrorCode::kPkcs11 || h.error().code() == ErrorCode::kUnsupported) {
      return bad_parameter("The HSM refused the key material (" + h.error().describe() + ").");
    }
    return tl::unexpected(h.error());
  }
  // Prove the private part matches the public part, inside the token.
  Json public_jwk = Json::object();
  if (family == KeyFamily::kRsa) {
    Bytes digest = random_bytes(32);
    CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
    auto sig = token_sign(*lease, *h, mech, digest_info(HashAlg::kSha256, digest));
    KEYPORT_ASSIGN_OR_RETURN(public_jwk, rsa_public_jwk(rsa_n, rsa_e));
    KeyVersionRecord probe;
    probe.spec = spec;
    probe.public_jwk = public_jwk;
    KEYPORT_ASSIGN_OR_RETURN(Bytes spki, spki_of(probe));
    bool ok = false;
    if (sig) {
      KEYPORT_ASSIGN_OR_RETURN(ok, verify_digest(spki, *find_sign_alg("RS256"), digest, *sig));
    }
    if (!ok) {
      return bad_parameter("The RSA private key does not match its public key (n, e).");
    }
  } else if (family == KeyFamily::kEc) {
    auto point = ec_public_point_by_signing(*lease, *h, *spec.curve);
    if (!point || *point != ec_point) {
      return bad_parameter("The EC private key d does not match its public key (x, y).");
    }
    KEYPORT_ASSIGN_OR_RETURN(public_jwk, ec_public_jwk(*spec.curve, ec_point));
  }
  KEYPORT_TRY(check_key_object(*lease, *h, kTokenExtractable));
  op.note = "JWK import " + spec.name();
  return commit(op, pending,
                new_record(canonical, version, std::move(id), kty, spec, std::move(common),
                           std::move(public_jwk), "import"));
}

// ---------------------------------------------------------------------------------------------

Result<Json> Vault::import_key(const CallContext& ctx, std::string_view name, const Json& params) {
  return m_impl->run(ctx, "ImportKey",
                     [&](Op& op) { return m_impl->import_key(op, name, params); });
}

}  // namespace keyport::vault
