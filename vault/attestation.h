// SPDX-License-Identifier: Apache-2.0
// SIMULATED key attestation: GetKeyAttestation's `attributes.attestation` and its verifier.
//
// Azure Managed HSM answers GetKeyAttestation with blobs its HSMs (Marvell LiquidSecurity) sign
// and a certificate chain to the HSM vendor. keyport has no such hardware: its statements are
// JSON, signed (compact JWS, RS256) by an attestation key whose certificate the vault CA issues
// (DIR/tls/attestation-signing.pem; vault/signing.h). They say what the vault's own token reports
// about the key's object at the time of the call, and nothing proves that token is hardware.
// Every statement carries "simulated": true, as `keyport attest` tokens do.
//
// attributes.attestation:
//   certificatePemFile     base64url of PEM: the attestation certificate, then the vault CA;
//   privateKeyAttestation  base64url of the JWS about the private (or secret) key object: kid,
//                          kty, size or curve, origin, the token (label, serial, model), and
//                          CKA_LOCAL, CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE, CKA_EXTRACTABLE,
//                          CKA_NEVER_EXTRACTABLE as the token answered;
//   publicKeyAttestation   (RSA and EC) base64url of the JWS binding the public key (SHA-256 of
//                          its SPKI) to that object, and how the vault checked it: the object's
//                          CKA_MODULUS (RSA) or the point recovered from two ECDSA signatures made
//                          with the object (EC);
//   version                kAttestationVersion.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/algorithms.h"
#include "core/error.h"
#include "core/json.h"
#include "vault/signing.h"

namespace keyport::vault {

inline constexpr const char* kAttestationSigningCert = "attestation-signing.pem";
inline constexpr const char* kAttestationSigningKey = "attestation-signing-key.pem";
inline constexpr const char* kAttestationVersion = "keyport-simulated-1.0";
inline constexpr const char* kAttestationOrganization =
    "keyport SIMULATED Managed HSM (key attestation)";

// What the vault read from its token about one key version.
struct AttestationFacts {
  std::string kid;
  std::string kty;  // "RSA-HSM", "EC-HSM", "oct-HSM"
  KeySpec spec;
  std::string origin;  // "generated", "byok", "import", "rotated", "restored"
  bool local = false;
  bool sensitive = false;
  bool always_sensitive = false;
  bool extractable = false;
  bool never_extractable = false;
  std::string token_label, token_serial, token_model, token_manufacturer;
  std::optional<Bytes> spki;          // RSA and EC: the public key the vault checked
  std::string public_key_checked_by;  // "CKA_MODULUS" or "ECDSA signatures"
  std::int64_t issued_at = 0;         // the vault's clock
};

// The `attributes.attestation` object of GetKeyAttestation.
Result<Json> make_key_attestation(const AttestationFacts& facts, const SigningIdentity& identity);

struct AttestationReport {
  std::string kid;
  std::string signer;      // the attestation certificate's subject CN
  Json private_statement;  // the verified payloads
  std::optional<Json> public_statement;
};

// Verifies a KeyBundle from GetKeyAttestation against `trust_pem` (the vault CA): the certificate
// chains to it and was issued for key attestation, each statement is a JWS under that
// certificate's key, names the bundle's kid and says simulated, and the public statement's SPKI
// hash is the bundle's public key. kAttestationInvalid naming the failed check otherwise;
// kInvalidArgument when the bundle has no attestation.
Result<AttestationReport> verify_key_attestation(const Json& bundle, std::string_view trust_pem);

}  // namespace keyport::vault
