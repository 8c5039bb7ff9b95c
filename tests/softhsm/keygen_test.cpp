// SPDX-License-Identifier: Apache-2.0
// Portable key generation on SoftHSM2: every preset, attribute by attribute.
#include <catch2/catch.hpp>

#include "core/algorithms.h"
#include "pkcs11/keygen.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "tests/support/softhsm.h"
#include "tests/support/support.h"

using namespace keyport;

TEST_CASE("every preset generates a sensitive key that leaves the token only wrapped",
          "[softhsm][keygen][slow]") {
  auto& hsm = test::SoftHsm::get();
  auto s = hsm.login(test::kOnpremToken);
  for (const auto& spec : all_key_specs()) {
    INFO(spec.name());
    p11::KeyGenRequest req;
    req.spec = spec;
    req.label = "k-" + spec.name();
    auto key = p11::generate_portable_key(s, req);
    REQUIRE_OK(key);
    CHECK(key->spec == spec);
    CHECK(key->id.size() == 16);
    // Read back every attribute the preset promises, straight from the token.
    for (auto [attr, want] :
         std::initializer_list<std::pair<CK_ATTRIBUTE_TYPE, bool>>{{CKA_TOKEN, true},
                                                                   {CKA_PRIVATE, true},
                                                                   {CKA_SENSITIVE, true},
                                                                   {CKA_EXTRACTABLE, true},
                                                                   {CKA_NEVER_EXTRACTABLE, false},
                                                                   {CKA_ALWAYS_SENSITIVE, true},
                                                                   {CKA_LOCAL, true}}) {
      auto got = s.get_bool(key->handle, attr);
      REQUIRE_OK(got);
      CHECK(*got == want);
    }
    CHECK(*s.get_string(key->handle, CKA_LABEL) == req.label);
    CHECK(*s.get_bytes(key->handle, CKA_ID) == key->id);
    if (spec.family == KeyFamily::kAes) {
      CHECK(*s.get_ulong(key->handle, CKA_VALUE_LEN) == spec.bits / 8);
      CHECK(*s.get_bool(key->handle, CKA_ENCRYPT));
      CHECK(*s.get_bool(key->handle, CKA_WRAP));
      CHECK_FALSE(key->public_handle.has_value());
    } else {
      REQUIRE(key->public_handle.has_value());
      CHECK(*s.get_bool(key->handle, CKA_SIGN));
      CHECK(*s.get_bool(*key->public_handle, CKA_VERIFY));
      CHECK_FALSE(*s.get_bool(*key->public_handle, CKA_PRIVATE));
      CHECK(*s.get_bytes(*key->public_handle, CKA_ID) == key->id);
      auto pub = p11::read_public_components(s, *key);
      REQUIRE_OK(pub);
      if (spec.family == KeyFamily::kRsa) {
        CHECK(pub->modulus.size() == spec.bits / 8);
        CHECK(pub->exponent == Bytes{0x01, 0x00, 0x01});
      } else {
        CHECK(pub->curve == spec.curve);
        CHECK(pub->ec_point.size() == 1 + 2 * curve_field_bytes(*spec.curve));
      }
    }
    // The secret value is never readable.
    auto value = s.try_get_bytes(key->handle, CKA_VALUE);
    CHECK_ERROR_CODE(value, ErrorCode::kInternal);
  }
}

TEST_CASE("generation refuses a label that already exists before generating", "[softhsm][keygen]") {
  auto& hsm = test::SoftHsm::get();
  auto s = hsm.login(test::kOnpremToken);
  p11::KeyGenRequest req;
  req.spec = *parse_key_spec("ec-p256");
  req.label = "dup";
  REQUIRE_OK(p11::generate_portable_key(s, req));
  std::size_t before = s.find_objects(p11::Template{})->size();
  req.spec = *parse_key_spec("aes-128");
  CHECK_ERROR_CODE(p11::generate_portable_key(s, req), ErrorCode::kAlreadyExists);
  CHECK(s.find_objects(p11::Template{})->size() == before);
}

