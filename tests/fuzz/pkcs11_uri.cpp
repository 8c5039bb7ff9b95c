// SPDX-License-Identifier: Apache-2.0
// Target: the RFC 7512 parser. Invariant: parse -> format -> parse gives the same URI (compared by
// its canonical text, pin-value included). max_len 4 KiB.
#include "pkcs11/uri.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(4096);
  using keyport::p11::Uri;
  auto uri = Uri::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!uri)
    return 0;
  std::string text = uri->format(true);
  auto again = Uri::parse(text);
  KEYPORT_FUZZ_CHECK(again.has_value());
  KEYPORT_FUZZ_CHECK(again->format(true) == text);
  return 0;
}
