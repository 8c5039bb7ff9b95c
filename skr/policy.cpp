// SPDX-License-Identifier: Apache-2.0
#include "skr/policy.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/encoding.h"
#include "skr/url.h"

namespace keyport::skr {
namespace {

constexpr std::array<std::pair<PolicyOperator, std::string_view>, 7> kOperators{{
    {PolicyOperator::kEquals, "equals"},
    {PolicyOperator::kNotEquals, "notEquals"},
    {PolicyOperator::kLess, "less"},
    {PolicyOperator::kLessOrEquals, "lessOrEquals"},
    {PolicyOperator::kGreater, "greater"},
    {PolicyOperator::kGreaterOrEquals, "greaterOrEquals"},
    {PolicyOperator::kExists, "exists"},
}};

bool is_ordering(PolicyOperator op) {
  return op == PolicyOperator::kLess || op == PolicyOperator::kLessOrEquals ||
         op == PolicyOperator::kGreater || op == PolicyOperator::kGreaterOrEquals;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string json_quote(std::string_view s) {
  return dump_json(Json(std::string(s)));
}

// ---------------------------------------------------------------------------------------------
// Numbers: an exact integer form when the value is integral and fits 64 bits, else a double.

struct Number {
  bool integral = false;
  bool negative = false;
  std::uint64_t magnitude = 0;
  double value = 0;
};

std::optional<Number> number_from_double(double d) {
  if (!std::isfinite(d)) {
    return std::nullopt;
  }
  Number n;
  n.value = d;
  if (std::trunc(d) == d && std::fabs(d) < 9.2e18) {
    n.integral = true;
    n.negative = d < 0;
    n.magnitude = static_cast<std::uint64_t>(std::fabs(d));
    if (n.magnitude == 0) {
      n.negative = false;
    }
  }
  return n;
}

std::optional<Number> number_from_literal(std::string_view text) {
  if (!is_json_number_literal(text)) {
    return std::nullopt;
  }
  const bool has_fraction_or_exponent = text.find_first_of(".eE") != std::string_view::npos;
  if (!has_fraction_or_exponent) {
    Number n;
    n.negative = text.front() == '-';
    std::string_view digits = n.negative ? text.substr(1) : text;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n.magnitude);
    if (ec == std::errc() && ptr == digits.data() + digits.size()) {
      n.integral = true;
      if (n.magnitude == 0) {
        n.negative = false;
      }
      n.value = static_cast<double>(n.magnitude) * (n.negative ? -1.0 : 1.0);
      return n;
    }
  }
  double d = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return std::nullopt;
  }
  return number_from_double(d);
}

// Numbers and numeric strings; nullopt for anything else.
std::optional<Number> numeric_value(const Json& v) {
  if (v.is_number_unsigned()) {
    Number n;
    n.integral = true;
    n.magnitude = v.get<std::uint64_t>();
    n.value = static_cast<double>(n.magnitude);
    return n;
  }
  if (v.is_number_integer()) {
    const std::int64_t i = v.get<std::int64_t>();
    Number n;
    n.integral = true;
    n.negative = i < 0;
    n.magnitude = i < 0 ? static_cast<std::uint64_t>(-(i + 1)) + 1 : static_cast<std::uint64_t>(i);
    n.value = static_cast<double>(i);
    return n;
  }
  if (v.is_number_float()) {
    return number_from_double(v.get<double>());
  }
  if (v.is_string()) {
    return number_from_literal(v.get_ref<const std::string&>());
  }
  return std::nullopt;
}

int compare_numbers(const Number& a, const Number& b) {
  if (a.integral && b.integral) {
    if (a.negative != b.negative) {
      return a.negative ? -1 : 1;
    }
    if (a.magnitude == b.magnitude) {
      return 0;
    }
    const bool a_larger = a.magnitude > b.magnitude;
    return (a_larger != a.negative) ? 1 : -1;
  }
  if (a.value < b.value) {
    return -1;
  }
  return a.value > b.value ? 1 : 0;
}

bool is_scalar(const Json& v) {
  return v.is_string() || v.is_number() || v.is_boolean();
}

Comparison equality(const Json& claim, const Json& policy) {
  if (!is_scalar(claim) || !is_scalar(policy)) {
    return Comparison::kIncomparable;
  }
  if (claim.is_string() && policy.is_string()) {
    return claim.get_ref<const std::string&>() == policy.get_ref<const std::string&>()
               ? Comparison::kTrue
               : Comparison::kFalse;
  }
  if (claim.is_boolean() && policy.is_boolean()) {
    return claim.get<bool>() == policy.get<bool>() ? Comparison::kTrue : Comparison::kFalse;
  }
  if (claim.is_boolean() || policy.is_boolean()) {
    const Json& b = claim.is_boolean() ? claim : policy;
    const Json& other = claim.is_boolean() ? policy : claim;
    if (!other.is_string()) {
      return Comparison::kFalse;  // boolean vs number: never equal
    }
    const std::string& s = other.get_ref<const std::string&>();
    return s == (b.get<bool>() ? "true" : "false") ? Comparison::kTrue : Comparison::kFalse;
  }
  // number vs number, or string vs number
  auto a = numeric_value(claim);
  auto b = numeric_value(policy);
  if (!a || !b) {
    return Comparison::kFalse;
  }
  return compare_numbers(*a, *b) == 0 ? Comparison::kTrue : Comparison::kFalse;
}

// ---------------------------------------------------------------------------------------------
// Parsing

constexpr JsonLimits kPolicyLimits{256 * 1024, 32};

class Parser {
 public:
  PolicyLint run(std::string_view text) {
    auto doc = parse_json_strict(text, kPolicyLimits);
    if (!doc) {
      error("$", "not a valid policy document: " + doc.error().message());
      return std::move(m_out);
    }
    ReleasePolicy policy;
    parse_top(*doc, policy);
    if (m_out.errors.empty()) {
      m_out.policy = std::move(policy);
    }
    return std::move(m_out);
  }

