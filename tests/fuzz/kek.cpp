// SPDX-License-Identifier: Apache-2.0
// Target: the KEK loader (PEM, DER, JWK or KeyBundle). Invariant: an accepted KEK re-encodes to
// SPKI DER that loads to the same key, and its JWK loads to the same key. max_len 16 KiB.
#include "byok/kek.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(16 * 1024);
  using namespace keyport::byok;
  auto kek = load_kek(keyport::fuzz::input(data, size), "fuzz");
  if (!kek)
    return 0;
  KEYPORT_FUZZ_CHECK(kek->key.family() == keyport::KeyFamily::kRsa);
  KEYPORT_FUZZ_CHECK(kek->key.bits() == 2048 || kek->key.bits() == 3072 || kek->key.bits() == 4096);
  auto der = PublicKey::from_spki_der(kek->key.spki_der());
  KEYPORT_FUZZ_CHECK(der.has_value() && *der == kek->key);
  auto jwk = PublicKey::from_jwk(kek->key.to_jwk());
  KEYPORT_FUZZ_CHECK(jwk.has_value() && *jwk == kek->key);
  return 0;
}
