// SPDX-License-Identifier: Apache-2.0
// Durability (state survives reopen, a crash mid-import leaves no half key), the audit log (one
// row per operation, no secrets) and concurrent use.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/file_io.h"
#include "core/random.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/vault/vault_rig.h"

using namespace keyport;
namespace oracle = keyport::test::oracle;

namespace {

// vault.db and its WAL, as bytes.
Bytes database_bytes(const std::filesystem::path& dir) {
  Bytes all;
  for (const char* f : {"vault.db", "vault.db-wal", "vault.db-shm"}) {
    auto b = read_file(dir / f, 256u << 20);
    if (b) {
      all.insert(all.end(), b->begin(), b->end());
    }
  }
  return all;
}

}  // namespace

TEST_CASE("a crash between token object and database row leaves no half key after reopen",
          "[vault][durability]") {
  test::Onprem onprem;
  test::VaultRig kv(vault::Flavor::kKeyVault, "crashy");
  auto kek = kv->create_key(kv.ctx, "KEK", test::kek_params(2048));
  REQUIRE_OK(kek);
  auto key = onprem.generate(*parse_key_spec("rsa-2048"), "crash-rsa");
  const std::string file =
      onprem.export_to(key, test::public_key_of(*kek), (*kek)["key"]["kid"].get<std::string>())
          .to_json();
  REQUIRE_OK(kv->import_key(kv.ctx, "imported", test::byok_body(file, "RSA-HSM")));
  const std::size_t objects = kv.token_objects();
  const std::size_t audit_rows = kv->audit_log()->size();

  kv.close();
  kv.open(vault::CrashPoint::kAfterTokenObject);
  auto crashed = kv->import_key(kv.ctx, "imported", test::byok_body(file, "RSA-HSM"));
  REQUIRE_FALSE(crashed.has_value());
  CHECK(crashed.error().message().find("simulated crash") != std::string::npos);
  auto crashed_create = kv->create_key(kv.ctx, "fresh", Json{{"kty", "EC-HSM"}});
  REQUIRE_FALSE(crashed_create.has_value());
  // The half keys exist in the token, but no version row does.
  CHECK(kv.token_objects() == objects + 2);
  CHECK((*kv->list_key_versions(kv.ctx, "imported"))["value"].size() == 1);
  test::expect_kv_error(kv->get_key(kv.ctx, "fresh"), "KeyNotFound", 404);

  // Reopen: the journal destroys both half-made objects and says so in the audit log.
  kv.close();
  kv.open();
  CHECK(kv.token_objects() == objects);
  auto log = kv->audit_log(0);
  REQUIRE_OK(log);
  std::size_t replays = 0;
  for (const auto& row : *log) {
    if (row.operation == "JournalReplay") {
      ++replays;
      CHECK(row.caller == "vault");
      CHECK(row.outcome == "success");
      CHECK(row.reason.find("interrupted create") != std::string::npos);
      CHECK((row.key_name == "imported" || row.key_name == "fresh"));
    }
  }
  CHECK(replays == 2);
  CHECK(log->size() > audit_rows);
  // Everything committed before the crash survived, and the vault works.
  auto versions = kv->list_key_versions(kv.ctx, "imported");
  REQUIRE_OK(versions);
  CHECK((*versions)["value"].size() == 1);
  REQUIRE_OK(kv->import_key(kv.ctx, "imported", test::byok_body(file, "RSA-HSM")));
  REQUIRE_OK(kv->create_key(kv.ctx, "fresh", Json{{"kty", "EC-HSM"}}));
  CHECK(kv.token_objects() == objects + 2);
}

