// SPDX-License-Identifier: Apache-2.0
// The Key Exchange Key (KEK): the vault's RSA-HSM public key that a BYOK transfer blob is
// wrapped to. Loaded from SPKI PEM (`az keyvault key download`), DER, or a JWK.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "byok/public_key.h"

namespace keyport::byok {

struct Kek {
  PublicKey key;
  // When the KEK came from a JWK or KeyBundle with a "kid", that kid (so callers can default
  // --kid to it).
  std::optional<std::string> kid;
};

// Detects the encoding: PEM when the text starts (after whitespace) with "-----BEGIN", a JWK when
// it starts with '{' (either the JWK itself or a KeyBundle {"key": {...}}), DER otherwise.
// Checks, each with its own message:
// - RSA only (an EC KEK is kUnsupported: "the KEK must be an RSA key");
// - modulus 2048, 3072 or 4096 bits (else kUnsupported naming the size);
// - JWK: kty "RSA" or "RSA-HSM"; if key_ops is present it must be exactly ["import"];
// - JWK: no private members.
// `source` names the input in messages (a file name).
Result<Kek> load_kek(std::span<const std::uint8_t> contents, std::string_view source);
Result<Kek> load_kek_file(const std::filesystem::path& path);

}  // namespace keyport::byok