TEST_CASE("keys are found by label and by PKCS#11 URI and listed with their type",
          "[softhsm][keygen]") {
  auto& hsm = test::SoftHsm::get();
  auto s = hsm.login(test::kOnpremToken);
  p11::KeyGenRequest req;
  req.spec = *parse_key_spec("ec-p384");
  req.label = "finder";
  req.id = Bytes{0xca, 0xfe};
  REQUIRE_OK(p11::generate_portable_key(s, req));
  auto by_label = p11::find_key(s, "finder");
  REQUIRE_OK(by_label);
  CHECK(by_label->spec.name() == "ec-p384");
  auto by_uri = p11::find_key(s, "pkcs11:token=onprem;id=%CA%FE;type=private");
  REQUIRE_OK(by_uri);
  CHECK(by_uri->handle == by_label->handle);
  CHECK_ERROR_CODE(p11::find_key(s, "absent"), ErrorCode::kNotFound);
  CHECK_ERROR_CODE(p11::find_key(s, "pkcs11:object=finder;type=public"),
                   ErrorCode::kInvalidArgument);
  auto all = p11::list_keys(s);
  REQUIRE_OK(all);
  REQUIRE(all->size() == 1);
  CHECK(all->front().public_handle.has_value());
}

TEST_CASE("a wrong PIN is an authentication error and a missing token is not found", "[softhsm]") {
  auto& hsm = test::SoftHsm::get();
  auto session = p11::Session::open(hsm.module(), hsm.slot(test::kOnpremToken).id);
  REQUIRE_OK(session);
  auto st = session->login(SecretBytes::from_string("0000"));
  CHECK_ERROR_CODE(st, ErrorCode::kAuth);
  CHECK_THAT(st.error().message(), Catch::Contains("wrong PIN"));
  p11::Uri uri;
  uri.token = "no-such-token";
  auto missing = p11::find_token(*hsm.module(), uri);
  CHECK_ERROR_CODE(missing, ErrorCode::kNotFound);
  CHECK_THAT(missing.error().message(), Catch::Contains("onprem"));
}

TEST_CASE("probing SoftHSM 2.6.1 finds the composite route with OAEP SHA-1 only",
          "[softhsm][wrap]") {
  auto& hsm = test::SoftHsm::get();
  auto s = hsm.login(test::kOnpremToken);
  auto info = p11::token_info(*hsm.module(), s.slot());
  REQUIRE_OK(info);
  auto caps = p11::probe_wrap_capabilities(s, *info);
  REQUIRE_OK(caps);
  CHECK_FALSE(caps->native_wrap);
  CHECK(caps->kwp == CKM_AES_KEY_WRAP_PAD);
  CHECK(caps->oaep_hash[0] == true);
  CHECK(caps->oaep_hash[1] == false);
  CHECK(caps->oaep_hash[2] == false);
  CHECK(*p11::choose_strategy(*caps, p11::WrapStrategy::kAuto, WrapAlg::kRsaAesKeyWrap) ==
        p11::WrapStrategy::kComposite);
  CHECK_ERROR_CODE(p11::choose_strategy(*caps, p11::WrapStrategy::kNative, WrapAlg::kRsaAesKeyWrap),
                   ErrorCode::kUnsupported);
  auto sha256 = p11::choose_strategy(*caps, p11::WrapStrategy::kAuto, WrapAlg::kRsaAesKeyWrap256);
  CHECK_ERROR_CODE(sha256, ErrorCode::kUnsupported);
  CHECK_THAT(sha256.error().message(), Catch::Contains("SHA-256") && Catch::Contains("SoftHSM"));
  // The probe leaves nothing behind.
  CHECK(test::count_session_objects(s, CKO_SECRET_KEY) == 0);
  CHECK(test::count_session_objects(s, CKO_PUBLIC_KEY) == 0);
}
