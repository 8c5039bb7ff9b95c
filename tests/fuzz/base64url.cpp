// SPDX-License-Identifier: Apache-2.0
// Target: base64url decoding, differential against OpenSSL's EVP_DecodeBlock. Invariants: what
// keyport decodes re-encodes to the input without padding, and OpenSSL decodes the same text
// (after mapping the alphabet and padding it) to the same bytes. max_len 16 KiB.
#include <openssl/evp.h>

#include <string>
#include <vector>

#include "core/encoding.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(16 * 1024);
  std::string text(reinterpret_cast<const char*>(data), size);
  auto decoded = keyport::base64url_decode(text);
  auto secret = keyport::base64url_decode_secret(text);
  KEYPORT_FUZZ_CHECK(decoded.has_value() == secret.has_value());
  if (!decoded)
    return 0;
  std::string unpadded = text.substr(0, text.find('='));
  KEYPORT_FUZZ_CHECK(keyport::base64url_encode(*decoded) == unpadded);
  std::string std64 = unpadded;
  for (char& c : std64)
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (std64.size() % 4 != 0)
    std64 += '=';
  std::vector<unsigned char> out(std64.size() / 4 * 3 + 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(std64.data()),
                          static_cast<int>(std64.size()));
  KEYPORT_FUZZ_CHECK(n >= 0);
  // EVP_DecodeBlock keeps the bytes the padding stands for; drop them.
  std::size_t pad = std64.size() - unpadded.size();
  KEYPORT_FUZZ_CHECK(static_cast<std::size_t>(n) - pad == decoded->size());
  KEYPORT_FUZZ_CHECK(std::equal(decoded->begin(), decoded->end(), out.begin()));
  return 0;
}
