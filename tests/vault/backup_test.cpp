// SPDX-License-Identifier: Apache-2.0
// BackupKey / RestoreKey (vault/vault_backup.cpp) and the recovery settings (vault.json
// soft_delete_retention_days, purge_protection) against SoftHSM2 in attached-token mode. Vaults of
// one test process share the "vault" token: a second vault joins the first one's backup domain by
// naming it in vault.json (the domain keys are already in that token).
#include <catch2/catch.hpp>

#include "core/encoding.h"
#include "core/random.h"
#include "tests/support/softhsm.h"
#include "tests/vault/vault_rig.h"
#include "vault/backup_blob.h"

using namespace keyport;

namespace {

Json backup_sign_body() {
  return Json{{"alg", "ES256"}, {"value", base64url_encode(random_bytes(32))}};
}

std::string backup_of(test::VaultRig& kv, const std::string& name) {
  auto b = kv->backup_key(kv.ctx, name);
  REQUIRE_OK(b);
  REQUIRE((*b)["value"].is_string());
  return (*b)["value"].get<std::string>();
}

// A vault whose vault.json names `domain` before its first open.
void set_domain(test::VaultRig& rig, const std::string& domain) {
  rig.close();
  auto c = vault::VaultConfig::load(rig.dir);
  REQUIRE_OK(c);
  c->backup_domain = domain;
  REQUIRE_OK(c->save(rig.dir, true));
  rig.open();
}

std::size_t audit_rows(test::VaultRig& kv, const std::string& operation,
                       const std::string& outcome) {
  return test::audit_rows(*kv.v, operation, outcome);
}

}  // namespace

TEST_CASE("backup, delete, purge, restore: every version with its attributes, tags and policies",
          "[vault]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "backup-roundtrip");
  CHECK(kv->backup_domain().size() == 36);
  auto v1 = kv->create_key(
      kv.ctx, "ec", Json{{"kty", "EC-HSM"}, {"tags", {{"team", "pay"}}}, {"key_ops", {"sign"}}});
  REQUIRE_OK(v1);
  kv.clock.advance(10);
  auto v2 = kv->create_key(
      kv.ctx, "ec",
      Json{{"kty", "EC-HSM"}, {"crv", "P-384"}, {"attributes", {{"exp", 4000000000LL}}}});
  REQUIRE_OK(v2);
  REQUIRE_OK(kv->update_key(kv.ctx, "ec", test::version_of(*v1),
                            Json{{"attributes", {{"enabled", false}, {"nbf", 1600000000}}}}));
  const Json policy = {
      {"lifetimeActions",
       {{{"trigger", {{"timeAfterCreate", "P90D"}}}, {"action", {{"type", "Rotate"}}}}}},
      {"attributes", {{"expiryTime", "P1Y"}}}};
  REQUIRE_OK(kv->update_rotation_policy(kv.ctx, "ec", policy));
  auto before_versions = kv->list_key_versions(kv.ctx, "ec");
  REQUIRE_OK(before_versions);
  auto before_policy = kv->get_rotation_policy(kv.ctx, "ec");
  REQUIRE_OK(before_policy);

  const std::string blob = backup_of(kv, "ec");
  auto bytes = base64url_decode(blob);
  REQUIRE(bytes);
  auto frame = vault::parse_backup_frame(*bytes);
  REQUIRE_OK(frame);
  CHECK(frame->domain == kv->backup_domain());
  // Key material is in the blob only wrapped: no private scalar of the JWK shape appears.
  CHECK(frame->payload.find("\"d\"") == std::string::npos);

  const std::size_t objects = kv.token_objects();
  REQUIRE_OK(kv->delete_key(kv.ctx, "ec"));
  // Refused while the name is soft-deleted (409), nothing changes.
  test::expect_kv_error(kv->restore_key(kv.ctx, Json{{"value", blob}}), "Conflict", 409);
  CHECK(kv.token_objects() == objects);
  REQUIRE_OK(kv->purge_deleted_key(kv.ctx, "ec"));
  CHECK(kv.token_objects() == objects - 2);

  auto restored = kv->restore_key(kv.ctx, Json{{"value", blob}});
  REQUIRE_OK(restored);
  CHECK((*restored)["key"]["kid"] == (*v2)["key"]["kid"]);
  CHECK(kv.token_objects() == objects);
  auto after_versions = kv->list_key_versions(kv.ctx, "ec");
  REQUIRE_OK(after_versions);
  CHECK(*after_versions == *before_versions);
  auto got1 = kv->get_key(kv.ctx, "ec", test::version_of(*v2));
  REQUIRE_OK(got1);
  CHECK((*got1)["key"] == (*v2)["key"]);
  CHECK((*got1)["attributes"]["exp"] == 4000000000LL);
  auto after_policy = kv->get_rotation_policy(kv.ctx, "ec");
  REQUIRE_OK(after_policy);
  CHECK((*after_policy)["lifetimeActions"] == (*before_policy)["lifetimeActions"]);
  // The restored private keys are the original ones: signatures verify with the old public key.
  auto pub = test::openssl_public(*v2);
  Bytes digest = random_bytes(48);
  auto sig = kv->sign(kv.ctx, "ec", test::version_of(*v2),
                      Json{{"alg", "ES384"}, {"value", base64url_encode(digest)}});
  REQUIRE_OK(sig);
  CHECK(test::openssl_verify(pub.get(), "ES384", digest,
                             *base64url_decode((*sig)["value"].get<std::string>())));
  // The disabled first version stays disabled.
  test::expect_kv_error(kv->sign(kv.ctx, "ec", test::version_of(*v1), backup_sign_body()),
                        "Forbidden", 403, "KeyDisabled");
  // Restoring over the live key: 409.
  test::expect_kv_error(kv->restore_key(kv.ctx, Json{{"value", blob}}), "Conflict", 409);
  CHECK(audit_rows(kv, "RestoreKey", "success") == 1);
  CHECK(audit_rows(kv, "BackupKey", "success") == 1);
}

