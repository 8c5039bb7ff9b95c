// SPDX-License-Identifier: Apache-2.0
// byok/service_profile.h: each profile accepts what its documentation allows and refuses what it
// forbids (table-driven; the rows restate docs/service-profiles.md, not the implementation's
// table), key operations, validity dates and the vault settings read from recoveryLevel.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "byok/service_profile.h"

using namespace keyport;
using namespace keyport::byok;

namespace {

const ServiceProfile& profile(const std::string& name) {
  auto p = parse_service_profile(name);
  REQUIRE(p.has_value());
  return **p;
}

KeySpec spec(const std::string& name) {
  auto s = parse_key_spec(name);
  REQUIRE(s.has_value());
  return *s;
}

struct Row {
  const char* profile;
  std::vector<const char*> allowed;    // what the cited page allows (of keyport's key types)
  std::vector<const char*> forbidden;  // what it rules out
  const char* source_fragment;         // part of the URL the refusal must cite
};

// From the Microsoft pages quoted in docs/service-profiles.md.
const std::vector<Row> kRows = {
    {"generic",
     {"rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384", "ec-p521", "ec-p256k", "aes-128",
      "aes-192", "aes-256"},
     {},
     ""},
    {"storage-cmk",
     {"rsa-2048", "rsa-3072", "rsa-4096"},
     {"ec-p256", "ec-p384", "ec-p521", "ec-p256k", "aes-128", "aes-192", "aes-256"},
     "storage/common/customer-managed-keys-overview"},
    {"sql-tde",
     {"rsa-2048", "rsa-3072"},
     {"rsa-4096", "ec-p256", "ec-p384", "aes-256"},
     "transparent-data-encryption-byok-overview"},
    {"disk-encryption",
     {"rsa-2048", "rsa-3072", "rsa-4096"},
     {"ec-p256", "ec-p521", "aes-128", "aes-256"},
     "virtual-machines/disk-encryption"},
    {"aip-tenant-key",
     {"rsa-2048"},
     {"rsa-3072", "rsa-4096", "ec-p256", "aes-256"},
     "information-protection/byok-price-restrictions"},
    {"m365-customer-key",
     {"rsa-2048", "rsa-3072", "rsa-4096"},
     {"ec-p256", "ec-p384", "aes-256"},
     "purview/customer-key-set-up"},
};

}  // namespace

TEST_CASE("every profile accepts what its documentation allows and refuses what it forbids",
          "[unit][profiles]") {
  std::set<std::string> seen;
  for (const Row& row : kRows) {
    INFO("profile " << row.profile);
    const ServiceProfile& p = profile(row.profile);
    seen.insert(std::string(p.name));
    for (const char* ok : row.allowed) {
      INFO("allowed " << ok);
      CHECK(check_profile_accepts(p, spec(ok)).has_value());
    }
    for (const char* bad : row.forbidden) {
      INFO("forbidden " << bad);
      auto st = check_profile_accepts(p, spec(bad));
      REQUIRE_FALSE(st.has_value());
      CHECK(st.error().code() == ErrorCode::kUnsupported);
      CHECK(st.error().detail() == "profile-refused");
      const std::string msg = st.error().message();
      CHECK(msg.find(bad) != std::string::npos);
      CHECK(msg.find("https://learn.microsoft.com/") != std::string::npos);
      CHECK(msg.find(row.source_fragment) != std::string::npos);
    }
    // The accepted list is exactly the allowed list: nothing more slips in.
    CHECK(p.key_specs.size() == row.allowed.size());
  }
  // Every profile has a row.
  CHECK(seen.size() == all_service_profiles().size());
}

TEST_CASE("profile names parse case-insensitively and unknown names list the valid ones",
          "[unit][profiles]") {
  CHECK(profile("Storage-CMK").name == "storage-cmk");
  auto bad = parse_service_profile("storage");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code() == ErrorCode::kInvalidArgument);
  for (const auto& p : all_service_profiles()) {
    CHECK(bad.error().message().find(std::string(p.name)) != std::string::npos);
  }
}

TEST_CASE("every service profile cites a Microsoft source for its key rule", "[unit][profiles]") {
  for (const auto& p : all_service_profiles()) {
    INFO(p.name);
    CHECK(p.key_rule_url.rfind("https://learn.microsoft.com/", 0) == 0);
    REQUIRE_FALSE(p.sources.empty());
    for (const auto& s : p.sources) {
      CHECK(s.url.rfind("https://learn.microsoft.com/", 0) == 0);
      CHECK_FALSE(s.says.empty());
    }
    const bool vault_rules = p.vault.soft_delete || p.vault.purge_protection ||
                             p.vault.protected_subscription || p.vault.two_vaults_in_two_regions;
    CHECK(vault_rules == !p.vault_rule_url.empty());
    for (const auto& c : check_vault_settings(p, {})) {
      CHECK(c.source_url == p.vault_rule_url);
      CHECK(c.source_url.rfind("https://learn.microsoft.com/", 0) == 0);
    }
    const Json j = service_profile_json(p);
    CHECK(j.at("name") == std::string(p.name));
    CHECK(j.at("key_types").size() == p.key_specs.size());
  }
}

