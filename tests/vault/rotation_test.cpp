// SPDX-License-Identifier: Apache-2.0
// Key rotation with Key Vault's semantics and the HSM platform report, on the library with a
// manual clock: scheduled rotation when (and only when) a policy is due, old versions that keep
// working, policy validation, and the platform-1 report after a cut-over.
#include <catch2/catch.hpp>

#include <map>

#include "core/random.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/vault/vault_rig.h"
#include "vault/rotation.h"

using namespace keyport;

namespace {

constexpr std::int64_t kDay = 86400;

Json rotate_after(const std::string& duration, const std::string& expiry = "") {
  Json p{{"lifetimeActions", Json::array({Json{{"trigger", {{"timeAfterCreate", duration}}},
                                               {"action", {{"type", "Rotate"}}}}})}};
  p["attributes"] = Json::object();
  if (!expiry.empty()) {
    p["attributes"]["expiryTime"] = expiry;
  }
  return p;
}

std::size_t version_count(test::VaultRig& rig, const std::string& name) {
  auto v = rig->list_key_versions(rig.ctx, name);
  REQUIRE_OK(v);
  return (*v)["value"].size();
}

std::string op_value(const Result<Json>& r) {
  REQUIRE_OK(r);
  return (*r)["value"].get<std::string>();
}

}  // namespace

