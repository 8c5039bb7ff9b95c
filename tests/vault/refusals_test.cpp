// SPDX-License-Identifier: Apache-2.0
// Every refusal of create/import: the Key Vault code and HTTP status, and a store and token left
// exactly as they were (versions, token objects, session objects).
#include <catch2/catch.hpp>

#include "byok/crypto.h"
#include "core/random.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/vault/vault_rig.h"

using namespace keyport;
namespace oracle = keyport::test::oracle;

namespace {

// Snapshot of what a refused request must not change.
struct Snapshot {
  std::size_t token_objects = 0;
  std::size_t session_secret = 0;
  std::size_t session_private = 0;
  Json keys;
  Json versions;
  std::size_t audit_rows = 0;
};

Snapshot snapshot(test::VaultRig& rig, const std::string& name) {
  Snapshot s;
  s.token_objects = rig.token_objects();
  s.session_secret = test::count_session_objects(rig.session, CKO_SECRET_KEY);
  s.session_private = test::count_session_objects(rig.session, CKO_PRIVATE_KEY);
  s.keys = *rig->list_keys(rig.ctx);
  auto v = rig->list_key_versions(rig.ctx, name);
  s.versions = v ? *v : Json();
  s.audit_rows = rig->audit_log()->size();
  return s;
}

void expect_unchanged(test::VaultRig& rig, const std::string& name, const Snapshot& before) {
  Snapshot after = snapshot(rig, name);
  CHECK(after.token_objects == before.token_objects);
  CHECK(after.session_secret == before.session_secret);
  CHECK(after.session_private == before.session_private);
  CHECK(after.keys == before.keys);
  CHECK(after.versions == before.versions);
  // The snapshot itself adds rows (GetKeys, GetKeyVersions): the refusal added exactly one.
  CHECK(after.audit_rows == before.audit_rows + 3);
}

// Runs a request that must be refused and checks code, status and the unchanged store.
template <typename Fn>
void refused(test::VaultRig& rig, const std::string& what, const std::string& name, Fn&& request,
             std::string_view code, int status, std::string_view inner = {}) {
  INFO(what);
  Snapshot before = snapshot(rig, name);
  Result<Json> r = request();
  test::expect_kv_error(r, code, status, inner);
  expect_unchanged(rig, name, before);
  auto log = rig->audit_log();
  REQUIRE_OK(log);
  // The refusal's own audit row is the one before the snapshot's two reads.
  const auto& row = (*log)[log->size() - 3];
  CHECK(row.outcome == "failure");
  CHECK(row.status == status);
  CHECK(row.code == std::string(code));
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos)) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

}  // namespace