 private:
  void error(std::string path, std::string message) {
    m_out.errors.push_back({std::move(path), std::move(message)});
  }
  void warning(std::string path, std::string message) {
    m_out.warnings.push_back({std::move(path), std::move(message)});
  }

  // Reports members of `obj` not in `allowed`, with a hint when only the case differs.
  void unknown_members(const Json& obj, const std::string& path,
                       std::initializer_list<std::string_view> allowed, std::string_view where) {
    for (const auto& [name, value] : obj.items()) {
      bool known = false;
      for (auto a : allowed) {
        known = known || name == a;
      }
      if (known) {
        continue;
      }
      std::string hint;
      for (auto a : allowed) {
        if (lower_ascii(name) == lower_ascii(a)) {
          hint = a;
        }
      }
      if (hint.empty()) {
        for (const auto& [op, op_name] : kOperators) {
          if (lower_ascii(name) == lower_ascii(op_name) && where == "condition") {
            hint = op_name;
          }
        }
        if (lower_ascii(name) == "allof" || lower_ascii(name) == "anyof") {
          hint = lower_ascii(name) == "allof" ? "allOf" : "anyOf";
        }
      }
      if (!hint.empty()) {
        error(path + "." + name, "member names are case-sensitive: write " + json_quote(hint) +
                                     ", not " + json_quote(name));
      } else {
        error(path + "." + name,
              "unknown member " + json_quote(name) + " in " + std::string(where));
      }
    }
  }

