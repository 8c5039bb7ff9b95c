// SPDX-License-Identifier: Apache-2.0
// skr/policy.h: one table row per grammar rule, per operator and per comparison rule, the policies
// of Azure's documentation (Microsoft Learn, policy-grammar, and the SKR policy examples) against
// claim sets shaped like Azure Attestation tokens, parse errors with their JSON paths, and the
// legacy 0.2 form.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/encoding.h"
#include "skr/policy.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::skr;

namespace {

constexpr const char* kMaa = "https://sharedweu.weu.attest.azure.net";

// A confidential-VM guest attestation token (CVM-SKR-APP sampleAttestationToken.json's shape).
Json cvm_claims() {
  return Json::parse(R"({
    "iss": "https://sharedweu.weu.attest.azure.net",
    "x-ms-attestation-type": "azurevm",
    "x-ms-compliance-status": "azure-compliant-cvm",
    "x-ms-azurevm-vmid": "2A5E7E1C-0F4B-4C68-9C8E-3F0D2B5C1A11",
    "x-ms-azurevm-attested-pcrs": [0, 1, 2, 3],
    "x-ms-isolation-tee": {
      "x-ms-attestation-type": "sevsnpvm",
      "x-ms-compliance-status": "azure-compliant-cvm",
      "x-ms-sevsnpvm-is-debuggable": false,
      "x-ms-sevsnpvm-vmpl": 0
    },
    "x-ms-runtime": {"client-payload": {"nonce": "ADE0101"}, "keys": []}
  })");
}

// A confidential container on ACI (SIDECAR): sevsnpvm at the top level, booleans and numbers.
Json aci_claims() {
  return Json::parse(R"({
    "iss": "https://sharedeus2.eus2.attest.azure.net",
    "x-ms-attestation-type": "sevsnpvm",
    "x-ms-compliance-status": "azure-compliant-uvm",
    "x-ms-sevsnpvm-hostdata": "73973b78d70cc68353426de188db5dfc57e5b766e399935fb73a61127ea26d20",
    "x-ms-sevsnpvm-is-debuggable": false,
    "x-ms-sevsnpvm-vmpl": 0,
    "x-ms-sevsnpvm-guestsvn": 2
  })");
}

Json tdx_claims() {
  return Json::parse(R"({
    "iss": "https://sharedweu.weu.attest.azure.net",
    "x-ms-attestation-type": "tdxvm",
    "x-ms-compliance-status": "azure-compliant-cvm",
    "tdx_td_attributes_debug": false
  })");
}

Json sgx_claims(int svn) {
  Json c = Json::parse(R"({
    "iss": "https://sharedweu.weu.attest.azure.net",
    "x-ms-attestation-type": "sgx",
    "x-ms-sgx-is-debuggable": false,
    "x-ms-sgx-mrsigner": "c0a2d5a1e8d14e2f8a3b7c6d5e4f30211f2e3d4c5b6a79881726354453627181",
    "x-ms-sgx-mrenclave": "9c6b1b44f0a1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b"
  })");
  c["x-ms-sgx-svn"] = svn;
  return c;
}

// Claims exercising the comparison rules.
Json typed_claims() {
  return Json::parse(R"({
    "iss": "https://sharedweu.weu.attest.azure.net",
    "s": "sevsnpvm",
    "num": "42",
    "word": "abc",
    "zero": 0,
    "one": 1,
    "onef": 1.0,
    "half": 0.5,
    "neg": -3,
    "big": 9007199254740993,
    "t": true,
    "f": false,
    "ts": "true",
    "fs": "false",
    "nul": null,
    "obj": {"a": {"b": "deep"}},
    "arr": [1, 2]
  })");
}

// A policy with one authority (kMaa) and its allOf conditions.
std::string policy_all(const std::string& conditions) {
  return std::string(R"({"version":"1.0.0","anyOf":[{"authority":")") + kMaa + R"(","allOf":[)" +
         conditions + "]}]}";
}

struct Row {
  const char* name;
  std::string policy;
  Json claims;
  bool allowed;
  std::string failing_path;  // checked when denied
};

void check_rows(const std::vector<Row>& rows) {
  for (const auto& row : rows) {
    INFO(row.name);
    INFO(row.policy);
    auto parsed = parse_policy(row.policy);
    REQUIRE_OK(parsed);
    Decision d = evaluate(parsed->policy, row.claims);
    std::string trace;
    for (const auto& t : d.trace) {
      trace += t + "\n";
    }
    INFO(trace);
    CHECK(d.allowed == row.allowed);
    if (!row.allowed) {
      CHECK(d.failing_path == row.failing_path);
      CHECK_FALSE(d.reason.empty());
    } else {
      CHECK(d.failing_path.empty());
      CHECK_FALSE(d.passed_path.empty());
    }
    CHECK_FALSE(d.trace.empty());
  }
}

const std::string kC0 = "$.anyOf[0].allOf[0]";

}  // namespace

