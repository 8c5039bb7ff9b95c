// SPDX-License-Identifier: Apache-2.0
#include "migrate/kek.h"

#include <atomic>
#include <optional>

#include "byok/crypto.h"
#include "core/digest.h"
#include "core/json.h"
#include "core/strings.h"
#include "migrate/crypto.h"
#include "pkcs11/keygen.h"
#include "pkcs11/names.h"
#include "pkcs11/session_pool.h"
#include "pkcs11/uri.h"
#include "pkcs11/wrap.h"
#include "vault/errors.h"
#include "vault/vault.h"

namespace keyport::migrate {

std::string KekId::describe() const {
  return id + " (version " + version + ")";
}

std::string_view to_string(KekKind kind) {
  switch (kind) {
    case KekKind::kToken:
      return "pkcs11";
    case KekKind::kVault:
      return "vault";
    case KekKind::kSecret:
      return "secret";
  }
  return "";
}

bool KeyEncryptionKey::can_rewrap_in_token(const KeyEncryptionKey&) const {
  return false;
}

Result<Bytes> KeyEncryptionKey::rewrap_in_token(std::span<const std::uint8_t>,
                                                const KeyEncryptionKey& to) const {
  return make_error(ErrorCode::kUnsupported, id().id + " and " + to.id().id +
                                                 " are not in the same token: the key has to "
                                                 "pass through host memory");
}

bool KeyEncryptionKey::has_token_check_values() const {
  return false;
}

Result<Bytes> KeyEncryptionKey::check_value_in_token(std::span<const std::uint8_t>) const {
  return make_error(ErrorCode::kUnsupported,
                    id().id + " cannot compute check values inside an HSM");
}

Result<Portability> KeyEncryptionKey::portability() const {
  Portability p;
  p.reason = "keyport cannot tell whether this key's material can be moved";
  return p;
}

// --- TokenKek -----------------------------------------------------------------------------------

// Sessions for the KEK's calls: one per caller at a time, opened on demand and reused. Login state
// belongs to the application, so they share the login of the anchor session.
struct TokenKek::Pool {
  std::optional<p11::Session> anchor;        // logged in; kept open for the KEK's lifetime
  std::optional<p11::SessionPool> sessions;  // destroyed before the anchor
  std::atomic<std::size_t> live_objects{0};

  Result<p11::SessionPool::Lease> acquire() { return sessions->acquire(); }
};

namespace {

// Counts a session object while it lives, for the leak checks of the tests.
class CountedObject {
 public:
  CountedObject(const p11::Session& s, CK_OBJECT_HANDLE h, std::atomic<std::size_t>& live)
      : m_object(s, h), m_live(live) {
    ++m_live;
  }
  ~CountedObject() {
    m_object = p11::ScopedObject();
    --m_live;
  }
  CountedObject(const CountedObject&) = delete;
  CountedObject& operator=(const CountedObject&) = delete;
  CK_OBJECT_HANDLE get() const { return m_object.get(); }
  Status destroy() { return m_object.destroy(); }