  void parse_top(const Json& doc, ReleasePolicy& policy) {
    if (!doc.is_object()) {
      error("$", "a release policy is a JSON object");
      return;
    }
    if (doc.contains("allOf") && !doc.contains("anyOf")) {
      error("$.allOf",
            "the top level takes \"anyOf\" (a list of authorities); \"allOf\" is not allowed "
            "there");
    }
    unknown_members(doc, "$", {"version", "anyOf", "allOf"}, "the policy");
    if (doc.contains("allOf") && doc.contains("anyOf")) {
      error("$.allOf", "the top level takes only \"anyOf\" (a list of authorities)");
    }
    auto version = doc.find("version");
    if (version == doc.end()) {
      error("$.version", "missing member \"version\" (\"1.0.0\")");
    } else if (!version->is_string()) {
      error("$.version", "version must be the string \"1.0.0\"");
    } else {
      policy.version = version->get<std::string>();
      if (policy.version == "0.2") {
        policy.legacy = true;
        warning("$.version",
                "legacy policy format \"0.2\" (conditions as {\"claim\", \"condition\", "
                "\"value\"}) is deprecated; rewrite it as version \"1.0.0\" with operator members "
                "such as {\"claim\": ..., \"equals\": ...}");
      } else if (policy.version != "1.0.0") {
        error("$.version", "unsupported version " + json_quote(policy.version) +
                               " (keyport reads \"1.0.0\" and the legacy \"0.2\")");
      }
    }
    auto any = doc.find("anyOf");
    if (any == doc.end()) {
      if (!doc.contains("allOf")) {
        error("$.anyOf", "missing member \"anyOf\" (a list of authorities)");
      }
      return;
    }
    if (!any->is_array()) {
      error("$.anyOf", "\"anyOf\" must be an array of authorities");
      return;
    }
    if (any->empty()) {
      error("$.anyOf", "\"anyOf\" needs at least one authority");
      return;
    }
    for (std::size_t i = 0; i < any->size(); ++i) {
      PolicyAuthority a;
      a.path = "$.anyOf[" + std::to_string(i) + "]";
      if (parse_authority((*any)[i], policy.legacy, a)) {
        policy.authorities.push_back(std::move(a));
      }
    }
  }

  bool parse_authority(const Json& node, bool legacy, PolicyAuthority& out) {
    const std::string& path = out.path;
    if (!node.is_object()) {
      error(path, "an authority is an object {\"authority\": ..., \"allOf\" | \"anyOf\": [...]}");
      return false;
    }
    const std::size_t before = m_out.errors.size();
    unknown_members(node, path, {"authority", "allOf", "anyOf"}, "an authority");
    auto auth = node.find("authority");
    if (auth == node.end()) {
      error(path + ".authority", "missing member \"authority\" (the token issuer, iss)");
    } else if (!auth->is_string() || auth->get_ref<const std::string&>().empty()) {
      error(path + ".authority", "\"authority\" must be a non-empty string");
    } else {
      out.authority = auth->get<std::string>();
      if (lower_ascii(out.authority).rfind("https://", 0) != 0) {
        warning(path + ".authority",
                "authority is not an https URL; attestation authorities publish their OpenID "
                "metadata and keys over HTTPS");
      }
    }
    const bool has_all = node.contains("allOf");
    const bool has_any = node.contains("anyOf");
    if (has_all && has_any) {
      error(path,
            "an authority takes exactly one of \"allOf\" and \"anyOf\" (both aren't allowed "
            "together)");
    } else if (!has_all && !has_any) {
      error(path, "an authority needs \"allOf\" or \"anyOf\" with its conditions");
    } else {
      parse_group(node, has_all ? "allOf" : "anyOf", path, legacy, out.group);
    }
    return m_out.errors.size() == before;
  }

  void parse_group(const Json& node, const char* name, const std::string& parent, bool legacy,
                   PolicyCondition& out) {
    out.kind = std::string_view(name) == "allOf" ? PolicyCondition::Kind::kAllOf
                                                 : PolicyCondition::Kind::kAnyOf;
    out.path = parent;
    const std::string path = parent + "." + name;
    const Json& list = node.at(name);
    if (!list.is_array()) {
      error(path, std::string("\"") + name + "\" must be an array of conditions");
      return;
    }
    if (list.empty()) {
      error(path, std::string("\"") + name + "\" needs at least one condition");
      return;
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      PolicyCondition child;
      parse_condition(list[i], path + "[" + std::to_string(i) + "]", legacy, child);
      out.children.push_back(std::move(child));
    }
  }