TEST_CASE("a timeAfterCreate P30D policy rotates after 31 days, not after 29, old versions work",
          "[vault][rotation]") {
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "rotation");
  auto rsa = mhsm->create_key(mhsm.ctx, "app-rsa", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}});
  auto oct = mhsm->create_key(mhsm.ctx, "app-oct", Json{{"kty", "oct-HSM"}, {"key_size", 256}});
  auto ec = mhsm->create_key(mhsm.ctx, "app-ec", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}});
  auto untouched = mhsm->create_key(mhsm.ctx, "no-policy", Json{{"kty", "EC-HSM"}});
  REQUIRE_OK(rsa);
  REQUIRE_OK(oct);
  REQUIRE_OK(ec);
  REQUIRE_OK(untouched);
  const std::string rsa_v1 = test::version_of(*rsa);
  const std::string oct_v1 = test::version_of(*oct);
  const std::string ec_v1 = test::version_of(*ec);
  for (const char* name : {"app-rsa", "app-oct", "app-ec"}) {
    auto set = mhsm->update_rotation_policy(mhsm.ctx, name, rotate_after("P30D", "P90D"));
    REQUIRE_OK(set);
    CHECK((*set)["lifetimeActions"][0]["trigger"]["timeAfterCreate"] == "P30D");
  }

  // Data protected by version 1 of each key, produced by OpenSSL (RSA) and by the vault (oct).
  auto rsa_pub = test::openssl_public(*rsa);
  const Bytes secret = random_bytes(32);
  const Bytes rsa_ct = test::openssl_encrypt(rsa_pub.get(), "RSA-OAEP", secret);
  const std::string wrapped = op_value(mhsm->wrap_key(
      mhsm.ctx, "app-oct", oct_v1, Json{{"alg", "A256KW"}, {"value", base64url_encode(secret)}}));
  const Bytes digest = test::digest_of("ES256", random_bytes(20));
  const std::string ec_sig = op_value(mhsm->sign(
      mhsm.ctx, "app-ec", ec_v1, Json{{"alg", "ES256"}, {"value", base64url_encode(digest)}}));

  mhsm.clock.advance(29 * kDay);
  CHECK(version_count(mhsm, "app-rsa") == 1u);  // the call runs due actions first: none yet
  auto none = mhsm->run_due_rotations();
  REQUIRE_OK(none);
  CHECK(*none == 0u);
  for (const char* name : {"app-rsa", "app-oct", "app-ec", "no-policy"}) {
    CHECK(version_count(mhsm, name) == 1u);
  }

  mhsm.clock.advance(2 * kDay);  // day 31
  CHECK(version_count(mhsm, "app-rsa") == 2u);
  CHECK(version_count(mhsm, "app-oct") == 2u);
  CHECK(version_count(mhsm, "app-ec") == 2u);
  CHECK(version_count(mhsm, "no-policy") == 1u);
  auto again = mhsm->run_due_rotations();
  REQUIRE_OK(again);
  CHECK(*again == 0u);  // the new versions are 0 days old

  // The new version: same type and size, new material, exp from the policy's expiryTime.
  auto latest = mhsm->get_key(mhsm.ctx, "app-rsa");
  REQUIRE_OK(latest);
  CHECK(test::version_of(*latest) != rsa_v1);
  CHECK((*latest)["key"]["kty"] == "RSA-HSM");
  CHECK((*latest)["key"]["key_ops"] == (*rsa)["key"]["key_ops"]);
  CHECK(base64url_decode((*latest)["key"]["n"].get<std::string>())->size() == 256);
  CHECK((*latest)["key"]["n"] != (*rsa)["key"]["n"]);
  CHECK((*latest)["attributes"]["created"] == test::kStartTime + 31 * kDay);
  CHECK((*latest)["attributes"]["exp"] == test::kStartTime + 31 * kDay + 90 * kDay);

  // Old versions still decrypt, unwrap and verify.
  auto plain = mhsm->decrypt(mhsm.ctx, "app-rsa", rsa_v1,
                             Json{{"alg", "RSA-OAEP"}, {"value", base64url_encode(rsa_ct)}});
  CHECK(*base64url_decode(op_value(plain)) == secret);
  auto unwrapped =
      mhsm->unwrap_key(mhsm.ctx, "app-oct", oct_v1, Json{{"alg", "A256KW"}, {"value", wrapped}});
  CHECK(*base64url_decode(op_value(unwrapped)) == secret);
  auto verified =
      mhsm->verify(mhsm.ctx, "app-ec", ec_v1,
                   Json{{"alg", "ES256"}, {"digest", base64url_encode(digest)}, {"value", ec_sig}});
  REQUIRE_OK(verified);
  CHECK((*verified)["value"] == true);
  // The latest oct version is another key: it cannot unwrap what version 1 wrapped.
  auto wrong =
      mhsm->unwrap_key(mhsm.ctx, "app-oct", "", Json{{"alg", "A256KW"}, {"value", wrapped}});
  CHECK_FALSE(wrong);

  // No catch-up burst, and the next rotation counts from the new version's creation.
  mhsm.clock.advance(10 * kDay);  // day 41: the new version is 10 days old
  CHECK(version_count(mhsm, "app-rsa") == 2u);
  mhsm.clock.advance(20 * kDay);  // day 61: 30 days old
  CHECK(version_count(mhsm, "app-rsa") == 3u);

  // The audit log says who rotated: the vault, on its policy.
  auto audit = mhsm->audit_log();
  REQUIRE_OK(audit);
  std::size_t scheduled = 0;
  for (const auto& a : *audit) {
    if (a.operation == "RotateKey" && a.caller == "vault" && a.outcome == "success") {
      ++scheduled;
      CHECK(a.reason.find("timeAfterCreate P30D") != std::string::npos);
    }
  }
  CHECK(scheduled == 6u);  // the three keys at day 31, and again at day 61
}

