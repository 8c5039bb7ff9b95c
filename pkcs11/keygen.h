// SPDX-License-Identifier: Apache-2.0
// Portable keys: generated inside the token as sensitive and extractable, so that they can leave
// it only wrapped. Presets for rsa-2048/3072/4096 (e = 65537), ec-p256/p384/p521/p256k and
// aes-128/192/256; lookup and listing of keys by label or PKCS#11 URI.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "pkcs11/session.h"
#include "pkcs11/template.h"

namespace keyport::p11 {

struct KeyGenRequest {
  KeySpec spec;
  std::string label;
  std::optional<Bytes> id;   // random 16 bytes when absent
  bool token_object = true;  // false: session object (benchmarks, ephemeral use)
};

// The templates the presets use (public so tests can check them attribute by attribute).
// Private / secret part: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=TRUE, label,
// id, usage flags that fit the type (RSA sign/decrypt, EC sign, AES encrypt/decrypt/wrap/unwrap).
Template portable_private_template(const KeySpec& spec, std::string_view label,
                                   std::span<const std::uint8_t> id, bool token_object);
Template portable_public_template(const KeySpec& spec, std::string_view label,
                                  std::span<const std::uint8_t> id, bool token_object);
Template portable_secret_template(const KeySpec& spec, std::string_view label,
                                  std::span<const std::uint8_t> id, bool token_object);

// A key object in a token: the private or secret part, and the public part when there is one.
struct KeyObject {
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  CK_OBJECT_CLASS object_class = CKO_PRIVATE_KEY;
  std::optional<CK_OBJECT_HANDLE> public_handle;
  KeySpec spec;
  std::string label;
  Bytes id;
  bool sensitive = false;
  bool extractable = false;
};

// Whether the token can make this portable key type, checked before anything is created: the
// generation mechanism listed with CKF_GENERATE(_KEY_PAIR), the size within the mechanism's range,
// and for EC (modules do not list their curves) a throwaway session key pair on the curve,
// destroyed at once. kUnsupported naming what is missing. With probe_curve false the EC curve is
// not tried; a curve probe that needs a login the session does not have is not held against it.
Status check_can_generate(const Session& session, const KeySpec& spec, bool probe_curve = true);

// Generates a portable key. Fails with kAlreadyExists when an object with this label exists, and
// with kUnsupported when check_can_generate says no, before generating anything. After generation
// reads the attributes back and fails (destroying what it made) if the module did not honour
// sensitive, extractable, token, private, size or curve.
Result<KeyObject> generate_portable_key(const Session& session, const KeyGenRequest& request);

// Reads class, key type and size/curve of a key object. For AES keys with CKA_VALUE_LEN 0 (what
// SoftHSM 2.6.1 reports for unwrapped keys) bits is 0.
Result<KeySpec> key_spec_of(const Session& session, CK_OBJECT_HANDLE handle);

// Finds one private or secret key by PKCS#11 URI (object=, id=, type=) or by plain label.
// kNotFound when none, kInvalidArgument when several match.
Result<KeyObject> find_key(const Session& session, std::string_view uri_or_label);

// Every private and secret key on the token, with its public part where one has the same CKA_ID
// (with_public false skips that search: one C_FindObjects per key saved, for large batches).
// only_class (CKO_PRIVATE_KEY or CKO_SECRET_KEY) searches one class: each C_FindObjects pass
// makes SoftHSM read every object on the token, so a type=private selection halves the search.
Result<std::vector<KeyObject>> list_keys(const Session& session, bool with_public = true,
                                         std::optional<CK_OBJECT_CLASS> only_class = {});

// The object class a PKCS#11 URI's type= names for export: "private" or "secret-key";
// kInvalidArgument for any other (public keys and certificates cannot be exported).
Result<CK_OBJECT_CLASS> exportable_class(std::string_view uri_type);

// Public components of a key pair, read from the public object (RSA n/e; EC curve and point).
struct PublicComponents {
  KeyFamily family = KeyFamily::kRsa;
  Bytes modulus;   // RSA
  Bytes exponent;  // RSA
  std::optional<Curve> curve;
  Bytes ec_point;  // EC: uncompressed point 04||X||Y (the DER OCTET STRING of CKA_EC_POINT removed)
};
Result<PublicComponents> read_public_components(const Session& session, const KeyObject& key);

// AES-ECB of one zero block under the key, computed inside the token (the key needs CKA_ENCRYPT):
// a check value that identifies an AES key without revealing it.
Result<Bytes> aes_check_value(const Session& session, CK_OBJECT_HANDLE aes_key);

// Strips a DER OCTET STRING header from a CKA_EC_POINT value (modules differ: some return the raw
// point). Returns the raw point.
Result<Bytes> ec_point_from_attribute(std::span<const std::uint8_t> value);

}  // namespace keyport::p11
