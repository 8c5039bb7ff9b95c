// SPDX-License-Identifier: Apache-2.0
// Message digests of public data (file fingerprints, key fingerprints, policy hashes).
#pragma once

#include <cstdint>
#include <span>

#include "core/encoding.h"

namespace keyport {

Bytes sha256(std::span<const std::uint8_t> data);
Bytes sha1(std::span<const std::uint8_t> data);

}  // namespace keyport