TEST_CASE("rotation policies follow Key Vault's rules and its default", "[vault][rotation]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "rotation-rules");
  auto key = kv->create_key(kv.ctx, "k", Json{{"kty", "EC-HSM"}});
  REQUIRE_OK(key);

  // No policy yet: Key Vault's default, Notify 30 days before expiry, no times.
  auto def = kv->get_rotation_policy(kv.ctx, "k");
  REQUIRE_OK(def);
  CHECK((*def)["id"] == "https://rotation-rules.vault.azure.net/keys/k/rotationpolicy");
  CHECK((*def)["lifetimeActions"] == Json::array({Json{{"trigger", {{"timeBeforeExpiry", "P30D"}}},
                                                       {"action", {{"type", "Notify"}}}}}));
  CHECK_FALSE((*def)["attributes"].contains("created"));

  const std::vector<std::pair<std::string, Json>> refused = {
      {"rotate sooner than 7 days", rotate_after("P6D")},
      {"rotate in hours below 7 days", rotate_after("PT100H")},
      {"expiryTime under 28 days", rotate_after("P7D", "P27D")},
      {"rotation within 7 days of expiry", rotate_after("P25D", "P30D")},
      {"not a duration", rotate_after("30 days")},
      {"month before year", rotate_after("P1M1Y")},
      {"notify after create",
       Json{{"lifetimeActions", Json::array({Json{{"trigger", {{"timeAfterCreate", "P30D"}}},
                                                  {"action", {{"type", "Notify"}}}}})}}},
      {"timeBeforeExpiry without expiryTime",
       Json{{"lifetimeActions", Json::array({Json{{"trigger", {{"timeBeforeExpiry", "P30D"}}},
                                                  {"action", {{"type", "Rotate"}}}}})}}},
      {"both triggers",
       Json{{"lifetimeActions",
             Json::array(
                 {Json{{"trigger", {{"timeAfterCreate", "P30D"}, {"timeBeforeExpiry", "P9D"}}},
                       {"action", {{"type", "Rotate"}}}}})},
            {"attributes", {{"expiryTime", "P1Y"}}}}},
      {"two rotate actions",
       Json{{"lifetimeActions", Json::array({Json{{"trigger", {{"timeAfterCreate", "P30D"}}},
                                                  {"action", {{"type", "Rotate"}}}},
                                             Json{{"trigger", {{"timeAfterCreate", "P60D"}}},
                                                  {"action", {{"type", "rotate"}}}}})}}},
      {"unknown action",
       Json{{"lifetimeActions", Json::array({Json{{"trigger", {{"timeAfterCreate", "P30D"}}},
                                                  {"action", {{"type", "Delete"}}}}})}}},
      {"lifetimeActions not an array", Json{{"lifetimeActions", "P30D"}}},
  };
  for (const auto& [what, body] : refused) {
    INFO(what);
    test::expect_kv_error(kv->update_rotation_policy(kv.ctx, "k", body), "BadParameter", 400);
  }
  // Still the default after all those refusals.
  CHECK(*kv->get_rotation_policy(kv.ctx, "k") == *def);

  // Accepted: both actions, case-insensitive action types (answered in Key Vault's spelling).
  Json good{
      {"lifetimeActions",
       Json::array(
           {Json{{"trigger", {{"timeBeforeExpiry", "P30D"}}}, {"action", {{"type", "rotate"}}}},
            Json{{"trigger", {{"timeBeforeExpiry", "P10D"}}}, {"action", {{"type", "NOTIFY"}}}}})},
      {"attributes", {{"expiryTime", "P1Y"}}}};
  auto set = kv->update_rotation_policy(kv.ctx, "k", good);
  REQUIRE_OK(set);
  CHECK((*set)["lifetimeActions"][0]["action"]["type"] == "Rotate");
  CHECK((*set)["lifetimeActions"][1]["action"]["type"] == "Notify");
  CHECK((*set)["attributes"]["expiryTime"] == "P1Y");
  CHECK((*set)["attributes"]["created"] == test::kStartTime);
  auto got = kv->get_rotation_policy(kv.ctx, "k");
  REQUIRE_OK(got);
  CHECK(*got == *set);
  // Policies survive a reopen.
  kv.close();
  kv.open();
  CHECK(*kv->get_rotation_policy(kv.ctx, "k") == *set);
  // An empty lifetimeActions goes back to the default actions.
  auto reset = kv->update_rotation_policy(kv.ctx, "k", Json{{"lifetimeActions", Json::array()}});
  REQUIRE_OK(reset);
  CHECK((*reset)["lifetimeActions"] == (*def)["lifetimeActions"]);
  // What the vault answers is accepted back (get, then put, as the SDKs do): the default's Notify
  // before expiry needs no expiryTime, and may fire at once when the expiry is short. (Found by
  // the rotation_policy fuzz target: both were refused.)
  auto resent = kv->update_rotation_policy(
      kv.ctx, "k",
      Json{{"lifetimeActions", (*def)["lifetimeActions"]}, {"attributes", Json::object()}});
  REQUIRE_OK(resent);
  CHECK((*resent)["lifetimeActions"] == (*def)["lifetimeActions"]);
  auto short_expiry =
      kv->update_rotation_policy(kv.ctx, "k",
                                 Json{{"lifetimeActions", (*def)["lifetimeActions"]},
                                      {"attributes", {{"expiryTime", "P28D"}}}});
  REQUIRE_OK(short_expiry);
  CHECK((*short_expiry)["attributes"]["expiryTime"] == "P28D");

  // Unknown keys.
  test::expect_kv_error(kv->get_rotation_policy(kv.ctx, "nope"), "KeyNotFound", 404);
  test::expect_kv_error(kv->update_rotation_policy(kv.ctx, "nope", rotate_after("P30D")),
                        "KeyNotFound", 404);
  test::expect_kv_error(kv->rotate_key(kv.ctx, "nope"), "KeyNotFound", 404);

  // ISO 8601 durations.
  CHECK(*vault::parse_iso8601_duration("P1Y2M3W4DT5H6M7S") ==
        365 * kDay + 60 * kDay + 21 * kDay + 4 * kDay + 5 * 3600 + 6 * 60 + 7);
  CHECK(*vault::parse_iso8601_duration("PT48H") == 2 * kDay);
  for (const char* bad : {"P", "PT", "P1DT", "1D", "P1.5D", "P-1D", "PD", "P1H"}) {
    INFO(bad);
    CHECK_FALSE(vault::parse_iso8601_duration(bad));
  }
}

