// The structured fields every events log line carries where they apply (seed
// 000: requestId, userId, missionInstanceId, eventId, idempotencyKey,
// retryAttempt), rendered as `key=value` pairs; empty ones are left out.
#pragma once

#include <string>
#include <string_view>

#include "base/value/value.hpp"

namespace anvil::growqr {

struct LogFields {
  std::string_view request_id, user_id, mission_instance_id, event_id, idempotency_key;
  int64_t retry_attempt = -1;  // -1: not a retry context
};

std::string log_fields(const LogFields& f);

// The fields of a normalized event (GrowEvent::to_json() shape), plus its
// grow_events id and retry attempt.
std::string event_log_fields(const Value& event, std::string_view event_id, int64_t retry_attempt = -1);

}  // namespace anvil::growqr
