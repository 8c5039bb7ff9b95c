// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/keygen.h"

#include <cstring>

#include "core/random.h"
#include "pkcs11/names.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

namespace keyport::p11 {
namespace {

constexpr std::uint8_t kF4[] = {0x01, 0x00, 0x01};

// Number of significant bits of a big-endian unsigned integer.
unsigned bit_length(std::span<const std::uint8_t> n) {
  std::size_t lead = 0;
  while (lead < n.size() && n[lead] == 0)
    ++lead;
  if (lead == n.size())
    return 0;
  unsigned bits = static_cast<unsigned>((n.size() - lead) * 8);
  for (std::uint8_t top = n[lead]; (top & 0x80) == 0; top <<= 1)
    --bits;
  return bits;
}

// RSA private objects need not carry CKA_MODULUS; fall back to the public object.
Status fill_rsa_bits(const Session& s, const std::optional<CK_OBJECT_HANDLE>& public_handle,
                     KeySpec& spec) {
  if (spec.family != KeyFamily::kRsa || spec.bits != 0 || !public_handle)
    return {};
  KEYPORT_ASSIGN_OR_RETURN(Bytes n, s.get_bytes(*public_handle, CKA_MODULUS));
  spec.bits = bit_length(n);
  return {};
}

Template base(CK_OBJECT_CLASS cls, std::string_view label, std::span<const std::uint8_t> id,
              bool token_object) {
  Template t;
  t.object_class(cls).token(token_object).label(label).id(id);
  return t;
}

Status check_bool(const Session& s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, bool want) {
  KEYPORT_ASSIGN_OR_RETURN(bool got, s.get_bool(h, type));
  if (got != want) {
    return make_error(ErrorCode::kPkcs11, "the module did not honour " + attribute_name(type) +
                                              "=" + (want ? "TRUE" : "FALSE") + " (" +
                                              s.module().description() + ")");
  }
  return {};
}

Status verify_generated(const Session& s, const KeyObject& k, const KeySpec& want,
                        bool token_object) {
  KEYPORT_TRY(check_bool(s, k.handle, CKA_SENSITIVE, true));
  KEYPORT_TRY(check_bool(s, k.handle, CKA_EXTRACTABLE, true));
  KEYPORT_TRY(check_bool(s, k.handle, CKA_TOKEN, token_object));
  KEYPORT_TRY(check_bool(s, k.handle, CKA_PRIVATE, true));
  KEYPORT_ASSIGN_OR_RETURN(KeySpec got, key_spec_of(s, k.handle));
  KEYPORT_TRY(fill_rsa_bits(s, k.public_handle, got));
  if (!(got == want)) {
    return make_error(ErrorCode::kPkcs11,
                      "the module generated " + got.name() + " instead of " + want.name());
  }
  return {};
}

std::optional<CK_OBJECT_HANDLE> find_public_by_id(const Session& s,
                                                  std::span<const std::uint8_t> id) {
  if (id.empty())
    return std::nullopt;
  Template t;
  t.object_class(CKO_PUBLIC_KEY).id(id);
  auto found = s.find_objects(t, 2);
  if (!found || found->size() != 1)
    return std::nullopt;
  return found->front();
}

// Everything keyport needs about a key object in two C_GetAttributeValue calls.
Result<KeyObject> describe_key(const Session& s, CK_OBJECT_HANDLE h, bool with_public = true) {
  KEYPORT_ASSIGN_OR_RETURN(
      auto v, s.get_attributes(h, {CKA_CLASS, CKA_KEY_TYPE, CKA_LABEL, CKA_ID, CKA_SENSITIVE,
                                   CKA_EXTRACTABLE, CKA_EC_PARAMS, CKA_MODULUS, CKA_VALUE_LEN}));
  auto ulong_of = [&](std::size_t i) -> std::optional<CK_ULONG> {
    if (!v[i] || v[i]->size() != sizeof(CK_ULONG))
      return std::nullopt;
    CK_ULONG x;
    std::memcpy(&x, v[i]->data(), sizeof x);
    return x;
  };
  auto bool_of = [&](std::size_t i) { return v[i] && v[i]->size() == 1 && (*v[i])[0] == CK_TRUE; };
  auto cls = ulong_of(0);
  auto key_type = ulong_of(1);
  if (!cls || !key_type)
    return make_error(ErrorCode::kPkcs11, "the token does not say what kind of key this is");
  KeyObject k;
  k.handle = h;
  k.object_class = *cls;
  k.label = v[2] ? std::string(v[2]->begin(), v[2]->end()) : std::string();
  k.id = v[3].value_or(Bytes{});
  k.sensitive = bool_of(4);
  k.extractable = bool_of(5);
  switch (*key_type) {
    case CKK_RSA:
      k.spec.family = KeyFamily::kRsa;
      if (v[7])
        k.spec.bits = bit_length(*v[7]);
      break;
    case CKK_EC: {
      if (!v[6])
        return make_error(ErrorCode::kPkcs11, "EC key without CKA_EC_PARAMS");
      KEYPORT_ASSIGN_OR_RETURN(Curve c, curve_from_oid_der(*v[6]));
      k.spec = {KeyFamily::kEc, curve_bits(c), c};
      break;
    }
    case CKK_AES:
      k.spec.family = KeyFamily::kAes;
      k.spec.bits = static_cast<unsigned>(ulong_of(8).value_or(0) * 8);
      break;
    default:
      return make_error(ErrorCode::kUnsupported, "key type " + std::to_string(*key_type) +
                                                     " is not one keyport handles (RSA, EC, AES)");
  }
  if (k.object_class == CKO_PRIVATE_KEY && with_public) {
    k.public_handle = find_public_by_id(s, k.id);
  }
  KEYPORT_TRY(fill_rsa_bits(s, k.public_handle, k.spec));
  return k;
}

}  // namespace

Template portable_private_template(const KeySpec& spec, std::string_view label,
                                   std::span<const std::uint8_t> id, bool token_object) {
  Template t = base(CKO_PRIVATE_KEY, label, id, token_object);
  t.private_object(true).sensitive(true).extractable(true).sign(true);
  if (spec.family == KeyFamily::kRsa)
    t.decrypt(true);
  return t;
}

Template portable_public_template(const KeySpec& spec, std::string_view label,
                                  std::span<const std::uint8_t> id, bool token_object) {
  Template t = base(CKO_PUBLIC_KEY, label, id, token_object);
  t.private_object(false).verify(true);
  if (spec.family == KeyFamily::kRsa) {
    t.encrypt(true).modulus_bits(spec.bits).public_exponent(kF4);
  } else {
    t.ec_params(curve_oid_der(*spec.curve));
  }
  return t;
}

Template portable_secret_template(const KeySpec& spec, std::string_view label,
                                  std::span<const std::uint8_t> id, bool token_object) {
  Template t = base(CKO_SECRET_KEY, label, id, token_object);
  t.key_type(CKK_AES)
      .value_len(spec.bits / 8)
      .private_object(true)
      .sensitive(true)
      .extractable(true)
      .encrypt(true)
      .decrypt(true)
      .wrap(true)
      .unwrap(true);
  return t;
}

Status check_can_generate(const Session& s, const KeySpec& spec, bool probe_curve) {
  const CK_MECHANISM_TYPE mech = spec.family == KeyFamily::kAes   ? CKM_AES_KEY_GEN
                                 : spec.family == KeyFamily::kRsa ? CKM_RSA_PKCS_KEY_PAIR_GEN
                                                                  : CKM_EC_KEY_PAIR_GEN;
  const CK_FLAGS need = spec.family == KeyFamily::kAes ? CKF_GENERATE : CKF_GENERATE_KEY_PAIR;
  const std::string module = s.module().description();
  KEYPORT_ASSIGN_OR_RETURN(auto mechs, list_mechanisms(s.module(), s.slot()));
  const MechanismInfo* info = nullptr;
  for (const auto& m : mechs) {
    if (m.type == mech)
      info = &m;
  }
  if (info == nullptr || (info->flags & need) == 0) {
    return make_error(ErrorCode::kUnsupported, "the module " + module + " cannot generate " +
                                                   spec.name() + ": it does not offer " +
                                                   mechanism_name(mech));
  }
  // PKCS#11 gives AES key sizes in bytes and RSA and EC sizes in bits; some modules give AES sizes
  // in bits too, which a maximum above 64 gives away.
  CK_ULONG size = spec.bits;
  if (spec.family == KeyFamily::kAes && info->max_key_size <= 64)
    size = spec.bits / 8;
  const bool sized = info->min_key_size != 0 || info->max_key_size != 0;
  if (sized && (size < info->min_key_size || size > info->max_key_size)) {
    return make_error(ErrorCode::kUnsupported,
                      "the module " + module + " cannot generate " + spec.name() + ": " +
                          mechanism_name(mech) + " takes key sizes " +
                          std::to_string(info->min_key_size) + ".." +
                          std::to_string(info->max_key_size) + ", not " + std::to_string(size));
  }
  if (spec.family != KeyFamily::kEc || !probe_curve)
    return {};
  Template pub;
  pub.object_class(CKO_PUBLIC_KEY).key_type(CKK_EC).token(false).private_object(false);
  pub.ec_params(curve_oid_der(*spec.curve)).verify(true);
  Template priv;
  priv.object_class(CKO_PRIVATE_KEY).key_type(CKK_EC).token(false).sensitive(true).sign(true);
  CK_MECHANISM m{mech, nullptr, 0};
  CK_RV rv = CKR_OK;
  auto pair = s.generate_key_pair(m, pub, priv, &rv);
  if (pair) {
    (void)s.destroy_object(pair->second);
    (void)s.destroy_object(pair->first);
    return {};
  }
  if (rv == CKR_DOMAIN_PARAMS_INVALID || rv == CKR_CURVE_NOT_SUPPORTED ||
      rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_ATTRIBUTE_VALUE_INVALID) {
    return make_error(ErrorCode::kUnsupported,
                      "the module " + module + " cannot generate keys on the curve of " +
                          spec.name() + " (" + pair.error().describe() + ")");
  }
  if (rv == CKR_USER_NOT_LOGGED_IN)
    return {};
  return tl::unexpected(pair.error().with_context("trying the curve of " + spec.name()));
}

Result<KeyObject> generate_portable_key(const Session& s, const KeyGenRequest& r) {
  if (r.label.empty())
    return make_error(ErrorCode::kInvalidArgument, "a key needs a label");
  {
    Template by_label;
    by_label.label(r.label);
    KEYPORT_ASSIGN_OR_RETURN(auto existing, s.find_objects(by_label, 1));
    if (!existing.empty()) {
      return make_error(ErrorCode::kAlreadyExists,
                        "an object labelled \"" + r.label + "\" already exists on this token");
    }
  }
  KEYPORT_TRY(check_can_generate(s, r.spec));
  Bytes id = r.id ? *r.id : random_bytes(16);
  KeyObject k;
  k.spec = r.spec;
  k.label = r.label;
  k.id = id;
  const Module& m = s.module();
  if (r.spec.family == KeyFamily::kAes) {
    CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
    CkTemplate t = portable_secret_template(r.spec, r.label, id, r.token_object).lower();
    KEYPORT_TRY(KP11_CALL(m, C_GenerateKey, s.handle(), &mech, t.data(), t.size(), &k.handle));
    k.object_class = CKO_SECRET_KEY;
  } else {
    CK_MECHANISM mech{
        r.spec.family == KeyFamily::kRsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, nullptr,
        0};
    CkTemplate pub = portable_public_template(r.spec, r.label, id, r.token_object).lower();
    CkTemplate priv = portable_private_template(r.spec, r.label, id, r.token_object).lower();
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE;
    KEYPORT_TRY(KP11_CALL(m, C_GenerateKeyPair, s.handle(), &mech, pub.data(), pub.size(),
                          priv.data(), priv.size(), &hpub, &k.handle));
    k.public_handle = hpub;
    k.object_class = CKO_PRIVATE_KEY;
  }
  auto verified = verify_generated(s, k, r.spec, r.token_object);
  if (!verified) {
    (void)s.destroy_object(k.handle);
    if (k.public_handle)
      (void)s.destroy_object(*k.public_handle);
    return tl::unexpected(verified.error());
  }
  k.sensitive = true;
  k.extractable = true;
  return k;
}

Result<KeySpec> key_spec_of(const Session& s, CK_OBJECT_HANDLE h) {
  KEYPORT_ASSIGN_OR_RETURN(CK_ULONG key_type, s.get_ulong(h, CKA_KEY_TYPE));
  KeySpec spec;
  switch (key_type) {
    case CKK_RSA: {
      spec.family = KeyFamily::kRsa;
      KEYPORT_ASSIGN_OR_RETURN(auto n, s.try_get_bytes(h, CKA_MODULUS));
      if (n)
        spec.bits = bit_length(*n);
      return spec;
    }
    case CKK_EC: {
      spec.family = KeyFamily::kEc;
      KEYPORT_ASSIGN_OR_RETURN(Bytes params, s.get_bytes(h, CKA_EC_PARAMS));
      KEYPORT_ASSIGN_OR_RETURN(Curve c, curve_from_oid_der(params));
      spec.curve = c;
      spec.bits = curve_bits(c);
      return spec;
    }
    case CKK_AES: {
      spec.family = KeyFamily::kAes;
      KEYPORT_ASSIGN_OR_RETURN(CK_ULONG len, s.get_ulong(h, CKA_VALUE_LEN));
      spec.bits = static_cast<unsigned>(len * 8);
      return spec;
    }
    default:
      return make_error(ErrorCode::kUnsupported, "key type " + std::to_string(key_type) +
                                                     " is not one keyport handles (RSA, EC, AES)");
  }
}

Result<KeyObject> find_key(const Session& s, std::string_view uri_or_label) {
  Template match;
  std::string what;
  std::optional<CK_OBJECT_CLASS> only_class;
  if (looks_like_uri(uri_or_label)) {
    KEYPORT_ASSIGN_OR_RETURN(Uri uri, Uri::parse(uri_or_label));
    if (!uri.object && !uri.id) {
      return make_error(ErrorCode::kInvalidArgument,
                        "the key URI names no object (add object= or id=)");
    }
    if (uri.object)
      match.label(*uri.object);
    if (uri.id)
      match.id(*uri.id);
    if (uri.type) {
      KEYPORT_ASSIGN_OR_RETURN(only_class, exportable_class(*uri.type));
    }
    what = uri.format();
  } else {
    if (uri_or_label.empty())
      return make_error(ErrorCode::kInvalidArgument, "empty key label");
    match.label(uri_or_label);
    what = "label \"" + std::string(uri_or_label) + "\"";
  }
  std::vector<CK_OBJECT_HANDLE> hits;
  for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_SECRET_KEY}) {
    if (only_class && *only_class != cls)
      continue;
    Template t = match;
    t.object_class(cls);
    KEYPORT_ASSIGN_OR_RETURN(auto found, s.find_objects(t, 16));
    hits.insert(hits.end(), found.begin(), found.end());
  }
  if (hits.empty()) {
    return make_error(ErrorCode::kNotFound, "no private or secret key with " + what +
                                                " on this token "
                                                "(log in? `keyport key list` shows the keys)");
  }
  if (hits.size() > 1) {
    return make_error(ErrorCode::kInvalidArgument, std::to_string(hits.size()) + " keys match " +
                                                       what + "; name one by id= in a PKCS#11 URI");
  }
  return describe_key(s, hits.front());
}

