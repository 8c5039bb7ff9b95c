// SPDX-License-Identifier: Apache-2.0
#include "core/digest.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace keyport {
namespace {
Bytes digest(const EVP_MD* md, std::span<const std::uint8_t> data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1) {
    std::fputs("keyport: fatal: EVP_Digest failed\n", stderr);
    std::abort();
  }
  out.resize(len);
  return out;
}
}  // namespace

Bytes sha256(std::span<const std::uint8_t> data) {
  return digest(EVP_sha256(), data);
}
Bytes sha1(std::span<const std::uint8_t> data) {
  return digest(EVP_sha1(), data);
}

}  // namespace keyport