TEST_CASE("refused imports and creates leave the vault unchanged and say why", "[vault][byok]") {
  test::Onprem onprem;
  test::VaultRig kv(vault::Flavor::kKeyVault, "refuse-kv");
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "refuse-mhsm");
  auto kek = kv->create_key(kv.ctx, "KEK", test::kek_params(2048));
  REQUIRE_OK(kek);
  const std::string kid = (*kek)["key"]["kid"].get<std::string>();
  const byok::PublicKey kek_pub = test::public_key_of(*kek);
  auto ec = onprem.generate(*parse_key_spec("ec-p256"), "ref-ec");
  auto aes = onprem.generate(*parse_key_spec("aes-256"), "ref-aes");
  const std::string good = onprem.export_to(ec, kek_pub, kid).to_json();
  // Something already imported under the target name, so "versions unchanged" means something.
  REQUIRE_OK(kv->import_key(kv.ctx, "target", test::byok_body(good, "EC-HSM", "P-256")));
  const std::string bad = "BadParameter";

  refused(
      kv, "KEK version that does not exist", "target",
      [&] {
        std::string other = kid.substr(0, kid.rfind('/') + 1) + std::string(32, 'a');
        return kv->import_key(kv.ctx, "target",
                              test::byok_body(replace_all(good, kid, other), "EC-HSM", "P-256"));
      },
      bad, 400);
  refused(
      kv, "unversioned kid", "target",
      [&] {
        std::string unversioned = kid.substr(0, kid.rfind('/'));
        return kv->import_key(
            kv.ctx, "target",
            test::byok_body(replace_all(good, kid, unversioned), "EC-HSM", "P-256"));
      },
      bad, 400);
  refused(
      kv, "kid of another vault host", "target",
      [&] {
        std::string other = replace_all(kid, "refuse-kv.vault.azure.net", "other.vault.azure.net");
        auto file = onprem.export_to(ec, kek_pub, other);
        return kv->import_key(kv.ctx, "target", test::byok_body(file.to_json(), "EC-HSM", "P-256"));
      },
      bad, 400);
  {
    // An RSA key without "import" in key_ops cannot act as KEK.
    auto plain = kv->create_key(kv.ctx, "not-a-kek", Json{{"kty", "RSA-HSM"}});
    REQUIRE_OK(plain);
    refused(
        kv, "KEK without import", "target",
        [&] {
          auto file = onprem.export_to(ec, test::public_key_of(*plain),
                                       (*plain)["key"]["kid"].get<std::string>());
          return kv->import_key(kv.ctx, "target",
                                test::byok_body(file.to_json(), "EC-HSM", "P-256"));
        },
        bad, 400);
  }
  refused(
      kv, "KEK key_ops import+sign at create", "KEK2",
      [&] {
        return kv->create_key(
            kv.ctx, "KEK2", Json{{"kty", "RSA-HSM"}, {"key_ops", Json::array({"import", "sign"})}});
      },
      bad, 400);
  refused(
      kv, "tampered ciphertext", "target",
      [&] {
        auto file = onprem.export_to(ec, kek_pub, kid);
        file.ciphertext[256 + 5] ^= 0x40;
        return kv->import_key(kv.ctx, "target", test::byok_body(file.to_json(), "EC-HSM", "P-256"));
      },
      bad, 400);
  refused(
      kv, "RSA_AES_KEY_WRAP_256 on SoftHSM", "target",
      [&] {
        // Built in software: the on-prem SoftHSM cannot do OAEP-SHA256 either.
        auto k = oracle::ec_keygen("prime256v1");
        auto blob = byok::rsa_aes_wrap(kek_pub.spki_der(), WrapAlg::kRsaAesKeyWrap256,
                                       SecretBytes(oracle::pkcs8_der(k.get())));
        REQUIRE_OK(blob);
        byok::ByokFile f;
        f.kid = kid;
        f.enc = WrapAlg::kRsaAesKeyWrap256;
        f.ciphertext = *blob;
        f.generator = "test";
        auto r = kv->import_key(kv.ctx, "target", test::byok_body(f.to_json(), "EC-HSM", "P-256"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message().find("RSA_AES_KEY_WRAP_256") != std::string::npos);
        CHECK(r.error().message().find("SHA-256") != std::string::npos);
        return r;
      },
      bad, 400);
  refused(
      kv, "EC blob declared RSA", "target",
      [&] { return kv->import_key(kv.ctx, "target", test::byok_body(good, "RSA-HSM")); }, bad, 400);
  refused(
      kv, "EC P-256 blob declared P-384", "target",
      [&] { return kv->import_key(kv.ctx, "target", test::byok_body(good, "EC-HSM", "P-384")); },
      bad, 400);
  {
    auto mkek = mhsm->create_key(mhsm.ctx, "KEK", test::kek_params(2048));
    REQUIRE_OK(mkek);
    auto file =
        onprem.export_to(ec, test::public_key_of(*mkek), (*mkek)["key"]["kid"].get<std::string>());
    refused(
        mhsm, "EC blob declared oct-HSM", "target",
        [&] {
          return mhsm->import_key(mhsm.ctx, "target", test::byok_body(file.to_json(), "oct-HSM"));
        },
        bad, 400);
    auto aes_file =
        onprem.export_to(aes, test::public_key_of(*mkek), (*mkek)["key"]["kid"].get<std::string>());
    refused(
        mhsm, "AES blob declared EC", "target",
        [&] {
          return mhsm->import_key(mhsm.ctx, "target",
                                  test::byok_body(aes_file.to_json(), "EC-HSM", "P-256"));
        },
        bad, 400);
    REQUIRE_OK(
        mhsm->import_key(mhsm.ctx, "aes-ok", test::byok_body(aes_file.to_json(), "oct-HSM")));
  }
  refused(
      kv, "oct into a key-vault flavour", "aes",
      [&] {
        auto file = onprem.export_to(aes, kek_pub, kid);
        auto r = kv->import_key(kv.ctx, "aes", test::byok_body(file.to_json(), "oct-HSM"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message().find("Managed HSM") != std::string::npos);
        return r;
      },
      bad, 400);
  refused(
      kv, "oct-HSM create in a key-vault flavour", "aes",
      [&] {
        return kv->create_key(kv.ctx, "aes", Json{{"kty", "oct-HSM"}});
      },
      bad, 400);
  refused(
      kv, "exportable without policy", "exp",
      [&] {
        return kv->create_key(kv.ctx, "exp",
                              Json{{"kty", "EC-HSM"}, {"attributes", {{"exportable", true}}}});
      },
      bad, 400);
  refused(
      kv, "policy without exportable", "exp",
      [&] {
        return kv->create_key(
            kv.ctx, "exp",
            Json{{"kty", "EC-HSM"},
                 {"release_policy",
                  {{"data", base64url_encode(as_bytes("{\"version\":\"1.0.0\"}"))}}}});
      },
      bad, 400);
  refused(
      kv, "name with _", "bad_name",
      [&] {
        return kv->create_key(kv.ctx, "bad_name", Json{{"kty", "EC-HSM"}});
      },
      bad, 400);
  refused(
      kv, "import under a name with _", "bad_name",
      [&] { return kv->import_key(kv.ctx, "bad_name", test::byok_body(good, "EC-HSM", "P-256")); },
      bad, 400);
  refused(
      kv, "RSA size 1024", "small",
      [&] {
        return kv->create_key(kv.ctx, "small", Json{{"kty", "RSA-HSM"}, {"key_size", 1024}});
      },
      bad, 400);
  refused(
      kv, "unknown key operation", "ops",
      [&] {
        return kv->create_key(kv.ctx, "ops",
                              Json{{"kty", "EC-HSM"}, {"key_ops", Json::array({"encrypt"})}});
      },
      bad, 400);
  refused(
      kv, "key_hsm that is not base64", "target",
      [&] {
        return kv->import_key(
            kv.ctx, "target",
            Json{{"key", {{"kty", "EC-HSM"}, {"crv", "P-256"}, {"key_hsm", "not base64!"}}}});
      },
      bad, 400);
  {
    // A disabled or deleted KEK cannot import.
    auto kek2 = kv->create_key(kv.ctx, "KEK-off", test::kek_params(2048));
    REQUIRE_OK(kek2);
    const std::string kid2 = (*kek2)["key"]["kid"].get<std::string>();
    auto file = onprem.export_to(ec, test::public_key_of(*kek2), kid2).to_json();
    REQUIRE_OK(kv->update_key(kv.ctx, "KEK-off", "", Json{{"attributes", {{"enabled", false}}}}));
    refused(
        kv, "disabled KEK", "target",
        [&] { return kv->import_key(kv.ctx, "target", test::byok_body(file, "EC-HSM", "P-256")); },
        bad, 400);
    REQUIRE_OK(kv->update_key(kv.ctx, "KEK-off", "", Json{{"attributes", {{"enabled", true}}}}));
    REQUIRE_OK(kv->import_key(kv.ctx, "kek-off-ok", test::byok_body(file, "EC-HSM", "P-256")));
    REQUIRE_OK(kv->delete_key(kv.ctx, "KEK-off"));
    refused(
        kv, "deleted KEK", "target",
        [&] { return kv->import_key(kv.ctx, "target", test::byok_body(file, "EC-HSM", "P-256")); },
        bad, 400);
  }
  {
    // A name that is deleted but recoverable cannot be reused, by create or by import.
    REQUIRE_OK(kv->delete_key(kv.ctx, "target"));
    refused(
        kv, "import under a deleted name", "target",
        [&] { return kv->import_key(kv.ctx, "target", test::byok_body(good, "EC-HSM", "P-256")); },
        "Conflict", 409, vault::kObjectIsDeletedButRecoverable);
    refused(
        kv, "create under a deleted name (other case)", "TARGET",
        [&] {
          return kv->create_key(kv.ctx, "TARGET", Json{{"kty", "EC-HSM"}});
        },
        "Conflict", 409, vault::kObjectIsDeletedButRecoverable);
  }
}
