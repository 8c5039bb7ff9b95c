// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>

#include "core/encoding.h"
#include "core/secret.h"

namespace keyport {

// Public random bytes (ids, nonces, file-name suffixes) from OpenSSL's DRBG. Aborts if the DRBG
// fails: there is no safe way to continue without randomness.
Bytes random_bytes(std::size_t n);
// Secret random bytes (keys).
SecretBytes random_secret(std::size_t n);

}  // namespace keyport
