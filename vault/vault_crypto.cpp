// SPDX-License-Identifier: Apache-2.0
// The key operations: Sign, UnwrapKey/Decrypt and every AES operation (GCM, CBC, CBCPAD, key wrap
// with and without padding) in the token; Verify and RSA Encrypt/WrapKey (public operations) in
// OpenSSL.
#include <mutex>
#include <shared_mutex>

#include "pkcs11/names.h"
#include "vault/vault_impl.h"

namespace keyport::vault {

using detail::family_title;
using detail::spki_of;

Result<SignAlg> Vault::Impl::sign_alg_for(const KeyVersionRecord& r, const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(std::string name, string_member(params, "alg"));
  auto alg = find_sign_alg(name);
  if (!alg) {
    return bad_parameter("Invalid signature algorithm \"" + name + "\".");
  }
  const bool rsa_alg = alg->scheme != SignScheme::kEcdsa;
  if (rsa_alg != (r.spec.family == KeyFamily::kRsa) || r.spec.family == KeyFamily::kAes) {
    return bad_parameter("Algorithm " + name + " cannot be used with a " +
                         family_title(r.spec.family) + " key.");
  }
  if (alg->curve && r.spec.curve != alg->curve) {
    return bad_parameter("Algorithm " + name + " needs curve " +
                         std::string(curve_jwk_name(*alg->curve)) + "; this key is on " +
                         std::string(curve_jwk_name(*r.spec.curve)) + ".");
  }
  return *alg;
}

Result<Json> Vault::Impl::sign(Op& op, std::string_view name, std::string_view version,
                               const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
  KEYPORT_TRY(check_usable(r, "sign", true));
  KEYPORT_ASSIGN_OR_RETURN(SignAlg alg, sign_alg_for(r, params));
  KEYPORT_ASSIGN_OR_RETURN(Bytes digest, base64url_member(params, "value"));
  if (digest.size() != hash_length(alg.hash)) {
    return bad_parameter("The digest for " + std::string(alg.name) + " must be " +
                         std::to_string(hash_length(alg.hash)) + " bytes.");
  }
  op.note = std::string(alg.name);
  auto sig = with_key_object(
      r, r.spec.family, [&](const p11::Session& s, CK_OBJECT_HANDLE h) -> Result<Bytes> {
        switch (alg.scheme) {
          case SignScheme::kPkcs1: {
            CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
            return token_sign(s, h, mech, digest_info(alg.hash, digest));
          }
          case SignScheme::kPss: {
            const p11::ShaMechanisms m = p11::sha_mechanisms(hash_length(alg.hash));
            CK_RSA_PKCS_PSS_PARAMS pss{m.hash, m.mgf, hash_length(alg.hash)};
            CK_MECHANISM mech{CKM_RSA_PKCS_PSS, &pss, sizeof pss};
            return token_sign(s, h, mech, digest);
          }
          case SignScheme::kEcdsa: {
            CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
            return token_sign(s, h, mech, digest);
          }
        }
        return make_error(ErrorCode::kInternal, "unknown signature scheme");
      });
  if (!sig) {
    return tl::unexpected(sig.error());
  }
  return operation_result(kid_of(config.base_url, r.name, r.version), *sig);
}

Result<Json> Vault::Impl::verify(Op& op, std::string_view name, std::string_view version,
                                 const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
  KEYPORT_TRY(check_usable(r, "verify", false));
  KEYPORT_ASSIGN_OR_RETURN(SignAlg alg, sign_alg_for(r, params));
  KEYPORT_ASSIGN_OR_RETURN(Bytes digest, base64url_member(params, "digest"));
  KEYPORT_ASSIGN_OR_RETURN(Bytes signature, base64url_member(params, "value"));
  if (digest.size() != hash_length(alg.hash)) {
    return bad_parameter("The digest for " + std::string(alg.name) + " must be " +
                         std::to_string(hash_length(alg.hash)) + " bytes.");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes spki, spki_of(r));
  KEYPORT_ASSIGN_OR_RETURN(bool ok, verify_digest(spki, alg, digest, signature));
  op.note = std::string(alg.name) + (ok ? ": valid" : ": invalid");
  return Json{{"value", ok}};
}

Result<Json> Vault::Impl::rsa_encrypt(Op& op, const KeyVersionRecord& r, const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(std::string alg_name, string_member(params, "alg"));
  auto padding = find_rsa_enc_alg(alg_name);
  if (!padding) {
    return bad_parameter("Invalid algorithm \"" + alg_name +
                         "\" for an RSA key (RSA1_5, "
                         "RSA-OAEP, RSA-OAEP-256).");
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes plaintext, base64url_secret_member(params, "value"));
  KEYPORT_ASSIGN_OR_RETURN(Bytes spki, spki_of(r));
  KEYPORT_ASSIGN_OR_RETURN(
      Bytes ct, rsa_public_encrypt(spki, *padding, plaintext.reveal(SecretAccess::unsafe())));
  op.note = alg_name;
  return operation_result(kid_of(config.base_url, r.name, r.version), ct);
}

Result<Json> Vault::Impl::rsa_decrypt(Op& op, const KeyVersionRecord& r, const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(std::string alg_name, string_member(params, "alg"));
  auto padding = find_rsa_enc_alg(alg_name);
  if (!padding) {
    return bad_parameter("Invalid algorithm \"" + alg_name +
                         "\" for an RSA key (RSA1_5, "
                         "RSA-OAEP, RSA-OAEP-256).");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes ct, base64url_member(params, "value"));
  const std::size_t k = r.spec.bits / 8;
  if (ct.size() != k) {
    return bad_parameter("The ciphertext must be " + std::to_string(k) +
                         " bytes long for this key.");
  }
  op.note = alg_name;
  auto plain = with_key_object(
      r, KeyFamily::kRsa, [&](const p11::Session& s, CK_OBJECT_HANDLE h) -> Result<SecretBytes> {
        if (*padding == RsaPadding::kPkcs1) {
          CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
          return token_decrypt(s, h, mech, ct, k);
        }
        const HashAlg hash = *padding == RsaPadding::kOaepSha1 ? HashAlg::kSha1 : HashAlg::kSha256;
        bool raw = false;
        auto out = token_oaep_decrypt(s, h, hash, ct, k, &raw);
        if (raw) {
          op.note += " (raw RSA in the token, OAEP decoded on the host)";
        }
        return out;
      });
  if (!plain) {
    if (plain.error().code() == ErrorCode::kIntegrityFailure) {
      return bad_parameter("Decryption failed: " + std::string(kIntegrityMessage) + ".");
    }
    return tl::unexpected(plain.error());
  }
  return operation_result(kid_of(config.base_url, r.name, r.version),
                          plain->reveal(SecretAccess::unsafe()));
}

namespace {

constexpr std::string_view kAesEncAlgs =
    "A128GCM, A192GCM, A256GCM, A128CBC, A192CBC, A256CBC, A128CBCPAD, A192CBCPAD, A256CBCPAD";

// CK_GCM_PARAMS for Managed HSM's AES-GCM (12-byte IV, 128-bit tag); `aad` may be empty.
CK_GCM_PARAMS gcm_params(Bytes& iv, Bytes& aad) {
  CK_GCM_PARAMS p{};
  p.pIv = iv.data();
  p.ulIvLen = static_cast<CK_ULONG>(iv.size());
  p.ulIvBits = static_cast<CK_ULONG>(iv.size() * 8);
  p.pAAD = aad.empty() ? nullptr : aad.data();
  p.ulAADLen = static_cast<CK_ULONG>(aad.size());
  p.ulTagBits = static_cast<CK_ULONG>(kGcmTagBytes * 8);
  return p;
}

CK_MECHANISM_TYPE cbc_mechanism(AesMode mode) {
  return mode == AesMode::kCbcPad ? CKM_AES_CBC_PAD : CKM_AES_CBC;
}

}  // namespace

Result<AesEncAlg> Vault::Impl::aes_enc_alg_for(Op& op, const KeyVersionRecord& r,
                                               const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(std::string alg_name, string_member(params, "alg"));
  auto alg = find_aes_enc_alg(alg_name);
  if (!alg) {
    return bad_parameter("Invalid algorithm \"" + alg_name + "\" for an oct key (" +
                         std::string(kAesEncAlgs) + ").");
  }
  if (alg->bits != r.spec.bits) {
    return bad_parameter("Algorithm " + alg_name + " needs a " + std::to_string(alg->bits) +
                         "-bit key; this key has " + std::to_string(r.spec.bits) + " bits.");
  }
  op.note = alg_name;
  return *alg;
}

Result<Json> Vault::Impl::aes_encrypt(Op& op, const KeyVersionRecord& r, const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(AesEncAlg alg, aes_enc_alg_for(op, r, params));
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes plaintext, base64url_secret_member(params, "value"));
  KEYPORT_ASSIGN_OR_RETURN(std::optional<Bytes> iv_in, optional_base64url_member(params, "iv"));
  KEYPORT_ASSIGN_OR_RETURN(std::optional<Bytes> aad_in, optional_base64url_member(params, "aad"));
  if (member(params, "tag") != nullptr) {
    return bad_parameter("tag is an input of decrypt only.");
  }
  const bool gcm = alg.mode == AesMode::kGcm;
  if (plaintext.size() == 0) {
    return bad_parameter("The plaintext (value) must not be empty.");
  }
  if (gcm && iv_in) {
    return bad_parameter("For AES-GCM the HSM generates the IV: leave iv out of the request.");
  }
  if (!gcm && aad_in) {
    return bad_parameter("aad (additional authenticated data) is for AES-GCM only.");
  }
  if (!gcm && iv_in && iv_in->size() != kAesBlockBytes) {
    return bad_parameter("The IV for AES-CBC must be 16 bytes.");
  }
  if (alg.mode == AesMode::kCbc && plaintext.size() % kAesBlockBytes != 0) {
    return bad_parameter(
        "AES-CBC without padding needs a plaintext whose length is a multiple of 16 bytes (use "
        "the CBCPAD algorithms for other lengths).");
  }
  Bytes aad = aad_in.value_or(Bytes{});
  Bytes iv = iv_in.value_or(Bytes{});
  const std::size_t n = plaintext.size();
  const std::size_t max_out = gcm ? n + kGcmTagBytes : (n / kAesBlockBytes + 1) * kAesBlockBytes;
  auto out = with_key_object(
      r, KeyFamily::kAes, [&](const p11::Session& s, CK_OBJECT_HANDLE h) -> Result<Bytes> {
        if (iv.empty()) {  // from the token's random number generator
          KEYPORT_ASSIGN_OR_RETURN(iv, s.generate_random(gcm ? kGcmIvBytes : kAesBlockBytes));
        }
        auto data = plaintext.reveal(SecretAccess::unsafe());
        if (gcm) {
          CK_GCM_PARAMS p = gcm_params(iv, aad);
          CK_MECHANISM mech{CKM_AES_GCM, &p, sizeof p};
          return token_encrypt(s, h, mech, data, max_out);
        }
        CK_MECHANISM mech{cbc_mechanism(alg.mode), iv.data(), static_cast<CK_ULONG>(iv.size())};
        return token_encrypt(s, h, mech, data, max_out);
      });
  if (!out) {
    return tl::unexpected(out.error());
  }
  Json result;
  if (gcm) {
    if (out->size() != n + kGcmTagBytes) {
      return make_error(ErrorCode::kPkcs11, "the token's AES-GCM output has an unexpected length");
    }
    const auto tag_at = out->end() - static_cast<std::ptrdiff_t>(kGcmTagBytes);
    const Bytes tag(tag_at, out->end());
    out->erase(tag_at, out->end());
    result = operation_result(kid_of(config.base_url, r.name, r.version), *out);
    result["tag"] = base64url_encode(tag);
    if (!aad.empty()) {
      result["aad"] = base64url_encode(aad);
    }
  } else {
    result = operation_result(kid_of(config.base_url, r.name, r.version), *out);
  }
  result["iv"] = base64url_encode(iv);
  return result;
}

