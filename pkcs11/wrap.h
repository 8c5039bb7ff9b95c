// SPDX-License-Identifier: Apache-2.0
// The BYOK transfer wrap done inside the token, so that the target key never leaves it in clear:
//
//   ciphertext = RSA-OAEP(KEK, k) || AES-KWP(k, target)      k: a fresh AES-256 session key
//
// Two strategies, chosen by probing the token:
// - native:    one C_WrapKey with CKM_RSA_AES_KEY_WRAP (PKCS#11 3.0) when the module lists it;
// - composite: an ephemeral AES-256 session key (sensitive, extractable, wrap-only, destroyed on
//              every path), C_WrapKey of the target with RFC 5649 (CKM_AES_KEY_WRAP_PAD 0x210A or
//              CKM_AES_KEY_WRAP_KWP 0x210B), then C_WrapKey of the AES key with CKM_RSA_PKCS_OAEP
//              under the KEK public key imported as a session object.
// The OAEP hash follows the `enc`; when the module refuses that hash keyport fails and says so,
// it never falls back to another hash.
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "pkcs11/session.h"
#include "pkcs11/template.h"
#include "pkcs11/token.h"

namespace keyport::p11 {

enum class WrapStrategy { kAuto, kNative, kComposite };
std::string_view to_string(WrapStrategy s);
Result<WrapStrategy> parse_wrap_strategy(std::string_view name);

// What a token can do for BYOK, from its mechanism list and (optionally) live probes.
struct WrapCapabilities {
  std::string module;                    // module description, for messages
  std::string token;                     // "<manufacturer> <model> firmware x.y"
  bool native_wrap = false;              // CKM_RSA_AES_KEY_WRAP with CKF_WRAP
  bool native_unwrap = false;            // ... with CKF_UNWRAP
  std::optional<CK_MECHANISM_TYPE> kwp;  // RFC 5649 mechanism usable for wrap and unwrap
  bool aes_keygen = false;               // CKM_AES_KEY_GEN
  bool oaep_wrap = false;                // CKM_RSA_PKCS_OAEP with CKF_WRAP
  bool oaep_unwrap = false;
  // OAEP hash acceptance by index of OaepHash; nullopt when not probed.
  std::array<std::optional<bool>, 3> oaep_hash{};

  bool composite_possible() const { return kwp.has_value() && aes_keygen && oaep_wrap; }
  bool composite_unwrap_possible() const { return kwp.has_value() && oaep_unwrap; }
  // True unless a probe showed the module refuses this hash.
  bool hash_ok(OaepHash h) const { return oaep_hash[static_cast<int>(h)].value_or(true); }
};

// Reads the mechanism list; with probe_hashes, also wraps a throwaway session AES key under a
// throwaway session RSA public key with each OAEP hash to learn which the module accepts (SoftHSM
// 2.6.1 accepts only SHA-1). Creates and destroys session objects only.
Result<WrapCapabilities> probe_wrap_capabilities(const Session& session, const TokenInfo& token,
                                                 bool probe_hashes = true);

// Picks the strategy for `alg`, or fails (kUnsupported) naming the module and the limitation.
Result<WrapStrategy> choose_strategy(const WrapCapabilities& caps, WrapStrategy requested,
                                     WrapAlg alg);

// Imports an RSA public key (big-endian n and e) as a session object usable for wrapping and
// encryption. Destroyed when the returned ScopedObject goes.
Result<ScopedObject> import_rsa_public_key(const Session& session,
                                           std::span<const std::uint8_t> modulus,
                                           std::span<const std::uint8_t> exponent);

// Wraps `target` for transfer. kek_public is an RSA public key object; modulus_bytes its size.
Result<Bytes> wrap_rsa_aes(const Session& session, const WrapCapabilities& caps,
                           WrapStrategy strategy, WrapAlg alg, CK_OBJECT_HANDLE kek_public,
                           std::size_t modulus_bytes, CK_OBJECT_HANDLE target);

// The receiving side: unwraps a transfer blob inside the token under the RSA private key
// kek_private and creates the target from `target_template` (it must name CKA_CLASS and
// CKA_KEY_TYPE and must not name CKA_VALUE_LEN). Every failure that can depend on the ciphertext
// is the same integrity_error(); the composite path runs the AES unwrap step even when the RSA
// step failed, so both failures cost the same work.
Result<CK_OBJECT_HANDLE> unwrap_rsa_aes(const Session& session, const WrapCapabilities& caps,
                                        WrapStrategy strategy, WrapAlg alg,
                                        CK_OBJECT_HANDLE kek_private, std::size_t modulus_bytes,
                                        std::span<const std::uint8_t> ciphertext,
                                        const Template& target_template);

}  // namespace keyport::p11