Result<CK_OBJECT_CLASS> exportable_class(std::string_view uri_type) {
  if (uri_type == "private")
    return CKO_PRIVATE_KEY;
  if (uri_type == "secret-key")
    return CKO_SECRET_KEY;
  return make_error(ErrorCode::kInvalidArgument, "type=" + std::string(uri_type) +
                                                     " cannot be exported; use type=private or "
                                                     "type=secret-key");
}

Result<std::vector<KeyObject>> list_keys(const Session& s, bool with_public,
                                         std::optional<CK_OBJECT_CLASS> only_class) {
  std::vector<KeyObject> out;
  for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_SECRET_KEY}) {
    if (only_class && *only_class != cls)
      continue;
    Template t;
    t.object_class(cls);
    KEYPORT_ASSIGN_OR_RETURN(auto found, s.find_objects(t));
    for (CK_OBJECT_HANDLE h : found) {
      auto k = describe_key(s, h, with_public);
      if (k) {
        out.push_back(std::move(*k));
      } else if (k.error().code() != ErrorCode::kUnsupported) {
        return tl::unexpected(k.error());
      }
    }
  }
  return out;
}

Result<Bytes> ec_point_from_attribute(std::span<const std::uint8_t> v) {
  // DER OCTET STRING: 04 len point, where point itself starts with 04 (uncompressed).
  if (v.size() >= 2 && v[0] == 0x04) {
    std::size_t len = 0;
    std::size_t hdr = 2;
    if (v[1] < 0x80) {
      len = v[1];
    } else if (v[1] == 0x81 && v.size() >= 3) {
      len = v[2];
      hdr = 3;
    } else if (v[1] == 0x82 && v.size() >= 4) {
      len = (static_cast<std::size_t>(v[2]) << 8) | v[3];
      hdr = 4;
    }
    if (len != 0 && hdr + len == v.size() && v[hdr] == 0x04)
      return Bytes(v.begin() + hdr, v.end());
  }
  if (!v.empty() && v[0] == 0x04 && v.size() % 2 == 1)
    return Bytes(v.begin(), v.end());
  return make_error(ErrorCode::kFormat,
                    "CKA_EC_POINT is neither a DER OCTET STRING nor an uncompressed point");
}

