// SPDX-License-Identifier: Apache-2.0
// The vault's side of the PKCS#11 token (internal to keyport::vault): the templates of key
// objects, key generation, the in-token halves of the crypto operations, and the cache of key
// object handles (checked before each use: see KeyObjectCache). Sessions come from a
// p11::SessionPool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "byok/public_key.h"
#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "core/secret.h"
#include "pkcs11/session.h"
#include "pkcs11/session_pool.h"
#include "pkcs11/template.h"
#include "pkcs11/wrap.h"
#include "vault/algorithms.h"

namespace keyport::vault {

// What a key object may do in the token. The vault enforces key_ops itself; the token flags are
// the ceiling: RSA sign+decrypt, EC sign, AES encrypt+decrypt+wrap+unwrap, and a KEK (RSA with
// key_ops ["import"]) unwrap and nothing else.
struct KeyObjectSpec {
  KeySpec spec;
  bool kek = false;
  bool exportable = false;
};

// Returns the template of the private (RSA, EC) or secret (AES) object of a vault key: token,
// private, sensitive, extractable only when exportable, label and id, usage flags as above.
// For unwrap (with_size false) CKA_VALUE_LEN is left out and CKA_KEY_TYPE is always set.
p11::Template key_object_template(const KeyObjectSpec& k, std::string_view label,
                                  std::span<const std::uint8_t> id, bool with_size = true);

// Generates a key in the token (public half, if any, as a session object read and destroyed).
// Returns the private/secret object's handle and, for RSA and EC, the public JWK members.
struct GeneratedKey {
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  Json public_jwk = Json::object();
};
Result<GeneratedKey> generate_key(const p11::Session& s, const KeyObjectSpec& k,
                                  std::string_view label, std::span<const std::uint8_t> id);

// Returns the handles of every token object with this CKA_ID (any class).
Result<std::vector<CK_OBJECT_HANDLE>> find_by_id(const p11::Session& s,
                                                 std::span<const std::uint8_t> id);
// Returns the one private (RSA/EC) or secret (AES) token object with this CKA_ID, or kNotFound.
Result<CK_OBJECT_HANDLE> find_key_object(const p11::Session& s, std::span<const std::uint8_t> id,
                                         KeyFamily family);

// find_key_object with a memory: the handle found for a CKA_ID is kept, and checked before each
// reuse by reading its CKA_ID and CKA_CLASS in one call (a handle whose object was destroyed, or
// reused by the module for another object, is never used). C_FindObjects costs SoftHSM 2.6 a walk
// over every object of the token, each checked against its file: 6-15 ms per lookup on a token
// of 700 keys, against well under a millisecond for the check. Thread-safe.
class KeyObjectCache {
 public:
  explicit KeyObjectCache(std::size_t capacity = 65536) : m_capacity(capacity) {}
  Result<CK_OBJECT_HANDLE> find(const p11::Session& s, std::span<const std::uint8_t> id,
                                KeyFamily family);
  // Drops the entry of an object about to be destroyed.
  void forget(std::span<const std::uint8_t> id);
  // Drops every entry (the module was re-initialised: old handles mean nothing).
  void clear();
  std::size_t size() const;

