// The events' Postgres statements (grow_events, grow_events_dlq), each a
// synchronous function on a transaction so callers choose the pool
// (AppContext::services().pg) or the actor (ActorContext::sql_transaction).
#pragma once

#include <optional>
#include <string>

#include "actors/growqr/events/grow_event.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {

// grow_events.processing_status values.
inline constexpr const char* kPending = "pending";
inline constexpr const char* kProcessed = "processed";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kUnresolved = "unresolved";

struct RecordedEvent {
  std::string event_id;  // grow_events.id
  std::string status;    // its processing_status now
  bool duplicate = false;
  Value event;  // the normalized event (to_json() + "eventId")
};

// INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING; on a conflict the
// row already recorded under the key (its id and status), duplicate = true.
Result<RecordedEvent> record_event(pg::Tx& tx, const GrowEvent& ev, const std::string& source);

// The normalized event of a grow_events row (its `event` column, or rebuilt
// from the columns for rows recorded without it), with "eventId".
Value event_of_row(const Value& row);

struct DeadLetter {
  std::string stream, message_id, raw, error, error_code;
  int64_t attempts = 1;
};
struct DeadLetterRow {
  int64_t id = 0;
  std::optional<std::string> dlq_stream_id;  // set once the copy is on the DLQ stream
};
// Inserts the dead letter unless (stream, message_id) is already there; the
// row either way.
Result<DeadLetterRow> insert_dead_letter(pg::Tx& tx, const DeadLetter& dl);

// Columns the listing routes return, as JSON objects.
inline constexpr const char* kEventColumns =
    "id::text AS \"eventId\", dedupe_key AS \"dedupeKey\", user_id AS \"userId\", type, "
    "mission_instance_id AS \"missionInstanceId\", mission_type AS \"missionType\", source, "
    "processing_status AS status, attempts, last_error AS \"lastError\", occurred_at AS \"occurredAt\", "
    "received_at AS \"receivedAt\", processed_at AS \"processedAt\"";
inline constexpr const char* kDlqColumns =
    "id, stream, message_id AS \"messageId\", raw, error, error_code AS \"errorCode\", attempts, "
    "dlq_stream_id AS \"dlqStreamId\", created_at AS \"createdAt\", redriven_at AS \"redrivenAt\", "
    "redrive_event_id::text AS \"redriveEventId\"";

}  // namespace anvil::growqr
