// userEventActor [userId]: takes recorded events (route), applies each to its
// mission actor and then to the projectors, and writes the outcome to
// grow_events.processing_status. See docs/growqr.md "Events" for the rules.
//
// State (small; event bodies live in KV):
//   pending  {dedupeKey: {id, att, stage: "mission"|"project", nb, res?}} in arrival order
//   call     null | {k, n}: the one mission call in flight (replies carry no
//            correlation id, so one at a time makes each reply unambiguous)
//   timers   unix ms of pump schedules not yet fired
//   watchdog id of the recurring pump while work is pending ("" when idle)
//   seq, low processed-key ring bounds
// KV: e/<key> event JSON while pending; m/<key> its mission applied it (until
// processed); d/<key> processed marker; o/<seq> key (ring order).
#include <spdlog/spdlog.h>

#include <cstdio>

#include "actors/growqr/events/event_store.hpp"
#include "actors/growqr/events/events.hpp"
#include "actors/growqr/events/log_fields.hpp"
#include "base/value/json.hpp"

namespace anvil::growqr {
namespace {

using Opts = std::shared_ptr<const EventsOptions>;
constexpr int kPumpStepsPerCall = 64;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string seq_key(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "o/%020lld", static_cast<long long>(n));
  return buf;
}

const std::string* str(const Value& v, std::string_view k) {
  const Value* f = v.find(k);
  return f && f->is_string() ? &f->as_string() : nullptr;
}
int64_t num(const Value& v, std::string_view k, int64_t fallback = 0) {
  const Value* f = v.find(k);
  return f && f->is_int() ? f->as_int() : fallback;
}

Value* entry_of(ActorContext& c, const std::string& key) {
  Value* pending = c.mutate_state().find("pending");
  return pending ? pending->find(key) : nullptr;
}

void erase_entry(ActorContext& c, const std::string& key) {
  Object& pending = c.mutate_state()["pending"].as_object();
  std::erase_if(pending, [&](const auto& kv) { return kv.first == key; });
  (void)c.kv_delete("e/" + key);
}

Result<Value> load_event(ActorContext& c, const std::string& key) {
  auto raw = c.kv_get("e/" + key);
  if (!raw.ok()) return raw.error();
  if (!*raw) return make_error("event", "missing", "The pending event's body is missing from KV.");
  return json::parse(**raw, false);
}

// A pump run at `at_ms` (or earlier) is guaranteed by a durable schedule.
void ensure_pump(ActorContext& c, int64_t at_ms) {
  Value& timers = c.mutate_state()["timers"];
  if (!timers.is_array()) timers = Array{};
  for (const auto& t : timers.as_array())
    if (t.is_int() && t.as_int() <= at_ms + 20) return;
  auto id = c.schedule_at(at_ms, "pump", {});
  if (!id.ok()) {
    spdlog::warn("userEventActor {}: cannot schedule a pump: {}", c.actor_id(), id.error().message);
    return;
  }
  timers.as_array().push_back(Value(at_ms));
}

void arm_watchdog(ActorContext& c, const Opts& o) {
  const std::string* id = str(c.state(), "watchdog");
  if (id && !id->empty()) return;
  auto sid = c.schedule_every("pump-watchdog", o->watchdog_ms, "pump", {});
  if (sid.ok()) c.mutate_state()["watchdog"] = *sid;
}

void disarm_watchdog(ActorContext& c) {
  const std::string* id = str(c.state(), "watchdog");
  if (!id || id->empty()) return;
  (void)c.cancel_schedule(*id);
  c.mutate_state()["watchdog"] = "";
}

// Remembers `key` as processed, forgetting the oldest beyond processed_keep.
void remember_processed(ActorContext& c, const Opts& o, const std::string& key) {
  int64_t seq = num(c.state(), "seq") + 1;
  int64_t low = num(c.state(), "low");
  c.mutate_state()["seq"] = seq;
  (void)c.kv_put_batch({{"d/" + key, "1"}, {seq_key(seq), key}});
  while (seq - low > static_cast<int64_t>(o->processed_keep)) {
    ++low;
    auto old = c.kv_get(seq_key(low));
    if (old.ok() && *old) (void)c.kv_delete_batch({"d/" + **old, seq_key(low)});
  }
  c.mutate_state()["low"] = low;
}

std::chrono::milliseconds backoff(const Opts& o, int64_t attempt) {
  auto d = o->retry_backoff;
  for (int64_t i = 1; i < attempt && d < o->max_retry_backoff; ++i) d *= 2;
  return std::min(d, o->max_retry_backoff);
}

// ---------------------------------------------------------------- route

Result<Value> route(ActionContext& c, const Array& args, const Opts& o) {
  if (args.empty() || !args[0].is_object()) return user_error("route expects {eventId, dedupeKey, event}", "invalid");
  const Value& in = args[0];
  const std::string* key = str(in, "dedupeKey");
  const std::string* event_id = str(in, "eventId");
  const Value* event = in.find("event");
  if (!key || !event_id || !event || !event->is_object())
    return user_error("route expects {eventId, dedupeKey, event}", "invalid");
  const Value* replay_v = in.find("replay");
  const bool replay = replay_v && replay_v->is_bool() && replay_v->as_bool();
  const std::string fields = event_log_fields(*event, *event_id);

  auto done = c.kv_get("d/" + *key);
  if (!done.ok()) return done.error();
  if (*done) {
    spdlog::debug("userEventActor: duplicate of a processed event {}", fields);
    return obj({{"status", kProcessed}, {"duplicate", true}});
  }
  if (Value* e = entry_of(c, *key)) {
    if (replay && !(c.state().find("call") && str(*c.state().find("call"), "k") &&
                    *str(*c.state().find("call"), "k") == *key)) {
      (*e)["att"] = 0;  // a replay is a new drive with a fresh budget
      (*e)["nb"] = 0;
      ensure_pump(c, now_ms());
    }
    return obj({{"status", kPending}, {"duplicate", true}});
  }
  const Value* pending = c.state().find("pending");
  if (pending && pending->is_object() && pending->as_object().size() >= o->pending_cap)
    return make_error("events", "backlog_full", "userEventActor has too many events in progress; retry later.");
  Value body = *event;
  body["eventId"] = *event_id;
  if (auto st = c.kv_put("e/" + *key, json::dump(body)); !st.ok()) return st.error();
  if (!c.state().find("pending") || !c.state().find("pending")->is_object()) c.mutate_state()["pending"] = Object{};
  // A mission that already applied this event (an earlier drive failed later,
  // in a projector) is not called again.
  auto applied = c.kv_get("m/" + *key);
  if (!applied.ok()) return applied.error();
  c.mutate_state()["pending"][*key] =
      obj({{"id", *event_id}, {"att", 0}, {"stage", *applied ? "project" : "mission"}, {"nb", 0}});
  ensure_pump(c, now_ms());
  arm_watchdog(c, o);
  spdlog::info("userEventActor: accepted {}{}", fields, replay ? " (replay)" : "");
  return obj({{"status", kPending}, {"duplicate", false}});
}

// ---------------------------------------------------------------- replies

Result<Value> on_mission_reply(ActionContext& c, const Array& args) {
  const Value* call = c.state().find("call");
  if (!call || !call->is_object()) {
    spdlog::warn("userEventActor {}: a mission reply arrived with no call in flight; ignored", c.actor_id());
    return Value(false);
  }
  std::string key = *str(*call, "k");
  Value reply = args.empty() ? obj({{"ok", false}}) : args[0];
  // A reply that names another event is a late reply of an abandoned call.
  if (const Value* out = reply.find("output"); out && out->is_object()) {
    const std::string* k = str(*out, "dedupeKey");
    if (k && *k != key) return Value(false);
  }
  c.mutate_state()["call"] = nullptr;
  if (Value* e = entry_of(c, key)) (*e)["res"] = std::move(reply);
  ensure_pump(c, now_ms());
  return Value(true);
}

Result<Value> on_mission_timeout(ActionContext& c, const Array& args, const Opts& o) {
  const Value* call = c.state().find("call");
  if (args.size() < 2 || !call || !call->is_object() || !args[0].is_string() || !args[1].is_int()) return Value(false);
  if (*str(*call, "k") != args[0].as_string() || num(*call, "n") != args[1].as_int()) return Value(false);
  std::string key = args[0].as_string();
  c.mutate_state()["call"] = nullptr;
  if (Value* e = entry_of(c, key))
    (*e)["res"] = obj({{"ok", false},
                       {"error", obj({{"group", "events"},
                                      {"code", "mission_timeout"},
                                      {"message", "no reply from the mission actor within " +
                                                      std::to_string(o->mission_timeout.count()) + " ms"}})}});
  ensure_pump(c, now_ms());
  return Value(true);
}

// ---------------------------------------------------------------- pump

// A failed attempt: counted in grow_events (status failed, attempts,
// last_error) and retried after a backoff, or left for replay at the budget.
Task<Status> fail_attempt(ActorContext& c, std::string key, std::string event_id, std::string error, Value event,
                          Opts o) {
  Value* e = entry_of(c, key);
  if (!e) co_return Ok{};
  const int64_t att = num(*e, "att") + 1;
  (*e)["att"] = att;
  (*e)["nb"] = now_ms() + backoff(o, att).count();
  const std::string fields = event_log_fields(event, event_id, att);
  std::string sql =
      "UPDATE grow_events SET processing_status = 'failed', attempts = attempts + 1, last_error = $2 "
      "WHERE id = $1::uuid AND processing_status <> 'processed'";
  Array params{event_id, error};
  auto upd = co_await c.sql(std::move(sql), std::move(params));
  if (!upd.ok()) spdlog::warn("userEventActor: cannot mark failed: {} {}", upd.error().message, fields);
  e = entry_of(c, key);
  if (!e) co_return Ok{};
  if (att >= o->max_attempts) {
    spdlog::error("userEventActor: event failed {} times, left `failed` for replay: {} {}", att, error, fields);
    erase_entry(c, key);
  } else {
    spdlog::warn("userEventActor: event attempt failed, retrying in {} ms: {} {}", backoff(o, att).count(), error,
                 fields);
    ensure_pump(c, num(*e, "nb"));
  }
  co_return Ok{};
}

Task<Status> mark_unresolved(ActorContext& c, std::string key, std::string event_id, std::string why, Value event,
                             Opts o) {
  std::string sql =
      "UPDATE grow_events SET processing_status = 'unresolved', last_error = $2 "
      "WHERE id = $1::uuid AND processing_status <> 'processed'";
  Array params{event_id, why};
  auto upd = co_await c.sql(std::move(sql), std::move(params));
  if (!upd.ok()) {
    co_await fail_attempt(c, key, event_id, "cannot mark unresolved: " + upd.error().message, event, o);
    co_return Ok{};
  }
  spdlog::warn("userEventActor: event unresolved ({}); replay re-drives it {}", why, event_log_fields(event, event_id));
  erase_entry(c, key);
  co_return Ok{};
}

// The projectors and the `processed` status in one transaction.
Result<Value> project_tx(pg::Tx& tx, const Opts& o, const std::string& event_id, const Value& event) {
  for (const auto& p : o->projectors) {
    if (!p.applies(event)) continue;
    auto first = tx.exec(
        "INSERT INTO projection_applied (event_id, projector) VALUES ($1::uuid, $2) ON CONFLICT DO NOTHING "
        "RETURNING projector",
        {event_id, p.name});
    if (!first.ok()) return first.error();
    if (first->rows.empty()) continue;  // applied by an earlier drive
    if (auto st = p.apply(tx, event_id, event); !st.ok()) {
      Error err = st.error();
      err.message = "projector " + p.name + ": " + err.message;
      return err;
    }
  }
  auto upd = tx.exec(
      "UPDATE grow_events SET processing_status = 'processed', processed_at = now(), last_error = NULL "
      "WHERE id = $1::uuid",
      {event_id});
  if (!upd.ok()) return upd.error();
  return Value(true);
}

std::string reply_error(const Value& res) {
  const Value* err = res.find("error");
  if (!err) return "mission actor failed";
  const std::string* m = str(*err, "message");
  const std::string* g = str(*err, "group");
  const std::string* code = str(*err, "code");
  return "mission actor: " + (m ? *m : std::string("failed")) +
         (g && code ? " (" + *g + "." + *code + ")" : std::string());
}

// Moves one entry one stage on.
Task<Status> advance(ActorContext& c, std::string key, Opts o) {
  Value* e = entry_of(c, key);
  if (!e) co_return Ok{};
  const std::string event_id = *str(*e, "id");
  auto loaded = load_event(c, key);
  if (!loaded.ok()) {
    spdlog::error("userEventActor {}: dropping pending entry {}: {}", c.actor_id(), key, loaded.error().message);
    erase_entry(c, key);
    co_return Ok{};
  }
  Value event = std::move(*loaded);

  if (*str(*e, "stage") == "mission") {
    if (const Value* res = e->find("res")) {
      Value reply = *res;
      std::erase_if(e->as_object(), [](const auto& kv) { return kv.first == "res"; });
      const Value* ok = reply.find("ok");
      if (ok && ok->is_bool() && ok->as_bool()) {
        (*e)["stage"] = "project";
        (void)c.kv_put("m/" + key, "1");
        spdlog::info("userEventActor: mission applied {}", event_log_fields(event, event_id));
      } else {
        co_await fail_attempt(c, key, event_id, reply_error(reply), event, o);
      }
      co_return Ok{};
    }
    const std::string* user = str(event, "userId");
    const std::string* instance = str(event, "missionInstanceId");
    if (!instance) {
      (*e)["stage"] = "project";
      co_return Ok{};
    }
    std::string mission_type = str(event, "missionType") ? *str(event, "missionType") : std::string();
    if (mission_type.empty()) {
      // The event names the instance only: the active mission row knows its type.
      std::string sql = "SELECT mission_type FROM grow_active_missions WHERE user_id = $1 AND mission_instance_id = $2";
      Array params{*user, *instance};
      auto row = co_await c.sql(std::move(sql), std::move(params));
      if (!row.ok()) {
        co_await fail_attempt(c, key, event_id, row.error().message, event, o);
        co_return Ok{};
      }
      if (row->rows.empty()) {
        co_await mark_unresolved(c, key, event_id, "no missionType and no active mission " + *instance, event, o);
        co_return Ok{};
      }
      mission_type = *str(row->rows[0], "mission_type");
    }
    const MissionType* mt = o->resolve_mission ? o->resolve_mission(mission_type) : nullptr;
    if (!mt) {
      co_await mark_unresolved(c, key, event_id, "unknown mission type " + mission_type, event, o);
      co_return Ok{};
    }
    e = entry_of(c, key);
    if (!e) co_return Ok{};
    const Value* call = c.state().find("call");
    if (call && call->is_object()) co_return Ok{};  // another event's call went out meanwhile
    const int64_t n = num(c.state(), "callSeq") + 1;
    c.mutate_state()["callSeq"] = n;
    c.mutate_state()["call"] = obj({{"k", key}, {"n", n}});
    c.call_actor(mt->actor, {*user, *instance}, kMissionEventAction, {event}, "onMissionReply");
    (void)c.schedule_after(o->mission_timeout.count(), "missionTimeout", {Value(key), Value(n)});
    spdlog::info("userEventActor: calling {}.{} {}", mt->actor, kMissionEventAction,
                 event_log_fields(event, event_id, num(*e, "att")));
    co_return Ok{};
  }

  // stage "project"
  std::function<Result<Value>(pg::Tx&)> fn = [o, event_id, event](pg::Tx& tx) {
    return project_tx(tx, o, event_id, event);
  };
  auto done = co_await c.sql_transaction(std::move(fn));
  if (!done.ok()) {
    co_await fail_attempt(c, key, event_id, done.error().message, event, o);
    co_return Ok{};
  }
  if (!entry_of(c, key)) co_return Ok{};
  erase_entry(c, key);
  (void)c.kv_delete("m/" + key);
  remember_processed(c, o, key);
  spdlog::info("userEventActor: event processed {}", event_log_fields(event, event_id));
  co_return Ok{};
}

// The next entry that can move now (arrival order), or "".
std::string next_actionable(const ActorContext& c, int64_t now) {
  const Value* pending = c.state().find("pending");
  if (!pending || !pending->is_object()) return "";
  const Value* call = c.state().find("call");
  const bool call_in_flight = call && call->is_object();
  for (const auto& [key, e] : pending->as_object()) {
    if (num(e, "nb") > now) continue;
    if (*str(e, "stage") == "mission" && !e.find("res") && call_in_flight) continue;
    return key;
  }
  return "";
}

Task<Result<Value>> pump(ActionContext& c, Array, Opts o) {
  if (c.vars().find("pumping") && c.vars()["pumping"].as_bool()) co_return Value("busy");
  c.vars()["pumping"] = true;
  {
    const int64_t now = now_ms();
    Value& timers = c.mutate_state()["timers"];
    if (!timers.is_array()) timers = Array{};
    std::erase_if(timers.as_array(), [&](const Value& t) { return !t.is_int() || t.as_int() <= now + 5; });
  }
  int steps = 0;
  for (; steps < kPumpStepsPerCall; ++steps) {
    std::string key = next_actionable(c, now_ms());
    if (key.empty()) break;
    Status st = co_await advance(c, key, o);
    if (!st.ok()) break;
  }
  c.vars()["pumping"] = false;
  // What is left: now (more work than one call does), or the earliest retry.
  const int64_t now = now_ms();
  if (!next_actionable(c, now).empty()) {
    ensure_pump(c, now);
  } else if (const Value* pending = c.state().find("pending"); pending && pending->is_object()) {
    int64_t earliest = INT64_MAX;
    for (const auto& [key, e] : pending->as_object())
      if (num(e, "nb") > now) earliest = std::min(earliest, num(e, "nb"));
    if (earliest != INT64_MAX) ensure_pump(c, earliest);
    if (pending->as_object().empty()) disarm_watchdog(c);
  }
  co_return Value(static_cast<int64_t>(steps));
}

Result<Value> status(ActionContext& c, const Array&) {
  const Value* pending = c.state().find("pending");
  const Value* call = c.state().find("call");
  return obj({{"pending", pending && pending->is_object() ? int64_t(pending->as_object().size()) : int64_t(0)},
              {"callInFlight", call && call->is_object()},
              {"processedRemembered", num(c.state(), "seq") - num(c.state(), "low")}});
}

}  // namespace

ActorDefinition user_event_actor(EventsOptions opts) {
  auto o = std::make_shared<const EventsOptions>(std::move(opts));
  ActorDefinition def(kUserEventActor);
  ActorOptions ao;
  ao.action_timeout = std::chrono::minutes(5);  // one pump call does at most kPumpStepsPerCall steps
  def.options(ao)
      .initial_state(obj({{"pending", Object{}}, {"call", nullptr}, {"timers", Array{}}, {"watchdog", ""},
                          {"seq", 0}, {"low", 0}, {"callSeq", 0}}))
      .create_vars([](ActorContext&) -> Result<Value> { return obj({{"pumping", false}}); })
      .action("route", [o](ActionContext& c, const Array& args) { return route(c, args, o); })
      .action("onMissionReply", [](ActionContext& c, const Array& args) { return on_mission_reply(c, args); })
      .action("missionTimeout",
              [o](ActionContext& c, const Array& args) { return on_mission_timeout(c, args, o); })
      .async_action("pump", [o](ActionContext& c, Array args) { return pump(c, std::move(args), o); })
      .action("status", status);
  return def;
}

}  // namespace anvil::growqr