 private:
  p11::ScopedObject m_object;
  std::atomic<std::size_t>& m_live;
};

}  // namespace

TokenKek::~TokenKek() = default;

Result<std::unique_ptr<TokenKek>> TokenKek::open(std::shared_ptr<const p11::Module> module,
                                                 CK_SLOT_ID slot,
                                                 const std::optional<SecretBytes>& pin,
                                                 std::string_view object) {
  std::unique_ptr<TokenKek> k(new TokenKek());
  k->m_module = module;
  k->m_slot = slot;
  k->m_pool = std::make_unique<Pool>();
  KEYPORT_ASSIGN_OR_RETURN(k->m_token, p11::token_info(*module, slot));
  KEYPORT_ASSIGN_OR_RETURN(auto anchor, p11::Session::open(module, slot, true));
  k->m_pool->anchor.emplace(std::move(anchor));
  k->m_pool->sessions.emplace(module, slot, std::nullopt, 0);
  p11::Session& s = *k->m_pool->anchor;
  auto login = pin ? s.login(*pin) : Status{};
  if (!login) {
    return tl::unexpected(login.error().with_context("token \"" + k->m_token.label + "\""));
  }
  KEYPORT_ASSIGN_OR_RETURN(p11::KeyObject key, p11::find_key(s, object));
  k->m_label = key.label;
  k->m_extractable = key.extractable;
  k->m_private = key.handle;
  p11::Uri uri;
  uri.token = k->m_token.label;
  uri.object = key.label;
  if (key.spec.family == KeyFamily::kAes) {
    KEYPORT_ASSIGN_OR_RETURN(auto caps, p11::probe_wrap_capabilities(s, k->m_token));
    if (!caps.kwp) {
      return make_error(ErrorCode::kUnsupported,
                        "token \"" + k->m_token.label +
                            "\" has no mechanism proven to be RFC 5649 AES key wrap (see keyport "
                            "token info)");
    }
    k->m_kwp = *caps.kwp;
    uri.type = "secret-key";
    // The version names the material: the KCV (3 bytes of AES-ECB(key, 0)) where the key may
    // encrypt, else its CKA_ID.
    auto kcv = p11::aes_check_value(s, key.handle);
    if (kcv) {
      k->m_id.version = "kcv:" + hex_encode(std::span(kcv->data(), 3));
    } else {
      k->m_id.version = "id:" + hex_encode(key.id);
    }
  } else if (key.spec.family == KeyFamily::kRsa) {
    k->m_rsa = true;
    uri.type = "private";
    KEYPORT_ASSIGN_OR_RETURN(Bytes modulus, s.get_bytes(key.handle, CKA_MODULUS));
    while (!modulus.empty() && modulus.front() == 0) {
      modulus.erase(modulus.begin());
    }
    k->m_modulus_bytes = modulus.size();
    if (key.public_handle) {
      k->m_public = *key.public_handle;
    }
    k->m_id.version = "sha256:" + hex_encode(sha256(modulus)).substr(0, 16);
  } else {
    return make_error(ErrorCode::kInvalidArgument,
                      "\"" + key.label + "\" is an EC key; a KEK is an AES key or an RSA key pair");
  }
  k->m_id.id = uri.format();
  return k;
}

std::string_view TokenKek::algorithm() const {
  return m_rsa ? "RSA-OAEP" : "AES-KWP";
}

std::size_t TokenKek::live_session_objects() const {
  return m_pool->live_objects.load();
}

Result<CK_OBJECT_HANDLE> TokenKek::unwrap_to_object(const p11::Session& s,
                                                    std::span<const std::uint8_t> wrapped,
                                                    bool sensitive) const {
  p11::Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(sensitive ? CKK_AES : CKK_GENERIC_SECRET)
      .token(false)
      .private_object(true)
      .sensitive(sensitive)
      .extractable(true)
      .decrypt(false)
      .sign(false)
      .verify(false)
      .wrap(false)
      .unwrap(false)
      .derive(false);
  if (sensitive) {
    t.encrypt(true);  // only to compute check values in the token
  }
  CK_RSA_PKCS_OAEP_PARAMS oaep = p11::oaep_params(OaepHash::kSha1);
  CK_MECHANISM mech =
      m_rsa ? CK_MECHANISM{CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep} : CK_MECHANISM{m_kwp, nullptr, 0};
  CK_RV rv = CKR_OK;
  auto h = s.unwrap_key(mech, m_private, wrapped, t, &rv);
  if (rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_SESSION_HANDLE_INVALID ||
      rv == CKR_KEY_HANDLE_INVALID || rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
      rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_HOST_MEMORY || rv == CKR_DEVICE_MEMORY) {
    // Failures that cannot depend on the ciphertext are reported as what they are.
    return tl::unexpected(p11::pkcs11_error(rv, "C_UnwrapKey"));
  }
  if (!h) {
    return integrity_error();
  }
  return *h;
}

Result<Bytes> TokenKek::wrap_object(const p11::Session& s, CK_OBJECT_HANDLE key) const {
  CK_RSA_PKCS_OAEP_PARAMS oaep = p11::oaep_params(OaepHash::kSha1);
  CK_MECHANISM mech =
      m_rsa ? CK_MECHANISM{CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep} : CK_MECHANISM{m_kwp, nullptr, 0};
  CK_OBJECT_HANDLE wrapping = m_rsa ? m_public : m_private;
  if (wrapping == CK_INVALID_HANDLE) {
    return make_error(ErrorCode::kUnsupported, "RSA KEK \"" + m_label +
                                                   "\" has no public key object on the token to "
                                                   "wrap with");
  }
  return s.wrap_key(mech, wrapping, key, m_rsa ? m_modulus_bytes : 4096 + 16);
}

Result<Bytes> TokenKek::wrap(const SecretBytes& key) const {
  if (key.empty() || key.size() > 4096) {
    return make_error(ErrorCode::kInvalidArgument, "a wrapped key is 1 to 4096 bytes");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto lease, m_pool->acquire());
  const p11::Session& s = *lease;
  const bool aes = key.size() == 16 || key.size() == 24 || key.size() == 32;
  p11::Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(aes ? CKK_AES : CKK_GENERIC_SECRET)
      .token(false)
      .private_object(true)
      .sensitive(true)
      .extractable(true)
      .set_secret(CKA_VALUE, key.clone());
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE h, s.create_object(t));
  CountedObject object(s, h, m_pool->live_objects);
  KEYPORT_ASSIGN_OR_RETURN(Bytes out, wrap_object(s, object.get()));
  KEYPORT_TRY(object.destroy());
  return out;
}