TEST_CASE("each operator passes and fails at its boundary", "[skr][policy]") {
  const Json c = typed_claims();
  check_rows({
      {"equals string", policy_all(R"({"claim":"s","equals":"sevsnpvm"})"), c, true, ""},
      {"equals is case-sensitive", policy_all(R"({"claim":"s","equals":"SEVSNPVM"})"), c, false,
       kC0},
      {"notEquals differs", policy_all(R"({"claim":"s","notEquals":"tdxvm"})"), c, true, ""},
      {"notEquals same", policy_all(R"({"claim":"s","notEquals":"sevsnpvm"})"), c, false, kC0},
      {"less below", policy_all(R"({"claim":"one","less":2})"), c, true, ""},
      {"less equal", policy_all(R"({"claim":"one","less":1})"), c, false, kC0},
      {"lessOrEquals equal", policy_all(R"({"claim":"one","lessOrEquals":1})"), c, true, ""},
      {"lessOrEquals above", policy_all(R"({"claim":"one","lessOrEquals":0})"), c, false, kC0},
      {"greater above", policy_all(R"({"claim":"one","greater":0})"), c, true, ""},
      {"greater equal", policy_all(R"({"claim":"one","greater":1})"), c, false, kC0},
      {"greaterOrEquals equal", policy_all(R"({"claim":"one","greaterOrEquals":1})"), c, true, ""},
      {"greaterOrEquals below", policy_all(R"({"claim":"one","greaterOrEquals":2})"), c, false,
       kC0},
      {"negative numbers order", policy_all(R"({"claim":"neg","less":-2})"), c, true, ""},
      {"fractions order", policy_all(R"({"claim":"half","greater":0.25})"), c, true, ""},
      {"exists true present", policy_all(R"({"claim":"s","exists":true})"), c, true, ""},
      {"exists true absent", policy_all(R"({"claim":"nope","exists":true})"), c, false, kC0},
      {"exists false absent", policy_all(R"({"claim":"nope","exists":false})"), c, true, ""},
      {"exists false present", policy_all(R"({"claim":"s","exists":false})"), c, false, kC0},
  });
}

TEST_CASE("a missing claim fails every operator except exists false", "[skr][policy]") {
  const Json c = typed_claims();
  check_rows({
      {"equals", policy_all(R"({"claim":"missing","equals":"x"})"), c, false, kC0},
      {"notEquals", policy_all(R"({"claim":"missing","notEquals":"x"})"), c, false, kC0},
      {"less", policy_all(R"({"claim":"missing","less":5})"), c, false, kC0},
      {"lessOrEquals", policy_all(R"({"claim":"missing","lessOrEquals":5})"), c, false, kC0},
      {"greater", policy_all(R"({"claim":"missing","greater":5})"), c, false, kC0},
      {"greaterOrEquals", policy_all(R"({"claim":"missing","greaterOrEquals":5})"), c, false, kC0},
      {"exists true", policy_all(R"({"claim":"missing","exists":true})"), c, false, kC0},
      {"exists false", policy_all(R"({"claim":"missing","exists":false})"), c, true, ""},
      {"missing nested leaf", policy_all(R"({"claim":"obj.a.c","equals":"deep"})"), c, false, kC0},
  });
}

TEST_CASE("dot paths reach nested claims and nothing else", "[skr][policy]") {
  const Json c = typed_claims();
  check_rows({
      {"two levels", policy_all(R"({"claim":"obj.a.b","equals":"deep"})"), c, true, ""},
      {"through a string", policy_all(R"({"claim":"s.x","exists":true})"), c, false, kC0},
      {"through an array", policy_all(R"({"claim":"arr.0","equals":1})"), c, false, kC0},
      {"an object claim does not compare", policy_all(R"({"claim":"obj","equals":"x"})"), c, false,
       kC0},
      {"an object claim exists", policy_all(R"({"claim":"obj.a","exists":true})"), c, true, ""},
      {"an array claim does not compare", policy_all(R"({"claim":"arr","notEquals":"x"})"), c,
       false, kC0},
      {"a null claim does not compare", policy_all(R"({"claim":"nul","notEquals":"x"})"), c, false,
       kC0},
      {"a null claim exists", policy_all(R"({"claim":"nul","exists":true})"), c, true, ""},
  });
}

