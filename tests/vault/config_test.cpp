// SPDX-License-Identifier: Apache-2.0
// vault::VaultConfig, the one reader and writer of DIR/vault.json; the server's --listen parsing.
#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>

#include "tests/support/support.h"
#include "vault/config.h"
#include "vault/server.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

void write_vault_json(const fs::path& dir, const std::string& text) {
  std::ofstream out(dir / vault::kVaultConfigFile, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

// The error code of loading `text` as vault.json.
ErrorCode load_error(const std::string& text) {
  const fs::path dir = test::make_scratch_subdir("vault-config");
  write_vault_json(dir, text);
  auto loaded = vault::VaultConfig::load(dir);
  REQUIRE_FALSE(loaded);
  return loaded.error().code();
}

const std::string kGood = R"({"schema": 1, "flavor": "managed-hsm", "name": "hsm1", )"
                          R"("base_url": "https://127.0.0.1:8443", "created": 1700000000})";

}  // namespace

TEST_CASE("vault.json: a missing file is kNotFound", "[vault][unit]") {
  const fs::path dir = test::make_scratch_subdir("vault-config");
  auto loaded = vault::VaultConfig::load(dir);
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error().code() == ErrorCode::kNotFound);
}

TEST_CASE("vault.json: a good file loads as written", "[vault][unit]") {
  const fs::path dir = test::make_scratch_subdir("vault-config");
  write_vault_json(dir, kGood);
  auto loaded = vault::VaultConfig::load(dir);
  REQUIRE(loaded);
  CHECK(loaded->flavor == vault::Flavor::kManagedHsm);
  CHECK(loaded->name == "hsm1");
  CHECK(loaded->base_url == "https://127.0.0.1:8443");
  CHECK(loaded->created == 1700000000);
}