TEST_CASE("restore refuses altered blobs, other domains and bad bodies, changing nothing",
          "[vault]") {
  test::VaultRig kv(vault::Flavor::kManagedHsm, "backup-refusals");
  REQUIRE_OK(kv->create_key(kv.ctx, "aes", Json{{"kty", "oct-HSM"}, {"key_size", 256}}));
  auto rsa = kv->create_key(kv.ctx, "rsa", Json{{"kty", "RSA-HSM"}});
  REQUIRE_OK(rsa);
  const std::string blob = backup_of(kv, "aes");
  const std::string rsa_blob = backup_of(kv, "rsa");
  REQUIRE_OK(kv->delete_key(kv.ctx, "aes"));
  REQUIRE_OK(kv->purge_deleted_key(kv.ctx, "aes"));
  const std::size_t objects = kv.token_objects();
  auto keys_before = kv->list_keys(kv.ctx);
  REQUIRE_OK(keys_before);

  Bytes bytes = *base64url_decode(blob);
  // Every region of the blob: magic, domain, length, payload, MAC.
  for (std::size_t at : {std::size_t{0}, std::size_t{7}, std::size_t{42}, std::size_t{60},
                         bytes.size() / 2, bytes.size() - 40, bytes.size() - 1}) {
    Bytes bad = bytes;
    bad[at] ^= 0x01;
    INFO("flipped byte " << at);
    test::expect_kv_error(kv->restore_key(kv.ctx, Json{{"value", base64url_encode(bad)}}),
                          "BadParameter", 400);
  }
  Bytes truncated(bytes.begin(), bytes.end() - 1);
  test::expect_kv_error(kv->restore_key(kv.ctx, Json{{"value", base64url_encode(truncated)}}),
                        "BadParameter", 400);
  test::expect_kv_error(kv->restore_key(kv.ctx, Json{{"value", "!!"}}), "BadParameter", 400);
  test::expect_kv_error(kv->restore_key(kv.ctx, Json::object()), "BadParameter", 400);
  test::expect_kv_error(kv->restore_key(kv.ctx, Json{{"value", 5}}), "BadParameter", 400);
  CHECK(kv.token_objects() == objects);
  CHECK(*kv->list_keys(kv.ctx) == *keys_before);

  // A vault of another backup domain (same token, its own domain keys) refuses the blob.
  test::VaultRig other(vault::Flavor::kManagedHsm, "backup-other-domain");
  REQUIRE(other->backup_domain() != kv->backup_domain());
  const std::size_t objects_other = other.token_objects();
  auto r = other->restore_key(other.ctx, Json{{"value", blob}});
  test::expect_kv_error(r, "BadParameter", 400);
  CHECK(r.error().message().find("different backup domain") != std::string::npos);
  CHECK(other.token_objects() == objects_other);
  CHECK((*other->list_keys(other.ctx))["value"].empty());

  // Backups of missing and deleted keys: 404.
  test::expect_kv_error(kv->backup_key(kv.ctx, "aes"), "KeyNotFound", 404);
  test::expect_kv_error(kv->backup_key(kv.ctx, "never"), "KeyNotFound", 404);
  REQUIRE_OK(kv->delete_key(kv.ctx, "rsa"));
  test::expect_kv_error(kv->backup_key(kv.ctx, "rsa"), "KeyNotFound", 404);

  // The untouched blob still restores (the refusals left no half-made key behind).
  const std::size_t before_restore = kv.token_objects();  // the other vault added its domain keys
  REQUIRE_OK(kv->restore_key(kv.ctx, Json{{"value", blob}}));
  CHECK(kv.token_objects() == before_restore + 1);
  (void)rsa_blob;
}