  void parse_condition(const Json& node, const std::string& path, bool legacy,
                       PolicyCondition& out) {
    out.path = path;
    if (!node.is_object()) {
      error(path,
            "a condition is an object: {\"claim\": ..., \"equals\": ...} or a nested "
            "\"allOf\"/\"anyOf\"");
      return;
    }
    const bool has_claim = node.contains("claim");
    const bool has_all = node.contains("allOf");
    const bool has_any = node.contains("anyOf");
    if (has_claim && (has_all || has_any)) {
      error(path, "a condition has either \"claim\" or a nested \"allOf\"/\"anyOf\", not both");
      return;
    }
    if (has_all || has_any) {
      unknown_members(node, path, {"allOf", "anyOf"}, "a condition group");
      if (has_all && has_any) {
        error(path, "a condition group takes exactly one of \"allOf\" and \"anyOf\"");
        return;
      }
      parse_group(node, has_all ? "allOf" : "anyOf", path, legacy, out);
      return;
    }
    if (!has_claim) {
      unknown_members(node, path,
                      {"claim", "equals", "notEquals", "less", "lessOrEquals", "greater",
                       "greaterOrEquals", "exists", "condition", "value"},
                      "condition");
      error(path, "a condition needs \"claim\" with an operator, or a nested \"allOf\"/\"anyOf\"");
      return;
    }
    out.kind = PolicyCondition::Kind::kClaim;
    unknown_members(node, path,
                    {"claim", "equals", "notEquals", "less", "lessOrEquals", "greater",
                     "greaterOrEquals", "exists", "condition", "value"},
                    "condition");
    parse_claim_path(node.at("claim"), path + ".claim", out);

    const bool has_legacy = node.contains("condition") || node.contains("value");
    std::vector<std::string_view> ops;
    for (const auto& [op, name] : kOperators) {
      if (node.contains(std::string(name))) {
        ops.push_back(name);
      }
    }
    if (has_legacy) {
      if (!legacy) {
        error(path + (node.contains("condition") ? ".condition" : ".value"),
              "\"condition\"/\"value\" is the legacy \"0.2\" form; in version \"1.0.0\" write "
              "{\"claim\": ..., \"equals\": <value>}");
        return;
      }
      if (!ops.empty()) {
        error(path,
              "a condition uses either the legacy \"condition\"/\"value\" pair or an "
              "operator member, not both");
        return;
      }
      parse_legacy(node, path, out);
      return;
    }
    if (ops.empty()) {
      error(path,
            "no operator: give one of equals, notEquals, less, lessOrEquals, greater, "
            "greaterOrEquals, exists");
      return;
    }
    if (ops.size() > 1) {
      error(path + "." + std::string(ops[1]), "only one operator per condition (found " +
                                                  json_quote(ops[0]) + " and " +
                                                  json_quote(ops[1]) + ")");
      return;
    }
    out.op = *parse_policy_operator(ops[0]);
    check_value(node.at(std::string(ops[0])), path + "." + std::string(ops[0]), out);
  }

  void parse_legacy(const Json& node, const std::string& path, PolicyCondition& out) {
    auto cond = node.find("condition");
    if (cond == node.end() || !cond->is_string()) {
      error(path + ".condition", "legacy conditions need \"condition\" naming the operator");
      return;
    }
    auto op = parse_policy_operator(cond->get_ref<const std::string&>());
    if (!op) {
      error(path + ".condition", "unknown operator " + cond->dump());
      return;
    }
    out.op = *op;
    auto value = node.find("value");
    if (value == node.end()) {
      error(path + ".value", "legacy conditions need \"value\"");
      return;
    }
    check_value(*value, path + ".value", out);
  }

