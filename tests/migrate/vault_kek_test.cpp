// SPDX-License-Identifier: Apache-2.0
// Vault KEKs: a migration from an RSA key of one simulated vault (RSA-OAEP-256) to an oct key of
// another (A256KW), both vaults attached to the test token; wrappings made and checked by OpenSSL;
// portability from the vault's record of BYOK imports; KEK-SPECs naming vault folders.
#include <catch2/catch.hpp>

#include <openssl/rsa.h>

#include "core/random.h"
#include "migrate/envelope.h"
#include "migrate/kek_spec.h"
#include "migrate/migration.h"
#include "tests/migrate/migrate_rig.h"
#include "tests/support/softhsm.h"
#include "tests/vault/vault_rig.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

Bytes openssl_aes_kw_unwrap(const Bytes& kek, const Bytes& wrapped) {
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  REQUIRE(EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_wrap(), nullptr, kek.data(), nullptr) == 1);
  Bytes out(wrapped.size());
  int n1 = 0, n2 = 0;
  REQUIRE(EVP_DecryptUpdate(ctx.get(), out.data(), &n1, wrapped.data(),
                            static_cast<int>(wrapped.size())) == 1);
  REQUIRE(EVP_DecryptFinal_ex(ctx.get(), out.data() + n1, &n2) == 1);
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

std::unique_ptr<migrate::Keyring> new_keyring(const fs::path& p) {
  migrate::Keyring::Options o;
  o.create = true;
  auto k = migrate::Keyring::open(p, o);
  REQUIRE_OK(k);
  return std::move(*k);
}

}  // namespace

TEST_CASE("a migration from a key in one vault to a key in another verifies and retires",
          "[migrate][vault]") {
  test::VaultRig src(vault::Flavor::kKeyVault, "source");
  test::VaultRig dst(vault::Flavor::kManagedHsm, "dest");
  REQUIRE_OK(src->create_key(src.ctx, "kek-a", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}));
  // The destination KEK is imported from a value the test knows, so OpenSSL can check its work.
  Bytes b_value = random_bytes(32);
  REQUIRE_OK(dst->import_key(
      dst.ctx, "kek-b", Json{{"key", {{"kty", "oct-HSM"}, {"k", base64url_encode(b_value)}}}}));
  auto bundle_a = src->get_key(src.ctx, "kek-a");
  REQUIRE_OK(bundle_a);
  auto pub_a = test::openssl_public(*bundle_a);
  std::shared_ptr<vault::Vault> va(std::move(src.v));
  std::shared_ptr<vault::Vault> vb(std::move(dst.v));
  auto from = migrate::VaultKek::open(va, "kek-a", "");
  auto to = migrate::VaultKek::open(vb, "kek-b", "");
  REQUIRE_OK(from);
  REQUIRE_OK(to);
  CHECK((*from)->algorithm() == "RSA-OAEP-256");
  CHECK((*to)->algorithm() == "A256KW");
  CHECK((*from)->id().id == "https://source.vault.azure.net/keys/kek-a");
  CHECK((*to)->id().id == "https://dest.managedhsm.azure.net/keys/kek-b");
  CHECK((*from)->id().version == test::version_of(*bundle_a));

  const fs::path db = test::make_scratch_subdir("vaultmig") / "keyring.db";
  auto kr = new_keyring(db);
  // 30 data keys wrapped by OpenSSL with the source KEK's public key (RSA-OAEP-256).
  std::vector<Bytes> values;
  for (std::size_t i = 0; i < 30; ++i) {
    values.push_back(random_bytes(32));
    migrate::KeyRecord k;
    k.key_id = test::data_key_id(i);
    migrate::WrappingRecord w;
    w.key_id = k.key_id;
    w.kek = (*from)->id();
    w.alg = "RSA-OAEP-256";
    w.wrapped = test::openssl_encrypt(pub_a.get(), "RSA-OAEP-256", values.back());
    REQUIRE_OK(kr->add_key(k, w));
  }
  // And an envelope file under a primary key wrapped by the source KEK.
  Bytes plain = random_bytes(70000);
  migrate::SpanSource in(plain);
  migrate::BytesSink sealed;
  REQUIRE_OK(migrate::envelope_encrypt(*kr, **from, in, sealed));

  auto plan = migrate::plan_migration(*kr, **from, **to);
  REQUIRE_OK(plan);
  CHECK(plan->path == "host");
  CHECK(plan->data_keys == 30);
  CHECK(plan->primary_keys == 1);
  CHECK_FALSE(plan->from_portability.portable);
  CHECK(plan->from_portability.reason.find("created inside the vault") != std::string::npos);

  migrate::RunOptions ro;
  ro.jobs = 2;
  ro.batch = 8;
  auto run = migrate::run_migration(*kr, **from, **to, ro);
  REQUIRE_OK(run);
  CHECK(run->rewrapped == 31);
  CHECK(run->failed == 0);
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto w = kr->find_wrapping(test::data_key_id(i), (*to)->id());
    REQUIRE_OK(w);
    REQUIRE(w->has_value());
    CHECK((*w)->alg == "A256KW");
    CHECK(openssl_aes_kw_unwrap(b_value, (*w)->wrapped) == values[i]);
  }
  auto verify = migrate::verify_migration(*kr, **from, **to, ro);
  REQUIRE_OK(verify);
  CHECK(verify->method == "keyed-fingerprint");
  CHECK(verify->all_verified());
  auto retire = migrate::retire_migration(*kr, (*from)->id(), (*to)->id(), true);
  REQUIRE_OK(retire);
  CHECK(retire->removed == 31);
  migrate::SpanSource src_in(sealed.bytes());
  migrate::BytesSink out;
  REQUIRE_OK(migrate::envelope_decrypt(*kr, **to, src_in, out));
  CHECK(out.bytes() == plain);
  // The vault recorded every wrapKey and unwrapKey, with the migration as caller.
  auto audit = vb->audit_log(0);
  REQUIRE_OK(audit);
  std::size_t wraps = 0;
  for (const auto& r : *audit) {
    wraps += r.operation == "WrapKey" && r.caller == "keyport-migrate" ? 1 : 0;
  }
  CHECK(wraps >= 31);
}

