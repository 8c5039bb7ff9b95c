// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/selftest.h"

#include <map>
#include <mutex>
#include <tuple>

#include "core/encoding.h"
#include "core/log.h"
#include "pkcs11/names.h"
#include "pkcs11/selftest_vectors.h"

namespace keyport::p11 {
namespace {

// Known answers.
// Wycheproof aes_kwp_test.json (C2SP/wycheproof, testvectors_v1), tcId 167, "key size=32 data
// size=32", result valid: a 256-bit KEK and a 32-byte key.
constexpr const char* kWycheproofKek =
    "38e1b1d075d9d852b9a6c01c8ff6965af01bac457a4e339ae3e1d7b2ffacc0cd";
constexpr const char* kWycheproofKey =
    "80ad6820f1c90981e2ca42b817a345c1179d0a11d8e23a8adc0505e13d87295a";
constexpr const char* kWycheproofWrapped =
    "b63b7e0fec7e315816233db6758fd3e744b9f6a40862bdf866487e53bcb950d8b2649269e51b4475";
// RFC 5649 §6, the first example: a 192-bit KEK and a 20-byte key.
constexpr const char* kRfcKek = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8";
constexpr const char* kRfcKey = "c37b7e6492584340bed12207808941155068f738";
constexpr const char* kRfcWrapped =
    "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a";

Bytes unhex(const char* h) {
  return *hex_decode(h);
}

bool is_refusal(CK_RV rv) {
  return rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID ||
         rv == CKR_ARGUMENTS_BAD || rv == CKR_FUNCTION_NOT_SUPPORTED;
}

// The verdict for a failed call: a refusal of the mechanism, a missing login, or an error.
Verdict failed_call(CK_RV rv, const Error& e, std::string& detail) {
  detail = e.describe();
  if (rv == CKR_USER_NOT_LOGGED_IN)
    return Verdict::kNeedsLogin;
  return is_refusal(rv) ? Verdict::kRefused : Verdict::kError;
}

// A session secret key made from a known value (not sensitive, so that a test can read back what
// the module unwrapped into its like; extractable when it is the key to be wrapped).
Result<ScopedObject> known_key(const Session& s, CK_KEY_TYPE type, const Bytes& value,
                               bool wrapping) {
  Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(type)
      .token(false)
      .private_object(false)
      .sensitive(false)
      .extractable(!wrapping)
      .wrap(wrapping)
      .unwrap(wrapping)
      .set_secret(CKA_VALUE, SecretBytes(value));
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE h, s.create_object(t));
  return ScopedObject(s, h);
}

// Where an unwrapped test key goes: a session key the test may read back.
Template readable_key(CK_KEY_TYPE type) {
  Template t;
  t.object_class(CKO_SECRET_KEY)
      .key_type(type)
      .token(false)
      .private_object(false)
      .sensitive(false)
      .extractable(true);
  return t;
}

// C_UnwrapKey into a session key of `type` made from `t`. openCryptoki 3.8 refuses CKA_SENSITIVE
// and CKA_EXTRACTABLE in an unwrap template (CKR_ATTRIBUTE_READ_ONLY; its defaults are false and
// true): then once more without them.
Result<CK_OBJECT_HANDLE> unwrap_session_key(const Session& s, const CK_MECHANISM& mech,
                                            CK_OBJECT_HANDLE kek,
                                            std::span<const std::uint8_t> wrapped, Template t,
                                            CK_RV* rv) {
  auto h = s.unwrap_key(mech, kek, wrapped, t, rv);
  if (h || *rv != CKR_ATTRIBUTE_READ_ONLY)
    return h;
  t.remove(CKA_SENSITIVE).remove(CKA_EXTRACTABLE);
  return s.unwrap_key(mech, kek, wrapped, t, rv);
}

// Unwraps `wrapped` under `kek` with `mech` into a readable session key and compares its value
// with `expected`.
Verdict unwrap_compare(const Session& s, const CK_MECHANISM& mech, CK_OBJECT_HANDLE kek,
                       const Bytes& wrapped, CK_KEY_TYPE type, const Bytes& expected,
                       std::string& detail) {
  CK_RV rv = CKR_OK;
  auto h = unwrap_session_key(s, mech, kek, wrapped, readable_key(type), &rv);
  if (!h)
    return failed_call(rv, h.error(), detail);
  ScopedObject out(s, *h);
  auto value = s.read_plain_session_key(out.get());
  if (!value) {
    detail = value.error().describe();
    return Verdict::kError;
  }
  if (!value->ct_equal(SecretBytes(expected))) {
    detail = "unwrapped to other bytes";
    return Verdict::kFailed;
  }
  return Verdict::kPassed;
}

// Wraps the known key (`type`, `key`) under a KEK made from `kek` and compares with `expected`.
Verdict wrap_compare(const Session& s, const CK_MECHANISM& mech, const Bytes& kek, CK_KEY_TYPE type,
                     const Bytes& key, const Bytes& expected, std::string& detail) {
  auto wrapping = known_key(s, CKK_AES, kek, true);
  auto target = known_key(s, type, key, false);
  if (!wrapping || !target) {
    detail = (!wrapping ? wrapping.error() : target.error()).describe();
    return Verdict::kError;
  }
  CK_RV rv = CKR_OK;
  auto out = s.wrap_key(mech, wrapping->get(), target->get(), expected.size() + 64, &rv);
  if (!out)
    return failed_call(rv, out.error(), detail);
  if (*out != expected) {
    detail = "wrapped " + std::to_string(key.size()) + " bytes to " + std::to_string(out->size()) +
             " bytes that are not RFC 5649's (" + std::to_string(expected.size()) + " expected)";
    return Verdict::kFailed;
  }
  return Verdict::kPassed;
}

KwpTest test_kwp(const Session& s, CK_MECHANISM_TYPE m) {
  KwpTest t;
  t.mechanism = m;
  CK_MECHANISM mech{m, nullptr, 0};
  std::string d1, d2, d3;
  t.wrap_multiple_of_8 = wrap_compare(s, mech, unhex(kWycheproofKek), CKK_AES,
                                      unhex(kWycheproofKey), unhex(kWycheproofWrapped), d1);
  if (t.wrap_multiple_of_8 != Verdict::kPassed) {
    t.detail = d1;
    return t;
  }
  t.wrap_any_length = wrap_compare(s, mech, unhex(kRfcKek), CKK_GENERIC_SECRET, unhex(kRfcKey),
                                   unhex(kRfcWrapped), d2);
  auto kek = known_key(s, CKK_AES, unhex(kRfcKek), true);
  if (!kek) {
    t.unwrap = Verdict::kError;
    d3 = kek.error().describe();
  } else {
    t.unwrap = unwrap_compare(s, mech, kek->get(), unhex(kRfcWrapped), CKK_GENERIC_SECRET,
                              unhex(kRfcKey), d3);
  }
  if (t.wrap_any_length == Verdict::kFailed && t.unwrap == Verdict::kPassed) {
    t.detail =
        "RFC 5649 for keys whose length is a multiple of 8; a 20-byte key is padded to 24 "
        "before wrapping (so RSA and EC private keys are wrapped with trailing zero bytes)";
  } else if (!d2.empty() || !d3.empty()) {
    t.detail = !d2.empty() ? d2 : d3;
  }
  return t;
}

struct RsaPair {
  ScopedObject pub;
  ScopedObject priv;
  bool known = false;  // a Wycheproof key: its ciphertext is a known answer
};

const selftest_vectors::OaepCase& oaep_case(OaepHash h) {
  return h == OaepHash::kSha1     ? selftest_vectors::kOaepSha1
         : h == OaepHash::kSha256 ? selftest_vectors::kOaepSha256
                                  : selftest_vectors::kOaepSha384;
}

// The two halves of a session RSA pair for the wrap tests. Without a login the private key is
// made public (CKA_PRIVATE false) where the module allows it.
std::pair<Template, Template> rsa_pair_templates(bool logged_in) {
  Template pub;
  pub.object_class(CKO_PUBLIC_KEY)
      .key_type(CKK_RSA)
      .token(false)
      .private_object(false)
      .wrap(true)
      .encrypt(true);
  Template priv;
  priv.object_class(CKO_PRIVATE_KEY)
      .key_type(CKK_RSA)
      .token(false)
      .private_object(logged_in)
      .sensitive(true)
      .extractable(false)
      .unwrap(true)
      .decrypt(true);
  return {std::move(pub), std::move(priv)};
}

// The Wycheproof test key of `h` imported as a session pair.
Result<RsaPair> known_rsa_pair(const Session& s, OaepHash h, bool logged_in, CK_RV* rv) {
  const auto& c = oaep_case(h);
  auto [pub, priv] = rsa_pair_templates(logged_in);
  pub.modulus(unhex(c.n)).public_exponent(unhex(c.e));
  priv.modulus(unhex(c.n))
      .public_exponent(unhex(c.e))
      .set_secret(CKA_PRIVATE_EXPONENT, SecretBytes(unhex(c.d)))
      .set_secret(CKA_PRIME_1, SecretBytes(unhex(c.p)))
      .set_secret(CKA_PRIME_2, SecretBytes(unhex(c.q)))
      .set_secret(CKA_EXPONENT_1, SecretBytes(unhex(c.dp)))
      .set_secret(CKA_EXPONENT_2, SecretBytes(unhex(c.dq)))
      .set_secret(CKA_COEFFICIENT, SecretBytes(unhex(c.qi)));
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE hpub, s.create_object(pub));
  RsaPair pair{ScopedObject(s, hpub), {}, true};
  KEYPORT_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE hpriv, s.create_object(priv, rv));
  pair.priv = ScopedObject(s, hpriv);
  return pair;
}

