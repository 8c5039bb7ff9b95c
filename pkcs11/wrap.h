// SPDX-License-Identifier: Apache-2.0
// The BYOK transfer wrap done inside the token, so that the target key never leaves it in clear:
//
//   ciphertext = RSA-OAEP(KEK, k) || AES-KWP(k, target)      k: a fresh AES-256 session key
//
// Two strategies, chosen from what the token's self-tests proved (pkcs11/selftest.h):
// - native:    one C_WrapKey with CKM_RSA_AES_KEY_WRAP (PKCS#11 3.0) when the module lists it and
//              its output proved to be RSA-OAEP || RFC 5649;
// - composite: an ephemeral AES-256 session key (sensitive, extractable, wrap-only, destroyed on
//              every path), C_WrapKey of the target with the mechanism proven to be RFC 5649
//              (CKM_AES_KEY_WRAP_KWP, a vendor code, or CKM_AES_KEY_WRAP_PAD where that is
//              RFC 5649), then C_WrapKey of the AES key with CKM_RSA_PKCS_OAEP under the KEK public
//              key imported as a session object.
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
#include "pkcs11/selftest.h"
#include "pkcs11/session.h"
#include "pkcs11/template.h"
#include "pkcs11/token.h"

namespace keyport::p11 {

enum class WrapStrategy { kAuto, kNative, kComposite };
std::string_view to_string(WrapStrategy s);
Result<WrapStrategy> parse_wrap_strategy(std::string_view name);

// What a token can do for BYOK: its mechanism list, and what the self-tests proved
// (pkcs11/selftest.h). Without self-tests (token info --no-probe) only the list is known.
struct WrapCapabilities {
  std::string module;                    // module description, for messages
  std::string token;                     // "<manufacturer> <model> firmware x.y"
  bool native_wrap = false;              // CKM_RSA_AES_KEY_WRAP with CKF_WRAP (listed)
  bool native_unwrap = false;            // ... with CKF_UNWRAP
  std::optional<CK_MECHANISM_TYPE> kwp;  // RFC 5649 mechanism for wrap and unwrap (proven when
                                         // self-tested)
  bool kwp_exact = false;   // proven RFC 5649 for every length (else: multiples of 8 only)
  bool aes_keygen = false;  // CKM_AES_KEY_GEN
  bool oaep_wrap = false;   // CKM_RSA_PKCS_OAEP with CKF_WRAP
  bool oaep_unwrap = false;
  // By index of OaepHash: true when proven, false when refused or wrong, nullopt when not known.
  std::array<std::optional<bool>, 3> oaep_hash{};
  std::array<std::optional<bool>, 3> native_hash{};  // CKM_RSA_AES_KEY_WRAP, likewise
  std::optional<SelfTestReport> self_test;           // absent: mechanism list only

  bool composite_possible() const { return kwp.has_value() && aes_keygen && oaep_wrap; }
  bool composite_unwrap_possible() const { return kwp.has_value() && oaep_unwrap; }
  // True unless the module refused this hash or got it wrong.
  bool hash_ok(OaepHash h) const { return oaep_hash[static_cast<int>(h)].value_or(true); }
  // Whether the native mechanism may be used with this hash: listed, and proven when self-tested.
  bool native_ok(OaepHash h) const {
    return native_wrap && (!self_test || native_hash[static_cast<int>(h)].value_or(false));
  }
};

// Reads the mechanism list; with self_test, also runs the mechanism self-tests (once per module,
// slot and token in this process; session objects only) and takes from them which RFC 5649
// mechanism, which OAEP hashes and whether CKM_RSA_AES_KEY_WRAP may be used: only what a test
// proved. Tests that need private session keys run fully only on a logged-in session.
Result<WrapCapabilities> probe_wrap_capabilities(const Session& session, const TokenInfo& token,
                                                 bool self_test = true);

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
