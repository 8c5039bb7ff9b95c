// SPDX-License-Identifier: Apache-2.0
// Key-encryption keys (KEKs): what wraps the keys of the keyring.
//
// The interface is small on purpose (id, algorithm, wrap, unwrap) so that other back ends (a Key
// Vault REST client) fit later; the optional capabilities have defaults that say "not here":
//
// - rewrap_in_token(): when both KEKs live in the same PKCS#11 token, the wrapped key is unwrapped
//   into a session object and wrapped again from it, so it never leaves the HSM;
// - check_value_in_token(): AES-ECB(key, 0^128) of a wrapped key computed inside the HSM from a
//   session object made by unwrap, to prove two wrappings hold the same key without revealing it;
// - portability(): whether the KEK's own material can be re-imported elsewhere (BYOK).
//
// Implementations:
// - TokenKek: an AES key (CKM_AES_KEY_WRAP_PAD, RFC 5649) or an RSA key pair (CKM_RSA_PKCS_OAEP,
//   SHA-1, MGF1-SHA1, no label; the public object wraps, the private object unwraps) in a token;
// - VaultKek: a key of the simulated vault through vault::Vault wrapKey/unwrapKey (RSA-OAEP-256 for
//   RSA keys by default, A128KW/A192KW/A256KW for oct keys on Managed HSM);
// - SecretKek: an AES key held in host memory (a keyring primary key), RFC 5649 in software.
//
// Every implementation may be used from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "core/secret.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"

namespace keyport::vault {
class Vault;
}

namespace keyport::migrate {

// Names one KEK: `id` says which key (a kid without version, a PKCS#11 URI, "keyring:<id>"),
// `version` which material (a vault version; "kcv:<6 hex>" for a token AES key, "sha256:<16 hex>"
// of the modulus for a token RSA key).
struct KekId {
  std::string id;
  std::string version;

  // "<id> (version <version>)".
  std::string describe() const;
  bool operator==(const KekId&) const = default;
};

enum class KekKind { kToken, kVault, kSecret };
std::string_view to_string(KekKind kind);

// Whether a KEK's own material can be moved to the destination instead of re-wrapping under a
// new KEK.
struct Portability {
  bool portable = false;
  std::string reason;
  // Commands that move the material (keyport byok export, az keyvault key import), with
  // placeholders in <angle brackets> for what keyport cannot know.
  std::vector<std::string> commands;
};

class KeyEncryptionKey {
 public:
  virtual ~KeyEncryptionKey() = default;

  virtual const KekId& id() const = 0;
  virtual KekKind kind() const = 0;
  // "AES-KWP" (RFC 5649), "RSA-OAEP" (SHA-1), "RSA-OAEP-256", "A128KW", "A192KW", "A256KW".
  virtual std::string_view algorithm() const = 0;

  // Returns `key` wrapped under this KEK.
  virtual Result<Bytes> wrap(const SecretBytes& key) const = 0;
  // Returns the key inside `wrapped`, or integrity_error() whatever is wrong with it.
  virtual Result<SecretBytes> unwrap(std::span<const std::uint8_t> wrapped) const = 0;

  // True when rewrap_in_token(wrapped, to) keeps the key inside one HSM.
  virtual bool can_rewrap_in_token(const KeyEncryptionKey& to) const;
  // Unwraps `wrapped` into a session object and wraps that object under `to`. kUnsupported unless
  // can_rewrap_in_token(to).
  virtual Result<Bytes> rewrap_in_token(std::span<const std::uint8_t> wrapped,
                                        const KeyEncryptionKey& to) const;
  // True when check_value_in_token() is available (the key can be checked inside the HSM).
  virtual bool has_token_check_values() const;
  // AES-ECB(key, 0^128) of the AES key inside `wrapped`, computed in the HSM from a session
  // object made by unwrap; kUnsupported where the key would have to leave the HSM.
  virtual Result<Bytes> check_value_in_token(std::span<const std::uint8_t> wrapped) const;
  // Whether the KEK's material can be moved (default: not known, not portable).
  virtual Result<Portability> portability() const;
};

// --- PKCS#11 token keys -------------------------------------------------------------------------

class TokenKek final : public KeyEncryptionKey {
 public:
  // Opens the key `object` (a label, or a PKCS#11 URI with object=/id=/type=) on the token in
  // `slot`: logs in with `pin` on a session of its own that it keeps (CKR_USER_ALREADY_LOGGED_IN
  // is fine; no PIN: no login, for a token without CKF_LOGIN_REQUIRED), finds the AES secret key
  // or RSA private key (and its public half for wrapping), and probes the module's RFC 5649
  // mechanism. Returns kNotFound, kInvalidArgument (several keys match; an EC key), kUnsupported
  // (no RFC 5649 / OAEP on this token), kAuth.
  static Result<std::unique_ptr<TokenKek>> open(std::shared_ptr<const p11::Module> module,
                                                CK_SLOT_ID slot,
                                                const std::optional<SecretBytes>& pin,
                                                std::string_view object);
  ~TokenKek() override;

