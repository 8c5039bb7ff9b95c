// SPDX-License-Identifier: Apache-2.0
// Key lifecycle with Key Vault semantics: KeyBundle shapes, versions, update, soft-delete,
// recover, purge, names, attributes and their enforcement.
#include <catch2/catch.hpp>

#include "core/random.h"
#include "tests/support/softhsm.h"
#include "tests/vault/vault_rig.h"

using namespace keyport;

namespace {

Json sign_body(const std::string& alg = "ES256") {
  return Json{{"alg", alg}, {"value", base64url_encode(test::digest_of(alg, random_bytes(9)))}};
}

}  // namespace

TEST_CASE("a created key's KeyBundle has Key Vault's shape", "[vault]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "shape");
  auto b = kv->create_key(kv.ctx, "rsa1", Json{{"kty", "RSA-HSM"}, {"tags", {{"env", "test"}}}});
  REQUIRE_OK(b);
  INFO(dump_json(*b, 2));
  const Json& key = (*b)["key"];
  const std::string version = test::version_of(*b);
  CHECK(version.size() == 32);
  CHECK(version.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(key["kid"] == "https://shape.vault.azure.net/keys/rsa1/" + version);
  CHECK(key["kty"] == "RSA-HSM");
  CHECK(key["key_ops"] ==
        Json::array({"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}));
  CHECK(key["e"] == "AQAB");
  CHECK(base64url_decode(key["n"].get<std::string>())->size() == 256);
  CHECK_FALSE(key.contains("d"));
  const Json& a = (*b)["attributes"];
  CHECK(a["enabled"] == true);
  CHECK(a["created"] == test::kStartTime);
  CHECK(a["updated"] == test::kStartTime);
  CHECK(a["recoveryLevel"] == "Recoverable+Purgeable");
  CHECK(a["recoverableDays"] == 90);
  CHECK(a["exportable"] == false);
  CHECK(a["hsmPlatform"] == "2");
  CHECK_FALSE(a.contains("nbf"));
  CHECK_FALSE(a.contains("exp"));
  CHECK((*b)["tags"] == Json{{"env", "test"}});
  CHECK_FALSE(b->contains("release_policy"));

  // EC defaults and curves; oct only on Managed HSM.
  for (const char* crv : {"P-256", "P-384", "P-521", "P-256K"}) {
    auto ec = kv->create_key(kv.ctx, std::string("ec-") + (crv + 2),
                             Json{{"kty", "EC-HSM"}, {"crv", crv}});
    REQUIRE_OK(ec);
    CHECK((*ec)["key"]["crv"] == crv);
    CHECK((*ec)["key"]["key_ops"] == Json::array({"sign", "verify"}));
    CHECK((*ec)["key"].contains("x"));
    CHECK((*ec)["key"].contains("y"));
  }
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "shape-mhsm");
  for (int bits : {128, 192, 256}) {
    auto oct = mhsm->create_key(mhsm.ctx, "oct" + std::to_string(bits),
                                Json{{"kty", "oct-HSM"}, {"key_size", bits}});
    REQUIRE_OK(oct);
    CHECK((*oct)["key"]["kty"] == "oct-HSM");
    CHECK((*oct)["key"]["key_ops"] == Json::array({"encrypt", "decrypt", "wrapKey", "unwrapKey"}));
    CHECK_FALSE((*oct)["key"].contains("k"));
    CHECK((*oct)["key"]["kid"].get<std::string>().rfind(
              "https://shape-mhsm.managedhsm.azure.net/keys/", 0) == 0);
  }
  // The token objects are what the vault promises.
  CK_OBJECT_HANDLE obj = kv.object_of("rsa1", version);
  CHECK(*kv.session.get_bool(obj, CKA_TOKEN));
  CHECK(*kv.session.get_bool(obj, CKA_SENSITIVE));
  // Extractable so that BackupKey can wrap it under the backup-domain key (vault_impl.h).
  CHECK(*kv.session.get_bool(obj, CKA_EXTRACTABLE));
  CHECK(kv.session.get_bytes(obj, CKA_ID)->size() == 16);
}

TEST_CASE("versions, get, list and update follow Key Vault", "[vault]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "versions");
  auto v1 = kv->create_key(kv.ctx, "Multi", Json{{"kty", "EC-HSM"}});
  REQUIRE_OK(v1);
  kv.clock.advance(10);
  auto v2 = kv->create_key(kv.ctx, "multi", Json{{"kty", "EC-HSM"}, {"crv", "P-384"}});
  REQUIRE_OK(v2);
  // Names compare without case; the kid keeps the first spelling.
  CHECK((*v2)["key"]["kid"].get<std::string>().find("/keys/Multi/") != std::string::npos);
  // ... and so does the token object's label.
  CHECK(*kv.session.get_bool(kv.object_of("Multi", test::version_of(*v2)), CKA_SENSITIVE));
  auto latest = kv->get_key(kv.ctx, "MULTI");
  REQUIRE_OK(latest);
  CHECK((*latest)["key"]["kid"] == (*v2)["key"]["kid"]);
  auto first = kv->get_key(kv.ctx, "Multi", test::version_of(*v1));
  REQUIRE_OK(first);
  CHECK((*first)["key"]["crv"] == "P-256");
  auto versions = kv->list_key_versions(kv.ctx, "Multi");
  REQUIRE_OK(versions);
  REQUIRE((*versions)["value"].size() == 2);
  CHECK((*versions)["value"][0]["kid"] == (*v1)["key"]["kid"]);
  CHECK((*versions)["value"][1]["kid"] == (*v2)["key"]["kid"]);
  auto list = kv->list_keys(kv.ctx);
  REQUIRE_OK(list);
  REQUIRE((*list)["value"].size() == 1);
  CHECK((*list)["value"][0]["kid"] == "https://versions.vault.azure.net/keys/Multi");
  CHECK((*list)["value"][0]["attributes"]["created"] == test::kStartTime + 10);
  CHECK((*list)["nextLink"].is_null());

  test::expect_kv_error(kv->get_key(kv.ctx, "Multi", std::string(32, 'f')), "KeyNotFound", 404);
  test::expect_kv_error(kv->get_key(kv.ctx, "nothere"), "KeyNotFound", 404);
  test::expect_kv_error(kv->list_key_versions(kv.ctx, "nothere"), "KeyNotFound", 404);

  // Update: tags, nbf/exp, key_ops; enforcement follows.
  kv.clock.advance(5);
  auto u = kv->update_key(kv.ctx, "Multi", "",
                          Json{{"tags", {{"a", "1"}}},
                               {"attributes", {{"exp", test::kStartTime + 100}}},
                               {"key_ops", Json::array({"verify"})}});
  REQUIRE_OK(u);
  CHECK((*u)["tags"] == Json{{"a", "1"}});
  CHECK((*u)["attributes"]["exp"] == test::kStartTime + 100);
  CHECK((*u)["attributes"]["updated"] == test::kStartTime + 15);
  CHECK((*u)["attributes"]["created"] == test::kStartTime + 10);
  CHECK((*u)["key"]["key_ops"] == Json::array({"verify"}));
  test::expect_kv_error(kv->sign(kv.ctx, "Multi", "", sign_body("ES384")), "Forbidden", 403,
                        vault::kKeyOperationForbidden);
  REQUIRE_OK(
      kv->update_key(kv.ctx, "Multi", "", Json{{"key_ops", Json::array({"sign", "verify"})}}));
  auto sig = kv->sign(kv.ctx, "Multi", "", sign_body("ES384"));
  REQUIRE_OK(sig);
  // After exp: sign is refused, verify still works (spec §2.4).
  kv.clock.advance(200);
  test::expect_kv_error(kv->sign(kv.ctx, "Multi", "", sign_body("ES384")), "Forbidden", 403);
  auto ver = kv->verify(kv.ctx, "Multi", "",
                        Json{{"alg", "ES384"},
                             {"digest", base64url_encode(random_bytes(48))},
                             {"value", (*sig)["value"]}});
  REQUIRE_OK(ver);
  CHECK((*ver)["value"] == false);
  // nbf in the future: not yet valid.
  REQUIRE_OK(kv->update_key(kv.ctx, "Multi", test::version_of(*v1),
                            Json{{"attributes", {{"nbf", kv.clock.now() + 1000}}}}));
  test::expect_kv_error(kv->sign(kv.ctx, "Multi", test::version_of(*v1), sign_body()), "Forbidden",
                        403);
  // Disabled: every use, including get, is 403 KeyDisabled; update still works.
  REQUIRE_OK(kv->update_key(kv.ctx, "Multi", test::version_of(*v1),
                            Json{{"attributes", {{"enabled", false}, {"nbf", test::kStartTime}}}}));
  test::expect_kv_error(kv->get_key(kv.ctx, "Multi", test::version_of(*v1)), "Forbidden", 403,
                        vault::kKeyDisabled);
  test::expect_kv_error(kv->sign(kv.ctx, "Multi", test::version_of(*v1), sign_body()), "Forbidden",
                        403, vault::kKeyDisabled);
  REQUIRE_OK(kv->update_key(kv.ctx, "Multi", test::version_of(*v1),
                            Json{{"attributes", {{"enabled", true}}}}));
  REQUIRE_OK(kv->sign(kv.ctx, "Multi", test::version_of(*v1), sign_body()));

  // Refused updates.
  test::expect_kv_error(
      kv->update_key(kv.ctx, "Multi", "", Json{{"key_ops", Json::array({"import"})}}),
      "BadParameter", 400);
  test::expect_kv_error(
      kv->update_key(kv.ctx, "Multi", "", Json{{"attributes", {{"exportable", true}}}}),
      "BadParameter", 400);
  test::expect_kv_error(kv->update_key(kv.ctx, "Multi", "", Json{{"tags", "x"}}), "BadParameter",
                        400);
}

TEST_CASE("exportable keys carry their release policy, and an immutable policy never changes",
          "[vault]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "policy");
  const std::string policy =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://attest.example","allOf":[{"claim":"x","equals":"y"}]}]})";
  Json body{
      {"kty", "RSA-HSM"},
      {"attributes", {{"exportable", true}}},
      {"release_policy", {{"data", base64url_encode(as_bytes(policy))}, {"immutable", true}}}};
  auto b = kv->create_key(kv.ctx, "exp", body);
  REQUIRE_OK(b);
  CHECK((*b)["attributes"]["exportable"] == true);
  CHECK((*b)["release_policy"]["contentType"] == "application/json; charset=utf-8");
  CHECK((*b)["release_policy"]["immutable"] == true);
  CHECK(*base64url_decode((*b)["release_policy"]["data"].get<std::string>()) ==
        Bytes(policy.begin(), policy.end()));
  // Exportable keys are created extractable (release will wrap them out), still sensitive.
  CK_OBJECT_HANDLE obj = kv.object_of("exp", test::version_of(*b));
  CHECK(*kv.session.get_bool(obj, CKA_EXTRACTABLE));
  CHECK(*kv.session.get_bool(obj, CKA_SENSITIVE));

  // (A policy must parse: an empty anyOf is refused at create and update, as Azure does.)
  const std::string other =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://other.example","allOf":[{"claim":"x","equals":"z"}]}]})";
  test::expect_kv_error(
      kv->update_key(kv.ctx, "exp", "",
                     Json{{"release_policy", {{"data", base64url_encode(as_bytes(other))}}}}),
      "BadParameter", 400);
  test::expect_kv_error(
      kv->update_key(kv.ctx, "exp", "",
                     Json{{"release_policy",
                           {{"data", base64url_encode(as_bytes(policy))}, {"immutable", false}}}}),
      "BadParameter", 400);
  // The same immutable policy again is no change, so it is accepted.
  REQUIRE_OK(kv->update_key(kv.ctx, "exp", "", Json{{"release_policy", (*b)["release_policy"]}}));

  // A mutable policy can be replaced (and data may come as standard base64).
  body["release_policy"]["immutable"] = false;
  auto m = kv->create_key(kv.ctx, "exp2", body);
  REQUIRE_OK(m);
  auto u = kv->update_key(
      kv.ctx, "exp2", "",
      Json{{"release_policy", {{"data", base64_encode(as_bytes(other))}, {"immutable", true}}}});
  REQUIRE_OK(u);
  CHECK(*base64url_decode((*u)["release_policy"]["data"].get<std::string>()) ==
        Bytes(other.begin(), other.end()));
  // Policy data must be a release policy: JSON, and of the policy grammar.
  test::expect_kv_error(
      kv->create_key(
          kv.ctx, "exp4",
          Json{{"kty", "EC-HSM"},
               {"attributes", {{"exportable", true}}},
               {"release_policy",
                {{"data", base64url_encode(as_bytes(R"({"version":"1.0.0","anyOf":[]})"))}}}}),
      "BadParameter", 400);
  test::expect_kv_error(
      kv->create_key(kv.ctx, "exp3",
                     Json{{"kty", "EC-HSM"},
                          {"attributes", {{"exportable", true}}},
                          {"release_policy", {{"data", base64url_encode(as_bytes("not json"))}}}}),
      "BadParameter", 400);
  // A KEK cannot be exportable.
  Json kek = test::kek_params(2048);
  kek["attributes"] = {{"exportable", true}};
  kek["release_policy"] = {{"data", base64url_encode(as_bytes(policy))}};
  test::expect_kv_error(kv->create_key(kv.ctx, "kek", kek), "BadParameter", 400);
}

TEST_CASE("soft-delete, recover, delete again, purge: the key and its token objects are gone",
          "[vault]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "softdelete");
  const std::size_t objects0 = kv.token_objects();
  auto v1 = kv->create_key(kv.ctx, "gone", Json{{"kty", "EC-HSM"}});
  auto v2 = kv->create_key(kv.ctx, "gone", Json{{"kty", "EC-HSM"}});
  REQUIRE_OK(v1);
  REQUIRE_OK(v2);
  REQUIRE_OK(kv->create_key(kv.ctx, "stays", Json{{"kty", "EC-HSM"}}));
  CHECK(kv.token_objects() == objects0 + 3);

  kv.clock.advance(100);
  auto deleted = kv->delete_key(kv.ctx, "gone");
  REQUIRE_OK(deleted);
  INFO(dump_json(*deleted, 2));
  CHECK((*deleted)["recoveryId"] == "https://softdelete.vault.azure.net/deletedkeys/gone");
  CHECK((*deleted)["deletedDate"] == test::kStartTime + 100);
  CHECK((*deleted)["scheduledPurgeDate"] == test::kStartTime + 100 + 90 * 86400);
  CHECK((*deleted)["key"]["kid"] == (*v2)["key"]["kid"]);

  test::expect_kv_error(kv->get_key(kv.ctx, "gone"), "KeyNotFound", 404);
  test::expect_kv_error(kv->sign(kv.ctx, "gone", "", sign_body()), "KeyNotFound", 404);
  test::expect_kv_error(kv->delete_key(kv.ctx, "gone"), "KeyNotFound", 404);
  test::expect_kv_error(kv->get_deleted_key(kv.ctx, "stays"), "KeyNotFound", 404);
  CHECK((*kv->list_keys(kv.ctx))["value"].size() == 1);
  auto dl = kv->list_deleted_keys(kv.ctx);
  REQUIRE_OK(dl);
  REQUIRE((*dl)["value"].size() == 1);
  CHECK((*dl)["value"][0]["kid"] == "https://softdelete.vault.azure.net/keys/gone");
  CHECK((*dl)["value"][0]["recoveryId"] == (*deleted)["recoveryId"]);
  auto gd = kv->get_deleted_key(kv.ctx, "gone");
  REQUIRE_OK(gd);
  CHECK(*gd == *deleted);
  // Soft-deleted keys keep their token objects.
  CHECK(kv.token_objects() == objects0 + 3);

  auto recovered = kv->recover_deleted_key(kv.ctx, "gone");
  REQUIRE_OK(recovered);
  CHECK((*recovered)["key"]["kid"] == (*v2)["key"]["kid"]);
  REQUIRE_OK(kv->get_key(kv.ctx, "gone"));
  REQUIRE_OK(kv->sign(kv.ctx, "gone", test::version_of(*v1), sign_body()));
  test::expect_kv_error(kv->recover_deleted_key(kv.ctx, "gone"), "KeyNotFound", 404);
  CHECK(kv->purge_deleted_key(kv.ctx, "gone").error().detail() == "KeyNotFound");

  REQUIRE_OK(kv->delete_key(kv.ctx, "gone"));
  REQUIRE_OK(kv->purge_deleted_key(kv.ctx, "gone"));
  test::expect_kv_error(kv->get_deleted_key(kv.ctx, "gone"), "KeyNotFound", 404);
  test::expect_kv_error(kv->get_key(kv.ctx, "gone"), "KeyNotFound", 404);
  CHECK((*kv->list_deleted_keys(kv.ctx))["value"].empty());
  // Both versions' token objects are destroyed; the other key's stays.
  CHECK(kv.token_objects() == objects0 + 1);
  // The name is free again.
  REQUIRE_OK(kv->create_key(kv.ctx, "gone", Json{{"kty", "EC-HSM"}}));
  auto audit = kv->audit_log();
  REQUIRE_OK(audit);
  bool saw_purge = false;
  for (const auto& row : *audit) {
    if (row.operation == "PurgeDeletedKey" && row.outcome == "success") {
      saw_purge = true;
      CHECK(row.status == 204);
      CHECK(row.reason.find("destroyed 2 token object(s)") != std::string::npos);
    }
  }
  CHECK(saw_purge);
}

TEST_CASE("error values map to Key Vault REST errors", "[vault][unit]") {
  auto e = vault::deleted_but_recoverable("k").value();
  CHECK(e.detail() == "Conflict");
  CHECK(vault::http_status_for(e) == 409);
  Json body = vault::error_body(e);
  CHECK(body["error"]["code"] == "Conflict");
  CHECK(body["error"]["innererror"]["code"] == "ObjectIsDeletedButRecoverable");
  CHECK(vault::http_status_for(vault::key_disabled("sign").value()) == 403);
  CHECK(vault::kv_inner_code(vault::key_disabled("sign").value()) == "KeyDisabled");
  CHECK(vault::http_status_for(vault::key_not_found("k").value()) == 404);
  CHECK(vault::http_status_for(vault::bad_parameter("x").value()) == 400);
  CHECK_FALSE(vault::error_body(vault::bad_parameter("x").value())["error"].contains("innererror"));
  // Errors without a detail are classified by category.
  CHECK(vault::http_status_for(Error(ErrorCode::kIntegrityFailure, "x")) == 400);
  CHECK(vault::http_status_for(Error(ErrorCode::kAuth, "x")) == 401);
  CHECK(vault::http_status_for(Error(ErrorCode::kPkcs11, "x")) == 500);
  CHECK(vault::kv_code(Error(ErrorCode::kPkcs11, "x")) == "InternalServerError");
}
