// SPDX-License-Identifier: Apache-2.0
// Sessions (RAII), login, object search and attribute reads, and ScopedObject for ephemeral keys.
// A Session is used by one thread at a time; open one per thread for parallel work.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "core/secret.h"
#include "pkcs11/cryptoki.h"
#include "pkcs11/module.h"
#include "pkcs11/template.h"

namespace keyport::p11 {

class Session {
 public:
  // C_OpenSession on `slot` (serial; read-write unless read_write is false).
  static Result<Session> open(std::shared_ptr<const Module> module, CK_SLOT_ID slot,
                              bool read_write = true);

  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  // Closes the session; failures are logged, not thrown. It does not log out: login state is per
  // application and token (PKCS#11 §5.6), so that would log out every other session too; the token
  // logs the application out when its last session closes.
  ~Session();

  // C_Login. CKR_USER_ALREADY_LOGGED_IN is success (another session of this process logged in).
  // A wrong PIN is kAuth.
  Status login(const SecretBytes& pin, CK_USER_TYPE user = CKU_USER);
  // C_Login with a NULL PIN: the token takes the PIN on its own pad
  // (CKF_PROTECTED_AUTHENTICATION_PATH).
  Status login_protected_path(CK_USER_TYPE user = CKU_USER);
  // Explicit close for callers who want the result.
  Status close();
  // C_Logout: logs the whole application out of the token (every session of this process).
  Status logout();

  // Whether the application is logged in to this session's token as user (C_GetSessionInfo).
  bool user_logged_in() const;

  CK_SESSION_HANDLE handle() const { return m_handle; }
  CK_SLOT_ID slot() const { return m_slot; }
  const Module& module() const { return *m_module; }
  const std::shared_ptr<const Module>& module_ptr() const { return m_module; }

  // All objects matching `match` (C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal).
  Result<std::vector<CK_OBJECT_HANDLE>> find_objects(const Template& match,
                                                     std::size_t max = 100000) const;
  Result<CK_OBJECT_HANDLE> create_object(const Template& t, CK_RV* rv = nullptr) const;
  Status destroy_object(CK_OBJECT_HANDLE object) const;

  // Key operations. Each returns the new object or the bytes, or the C_* error; `rv`, when given,
  // receives the CK_RV of the last call (callers that tell a refused parameter from a failure).
  Result<CK_OBJECT_HANDLE> generate_key(const CK_MECHANISM& mech, const Template& t,
                                        CK_RV* rv = nullptr) const;
  // The public key's handle, then the private key's.
  Result<std::pair<CK_OBJECT_HANDLE, CK_OBJECT_HANDLE>> generate_key_pair(
      const CK_MECHANISM& mech, const Template& public_template, const Template& private_template,
      CK_RV* rv = nullptr) const;
  // C_WrapKey into a buffer of `guess` bytes, grown once on CKR_BUFFER_TOO_SMALL (SoftHSM does the
  // whole wrap for a NULL-buffer size query, so the usual two calls would wrap twice).
  Result<Bytes> wrap_key(const CK_MECHANISM& mech, CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key,
                         std::size_t guess, CK_RV* rv = nullptr) const;
  Result<CK_OBJECT_HANDLE> unwrap_key(const CK_MECHANISM& mech, CK_OBJECT_HANDLE unwrapping,
                                      std::span<const std::uint8_t> wrapped, const Template& t,
                                      CK_RV* rv = nullptr) const;

  // C_GenerateRandom: `n` bytes from the token's random number generator.
  Result<Bytes> generate_random(std::size_t n) const;
  // C_SignInit + C_Sign (the signature grown once on CKR_BUFFER_TOO_SMALL).
  Result<Bytes> sign(const CK_MECHANISM& mech, CK_OBJECT_HANDLE key,
                     std::span<const std::uint8_t> data) const;
  // C_EncryptInit + C_Encrypt into at most `max_out` bytes (the caller knows the mechanism's
  // output size). `rv` receives C_Encrypt's CK_RV.
  Result<Bytes> encrypt(const CK_MECHANISM& mech, CK_OBJECT_HANDLE key,
                        std::span<const std::uint8_t> plaintext, std::size_t max_out,
                        CK_RV* rv = nullptr) const;
  // C_DecryptInit + C_Decrypt into at most `max_out` bytes. `init_rv` receives C_DecryptInit's
  // CK_RV and `rv` C_Decrypt's (callers tell a refused mechanism from a ciphertext that does not
  // decrypt).
  Result<SecretBytes> decrypt(const CK_MECHANISM& mech, CK_OBJECT_HANDLE key,
                              std::span<const std::uint8_t> ciphertext, std::size_t max_out,
                              CK_RV* init_rv = nullptr, CK_RV* rv = nullptr) const;
  // C_InitPIN: sets the user PIN (the session is logged in as SO).
  Status init_pin(const SecretBytes& pin) const;