TEST_CASE("state survives closing and reopening the vault", "[vault][durability]") {
  test::VaultRig kv(vault::Flavor::kManagedHsm, "reopen");
  auto a = kv->create_key(kv.ctx, "a", Json{{"kty", "EC-HSM"}, {"tags", {{"t", "1"}}}});
  auto b = kv->create_key(kv.ctx, "b", Json{{"kty", "oct-HSM"}});
  REQUIRE_OK(a);
  REQUIRE_OK(b);
  REQUIRE_OK(
      kv->update_key(kv.ctx, "a", "", Json{{"attributes", {{"exp", test::kStartTime + 50}}}}));
  REQUIRE_OK(kv->delete_key(kv.ctx, "b"));
  Bytes data = random_bytes(32);
  Bytes w;
  {
    REQUIRE_OK(kv->create_key(kv.ctx, "c", Json{{"kty", "oct-HSM"}}));
    auto r =
        kv->wrap_key(kv.ctx, "c", "", Json{{"alg", "A256KW"}, {"value", base64url_encode(data)}});
    REQUIRE_OK(r);
    w = *base64url_decode((*r)["value"].get<std::string>());
  }
  auto before_a = kv->get_key(kv.ctx, "a");
  auto before_deleted = kv->get_deleted_key(kv.ctx, "b");
  const std::size_t rows = kv->audit_log()->size();
  kv.close();
  kv.open();
  CHECK(*kv->get_key(kv.ctx, "a") == *before_a);
  CHECK(*kv->get_deleted_key(kv.ctx, "b") == *before_deleted);
  auto r = kv->unwrap_key(kv.ctx, "c", "", Json{{"alg", "A256KW"}, {"value", base64url_encode(w)}});
  REQUIRE_OK(r);
  CHECK(*base64url_decode((*r)["value"].get<std::string>()) == data);
  // The audit log survived too (plus the reads above and the OpenVault row).
  CHECK(kv->audit_log()->size() >= rows + 1);
  // A second Vault on the same folder is refused while the first is open.
  vault::VaultOptions o;
  o.module = test::SoftHsm::get().module();
  o.token_label = test::kVaultToken;
  o.pin = SecretBytes::from_string(test::kVaultPin);
  auto second = vault::Vault::open(kv.dir, std::move(o));
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().code() == ErrorCode::kAlreadyExists);
}

