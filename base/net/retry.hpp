// When and how long the outbound client waits before trying again. Pure
// functions so the policy can be tested without sockets or clocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace anvil::net {

struct RetryPolicy {
  uint32_t max_attempts = 4;  // including the first attempt; 1 = never retry
  std::chrono::milliseconds base_backoff{200}, max_backoff{10'000};
  // Wall time from the start of the first attempt to the end of the last one,
  // waits included. Each attempt's deadline is also capped by it, and a wait
  // (backoff or Retry-After) that would cross it is not started.
  std::chrono::milliseconds retry_budget{60'000};
};

// Exponential backoff with full jitter: uniform in
// [0, min(max_backoff, base_backoff * 2^(attempt-1))], attempt = 1 for the
// wait after the first failure.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, uint32_t attempt, std::mt19937_64& rng);

// A Retry-After value: delta-seconds ("120") or an HTTP date
// ("Wed, 21 Oct 2015 07:28:00 GMT"), relative to `now`. nullopt when
// malformed; a date in the past is 0.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now);

// GET, HEAD, PUT, DELETE, OPTIONS, TRACE (RFC 9110 §9.2.2).
bool is_idempotent_method(std::string_view method);

// 408, 429 and 5xx: the server may answer differently next time.
constexpr bool is_retryable_status(int status) { return status == 408 || status == 429 || (status >= 500 && status <= 599); }

}  // namespace anvil::net
