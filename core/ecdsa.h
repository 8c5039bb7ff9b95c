// SPDX-License-Identifier: Apache-2.0
// ECDSA signature encodings: IEEE P1363 r||s (JOSE, Key Vault, PKCS#11 CKM_ECDSA) and the DER
// ECDSA-Sig-Value OpenSSL reads and writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.h"

namespace keyport {

// The largest coordinate keyport signs with: P-521, 66 bytes.
inline constexpr std::size_t kMaxEcdsaFieldBytes = 66;

// DER ECDSA-Sig-Value for r||s (two halves of equal length). kFormat for an empty or odd-length
// input or one longer than 2 * kMaxEcdsaFieldBytes.
Result<std::vector<std::uint8_t>> ecdsa_p1363_to_der(std::span<const std::uint8_t> raw);

// r||s, each left-padded to `field_bytes`, for a DER ECDSA-Sig-Value. kFormat when the input is
// not exactly one DER signature (trailing bytes included), when r or s is negative, or when
// either does not fit in field_bytes.
Result<std::vector<std::uint8_t>> ecdsa_der_to_p1363(std::span<const std::uint8_t> der,
                                                     std::size_t field_bytes);

}  // namespace keyport