Result<Json> Vault::Impl::aes_decrypt(Op& op, const KeyVersionRecord& r, const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(AesEncAlg alg, aes_enc_alg_for(op, r, params));
  KEYPORT_ASSIGN_OR_RETURN(Bytes ct, base64url_member(params, "value"));
  KEYPORT_ASSIGN_OR_RETURN(std::optional<Bytes> iv_in, optional_base64url_member(params, "iv"));
  KEYPORT_ASSIGN_OR_RETURN(std::optional<Bytes> aad_in, optional_base64url_member(params, "aad"));
  KEYPORT_ASSIGN_OR_RETURN(std::optional<Bytes> tag_in, optional_base64url_member(params, "tag"));
  const bool gcm = alg.mode == AesMode::kGcm;
  const std::size_t iv_len = gcm ? kGcmIvBytes : kAesBlockBytes;
  if (!iv_in || iv_in->size() != iv_len) {
    return bad_parameter("Decrypt with " + op.note + " needs the " + std::to_string(iv_len) +
                         "-byte iv that encrypt returned.");
  }
  if (gcm && (!tag_in || tag_in->size() != kGcmTagBytes)) {
    return bad_parameter("Decrypt with " + op.note +
                         " needs the 16-byte tag that encrypt returned.");
  }
  if (!gcm && (tag_in || aad_in)) {
    return bad_parameter("tag and aad are for AES-GCM only.");
  }
  if (gcm ? ct.empty() : (ct.empty() || ct.size() % kAesBlockBytes != 0)) {
    return bad_parameter(gcm ? std::string("The ciphertext (value) must not be empty.")
                             : "An AES-CBC ciphertext is a non-zero multiple of 16 bytes.");
  }
  Bytes iv = std::move(*iv_in);
  Bytes aad = aad_in.value_or(Bytes{});
  if (gcm) {
    ct.insert(ct.end(), tag_in->begin(), tag_in->end());  // PKCS#11 takes ciphertext || tag
  }
  auto plain = with_key_object(
      r, KeyFamily::kAes, [&](const p11::Session& s, CK_OBJECT_HANDLE h) -> Result<SecretBytes> {
        if (gcm) {
          CK_GCM_PARAMS p = gcm_params(iv, aad);
          CK_MECHANISM mech{CKM_AES_GCM, &p, sizeof p};
          return token_decrypt(s, h, mech, ct, ct.size());
        }
        CK_MECHANISM mech{cbc_mechanism(alg.mode), iv.data(), static_cast<CK_ULONG>(iv.size())};
        return token_decrypt(s, h, mech, ct, ct.size());
      });
  if (!plain) {
    if (plain.error().code() == ErrorCode::kIntegrityFailure) {
      return bad_parameter("Decryption failed: " + std::string(kIntegrityMessage) + ".");
    }
    return tl::unexpected(plain.error());
  }
  return operation_result(kid_of(config.base_url, r.name, r.version),
                          plain->reveal(SecretAccess::unsafe()));
}

