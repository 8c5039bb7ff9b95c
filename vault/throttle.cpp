// SPDX-License-Identifier: Apache-2.0
#include "vault/throttle.h"

namespace keyport::vault {

ThrottleClass key_throttle_class(std::string_view kty, const KeySpec& spec, bool create) {
  const bool hsm = kty.size() > 4 && kty.substr(kty.size() - 4) == "-HSM";
  std::string size = "ECC";
  unsigned other = hsm ? 2000 : 4000;
  if (spec.family == KeyFamily::kRsa) {
    size = "RSA " +
           std::to_string(spec.bits <= 2048   ? 2048
                          : spec.bits <= 3072 ? 3072
                                              : 4096) +
           "-bit";
    if (spec.bits > 3072) {
      other = hsm ? 250 : 500;
    } else if (spec.bits > 2048) {
      other = hsm ? 500 : 1000;
    }
  } else if (spec.family == KeyFamily::kAes) {
    size = "AES";
  }
  if (create) {
    return {std::string(hsm ? "HSM " : "software ") + size + " CREATE", hsm ? 10u : 20u};
  }
  return {std::string(hsm ? "HSM " : "software ") + size + " transactions", other};
}

ThrottleClass vault_throttle_class() {
  return {"vault-related transactions", 4000};
}

std::optional<long> Throttle::admit(const ThrottleClass& c, Clock::time_point now) {
  const unsigned cost = kBudget / (c.limit == 0 ? 1 : c.limit);
  std::lock_guard<std::mutex> lock(m_mutex);
  while (!m_events.empty() && m_events.front().first + m_window <= now) {
    m_sum -= m_events.front().second;
    m_events.pop_front();
  }
  if (m_sum + cost <= kBudget) {
    m_events.emplace_back(now, cost);
    m_sum += cost;
    return std::nullopt;
  }
  // The oldest events leave the window first: wait until enough of them have.
  unsigned freed = 0;
  Clock::time_point until = now;
  for (const auto& [at, weight] : m_events) {
    freed += weight;
    until = at + m_window;
    if (m_sum - freed + cost <= kBudget) {
      break;
    }
  }
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
  return std::max<long>(1, static_cast<long>((wait + 999) / 1000));
}

}  // namespace keyport::vault
