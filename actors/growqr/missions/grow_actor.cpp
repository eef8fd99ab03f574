#include "actors/growqr/missions/grow_actor.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "actors/growqr/mission_registry.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "actors/growqr/missions/mission_machine.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

constexpr int64_t kRedriveAfterMs = 5'000;

bool unfinished(const std::string& status) { return status != "completed" && status != "abandoned"; }

Value entries_in_order(const Value& missions) {
  Array out;
  if (missions.is_object())
    for (const auto& [id, e] : missions.as_object()) out.push_back(e);
  return out;
}

Result<Value> active_state(ActorContext& c) {
  const Value& s = c.state();
  Array active;
  const Value& missions = field_or_null(s, "missions");
  if (missions.is_object())
    for (const auto& [id, e] : missions.as_object())
      if (unfinished(str_or(e, "status"))) active.push_back(id);
  return obj({{"userId", field_or_null(s, "userId")}, {"missions", entries_in_order(missions)}, {"active", active}});
}

Error not_found(const std::string& id) {
  return make_error("mission", "not_found", "No mission `" + id + "` for this user.",
                    obj({{"missionInstanceId", id}}));
}

Error unknown_type(const std::string& type) {
  Array known;
  for (const auto& t : mission_types()) known.push_back(t.type);
  return make_error("mission", "unknown_type", "Unknown mission type `" + type + "`.",
                    obj({{"type", type}, {"known", known}}));
}

Result<Value> start_mission(ActionContext& c, const Array& args) {
  const std::string type = !args.empty() && args[0].is_string() ? args[0].as_string() : "";
  const MissionType* mt = find_mission_type(type);
  if (!mt) return unknown_type(type);
  std::string id = args.size() > 1 && args[1].is_string() ? args[1].as_string() : "";
  const Value& missions = field_or_null(c.state(), "missions");
  if (id.empty() && missions.is_object()) {
    // A repeated start without an id returns the unfinished instance.
    for (const auto& [mid, e] : missions.as_object())
      if (str_or(e, "type") == type && unfinished(str_or(e, "status"))) {
        Value out = e;
        out["existing"] = true;
        return out;
      }
  }
  if (!id.empty()) {
    if (id.size() > 100) return make_error("validation", "invalid_mission_id", "A mission instance id is at most 100 bytes.");
    if (const Value* e = missions.is_object() ? missions.find(id) : nullptr) {
      if (str_or(*e, "type") != type)
        return make_error("mission", "type_mismatch",
                          "Mission `" + id + "` is a `" + str_or(*e, "type") + "`, not a `" + type + "`.",
                          obj({{"missionInstanceId", id}, {"type", str_or(*e, "type")}}));
      if (str_or(*e, "status") != "starting" && str_or(*e, "status") != "not_started") {
        Value out = *e;
        out["existing"] = true;
        return out;
      }
    }
  }
  Value& s = c.mutate_state();
  if (id.empty()) {
    // The sequence is persisted with the state: after a restart it goes on at n+1.
    const int64_t seq = int_or(s, "nextSeq", 1);
    s["nextSeq"] = seq + 1;
    id = type + "-" + std::to_string(seq);
  }
  Value entry = obj({{"missionInstanceId", id},
                     {"type", type},
                     {"actor", mt->actor},
                     {"status", "starting"},
                     {"stage", Value()},
                     {"version", 0},
                     {"requestedAt", unix_ms()}});
  Value& list = s["missions"];
  if (!list.is_object()) list = Object{};
  list[id] = entry;
  const std::string user = str_or(s, "userId");
  c.call_actor(mt->actor, {user, id}, "start", {obj({{"type", type}})});
  spdlog::info("grow startMission userId={} missionInstanceId={} type={} actor={}", user, id, type, mt->actor);
  Value out = entry;
  out["existing"] = false;
  return out;
}

Result<Value> drive(ActionContext& c, const Array& args, MissionEvent event) {
  const std::string id = !args.empty() && args[0].is_string() ? args[0].as_string() : "";
  const Value& missions = field_or_null(c.state(), "missions");
  const Value* e = missions.is_object() ? missions.find(id) : nullptr;
  if (!e) return not_found(id);
  const std::string status = str_or(*e, "status");
  // Checked against the last status the mission reported; the mission
  // re-checks with its own (authoritative) state.
  if (auto known = parse_mission_status(status); known && !next_status(*known, event))
    return illegal_event(status, to_string(event));
  const std::string user = str_or(c.state(), "userId");
  const std::string actor = str_or(*e, "actor");
  c.call_actor(actor, {user, id}, std::string(to_string(event)), {});
  spdlog::info("grow {}Mission userId={} missionInstanceId={} actor={}", to_string(event), user, id, actor);
  return obj({{"missionInstanceId", id}, {"requested", std::string(to_string(event))}, {"status", status}});
}