Result<Json> Vault::Impl::encrypt(Op& op, std::string_view name, std::string_view version,
                                  const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
  KEYPORT_TRY(check_usable(r, "encrypt", true));
  switch (r.spec.family) {
    case KeyFamily::kRsa:
      return rsa_encrypt(op, r, params);
    case KeyFamily::kAes:
      return aes_encrypt(op, r, params);
    case KeyFamily::kEc:
      break;
  }
  return bad_parameter("encrypt is not available for EC keys.");
}

Result<Json> Vault::Impl::decrypt(Op& op, std::string_view name, std::string_view version,
                                  const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
  KEYPORT_TRY(check_usable(r, "decrypt", false));
  switch (r.spec.family) {
    case KeyFamily::kRsa:
      return rsa_decrypt(op, r, params);
    case KeyFamily::kAes:
      return aes_decrypt(op, r, params);
    case KeyFamily::kEc:
      break;
  }
  return bad_parameter("decrypt is not available for EC keys.");
}

Result<AesKwAlg> Vault::Impl::aes_kw_alg_for(Op& op, const KeyVersionRecord& r,
                                             const Json& params) {
  KEYPORT_ASSIGN_OR_RETURN(std::string alg_name, string_member(params, "alg"));
  auto alg = find_aes_kw_alg(alg_name);
  if (!alg) {
    return bad_parameter("Invalid algorithm \"" + alg_name +
                         "\" for an oct key (A128KW, A192KW, A256KW, CKM_AES_KEY_WRAP, "
                         "CKM_AES_KEY_WRAP_PAD).");
  }
  if (alg->bits != 0 && alg->bits != r.spec.bits) {
    return bad_parameter("Algorithm " + alg_name + " needs a " + std::to_string(alg->bits) +
                         "-bit key; this key has " + std::to_string(r.spec.bits) + " bits.");
  }
  op.note = alg_name;
  return *alg;
}

