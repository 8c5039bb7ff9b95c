// SPDX-License-Identifier: Apache-2.0
#include "vault/ec_recover.h"

#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include <string>
#include <vector>

#include "core/ossl.h"

namespace keyport::vault {
namespace {

using BnPtr = ossl::UniquePtr<BIGNUM>;
using PointPtr = ossl::UniquePtr<EC_POINT>;

BnPtr bn_from(std::span<const std::uint8_t> bytes) {
  return BnPtr(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
}

// The digest as an integer, truncated to the bit length of the group order (SEC 1 §4.1.3 step 5,
// what OpenSSL and SoftHSM do when signing).
BnPtr digest_integer(std::span<const std::uint8_t> digest, const BIGNUM* order) {
  BnPtr e = bn_from(digest);
  if (!e) {
    return e;
  }
  const int order_bits = BN_num_bits(order);
  const int digest_bits = static_cast<int>(digest.size()) * 8;
  if (digest_bits > order_bits && BN_rshift(e.get(), e.get(), digest_bits - order_bits) != 1) {
    return BnPtr();
  }
  return e;
}

struct Signature {
  BnPtr r;
  BnPtr s;
};

Result<Signature> split_signature(std::span<const std::uint8_t> sig, const BIGNUM* order) {
  const std::size_t half = static_cast<std::size_t>(BN_num_bytes(order));
  if (sig.size() != 2 * half) {
    return make_error(ErrorCode::kCrypto, "ECDSA signature is " + std::to_string(sig.size()) +
                                              " bytes, expected " + std::to_string(2 * half));
  }
  Signature out{bn_from(sig.subspan(0, half)), bn_from(sig.subspan(half))};
  if (!out.r || !out.s) {
    return ossl::crypto_failure("cannot read the ECDSA signature");
  }
  if (BN_is_zero(out.r.get()) || BN_is_zero(out.s.get()) || BN_cmp(out.r.get(), order) >= 0 ||
      BN_cmp(out.s.get(), order) >= 0) {
    return make_error(ErrorCode::kCrypto, "ECDSA signature values out of range");
  }
  return out;
}

// Plain ECDSA verification with point arithmetic (no deprecated EC_KEY API).
Result<bool> verifies(const EC_GROUP* group, const EC_POINT* q, const BIGNUM* e,
                      const Signature& sig, BN_CTX* ctx) {
  const BIGNUM* order = EC_GROUP_get0_order(group);
  BnPtr w(BN_mod_inverse(nullptr, sig.s.get(), order, ctx));
  BnPtr u1(BN_new()), u2(BN_new()), x(BN_new());
  PointPtr point(EC_POINT_new(group));
  if (!w || !u1 || !u2 || !x || !point || BN_mod_mul(u1.get(), e, w.get(), order, ctx) != 1 ||
      BN_mod_mul(u2.get(), sig.r.get(), w.get(), order, ctx) != 1 ||
      EC_POINT_mul(group, point.get(), u1.get(), q, u2.get(), ctx) != 1) {
    return ossl::crypto_failure("ECDSA verification arithmetic");
  }
  if (EC_POINT_is_at_infinity(group, point.get()) == 1) {
    return false;
  }
  if (EC_POINT_get_affine_coordinates(group, point.get(), x.get(), nullptr, ctx) != 1 ||
      BN_nnmod(x.get(), x.get(), order, ctx) != 1) {
    return ossl::crypto_failure("ECDSA verification arithmetic");
  }
  return BN_cmp(x.get(), sig.r.get()) == 0;
}

}  // namespace

Result<Bytes> recover_ecdsa_public_key(Curve curve, std::span<const std::uint8_t> digest1,
                                       std::span<const std::uint8_t> signature1,
                                       std::span<const std::uint8_t> digest2,
                                       std::span<const std::uint8_t> signature2) {
  const int nid = OBJ_sn2nid(std::string(curve_openssl_name(curve)).c_str());
  ossl::UniquePtr<EC_GROUP> group(EC_GROUP_new_by_curve_name(nid));
  ossl::UniquePtr<BN_CTX> ctx(BN_CTX_new());
  BnPtr p(BN_new());
  if (!group || !ctx || !p ||
      EC_GROUP_get_curve(group.get(), p.get(), nullptr, nullptr, ctx.get()) != 1) {
    return ossl::crypto_failure("cannot set up curve " + std::string(curve_jwk_name(curve)));
  }
  const BIGNUM* order = EC_GROUP_get0_order(group.get());
  KEYPORT_ASSIGN_OR_RETURN(Signature sig1, split_signature(signature1, order));
  KEYPORT_ASSIGN_OR_RETURN(Signature sig2, split_signature(signature2, order));
  BnPtr e1 = digest_integer(digest1, order);
  BnPtr e2 = digest_integer(digest2, order);
  BnPtr r_inv(BN_mod_inverse(nullptr, sig1.r.get(), order, ctx.get()));
  BnPtr u1(BN_new()), u2(BN_new());
  // u1 = -e * r^-1 mod n, u2 = s * r^-1 mod n, so Q = u1 G + u2 R.
  if (!e1 || !e2 || !r_inv || !u1 || !u2 ||
      BN_mod_mul(u1.get(), e1.get(), r_inv.get(), order, ctx.get()) != 1 ||
      BN_mod_sub(u1.get(), order, u1.get(), order, ctx.get()) != 1 ||
      BN_mod_mul(u2.get(), sig1.s.get(), r_inv.get(), order, ctx.get()) != 1) {
    return ossl::crypto_failure("ECDSA recovery arithmetic");
  }

  std::vector<Bytes> found;
  for (int j = 0; j < 2; ++j) {
    BnPtr x(BN_dup(sig1.r.get()));
    if (!x) {
      return ossl::crypto_failure("ECDSA recovery arithmetic");
    }
    if (j == 1) {
      // x = r + n is possible only when r + n < p (probability about 2^-128 for these curves).
      if (BN_add(x.get(), x.get(), order) != 1) {
        return ossl::crypto_failure("ECDSA recovery arithmetic");
      }
      if (BN_cmp(x.get(), p.get()) >= 0) {
        break;
      }
    }
    for (int y_bit = 0; y_bit < 2; ++y_bit) {
      PointPtr r_point(EC_POINT_new(group.get()));
      PointPtr q(EC_POINT_new(group.get()));
      if (!r_point || !q) {
        return ossl::crypto_failure("ECDSA recovery arithmetic");
      }
      if (EC_POINT_set_compressed_coordinates(group.get(), r_point.get(), x.get(), y_bit,
                                              ctx.get()) != 1) {
        ossl::drain_errors();  // x is not the abscissa of a curve point
        continue;
      }
      if (EC_POINT_mul(group.get(), q.get(), u1.get(), r_point.get(), u2.get(), ctx.get()) != 1) {
        return ossl::crypto_failure("ECDSA recovery arithmetic");
      }
      if (EC_POINT_is_at_infinity(group.get(), q.get()) == 1) {
        continue;
      }
      KEYPORT_ASSIGN_OR_RETURN(bool ok1, verifies(group.get(), q.get(), e1.get(), sig1, ctx.get()));
      KEYPORT_ASSIGN_OR_RETURN(bool ok2, verifies(group.get(), q.get(), e2.get(), sig2, ctx.get()));
      if (!ok1 || !ok2) {
        continue;
      }
      std::size_t len = EC_POINT_point2oct(group.get(), q.get(), POINT_CONVERSION_UNCOMPRESSED,
                                           nullptr, 0, ctx.get());
      Bytes point(len);
      if (len == 0 || EC_POINT_point2oct(group.get(), q.get(), POINT_CONVERSION_UNCOMPRESSED,
                                         point.data(), point.size(), ctx.get()) != len) {
        return ossl::crypto_failure("cannot encode the recovered EC point");
      }
      bool seen = false;
      for (const auto& f : found) {
        seen = seen || f == point;
      }
      if (!seen) {
        found.push_back(std::move(point));
      }
    }
  }
  if (found.size() != 1) {
    return make_error(ErrorCode::kCrypto,
                      found.empty() ? "no public key verifies both ECDSA signatures"
                                    : "more than one public key verifies both ECDSA signatures");
  }
  return std::move(found.front());
}

}  // namespace keyport::vault
