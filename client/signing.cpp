// SPDX-License-Identifier: Apache-2.0
#include "client/signing.h"

#include <openssl/evp.h>

#include "core/algorithms.h"
#include "core/ecdsa.h"
#include "core/ossl.h"
#include "vault/algorithms.h"

namespace keyport::vault {
namespace {

Result<SignAlg> sign_alg(std::string_view alg) {
  auto a = find_sign_alg(alg);
  if (!a) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--alg " + std::string(alg) +
                          ": use RS256/384/512, PS256/384/512, ES256/384/512 or ES256K");
  }
  return *a;
}

}  // namespace

Result<Bytes> digest_for_sign(std::string_view alg, std::span<const std::uint8_t> data) {
  KEYPORT_ASSIGN_OR_RETURN(SignAlg a, sign_alg(alg));
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &n, evp_md(a.hash), nullptr) != 1) {
    return ossl::crypto_failure("digest for " + std::string(alg));
  }
  out.resize(n);
  return out;
}

bool is_ecdsa_alg(std::string_view alg) {
  auto a = find_sign_alg(alg);
  return a && a->scheme == SignScheme::kEcdsa;
}

Result<Bytes> ecdsa_raw_to_der_for_alg(std::string_view alg, std::span<const std::uint8_t> raw) {
  KEYPORT_ASSIGN_OR_RETURN(SignAlg a, sign_alg(alg));
  if (!a.curve || raw.size() != 2 * curve_field_bytes(*a.curve)) {
    return make_error(ErrorCode::kFormat,
                      "an " + std::string(alg) + " signature is r||s of " +
                          std::to_string(a.curve ? 2 * curve_field_bytes(*a.curve) : 0) +
                          " bytes, not " + std::to_string(raw.size()));
  }
  return ecdsa_p1363_to_der(raw);
}

Result<Bytes> ecdsa_der_to_raw_for_alg(std::string_view alg, std::span<const std::uint8_t> der) {
  KEYPORT_ASSIGN_OR_RETURN(SignAlg a, sign_alg(alg));
  if (!a.curve) {
    return make_error(ErrorCode::kInvalidArgument, std::string(alg) + " is not an ECDSA algorithm");
  }
  return ecdsa_der_to_p1363(der, curve_field_bytes(*a.curve));
}

}  // namespace keyport::vault
