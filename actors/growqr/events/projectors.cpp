// The built-in projectors (seed 000: "service session and Q Score
// projections"). Each is idempotent through projection_applied (see
// Projector) and, besides, through its own unique key, so a row written
// before projection_applied existed for it is not written twice either.
#include "actors/growqr/events/events.hpp"

namespace anvil::growqr {
namespace {

const Value* payload_field(const Value& event, std::string_view k) {
  const Value* p = event.find("payload");
  return p ? p->find(k) : nullptr;
}

std::string str_or_empty(const Value& v, std::string_view k) {
  const Value* f = v.find(k);
  return f && f->is_string() ? f->as_string() : std::string();
}

Value opt(const Value& v, std::string_view k) {
  const Value* f = v.find(k);
  return f && f->is_string() ? *f : Value(nullptr);
}

// payload.sessionId: one `projections` row per (user, 'service_session',
// sessionId) with the latest event's view of the session. An older event
// (by occurredAt) never overwrites a newer one, so replay order is harmless.
Projector session_projector() {
  Projector p;
  p.name = "service_session";
  p.applies = [](const Value& event) {
    const Value* s = payload_field(event, "sessionId");
    return s && s->is_string() && !s->as_string().empty();
  };
  p.apply = [](pg::Tx& tx, const std::string& event_id, const Value& event) -> Status {
    const Value* payload = event.find("payload");
    Value view = obj({{"sessionId", *payload->find("sessionId")},
                      {"serviceId", opt(event, "serviceId")},
                      {"missionInstanceId", opt(event, "missionInstanceId")},
                      {"status", opt(*payload, "status")},
                      {"lastEventType", str_or_empty(event, "type")},
                      {"lastOccurredAt", str_or_empty(event, "occurredAt")}});
    auto r = tx.exec(
        "INSERT INTO projections (user_id, projector, key, value, source_event_id, updated_at) "
        "VALUES ($1, 'service_session', $2, $3::jsonb, $4::uuid, now()) "
        "ON CONFLICT (user_id, projector, key) DO UPDATE SET value = projections.value || EXCLUDED.value, "
        "source_event_id = EXCLUDED.source_event_id, updated_at = now() "
        "WHERE (projections.value->>'lastOccurredAt') IS NULL "
        "   OR (projections.value->>'lastOccurredAt')::timestamptz <= (EXCLUDED.value->>'lastOccurredAt')::timestamptz",
        {str_or_empty(event, "userId"), payload->find("sessionId")->as_string(), view, event_id});
    if (!r.ok()) return r.error();
    return Ok{};
  };
  return p;
}

// payload.qscore (a number): one qscore_snapshots row, source 'event',
// dedupe_key "event:<dedupeKey>". The user must be mirrored in `users` (a
// foreign key): until then the event fails and is retried / replayed.
Projector qscore_projector() {
  Projector p;
  p.name = "qscore";
  p.applies = [](const Value& event) {
    const Value* q = payload_field(event, "qscore");
    return q && q->is_number();
  };
  p.apply = [](pg::Tx& tx, const std::string&, const Value& event) -> Status {
    const Value* components = payload_field(event, "components");
    auto r = tx.exec(
        "INSERT INTO qscore_snapshots (user_id, source, score, components, dedupe_key) "
        "VALUES ($1, 'event', $2::float8, $3::jsonb, $4) ON CONFLICT (dedupe_key) DO NOTHING",
        {str_or_empty(event, "userId"), Value(payload_field(event, "qscore")->as_number()),
         components && components->is_object() ? *components : Value(Object{}),
         "event:" + str_or_empty(event, "dedupeKey")});
    if (!r.ok()) return r.error();
    return Ok{};
  };
  return p;
}

}  // namespace

std::vector<Projector> default_projectors() { return {session_projector(), qscore_projector()}; }

}  // namespace anvil::growqr
