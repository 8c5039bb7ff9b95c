// SPDX-License-Identifier: Apache-2.0
// Target: the private-key file reader of `byok wrap` (PEM, DER, PKCS#1, SEC1, raw AES). Invariant:
// an RSA or EC key it accepts encodes to a PKCS#8 that it reads back to the same key type. (A raw
// AES key's bytes may themselves look like hex text, so raw keys are not re-read.)
// max_len 16 KiB.
#include "byok/key_material.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(16 * 1024);
  auto key = keyport::byok::load_key_material(keyport::fuzz::input(data, size), nullptr);
  if (!key || key->spec.family == keyport::KeyFamily::kAes)
    return 0;
  auto bytes = key->encoded.reveal(keyport::SecretAccess::unsafe());
  auto again = keyport::byok::load_key_material(bytes, nullptr);
  KEYPORT_FUZZ_CHECK(again.has_value());
  KEYPORT_FUZZ_CHECK(again->spec == key->spec);
  return 0;
}