TEST_CASE("rotate keeps type, size, operations, tags and release policy, and a KEK stays a KEK",
          "[vault][rotation]") {
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "rotate-keeps");
  const std::string policy_json =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://att.example","allOf":[{"claim":"x","equals":"y"}]}]})";
  Json params{{"kty", "EC-HSM"},
              {"crv", "P-384"},
              {"key_ops", Json::array({"sign"})},
              {"tags", {{"team", "payments"}}},
              {"attributes", {{"exportable", true}}},
              {"release_policy", {{"data", base64url_encode(as_bytes(policy_json))}}}};
  auto v1 = mhsm->create_key(mhsm.ctx, "exp-ec", params);
  REQUIRE_OK(v1);
  auto v2 = mhsm->rotate_key(mhsm.ctx, "exp-ec");
  REQUIRE_OK(v2);
  CHECK(test::version_of(*v2) != test::version_of(*v1));
  CHECK((*v2)["key"]["crv"] == "P-384");
  CHECK((*v2)["key"]["key_ops"] == Json::array({"sign"}));
  CHECK((*v2)["tags"] == (*v1)["tags"]);
  CHECK((*v2)["attributes"]["exportable"] == true);
  CHECK((*v2)["release_policy"] == (*v1)["release_policy"]);
  CHECK((*v2)["key"]["x"] != (*v1)["key"]["x"]);
  CHECK_FALSE((*v2)["attributes"].contains("exp"));  // no policy expiryTime

  auto kek = mhsm->create_key(mhsm.ctx, "KEK", test::kek_params(3072));
  REQUIRE_OK(kek);
  auto kek2 = mhsm->rotate_key(mhsm.ctx, "KEK");
  REQUIRE_OK(kek2);
  CHECK((*kek2)["key"]["key_ops"] == Json::array({"import"}));
  CHECK(base64url_decode((*kek2)["key"]["n"].get<std::string>())->size() == 384);
  CK_OBJECT_HANDLE obj = mhsm.object_of("KEK", test::version_of(*kek2));
  CHECK(*mhsm.session.get_bool(obj, CKA_UNWRAP));
  CHECK_FALSE(*mhsm.session.get_bool(obj, CKA_SIGN));

  auto oct = mhsm->create_key(mhsm.ctx, "oct", Json{{"kty", "oct-HSM"}, {"key_size", 192}});
  REQUIRE_OK(oct);
  auto oct2 = mhsm->rotate_key(mhsm.ctx, "oct");
  REQUIRE_OK(oct2);
  // A192KW works on the new version: the size was kept.
  auto w = mhsm->wrap_key(mhsm.ctx, "oct", "",
                          Json{{"alg", "A192KW"}, {"value", base64url_encode(random_bytes(16))}});
  CHECK(w);
}