Result<SecretBytes> TokenKek::unwrap(std::span<const std::uint8_t> wrapped) const {
  KEYPORT_ASSIGN_OR_RETURN(auto lease, m_pool->acquire());
  const p11::Session& s = *lease;
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE h, unwrap_to_object(s, wrapped, false));
  CountedObject object(s, h, m_pool->live_objects);
  // The session key is non-sensitive on purpose: its value is the answer.
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes value, s.read_plain_session_key(h));
  KEYPORT_TRY(object.destroy());
  return value;
}

bool TokenKek::can_rewrap_in_token(const KeyEncryptionKey& to) const {
  const auto* other = dynamic_cast<const TokenKek*>(&to);
  return other != nullptr && other->m_module.get() == m_module.get() && other->m_slot == m_slot;
}

Result<Bytes> TokenKek::rewrap_in_token(std::span<const std::uint8_t> wrapped,
                                        const KeyEncryptionKey& to) const {
  if (!can_rewrap_in_token(to)) {
    return KeyEncryptionKey::rewrap_in_token(wrapped, to);
  }
  const auto& dest = static_cast<const TokenKek&>(to);
  KEYPORT_ASSIGN_OR_RETURN(auto lease, m_pool->acquire());
  const p11::Session& s = *lease;
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE h, unwrap_to_object(s, wrapped, true));
  CountedObject object(s, h, m_pool->live_objects);
  KEYPORT_ASSIGN_OR_RETURN(Bytes out, dest.wrap_object(s, object.get()));
  KEYPORT_TRY(object.destroy());
  return out;
}

Result<Bytes> TokenKek::check_value_in_token(std::span<const std::uint8_t> wrapped) const {
  KEYPORT_ASSIGN_OR_RETURN(auto lease, m_pool->acquire());
  const p11::Session& s = *lease;
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE h, unwrap_to_object(s, wrapped, true));
  CountedObject object(s, h, m_pool->live_objects);
  KEYPORT_ASSIGN_OR_RETURN(Bytes kcv, p11::aes_check_value(s, object.get()));
  KEYPORT_TRY(object.destroy());
  return kcv;
}