// A session RSA-2048 pair made by the module, for modules that refuse to import private keys.
Result<RsaPair> generated_rsa_pair(const Session& s, bool logged_in, CK_RV* rv) {
  static const std::uint8_t e[] = {0x01, 0x00, 0x01};
  auto [pub, priv] = rsa_pair_templates(logged_in);
  pub.modulus_bits(2048).public_exponent(e);
  CK_MECHANISM mech{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  KEYPORT_ASSIGN_OR_RETURN(auto handles, s.generate_key_pair(mech, pub, priv, rv));
  return RsaPair{ScopedObject(s, handles.first), ScopedObject(s, handles.second), false};
}

// The test pair for `h`: the Wycheproof key of that hash, else (a module that refuses imported
// private keys) a generated one.
Result<RsaPair> rsa_pair(const Session& s, OaepHash h, bool logged_in, CK_RV* rv) {
  auto known = known_rsa_pair(s, h, logged_in, rv);
  if (known || *rv == CKR_USER_NOT_LOGGED_IN)
    return known;
  log::debug("self-test: the module refuses to import an RSA test key (" +
             known.error().describe() + "); generating one");
  return generated_rsa_pair(s, logged_in, rv);
}

void test_hashes(const Session& s, SelfTestReport& r, bool oaep_listed, bool native_listed,
                 const KwpTest* kwp) {
  if (!oaep_listed && !native_listed)
    return;
  // The key the tests wrap: AES-256 from a fixed value (the Wycheproof KWP key above, reused).
  const Bytes aes = unhex(kWycheproofKek);
  for (OaepHash h : {OaepHash::kSha1, OaepHash::kSha256, OaepHash::kSha384}) {
    HashTest& t = r.hashes[static_cast<int>(h)];
    CK_RV rv = CKR_OK;
    auto pair = rsa_pair(s, h, r.logged_in, &rv);
    if (!pair) {
      std::string detail;
      const Verdict v = failed_call(rv, pair.error(), detail);
      t.oaep = oaep_listed ? v : Verdict::kNotRun;
      t.native = native_listed ? v : Verdict::kNotRun;
      t.detail = "an RSA-2048 session key pair: " + detail;
      continue;
    }
    CK_RSA_PKCS_OAEP_PARAMS oaep = oaep_params(h);
    CK_MECHANISM rsa{CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
    auto target = known_key(s, CKK_AES, aes, false);
    if (!target) {
      t.oaep = t.native = Verdict::kError;
      t.detail = target.error().describe();
      continue;
    }
    if (oaep_listed) {
      // The known answer first (Wycheproof's ciphertext back to its message), then a round trip of
      // the module's own wrap.
      t.oaep = pair->known ? unwrap_compare(s, rsa, pair->priv.get(), unhex(oaep_case(h).ct),
                                            CKK_AES, unhex(oaep_case(h).msg), t.detail)
                           : Verdict::kPassed;
      if (t.oaep == Verdict::kPassed) {
        auto wrapped = s.wrap_key(rsa, pair->pub.get(), target->get(), 256, &rv);
        t.oaep = wrapped
                     ? unwrap_compare(s, rsa, pair->priv.get(), *wrapped, CKK_AES, aes, t.detail)
                     : failed_call(rv, wrapped.error(), t.detail);
      }
    }
    if (!native_listed)
      continue;
    CK_RSA_AES_KEY_WRAP_PARAMS params{kTransferKeyBytes * 8, &oaep};
    CK_MECHANISM native{CKM_RSA_AES_KEY_WRAP, &params, sizeof params};
    auto blob = s.wrap_key(native, pair->pub.get(), target->get(), 256 + 64, &rv);
    if (!blob) {
      std::string d;
      t.native = failed_call(rv, blob.error(), d);
      t.detail = "CKM_RSA_AES_KEY_WRAP: " + d;
      continue;
    }
    // Taken apart: OAEP of a transfer key, then RFC 5649 of the target under it. Without a proven
    // RSA-OAEP and RFC 5649 for this, the format cannot be checked, and the native mechanism stays
    // unproven.
    if (blob->size() <= 256 || kwp == nullptr || t.oaep != Verdict::kPassed) {
      t.native = Verdict::kNotRun;
      t.detail =
          "CKM_RSA_AES_KEY_WRAP answered, but its output could not be checked without a "
          "proven RSA-OAEP with this hash and a proven RFC 5649 mechanism";
      continue;
    }
    Template transfer = readable_key(CKK_AES);
    transfer.extractable(false).unwrap(true);
    auto th =
        unwrap_session_key(s, rsa, pair->priv.get(), std::span(*blob).first(256), transfer, &rv);
    if (!th) {
      t.native = Verdict::kFailed;
      t.detail = "CKM_RSA_AES_KEY_WRAP: its first 256 bytes are not RSA-OAEP of an AES key";
      continue;
    }
    ScopedObject transfer_key(s, *th);
    CK_MECHANISM kwp_mech{kwp->mechanism, nullptr, 0};
    std::string d;
    t.native = unwrap_compare(s, kwp_mech, transfer_key.get(),
                              Bytes(blob->begin() + 256, blob->end()), CKK_AES, aes, d);
    if (t.native != Verdict::kPassed)
      t.detail = "CKM_RSA_AES_KEY_WRAP: the rest is not RFC 5649 of the key: " + d;
  }
}

bool listed(const std::vector<MechanismInfo>& mechs, CK_MECHANISM_TYPE m, CK_FLAGS need) {
  for (const auto& i : mechs) {
    if (i.type == m)
      return (i.flags & need) == need;
  }
  return false;
}

bool needs_login(const SelfTestReport& r) {
  for (const auto& h : r.hashes) {
    if (h.oaep == Verdict::kNeedsLogin || h.native == Verdict::kNeedsLogin)
      return true;
  }
  return false;
}

using CacheKey = std::tuple<std::string, CK_SLOT_ID, std::string>;

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}
std::map<CacheKey, SelfTestReport>& cache() {
  static std::map<CacheKey, SelfTestReport> c;
  return c;
}

}  // namespace

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::kNotRun:
      return "not run";
    case Verdict::kPassed:
      return "passed";
    case Verdict::kFailed:
      return "failed";
    case Verdict::kRefused:
      return "refused";
    case Verdict::kNeedsLogin:
      return "needs login";
    case Verdict::kError:
      return "error";
  }
  return "";
}