TEST_CASE("a vault of the same backup domain restores another vault's backup", "[vault]") {
  test::VaultRig a(vault::Flavor::kKeyVault, "backup-domain-a");
  auto k = a->create_key(a.ctx, "signer", Json{{"kty", "EC-HSM"}, {"tags", {{"a", "b"}}}});
  REQUIRE_OK(k);
  const std::string blob = backup_of(a, "signer");
  test::VaultRig b(vault::Flavor::kKeyVault, "backup-domain-b");
  set_domain(b, a->backup_domain());
  REQUIRE(b->backup_domain() == a->backup_domain());
  auto restored = b->restore_key(b.ctx, Json{{"value", blob}});
  REQUIRE_OK(restored);
  CHECK((*restored)["key"]["kid"] ==
        "https://backup-domain-b.vault.azure.net/keys/signer/" + test::version_of(*k));
  CHECK((*restored)["tags"] == Json{{"a", "b"}});
  Bytes digest = random_bytes(32);
  auto sig =
      b->sign(b.ctx, "signer", "", Json{{"alg", "ES256"}, {"value", base64url_encode(digest)}});
  REQUIRE_OK(sig);
  CHECK(test::openssl_verify(test::openssl_public(*k).get(), "ES256", digest,
                             *base64url_decode((*sig)["value"].get<std::string>())));
}

TEST_CASE("recovery settings: retention days, purge protection, scheduled purge", "[vault]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "recovery");
  {
    kv.close();
    auto c = vault::VaultConfig::load(kv.dir);
    REQUIRE_OK(c);
    c->soft_delete_retention_days = 30;
    c->purge_protection = true;
    REQUIRE_OK(c->save(kv.dir, true));
    kv.open();
  }
  auto k = kv->create_key(kv.ctx, "k", Json{{"kty", "EC-HSM"}});
  REQUIRE_OK(k);
  CHECK((*k)["attributes"]["recoveryLevel"] == "CustomizedRecoverable");
  CHECK((*k)["attributes"]["recoverableDays"] == 30);
  const std::size_t objects = kv.token_objects();
  kv.clock.advance(100);
  auto d = kv->delete_key(kv.ctx, "k");
  REQUIRE_OK(d);
  CHECK((*d)["scheduledPurgeDate"] == test::kStartTime + 100 + 30 * 86400);
  auto refused = kv->purge_deleted_key(kv.ctx, "k");
  REQUIRE_FALSE(refused);
  CHECK(vault::http_status_for(refused.error()) == 403);
  CHECK(vault::kv_code(refused.error()) == "Forbidden");
  CHECK(refused.error().message().find("purge protection is enabled") != std::string::npos);
  kv.clock.advance(30 * 86400 - 1);
  REQUIRE_OK(kv->get_deleted_key(kv.ctx, "k"));
  CHECK(kv.token_objects() == objects);
  kv.clock.advance(1);
  // The next operation purges it: rows and token object.
  test::expect_kv_error(kv->get_deleted_key(kv.ctx, "k"), "KeyNotFound", 404);
  CHECK(kv.token_objects() == objects - 1);
  CHECK(audit_rows(kv, "PurgeDeletedKey", "success") == 1);

  // The other combinations.
  vault::VaultConfig c;
  CHECK(c.recovery_level() == "Recoverable+Purgeable");
  c.purge_protection = true;
  CHECK(c.recovery_level() == "Recoverable");
  c.soft_delete_retention_days = 7;
  CHECK(c.recovery_level() == "CustomizedRecoverable");
  c.purge_protection = false;
  CHECK(c.recovery_level() == "CustomizedRecoverable+Purgeable");
}

