#include "actors/growqr/events/log_fields.hpp"

namespace anvil::growqr {

std::string log_fields(const LogFields& f) {
  std::string out;
  auto add = [&](std::string_view k, std::string_view v) {
    if (v.empty()) return;
    if (!out.empty()) out += ' ';
    out.append(k).append("=").append(v);
  };
  add("requestId", f.request_id);
  add("userId", f.user_id);
  add("missionInstanceId", f.mission_instance_id);
  add("eventId", f.event_id);
  add("idempotencyKey", f.idempotency_key);
  if (f.retry_attempt >= 0) add("retryAttempt", std::to_string(f.retry_attempt));
  return out;
}

std::string event_log_fields(const Value& event, std::string_view event_id, int64_t retry_attempt) {
  auto str = [&](std::string_view k) -> std::string_view {
    const Value* v = event.find(k);
    return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view();
  };
  return log_fields({str("requestId"), str("userId"), str("missionInstanceId"), event_id, str("dedupeKey"),
                     retry_attempt});
}

}  // namespace anvil::growqr
