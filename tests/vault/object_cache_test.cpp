// SPDX-License-Identifier: Apache-2.0
// vault::KeyObjectCache on SoftHSM2: a cached handle is reused only while it still names the
// object with that CKA_ID and class.
#include <catch2/catch.hpp>

#include "core/random.h"
#include "tests/support/softhsm.h"
#include "vault/token.h"

using namespace keyport;

namespace {

CK_OBJECT_HANDLE make_key(const p11::Session& s, const std::string& type, const std::string& label,
                          const Bytes& id) {
  auto spec = parse_key_spec(type);
  REQUIRE(spec);
  auto made = vault::generate_key(s, vault::KeyObjectSpec{*spec, false, false}, label, id);
  REQUIRE(made);
  return made->handle;
}

}  // namespace

TEST_CASE("the key object cache reuses a handle only while it names the same object",
          "[vault][softhsm]") {
  auto s = test::SoftHsm::get().login(test::kVaultToken);
  vault::KeyObjectCache cache;
  const Bytes id = random_bytes(16);
  const CK_OBJECT_HANDLE h = make_key(s, "aes-256", "cache-a", id);

  auto first = cache.find(s, id, KeyFamily::kAes);
  REQUIRE(first);
  CHECK(*first == h);
  CHECK(cache.size() == 1);
  auto again = cache.find(s, id, KeyFamily::kAes);
  REQUIRE(again);
  CHECK(*again == h);

  SECTION("the wrong class is not served from the cache") {
    auto wrong = cache.find(s, id, KeyFamily::kRsa);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().code() == ErrorCode::kNotFound);
    CHECK(cache.size() == 0);
  }
  SECTION("a destroyed object is noticed, and a new object with the same CKA_ID is found") {
    REQUIRE(s.destroy_object(h));
    auto gone = cache.find(s, id, KeyFamily::kAes);
    REQUIRE_FALSE(gone);
    CHECK(gone.error().code() == ErrorCode::kNotFound);
    CHECK(cache.size() == 0);
    const CK_OBJECT_HANDLE h2 = make_key(s, "aes-128", "cache-b", id);
    auto found = cache.find(s, id, KeyFamily::kAes);
    REQUIRE(found);
    CHECK(*found == h2);
    REQUIRE(s.destroy_object(h2));
  }
  SECTION("forget() drops the entry") {
    cache.forget(id);
    CHECK(cache.size() == 0);
    REQUIRE(s.destroy_object(h));
  }
}

TEST_CASE("the key object cache stays within its capacity", "[vault][softhsm]") {
  auto s = test::SoftHsm::get().login(test::kVaultToken);
  vault::KeyObjectCache cache(2);
  std::vector<std::pair<Bytes, CK_OBJECT_HANDLE>> keys;
  for (int i = 0; i < 3; ++i) {
    Bytes id = random_bytes(16);
    keys.emplace_back(id, make_key(s, "aes-128", "cap-" + std::to_string(i), id));
  }
  for (const auto& [id, h] : keys) {
    auto found = cache.find(s, id, KeyFamily::kAes);
    REQUIRE(found);
    CHECK(*found == h);
    CHECK(cache.size() <= 2);
  }
  for (const auto& k : keys) {
    REQUIRE(s.destroy_object(k.second));
  }
}