Result<Portability> TokenKek::portability() const {
  Portability p;
  p.portable = m_extractable;
  if (!m_extractable) {
    p.reason = "CKA_EXTRACTABLE=FALSE: \"" + m_label + "\" can never leave token \"" +
               m_token.label + "\"; the keys it wraps must be re-wrapped under the new KEK";
    return p;
  }
  p.reason = "CKA_EXTRACTABLE=TRUE: \"" + m_label + "\" can leave token \"" + m_token.label +
             "\" wrapped (BYOK), so the destination can hold the same material and the wrapped "
             "keys stay valid without re-wrapping";
  p.commands.push_back("keyport byok export --token '" + m_token.label + "' --key '" + m_label +
                       "' --kek <destination-KEK.pem> --kid <destination-KEK-kid> -o '" + m_label +
                       ".byok'");
  if (m_rsa) {
    p.commands.push_back(
        "az keyvault key import --vault-name <vault> --name <key-name> "
        "--byok-file '" +
        m_label + ".byok' --kty RSA");
  } else {
    p.commands.push_back(
        "az keyvault key import --hsm-name <managed-hsm> --name <key-name> --byok-file '" +
        m_label + ".byok' --kty oct   # AES keys go to Managed HSM only");
  }
  return p;
}

// --- VaultKek -----------------------------------------------------------------------------------

Result<std::unique_ptr<VaultKek>> VaultKek::open(std::shared_ptr<vault::Vault> v,
                                                 std::string_view name, std::string_view version,
                                                 std::string_view alg, std::string caller) {
  std::unique_ptr<VaultKek> k(new VaultKek());
  k->m_vault = std::move(v);
  k->m_caller = std::move(caller);
  vault::CallContext ctx{k->m_caller};
  KEYPORT_ASSIGN_OR_RETURN(Json bundle, k->m_vault->get_key(ctx, name, version));
  const Json& key = bundle["key"];
  if (!key.is_object() || !key["kid"].is_string() || !key["kty"].is_string()) {
    return make_error(ErrorCode::kInternal, "the vault returned a KeyBundle without kid or kty");
  }
  std::string kid = key["kid"].get<std::string>();
  auto slash = kid.rfind('/');
  if (slash == std::string::npos) {
    return make_error(ErrorCode::kInternal, "unexpected kid " + kid);
  }
  k->m_version = kid.substr(slash + 1);
  k->m_id.id = kid.substr(0, slash);
  k->m_id.version = k->m_version;
  k->m_name = k->m_id.id.substr(k->m_id.id.rfind('/') + 1);
  k->m_kty = key["kty"].get<std::string>();
  const bool rsa = k->m_kty.rfind("RSA", 0) == 0;
  const bool oct = k->m_kty.rfind("oct", 0) == 0;
  if (!rsa && !oct) {
    return make_error(ErrorCode::kInvalidArgument,
                      "vault key " + k->m_name + " is " + k->m_kty +
                          ": a KEK is an RSA key (RSA-OAEP-256) or an oct key (A256KW)");
  }
  if (alg.empty()) {
    k->m_alg = rsa ? "RSA-OAEP-256" : "A256KW";
  } else {
    k->m_alg = std::string(alg);
    const bool rsa_alg = k->m_alg == "RSA-OAEP" || k->m_alg == "RSA-OAEP-256";
    const bool kw_alg = k->m_alg == "A128KW" || k->m_alg == "A192KW" || k->m_alg == "A256KW";
    if ((rsa && !rsa_alg) || (oct && !kw_alg)) {
      return make_error(ErrorCode::kInvalidArgument, "algorithm " + k->m_alg + " does not fit " +
                                                         k->m_kty + " key " + k->m_name);
    }
  }
  return k;
}