const KwpTest* SelfTestReport::chosen_kwp() const {
  for (const auto& t : kwp) {
    if (t.exact())
      return &t;
  }
  for (const auto& t : kwp) {
    if (t.usable())
      return &t;
  }
  return nullptr;
}

const std::vector<KwpCandidate>& kwp_candidates() {
  static const std::vector<KwpCandidate> c = {
      {CKM_AES_KEY_WRAP_KWP, "CKM_AES_KEY_WRAP_KWP",
       "PKCS#11 3.0 (OASIS), the AES key wrap with padding of NIST SP 800-38F, i.e. RFC 5649"},
      {kCkmLunaAesKwp, "CKM_AES_KWP (Thales Luna)",
       "Thales Luna SDK headers: CKM_VENDOR_DEFINED + 0x171"},
      {kCkmCloudHsmAesKeyWrapZeroPad, "CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD (AWS CloudHSM)",
       "AWS CloudHSM Client SDK 5 vendor header: CKM_VENDOR_DEFINED | 0x216F; RFC 5649 per the "
       "CloudHSM user guide"},
      {CKM_AES_KEY_WRAP_PAD, "CKM_AES_KEY_WRAP_PAD",
       "PKCS#11 2.40/3.0: RFC 3394 over PKCS#7-padded data (NSS softoken); SoftHSM 2.6 gives this "
       "code RFC 5649"},
  };
  return c;
}

