// SPDX-License-Identifier: Apache-2.0
// Managed HSM's GetRandomBytes (POST /rng) over HTTPS: bytes from the vault token's
// C_GenerateRandom, the REST specification's bounds on count, Key Vault without the operation.
#include <catch2/catch.hpp>

#include "core/encoding.h"
#include "tests/vault/rest_rig.h"

using namespace keyport;

TEST_CASE("GetRandomBytes answers count bytes from the token and refuses what Azure refuses",
          "[vault][rest]") {
  test::RestRig rig(vault::Flavor::kManagedHsm, "rest-rng");
  test::RestClient http = rig.client();
  test::Answer a = http.post("/rng", Json{{"count", 32}});
  REQUIRE(a.status == 200);
  auto first = base64url_decode(a.json["value"].get<std::string>());
  REQUIRE(first);
  CHECK(first->size() == 32);
  test::Answer b = http.post("/rng", Json{{"count", 128}});
  REQUIRE(b.status == 200);
  auto second = base64url_decode(b.json["value"].get<std::string>());
  REQUIRE(second);
  CHECK(second->size() == 128);
  CHECK(!std::equal(first->begin(), first->end(), second->begin()));
  CHECK(http.post("/rng", Json{{"count", 1}}).status == 200);

  for (const Json& bad : {Json{{"count", 0}}, Json{{"count", 129}}, Json{{"count", "32"}},
                          Json{{"count", 2.5}}, Json::object()}) {
    INFO(dump_json(bad));
    test::Answer r = http.post("/rng", bad);
    CHECK(r.status == 400);
    CHECK(r.code() == "BadParameter");
  }
  CHECK(http.get("/rng").status == 405);
  http.api = "7.1";  // GetRandomBytes came with 7.2
  CHECK(http.post("/rng", Json{{"count", 8}}).status == 400);
}

TEST_CASE("GetRandomBytes is a Managed HSM operation: a Key Vault refuses it", "[vault][rest]") {
  test::RestRig rig(vault::Flavor::kKeyVault, "rest-rng-kv");
  test::RestClient http = rig.client();
  test::Answer r = http.post("/rng", Json{{"count", 8}});
  CHECK(r.status == 400);
  CHECK(r.code() == "BadParameter");
}
