// SPDX-License-Identifier: Apache-2.0
#include "core/secret.h"

#include <openssl/crypto.h>

namespace keyport {

void secure_wipe(void* p, std::size_t n) {
  if (p != nullptr && n != 0) {
    OPENSSL_cleanse(p, n);
  }
}

void SecretBytes::resize(std::size_t n) {
  if (n <= m_data.size()) {
    truncate(n);
    return;
  }
  // The zeroizing allocator wipes the old block when the vector reallocates.
  m_data.resize(n);
}

void SecretBytes::append(std::span<const std::uint8_t> bytes) {
  m_data.insert(m_data.end(), bytes.begin(), bytes.end());
}

bool SecretBytes::ct_equal(const SecretBytes& other) const {
  if (m_data.size() != other.m_data.size()) {
    return false;
  }
  if (m_data.empty()) {
    return true;
  }
  return CRYPTO_memcmp(m_data.data(), other.m_data.data(), m_data.size()) == 0;
}

}  // namespace keyport
