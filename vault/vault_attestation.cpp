// SPDX-License-Identifier: Apache-2.0
// GetKeyAttestation: the SIMULATED attestation of a key version's token object
// (vault/attestation.h), from what the token answers at the time of the call.
#include <mutex>
#include <shared_mutex>

#include "core/encoding.h"
#include "vault/attestation.h"
#include "vault/vault_impl.h"

namespace keyport::vault {

namespace {

Bytes without_leading_zeros(Bytes b) {
  std::size_t i = 0;
  while (i + 1 < b.size() && b[i] == 0) {
    ++i;
  }
  b.erase(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(i));
  return b;
}

Result<Bytes> jwk_bytes(const Json& jwk, const char* member) {
  auto it = jwk.find(member);
  if (it == jwk.end() || !it->is_string()) {
    return make_error(ErrorCode::kInternal, std::string("the stored public key has no ") + member);
  }
  auto b = base64url_decode(it->get<std::string>());
  if (!b) {
    return make_error(ErrorCode::kInternal,
                      std::string("the stored ") + member + " is not base64url");
  }
  return std::move(*b);
}

}  // namespace

Result<Json> Vault::Impl::key_attestation(Op& op, std::string_view name, std::string_view version) {
  if (config.flavor != Flavor::kManagedHsm) {
    return bad_parameter(
        "GetKeyAttestation is a Managed HSM operation; this vault is a Key Vault.");
  }
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
  AttestationFacts f;
  f.kid = kid_of(config.base_url, r.name, r.version);
  f.kty = r.kty;
  f.spec = r.spec;
  f.origin = r.origin;
  f.token_label = token.info.label;
  f.token_serial = token.info.serial;
  f.token_model = token.info.model;
  f.token_manufacturer = token.info.manufacturer;
  f.issued_at = now();
  KEYPORT_TRY(
      with_key_object(r, r.spec.family, [&](const p11::Session& s, CK_OBJECT_HANDLE h) -> Status {
        KEYPORT_ASSIGN_OR_RETURN(
            auto attrs, s.get_attributes(h, {CKA_LOCAL, CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE,
                                             CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE}));
        auto flag = [&](std::size_t i) {
          return attrs[i] && attrs[i]->size() == 1 && (*attrs[i])[0] != CK_FALSE;
        };
        f.local = flag(0);
        f.sensitive = flag(1);
        f.always_sensitive = flag(2);
        f.extractable = flag(3);
        f.never_extractable = flag(4);
        // The stored public key must be this object's: checked now, in the token.
        if (r.spec.family == KeyFamily::kRsa) {
          KEYPORT_ASSIGN_OR_RETURN(Bytes modulus, s.get_bytes(h, CKA_MODULUS));
          KEYPORT_ASSIGN_OR_RETURN(Bytes n, jwk_bytes(r.public_jwk, "n"));
          if (without_leading_zeros(modulus) != without_leading_zeros(n)) {
            return make_error(ErrorCode::kInternal,
                              "the token object's modulus is not the stored public key's");
          }
          f.public_key_checked_by = "CKA_MODULUS";
        } else if (r.spec.family == KeyFamily::kEc) {
          KEYPORT_ASSIGN_OR_RETURN(Bytes point, ec_public_point_by_signing(s, h, *r.spec.curve));
          KEYPORT_ASSIGN_OR_RETURN(Bytes x, jwk_bytes(r.public_jwk, "x"));
          KEYPORT_ASSIGN_OR_RETURN(Bytes y, jwk_bytes(r.public_jwk, "y"));
          Bytes stored{0x04};
          stored.insert(stored.end(), x.begin(), x.end());
          stored.insert(stored.end(), y.begin(), y.end());
          if (point != stored) {
            return make_error(ErrorCode::kInternal,
                              "the point the token object signs for is not the stored public key");
          }
          f.public_key_checked_by = "ECDSA signatures";
        }
        return {};
      }));
  if (r.spec.family != KeyFamily::kAes) {
    KEYPORT_ASSIGN_OR_RETURN(Bytes spki, detail::spki_of(r));
    f.spki = std::move(spki);
  }
  std::shared_ptr<const SigningIdentity> identity;
  {
    std::lock_guard<std::mutex> lock(attestation_mutex);
    const std::int64_t wall = clock();
    if (!attestation_identity || wall - attestation_identity_loaded > 86400) {
      KEYPORT_ASSIGN_OR_RETURN(
          SigningIdentity id,
          ensure_signing_identity(
              dir, host,
              {kAttestationSigningCert, kAttestationSigningKey, kAttestationOrganization}));
      attestation_identity = std::make_shared<const SigningIdentity>(std::move(id));
      attestation_identity_loaded = wall;
    }
    identity = attestation_identity;
  }
  KEYPORT_ASSIGN_OR_RETURN(Json attestation, make_key_attestation(f, *identity));
  Json bundle = key_bundle(config.base_url, r, recovery());
  bundle["attributes"]["attestation"] = std::move(attestation);
  op.note = "SIMULATED attestation (" + f.origin + ")";
  return bundle;
}

Result<Json> Vault::get_key_attestation(const CallContext& ctx, std::string_view name,
                                        std::string_view version) {
  return m_impl->run(ctx, "GetKeyAttestation",
                     [&](Op& op) { return m_impl->key_attestation(op, name, version); });
}

}  // namespace keyport::vault