TEST_CASE("a deleted key is purged at open once its scheduled purge date has passed", "[vault]") {
  test::VaultRig kv(vault::Flavor::kKeyVault, "purge-at-open");
  REQUIRE_OK(kv->create_key(kv.ctx, "k", Json{{"kty", "EC-HSM"}}));
  const std::size_t objects = kv.token_objects();
  REQUIRE_OK(kv->delete_key(kv.ctx, "k"));
  kv.close();
  kv.clock.advance(90 * 86400);
  kv.open();
  CHECK(kv.token_objects() == objects - 1);
  test::expect_kv_error(kv->get_deleted_key(kv.ctx, "k"), "KeyNotFound", 404);
}

namespace {

// A vault on the test module's second token ("onprem"), joining a backup domain: two tokens of
// one module in one process, as two own-folder vaults are two tokens in two processes.
struct JoiningVault {
  p11::Session session;  // logged in first, so closing the vault never logs the token out
  std::filesystem::path dir;
  vault::ManualClock clock{test::kStartTime};
  vault::CallContext ctx{"test"};
  std::unique_ptr<vault::Vault> v;

  explicit JoiningVault(const std::string& name)
      : session(test::SoftHsm::get().login(test::kOnpremToken)) {
    dir = test::make_scratch_subdir("vault-" + name);
    vault::VaultConfig c;
    c.name = name;
    c.backup_domain_join = true;
    REQUIRE_OK(vault::Vault::init(dir, c, clock.clock()));
    open();
  }
  void open() {
    vault::VaultOptions o;
    o.module = test::SoftHsm::get().module();
    o.token_label = test::kOnpremToken;
    o.pin = SecretBytes::from_string(test::kOnpremPin);
    o.clock = clock.clock();
    auto r = vault::Vault::open(dir, std::move(o));
    REQUIRE_OK(r);
    v = std::move(*r);
  }
  vault::Vault* operator->() { return v.get(); }
  // Token objects of the onprem token labelled `label`.
  std::size_t objects_labelled(const std::string& label) const {
    p11::Template t;
    t.token(true).label(label);
    auto found = session.find_objects(t);
    REQUIRE_OK(found);
    return found->size();
  }
};

}  // namespace

