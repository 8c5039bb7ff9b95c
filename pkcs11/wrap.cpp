// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/wrap.h"

#include <algorithm>

#include "core/log.h"
#include "core/random.h"
#include "pkcs11/names.h"

namespace keyport::p11 {
namespace {

// Return values that say the module refused the mechanism parameters (the hash), not the data.
bool is_param_refusal(CK_RV rv) {
  return rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_PARAM_INVALID ||
         rv == CKR_MECHANISM_INVALID;
}

// Return values that cannot depend on the ciphertext: environment trouble, reported as such.
bool is_environment_failure(CK_RV rv) {
  switch (rv) {
    case CKR_HOST_MEMORY:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_UNWRAPPING_KEY_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OPERATION_ACTIVE:
      return true;
    default:
      return false;
  }
}

Error hash_refused(const WrapCapabilities& caps, WrapAlg alg) {
  return Error(
      ErrorCode::kUnsupported,
      "the module " + caps.module + " (" + caps.token + ") refuses RSA-OAEP with " +
          std::string(to_string(wrap_alg_hash(alg))) + ", which enc " +
          std::string(wrap_alg_name(alg)) +
          " needs; keyport never falls back to another hash. Use --enc CKM_RSA_AES_KEY_WRAP "
          "(OAEP SHA-1, what Azure's BYOK specification asks for) or a module that supports it");
}

// A fresh AES-256 session key for one transfer: sensitive, extractable (it must be wrapped by the
// KEK), usable only for wrapping (export) or unwrapping (import).
Template transfer_key_template(bool for_wrap) {
  Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(CKK_AES)
      .token(false)
      .private_object(true)
      .sensitive(true)
      .extractable(for_wrap)
      .encrypt(false)
      .decrypt(false)
      .sign(false)
      .verify(false)
      .derive(false)
      .wrap(for_wrap)
      .unwrap(!for_wrap);
  return t;
}

Result<ScopedObject> generate_transfer_key(const Session& s, bool private_object = true) {
  Template t = transfer_key_template(true);
  t.value_len(kTransferKeyBytes).private_object(private_object);
  CkTemplate ck = t.lower();
  CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  KEYPORT_TRY(KP11_CALL(s.module(), C_GenerateKey, s.handle(), &mech, ck.data(), ck.size(), &h));
  return ScopedObject(s, h);
}

Result<Bytes> wrap_once(const Session& s, CK_MECHANISM* mech, CK_OBJECT_HANDLE wrapping,
                        CK_OBJECT_HANDLE key, std::size_t guess, CK_RV* out_rv = nullptr) {
  return s.wrap_key(*mech, wrapping, key, guess, out_rv);
}

Error explain_wrap_failure(const Error& e, const char* step) {
  std::string hint;
  switch (e.rv().value_or(CKR_OK)) {
    case CKR_KEY_UNEXTRACTABLE:
      hint =
          ": the target key is not extractable (CKA_EXTRACTABLE=FALSE), so it can never leave this "
          "token; "
          "generate portable keys with `keyport key generate`";
      break;
    case CKR_KEY_NOT_WRAPPABLE:
      hint = ": the token refuses to wrap this key (CKA_WRAP_WITH_TRUSTED or a wrap template)";
      break;
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
      hint = ": the wrapping key does not allow wrapping (CKA_WRAP=FALSE)";
      break;
    default:
      break;
  }
  return e.with_context(std::string(step) + hint);
}

Result<Bytes> wrap_native(const Session& s, const WrapCapabilities& caps, WrapAlg alg,
                          CK_OBJECT_HANDLE kek, std::size_t modulus_bytes,
                          CK_OBJECT_HANDLE target) {
  CK_RSA_PKCS_OAEP_PARAMS oaep = oaep_params(wrap_alg_hash(alg));
  CK_RSA_AES_KEY_WRAP_PARAMS params{kTransferKeyBytes * 8, &oaep};
  CK_MECHANISM mech{CKM_RSA_AES_KEY_WRAP, &params, sizeof params};
  CK_RV rv = CKR_OK;
  auto out = wrap_once(s, &mech, kek, target, modulus_bytes + 4096 + 16, &rv);
  if (!out) {
    if (is_param_refusal(rv))
      return tl::unexpected(hash_refused(caps, alg));
    return tl::unexpected(explain_wrap_failure(out.error(), "wrapping with CKM_RSA_AES_KEY_WRAP"));
  }
  return out;
}

Result<Bytes> wrap_composite(const Session& s, const WrapCapabilities& caps, WrapAlg alg,
                             CK_OBJECT_HANDLE kek, std::size_t modulus_bytes,
                             CK_OBJECT_HANDLE target) {
  KEYPORT_ASSIGN_OR_RETURN(ScopedObject transfer, generate_transfer_key(s));
  CK_MECHANISM kwp{*caps.kwp, nullptr, 0};
  auto wrapped_target = wrap_once(s, &kwp, transfer.get(), target, 4096);
  if (!wrapped_target) {
    return tl::unexpected(
        explain_wrap_failure(wrapped_target.error(), "wrapping the target key (AES-KWP)"));
  }
  CK_RSA_PKCS_OAEP_PARAMS oaep = oaep_params(wrap_alg_hash(alg));
  CK_MECHANISM rsa{CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
  CK_RV rv = CKR_OK;
  auto wrapped_transfer = wrap_once(s, &rsa, kek, transfer.get(), modulus_bytes, &rv);
  if (!wrapped_transfer) {
    if (is_param_refusal(rv))
      return tl::unexpected(hash_refused(caps, alg));
    return tl::unexpected(
        explain_wrap_failure(wrapped_transfer.error(), "wrapping the transfer key (RSA-OAEP)"));
  }
  if (wrapped_transfer->size() != modulus_bytes) {
    return make_error(ErrorCode::kPkcs11,
                      "RSA-OAEP output is " + std::to_string(wrapped_transfer->size()) +
                          " bytes, not the KEK modulus length " + std::to_string(modulus_bytes));
  }
  KEYPORT_TRY(transfer.destroy());
  Bytes out = std::move(*wrapped_transfer);
  out.insert(out.end(), wrapped_target->begin(), wrapped_target->end());
  return out;
}

}  // namespace

std::string_view to_string(WrapStrategy s) {
  switch (s) {
    case WrapStrategy::kAuto:
      return "auto";
    case WrapStrategy::kNative:
      return "native";
    case WrapStrategy::kComposite:
      return "composite";
  }
  return "";
}

Result<WrapStrategy> parse_wrap_strategy(std::string_view name) {
  if (name == "auto")
    return WrapStrategy::kAuto;
  if (name == "native")
    return WrapStrategy::kNative;
  if (name == "composite")
    return WrapStrategy::kComposite;
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown strategy \"" + std::string(name) + "\" (auto, native, composite)");
}

Result<WrapCapabilities> probe_wrap_capabilities(const Session& s, const TokenInfo& token,
                                                 bool self_test) {
  WrapCapabilities caps;
  caps.module = s.module().description();
  caps.token = token.manufacturer + " " + token.model + " firmware " + token.firmware();
  KEYPORT_ASSIGN_OR_RETURN(auto mechs, list_mechanisms(s.module(), s.slot()));
  std::vector<CK_MECHANISM_TYPE> kwp_listed;
  for (const auto& m : mechs) {
    bool w = (m.flags & CKF_WRAP) != 0;
    bool u = (m.flags & CKF_UNWRAP) != 0;
    switch (m.type) {
      case CKM_RSA_AES_KEY_WRAP:
        caps.native_wrap = w;
        caps.native_unwrap = u;
        break;
      case CKM_AES_KEY_GEN:
        caps.aes_keygen = true;
        break;
      case CKM_RSA_PKCS_OAEP:
        caps.oaep_wrap = w;
        caps.oaep_unwrap = u;
        break;
      default:
        if (w && u)
          kwp_listed.push_back(m.type);
        break;
    }
  }
  if (!self_test) {
    // The list only: the first RFC 5649 candidate listed, unproven.
    for (const auto& c : kwp_candidates()) {
      if (std::find(kwp_listed.begin(), kwp_listed.end(), c.mechanism) != kwp_listed.end()) {
        caps.kwp = c.mechanism;
        break;
      }
    }
    return caps;
  }
  KEYPORT_ASSIGN_OR_RETURN(caps.self_test, run_self_tests(s, token, mechs, s.user_logged_in()));
  if (const KwpTest* k = caps.self_test->chosen_kwp()) {
    caps.kwp = k->mechanism;
    caps.kwp_exact = k->exact();
  }
  auto known = [](Verdict v) -> std::optional<bool> {
    if (v == Verdict::kPassed)
      return true;
    if (v == Verdict::kFailed || v == Verdict::kRefused)
      return false;
    return std::nullopt;
  };
  for (OaepHash h : {OaepHash::kSha1, OaepHash::kSha256, OaepHash::kSha384}) {
    const HashTest& t = caps.self_test->hash(h);
    caps.oaep_hash[static_cast<int>(h)] = known(t.oaep);
    caps.native_hash[static_cast<int>(h)] = known(t.native);
  }
  return caps;
}

Result<WrapStrategy> choose_strategy(const WrapCapabilities& caps, WrapStrategy requested,
                                     WrapAlg alg) {
  auto composite_missing = [&]() {
    std::string missing;
    if (!caps.kwp) {
      missing += caps.self_test && !caps.self_test->kwp.empty()
                     ? " a mechanism that wraps as RFC 5649 (the self-tests of the listed "
                       "candidates failed: see keyport token info);"
                     : " AES key wrap with padding (RFC 5649: CKM_AES_KEY_WRAP_KWP or a "
                       "vendor's code) for wrap and unwrap;";
    }
    if (!caps.aes_keygen)
      missing += " CKM_AES_KEY_GEN;";
    if (!caps.oaep_wrap)
      missing += " CKM_RSA_PKCS_OAEP for wrapping;";
    return missing;
  };
  const OaepHash hash = wrap_alg_hash(alg);
  WrapStrategy chosen = requested;
  if (requested == WrapStrategy::kAuto) {
    chosen = caps.native_ok(hash) ? WrapStrategy::kNative : WrapStrategy::kComposite;
  }
  if (chosen == WrapStrategy::kNative && !caps.native_wrap) {
    return make_error(ErrorCode::kUnsupported,
                      "the module " + caps.module +
                          " does not offer CKM_RSA_AES_KEY_WRAP for wrapping; "
                          "use --strategy composite (or auto)");
  }
  if (chosen == WrapStrategy::kNative && !caps.native_ok(hash)) {
    const HashTest& t = caps.self_test->hash(hash);
    return make_error(
        ErrorCode::kUnsupported,
        "the module " + caps.module + " lists CKM_RSA_AES_KEY_WRAP, but its self-test " +
            "with OAEP " + std::string(to_string(hash)) + " did not pass (" +
            std::string(to_string(t.native)) + (t.detail.empty() ? "" : ": " + t.detail) +
            "); keyport does not build a .byok with an unproven mechanism");
  }
  if (chosen == WrapStrategy::kComposite) {
    if (!caps.composite_possible()) {
      return make_error(ErrorCode::kUnsupported,
                        "the module " + caps.module +
                            " lacks what the composite wrap needs:" + composite_missing());
    }
    if (!caps.hash_ok(wrap_alg_hash(alg)))
      return tl::unexpected(hash_refused(caps, alg));
  }
  return chosen;
}

Result<ScopedObject> import_rsa_public_key(const Session& s, std::span<const std::uint8_t> modulus,
                                           std::span<const std::uint8_t> exponent) {
  Template t;
  t.object_class(CKO_PUBLIC_KEY)
      .key_type(CKK_RSA)
      .token(false)
      .private_object(false)
      .wrap(true)
      .encrypt(true)
      .verify(false)
      .modulus(modulus)
      .public_exponent(exponent);
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE h, s.create_object(t));
  return ScopedObject(s, h);
}