TEST_CASE("the audit log has one row per operation, refusals included, and no secrets",
          "[vault][audit]") {
  test::VaultRig mhsm(vault::Flavor::kManagedHsm, "audited");
  mhsm.ctx.caller = "alice@example";
  const std::int64_t start = mhsm->audit_log()->back().id;
  // Secrets the test knows: plain-imported private keys, data given to wrapKey and decrypt.
  auto rsa = oracle::rsa_keygen(2048);
  Json rsa_jwk = test::rsa_private_jwk(rsa.get());
  auto ec = oracle::ec_keygen("prime256v1");
  Json ec_jwk = test::ec_private_jwk(ec.get(), "P-256");
  Bytes k = random_bytes(32);
  Bytes wrap_plain = random_bytes(32);
  Bytes enc_plain = random_bytes(48);

  struct Expect {
    std::string operation;
    std::string outcome;
    int status;
  };
  std::vector<Expect> expected;
  auto track = [&](const std::string& op, bool ok, int status) {
    expected.push_back({op, ok ? "success" : "failure", status});
  };
  track("ImportKey", mhsm->import_key(mhsm.ctx, "rsa", Json{{"key", rsa_jwk}}).has_value(), 200);
  track("ImportKey", mhsm->import_key(mhsm.ctx, "ec", Json{{"key", ec_jwk}}).has_value(), 200);
  track("ImportKey",
        mhsm->import_key(mhsm.ctx, "oct",
                         Json{{"key", {{"kty", "oct-HSM"}, {"k", base64url_encode(k)}}}})
            .has_value(),
        200);
  track("ImportKey", mhsm->import_key(mhsm.ctx, "bad_name", Json{{"key", ec_jwk}}).has_value(),
        400);
  auto w = mhsm->wrap_key(mhsm.ctx, "oct", "",
                          Json{{"alg", "A256KW"}, {"value", base64url_encode(wrap_plain)}});
  track("WrapKey", w.has_value(), 200);
  track("UnwrapKey",
        mhsm->unwrap_key(mhsm.ctx, "oct", "", Json{{"alg", "A256KW"}, {"value", (*w)["value"]}})
            .has_value(),
        200);
  auto pub = test::openssl_public(*mhsm->get_key(mhsm.ctx, "rsa"));
  track("GetKey", true, 200);
  Bytes ct = test::openssl_encrypt(pub.get(), "RSA-OAEP-256", enc_plain);
  track("Decrypt",
        mhsm->decrypt(mhsm.ctx, "rsa", "",
                      Json{{"alg", "RSA-OAEP-256"}, {"value", base64url_encode(ct)}})
            .has_value(),
        200);
  track("Sign",
        mhsm->sign(mhsm.ctx, "ec", "", Json{{"alg", "ES256"}, {"value", "AAAA"}}).has_value(), 400);
  track("GetKey", mhsm->get_key(mhsm.ctx, "missing").has_value(), 404);
  track("DeleteKey", mhsm->delete_key(mhsm.ctx, "ec").has_value(), 200);
  track("CreateKey", mhsm->create_key(mhsm.ctx, "ec", Json{{"kty", "EC-HSM"}}).has_value(), 409);
  track("GetKeys", mhsm->list_keys(mhsm.ctx).has_value(), 200);

  auto log = mhsm->audit_log(start);
  REQUIRE_OK(log);
  REQUIRE(log->size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO(i << " " << expected[i].operation);
    const auto& row = (*log)[i];
    CHECK(row.operation == expected[i].operation);
    CHECK(row.outcome == expected[i].outcome);
    CHECK(row.status == expected[i].status);
    CHECK(row.caller == "alice@example");
    CHECK(row.time == test::kStartTime);
    CHECK((row.outcome == "success") == row.code.empty());
  }
  CHECK((*log)[0].key_name == "rsa");
  CHECK((*log)[0].version.size() == 32);
  CHECK((*log)[11].code == "Conflict");

  // No secret reached the database, in raw or base64url form.
  mhsm.close();
  Bytes db = database_bytes(mhsm.dir);
  REQUIRE(db.size() > 1000);
  std::vector<std::pair<std::string, Bytes>> secrets = {
      {"k", k}, {"wrapKey plaintext", wrap_plain}, {"decrypt plaintext", enc_plain}};
  for (const char* m : {"d", "p", "q", "dp", "dq", "qi"}) {
    secrets.emplace_back(std::string("rsa ") + m, *base64url_decode(rsa_jwk[m].get<std::string>()));
  }
  secrets.emplace_back("ec d", *base64url_decode(ec_jwk["d"].get<std::string>()));
  for (const auto& [what, bytes] : secrets) {
    INFO(what);
    CHECK_FALSE(test::contains_bytes(db, bytes));
    std::string b64 = base64url_encode(bytes);
    CHECK_FALSE(test::contains_bytes(db, as_bytes(std::string_view(b64).substr(0, 24))));
    std::string hex = hex_encode(bytes);
    CHECK_FALSE(test::contains_bytes(db, as_bytes(std::string_view(hex).substr(0, 24))));
  }
  // The public parts are there (a sanity check that the search works).
  CHECK(test::contains_bytes(db, as_bytes(rsa_jwk["n"].get<std::string>())));
}

TEST_CASE("a vault serves many threads at once", "[vault][concurrency]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "threads");
  REQUIRE_OK(kv->create_key(kv.ctx, "shared", Json{{"kty", "EC-HSM"}}));
  auto pub = test::openssl_public(*kv->get_key(kv.ctx, "shared"));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      vault::CallContext ctx{"thread-" + std::to_string(t)};
      for (int i = 0; i < 10; ++i) {
        Bytes digest = random_bytes(32);
        auto sig = kv->sign(ctx, "shared", "",
                            Json{{"alg", "ES256"}, {"value", base64url_encode(digest)}});
        if (!sig) {
          WARN(sig.error().describe());
          ++failures;
          continue;
        }
        auto created = kv->create_key(ctx, "k" + std::to_string(t), Json{{"kty", "EC-HSM"}});
        if (!created) {
          WARN(created.error().describe());
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  CHECK(failures == 0);
  for (int t = 0; t < 6; ++t) {
    auto v = kv->list_key_versions(kv.ctx, "k" + std::to_string(t));
    REQUIRE_OK(v);
    CHECK((*v)["value"].size() == 10);
  }
  (void)pub;
}
