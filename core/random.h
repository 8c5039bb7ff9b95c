// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string>

#include "core/encoding.h"
#include "core/secret.h"

namespace keyport {

// Public random bytes (ids, nonces, file-name suffixes) from OpenSSL's DRBG. Aborts if the DRBG
// fails: there is no safe way to continue without randomness.
Bytes random_bytes(std::size_t n);
// Secret random bytes (keys).
SecretBytes random_secret(std::size_t n);
// A random (version 4) UUID, lower case: request ids, token ids.
std::string random_uuid();

}  // namespace keyport