TEST_CASE("a vault on another token joins a backup domain: keys move wrapped, backups restore",
          "[vault]") {
  test::VaultRig a(vault::Flavor::kKeyVault, "join-source");
  auto k = a->create_key(a.ctx, "signer", Json{{"kty", "EC-HSM"}, {"tags", {{"t", "1"}}}});
  REQUIRE_OK(k);
  const std::string blob = backup_of(a, "signer");
  const std::string domain = a->backup_domain();
  const std::string wrap_label = "kp:backup-domain:" + domain + ":wrap";
  const std::string mac_label = "kp:backup-domain:" + domain + ":mac";

  JoiningVault b("join-target");
  // Joining: no domain of its own, and backups are refused until the keys arrive.
  CHECK(b->backup_domain().empty());
  CHECK(b.objects_labelled(wrap_label) == 0);
  test::expect_kv_error(b->restore_key(b.ctx, Json{{"value", blob}}), "Forbidden", 403);
  // A vault that is not joining makes no transfer key; a joining one exports nothing.
  CHECK_ERROR_CODE(a->begin_backup_domain_join(a.ctx), ErrorCode::kFailedPrecondition);
  CHECK_ERROR_CODE(b->export_backup_domain(b.ctx, Bytes{}), ErrorCode::kFailedPrecondition);

  auto spki = b->begin_backup_domain_join(b.ctx);
  REQUIRE_OK(spki);
  auto pub = byok::PublicKey::from_spki_der(*spki);
  REQUIRE_OK(pub);
  CHECK(pub->bits() == 3072);
  CHECK(b.objects_labelled("kp:backup-domain-transfer") == 1);
  // The transfer private key: unwrap only, never extractable.
  {
    p11::Template t;
    t.token(true).label("kp:backup-domain-transfer");
    auto h = b.session.find_objects(t);
    REQUIRE_OK(h);
    REQUIRE(h->size() == 1);
    CHECK(*b.session.get_bool(h->front(), CKA_EXTRACTABLE) == false);
    CHECK(*b.session.get_bool(h->front(), CKA_SENSITIVE) == true);
    CHECK(*b.session.get_bool(h->front(), CKA_UNWRAP) == true);
    CHECK(*b.session.get_bool(h->front(), CKA_DECRYPT) == false);
  }
  // The source refuses keys that are not RSA-3072 or more.
  {
    auto ec = a->create_key(a.ctx, "ec-transfer", Json{{"kty", "EC-HSM"}});
    REQUIRE_OK(ec);
    auto small = a->create_key(a.ctx, "rsa2048", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}});
    REQUIRE_OK(small);
    CHECK_ERROR_CODE(a->export_backup_domain(a.ctx, test::public_key_of(*ec).spki_der()),
                     ErrorCode::kInvalidArgument);
    CHECK_ERROR_CODE(a->export_backup_domain(a.ctx, test::public_key_of(*small).spki_der()),
                     ErrorCode::kInvalidArgument);
    CHECK_ERROR_CODE(a->export_backup_domain(a.ctx, Bytes{1, 2, 3}), ErrorCode::kInvalidArgument);
  }
  auto doc = a->export_backup_domain(a.ctx, *spki);
  REQUIRE_OK(doc);
  CHECK(doc->find(domain) != std::string::npos);
  auto parsed = vault::parse_domain_transfer(*doc);
  REQUIRE_OK(parsed);
  CHECK(parsed->transfer_key_sha256 == pub->sha256_fingerprint());

  // Refusals change nothing: a flipped byte in a wrapped key, another transfer key, garbage.
  {
    vault::DomainKeyTransfer bad = *parsed;
    bad.mac[bad.mac.size() - 3] ^= 0x01;
    CHECK_ERROR_CODE(b->finish_backup_domain_join(b.ctx, vault::domain_transfer_json(bad)),
                     ErrorCode::kIntegrityFailure);
    bad = *parsed;
    bad.wrap[5] ^= 0x80;
    CHECK_ERROR_CODE(b->finish_backup_domain_join(b.ctx, vault::domain_transfer_json(bad)),
                     ErrorCode::kIntegrityFailure);
    bad = *parsed;
    bad.transfer_key_sha256 = std::string(64, '0');
    CHECK_ERROR_CODE(b->finish_backup_domain_join(b.ctx, vault::domain_transfer_json(bad)),
                     ErrorCode::kInvalidArgument);
    CHECK_ERROR_CODE(b->finish_backup_domain_join(b.ctx, "{}"), ErrorCode::kFormat);
    CHECK(b.objects_labelled(wrap_label) == 0);
    CHECK(b.objects_labelled(mac_label) == 0);
    CHECK(b.objects_labelled("kp:backup-domain-transfer") == 1);
    CHECK(b->backup_domain().empty());
  }

  REQUIRE_OK(b->finish_backup_domain_join(b.ctx, *doc));
  CHECK(b->backup_domain() == domain);
  CHECK(b.objects_labelled(wrap_label) == 1);
  CHECK(b.objects_labelled(mac_label) == 1);
  CHECK(b.objects_labelled("kp:backup-domain-transfer") == 0);
  auto saved = vault::VaultConfig::load(b.dir);
  REQUIRE_OK(saved);
  CHECK(saved->backup_domain == domain);
  CHECK_FALSE(saved->backup_domain_join);
  // Once joined, it is joined.
  CHECK_ERROR_CODE(b->finish_backup_domain_join(b.ctx, *doc), ErrorCode::kFailedPrecondition);
  CHECK(test::audit_rows(*a.v, "BackupDomainExport", "success") == 1);
  CHECK(test::audit_rows(*b.v, "BackupDomainJoinBegin", "success") == 1);
  CHECK(test::audit_rows(*b.v, "BackupDomainJoin", "success") == 1);

  // A's backup restores in B (after a reopen: the keys are token objects, the domain in
  // vault.json), and signs with A's key.
  b.v.reset();
  b.open();
  auto restored = b->restore_key(b.ctx, Json{{"value", blob}});
  REQUIRE_OK(restored);
  CHECK((*restored)["tags"] == Json{{"t", "1"}});
  Bytes digest = random_bytes(32);
  auto sig =
      b->sign(b.ctx, "signer", "", Json{{"alg", "ES256"}, {"value", base64url_encode(digest)}});
  REQUIRE_OK(sig);
  CHECK(test::openssl_verify(test::openssl_public(*k).get(), "ES256", digest,
                             *base64url_decode((*sig)["value"].get<std::string>())));
  // And the other way: B's backup restores in A.
  REQUIRE_OK(b->create_key(b.ctx, "from-b", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}));
  auto b_blob = b->backup_key(b.ctx, "from-b");
  REQUIRE_OK(b_blob);
  REQUIRE_OK(a->restore_key(a.ctx, *b_blob));
}