Result<Json> Vault::Impl::key_wrap_op(
    Op& op, std::string_view name, std::string_view version, const Json& params, bool wrapping,
    const std::function<Result<Json>(const KeyVersionRecord&, AesKwAlg)>& aes_kw) {
  const std::string op_name = wrapping ? "wrapKey" : "unwrapKey";
  KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
  KEYPORT_TRY(check_usable(r, op_name, wrapping));
  if (r.spec.family == KeyFamily::kRsa) {
    return wrapping ? rsa_encrypt(op, r, params) : rsa_decrypt(op, r, params);
  }
  if (r.spec.family != KeyFamily::kAes) {
    return bad_parameter(op_name + " is not available for EC keys.");
  }
  KEYPORT_ASSIGN_OR_RETURN(AesKwAlg alg, aes_kw_alg_for(op, r, params));
  return aes_kw(r, alg);
}

Result<Json> Vault::Impl::wrap_key(Op& op, std::string_view name, std::string_view version,
                                   const Json& params) {
  return key_wrap_op(
      op, name, version, params, true,
      [&](const KeyVersionRecord& r, AesKwAlg alg) -> Result<Json> {
        KEYPORT_ASSIGN_OR_RETURN(SecretBytes key_bytes, base64url_secret_member(params, "value"));
        if (key_bytes.size() > 4096) {
          return bad_parameter("The key to wrap must be at most 4096 bytes.");
        }
        if (alg.pad ? key_bytes.size() == 0
                    : (key_bytes.size() < 16 || key_bytes.size() % 8 != 0)) {
          return bad_parameter(alg.pad ? "AES key wrap with padding (RFC 5649) needs a key of 1 "
                                         "or more bytes."
                                       : "AES key wrap (RFC 3394) needs a key of 16 or more "
                                         "bytes, a multiple of 8 (CKM_AES_KEY_WRAP_PAD takes "
                                         "any length).");
        }
        KEYPORT_ASSIGN_OR_RETURN(
            Bytes wrapped,
            with_key_object(r, KeyFamily::kAes, [&](const p11::Session& s, CK_OBJECT_HANDLE h) {
              return token_aes_kw_wrap(s, h, key_bytes, alg.pad);
            }));
        return operation_result(kid_of(config.base_url, r.name, r.version), wrapped);
      });
}

