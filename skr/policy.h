// SPDX-License-Identifier: Apache-2.0
// Key release policies (Microsoft Learn,
// https://learn.microsoft.com/azure/key-vault/keys/policy-grammar): parsing, validation (every
// finding points at its JSON path) and evaluation against the claims of a verified attestation
// token.
//
//   policy     = { "version": "1.0.0", "anyOf": [ authority, ... ] }               (>= 1)
//   authority  = { "authority": <iss>, "allOf" | "anyOf": [ condition, ... ] }      (exactly one)
//   condition  = { "claim": "a.b.c", <operator>: <value> }                          (one operator)
//              | { "allOf": [ condition, ... ] } | { "anyOf": [ condition, ... ] }  (>= 1, nested)
//   operator   = equals | notEquals | less | lessOrEquals | greater | greaterOrEquals | exists
//   value      = string | number | boolean          (exists takes a boolean; no arrays, objects)
//
// Member names are case-sensitive camelCase; unknown members are errors. The legacy "0.2" form
// ({"claim": ..., "condition": "equals", "value": ...}) is read with a deprecation warning.
//
// Comparison rules (docs/skr.md "Comparison rules"; Azure compares loosely, spec §3.1):
//   - a missing claim fails every condition except {"exists": false};
//   - string vs string: exact, case-sensitive byte equality; ordering only when both strings are
//     JSON number literals (then numerically), otherwise the condition fails;
//   - number vs number: numeric (1 == 1.0); integers compare exactly;
//   - boolean vs boolean: equality;
//   - string vs boolean: the string must be exactly "true" or "false";
//   - string vs number: the string must be a JSON number literal ("0", "-1.5", "1e3"; not "00",
//     " 0", "+1"), then the two compare numerically, for equality and ordering alike;
//   - boolean vs number: never equal; not ordered;
//   - notEquals passes only when the claim is present, a scalar, and not equal;
//   - ordering operators (less...) need both sides numeric (numbers or numeric strings), else the
//     condition fails; a policy whose ordering value is not numeric does not parse;
//   - a claim holding an object, an array or null fails every comparison ("exists" passes).
//
// Evaluation is pure: it returns a Decision. Only the vault turns a deny into an error.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"

namespace keyport::skr {

enum class PolicyOperator {
  kEquals,
  kNotEquals,
  kLess,
  kLessOrEquals,
  kGreater,
  kGreaterOrEquals,
  kExists,
};

// The JSON member name: "equals", "notEquals", ...
std::string_view to_string(PolicyOperator op);
// The operator named exactly `name` (case-sensitive), or nullopt.
std::optional<PolicyOperator> parse_policy_operator(std::string_view name);

// One node of a policy: a claim condition or an allOf/anyOf group.
struct PolicyCondition {
  enum class Kind { kClaim, kAllOf, kAnyOf };
  Kind kind = Kind::kClaim;
  // Where the node sits in the policy document, e.g. "$.anyOf[0].allOf[1]".
  std::string path;
  // kClaim: the dot path as written, its segments, the operator and its value (a JSON string,
  // number or boolean).
  std::string claim;
  std::vector<std::string> claim_segments;
  PolicyOperator op = PolicyOperator::kEquals;
  Json value;
  // kAllOf / kAnyOf: at least one child.
  std::vector<PolicyCondition> children;
};

struct PolicyAuthority {
  std::string authority;  // as written in the policy
  std::string path;       // "$.anyOf[<i>]"
  PolicyCondition group;  // kAllOf or kAnyOf
};

struct ReleasePolicy {
  std::string version;  // "1.0.0", or "0.2" for the legacy form
  bool legacy = false;
  std::vector<PolicyAuthority> authorities;
};

// A parse or lint finding: the JSON path it is about and what is wrong there.
struct PolicyFinding {
  std::string path;  // "$.anyOf[0].allOf[2].equals"
  std::string message;
  // "<path>: <message>"
  std::string describe() const { return path + ": " + message; }
};

// Everything lint_policy() found. `policy` is set when there are no errors.
struct PolicyLint {
  std::vector<PolicyFinding> errors;
  std::vector<PolicyFinding> warnings;
  std::optional<ReleasePolicy> policy;
};

// Parses and validates a policy document, collecting every error and warning. Never fails:
// malformed JSON (syntax, duplicate members, depth) is one error at "$".
PolicyLint lint_policy(std::string_view text);

struct ParsedPolicy {
  ReleasePolicy policy;
  std::vector<PolicyFinding> warnings;  // e.g. the legacy 0.2 form
};
// Parses a policy document. kFormat with the first finding ("<path>: <message>") when it is not a
// valid policy; the warnings come back with the policy.
Result<ParsedPolicy> parse_policy(std::string_view text);

// The `data` member of a KeyBundle's release_policy: base64url (padded or not) of the UTF-8
// policy JSON; standard base64 is accepted too (spec §3.2). Returns the JSON text.
Result<std::string> decode_policy_data(std::string_view data);

// Whether a policy `authority` names the token issuer `iss`: equal after lower-casing the scheme
// and host of URLs and dropping one trailing '/' from each side.
bool authority_matches(std::string_view authority, std::string_view issuer);
// The normalised form authority_matches() compares.
std::string normalize_authority(std::string_view authority);

// The outcome of evaluating a policy against token claims.
struct Decision {
  bool allowed = false;
  // Denied: the JSON path of the first failing condition ("$.anyOf[0].allOf[1]") in the first
  // authority that matched the issuer, or "$.anyOf" when no authority matched. Empty if allowed.
  std::string failing_path;
  // One sentence: why it was denied, or which clause allowed it.
  std::string reason;
  // Allowed: the path of the authority clause that passed ("$.anyOf[1]").
  std::string passed_path;
  // One line per node evaluated, in order ("$.anyOf[0].allOf[0]: ... -> pass").
  std::vector<std::string> trace;
};

// Evaluates `policy` against a token's claims (a JSON object holding "iss"). Pure.
Decision evaluate(const ReleasePolicy& policy, const Json& claims);

// --- the comparison primitives, public for tests and documentation ---

// Outcome of one comparison.
enum class Comparison { kTrue, kFalse, kIncomparable };
// Compares a claim value with a policy value under the rules above (not for kExists).
Comparison compare_claim(PolicyOperator op, const Json& claim, const Json& policy_value);
// True when `text` is a JSON number literal (RFC 8259 §6).
bool is_json_number_literal(std::string_view text);
// Human text of a scalar for traces: strings quoted, numbers in shortest round-trip form.
std::string describe_value(const Json& value);

}  // namespace keyport::skr