TEST_CASE("strings and booleans compare through the words true and false", "[skr][policy]") {
  const Json c = typed_claims();
  check_rows({
      {"string false equals boolean false", policy_all(R"({"claim":"f","equals":"false"})"), c,
       true, ""},
      {"string true equals boolean true", policy_all(R"({"claim":"t","equals":"true"})"), c, true,
       ""},
      {"string true is not boolean false", policy_all(R"({"claim":"f","equals":"true"})"), c, false,
       kC0},
      {"capitalised False is not false", policy_all(R"({"claim":"f","equals":"False"})"), c, false,
       kC0},
      {"boolean policy value against string claim", policy_all(R"({"claim":"fs","equals":false})"),
       c, true, ""},
      {"notEquals string against boolean", policy_all(R"({"claim":"f","notEquals":"true"})"), c,
       true, ""},
      {"boolean is never a number", policy_all(R"({"claim":"t","equals":1})"), c, false, kC0},
      {"number is never a boolean", policy_all(R"({"claim":"one","equals":true})"), c, false, kC0},
      {"booleans are not ordered", policy_all(R"({"claim":"t","greater":0})"), c, false, kC0},
  });
}

TEST_CASE("strings and numbers compare numerically when the string is a number", "[skr][policy]") {
  const Json c = typed_claims();
  check_rows({
      {"string zero equals number zero", policy_all(R"({"claim":"zero","equals":"0"})"), c, true,
       ""},
      {"string 0.0 equals number zero", policy_all(R"({"claim":"zero","equals":"0.0"})"), c, true,
       ""},
      {"exponent literal", policy_all(R"({"claim":"one","equals":"1e0"})"), c, true, ""},
      {"leading zeros are not a number", policy_all(R"({"claim":"zero","equals":"00"})"), c, false,
       kC0},
      {"spaces are not a number", policy_all(R"({"claim":"zero","equals":" 0"})"), c, false, kC0},
      {"plus sign is not a number", policy_all(R"({"claim":"one","equals":"+1"})"), c, false, kC0},
      {"number policy against numeric string claim", policy_all(R"({"claim":"num","equals":42})"),
       c, true, ""},
      {"integer equals float", policy_all(R"({"claim":"onef","equals":1})"), c, true, ""},
      {"large integers compare exactly", policy_all(R"({"claim":"big","equals":9007199254740992})"),
       c, false, kC0},
      {"large integers equal exactly", policy_all(R"({"claim":"big","equals":9007199254740993})"),
       c, true, ""},
      {"numeric strings order", policy_all(R"({"claim":"num","greater":"41.5"})"), c, true, ""},
      {"non-numeric string is not ordered", policy_all(R"({"claim":"word","greater":1})"), c, false,
       kC0},
      {"two strings compare exactly", policy_all(R"({"claim":"num","equals":"42.0"})"), c, false,
       kC0},
  });
}

TEST_CASE("allOf needs every condition and anyOf needs one", "[skr][policy]") {
  const Json c = typed_claims();
  check_rows({
      {"allOf all pass",
       policy_all(R"({"claim":"s","equals":"sevsnpvm"},{"claim":"one","equals":1})"), c, true, ""},
      {"allOf reports the first failing condition",
       policy_all(R"({"claim":"s","equals":"sevsnpvm"},{"claim":"one","equals":2},)"
                  R"({"claim":"zero","equals":1})"),
       c, false, "$.anyOf[0].allOf[1]"},
      {"anyOf one passes",
       std::string(R"({"version":"1.0.0","anyOf":[{"authority":")") + kMaa +
           R"(","anyOf":[{"claim":"s","equals":"x"},{"claim":"s","equals":"sevsnpvm"}]}]})",
       c, true, ""},
      {"anyOf none passes reports its first child",
       std::string(R"({"version":"1.0.0","anyOf":[{"authority":")") + kMaa +
           R"(","anyOf":[{"claim":"s","equals":"x"},{"claim":"s","equals":"y"}]}]})",
       c, false, "$.anyOf[0].anyOf[0]"},
      {"nested anyOf inside allOf",
       policy_all(R"({"anyOf":[{"claim":"s","equals":"tdxvm"},{"claim":"s","equals":"sevsnpvm"}]},)"
                  R"({"claim":"f","equals":false})"),
       c, true, ""},
      {"nested group failure points inside the group",
       policy_all(R"({"claim":"f","equals":false},)"
                  R"({"allOf":[{"claim":"one","equals":1},{"claim":"zero","equals":5}]})"),
       c, false, "$.anyOf[0].allOf[1].allOf[1]"},
      {"failures inside a passing anyOf do not count",
       policy_all(R"({"anyOf":[{"claim":"s","equals":"x"},{"claim":"s","equals":"sevsnpvm"}]},)"
                  R"({"claim":"zero","equals":1})"),
       c, false, "$.anyOf[0].allOf[1]"},
  });
}