Result<Json> Vault::Impl::unwrap_key(Op& op, std::string_view name, std::string_view version,
                                     const Json& params) {
  return key_wrap_op(
      op, name, version, params, false,
      [&](const KeyVersionRecord& r, AesKwAlg alg) -> Result<Json> {
        KEYPORT_ASSIGN_OR_RETURN(Bytes wrapped, base64url_member(params, "value"));
        const std::size_t min_len = alg.pad ? 16 : 24;
        if (wrapped.size() < min_len || wrapped.size() % 8 != 0 || wrapped.size() > 4112) {
          return bad_parameter(std::string(alg.pad ? "An RFC 5649" : "An RFC 3394") +
                               " wrapped key is " + std::to_string(min_len) +
                               " or more bytes, a multiple of 8.");
        }
        auto key_bytes =
            with_key_object(r, KeyFamily::kAes, [&](const p11::Session& s, CK_OBJECT_HANDLE h) {
              return token_aes_kw_unwrap(s, h, wrapped, alg.pad);
            });
        if (!key_bytes) {
          if (key_bytes.error().code() == ErrorCode::kIntegrityFailure) {
            return bad_parameter("Unwrap failed: " + std::string(kIntegrityMessage) + ".");
          }
          return tl::unexpected(key_bytes.error());
        }
        return operation_result(kid_of(config.base_url, r.name, r.version),
                                key_bytes->reveal(SecretAccess::unsafe()));
      });
}

