// The one ingestion path shared by POST /events, the stream consumer, DLQ
// redrive and replay: record in grow_events (idempotent by dedupe key), then
// hand the event to its user's userEventActor (idempotent by dedupe key).
#pragma once

#include <string>

#include "actors/growqr/events/event_store.hpp"
#include "runtime/app_api.hpp"

namespace anvil::growqr {

struct IngestOutcome {
  std::string event_id, dedupe_key, status;
  bool duplicate = false;
  Value json() const;  // {eventId, dedupeKey, duplicate, status}
};

// Records `ev` and, when it is new or still `pending` (a crash may have cut
// the earlier hand-off), hands it to userEventActor. An error after the
// record leaves the row `pending`: retrying the same event is always safe.
Task<Result<IngestOutcome>> ingest_event(AppContext& app, GrowEvent ev, std::string source, std::string request_id);

// Hands a recorded event (event_of_row / RecordedEvent::event shape) to
// userEventActor[userId]; `replay` starts a fresh attempt budget.
Task<Result<Value>> hand_to_user_actor(AppContext& app, Value event, bool replay);

// The pool, or db.not_configured.
Result<pg::Pool*> events_pool(AppContext& app);

}  // namespace anvil::growqr
