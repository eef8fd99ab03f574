// GrowQR event ingestion (docs/growqr.md "Events"): the normalizer, the
// userEventActor that routes recorded events to mission actors and
// projectors, the /events routes, the Redis stream consumer and replay.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/growqr/mission_registry.hpp"
#include "runtime/app_api.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {

inline constexpr const char* kUserEventActor = "userEventActor";
// The action every mission actor offers: applyGrowEvent(event) where event is
// GrowEvent::to_json() plus "eventId". Keyed [userId, missionInstanceId]. It
// must be idempotent by event.dedupeKey (it may be called again for the same
// event after a crash or a lost reply).
inline constexpr const char* kMissionEventAction = "applyGrowEvent";

// A read model fed by events. `apply` runs inside the transaction that marks
// the event processed, after projection_applied (event_id, name) was inserted
// for the first time, so an event is applied once per projector however
// often it is replayed. An error rolls the whole transaction back.
struct Projector {
  std::string name;
  std::function<bool(const Value& event)> applies;
  std::function<Status(pg::Tx& tx, const std::string& event_id, const Value& event)> apply;
};
// session (projections, projector 'service_session') and Q Score (qscore_snapshots).
std::vector<Projector> default_projectors();

struct EventsOptions {
  // Mission type -> actor type (the one registry: find_mission_type).
  std::function<const MissionType*(std::string_view)> resolve_mission;
  std::vector<Projector> projectors = default_projectors();
  // Processing attempts per drive (initial hand-off, or a replay) before an
  // event is left `failed` for replay; each failure waits
  // retry_backoff * 2^(n-1), at most max_retry_backoff.
  int64_t max_attempts = 5;
  std::chrono::milliseconds retry_backoff{1'000};
  std::chrono::milliseconds max_retry_backoff{60'000};
  // A mission call without a reply in this time counts as a failed attempt
  // (covers a call lost in a crash between commit and dispatch).
  std::chrono::milliseconds mission_timeout{30'000};
  // Recurring wake-up of a userEventActor with work left (>= 5000 ms).
  int64_t watchdog_ms = 10'000;
  // Dedupe keys of processed events each userEventActor remembers (KV).
  size_t processed_keep = 10'000;
  // Events a userEventActor holds before refusing more (events.backlog_full).
  size_t pending_cap = 5'000;
};

ActorDefinition user_event_actor(EventsOptions opts);

// Registers userEventActor, the routes and the services with the given
// options (tests pass their own mission resolver).
void add_events(AppDefinition& app, EventsOptions opts);

}  // namespace anvil::growqr