 private:
  mutable std::mutex m_mutex;
  std::size_t m_capacity;
  std::unordered_map<std::string, CK_OBJECT_HANDLE> m_handles;  // by the CKA_ID's bytes
};

// Destroys every token object with this CKA_ID; returns how many.
Result<std::size_t> destroy_by_id(const p11::Session& s, std::span<const std::uint8_t> id);

// Checks a new key object is what the vault asked for: CKA_SENSITIVE TRUE and CKA_EXTRACTABLE as
// `exportable`. Returns kPkcs11 naming the attribute otherwise.
Status check_key_object(const p11::Session& s, CK_OBJECT_HANDLE h, bool exportable);

// Public JWK members from key parts: {"n","e"} or {"crv","x","y"} (base64url). Validates them.
Result<Json> rsa_public_jwk(std::span<const std::uint8_t> n, std::span<const std::uint8_t> e);
Result<Json> ec_public_jwk(Curve curve, std::span<const std::uint8_t> point);

// C_SignInit + C_Sign. Returns the signature.
Result<Bytes> token_sign(const p11::Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM& mech,
                         std::span<const std::uint8_t> data);
// C_DecryptInit + C_Decrypt into a buffer of `max_out` bytes. Returns the plaintext, kUnsupported
// when the token refuses the mechanism parameters (so callers can fall back), or the single
// integrity_error() when decryption fails.
Result<SecretBytes> token_decrypt(const p11::Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM& mech,
                                  std::span<const std::uint8_t> ciphertext, std::size_t max_out);
// A key pair a vault receives keys with (the backup-domain join's transfer key, the security
// domain's exchange key): RSA with e = 65537, the public half a session object (encrypt, and wrap
// when `unwrap`), the private half a token object under `label`, sensitive and not extractable,
// for C_UnwrapKey (`unwrap`) or C_Decrypt only. Token private keys under `label` made before are
// destroyed first. The private key is destroyed with the returned object unless released.
struct ReceivingKey {
  p11::ScopedObject private_key;
  byok::PublicKey public_key;
};
Result<ReceivingKey> make_receiving_key(const p11::Session& s, const std::string& label,
                                        unsigned bits, bool unwrap);

// RSA-OAEP (MGF1 with the same hash, no label) decryption of `ciphertext` (`k` bytes, the modulus
// length) with the private key `key`: CKM_RSA_PKCS_OAEP, or, when the token refuses the parameters
// (SoftHSM 2.6.1 with SHA-256), raw RSA in the token and OAEP decoding on the host (what libp11's
// engine does); `raw` (optional) says which ran. integrity_error() for any bad ciphertext.
Result<SecretBytes> token_oaep_decrypt(const p11::Session& s, CK_OBJECT_HANDLE key, HashAlg hash,
                                       std::span<const std::uint8_t> ciphertext, std::size_t k,
                                       bool* raw = nullptr);
// C_EncryptInit + C_Encrypt into a buffer of `max_out` bytes. kUnsupported when the token refuses
// the mechanism or its parameters.
Result<Bytes> token_encrypt(const p11::Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM& mech,
                            std::span<const std::uint8_t> plaintext, std::size_t max_out);
// RFC 3394 (CKM_AES_KEY_WRAP) or, with `pad`, RFC 5649 (CKM_AES_KEY_WRAP_PAD) of the caller's key
// bytes under the vault AES key: the bytes become a non-sensitive session secret key, wrapped,
// then destroyed.
Result<Bytes> token_aes_kw_wrap(const p11::Session& s, CK_OBJECT_HANDLE aes_key,
                                const SecretBytes& key_bytes, bool pad);
// RFC 5649 of the caller's key bytes (any length) computed from the vault AES key's block cipher
// in the token (CKM_AES_ECB, one block at a time): the key never leaves the token, and the result
// does not depend on what a module's CKM_AES_KEY_WRAP_PAD pads. SoftHSM 2.6.1's C_WrapKey pads the
// data with zeros to a multiple of 8 before RFC 5649, so its output for other lengths unwraps to
// the wrong length elsewhere; token_aes_kw_wrap uses this for those lengths.
Result<Bytes> token_aes_kwp_by_blocks(const p11::Session& s, CK_OBJECT_HANDLE aes_key,
                                      const SecretBytes& key_bytes);
// The inverse: C_UnwrapKey into a non-sensitive session key whose value is returned (the caller
// asked for it), then destroyed. Any failure is integrity_error().
Result<SecretBytes> token_aes_kw_unwrap(const p11::Session& s, CK_OBJECT_HANDLE aes_key,
                                        std::span<const std::uint8_t> wrapped, bool pad);
// Recovers the public point of an EC private key object by signing two random digests in the
// token (see vault/ec_recover.h). Returns 04||X||Y.
Result<Bytes> ec_public_point_by_signing(const p11::Session& s, CK_OBJECT_HANDLE key, Curve curve);

}  // namespace keyport::vault
