// SPDX-License-Identifier: Apache-2.0
// Target: release policies (skr/policy.h): lint, parse, evaluate. The input is a policy document,
// optionally followed by a NUL byte and a claims object to evaluate it against as well as the
// fixed claim set below (so the fuzzer explores both sides of every comparison).
// Invariants: lint and parse agree; an evaluation is deterministic and its Decision is coherent
// (allowed <=> no failing path; allowed => a passing "$.anyOf[i]" clause); authority
// matching is reflexive; a policy survives the release_policy.data encoding.
// max_len 64 KiB (the vault bounds policies far below this).
#include <string>

#include "core/encoding.h"
#include "core/json.h"
#include "skr/policy.h"
#include "tests/fuzz/fuzz.h"

namespace {

using keyport::Json;

// A claim set shaped like a simulated SEV-SNP token (strings, numbers, booleans, nested objects,
// an array, null), with numeric strings for the mixed-type comparison rules.
const Json& fixed_claims() {
  static const Json claims = Json::parse(R"({
    "iss": "https://simulated-maa.keyport.localhost",
    "exp": 1800028800, "iat": 1800000000, "nbf": 1800000000,
    "x-ms-attestation-type": "sevsnpvm",
    "x-ms-compliance-status": "azure-compliant-cvm",
    "x-ms-sevsnpvm-is-debuggable": false,
    "x-ms-sevsnpvm-guestsvn": 2,
    "x-ms-sevsnpvm-vmpl": "0",
    "half": 0.5, "neg": -3, "big": 1e300, "numstr": "1e3", "zero": "00",
    "x-ms-isolation-tee": {"x-ms-attestation-type": "sevsnpvm",
                           "x-ms-compliance-status": "azure-compliant-cvm",
                           "x-ms-sevsnpvm-vmpl": 0},
    "arr": [1, "a"], "nul": null, "t": "true", "f": "false",
    "x-ms-runtime": {"client-payload": {"nonce": "abc"}, "keys": []}
  })");
  return claims;
}

void check_decision(const keyport::skr::ReleasePolicy& policy, const Json& claims) {
  auto d = keyport::skr::evaluate(policy, claims);
  KEYPORT_FUZZ_CHECK(d.allowed == d.failing_path.empty());
  if (d.allowed) {
    KEYPORT_FUZZ_CHECK(d.passed_path.rfind("$.anyOf[", 0) == 0);
  } else {
    KEYPORT_FUZZ_CHECK(d.failing_path.rfind("$.anyOf", 0) == 0);
    KEYPORT_FUZZ_CHECK(d.passed_path.empty());
  }
  KEYPORT_FUZZ_CHECK(!d.reason.empty());
  auto again = keyport::skr::evaluate(policy, claims);
  KEYPORT_FUZZ_CHECK(again.allowed == d.allowed && again.failing_path == d.failing_path &&
                     again.trace == d.trace);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(64 * 1024);
  using namespace keyport::skr;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view text = input;
  std::string_view claims_text;
  if (auto nul = input.find('\0'); nul != std::string_view::npos) {
    text = input.substr(0, nul);
    claims_text = input.substr(nul + 1);
  }

  PolicyLint lint = lint_policy(text);
  KEYPORT_FUZZ_CHECK(lint.policy.has_value() == lint.errors.empty());
  for (const auto& f : lint.errors)
    KEYPORT_FUZZ_CHECK(f.path.rfind("$", 0) == 0);
  auto parsed = parse_policy(text);
  KEYPORT_FUZZ_CHECK(parsed.has_value() == lint.errors.empty());

  // The KeyBundle's release_policy.data carries the policy as base64url; it must decode back.
  auto decoded = decode_policy_data(keyport::base64url_encode(
      std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())));
  if (decoded)
    KEYPORT_FUZZ_CHECK(*decoded == text);

  if (!parsed)
    return 0;
  const ReleasePolicy& policy = parsed->policy;
  KEYPORT_FUZZ_CHECK(!policy.authorities.empty());
  for (const auto& a : policy.authorities) {
    KEYPORT_FUZZ_CHECK(authority_matches(a.authority, a.authority));
  }
  check_decision(policy, fixed_claims());
  if (!claims_text.empty()) {
    auto claims = keyport::parse_json_strict(claims_text);
    if (claims && claims->is_object())
      check_decision(policy, *claims);
  }
  return 0;
}