  // The one place keyport reads CKA_VALUE (threat model T1): the value of a session secret key
  // that is neither sensitive nor a token object, which keyport itself made so that its value is
  // the answer: a mechanism self-test's key made from a value it already knows
  // (pkcs11/selftest.h), and a key unwrapped for the caller (Key Vault's unwrapKey with AES key
  // wrap, a data key a migration KEK unwraps for the host). Refuses (kInternal) any other object.
  Result<SecretBytes> read_plain_session_key(CK_OBJECT_HANDLE object) const;

  // Reads a non-secret attribute. Refuses (kInternal) to read CKA_VALUE and private key
  // components: keyport never asks a token for secret bytes.
  Result<Bytes> get_bytes(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const;
  // Like get_bytes, but nullopt when the token says the attribute is sensitive, invalid for this
  // object, or unavailable.
  Result<std::optional<Bytes>> try_get_bytes(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const;
  // Reads several non-secret attributes in one call (fixed-size ones with their exact size). When
  // the module leaves some out, each of those is read alone (a module may refuse a whole batch for
  // one attribute). Each entry is nullopt when the token says, for that attribute alone, that it
  // is sensitive, invalid for the object, or unavailable.
  Result<std::vector<std::optional<Bytes>>> get_attributes(
      CK_OBJECT_HANDLE object, const std::vector<CK_ATTRIBUTE_TYPE>& types) const;
  Result<CK_ULONG> get_ulong(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const;
  Result<bool> get_bool(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const;
  Result<std::string> get_string(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const;

 private:
  Session(std::shared_ptr<const Module> module, CK_SLOT_ID slot, CK_SESSION_HANDLE handle)
      : m_module(std::move(module)), m_slot(slot), m_handle(handle) {}
  void reset() noexcept;
  Status finish_login(CK_RV rv);  // login's answer to a C_Login

  std::shared_ptr<const Module> m_module;
  CK_SLOT_ID m_slot = 0;
  CK_SESSION_HANDLE m_handle = CK_INVALID_HANDLE;
  bool m_logged_in = false;
};

// Owns one object and destroys it (C_DestroyObject) when it goes out of scope, on every path.
// Used for ephemeral session keys: the transfer AES key of an export or import.
class ScopedObject {
 public:
  ScopedObject() = default;
  ScopedObject(const Session& session, CK_OBJECT_HANDLE handle)
      : m_session(&session), m_handle(handle) {}
  ScopedObject(ScopedObject&& other) noexcept
      : m_session(other.m_session), m_handle(std::exchange(other.m_handle, CK_INVALID_HANDLE)) {}
  ScopedObject& operator=(ScopedObject&& other) noexcept;
  ScopedObject(const ScopedObject&) = delete;
  ScopedObject& operator=(const ScopedObject&) = delete;
  ~ScopedObject();

  CK_OBJECT_HANDLE get() const { return m_handle; }
  explicit operator bool() const { return m_handle != CK_INVALID_HANDLE; }
  // Gives up ownership (the object stays).
  CK_OBJECT_HANDLE release() { return std::exchange(m_handle, CK_INVALID_HANDLE); }
  // Destroys now and reports the result.
  Status destroy();

 private:
  const Session* m_session = nullptr;
  CK_OBJECT_HANDLE m_handle = CK_INVALID_HANDLE;
};

// True for attributes that hold secret key material (CKA_VALUE, private exponent, primes, ...).
bool is_secret_attribute(CK_ATTRIBUTE_TYPE type);
// The size of a fixed-size attribute's value (sizeof(CK_ULONG) or sizeof(CK_BBOOL)); 0 for
// attributes of variable length.
CK_ULONG attribute_value_size(CK_ATTRIBUTE_TYPE type);

}  // namespace keyport::p11
