// SPDX-License-Identifier: Apache-2.0
// The client side of sign and verify: the digest a signature algorithm signs (from the vault's one
// algorithm table, vault/algorithms.h), and EC signatures between JOSE's r||s and DER.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"

namespace keyport::vault {

// The digest of `data` with the hash of the signature algorithm `alg` (RS256 ... ES256K).
// kInvalidArgument for an algorithm the vault does not know.
Result<Bytes> digest_for_sign(std::string_view alg, std::span<const std::uint8_t> data);

// Whether `alg` is an ECDSA algorithm (ES256, ES384, ES512, ES256K): its signatures are r||s.
bool is_ecdsa_alg(std::string_view alg);

// JOSE r||s <-> DER ECDSA-Sig-Value (what OpenSSL reads and writes), core/ecdsa.h at the field
// size of `alg`'s curve: raw_to_der wants exactly 2 * field bytes, der_to_raw pads r and s to it;
// kFormat for a signature that is not DER or does not fit, kInvalidArgument for a non-EC alg.
Result<Bytes> ecdsa_raw_to_der_for_alg(std::string_view alg, std::span<const std::uint8_t> raw);
Result<Bytes> ecdsa_der_to_raw_for_alg(std::string_view alg, std::span<const std::uint8_t> der);

}  // namespace keyport::vault
