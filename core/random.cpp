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

SecretBytes random_secret(std::size_t n) {
  SecretBytes s(n);
  fill(s.reveal_mut(SecretAccess::unsafe()).data(), n);
  return s;
}

}  // namespace keyport