// ---------------------------------------------------------------------------------------------

Result<Json> Vault::get_random_bytes(const CallContext& ctx, const Json& params) {
  return m_impl->run(ctx, "GetRandomBytes", [&](Op&) -> Result<Json> {
    if (m_impl->config.flavor != Flavor::kManagedHsm) {
      return bad_parameter("GetRandomBytes is a Managed HSM operation; this vault is a Key Vault.");
    }
    const Json* count = member(params, "count");
    if (count == nullptr || !count->is_number_integer() || count->get<std::int64_t>() < 1 ||
        count->get<std::int64_t>() > 128) {
      return bad_parameter("count must be an integer from 1 to 128.");
    }
    KEYPORT_ASSIGN_OR_RETURN(auto lease, m_impl->pool->acquire());
    KEYPORT_ASSIGN_OR_RETURN(Bytes bytes, lease->generate_random(count->get<std::size_t>()));
    return Json{{"value", base64url_encode(bytes)}};
  });
}

Result<Json> Vault::sign(const CallContext& ctx, std::string_view name, std::string_view version,
                         const Json& params) {
  return m_impl->run(ctx, "Sign", [&](Op& op) { return m_impl->sign(op, name, version, params); });
}

Result<Json> Vault::verify(const CallContext& ctx, std::string_view name, std::string_view version,
                           const Json& params) {
  return m_impl->run(ctx, "Verify",
                     [&](Op& op) { return m_impl->verify(op, name, version, params); });
}

Result<Json> Vault::encrypt(const CallContext& ctx, std::string_view name, std::string_view version,
                            const Json& params) {
  return m_impl->run(ctx, "Encrypt",
                     [&](Op& op) { return m_impl->encrypt(op, name, version, params); });
}

Result<Json> Vault::decrypt(const CallContext& ctx, std::string_view name, std::string_view version,
                            const Json& params) {
  return m_impl->run(ctx, "Decrypt",
                     [&](Op& op) { return m_impl->decrypt(op, name, version, params); });
}

Result<Json> Vault::wrap_key(const CallContext& ctx, std::string_view name,
                             std::string_view version, const Json& params) {
  return m_impl->run(ctx, "WrapKey",
                     [&](Op& op) { return m_impl->wrap_key(op, name, version, params); });
}

Result<Json> Vault::unwrap_key(const CallContext& ctx, std::string_view name,
                               std::string_view version, const Json& params) {
  return m_impl->run(ctx, "UnwrapKey",
                     [&](Op& op) { return m_impl->unwrap_key(op, name, version, params); });
}

}  // namespace keyport::vault
