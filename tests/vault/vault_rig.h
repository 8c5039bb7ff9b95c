// SPDX-License-Identifier: Apache-2.0
// Test rig for keyport::vault: a vault in attached-token mode on the test process's SoftHSM
// "vault" token, an on-prem side on the "onprem" token, and OpenSSL checks written for the tests.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "byok/byok_file.h"
#include "byok/public_key.h"
#include "core/json.h"
#include "core/ossl.h"
#include "pkcs11/keygen.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "tests/support/support.h"
#include "vault/vault.h"

namespace keyport::test {

inline constexpr std::int64_t kStartTime = 1'700'000'000;

// A vault whose token is the test SoftHSM's "vault" token. The rig's own session on that token
// logs in first, so closing a Vault never logs the rig out.
struct VaultRig {
  p11::Session session;
  std::filesystem::path dir;
  vault::ManualClock clock{kStartTime};
  vault::CallContext ctx{"test"};
  std::unique_ptr<vault::Vault> v;

  VaultRig(vault::Flavor flavor, const std::string& name, const std::string& base_url = "");
  void open(vault::CrashPoint crash = vault::CrashPoint::kNone);
  void close() { v.reset(); }
  vault::Vault& operator*() { return *v; }
  vault::Vault* operator->() { return v.get(); }

  // Every token object (CKA_TOKEN=TRUE) on the vault token.
  std::size_t token_objects() const;
  // The token object of a key version (by its label kv:<name>:<version>).
  CK_OBJECT_HANDLE object_of(const std::string& name, const std::string& version) const;
};

// The on-prem HSM: generates portable keys and exports them to a vault KEK.
struct Onprem {
  p11::Session session;
  p11::TokenInfo token;
  p11::WrapCapabilities caps;

  Onprem();
  p11::KeyObject generate(const KeySpec& spec, const std::string& label);
  byok::ByokFile export_to(const p11::KeyObject& key, const byok::PublicKey& kek,
                           const std::string& kid);
};

// {"kty":"RSA-HSM","key_size":bits,"key_ops":["import"]}
Json kek_params(unsigned bits);
// The KEK public key of a KeyBundle (what `az keyvault key download` would write).
byok::PublicKey public_key_of(const Json& bundle);
// KeyImportParameters for a BYOK blob: {"key":{"kty":..., "crv"?, "key_hsm": b64url(file)}}.
Json byok_body(const std::string& file_text, const std::string& kty, const std::string& crv = "");
// kid without the version.
std::string version_of(const Json& bundle);

// How many rows of the vault's audit log record `operation` with `outcome` ("success", ...).
std::size_t audit_rows(vault::Vault& v, const std::string& operation, const std::string& outcome);

// Expects a Key Vault error with this code, HTTP status and (optionally) inner code.
void expect_kv_error(const Result<Json>& r, std::string_view code, int status,
                     std::string_view inner = {});

// OpenSSL helpers (independent of the vault code).
Bytes digest_of(const std::string& alg, const Bytes& data);
ossl::UniquePtr<EVP_PKEY> openssl_public(const Json& bundle);
bool openssl_verify(EVP_PKEY* pub, const std::string& alg, const Bytes& digest,
                    const Bytes& signature);
Bytes openssl_encrypt(EVP_PKEY* pub, const std::string& alg, const Bytes& plaintext);
// Private JWKs of OpenSSL keys (for plain JWK import).
Json rsa_private_jwk(EVP_PKEY* key);
Json ec_private_jwk(EVP_PKEY* key, const std::string& crv);
// RFC 3394 (or, with `pad`, RFC 5649) with OpenSSL.
Bytes openssl_aes_kw(const Bytes& kek, const Bytes& key, bool pad = false);
// AES with OpenSSL EVP, `mode` "GCM" (16-byte tag), "CBC" (no padding) or "CBCPAD" (PKCS#7).
struct AesCiphertext {
  Bytes ct;
  Bytes tag;  // GCM only
};
AesCiphertext openssl_aes_encrypt(const std::string& mode, const Bytes& key, const Bytes& iv,
                                  const Bytes& aad, const Bytes& plaintext);
// nullopt when OpenSSL refuses the ciphertext (tag or padding).
std::optional<Bytes> openssl_aes_decrypt(const std::string& mode, const Bytes& key, const Bytes& iv,
                                         const Bytes& aad, const Bytes& ct, const Bytes& tag);

}  // namespace keyport::test
