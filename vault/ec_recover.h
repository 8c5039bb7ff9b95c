// SPDX-License-Identifier: Apache-2.0
// ECDSA public-key recovery. A PKCS#11 EC private key object does not hold its public point
// (SoftHSM's unwrapped EC keys have no CKA_EC_POINT), and the vault must never export the private
// key to compute it. So the vault signs two different digests inside the token and recovers the
// public key from the signatures (SEC 1 v2 §4.1.6): for a signature (r, s) over digest e and a
// curve point R with x(R) = r (or r + n), Q = r^-1 (sR - eG). Each of the up to four candidates
// is checked against the second signature; exactly one distinct point must pass.
#pragma once

#include <cstdint>
#include <span>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"

namespace keyport::vault {

// Returns the uncompressed public point 04||X||Y of the key that made both raw (r||s, each the
// curve order's byte length) signatures, or kCrypto when no single candidate verifies both
// (the signatures do not come from one key over these digests).
Result<Bytes> recover_ecdsa_public_key(Curve curve, std::span<const std::uint8_t> digest1,
                                       std::span<const std::uint8_t> signature1,
                                       std::span<const std::uint8_t> digest2,
                                       std::span<const std::uint8_t> signature2);

}  // namespace keyport::vault