TEST_CASE("the authority must name the token issuer", "[skr][policy]") {
  const Json c = typed_claims();
  auto one = [](const std::string& authority) {
    return R"({"version":"1.0.0","anyOf":[{"authority":")" + authority +
           R"(","allOf":[{"claim":"s","equals":"sevsnpvm"}]}]})";
  };
  Json no_iss = c;
  no_iss.erase("iss");
  Json slash_iss = c;
  slash_iss["iss"] = std::string(kMaa) + "/";
  check_rows({
      {"exact", one(kMaa), c, true, ""},
      {"policy with a trailing slash", one(std::string(kMaa) + "/"), c, true, ""},
      {"token with a trailing slash", one(kMaa), slash_iss, true, ""},
      {"two trailing slashes differ", one(std::string(kMaa) + "//"), c, false, "$.anyOf"},
      {"scheme and host case", one("HTTPS://SharedWEU.weu.attest.azure.net"), c, true, ""},
      {"another host", one("https://sharedeus2.eus2.attest.azure.net"), c, false, "$.anyOf"},
      {"a path is case-sensitive", one(std::string(kMaa) + "/Tenant"),
       [&] {
         Json x = c;
         x["iss"] = std::string(kMaa) + "/tenant";
         return x;
       }(),
       false, "$.anyOf"},
      {"no iss claim", one(kMaa), no_iss, false, "$.anyOf"},
      {"second authority matches",
       std::string(R"({"version":"1.0.0","anyOf":[)") +
           R"({"authority":"https://other.attest.azure.net","allOf":[{"claim":"s","equals":"x"}]},)" +
           R"({"authority":")" + kMaa + R"(","allOf":[{"claim":"s","equals":"sevsnpvm"}]}]})",
       c, true, ""},
      {"same issuer twice and the second passes",
       std::string(R"({"version":"1.0.0","anyOf":[)") + R"({"authority":")" + kMaa +
           R"(","allOf":[{"claim":"s","equals":"x"}]},)" + R"({"authority":")" + kMaa +
           R"(","allOf":[{"claim":"s","equals":"sevsnpvm"}]}]})",
       c, true, ""},
      {"a failing matching authority is reported not the mismatched one",
       std::string(R"({"version":"1.0.0","anyOf":[)") +
           R"({"authority":"https://other.attest.azure.net","allOf":[{"claim":"s","equals":"x"}]},)" +
           R"({"authority":")" + kMaa + R"(","allOf":[{"claim":"s","equals":"y"}]}]})",
       c, false, "$.anyOf[1].allOf[0]"},
  });
}

