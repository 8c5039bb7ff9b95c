// SPDX-License-Identifier: Apache-2.0
// --throttle azure (vault/throttle.h): Key Vault's weighted service limits, 429 + Retry-After.
#include <catch2/catch.hpp>

#include "tests/vault/rest_rig.h"
#include "vault/throttle.h"

using namespace keyport;
using namespace std::chrono_literals;

namespace {

KeySpec rsa(unsigned bits) {
  KeySpec s;
  s.family = KeyFamily::kRsa;
  s.bits = bits;
  return s;
}

}  // namespace

TEST_CASE("the throttle classes follow Key Vault's service-limits table", "[vault][unit]") {
  CHECK(vault::key_throttle_class("RSA-HSM", rsa(2048), true).limit == 10);
  CHECK(vault::key_throttle_class("RSA", rsa(2048), true).limit == 20);
  CHECK(vault::key_throttle_class("RSA-HSM", rsa(2048), false).limit == 2000);
  CHECK(vault::key_throttle_class("RSA-HSM", rsa(3072), false).limit == 500);
  CHECK(vault::key_throttle_class("RSA-HSM", rsa(4096), false).limit == 250);
  CHECK(vault::key_throttle_class("RSA", rsa(4096), false).limit == 500);
  KeySpec ec;
  ec.family = KeyFamily::kEc;
  ec.bits = 384;
  CHECK(vault::key_throttle_class("EC-HSM", ec, false).limit == 2000);
  CHECK(vault::key_throttle_class("EC", ec, false).limit == 4000);
  CHECK(vault::vault_throttle_class().limit == 4000);
}

TEST_CASE("the throttle enforces the weighted sum over its window and says when to retry",
          "[vault][unit]") {
  vault::Throttle t(10s);
  const auto t0 = vault::Throttle::Clock::time_point{} + 1h;
  const auto create = vault::key_throttle_class("EC-HSM", KeySpec{KeyFamily::kEc, 256, {}}, true);
  for (int i = 0; i < 10; ++i) {
    CHECK_FALSE(t.admit(create, t0 + i * 100ms));
  }
  // The eleventh create waits for the first to leave the window (t0 + 10 s).
  auto wait = t.admit(create, t0 + 2s);
  REQUIRE(wait);
  CHECK(*wait == 8);
  // The budget is one sum: a GET does not fit either.
  CHECK(t.admit(vault::vault_throttle_class(), t0 + 2s));
  // Refused requests do not count: once the first create left, one more fits.
  CHECK_FALSE(t.admit(create, t0 + 10s));
  CHECK(t.admit(create, t0 + 10s + 50ms));

  // 250 transactions on an RSA 4096-bit HSM key fill the window; 2,000 on a 2048-bit one do too.
  vault::Throttle big(10s);
  const auto rsa4096 = vault::key_throttle_class("RSA-HSM", rsa(4096), false);
  for (int i = 0; i < 250; ++i) {
    REQUIRE_FALSE(big.admit(rsa4096, t0));
  }
  CHECK(big.admit(rsa4096, t0));
  vault::Throttle small(10s);
  const auto rsa2048 = vault::key_throttle_class("RSA-HSM", rsa(2048), false);
  for (int i = 0; i < 2000; ++i) {
    REQUIRE_FALSE(small.admit(rsa2048, t0));
  }
  auto later = small.admit(rsa2048, t0 + 1500ms);
  REQUIRE(later);
  CHECK(*later == 9);  // 8.5 s rounded up
}

// Over HTTPS with a one-hour window, so that a slow machine cannot slide it: ten HSM creates fill
// the budget, the eleventh request gets Key Vault's 429 with Retry-After, and nothing is created.
TEST_CASE("the throttle option answers 429 with Retry-After beyond Key Vault's limits",
          "[vault][rest]") {
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-throttle");
  rig.stop();
  rig.options.throttle = "azure";
  rig.options.throttle_window = std::chrono::hours(1);
  rig.start();
  test::RestClient http = rig.client();
  for (int i = 0; i < 10; ++i) {
    test::Answer a = http.post("/keys/k" + std::to_string(i) + "/create",
                               Json{{"kty", "EC-HSM"}, {"crv", "P-256"}});
    REQUIRE(a.status == 200);
  }
  test::Answer refused = http.post("/keys/k10/create", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}});
  CHECK(refused.status == 429);
  CHECK(refused.code() == "Throttled");
  const std::string retry = refused.header("Retry-After");
  REQUIRE_FALSE(retry.empty());
  CHECK(std::stol(retry) > 3000);
  CHECK(std::stol(retry) <= 3600);
  CHECK(http.get("/keys/k10").status == 429);  // one weighted budget for every transaction

  // Without --throttle nothing is limited, and Managed HSM refuses the option.
  rig.stop();
  rig.options.throttle.clear();
  rig.start();
  http = rig.client();
  CHECK(http.get("/keys/k10").status == 404);
  vault::ServerOptions hsm = rig.options;
  hsm.data_dir = rig.dir / "hsm";
  hsm.flavor = vault::Flavor::kManagedHsm;
  hsm.throttle = "azure";
  auto started = vault::Server::start(hsm);
  REQUIRE_FALSE(started);
  CHECK(started.error().code() == ErrorCode::kUnsupported);
}