// A mission's own report: newer versions win; a rejection is kept as lastError.
Result<Value> mission_changed(ActionContext& c, const Array& args) {
  if (args.empty() || !args[0].is_object()) return make_error("validation", "invalid_snapshot", "Expected a snapshot.");
  const Value& snap = args[0];
  const std::string id = str_or(snap, "missionInstanceId");
  if (id.empty()) return make_error("validation", "invalid_snapshot", "The snapshot has no missionInstanceId.");
  Value& s = c.mutate_state();
  Value& list = s["missions"];
  if (!list.is_object()) list = Object{};
  Value& e = list[id];
  if (!e.is_object())
    e = obj({{"missionInstanceId", id}, {"type", field_or_null(snap, "type")}, {"actor", field_or_null(snap, "actor")},
             {"version", -1}});
  const bool was_starting = str_or(e, "status") == "starting";
  if (int_or(snap, "version", 0) >= int_or(e, "version", -1) || was_starting) {
    e["status"] = field_or_null(snap, "status");
    e["stage"] = field_or_null(snap, "stage");
    e["version"] = field_or_null(snap, "version");
  }
  // A start driven again (reconcile) that finds the mission already started
  // is not an error worth showing.
  const Value* r = snap.find("rejected");
  if (r && !(was_starting && str_or(snap, "status") != "not_started"))
    e["lastError"] = *r;
  else
    e["lastError"] = Value();
  return true;
}

// Reconciles the list with grow_active_missions (drift at wake): rows the
// list lacks are added, rows newer than the entry win; entries still
// "starting" for a while are driven again (a start message lost in a crash).
Task<Status> reconcile(ActionContext& c) {
  const std::string user = str_or(c.state(), "userId");
  const std::string sql =
      "SELECT mission_instance_id, mission_type, status, stage, "
      "COALESCE((state->>'version')::bigint, 0) AS version FROM grow_active_missions WHERE user_id = $1";
  Array params{user};
  auto rows = co_await c.sql(sql, std::move(params));
  if (!rows.ok()) co_return rows.error();
  Value& list = c.mutate_state()["missions"];
  if (!list.is_object()) list = Object{};
  for (const auto& row : rows->rows) {
    const std::string id = str_or(row, "mission_instance_id");
    const MissionType* mt = find_mission_type(str_or(row, "mission_type"));
    Value& e = list[id];
    if (!e.is_object() || int_or(row, "version", 0) > int_or(e, "version", -1)) {
      if (!e.is_object())
        spdlog::warn("grow drift userId={} missionInstanceId={} kind=list_missing healed=true", user, id);
      e = obj({{"missionInstanceId", id},
               {"type", str_or(row, "mission_type")},
               {"actor", mt ? Value(mt->actor) : Value()},
               {"status", field_or_null(row, "status")},
               {"stage", field_or_null(row, "stage")},
               {"version", int_or(row, "version", 0)}});
    }
  }
  // A start still unanswered after a while was probably lost (outbox
  // delivery is at most once across a crash): drive it again.
  for (const auto& [id, e] : list.as_object())
    if (str_or(e, "status") == "starting" && !str_or(e, "actor").empty() &&
        unix_ms() - int_or(e, "requestedAt", 0) > kRedriveAfterMs)
      c.call_actor(str_or(e, "actor"), {user, id}, "start", {});
  co_return Ok{};
}

Task<Result<Value>> bootstrap(ActionContext& c) {
  if (!bool_or(c.vars(), "reconciled", false)) {
    const std::string sql = "INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING";
    Array params{str_or(c.state(), "userId")};
    auto u = co_await c.sql(sql, std::move(params));
    if (!u.ok()) co_return u.error();
    if (auto st = co_await reconcile(c); !st.ok()) co_return st.error();
    c.vars()["reconciled"] = true;
  }
  co_return active_state(c);
}

}  // namespace

ActorDefinition grow_actor() {
  ActorDefinition def("growActor");
  def.create_state([](ActorContext& c, const Value&) -> Result<Value> {
       const ActorKey& key = c.key();
       if (key.size() != 1 || key[0].empty())
         return make_error("validation", "invalid_key", "growActor's key is [userId].");
       return obj({{"userId", key[0]}, {"missions", Object{}}, {"nextSeq", 1}});
     })
      .create_vars([](ActorContext&) -> Result<Value> { return obj({{"reconciled", false}}); })
      .async_action("bootstrap", [](ActionContext& c, Array) { return bootstrap(c); })
      .action("getActiveState", [](ActionContext& c, const Array&) { return active_state(c); })
      .action("startMission", start_mission)
      .action("pauseMission", [](ActionContext& c, const Array& a) { return drive(c, a, MissionEvent::pause); })
      .action("resumeMission", [](ActionContext& c, const Array& a) { return drive(c, a, MissionEvent::resume); })
      .action("getMission",
              [](ActionContext& c, const Array& a) -> Result<Value> {
                const std::string id = !a.empty() && a[0].is_string() ? a[0].as_string() : "";
                const Value& missions = field_or_null(c.state(), "missions");
                const Value* e = missions.is_object() ? missions.find(id) : nullptr;
                if (!e) return not_found(id);
                return *e;
              })
      .action("missionChanged", mission_changed);
  return def;
}

}  // namespace anvil::growqr
