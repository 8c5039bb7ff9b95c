// SPDX-License-Identifier: Apache-2.0
// vault::VaultConfig, the one reader and writer of DIR/vault.json; the server's --listen parsing.
#include <catch2/catch.hpp>

#include <fstream>

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

TEST_CASE("vault.json: save and load round-trip; save does not clobber unless told",
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