TEST_CASE("joining a domain whose keys the token already holds is refused, changing nothing",
          "[vault]") {
  // One attached token: vault C on the same token as A cannot receive A's domain keys a second
  // time (two objects of one label); vaults sharing a token share a domain through vault.json.
  test::VaultRig a(vault::Flavor::kKeyVault, "join-same-token-a");
  test::VaultRig c(vault::Flavor::kKeyVault, "join-same-token-c");
  c.close();
  {
    auto cfg = vault::VaultConfig::load(c.dir);
    REQUIRE_OK(cfg);
    cfg->backup_domain.clear();
    cfg->backup_domain_join = true;
    REQUIRE_OK(cfg->save(c.dir, true));
  }
  c.open();
  auto spki = c->begin_backup_domain_join(c.ctx);
  REQUIRE_OK(spki);
  auto doc = a->export_backup_domain(a.ctx, *spki);
  REQUIRE_OK(doc);
  const std::size_t objects = c.token_objects();
  CHECK_ERROR_CODE(c->finish_backup_domain_join(c.ctx, *doc), ErrorCode::kAlreadyExists);
  CHECK(c.token_objects() == objects);
  CHECK(c->backup_domain().empty());
  CHECK(test::audit_rows(*c.v, "BackupDomainJoin", "failure") == 1);

  // A vault whose token lost its domain keys has nothing to give: Forbidden, said plainly.
  test::VaultRig d(vault::Flavor::kKeyVault, "join-no-domain-keys");
  for (const char* role : {"wrap", "mac"}) {
    p11::Template t;
    t.token(true).label("kp:backup-domain:" + d->backup_domain() + ":" + role);
    auto found = d.session.find_objects(t);
    REQUIRE_OK(found);
    REQUIRE(found->size() == 1);
    REQUIRE_OK(d.session.destroy_object(found->front()));
  }
  auto none = d->export_backup_domain(d.ctx, *spki);
  CHECK_ERROR_CODE(none, ErrorCode::kPermissionDenied);
  CHECK(none.error().message().find("no backup-domain keys") != std::string::npos);
}
