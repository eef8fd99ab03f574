#include "actors/growqr/events/event_store.hpp"

namespace anvil::growqr {
namespace {

Value opt(const std::optional<std::string>& s) { return s ? Value(*s) : Value(nullptr); }

std::string str_field(const Value& row, std::string_view k) {
  const Value* v = row.find(k);
  return v && v->is_string() ? v->as_string() : std::string();
}

}  // namespace

Result<RecordedEvent> record_event(pg::Tx& tx, const GrowEvent& ev, const std::string& source) {
  Value event = ev.to_json();
  auto ins = tx.exec(
      "INSERT INTO grow_events (dedupe_key, user_id, type, source, mission_instance_id, mission_type, payload, "
      "event, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::timestamptz) "
      "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id::text AS id, processing_status",
      {ev.dedupe_key, ev.user_id, ev.type, source, opt(ev.mission_instance_id), opt(ev.mission_type), ev.payload,
       event, ev.occurred_at});
  if (!ins.ok()) return ins.error();
  RecordedEvent out;
  if (!ins->rows.empty()) {
    out.event_id = str_field(ins->rows[0], "id");
    out.status = str_field(ins->rows[0], "processing_status");
  } else {
    // Same transaction: the conflicting row is committed (a concurrent insert
    // of the same key waits for the other transaction, then conflicts).
    auto cur = tx.exec("SELECT id::text AS id, processing_status FROM grow_events WHERE dedupe_key = $1",
                       {ev.dedupe_key});
    if (!cur.ok()) return cur.error();
    if (cur->rows.empty())
      return make_error("db", "query_failed", "grow_events row for a conflicting dedupe key vanished");
    out.event_id = str_field(cur->rows[0], "id");
    out.status = str_field(cur->rows[0], "processing_status");
    out.duplicate = true;
  }
  event["eventId"] = out.event_id;
  out.event = std::move(event);
  return out;
}

Value event_of_row(const Value& row) {
  const Value* stored = row.find("event");
  Value ev;
  if (stored && stored->is_object()) {
    ev = *stored;
  } else {
    ev = Object{};
    ev["type"] = str_field(row, "type");
    ev["userId"] = str_field(row, "user_id");
    if (auto m = str_field(row, "mission_instance_id"); !m.empty()) ev["missionInstanceId"] = m;
    if (auto t = str_field(row, "mission_type"); !t.empty()) ev["missionType"] = t;
    ev["occurredAt"] = str_field(row, "occurred_at");
    const Value* p = row.find("payload");
    ev["payload"] = p && p->is_object() ? *p : Value(Object{});
    ev["dedupeKey"] = str_field(row, "dedupe_key");
  }
  ev["eventId"] = str_field(row, "id");
  return ev;
}

Result<DeadLetterRow> insert_dead_letter(pg::Tx& tx, const DeadLetter& dl) {
  auto ins = tx.exec(
      "INSERT INTO grow_events_dlq (stream, message_id, raw, error, error_code, attempts) "
      "VALUES ($1, $2, $3, $4, $5, $6::int) ON CONFLICT (stream, message_id) DO NOTHING "
      "RETURNING id, dlq_stream_id",
      {dl.stream, dl.message_id, dl.raw, dl.error, dl.error_code.empty() ? Value(nullptr) : Value(dl.error_code),
       Value(std::max<int64_t>(1, dl.attempts))});
  if (!ins.ok()) return ins.error();
  auto rows = ins->rows;
  if (rows.empty()) {
    auto cur = tx.exec("SELECT id, dlq_stream_id FROM grow_events_dlq WHERE stream = $1 AND message_id = $2",
                       {dl.stream, dl.message_id});
    if (!cur.ok()) return cur.error();
    rows = cur->rows;
    if (rows.empty()) return make_error("db", "query_failed", "grow_events_dlq row for a conflicting id vanished");
  }
  DeadLetterRow out;
  out.id = rows[0].find("id")->as_int();
  const Value* sid = rows[0].find("dlq_stream_id");
  if (sid && sid->is_string()) out.dlq_stream_id = sid->as_string();
  return out;
}

}  // namespace anvil::growqr