Result<PublicComponents> read_public_components(const Session& s, const KeyObject& key) {
  if (!key.public_handle) {
    return make_error(ErrorCode::kNotFound,
                      "key \"" + key.label + "\" has no public key object with the same CKA_ID");
  }
  PublicComponents p;
  p.family = key.spec.family;
  CK_OBJECT_HANDLE h = *key.public_handle;
  if (key.spec.family == KeyFamily::kRsa) {
    KEYPORT_ASSIGN_OR_RETURN(p.modulus, s.get_bytes(h, CKA_MODULUS));
    KEYPORT_ASSIGN_OR_RETURN(p.exponent, s.get_bytes(h, CKA_PUBLIC_EXPONENT));
  } else if (key.spec.family == KeyFamily::kEc) {
    KEYPORT_ASSIGN_OR_RETURN(Bytes params, s.get_bytes(h, CKA_EC_PARAMS));
    KEYPORT_ASSIGN_OR_RETURN(Curve c, curve_from_oid_der(params));
    p.curve = c;
    KEYPORT_ASSIGN_OR_RETURN(Bytes point, s.get_bytes(h, CKA_EC_POINT));
    KEYPORT_ASSIGN_OR_RETURN(p.ec_point, ec_point_from_attribute(point));
  } else {
    return make_error(ErrorCode::kInvalidArgument, "AES keys have no public part");
  }
  return p;
}

Result<Bytes> aes_check_value(const Session& s, CK_OBJECT_HANDLE aes_key) {
  CK_MECHANISM mech{CKM_AES_ECB, nullptr, 0};
  KEYPORT_TRY(KP11_CALL(s.module(), C_EncryptInit, s.handle(), &mech, aes_key));
  std::uint8_t zero[16] = {};
  Bytes out(16);
  CK_ULONG len = out.size();
  KEYPORT_TRY(KP11_CALL(s.module(), C_Encrypt, s.handle(), zero, CK_ULONG{16}, out.data(), &len));
  out.resize(len);
  return out;
}

}  // namespace keyport::p11
