// SPDX-License-Identifier: Apache-2.0
// `keyport vault serve --throttle azure`: Key Vault's documented service limits, so that
// pipelines can test their retry logic. Limits are transactions per 10 seconds per vault
// (https://learn.microsoft.com/azure/key-vault/general/service-limits, "Key transactions"):
//
//   key type        HSM CREATE  HSM other  software CREATE  software other
//   RSA 2048-bit    10          2,000      20               4,000
//   RSA 3072-bit    10          500        20               1,000
//   RSA 4096-bit    10          250        20               500
//   ECC (any curve) 10          2,000      20               4,000
//   vault-related transactions (lists, rotation policies, deleted keys): 4,000
//
// The thresholds are weighted and enforced on their sum: each request costs 1/limit of its class
// and the sum over the last 10 seconds may not exceed 1. A request that would exceed it gets 429
// with Retry-After (whole seconds until enough of the window has passed) and, as in Key Vault,
// does not count (https://learn.microsoft.com/azure/key-vault/general/overview-throttling).
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/algorithms.h"

namespace keyport::vault {

struct ThrottleClass {
  std::string name;    // "HSM RSA 2048-bit CREATE", "vault-related", ...
  unsigned limit = 0;  // transactions per 10 seconds when alone
};

// The class of an operation on a key of Key Vault type `kty` ("RSA-HSM", "EC", ...) and `spec`.
ThrottleClass key_throttle_class(std::string_view kty, const KeySpec& spec, bool create);
// Transactions that touch no key material.
ThrottleClass vault_throttle_class();

class Throttle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Throttle(Clock::duration window = std::chrono::seconds(10)) : m_window(window) {}

  // Counts a request of class `c` at `now` and returns nullopt when the window has room for it;
  // otherwise counts nothing and returns the seconds to wait (at least 1).
  std::optional<long> admit(const ThrottleClass& c, Clock::time_point now);

 private:
  // Costs in units of 1/4000 of the window: 4000 is the least common multiple of the limits.
  static constexpr unsigned kBudget = 4000;

  Clock::duration m_window;
  std::mutex m_mutex;
  std::deque<std::pair<Clock::time_point, unsigned>> m_events;
  unsigned m_sum = 0;
};

}  // namespace keyport::vault