Result<Bytes> VaultKek::wrap(const SecretBytes& key) const {
  vault::CallContext ctx{m_caller};
  // The vault API takes JSON: the key passes through a std::string that cannot be wiped.
  Json body{{"alg", m_alg}, {"value", base64url_encode(key.reveal(SecretAccess::unsafe()))}};
  auto r = m_vault->wrap_key(ctx, m_name, m_version, body);
  std::string& sent = body["value"].get_ref<std::string&>();
  secure_wipe(sent.data(), sent.size());
  if (!r) {
    return tl::unexpected(r.error().with_context("wrapKey with " + m_id.describe()));
  }
  const Json& value = (*r)["value"];
  if (!value.is_string()) {
    return make_error(ErrorCode::kInternal, "wrapKey returned no value");
  }
  return base64url_decode(value.get<std::string>());
}

Result<SecretBytes> VaultKek::unwrap(std::span<const std::uint8_t> wrapped) const {
  vault::CallContext ctx{m_caller};
  Json body{{"alg", m_alg}, {"value", base64url_encode(wrapped)}};
  auto r = m_vault->unwrap_key(ctx, m_name, m_version, body);
  if (!r) {
    if (r.error().detail() == vault::kBadParameter) {
      // Every decryption failure of the vault is one BadParameter; keep it one error here too.
      return integrity_error();
    }
    return tl::unexpected(r.error().with_context("unwrapKey with " + m_id.describe()));
  }
  Json& value = (*r)["value"];
  if (!value.is_string()) {
    return make_error(ErrorCode::kInternal, "unwrapKey returned no value");
  }
  std::string& text = value.get_ref<std::string&>();
  auto key = base64url_decode_secret(text);
  secure_wipe(text.data(), text.size());
  return key;
}

Result<Portability> VaultKek::portability() const {
  KEYPORT_ASSIGN_OR_RETURN(auto audit, m_vault->audit_log(0));
  Portability p;
  for (const auto& row : audit) {
    if (row.operation == "ImportKey" && row.outcome == "success" && iequals(row.key_name, m_name) &&
        iequals(row.version, m_version) && row.reason.rfind("BYOK ", 0) == 0) {
      p.portable = true;
      p.reason = "version " + m_version +
                 " was imported with BYOK (key_hsm): its material came "
                 "from an HSM you control (" +
                 row.reason +
                 "); import the same material at the destination and the wrapped keys stay valid";
      p.commands.push_back(
          "keyport byok export --token <on-prem token> --key <the original key's label> "
          "--kek <destination-KEK.pem> --kid <destination-KEK-kid> -o " +
          m_name + ".byok");
      const bool oct = m_kty.rfind("oct", 0) == 0;
      p.commands.push_back(std::string("az keyvault key import ") +
                           (oct ? "--hsm-name <managed-hsm>" : "--vault-name <vault>") +
                           " --name " + m_name + " --byok-file " + m_name + ".byok --kty " +
                           (oct ? "oct" : "RSA"));
      return p;
    }
  }
  p.reason = "version " + m_version +
             " was created inside the vault (or imported in plain form): Key Vault never exports "
             "keys, so the keys it wraps must be re-wrapped under the new KEK";
  return p;
}

// --- SecretKek ----------------------------------------------------------------------------------

Result<std::unique_ptr<SecretKek>> SecretKek::create(std::string id, SecretBytes key) {
  KEYPORT_ASSIGN_OR_RETURN(Bytes kcv, aes_check_value(key));
  std::unique_ptr<SecretKek> k(new SecretKek());
  k->m_key = std::move(key);
  k->m_id.id = std::move(id);
  k->m_id.version = "kcv:" + hex_encode(std::span(kcv.data(), 3));
  return k;
}

Result<Bytes> SecretKek::wrap(const SecretBytes& key) const {
  return byok::aes_kwp_wrap(m_key, key);
}

Result<SecretBytes> SecretKek::unwrap(std::span<const std::uint8_t> wrapped) const {
  return byok::aes_kwp_unwrap(m_key, wrapped);
}

}  // namespace keyport::migrate
