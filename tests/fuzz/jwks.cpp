// SPDX-License-Identifier: Apache-2.0
// Target: JWKS documents (skr/jws.h parse_jwks, VerificationKey::from_jwk), as an attestation
// authority's jwks_uri serves them over the network: RSA and EC members, x5c certificate chains,
// private members, duplicate kids, key types and algorithms keyport does not use.
// Invariants: parsing is deterministic and leaves OpenSSL's error queue empty; an accepted set
// holds at least one key, accounts for every member (kept or skipped), has no two keys with one
// kid, and came from a document without private or secret members; every kept key is RSA of at
// least 2048 bits without the ROCA structure or EC on P-256, fits at least one allow-listed
// algorithm and none its own "alg" excludes, and survives its public JWK form (to_jwk, then
// from_jwk) unchanged. max_len 64 KiB (a JWKS with a few certificate chains).
#include <set>
#include <string>

#include <openssl/err.h>

#include "core/json.h"
#include "skr/jws.h"
#include "tests/fuzz/fuzz.h"

namespace {

using keyport::Json;
using namespace keyport::skr;

bool has_private_member(const Json& keys) {
  static const std::set<std::string> kPrivate{"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
  for (const auto& k : keys) {
    if (!k.is_object()) {
      continue;
    }
    for (const auto& m : kPrivate) {
      if (k.contains(m)) {
        return true;
      }
    }
  }
  return false;
}

void check_key(const VerificationKey& key) {
  const auto& pub = key.public_key();
  if (pub.family() == keyport::KeyFamily::kRsa) {
    KEYPORT_FUZZ_CHECK(pub.bits() >= 2048);
    KEYPORT_FUZZ_CHECK(!is_roca_modulus(pub.rsa_modulus()));
  } else {
    KEYPORT_FUZZ_CHECK(pub.curve() == keyport::Curve::kP256);
  }
  bool fits_any = false;
  for (JwsAlg alg : {JwsAlg::kRs256, JwsAlg::kPs256, JwsAlg::kEs256}) {
    if (key.fits(alg)) {
      fits_any = true;
      KEYPORT_FUZZ_CHECK(!key.alg() || *key.alg() == alg);
    }
  }
  KEYPORT_FUZZ_CHECK(fits_any);
  auto again = VerificationKey::from_jwk(pub.to_jwk());
  KEYPORT_FUZZ_CHECK(again.has_value() && again->public_key() == pub);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(64 * 1024);
  auto doc =
      keyport::parse_json_strict(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!doc) {
    return 0;
  }
  auto jwks = parse_jwks(*doc);
  // Nothing is left on the thread's OpenSSL error queue, where it would end up in the message of
  // some later, unrelated refusal.
  KEYPORT_FUZZ_CHECK(ERR_peek_error() == 0);
  auto jwks_again = parse_jwks(*doc);
  KEYPORT_FUZZ_CHECK(jwks.has_value() == jwks_again.has_value());
  if (!jwks) {
    KEYPORT_FUZZ_CHECK(!jwks.error().message().empty());
    KEYPORT_FUZZ_CHECK(jwks.error().message() == jwks_again.error().message());
    return 0;
  }
  KEYPORT_FUZZ_CHECK(jwks->skipped == jwks_again->skipped);
  KEYPORT_FUZZ_CHECK(jwks->keys.size() == jwks_again->keys.size());
  const Json& members = doc->at("keys");
  KEYPORT_FUZZ_CHECK(!jwks->keys.empty());
  KEYPORT_FUZZ_CHECK(jwks->keys.size() + jwks->skipped.size() == members.size());
  KEYPORT_FUZZ_CHECK(!has_private_member(members));
  std::set<std::string> kids;
  for (const auto& key : jwks->keys) {
    if (!key.kid().empty()) {
      KEYPORT_FUZZ_CHECK(kids.insert(key.kid()).second);
    }
    check_key(key);
  }
  return 0;
}