  void parse_claim_path(const Json& claim, const std::string& path, PolicyCondition& out) {
    if (!claim.is_string() || claim.get_ref<const std::string&>().empty()) {
      error(path, "\"claim\" must be a non-empty string (dot notation for nested claims)");
      return;
    }
    out.claim = claim.get<std::string>();
    std::size_t start = 0;
    while (true) {
      std::size_t dot = out.claim.find('.', start);
      std::string seg = out.claim.substr(start, dot == std::string::npos ? dot : dot - start);
      if (seg.empty()) {
        error(path, "empty segment in claim path " + json_quote(out.claim));
        out.claim_segments.clear();
        return;
      }
      out.claim_segments.push_back(std::move(seg));
      if (dot == std::string::npos) {
        break;
      }
      start = dot + 1;
    }
  }

  void check_value(const Json& value, const std::string& path, PolicyCondition& out) {
    if (value.is_array()) {
      error(path, "arrays are not supported as values (a string, number or boolean)");
      return;
    }
    if (value.is_object()) {
      error(path, "objects are not allowed as values (a string, number or boolean)");
      return;
    }
    if (value.is_null()) {
      error(path, "null is not a valid value (a string, number or boolean)");
      return;
    }
    if (out.op == PolicyOperator::kExists && !value.is_boolean()) {
      error(path, "\"exists\" takes a boolean (true: the claim must be present; false: absent)");
      return;
    }
    if (is_ordering(out.op)) {
      if (!numeric_value(value)) {
        error(path, json_quote(to_string(out.op)) +
                        " compares numbers: give a number or a string holding a JSON number");
        return;
      }
    }
    if (out.op != PolicyOperator::kEquals) {
      warning(path, "Azure's grammar lists " + json_quote(to_string(out.op)) +
                        " but its documentation says only \"equals\" is accepted today; keyport "
                        "evaluates it, Azure may refuse the policy");
    }
    out.value = value;
  }

  PolicyLint m_out;
};

// ---------------------------------------------------------------------------------------------
// Evaluation

struct Failure {
  std::string path;
  std::string reason;
};

struct Lookup {
  const Json* value = nullptr;
  std::string why_missing;
};

Lookup find_claim(const Json& claims, const std::vector<std::string>& segments) {
  const Json* cur = &claims;
  std::string walked;
  for (const auto& seg : segments) {
    if (cur->is_array()) {
      return {nullptr, walked + " is an array (array claims are not supported)"};
    }
    if (!cur->is_object()) {
      return {nullptr, walked + " is not an object"};
    }
    auto it = cur->find(seg);
    if (it == cur->end()) {
      return {nullptr, "missing"};
    }
    cur = &*it;
    walked += (walked.empty() ? "" : ".") + seg;
  }
  return {cur, ""};
}

class Evaluator {
 public:
  Evaluator(const Json& claims, std::vector<std::string>& trace)
      : m_claims(claims), m_trace(trace) {}

  std::optional<Failure> node(const PolicyCondition& c) {
    switch (c.kind) {
      case PolicyCondition::Kind::kClaim:
        return claim(c);
      case PolicyCondition::Kind::kAllOf: {
        for (const auto& child : c.children) {
          if (auto f = node(child)) {
            m_trace.push_back(c.path + ": allOf -> fail");
            return f;
          }
        }
        m_trace.push_back(c.path + ": allOf -> pass");
        return std::nullopt;
      }
      case PolicyCondition::Kind::kAnyOf: {
        std::optional<Failure> first;
        for (const auto& child : c.children) {
          auto f = node(child);
          if (!f) {
            m_trace.push_back(c.path + ": anyOf -> pass");
            return std::nullopt;
          }
          if (!first) {
            first = std::move(f);
          }
        }
        m_trace.push_back(c.path + ": anyOf -> fail (no alternative passed)");
        return first;
      }
    }
    return Failure{c.path, "internal: unknown node"};
  }

