#include "actors/growqr/events/ingest.hpp"

#include <spdlog/spdlog.h>

#include "actors/growqr/events/events.hpp"
#include "actors/growqr/events/log_fields.hpp"

namespace anvil::growqr {

Value IngestOutcome::json() const {
  return obj({{"eventId", event_id}, {"dedupeKey", dedupe_key}, {"duplicate", duplicate}, {"status", status}});
}

Result<pg::Pool*> events_pool(AppContext& app) {
  if (!app.services().pg) return pg::not_configured_error();
  return app.services().pg;
}

Task<Result<Value>> hand_to_user_actor(AppContext& app, Value event, bool replay) {
  const Value* user = event.find("userId");
  const Value* key = event.find("dedupeKey");
  const Value* id = event.find("eventId");
  if (!user || !user->is_string() || !key || !key->is_string() || !id || !id->is_string())
    co_return make_error("event", "invalid", "A recorded event needs userId, dedupeKey and eventId.");
  Value arg = obj({{"eventId", *id}, {"dedupeKey", *key}, {"event", event}, {"replay", replay}});
  std::string actor = kUserEventActor;
  std::string action = "route";
  ActorKey key_of_user{user->as_string()};
  Array args{std::move(arg)};
  auto r = co_await app.actors().call(std::move(actor), std::move(key_of_user), std::move(action), std::move(args));
  co_return r;
}

Task<Result<IngestOutcome>> ingest_event(AppContext& app, GrowEvent ev, std::string source, std::string request_id) {
  auto pool = events_pool(app);
  if (!pool.ok()) co_return pool.error();
  std::function<Result<Value>(pg::Tx&)> fn = [ev, source](pg::Tx& tx) -> Result<Value> {
    auto r = record_event(tx, ev, source);
    if (!r.ok()) return r.error();
    return obj({{"eventId", r->event_id}, {"status", r->status}, {"duplicate", r->duplicate}, {"event", r->event}});
  };
  const std::string rid = request_id.empty() && ev.request_id ? *ev.request_id : request_id;
  LogFields lf{rid, ev.user_id, ev.mission_instance_id ? std::string_view(*ev.mission_instance_id) : std::string_view(),
               {}, ev.dedupe_key};
  auto rec = co_await (*pool)->transaction(std::move(fn));
  if (!rec.ok()) {
    spdlog::warn("events: cannot record ({}): {} {}", rec.error().qualified(), rec.error().message, log_fields(lf));
    co_return rec.error();
  }
  IngestOutcome out;
  out.event_id = rec->find("eventId")->as_string();
  out.dedupe_key = ev.dedupe_key;
  out.status = rec->find("status")->as_string();
  out.duplicate = rec->find("duplicate")->as_bool();
  lf.event_id = out.event_id;
  if (out.duplicate && out.status != kPending) {
    spdlog::info("events: duplicate of a {} event from {}, nothing to do {}", out.status, source, log_fields(lf));
    co_return out;
  }
  auto handed = co_await hand_to_user_actor(app, *rec->find("event"), false);
  if (!handed.ok()) {
    spdlog::warn("events: recorded but not handed to userEventActor ({}): {} {}", handed.error().qualified(),
                 handed.error().message, log_fields(lf));
    Error e = handed.error();
    e.metadata = obj({{"eventId", out.event_id}, {"dedupeKey", out.dedupe_key}, {"recorded", true}});
    co_return e;
  }
  spdlog::info("events: {} event from {} {}", out.duplicate ? "re-handed pending" : "recorded", source,
               log_fields(lf));
  co_return out;
}

}  // namespace anvil::growqr