TEST_CASE("key operations: wrapKey and unwrapKey for CMK services, all six for AIP",
          "[unit][profiles]") {
  CHECK(check_profile_key_ops(profile("storage-cmk"), {"wrapKey", "unwrapKey"}).has_value());
  auto missing = check_profile_key_ops(profile("sql-tde"), {"sign", "verify", "wrapKey"});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == ErrorCode::kUnsupported);
  CHECK(missing.error().message().find("missing unwrapKey") != std::string::npos);

  const std::vector<std::string> all_six = {"encrypt",   "decrypt", "wrapKey",
                                            "unwrapKey", "sign",    "verify"};
  CHECK(check_profile_key_ops(profile("aip-tenant-key"), all_six).has_value());
  auto aip = check_profile_key_ops(profile("aip-tenant-key"), {"wrapKey", "unwrapKey"});
  REQUIRE_FALSE(aip.has_value());
  CHECK(aip.error().message().find("encrypt") != std::string::npos);
  CHECK(check_profile_key_ops(profile("generic"), {}).has_value());
}

TEST_CASE("validity dates: SQL TDE wants an active key, Customer Key no expiry",
          "[unit][profiles]") {
  const std::int64_t now = 1'800'000'000;
  const auto& sql = profile("sql-tde");
  CHECK(check_profile_validity(sql, std::nullopt, std::nullopt, now).has_value());
  CHECK(check_profile_validity(sql, now - 10, now + 86400, now).has_value());
  CHECK_FALSE(check_profile_validity(sql, now + 10, std::nullopt, now).has_value());
  CHECK_FALSE(check_profile_validity(sql, std::nullopt, now - 1, now).has_value());

  const auto& m365 = profile("m365-customer-key");
  CHECK(check_profile_validity(m365, std::nullopt, std::nullopt, now).has_value());
  CHECK(check_profile_validity(m365, std::nullopt, 253402214400, now).has_value());  // 9999-12-31
  auto expiring = check_profile_validity(m365, std::nullopt, now + 365 * 86400, now);
  REQUIRE_FALSE(expiring.has_value());
  CHECK(expiring.error().message().find("12/31/9999") != std::string::npos);

  CHECK(check_profile_validity(profile("storage-cmk"), now + 10, now - 10, now).has_value());
}

TEST_CASE("vault settings are read from recoveryLevel", "[unit][profiles]") {
  auto outcome = [](const std::vector<VaultCheck>& checks, const std::string& requirement) {
    for (const auto& c : checks) {
      if (c.requirement == requirement) {
        return std::string(to_string(c.outcome));
      }
    }
    return std::string("absent");
  };
  const auto& storage = profile("storage-cmk");
  // keyport's simulated vault: soft delete on, purge allowed.
  auto sim = check_vault_settings(storage, {"Recoverable+Purgeable", 90});
  CHECK(outcome(sim, "soft-delete") == "met");
  CHECK(outcome(sim, "purge-protection") == "not-met");
  CHECK(outcome(sim, "protected-subscription") == "absent");

  auto protected_vault = check_vault_settings(storage, {"Recoverable", 90});
  CHECK(outcome(protected_vault, "soft-delete") == "met");
  CHECK(outcome(protected_vault, "purge-protection") == "met");

  auto no_soft_delete = check_vault_settings(storage, {"Purgeable", std::nullopt});
  CHECK(outcome(no_soft_delete, "soft-delete") == "not-met");

  auto unknown = check_vault_settings(storage, {});
  CHECK(outcome(unknown, "soft-delete") == "operator-must-ensure");
  CHECK(outcome(unknown, "purge-protection") == "operator-must-ensure");

  const auto& m365 = profile("m365-customer-key");
  auto ck = check_vault_settings(m365, {"Recoverable+ProtectedSubscription", 90});
  CHECK(outcome(ck, "soft-delete") == "met");
  CHECK(outcome(ck, "purge-protection") == "met");
  CHECK(outcome(ck, "protected-subscription") == "met");
  CHECK(outcome(ck, "two-vaults-in-two-regions") == "operator-must-ensure");
  CHECK(outcome(check_vault_settings(m365, {"Recoverable", 90}), "protected-subscription") ==
        "not-met");

  CHECK(check_vault_settings(profile("aip-tenant-key"), {"Purgeable", 0}).empty());
  CHECK(check_vault_settings(profile("generic"), {"Purgeable", 0}).empty());
}
