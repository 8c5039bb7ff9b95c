// SPDX-License-Identifier: Apache-2.0
// Target: key rotation policies (vault/rotation.h), the body of PUT /keys/{name}/rotationpolicy
// and the ISO 8601 durations inside it. The whole input is read twice: as a duration on its own,
// and as a JSON request body.
// Invariants, durations: an accepted duration starts with P, is between 0 (P0D) and 100 years,
// parses the same in upper case, and is accepted as attributes.expiryTime exactly when it is at
// least 28 days. Policies: an accepted policy has one or two actions of different types, each
// trigger at least 7 days and equal to its own duration text, no Notify after creation, a Rotate
// before expiry only with an expiry, a Rotate at least 7 days before a set expiry; the stored form
// reads back (as the vault reads its database) to the same policy, and is accepted unchanged when
// sent back as a request (GET then PUT); the REST answer is strict JSON. Refusals carry a message.
// max_len 16 KiB (a rotation policy is a few hundred bytes).
#include <algorithm>
#include <cctype>
#include <string>

#include "core/json.h"
#include "tests/fuzz/fuzz.h"
#include "vault/rotation.h"

namespace {

using keyport::Json;
using namespace keyport::vault;

constexpr std::int64_t kMaxSeconds = 100 * 365 * kDay;

bool same_policy(const RotationPolicy& a, const RotationPolicy& b) {
  if (a.expiry_time != b.expiry_time || a.expiry_seconds != b.expiry_seconds ||
      a.actions.size() != b.actions.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.actions.size(); ++i) {
    const auto& x = a.actions[i];
    const auto& y = b.actions[i];
    if (x.type != y.type || x.after_create != y.after_create || x.duration != y.duration ||
        x.seconds != y.seconds) {
      return false;
    }
  }
  return true;
}

void check_duration(std::string_view text) {
  auto d = parse_iso8601_duration(text);
  if (!d) {
    KEYPORT_FUZZ_CHECK(!d.error().message().empty());
    return;
  }
  KEYPORT_FUZZ_CHECK(text[0] == 'P' || text[0] == 'p');
  KEYPORT_FUZZ_CHECK(*d >= 0 && *d <= kMaxSeconds);  // P0D is a duration (of nothing)
  std::string up(text);
  std::transform(up.begin(), up.end(), up.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  auto again = parse_iso8601_duration(up);
  KEYPORT_FUZZ_CHECK(again.has_value() && *again == *d);
  // The same text as a policy's expiry time: accepted exactly when it is at least 28 days.
  auto p = parse_rotation_policy(Json{{"attributes", {{"expiryTime", std::string(text)}}}});
  KEYPORT_FUZZ_CHECK(p.has_value() == (*d >= 28 * kDay));
  if (p) {
    KEYPORT_FUZZ_CHECK(p->expiry_seconds == *d && p->expiry_time == up);
  }
}

void check_policy(const RotationPolicy& p) {
  KEYPORT_FUZZ_CHECK(!p.actions.empty() && p.actions.size() <= 2);
  if (p.actions.size() == 2) {
    KEYPORT_FUZZ_CHECK(p.actions[0].type != p.actions[1].type);
  }
  if (p.expiry_time) {
    auto e = parse_iso8601_duration(*p.expiry_time);
    KEYPORT_FUZZ_CHECK(e.has_value() && *e == p.expiry_seconds && *e >= 28 * kDay);
  } else {
    KEYPORT_FUZZ_CHECK(p.expiry_seconds == 0);
  }
  for (const auto& a : p.actions) {
    auto s = parse_iso8601_duration(a.duration);
    KEYPORT_FUZZ_CHECK(s.has_value() && *s == a.seconds);
    KEYPORT_FUZZ_CHECK(a.seconds >= 7 * kDay);
    KEYPORT_FUZZ_CHECK(!(a.type == LifetimeActionType::kNotify && a.after_create));
    if (a.type == LifetimeActionType::kRotate && !a.after_create) {
      KEYPORT_FUZZ_CHECK(p.expiry_time.has_value());
    }
    if (a.type == LifetimeActionType::kRotate && p.expiry_time) {
      KEYPORT_FUZZ_CHECK(a.seconds <= p.expiry_seconds - 7 * kDay);
    }
  }
  KEYPORT_FUZZ_CHECK(p.find(p.actions[0].type) == &p.actions[0]);

  // Stored as the vault stores it, read back as the vault reads its database.
  const std::string stored = keyport::dump_json(rotation_policy_to_json(p));
  auto reread = keyport::parse_json_strict(stored);
  KEYPORT_FUZZ_CHECK(reread.has_value());
  auto back = rotation_policy_from_json(*reread);
  KEYPORT_FUZZ_CHECK(back.has_value() && same_policy(*back, p));
  // And offered again as a request, it is accepted unchanged.
  auto resent = parse_rotation_policy(*reread);
  KEYPORT_FUZZ_CHECK(resent.has_value() && same_policy(*resent, p));

  const Json answer =
      rotation_policy_response("https://vault.localhost", "k", p, 1800000000, 1800000001);
  auto answer_again = keyport::parse_json_strict(keyport::dump_json(answer));
  KEYPORT_FUZZ_CHECK(answer_again.has_value() && answer_again->is_object());
  KEYPORT_FUZZ_CHECK((*answer_again)["lifetimeActions"].size() == p.actions.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(16 * 1024);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_duration(text);

  auto body = keyport::parse_json_strict(text);
  if (!body) {
    return 0;
  }
  auto p = parse_rotation_policy(*body);
  auto p_again = parse_rotation_policy(*body);
  KEYPORT_FUZZ_CHECK(p.has_value() == p_again.has_value());
  if (!p) {
    KEYPORT_FUZZ_CHECK(!p.error().message().empty());
    KEYPORT_FUZZ_CHECK(p.error().message() == p_again.error().message());
    return 0;
  }
  KEYPORT_FUZZ_CHECK(same_policy(*p, *p_again));
  check_policy(*p);
  return 0;
}
