#include "base/net/retry.hpp"

#include <gtest/gtest.h>

namespace anvil::net {
namespace {

using std::chrono::milliseconds;

TEST(Retry, BackoffIsFullJitterBelowTheExponentialCeilingAndTheCap) {
  RetryPolicy p;
  p.base_backoff = milliseconds(100);
  p.max_backoff = milliseconds(1000);
  std::mt19937_64 rng(42);
  milliseconds max_seen{0};
  for (int i = 0; i < 2000; ++i) {
    EXPECT_LE(backoff_delay(p, 1, rng), milliseconds(100));
    EXPECT_LE(backoff_delay(p, 3, rng), milliseconds(400));
    const auto d = backoff_delay(p, 20, rng);
    EXPECT_LE(d, milliseconds(1000));
    max_seen = std::max(max_seen, d);
  }
  EXPECT_GT(max_seen, milliseconds(900));  // the jitter spans the whole range
}

TEST(Retry, RetryAfterAcceptsSecondsAndHttpDates) {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(parse_retry_after("1", now), milliseconds(1000));
  EXPECT_EQ(parse_retry_after(" 120 ", now), milliseconds(120000));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), milliseconds(30000));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), milliseconds(0));
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
}

TEST(Retry, OnlyTransientStatusesAreRetryable) {
  for (int s : {408, 429, 500, 502, 503, 504}) EXPECT_TRUE(is_retryable_status(s)) << s;
  for (int s : {200, 301, 400, 401, 403, 404, 409, 422}) EXPECT_FALSE(is_retryable_status(s)) << s;
  EXPECT_TRUE(is_idempotent_method("PUT"));
  EXPECT_FALSE(is_idempotent_method("POST"));
  EXPECT_FALSE(is_idempotent_method("PATCH"));
}

}  // namespace
}  // namespace anvil::net