TEST_CASE("the policies of the Azure documentation evaluate as documented",
          "[skr][policy][azure]") {
  const std::string snp_cvm =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://sharedweu.weu.attest.azure.net",
    "allOf":[{"claim":"x-ms-isolation-tee.x-ms-attestation-type","equals":"sevsnpvm"},
             {"claim":"x-ms-isolation-tee.x-ms-compliance-status","equals":"azure-compliant-cvm"}]}]})";
  const std::string cvm_default =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://sharedweu.weu.attest.azure.net/",
    "allOf":[{"claim":"x-ms-compliance-status","equals":"azure-compliant-cvm"}]}]})";
  const std::string data_disk =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://sharedweu.weu.attest.azure.net/",
    "allOf":[{"anyOf":[{"claim":"x-ms-isolation-tee.x-ms-attestation-type","equals":"sevsnpvm"},
                       {"claim":"x-ms-isolation-tee.x-ms-attestation-type","equals":"tdxvm"}]},
             {"claim":"x-ms-isolation-tee.x-ms-compliance-status","equals":"azure-compliant-cvm"}]}]})";
  const std::string tdx =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://sharedweu.weu.attest.azure.net",
    "allOf":[{"claim":"x-ms-attestation-type","equals":"tdxvm"},
             {"claim":"x-ms-compliance-status","equals":"azure-compliant-cvm"}]}]})";
  const std::string sgx =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://sharedweu.weu.attest.azure.net",
    "allOf":[{"claim":"x-ms-sgx-is-debuggable","equals":false},
             {"claim":"x-ms-sgx-mrsigner","equals":"c0a2d5a1e8d14e2f8a3b7c6d5e4f30211f2e3d4c5b6a79881726354453627181"},
             {"claim":"x-ms-sgx-svn","greater":1}]}]})";
  const std::string aci =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://sharedeus2.eus2.attest.azure.net",
    "allOf":[{"claim":"x-ms-sevsnpvm-hostdata","equals":"73973b78d70cc68353426de188db5dfc57e5b766e399935fb73a61127ea26d20"},
             {"claim":"x-ms-compliance-status","equals":"azure-compliant-uvm"},
             {"claim":"x-ms-sevsnpvm-is-debuggable","equals":"false"},
             {"claim":"x-ms-sevsnpvm-vmpl","equals":"0"},
             {"claim":"x-ms-attestation-type","equals":"sevsnpvm"}]}]})";
  const std::string trusted_launch =
      R"({"version":"1.0.0","anyOf":[{"authority":"https://sharedweu.weu.attest.azure.net",
    "allOf":[{"claim":"x-ms-azurevm-vmid","equals":"2A5E7E1C-0F4B-4C68-9C8E-3F0D2B5C1A11"}]}]})";

  Json cvm_tdx = cvm_claims();
  cvm_tdx["x-ms-isolation-tee"]["x-ms-attestation-type"] = "tdxvm";
  Json cvm_other = cvm_claims();
  cvm_other["x-ms-isolation-tee"]["x-ms-attestation-type"] = "sgx";
  Json aci_debug = aci_claims();
  aci_debug["x-ms-sevsnpvm-is-debuggable"] = true;
  Json aci_vmpl = aci_claims();
  aci_vmpl["x-ms-sevsnpvm-vmpl"] = 1;
  Json cvm_not_compliant = cvm_claims();
  cvm_not_compliant["x-ms-isolation-tee"]["x-ms-compliance-status"] = "azure-noncompliant";

  check_rows({
      {"SEV-SNP CVM nested isolation-tee", snp_cvm, cvm_claims(), true, ""},
      {"SEV-SNP CVM not compliant", snp_cvm, cvm_not_compliant, false, "$.anyOf[0].allOf[1]"},
      {"CVM default policy", cvm_default, cvm_claims(), true, ""},
      {"CVM data disk policy on SEV-SNP", data_disk, cvm_claims(), true, ""},
      {"CVM data disk policy on TDX", data_disk, cvm_tdx, true, ""},
      {"CVM data disk policy on another TEE", data_disk, cvm_other, false,
       "$.anyOf[0].allOf[0].anyOf[0]"},
      {"TDX", tdx, tdx_claims(), true, ""},
      {"TDX policy on SEV-SNP", tdx, aci_claims(), false, "$.anyOf"},
      {"SGX svn greater than 1", sgx, sgx_claims(2), true, ""},
      {"SGX svn 1 is not greater than 1", sgx, sgx_claims(1), false, "$.anyOf[0].allOf[2]"},
      {"ACI confidential containers with string forms", aci, aci_claims(), true, ""},
      {"ACI with a debuggable TEE", aci, aci_debug, false, "$.anyOf[0].allOf[2]"},
      {"ACI with vmpl 1", aci, aci_vmpl, false, "$.anyOf[0].allOf[3]"},
      {"Trusted Launch vmid", trusted_launch, cvm_claims(), true, ""},
  });
}

