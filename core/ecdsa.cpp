// SPDX-License-Identifier: Apache-2.0
#include "core/ecdsa.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "core/ossl.h"

namespace keyport {

Result<std::vector<std::uint8_t>> ecdsa_p1363_to_der(std::span<const std::uint8_t> raw) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 2 * kMaxEcdsaFieldBytes) {
    return make_error(ErrorCode::kFormat,
                      "an ECDSA signature r||s must have an even length of 2 to " +
                          std::to_string(2 * kMaxEcdsaFieldBytes) + " bytes, got " +
                          std::to_string(raw.size()));
  }
  const int half = static_cast<int>(raw.size() / 2);
  ossl::UniquePtr<ECDSA_SIG> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), half, nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, half, nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return ossl::crypto_failure("cannot build an ECDSA signature");
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) {
    return ossl::crypto_failure("cannot encode an ECDSA signature");
  }
  std::vector<std::uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Result<std::vector<std::uint8_t>> ecdsa_der_to_p1363(std::span<const std::uint8_t> der,
                                                     std::size_t field_bytes) {
  if (field_bytes == 0 || field_bytes > kMaxEcdsaFieldBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no curve has " + std::to_string(field_bytes) + "-byte coordinates");
  }
  const unsigned char* p = der.data();
  ossl::UniquePtr<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig || p != der.data() + der.size()) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat, "the signature is not one DER ECDSA-Sig-Value");
  }
  const BIGNUM* r = ECDSA_SIG_get0_r(sig.get());
  const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
  std::vector<std::uint8_t> out(2 * field_bytes);
  const int n = static_cast<int>(field_bytes);
  if (BN_is_negative(r) != 0 || BN_is_negative(s) != 0 || BN_bn2binpad(r, out.data(), n) != n ||
      BN_bn2binpad(s, out.data() + field_bytes, n) != n) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat, "the ECDSA signature does not fit " +
                                              std::to_string(field_bytes) + "-byte coordinates");
  }
  return out;
}

}  // namespace keyport