TEST_CASE("a byok imported vault key is portable and a generated one is not", "[migrate][vault]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "contoso");
  test::Onprem onprem;
  auto kek = kv->create_key(kv.ctx, "import-kek", test::kek_params(2048));
  REQUIRE_OK(kek);
  auto target = onprem.generate(*parse_key_spec("rsa-2048"), "app-kek");
  auto file =
      onprem.export_to(target, test::public_key_of(*kek), (*kek)["key"]["kid"].get<std::string>());
  REQUIRE_OK(kv->import_key(kv.ctx, "app-kek", test::byok_body(file.to_json(), "RSA-HSM")));
  REQUIRE_OK(kv->create_key(kv.ctx, "made-here", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}));
  std::shared_ptr<vault::Vault> v(std::move(kv.v));
  auto imported = migrate::VaultKek::open(v, "app-kek", "");
  auto made = migrate::VaultKek::open(v, "made-here", "");
  REQUIRE_OK(imported);
  REQUIRE_OK(made);
  auto p1 = (*imported)->portability();
  auto p2 = (*made)->portability();
  REQUIRE_OK(p1);
  REQUIRE_OK(p2);
  CHECK(p1->portable);
  CHECK(p1->reason.find("BYOK") != std::string::npos);
  REQUIRE(p1->commands.size() == 2);
  CHECK(p1->commands[0].rfind("keyport byok export", 0) == 0);
  CHECK_FALSE(p2->portable);
  // An EC key is no KEK; an unknown key is KeyNotFound.
  REQUIRE_OK(v->create_key(kv.ctx, "ec", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}}));
  CHECK_ERROR_CODE(migrate::VaultKek::open(v, "ec", ""), ErrorCode::kInvalidArgument);
  CHECK_ERROR_CODE(migrate::VaultKek::open(v, "absent", ""), ErrorCode::kNotFound);
  CHECK_ERROR_CODE(migrate::VaultKek::open(v, "made-here", "", "A256KW"),
                   ErrorCode::kInvalidArgument);
}

TEST_CASE("a kek spec names a key in a vault folder attached to a token", "[migrate][vault]") {
  const fs::path dir = test::make_scratch_subdir("specvault");
  vault::VaultConfig c;
  c.flavor = vault::Flavor::kKeyVault;
  c.name = "specvault";
  REQUIRE_OK(vault::Vault::init(dir, c));
  auto session = test::SoftHsm::get().login(test::kVaultToken);
  {
    vault::VaultOptions o;
    o.module = test::SoftHsm::get().module();
    o.token_label = test::kVaultToken;
    o.pin = SecretBytes::from_string(test::kVaultPin);
    auto v = vault::Vault::open(dir, std::move(o));
    REQUIRE_OK(v);
    REQUIRE_OK((*v)->create_key(vault::CallContext{"test"}, "k1",
                                Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}));
  }
  auto spec = migrate::KekSpec::parse("vault:" + dir.string() + "#k1?token=vault");
  REQUIRE_OK(spec);
  migrate::KekOpener opener;
  migrate::PinOptions pin;
  pin.pin_argv = std::make_shared<const SecretBytes>(SecretBytes::from_string(test::kVaultPin));
  auto k = opener.open(*spec, pin);
  REQUIRE_OK(k);
  CHECK((*k)->kind() == migrate::KekKind::kVault);
  CHECK((*k)->id().id == "https://specvault.vault.azure.net/keys/k1");
  SecretBytes key = random_secret(32);
  auto w = (*k)->wrap(key);
  REQUIRE_OK(w);
  auto back = (*k)->unwrap(*w);
  REQUIRE_OK(back);
  CHECK(back->ct_equal(key));
  Bytes bad = *w;
  bad[10] ^= 1;
  CHECK_ERROR_CODE((*k)->unwrap(bad), ErrorCode::kIntegrityFailure);
  // A second KEK of the same folder shares the open vault.
  auto again = opener.open(*spec, pin);
  REQUIRE_OK(again);
  CHECK((*again)->id() == (*k)->id());
}
