#include "actors/growqr/events/grow_event.hpp"

#include <cctype>

#include "base/value/json.hpp"
#include "storage/pg/migrations.hpp"

namespace anvil::growqr {
namespace {

Error invalid(std::string_view field, std::string_view why) {
  return make_error("event", "invalid", "Invalid event: `" + std::string(field) + "` " + std::string(why) + ".",
                    obj({{"field", std::string(field)}}));
}

// A required non-empty string of at most kMaxEventFieldBytes.
Result<std::string> required_string(const Value& json, std::string_view field) {
  const Value* v = json.find(field);
  if (!v || v->is_nullish()) return invalid(field, "is required");
  if (!v->is_string()) return invalid(field, "must be a string");
  if (v->as_string().empty()) return invalid(field, "must not be empty");
  if (v->as_string().size() > kMaxEventFieldBytes)
    return invalid(field, "is longer than " + std::to_string(kMaxEventFieldBytes) + " bytes");
  return v->as_string();
}

// An optional string: absent or null -> nullopt; otherwise as required_string.
Result<std::optional<std::string>> optional_string(const Value& json, std::string_view field) {
  const Value* v = json.find(field);
  if (!v || v->is_nullish()) return std::optional<std::string>();
  auto s = required_string(json, field);
  if (!s.ok()) return s.error();
  return std::optional<std::string>(std::move(*s));
}

bool digits(std::string_view s, size_t at, size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

int days_in_month(int year, int month) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

}  // namespace

bool is_iso8601_instant(std::string_view s) {
  int y, mo, d, h, mi, se;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) || s[13] != ':' ||
      !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se))
    return false;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59) return false;
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i + 1 || j - i - 1 > 9) return false;
    i = j;
  }
  if (i == s.size()) return false;  // a zone is required: a bare local time is ambiguous
  if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) return true;
  int zh, zm;
  return (s[i] == '+' || s[i] == '-') && i + 6 == s.size() && digits(s, i + 1, 2, zh) && s[i + 3] == ':' &&
         digits(s, i + 4, 2, zm) && zh <= 23 && zm <= 59;
}

std::string derive_dedupe_key(const std::string& request_id, const std::string& user_id,
                              const std::optional<std::string>& mission_instance_id,
                              const std::optional<std::string>& service_id, const std::string& operation) {
  auto opt = [](const std::optional<std::string>& s) { return s ? Value(*s) : Value(nullptr); };
  Value parts = arr({"growqr.event.v1", request_id, user_id, opt(mission_instance_id), opt(service_id), operation});
  return pg::sha256_hex(json::dump(parts));
}

Result<GrowEvent> normalize_grow_event(const Value& json) {
  if (!json.is_object()) return invalid("(event)", "must be a JSON object");
  GrowEvent e;
  auto id = optional_string(json, "id");
  if (!id.ok()) return id.error();
  e.id = std::move(*id);
  auto type = required_string(json, "type");
  if (!type.ok()) return type.error();
  e.type = std::move(*type);
  auto user = required_string(json, "userId");
  if (!user.ok()) return user.error();
  e.user_id = std::move(*user);
  auto mission = optional_string(json, "missionInstanceId");
  if (!mission.ok()) return mission.error();
  e.mission_instance_id = std::move(*mission);
  auto mission_type = optional_string(json, "missionType");
  if (!mission_type.ok()) return mission_type.error();
  e.mission_type = std::move(*mission_type);
  auto at = required_string(json, "occurredAt");
  if (!at.ok()) return at.error();
  if (!is_iso8601_instant(*at)) return invalid("occurredAt", "must be an ISO-8601 instant with a zone");
  e.occurred_at = std::move(*at);
  const Value* payload = json.find("payload");
  if (!payload || payload->is_nullish()) return invalid("payload", "is required");
  if (!payload->is_object()) return invalid("payload", "must be a JSON object");
  if (json::dump(*payload).size() > kMaxPayloadBytes)
    return invalid("payload", "is larger than " + std::to_string(kMaxPayloadBytes) + " bytes");
  e.payload = *payload;
  for (auto [field, out] : {std::pair{"requestId", &e.request_id}, std::pair{"serviceId", &e.service_id},
                            std::pair{"operation", &e.operation}}) {
    auto v = optional_string(json, field);
    if (!v.ok()) return v.error();
    *out = std::move(*v);
  }
  if (e.id) {
    e.dedupe_key = *e.id;
  } else if (e.request_id && e.operation) {
    e.dedupe_key = derive_dedupe_key(*e.request_id, e.user_id, e.mission_instance_id, e.service_id, *e.operation);
  } else {
    return make_error("event", "invalid",
                      "Invalid event: `id` is required unless both `requestId` and `operation` are present "
                      "(without them there is no stable dedupe key).",
                      obj({{"field", "id"}}));
  }
  return e;
}

Value GrowEvent::to_json() const {
  Value out = Object{};
  if (id) out["id"] = *id;
  out["type"] = type;
  out["userId"] = user_id;
  if (mission_instance_id) out["missionInstanceId"] = *mission_instance_id;
  if (mission_type) out["missionType"] = *mission_type;
  out["occurredAt"] = occurred_at;
  out["payload"] = payload;
  if (request_id) out["requestId"] = *request_id;
  if (service_id) out["serviceId"] = *service_id;
  if (operation) out["operation"] = *operation;
  out["dedupeKey"] = dedupe_key;
  return out;
}

}  // namespace anvil::growqr
