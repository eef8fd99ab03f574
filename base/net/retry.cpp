#include "base/net/retry.hpp"

#include <time.h>

#include <algorithm>
#include <string>

namespace anvil::net {

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, uint32_t attempt, std::mt19937_64& rng) {
  const int64_t base = std::max<int64_t>(policy.base_backoff.count(), 0);
  const int64_t cap = std::max<int64_t>(policy.max_backoff.count(), 0);
  const uint32_t shift = std::min<uint32_t>(attempt == 0 ? 0 : attempt - 1, 30);
  // base << shift cannot overflow int64 for base < 2^33 ms (~100 days).
  const int64_t ceiling = std::min(cap, base << shift);
  if (ceiling <= 0) return std::chrono::milliseconds{0};
  std::uniform_int_distribution<int64_t> dist(0, ceiling);
  return std::chrono::milliseconds{dist(rng)};
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;

  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return std::chrono::milliseconds{int64_t{999'999'999} * 1000};
    int64_t seconds = 0;
    for (char c : value) seconds = seconds * 10 + (c - '0');
    return std::chrono::milliseconds{seconds * 1000};
  }

  // IMF-fixdate, the only date form senders must generate (RFC 9110 §5.6.7).
  std::string s(value);
  struct tm tm {};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const time_t at = timegm(&tm);
  if (at == time_t(-1)) return std::nullopt;
  const auto when = std::chrono::system_clock::from_time_t(at);
  if (when <= now) return std::chrono::milliseconds{0};
  return std::chrono::ceil<std::chrono::milliseconds>(when - now);
}

bool is_idempotent_method(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" || method == "OPTIONS" ||
         method == "TRACE";
}

}  // namespace anvil::net