  const KekId& id() const override { return m_id; }
  KekKind kind() const override { return KekKind::kToken; }
  std::string_view algorithm() const override;
  Result<Bytes> wrap(const SecretBytes& key) const override;
  Result<SecretBytes> unwrap(std::span<const std::uint8_t> wrapped) const override;
  bool can_rewrap_in_token(const KeyEncryptionKey& to) const override;
  Result<Bytes> rewrap_in_token(std::span<const std::uint8_t> wrapped,
                                const KeyEncryptionKey& to) const override;
  bool has_token_check_values() const override { return true; }
  Result<Bytes> check_value_in_token(std::span<const std::uint8_t> wrapped) const override;
  Result<Portability> portability() const override;

  const p11::TokenInfo& token() const { return m_token; }
  const std::string& label() const { return m_label; }
  bool is_rsa() const { return m_rsa; }
  // Session objects this KEK created and has not destroyed yet (0 between calls; for tests).
  std::size_t live_session_objects() const;

  struct Pool;

 private:
  TokenKek() = default;
  // Unwraps `wrapped` into a session AES key (encrypt allowed, sensitive, extractable as asked);
  // every failure of the unwrap itself is integrity_error().
  Result<CK_OBJECT_HANDLE> unwrap_to_object(const p11::Session& s,
                                            std::span<const std::uint8_t> wrapped,
                                            bool sensitive) const;
  Result<Bytes> wrap_object(const p11::Session& s, CK_OBJECT_HANDLE key) const;

  std::shared_ptr<const p11::Module> m_module;
  CK_SLOT_ID m_slot = 0;
  p11::TokenInfo m_token;
  std::string m_label;
  bool m_rsa = false;
  bool m_extractable = false;
  CK_OBJECT_HANDLE m_private = CK_INVALID_HANDLE;  // AES key, or RSA private key
  CK_OBJECT_HANDLE m_public = CK_INVALID_HANDLE;   // RSA public key
  std::size_t m_modulus_bytes = 0;
  CK_MECHANISM_TYPE m_kwp = 0;
  KekId m_id;
  std::unique_ptr<Pool> m_pool;
};

// --- simulated vault keys -----------------------------------------------------------------------

class VaultKek final : public KeyEncryptionKey {
 public:
  // Uses key `name` (version `version`, empty = latest, resolved now) of an open vault. `alg`
  // empty: RSA-OAEP-256 for RSA keys, A<bits>KW for oct keys. Returns KeyNotFound (kNotFound),
  // kInvalidArgument (EC key, alg not for this key).
  static Result<std::unique_ptr<VaultKek>> open(std::shared_ptr<vault::Vault> vault,
                                                std::string_view name, std::string_view version,
                                                std::string_view alg = {},
                                                std::string caller = "keyport-migrate");

  const KekId& id() const override { return m_id; }
  KekKind kind() const override { return KekKind::kVault; }
  std::string_view algorithm() const override { return m_alg; }
  Result<Bytes> wrap(const SecretBytes& key) const override;
  Result<SecretBytes> unwrap(std::span<const std::uint8_t> wrapped) const override;
  Result<Portability> portability() const override;

  const std::string& name() const { return m_name; }
  const std::string& version() const { return m_version; }

 private:
  VaultKek() = default;
  std::shared_ptr<vault::Vault> m_vault;
  std::string m_name;
  std::string m_version;
  std::string m_alg;
  std::string m_kty;
  std::string m_caller;
  KekId m_id;
};

// --- keys in host memory ------------------------------------------------------------------------

class SecretKek final : public KeyEncryptionKey {
 public:
  // An AES key (16, 24 or 32 bytes) in host memory named `id`; its version is "kcv:<6 hex>".
  static Result<std::unique_ptr<SecretKek>> create(std::string id, SecretBytes key);

  const KekId& id() const override { return m_id; }
  KekKind kind() const override { return KekKind::kSecret; }
  std::string_view algorithm() const override { return "AES-KWP"; }
  Result<Bytes> wrap(const SecretBytes& key) const override;
  Result<SecretBytes> unwrap(std::span<const std::uint8_t> wrapped) const override;

 private:
  SecretKek() = default;
  SecretBytes m_key;
  KekId m_id;
};

}  // namespace keyport::migrate