 private:
  std::optional<Failure> claim(const PolicyCondition& c) {
    const std::string what =
        c.claim + " " + std::string(to_string(c.op)) + " " + describe_value(c.value);
    Lookup found = find_claim(m_claims, c.claim_segments);
    std::optional<std::string> why;
    if (c.op == PolicyOperator::kExists) {
      const bool want = c.value.is_boolean() && c.value.get<bool>();
      const bool present = found.value != nullptr;
      if (present != want) {
        why = present ? "claim " + c.claim + " is present, the policy requires it absent"
                      : "claim " + c.claim + " is " + found.why_missing;
      }
      if (!why) {
        m_trace.push_back(c.path + ": " + what + ": claim " + (present ? "present" : "absent") +
                          " -> pass");
        return std::nullopt;
      }
    } else if (found.value == nullptr) {
      why = "claim " + c.claim + " is " + found.why_missing;
    } else {
      Comparison r = compare_claim(c.op, *found.value, c.value);
      if (r == Comparison::kTrue) {
        m_trace.push_back(c.path + ": " + what + ": claim is " + describe_value(*found.value) +
                          " -> pass");
        return std::nullopt;
      }
      if (r == Comparison::kIncomparable) {
        why = "claim " + c.claim + " is " + describe_value(*found.value) +
              ", which cannot be compared with " + describe_value(c.value) + " by " +
              std::string(to_string(c.op));
      } else {
        why = "claim " + c.claim + " is " + describe_value(*found.value) +
              "; the policy requires " + std::string(to_string(c.op)) + " " +
              describe_value(c.value);
      }
    }
    m_trace.push_back(c.path + ": " + what + ": " + *why + " -> fail");
    return Failure{c.path, *why};
  }

  const Json& m_claims;
  std::vector<std::string>& m_trace;
};

}  // namespace

std::string_view to_string(PolicyOperator op) {
  for (const auto& [o, name] : kOperators) {
    if (o == op) {
      return name;
    }
  }
  return "?";
}

std::optional<PolicyOperator> parse_policy_operator(std::string_view name) {
  for (const auto& [o, n] : kOperators) {
    if (n == name) {
      return o;
    }
  }
  return std::nullopt;
}

bool is_json_number_literal(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  auto digit = [&](std::size_t k) { return k < n && s[k] >= '0' && s[k] <= '9'; };
  if (i < n && s[i] == '-') {
    ++i;
  }
  if (!digit(i)) {
    return false;
  }
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i)) {
      ++i;
    }
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digit(i)) {
      return false;
    }
    while (digit(i)) {
      ++i;
    }
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    if (!digit(i)) {
      return false;
    }
    while (digit(i)) {
      ++i;
    }
  }
  return i == n;
}

std::string describe_value(const Json& value) {
  if (value.is_number_float()) {
    auto n = number_from_double(value.get<double>());
    if (n && n->integral) {
      return (n->negative ? "-" : "") + std::to_string(n->magnitude);
    }
    std::array<char, 64> buf{};
    auto [ptr, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value.get<double>());
    if (ec == std::errc()) {
      return std::string(buf.data(), ptr);
    }
  }
  return dump_json(value);
}

Comparison compare_claim(PolicyOperator op, const Json& claim, const Json& policy_value) {
  switch (op) {
    case PolicyOperator::kEquals:
      return equality(claim, policy_value);
    case PolicyOperator::kNotEquals: {
      Comparison eq = equality(claim, policy_value);
      if (eq == Comparison::kIncomparable) {
        return eq;
      }
      return eq == Comparison::kTrue ? Comparison::kFalse : Comparison::kTrue;
    }
    case PolicyOperator::kLess:
    case PolicyOperator::kLessOrEquals:
    case PolicyOperator::kGreater:
    case PolicyOperator::kGreaterOrEquals: {
      if (claim.is_boolean() || policy_value.is_boolean()) {
        return Comparison::kIncomparable;
      }
      auto a = numeric_value(claim);
      auto b = numeric_value(policy_value);
      if (!a || !b) {
        return Comparison::kIncomparable;
      }
      const int c = compare_numbers(*a, *b);
      bool r = false;
      if (op == PolicyOperator::kLess) {
        r = c < 0;
      } else if (op == PolicyOperator::kLessOrEquals) {
        r = c <= 0;
      } else if (op == PolicyOperator::kGreater) {
        r = c > 0;
      } else {
        r = c >= 0;
      }
      return r ? Comparison::kTrue : Comparison::kFalse;
    }
    case PolicyOperator::kExists:
      return Comparison::kIncomparable;
  }
  return Comparison::kIncomparable;
}