TEST_CASE("the legacy 0.2 form parses with a deprecation warning and evaluates", "[skr][policy]") {
  const std::string legacy =
      R"({"version":"0.2","anyOf":[{"authority":"https://sharedweu.weu.attest.azure.net",
    "allOf":[{"claim":"x-ms-attestation-type","condition":"equals","value":"azurevm"},
             {"claim":"x-ms-isolation-tee.x-ms-sevsnpvm-vmpl","condition":"equals","value":"0"}]}]})";
  auto parsed = parse_policy(legacy);
  REQUIRE_OK(parsed);
  CHECK(parsed->policy.legacy);
  REQUIRE(parsed->warnings.size() == 1);
  CHECK(parsed->warnings[0].path == "$.version");
  CHECK(parsed->warnings[0].message.find("deprecated") != std::string::npos);
  CHECK(evaluate(parsed->policy, cvm_claims()).allowed);
  Json other = cvm_claims();
  other["x-ms-attestation-type"] = "sgx";
  Decision d = evaluate(parsed->policy, other);
  CHECK_FALSE(d.allowed);
  CHECK(d.failing_path == "$.anyOf[0].allOf[0]");
}

TEST_CASE("a decision names the passing clause and traces every step", "[skr][policy]") {
  auto parsed = parse_policy(
      R"({"version":"1.0.0","anyOf":[{"authority":"https://other.example","allOf":[{"claim":"s","equals":"x"}]},)"
      R"({"authority":"https://sharedweu.weu.attest.azure.net","anyOf":[{"claim":"s","equals":"sevsnpvm"}]}]})");
  REQUIRE_OK(parsed);
  Decision d = evaluate(parsed->policy, typed_claims());
  CHECK(d.allowed);
  CHECK(d.passed_path == "$.anyOf[1]");
  CHECK(d.reason.find("$.anyOf[1]") != std::string::npos);
  REQUIRE(d.trace.size() >= 3);
  CHECK(d.trace[0].find("does not match") != std::string::npos);
  CHECK(d.trace[1].find("matches the issuer") != std::string::npos);
  CHECK(d.trace[2].find("-> pass") != std::string::npos);
}

TEST_CASE("claims that are not an object are denied", "[skr][policy]") {
  auto parsed = parse_policy(policy_all(R"({"claim":"s","exists":true})"));
  REQUIRE_OK(parsed);
  Decision d = evaluate(parsed->policy, Json::array());
  CHECK_FALSE(d.allowed);
  CHECK(d.failing_path == "$");
}

namespace {

struct ErrorRow {
  const char* name;
  std::string policy;
  std::string path;
  std::string message_part;
};

}  // namespace

TEST_CASE("parse errors point at the JSON path of the problem", "[skr][policy]") {
  const std::string auth = std::string(R"("authority":")") + kMaa + "\"";
  const std::vector<ErrorRow> rows = {
      {"not JSON", "{", "$", "not a valid policy document"},
      {"duplicate members", R"({"version":"1.0.0","version":"1.0.0","anyOf":[]})", "$",
       "duplicate member"},
      {"not an object", "[]", "$", "JSON object"},
      {"missing version", R"({"anyOf":[{)" + auth + R"(,"allOf":[{"claim":"a","equals":1}]}]})",
       "$.version", "missing"},
      {"unknown version",
       R"({"version":"1.0.2","anyOf":[{)" + auth + R"(,"allOf":[{"claim":"a","equals":1}]}]})",
       "$.version", "unsupported version"},
      {"numeric version",
       R"({"version":1,"anyOf":[{)" + auth + R"(,"allOf":[{"claim":"a","equals":1}]}]})",
       "$.version", "string"},
      {"top-level allOf",
       R"({"version":"1.0.0","allOf":[{)" + auth + R"(,"allOf":[{"claim":"a","equals":1}]}]})",
       "$.allOf", "top level takes \"anyOf\""},
      {"top-level lowercase anyof",
       R"({"version":"1.0.0","anyof":[{)" + auth + R"(,"allOf":[{"claim":"a","equals":1}]}]})",
       "$.anyof", "case-sensitive"},
      {"missing anyOf", R"({"version":"1.0.0"})", "$.anyOf", "missing"},
      {"empty anyOf", R"({"version":"1.0.0","anyOf":[]})", "$.anyOf", "at least one"},
      {"anyOf not an array", R"({"version":"1.0.0","anyOf":{}})", "$.anyOf", "array"},
      {"unknown top-level member",
       R"({"version":"1.0.0","extra":1,"anyOf":[{)" + auth +
           R"(,"allOf":[{"claim":"a","equals":1}]}]})",
       "$.extra", "unknown member"},
      {"authority not an object", R"({"version":"1.0.0","anyOf":["x"]})", "$.anyOf[0]", "object"},
      {"missing authority", R"({"version":"1.0.0","anyOf":[{"allOf":[{"claim":"a","equals":1}]}]})",
       "$.anyOf[0].authority", "missing"},
      {"empty authority",
       R"({"version":"1.0.0","anyOf":[{"authority":"","allOf":[{"claim":"a","equals":1}]}]})",
       "$.anyOf[0].authority", "non-empty"},
      {"authority with allOf and anyOf",
       R"({"version":"1.0.0","anyOf":[{)" + auth +
           R"(,"allOf":[{"claim":"a","equals":1}],)"
           R"("anyOf":[{"claim":"a","equals":1}]}]})",
       "$.anyOf[0]", "both aren't allowed"},
      {"authority without conditions", R"({"version":"1.0.0","anyOf":[{)" + auth + "}]}",
       "$.anyOf[0]", "needs \"allOf\" or \"anyOf\""},
      {"lowercase anyof in an authority",
       R"({"version":"1.0.0","anyOf":[{)" + auth + R"(,"anyof":[{"claim":"a","equals":1}]}]})",
       "$.anyOf[0].anyof", "case-sensitive: write \"anyOf\""},
      {"lowercase allof in an authority",
       R"({"version":"1.0.0","anyOf":[{)" + auth + R"(,"allof":[{"claim":"a","equals":1}]}]})",
       "$.anyOf[0].allof", "case-sensitive: write \"allOf\""},
      {"empty allOf", R"({"version":"1.0.0","anyOf":[{)" + auth + R"(,"allOf":[]}]})",
       "$.anyOf[0].allOf", "at least one"},
      {"condition not an object", policy_all(R"("x")"), kC0, "object"},
      {"claim not a string", policy_all(R"({"claim":5,"equals":1})"), kC0 + ".claim",
       "non-empty string"},
      {"empty claim", policy_all(R"({"claim":"","equals":1})"), kC0 + ".claim", "non-empty"},
      {"empty dot segment", policy_all(R"({"claim":"a..b","equals":1})"), kC0 + ".claim",
       "empty segment"},
      {"trailing dot", policy_all(R"({"claim":"a.","equals":1})"), kC0 + ".claim", "empty segment"},
      {"no operator", policy_all(R"({"claim":"a"})"), kC0, "no operator"},
      {"two operators", policy_all(R"({"claim":"a","equals":1,"notEquals":2})"), kC0 + ".notEquals",
       "only one operator"},
      {"array value",
       policy_all(
           R"({"claim":"a","equals":1},{"claim":"b","equals":2},{"claim":"c","equals":[1]})"),
       "$.anyOf[0].allOf[2].equals", "arrays are not supported"},
      {"object value", policy_all(R"({"claim":"a","equals":{"x":1}})"), kC0 + ".equals",
       "objects are not allowed"},
      {"null value", policy_all(R"({"claim":"a","equals":null})"), kC0 + ".equals", "null"},
      {"exists with a string", policy_all(R"({"claim":"a","exists":"true"})"), kC0 + ".exists",
       "boolean"},
      {"greater with a word", policy_all(R"({"claim":"a","greater":"abc"})"), kC0 + ".greater",
       "compares numbers"},
      {"less with a boolean", policy_all(R"({"claim":"a","less":true})"), kC0 + ".less",
       "compares numbers"},
      {"capitalised operator", policy_all(R"({"claim":"a","Equals":1})"), kC0 + ".Equals",
       "case-sensitive: write \"equals\""},
      {"unknown condition member", policy_all(R"({"claim":"a","equals":1,"note":"x"})"),
       kC0 + ".note", "unknown member"},
      {"claim with a group", policy_all(R"({"claim":"a","allOf":[{"claim":"b","equals":1}]})"), kC0,
       "not both"},
      {"empty nested anyOf", policy_all(R"({"anyOf":[]})"), kC0 + ".anyOf", "at least one"},
      {"nested group with both",
       policy_all(R"({"anyOf":[{"claim":"a","equals":1}],)"
                  R"("allOf":[{"claim":"a","equals":1}]})"),
       kC0, "exactly one"},
      {"empty condition object", policy_all("{}"), kC0, "needs \"claim\""},
      {"legacy form in version 1.0.0",
       policy_all(R"({"claim":"a","condition":"equals","value":1})"), kC0 + ".condition", "legacy"},
      {"legacy form with an unknown operator",
       R"({"version":"0.2","anyOf":[{)" + auth +
           R"(,"allOf":[{"claim":"a","condition":"matches","value":1}]}]})",
       kC0 + ".condition", "unknown operator"},
      {"legacy form without a value",
       R"({"version":"0.2","anyOf":[{)" + auth +
           R"(,"allOf":[{"claim":"a","condition":"equals"}]}]})",
       kC0 + ".value", "need \"value\""},
      {"legacy form with an array value",
       R"({"version":"0.2","anyOf":[{)" + auth +
           R"(,"allOf":[{"claim":"a","condition":"equals","value":[1]}]}]})",
       kC0 + ".value", "arrays"},
  };
  for (const auto& row : rows) {
    INFO(row.name);
    INFO(row.policy);
    PolicyLint lint = lint_policy(row.policy);
    REQUIRE_FALSE(lint.errors.empty());
    CHECK_FALSE(lint.policy.has_value());
    bool found = false;
    std::string all;
    for (const auto& e : lint.errors) {
      all += e.describe() + "\n";
      found =
          found || (e.path == row.path && e.message.find(row.message_part) != std::string::npos);
    }
    INFO(all);
    CHECK(found);
    auto parsed = parse_policy(row.policy);
    CHECK_ERROR_CODE(parsed, ErrorCode::kFormat);
    CHECK(parsed.error().message().find(lint.errors.front().path) != std::string::npos);
  }
}

TEST_CASE("lint collects every error and the warnings", "[skr][policy]") {
  PolicyLint lint = lint_policy(
      R"({"version":"1.0.0","anyOf":[{"authority":"http://plain.example","allOf":[)"
      R"({"claim":"a","greater":1},{"claim":"b","equals":[1]},{"claim":"","equals":1}]}]})");
  CHECK(lint.errors.size() == 2);
  bool http_warning = false;
  bool operator_warning = false;
  for (const auto& w : lint.warnings) {
    http_warning = http_warning || (w.path == "$.anyOf[0].authority" &&
                                    w.message.find("https") != std::string::npos);
    operator_warning = operator_warning || (w.path == "$.anyOf[0].allOf[0].greater" &&
                                            w.message.find("only \"equals\"") != std::string::npos);
  }
  CHECK(http_warning);
  CHECK(operator_warning);
}

TEST_CASE("a valid policy lints without errors or warnings", "[skr][policy]") {
  PolicyLint lint =
      lint_policy(policy_all(R"({"claim":"x-ms-attestation-type","equals":"sevsnpvm"})"));
  CHECK(lint.errors.empty());
  CHECK(lint.warnings.empty());
  REQUIRE(lint.policy.has_value());
  REQUIRE(lint.policy->authorities.size() == 1);
  CHECK(lint.policy->authorities[0].group.children[0].claim_segments ==
        std::vector<std::string>{"x-ms-attestation-type"});
}

TEST_CASE("release policy data decodes from base64url and base64", "[skr][policy]") {
  const std::string text = policy_all(R"({"claim":"a","equals":"b?>"})");
  auto url = decode_policy_data(base64url_encode(as_bytes(text)));
  REQUIRE_OK(url);
  CHECK(*url == text);
  auto std64 = decode_policy_data(base64_encode(as_bytes(text)));
  REQUIRE_OK(std64);
  CHECK(*std64 == text);
  CHECK_ERROR_CODE(decode_policy_data("not base64 at all!"), ErrorCode::kFormat);
}

TEST_CASE("JSON number literals follow RFC 8259", "[skr][policy]") {
  for (const char* yes : {"0", "-0", "1", "-12", "1.5", "1e9", "1E+9", "2.5e-3", "123456789012"}) {
    INFO(yes);
    CHECK(is_json_number_literal(yes));
  }
  for (const char* no : {"", "-", "01", "+1", "1.", ".5", "1e", "0x10", " 1", "1 ", "NaN", "1e+"}) {
    INFO(no);
    CHECK_FALSE(is_json_number_literal(no));
  }
}

TEST_CASE("authority normalisation drops one slash and the default port", "[skr][policy]") {
  CHECK(authority_matches("https://a.example/", "https://a.example"));
  CHECK(authority_matches("https://A.Example:443", "https://a.example"));
  CHECK(authority_matches("https://a.example:8443/x/", "https://a.example:8443/x"));
  CHECK_FALSE(authority_matches("https://a.example:8443", "https://a.example"));
  CHECK_FALSE(authority_matches("http://a.example", "https://a.example"));
  CHECK_FALSE(authority_matches("", ""));
}