Result<Bytes> wrap_rsa_aes(const Session& s, const WrapCapabilities& caps, WrapStrategy strategy,
                           WrapAlg alg, CK_OBJECT_HANDLE kek_public, std::size_t modulus_bytes,
                           CK_OBJECT_HANDLE target) {
  KEYPORT_ASSIGN_OR_RETURN(WrapStrategy chosen, choose_strategy(caps, strategy, alg));
  if (chosen == WrapStrategy::kNative)
    return wrap_native(s, caps, alg, kek_public, modulus_bytes, target);
  return wrap_composite(s, caps, alg, kek_public, modulus_bytes, target);
}

Result<CK_OBJECT_HANDLE> unwrap_rsa_aes(const Session& s, const WrapCapabilities& caps,
                                        WrapStrategy strategy, WrapAlg alg,
                                        CK_OBJECT_HANDLE kek_private, std::size_t modulus_bytes,
                                        std::span<const std::uint8_t> ciphertext,
                                        const Template& target_template) {
  if (target_template.has(CKA_VALUE_LEN)) {
    return make_error(ErrorCode::kInternal, "unwrap templates must not carry CKA_VALUE_LEN");
  }
  bool native =
      strategy == WrapStrategy::kNative ||
      (strategy == WrapStrategy::kAuto && caps.native_unwrap && caps.native_ok(wrap_alg_hash(alg)));
  if (native && !caps.native_unwrap) {
    return make_error(
        ErrorCode::kUnsupported,
        "the module " + caps.module + " does not offer CKM_RSA_AES_KEY_WRAP for unwrapping");
  }
  if (!native) {
    if (!caps.composite_unwrap_possible()) {
      return make_error(
          ErrorCode::kUnsupported,
          "the module " + caps.module + " lacks CKM_RSA_PKCS_OAEP or AES-KWP for unwrapping");
    }
    if (!caps.hash_ok(wrap_alg_hash(alg)))
      return tl::unexpected(hash_refused(caps, alg));
  }
  // Lengths are public: a blob too short for the KEK is a format error, checked before any crypto.
  if (ciphertext.size() < modulus_bytes + 16 || (ciphertext.size() - modulus_bytes) % 8 != 0) {
    return integrity_error();
  }
  CkTemplate target = target_template.lower();
  CK_RSA_PKCS_OAEP_PARAMS oaep = oaep_params(wrap_alg_hash(alg));
  const Module& m = s.module();
  CK_OBJECT_HANDLE out = CK_INVALID_HANDLE;

  auto classify = [&](CK_RV rv, const char* fn) -> Error {
    if (is_environment_failure(rv))
      return pkcs11_error(rv, fn);
    if (is_param_refusal(rv))
      return hash_refused(caps, alg);
    log::debug(std::string(fn) + " failed during unwrap with " + std::string(rv_name(rv)));
    return integrity_error().value();
  };

  if (native) {
    CK_RSA_AES_KEY_WRAP_PARAMS params{kTransferKeyBytes * 8, &oaep};
    CK_MECHANISM mech{CKM_RSA_AES_KEY_WRAP, &params, sizeof params};
    CK_RV rv = KP11_CALL_RV(
        m, C_UnwrapKey, s.handle(), &mech, kek_private, const_cast<CK_BYTE*>(ciphertext.data()),
        static_cast<CK_ULONG>(ciphertext.size()), target.data(), target.size(), &out);
    if (rv != CKR_OK)
      return tl::unexpected(classify(rv, "C_UnwrapKey"));
    return out;
  }

  // Step 1: the transfer key, unwrapped with RSA-OAEP into a session object.
  CkTemplate transfer_t = transfer_key_template(false).lower();
  CK_MECHANISM rsa{CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
  CK_OBJECT_HANDLE transfer_h = CK_INVALID_HANDLE;
  CK_RV rv1 = KP11_CALL_RV(
      m, C_UnwrapKey, s.handle(), &rsa, kek_private, const_cast<CK_BYTE*>(ciphertext.data()),
      static_cast<CK_ULONG>(modulus_bytes), transfer_t.data(), transfer_t.size(), &transfer_h);
  ScopedObject transfer;
  if (rv1 == CKR_OK) {
    transfer = ScopedObject(s, transfer_h);
  } else {
    if (is_environment_failure(rv1) || is_param_refusal(rv1))
      return tl::unexpected(classify(rv1, "C_UnwrapKey"));
    // Do the same work as on success with a random key, so that an RSA failure and a KWP failure
    // cannot be told apart by what follows.
    auto decoy = generate_transfer_key(s);
    if (!decoy)
      return tl::unexpected(decoy.error());
    transfer = std::move(*decoy);
  }
  // Step 2: the target, unwrapped with AES-KWP under the transfer key.
  CK_MECHANISM kwp{*caps.kwp, nullptr, 0};
  std::span<const std::uint8_t> kwp_part = ciphertext.subspan(modulus_bytes);
  CK_RV rv2 = KP11_CALL_RV(
      m, C_UnwrapKey, s.handle(), &kwp, transfer.get(), const_cast<CK_BYTE*>(kwp_part.data()),
      static_cast<CK_ULONG>(kwp_part.size()), target.data(), target.size(), &out);
  KEYPORT_TRY(transfer.destroy());
  if (rv1 != CKR_OK) {
    if (rv2 == CKR_OK)
      (void)s.destroy_object(out);
    return tl::unexpected(classify(rv1, "C_UnwrapKey"));
  }
  if (rv2 != CKR_OK)
    return tl::unexpected(classify(rv2, "C_UnwrapKey"));
  return out;
}

}  // namespace keyport::p11