PolicyLint lint_policy(std::string_view text) {
  return Parser().run(text);
}

Result<ParsedPolicy> parse_policy(std::string_view text) {
  PolicyLint lint = lint_policy(text);
  if (!lint.errors.empty()) {
    std::string msg = "release policy: " + lint.errors.front().describe();
    if (lint.errors.size() > 1) {
      msg += " (and " + std::to_string(lint.errors.size() - 1) + " more)";
    }
    return make_error(ErrorCode::kFormat, msg);
  }
  return ParsedPolicy{std::move(*lint.policy), std::move(lint.warnings)};
}

Result<std::string> decode_policy_data(std::string_view data) {
  auto bytes = base64url_decode(data);
  if (!bytes) {
    bytes = base64_decode(data);
  }
  if (!bytes) {
    return make_error(ErrorCode::kFormat, "release_policy.data is neither base64url nor base64");
  }
  return std::string(as_chars(*bytes));
}

std::string normalize_authority(std::string_view authority) {
  std::string s(authority);
  if (auto url = parse_url(authority)) {
    if (url->port == (url->scheme == "https" ? 443 : 80)) {
      url->port = 0;  // the default port spelled out
    }
    s = url->scheme + "://" + url->host_port() + url->path_and_query;
  }
  if (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  return s;
}

bool authority_matches(std::string_view authority, std::string_view issuer) {
  if (authority.empty() || issuer.empty()) {
    return false;
  }
  return normalize_authority(authority) == normalize_authority(issuer);
}

Decision evaluate(const ReleasePolicy& policy, const Json& claims) {
  Decision d;
  if (!claims.is_object()) {
    d.failing_path = "$";
    d.reason = "the token claims are not a JSON object";
    return d;
  }
  std::string iss;
  if (auto it = claims.find("iss"); it != claims.end() && it->is_string()) {
    iss = it->get<std::string>();
  }
  std::optional<Failure> first;
  bool any_matched = false;
  Evaluator ev(claims, d.trace);
  for (const auto& a : policy.authorities) {
    if (iss.empty() || !authority_matches(a.authority, iss)) {
      d.trace.push_back(a.path + ": authority " + json_quote(a.authority) +
                        " does not match the issuer " + (iss.empty() ? "(none)" : json_quote(iss)));
      continue;
    }
    any_matched = true;
    d.trace.push_back(a.path + ": authority " + json_quote(a.authority) + " matches the issuer");
    auto f = ev.node(a.group);
    if (!f) {
      d.allowed = true;
      d.passed_path = a.path;
      d.reason = "authority " + json_quote(a.authority) + " at " + a.path +
                 " matched the issuer and " +
                 (a.group.kind == PolicyCondition::Kind::kAllOf ? "all of its conditions"
                                                                : "one of its conditions") +
                 " passed";
      d.trace.push_back(a.path + ": allowed");
      return d;
    }
    if (!first) {
      first = std::move(f);
    }
  }
  if (!any_matched) {
    d.failing_path = "$.anyOf";
    d.reason = iss.empty() ? "the token has no string iss claim, so no authority can match"
                           : "the token issuer " + json_quote(iss) + " matches no authority";
  } else {
    d.failing_path = first->path;
    d.reason = first->reason;
  }
  d.trace.push_back("denied at " + d.failing_path + ": " + d.reason);
  return d;
}

}  // namespace keyport::skr
