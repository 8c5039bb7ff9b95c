// SPDX-License-Identifier: Apache-2.0
// The enclave side of Secure Key Release with its keys in a PKCS#11 token: a runtime key pair
// whose private half never leaves the token, and a verified release response (skr/enclave.h)
// unwrapped into the token as a non-extractable key. The software side (a runtime key in a file)
// is skr::unwrap_released_key.
#pragma once

#include <optional>
#include <string>

#include "byok/public_key.h"
#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "skr/enclave.h"

namespace keyport::enclave {

// An RSA-2048 key pair in the token under `label` (and a random CKA_ID): the private half
// sensitive, NOT extractable, for unwrapping and decrypting only; the public half for wrapping
// and encrypting. kAlreadyExists when an object has that label; kPkcs11 (both halves destroyed)
// when the token made the private half extractable anyway. Returns the public key.
Result<byok::PublicKey> generate_runtime_key(const p11::Session& session, const std::string& label);

// The kid the release must be wrapped to: `runtime_kid` when given (the attestation token named
// the key so), else the runtime key's RFC 7638 thumbprint. kInvalidArgument (detail REL-KID) when
// the release names another.
Result<std::string> check_runtime_kid(const skr::VerifiedRelease& release,
                                      const byok::PublicKey& runtime,
                                      const std::optional<std::string>& runtime_kid);

struct TokenUnwrapRequest {
  std::string runtime_key;  // the runtime private key: PKCS#11 URI or label
  std::optional<std::string> runtime_kid;
  // Label of the released key in the token; default "released-<version of the key's kid>".
  std::optional<std::string> label;
};

// What was stored, checked against the response without reading secret attributes.
struct StoredRelease {
  std::string label;
  Bytes id;  // CKA_ID, 16 random bytes
  KeySpec spec;
  std::string runtime_kid;
  std::optional<std::string> public_key_sha256;  // RSA and EC keys with a public key
  std::optional<std::string> kcv;                // AES: hex of the first 3 bytes of the check value
};

// Unwraps the release's key_hsm with the token's runtime key into a token object (sensitive, not
// extractable; its usage from the key type). kAlreadyExists when the label is taken,
// kInvalidArgument when the runtime key is not RSA or its kid is not the one the release names,
// kIntegrityFailure (detail REL-MISMATCH) when the stored key does not match the response's
// public key (it is destroyed again); unwrap failures as pkcs11/wrap.h reports them.
Result<StoredRelease> unwrap_release_in_token(const p11::Session& session,
                                              const p11::TokenInfo& token,
                                              const skr::VerifiedRelease& release,
                                              const TokenUnwrapRequest& request);

}  // namespace keyport::enclave