Result<SelfTestReport> run_self_tests(const Session& s, const TokenInfo& token,
                                      const std::vector<MechanismInfo>& mechs, bool logged_in) {
  const CacheKey key{s.module().path(), s.slot(), token.label + "\n" + token.serial};
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    auto it = cache().find(key);
    if (it != cache().end() && (it->second.logged_in || !logged_in || !needs_login(it->second)))
      return it->second;
  }
  SelfTestReport r;
  r.logged_in = logged_in;
  for (const auto& c : kwp_candidates()) {
    if (listed(mechs, c.mechanism, CKF_WRAP | CKF_UNWRAP))
      r.kwp.push_back(test_kwp(s, c.mechanism));
  }
  test_hashes(s, r, listed(mechs, CKM_RSA_PKCS_OAEP, CKF_WRAP | CKF_UNWRAP),
              listed(mechs, CKM_RSA_AES_KEY_WRAP, CKF_WRAP), r.chosen_kwp());
  for (const auto& t : r.kwp) {
    log::debug("self-test " + mechanism_name(t.mechanism) + ": multiple of 8 " +
               std::string(to_string(t.wrap_multiple_of_8)) + ", any length " +
               std::string(to_string(t.wrap_any_length)) + ", unwrap " +
               std::string(to_string(t.unwrap)) + (t.detail.empty() ? "" : " (" + t.detail + ")"));
  }
  std::lock_guard<std::mutex> lock(cache_mutex());
  cache()[key] = r;
  return r;
}

}  // namespace keyport::p11
