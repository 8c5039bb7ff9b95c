// SPDX-License-Identifier: Apache-2.0
#include "core/random.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

namespace keyport {
namespace {
void fill(std::uint8_t* p, std::size_t n) {
  if (n != 0 && RAND_bytes(p, static_cast<int>(n)) != 1) {
    std::fputs("keyport: fatal: OpenSSL RAND_bytes failed\n", stderr);
    std::abort();
  }
}
}  // namespace

Bytes random_bytes(std::size_t n) {
  Bytes b(n);
  fill(b.data(), n);
  return b;
}

std::string random_uuid() {
  Bytes b = random_bytes(16);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  return format_uuid(b);
}

SecretBytes random_secret(std::size_t n) {
  SecretBytes s(n);
  fill(s.reveal_mut(SecretAccess::unsafe()).data(), n);
  return s;
}

}  // namespace keyport
