// SPDX-License-Identifier: Apache-2.0
// The own-folder mode: the vault makes and uses its own SoftHSM token folder hsm/. Each TEST_CASE
// runs in its own process under CTest, and none of these touches test::SoftHsm (which would load
// the module with the tests' token folder first).
#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>

#include "core/file_io.h"
#include "core/random.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"
#include "tests/support/support.h"
#include "tests/vault/vault_rig.h"
#include "vault/hsm.h"
#include "vault/vault.h"

using namespace keyport;

namespace {

std::unique_ptr<vault::Vault> open_own(const std::filesystem::path& dir,
                                       const vault::ManualClock& clock,
                                       vault::CrashPoint crash = vault::CrashPoint::kNone) {
  vault::VaultOptions o;
  o.clock = clock.clock();
  o.crash_point = crash;
  auto v = vault::Vault::open(dir, std::move(o));
  REQUIRE_OK(v);
  return std::move(*v);
}

// A session of the test's own on the vault's token (the module instance the vault loaded).
p11::Session token_session(const SecretBytes& pin) {
  auto module = p11::Module::load(KEYPORT_DEFAULT_MODULE);
  REQUIRE_OK(module);
  p11::Uri uri;
  uri.token = vault::kOwnTokenLabel;
  auto slot = p11::find_token(**module, uri);
  REQUIRE_OK(slot);
  auto s = p11::Session::open(*module, slot->id, true);
  REQUIRE_OK(s);
  REQUIRE_OK(s->login(pin));
  return std::move(*s);
}

std::size_t count_label(const p11::Session& s, const std::string& label) {
  p11::Template t;
  t.token(true).label(label);
  auto found = s.find_objects(t);
  REQUIRE_OK(found);
  return found->size();
}

// SoftHSM reads SOFTHSM2_CONF once per process: an own-folder case needs a process of its own
// (CTest gives it one). When the whole executable runs in one process, other cases loaded it first.
bool softhsm_loaded_already() {
  if (void* h = ::dlopen(KEYPORT_DEFAULT_MODULE, RTLD_NOW | RTLD_NOLOAD)) {
    ::dlclose(h);
    WARN("SoftHSM is already loaded in this process; run this case on its own (ctest does)");
    return true;
  }
  return false;
}

}  // namespace