TEST_CASE("vault.json: malformed files are refused with kFormat or kInvalidArgument",
          "[vault][unit]") {
  CHECK(load_error("{not json") == ErrorCode::kFormat);
  CHECK(load_error("[1, 2]") == ErrorCode::kFormat);
  CHECK(load_error(R"({"flavor": "key-vault", "flavor": "managed-hsm", "name": "a", )"
                   R"("base_url": "https://a.vault.azure.net", "created": 1})") ==
        ErrorCode::kFormat);
  CHECK(load_error(R"({"flavor": "key-vault", "name": "a", "base_url": "https://x", )"
                   R"("created": 1, "extra": true})") == ErrorCode::kFormat);
  CHECK(load_error(R"({"flavor": "key-vault", "base_url": "https://x", "created": 1})") ==
        ErrorCode::kFormat);
  CHECK(load_error(R"({"flavor": "key-vault", "name": "a", "base_url": "https://x"})") ==
        ErrorCode::kFormat);
  CHECK(load_error(R"({"flavor": "key-vault", "name": "a", "base_url": "https://x", )"
                   R"("created": "yesterday"})") == ErrorCode::kFormat);
  CHECK(load_error(R"({"flavor": "cloud-hsm", "name": "a", "base_url": "https://x", )"
                   R"("created": 1})") == ErrorCode::kInvalidArgument);
}

TEST_CASE("vault.json: save and load round-trip, and save does not clobber unless told",
          "[vault][unit]") {
  const fs::path dir = test::make_scratch_subdir("vault-config");
  vault::VaultConfig c;
  c.flavor = vault::Flavor::kManagedHsm;
  c.name = "round-trip";
  c.base_url = "https://round-trip.managedhsm.azure.net";
  c.created = 1712345678;
  REQUIRE(c.save(dir));
  auto loaded = vault::VaultConfig::load(dir);
  REQUIRE(loaded);
  CHECK(loaded->flavor == c.flavor);
  CHECK(loaded->name == c.name);
  CHECK(loaded->base_url == c.base_url);
  CHECK(loaded->created == c.created);

  vault::VaultConfig moved = *loaded;
  moved.base_url = "https://127.0.0.1:9443";
  auto refused = moved.save(dir);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == ErrorCode::kAlreadyExists);
  CHECK(vault::VaultConfig::load(dir)->base_url == c.base_url);

  REQUIRE(moved.save(dir, /*overwrite=*/true));
  auto reloaded = vault::VaultConfig::load(dir);
  REQUIRE(reloaded);
  CHECK(reloaded->base_url == "https://127.0.0.1:9443");
  CHECK(reloaded->name == c.name);
  CHECK(reloaded->created == c.created);
}

// The server parses --listen with core/net.h: an IPv6 address needs brackets ("::1:8443" was
// taken as host "::1" before), and a port is digits only.
TEST_CASE("the server refuses a --listen address it would have to guess", "[vault][unit]") {
  for (const char* listen : {"::1:8443", "127.0.0.1:+80", "127.0.0.1", ":8443", "[::1]8443"}) {
    vault::ServerOptions o;
    o.data_dir = test::make_scratch_subdir("vault-listen");
    o.listen = listen;
    auto started = vault::Server::start(std::move(o));
    REQUIRE_FALSE(started);
    CHECK(started.error().code() == ErrorCode::kInvalidArgument);
    CHECK(started.error().message().rfind("--listen ", 0) == 0);
  }
}

// Issue 18: `vault init --base-url https://kpvault.vault.azure.net` then `serve` rewrote the base
// URL to the listen address. A chosen base URL is kept; a default one follows the listen address.
TEST_CASE("a base URL an operator chose is kept whatever the server listens on", "[vault][unit]") {
  vault::VaultConfig c;
  c.name = "kpvault";
  c.base_url = "https://kpvault.vault.azure.net";
  CHECK(vault::effective_base_url(c, "127.0.0.1", 8443) == "https://127.0.0.1:8443");
  c.base_url_given = true;
  CHECK(vault::effective_base_url(c, "127.0.0.1", 8443) == "https://kpvault.vault.azure.net");
  c.base_url = "https://127.0.0.1:9000";
  CHECK(vault::effective_base_url(c, "127.0.0.1", 8443) == "https://127.0.0.1:9000");
  c.base_url_given = false;
  CHECK(vault::effective_base_url(c, "127.0.0.1", 8443) == "https://127.0.0.1:8443");
  c.base_url = "https://vault.example.org";  // not a default, not local: kept as before
  CHECK(vault::effective_base_url(c, "127.0.0.1", 8443) == "https://vault.example.org");

  // The flag survives vault.json; files without it load as before.
  const fs::path dir = test::make_scratch_subdir("vault-config");
  c.base_url_given = true;
  c.created = 1;
  REQUIRE(c.save(dir));
  auto loaded = vault::VaultConfig::load(dir);
  REQUIRE(loaded);
  CHECK(loaded->base_url_given);
  CHECK(load_error(R"({"schema": 1, "flavor": "key-vault", "name": "a", "base_url": )"
                   R"("https://a.vault.azure.net", "base_url_given": "yes", "created": 1})") ==
        ErrorCode::kFormat);
  write_vault_json(dir, kGood);
  CHECK_FALSE(vault::VaultConfig::load(dir)->base_url_given);
}

// Azure SDKs accept a challenge only when the vault's host ends with "." + the resource's host
// (the Python SDK compares host:port), so "self" is the base URL's parent origin.
TEST_CASE("the challenge resource: azure for Azure hosts, the parent origin for others",
          "[vault][unit]") {
  auto resource_of = [](std::string_view choice, const std::string& base, vault::Flavor f) {
    vault::VaultConfig c;
    c.name = "kpvault";
    c.flavor = f;
    c.base_url = base;
    auto r = vault::challenge_resource(choice, c);
    REQUIRE(r);
    return *r;
  };
  using vault::Flavor;
  CHECK(resource_of("", "https://kpvault.vault.azure.net", Flavor::kKeyVault).resource ==
        "https://vault.azure.net");
  CHECK(resource_of("", "https://kpvault.vault.azure.net", Flavor::kKeyVault).warning.empty());
  CHECK(resource_of("", "https://hsm1.managedhsm.azure.net", Flavor::kManagedHsm).resource ==
        "https://managedhsm.azure.net");
  auto self = resource_of("", "https://kpvault.localhost:8443", Flavor::kKeyVault);
  CHECK(self.resource == "https://localhost:8443");
  CHECK(self.warning.empty());
  CHECK(resource_of("self", "https://kv.corp.example", Flavor::kKeyVault).resource ==
        "https://corp.example");
  // No parent domain: the origin itself, with a warning that SDKs will refuse it.
  auto ip = resource_of("", "https://127.0.0.1:8443", Flavor::kKeyVault);
  CHECK(ip.resource == "https://127.0.0.1:8443");
  CHECK(ip.warning.find("no parent domain") != std::string::npos);
  auto azure_elsewhere = resource_of("azure", "https://kpvault.localhost:8443", Flavor::kKeyVault);
  CHECK(azure_elsewhere.resource == "https://vault.azure.net");
  CHECK_FALSE(azure_elsewhere.warning.empty());
  CHECK(resource_of("https://example.net/", "https://127.0.0.1:8443", Flavor::kKeyVault).resource ==
        "https://example.net");

  vault::VaultConfig c;
  c.name = "kpvault";
  c.base_url = "https://kpvault.localhost:8443";
  for (const char* bad : {"azur", "https://example.net/path", "https://", "ftp://x"}) {
    auto r = vault::challenge_resource(bad, c);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("vault.json: recovery settings and the backup domain round-trip, old files keep defaults",
          "[vault][unit]") {
  const fs::path dir = test::make_scratch_subdir("vault-config");
  write_vault_json(dir, kGood);
  auto old = vault::VaultConfig::load(dir);
  REQUIRE(old);
  CHECK(old->soft_delete_retention_days == 90);
  CHECK_FALSE(old->purge_protection);
  CHECK(old->backup_domain.empty());
  CHECK(old->recovery_level() == "Recoverable+Purgeable");
  vault::VaultConfig c = *old;
  c.soft_delete_retention_days = 7;
  c.purge_protection = true;
  c.backup_domain = "0b8f4a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
  REQUIRE(c.save(dir, true));
  auto back = vault::VaultConfig::load(dir);
  REQUIRE(back);
  CHECK(back->soft_delete_retention_days == 7);
  CHECK(back->purge_protection);
  CHECK(back->backup_domain == c.backup_domain);
  CHECK(back->recovery_level() == "CustomizedRecoverable");
  const std::string base = kGood.substr(0, kGood.size() - 1);
  CHECK(load_error(base + R"(, "soft_delete_retention_days": 6})") == ErrorCode::kFormat);
  CHECK(load_error(base + R"(, "soft_delete_retention_days": 91})") == ErrorCode::kFormat);
  CHECK(load_error(base + R"(, "purge_protection": "yes"})") == ErrorCode::kFormat);
  CHECK(load_error(base + R"(, "backup_domain": 1})") == ErrorCode::kFormat);
  // "backup_domain_join": stored only while true.
  CHECK_FALSE(back->backup_domain_join);
  {
    std::ifstream in(dir / "vault.json");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text.find("backup_domain_join") == std::string::npos);
  }
  c.backup_domain.clear();
  c.backup_domain_join = true;
  REQUIRE(c.save(dir, true));
  auto joining = vault::VaultConfig::load(dir);
  REQUIRE(joining);
  CHECK(joining->backup_domain_join);
  CHECK(joining->backup_domain.empty());
  CHECK(load_error(base + R"(, "backup_domain_join": 1})") == ErrorCode::kFormat);
}