TEST_CASE("the platform report names exactly the keys whose current version predates the cut-over",
          "[vault][platform]") {
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "platform");
  // Before the cut-over: four kinds of keys, and one that is already deleted.
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "signer", Json{{"kty", "EC-HSM"}}));
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "wrapper", Json{{"kty", "RSA-HSM"}}));
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "scheduled",
                              Json{{"kty", "EC-HSM"}, {"key_ops", Json::array({"sign"})}}));
  REQUIRE_OK(mhsm->update_rotation_policy(mhsm.ctx, "scheduled", rotate_after("P365D")));
  auto ec_key = test::oracle::ec_keygen("prime256v1");
  REQUIRE_OK(mhsm->import_key(mhsm.ctx, "portable",
                              Json{{"key", test::ec_private_jwk(ec_key.get(), "P-256")}}));
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "gone", Json{{"kty", "EC-HSM"}}));
  REQUIRE_OK(mhsm->delete_key(mhsm.ctx, "gone"));
  // A key rotated after the cut-over: its old version is on platform 1, its current one is not.
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "rotated-later", Json{{"kty", "EC-HSM"}}));

  mhsm.clock.advance(10 * kDay);
  const std::int64_t cutover = mhsm.clock.now() - 5 * kDay;
  REQUIRE_OK(mhsm->create_key(mhsm.ctx, "new-one", Json{{"kty", "EC-HSM"}}));
  REQUIRE_OK(mhsm->rotate_key(mhsm.ctx, "rotated-later"));

  // No cut-over: nothing is on platform 1.
  auto before = mhsm->platform_report(mhsm.ctx);
  REQUIRE_OK(before);
  CHECK((*before)["cutover"].is_null());
  CHECK((*before)["keys"].empty());
  CHECK((*mhsm->get_key(mhsm.ctx, "signer"))["attributes"]["hsmPlatform"] == "2");

  vault::VaultSettings s;
  s.platform1_before = cutover;
  REQUIRE_OK(vault::write_vault_settings(mhsm.dir, s));
  auto report = mhsm->platform_report(mhsm.ctx);
  REQUIRE_OK(report);
  INFO(dump_json(*report, 2));
  CHECK((*report)["cutover"] == cutover);
  std::map<std::string, std::string> actions;
  for (const auto& k : (*report)["keys"]) {
    actions[k["name"].get<std::string>()] = k["action"].get<std::string>();
    CHECK(k["hsmPlatform"] == "1");
  }
  const std::map<std::string, std::string> expected{{"portable", "reimport"},
                                                    {"scheduled", "rotate-by-policy"},
                                                    {"signer", "rotate"},
                                                    {"wrapper", "rotate-and-rewrap"}};
  CHECK(actions == expected);
  // The attribute follows the cut-over, version by version.
  CHECK((*mhsm->get_key(mhsm.ctx, "signer"))["attributes"]["hsmPlatform"] == "1");
  CHECK((*mhsm->get_key(mhsm.ctx, "new-one"))["attributes"]["hsmPlatform"] == "2");
  auto versions = mhsm->list_key_versions(mhsm.ctx, "rotated-later");
  REQUIRE_OK(versions);
  REQUIRE((*versions)["value"].size() == 2u);
  CHECK((*versions)["value"][0]["attributes"]["hsmPlatform"] == "1");
  CHECK((*versions)["value"][1]["attributes"]["hsmPlatform"] == "2");

  // Acting on the report empties it: rotate by hand, let the policy rotate, re-import.
  REQUIRE_OK(mhsm->rotate_key(mhsm.ctx, "signer"));
  REQUIRE_OK(mhsm->rotate_key(mhsm.ctx, "wrapper"));
  REQUIRE_OK(mhsm->import_key(mhsm.ctx, "portable",
                              Json{{"key", test::ec_private_jwk(ec_key.get(), "P-256")}}));
  mhsm.clock.advance(356 * kDay);  // "scheduled" is 366 days old: its policy rotates it
  auto after = mhsm->platform_report(mhsm.ctx);
  REQUIRE_OK(after);
  INFO(dump_json(*after, 2));
  CHECK((*after)["keys"].empty());
  CHECK((*mhsm->list_key_versions(mhsm.ctx, "scheduled"))["value"].size() == 2u);
}