TEST_CASE("an own-folder vault creates its token, keeps its state and cleans up after crashes",
          "[vault][own-folder]") {
  if (softhsm_loaded_already()) {
    return;
  }
  const auto dir = test::make_scratch_subdir("own-vault");
  vault::ManualClock clock(1'700'000'000);
  vault::CallContext ctx{"test"};
  vault::VaultConfig config;
  config.flavor = vault::Flavor::kManagedHsm;
  config.name = "ownhsm";
  config.base_url = "https://127.0.0.1:8443/";
  REQUIRE_OK(vault::Vault::init(dir, config, clock.clock()));
  CHECK(vault::Vault::init(dir, config).error().code() == ErrorCode::kAlreadyExists);
  auto json = parse_json_strict(*read_text_file(dir / "vault.json"));
  REQUIRE_OK(json);
  CHECK((*json)["flavor"] == "managed-hsm");
  CHECK((*json)["base_url"] == "https://127.0.0.1:8443");
  CHECK((*json)["created"] == 1'700'000'000);

  const std::string orphan_label = "kv:orphan:" + hex_encode(random_bytes(16));
  std::string version;
  SecretBytes pin;
  {
    auto v = open_own(dir, clock);
    CHECK(v->host() == "127.0.0.1:8443");
    CHECK(v->config().flavor == vault::Flavor::kManagedHsm);
    // The token folder and the PIN file (mode 0600) exist now.
    CHECK(std::filesystem::exists(dir / "hsm" / "softhsm2.conf"));
    struct stat st {};
    REQUIRE(::stat((dir / "hsm" / "pin").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto p = read_secret_file(dir / "hsm" / "pin");
    REQUIRE_OK(p);
    CHECK(p->size() == 32);
    pin = std::move(*p);
    CHECK(v->capabilities().kwp.has_value());
    CHECK_FALSE(v->capabilities().hash_ok(OaepHash::kSha256));

    auto b = v->create_key(ctx, "persist", Json{{"kty", "oct-HSM"}, {"key_size", 128}});
    REQUIRE_OK(b);
    std::string kid = (*b)["key"]["kid"].get<std::string>();
    CHECK(kid.rfind("https://127.0.0.1:8443/keys/persist/", 0) == 0);
    version = kid.substr(kid.rfind('/') + 1);

    // A second own-folder vault in this process is refused: SoftHSM is already initialised with
    // this folder's configuration.
    const auto other = test::make_scratch_subdir("own-vault-2");
    vault::VaultConfig other_config;
    other_config.name = "other";
    REQUIRE_OK(vault::Vault::init(other, other_config));
    auto second = vault::Vault::open(other);
    REQUIRE_FALSE(second.has_value());
    CHECK(second.error().code() == ErrorCode::kUnsupported);
    CHECK(second.error().message().find("SOFTHSM2_CONF") != std::string::npos);

    // Plant an orphan: a kv: object that no version row knows (what a lost database leaves).
    p11::Session s = token_session(pin);
    p11::Template t;
    t.object_class(CKO_SECRET_KEY)
        .key_type(CKK_AES)
        .token(true)
        .private_object(true)
        .sensitive(true)
        .label(orphan_label)
        .id(random_bytes(16))
        .set_secret(CKA_VALUE, random_secret(32));
    REQUIRE_OK(s.create_object(t));
    CHECK(count_label(s, orphan_label) == 1);
  }
  {
    // Reopen: the state is there, the orphan is gone (and audited).
    auto v = open_own(dir, clock);
    auto b = v->get_key(ctx, "persist");
    REQUIRE_OK(b);
    CHECK((*b)["key"]["kid"].get<std::string>().ends_with(version));
    p11::Session s = token_session(pin);
    CHECK(count_label(s, orphan_label) == 0);
    CHECK(count_label(s, "kv:persist:" + version) == 1);
    auto log = v->audit_log();
    REQUIRE_OK(log);
    CHECK(std::count_if(log->begin(), log->end(), [&](const vault::AuditRecord& r) {
            return r.operation == "OrphanDestroyed" && r.key_name == "orphan";
          }) == 1);
  }
  {
    // A crash after the token object: nothing half-made survives the next open.
    auto v = open_own(dir, clock, vault::CrashPoint::kAfterTokenObject);
    auto r = v->create_key(ctx, "half", Json{{"kty", "EC-HSM"}});
    REQUIRE_FALSE(r.has_value());
  }
  {
    auto v = open_own(dir, clock);
    auto r = v->get_key(ctx, "half");
    REQUIRE_FALSE(r.has_value());
    CHECK(vault::http_status_for(r.error()) == 404);
    p11::Session s = token_session(pin);
    p11::Template t;
    t.token(true);
    auto all = s.find_objects(t);
    REQUIRE_OK(all);
    CHECK(all->size() == 1 + 2);  // only "persist", and the two backup-domain keys
    REQUIRE_OK(v->create_key(ctx, "half", Json{{"kty", "EC-HSM"}}));
  }
  // The token PIN never reaches the database.
  Bytes db;
  for (const char* f : {"vault.db", "vault.db-wal"}) {
    auto bytes = read_file(dir / f, 64u << 20);
    if (bytes) {
      db.insert(db.end(), bytes->begin(), bytes->end());
    }
  }
  CHECK_FALSE(test::contains_bytes(db, pin.reveal(SecretAccess::unsafe())));
}

TEST_CASE(
    "an own-folder vault re-initialises its module every N token operations and keeps working",
    "[vault][own-folder]") {
  if (softhsm_loaded_already()) {
    return;
  }
  const auto dir = test::make_scratch_subdir("own-vault-recycle");
  vault::ManualClock clock(1'700'000'000);
  vault::CallContext ctx{"test"};
  vault::VaultConfig config;
  config.flavor = vault::Flavor::kManagedHsm;
  config.name = "recycling";
  REQUIRE_OK(vault::Vault::init(dir, config, clock.clock()));
  auto value_of = [](const Result<Json>& r) {
    REQUIRE_OK(r);
    return *base64url_decode((*r)["value"].get<std::string>());
  };
  auto sign_checked = [&](vault::Vault& v) {
    auto bundle = v.get_key(ctx, "ec");
    REQUIRE_OK(bundle);
    auto pub = test::openssl_public(*bundle);
    Bytes digest = random_bytes(32);
    Bytes sig = value_of(
        v.sign(ctx, "ec", "", Json{{"alg", "ES256"}, {"value", base64url_encode(digest)}}));
    CHECK(test::openssl_verify(pub.get(), "ES256", digest, sig));
  };
  {
    vault::VaultOptions o;
    o.clock = clock.clock();
    o.module_recycle_ops = 4;
    auto v = vault::Vault::open(dir, std::move(o));
    REQUIRE_OK(v);
    REQUIRE_OK((*v)->create_key(ctx, "ec", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}}));
    REQUIRE_OK((*v)->create_key(ctx, "aes", Json{{"kty", "oct-HSM"}, {"key_size", 256}}));
    for (int i = 0; i < 6; ++i) {
      sign_checked(**v);
      // wrapKey/unwrapKey make and destroy session objects: what the recycling is for.
      Bytes plain = random_bytes(32);
      Bytes wrapped = value_of((*v)->wrap_key(
          ctx, "aes", "", Json{{"alg", "A256KW"}, {"value", base64url_encode(plain)}}));
      CHECK(value_of((*v)->unwrap_key(
                ctx, "aes", "", Json{{"alg", "A256KW"}, {"value", base64url_encode(wrapped)}})) ==
            plain);
    }
    // 2 creates + 6 x 3 token operations = 20 leases: a recycling after every 4.
    CHECK((*v)->module_recycles() >= 4);
    auto log = (*v)->audit_log();
    REQUIRE_OK(log);
    CHECK(static_cast<std::uint64_t>(
              std::count_if(log->begin(), log->end(), [](const vault::AuditRecord& r) {
                return r.operation == "ModuleRecycled" && r.outcome == "success";
              })) == (*v)->module_recycles());
  }
  {
    // Reopened with recycling off: the keys are there and work; nothing is recycled.
    vault::VaultOptions o;
    o.clock = clock.clock();
    o.module_recycle_ops = 0;
    auto v = vault::Vault::open(dir, std::move(o));
    REQUIRE_OK(v);
    for (int i = 0; i < 6; ++i) {
      sign_checked(**v);
    }
    CHECK((*v)->module_recycles() == 0);
  }
  {
    // While the process holds a session of its own on the module, the vault leaves it alone.
    vault::VaultOptions o;
    o.clock = clock.clock();
    o.module_recycle_ops = 2;
    auto v = vault::Vault::open(dir, std::move(o));
    REQUIRE_OK(v);
    auto pin = read_secret_file(dir / "hsm" / "pin");
    REQUIRE_OK(pin);
    p11::Session mine = token_session(*pin);
    for (int i = 0; i < 4; ++i) {
      sign_checked(**v);
    }
    CHECK((*v)->module_recycles() == 0);
    CHECK(count_label(mine, "kv:nothing") == 0);  // the test's session still works
  }
}
