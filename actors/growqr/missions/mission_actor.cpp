#include "actors/growqr/missions/mission_actor.hpp"

#include <chrono>
#include <memory>
#include <mutex>

#include <spdlog/spdlog.h>

#include "actors/growqr/missions/app_util.hpp"
#include "base/value/json.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

constexpr size_t kMaxRememberedPatches = 500;
constexpr size_t kMaxArtifacts = 200;

// What differs between mission implementations.
struct MissionSpec {
  const MissionType* type;
  const StageModel* stages;
  // Custom logic run after a legal stage change (may edit the state).
  void (*on_stage)(Value& state, std::string_view from, std::string_view to);
};

Value snapshot(const Value& s) {
  return obj({{"userId", field_or_null(s, "userId")},
              {"missionInstanceId", field_or_null(s, "missionInstanceId")},
              {"type", field_or_null(s, "type")},
              {"actor", field_or_null(s, "actor")},
              {"status", field_or_null(s, "status")},
              {"stage", field_or_null(s, "stage")},
              {"version", field_or_null(s, "version")},
              {"data", field_or_null(s, "data")},
              {"artifacts", field_or_null(s, "artifacts")},
              {"drift", field_or_null(s, "drift")}});
}

// Children push their changes up to their coordinator (seed 004's rule): the
// growActor keeps the user's mission list from these. Sent after the turn
// commits; a lost message is healed by growActor.bootstrap's reconcile.
void push_up(ActorContext& c, std::optional<Error> rejected = std::nullopt) {
  Value snap = snapshot(c.state());
  if (rejected) snap["rejected"] = obj({{"code", rejected->qualified()}, {"message", rejected->message}});
  c.call_actor("growActor", {str_or(c.state(), "userId")}, "missionChanged", {std::move(snap)});
}

void log_change(const ActorContext& c, std::string_view what, std::string_view detail) {
  spdlog::info("mission {} userId={} missionInstanceId={} type={} status={} stage={} version={} {}", what,
               str_or(c.state(), "userId"), str_or(c.state(), "missionInstanceId"), str_or(c.state(), "type"),
               str_or(c.state(), "status"), str_or(c.state(), "stage"), int_or(c.state(), "version", 0), detail);
}

Error rejected(ActorContext& c, Error e) {
  spdlog::info("mission rejected userId={} missionInstanceId={} error={} message={}", str_or(c.state(), "userId"),
               str_or(c.state(), "missionInstanceId"), e.qualified(), e.message);
  push_up(c, e);
  return e;
}

void bump_version(ActorContext& c) {
  Value& s = c.mutate_state();
  s["version"] = int_or(s, "version", 0) + 1;
}

// Upserts grow_active_missions from the actor's state. Without `force`, a
// row already at a higher version is left alone (two changes interleaving at
// their waits mirror in any order; the row ends at the newest).
Task<Status> mirror(ActorContext& c, bool force) {
  const Value& s = c.state();
  if (str_or(s, "status") == "not_started") co_return Ok{};
  const std::string user = str_or(s, "userId");
  const std::string id = str_or(s, "missionInstanceId");
  const std::string type = str_or(s, "type");
  const std::string status = str_or(s, "status");
  const std::string stage = str_or(s, "stage");
  const std::string row_state = json::dump(obj({{"version", int_or(s, "version", 0)},
                                                {"data", field_or_null(s, "data")},
                                                {"artifacts", field_or_null(s, "artifacts")}}));
  std::function<Result<Value>(pg::Tx&)> fn = [=](pg::Tx& tx) -> Result<Value> {
    auto u = tx.exec("INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING", {user});
    if (!u.ok()) return u.error();
    auto r = tx.exec(
        "INSERT INTO grow_active_missions (user_id, mission_instance_id, mission_type, status, stage, state) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb) "
        "ON CONFLICT (user_id, mission_instance_id) DO UPDATE SET mission_type = EXCLUDED.mission_type, "
        "status = EXCLUDED.status, stage = EXCLUDED.stage, state = EXCLUDED.state, updated_at = now() "
        "WHERE $7::bool OR COALESCE((grow_active_missions.state->>'version')::bigint, 0) <= "
        "(EXCLUDED.state->>'version')::bigint",
        {user, id, type, status, stage, row_state, force});
    if (!r.ok()) return r.error();
    return Value(r->affected);
  };
  auto r = co_await c.sql_transaction(std::move(fn));
  if (!r.ok()) {
    // Never silent: the caller gets the error and the next wake re-checks.
    spdlog::error("mission mirror failed userId={} missionInstanceId={} version={}: {} ({})", user, id,
                  int_or(c.state(), "version", 0), r.error().message, r.error().qualified());
    c.vars()["mirrorChecked"] = false;
    co_return r.error();
  }
  co_return Ok{};
}

void record_drift(ActorContext& c, const std::string& kind, const Value& row) {
  Value& s = c.mutate_state();
  Value drift = field_or_null(s, "drift");
  const int64_t count = int_or(drift, "count", 0) + 1;
  s["drift"] = obj({{"count", count},
                    {"last", obj({{"kind", kind}, {"at", unix_ms()}, {"row", row}, {"healed", true}})}});
  spdlog::warn("mission drift userId={} missionInstanceId={} kind={} actorStatus={} actorVersion={} row={}",
               str_or(s, "userId"), str_or(s, "missionInstanceId"), kind, str_or(s, "status"),
               int_or(s, "version", 0), json::dump(row));
}

// Drift between the actor and its grow_active_missions row, checked once per
// wake before the first action: the actor is the source of truth (the row is
// rewritten from it), except when the actor has no state of its own yet but a
// row exists (its storage was lost or reset): then the row is adopted.
Task<Status> ensure_mirror(ActorContext& c) {
  if (bool_or(c.vars(), "mirrorChecked", false)) co_return Ok{};
  const std::string sql =
      "SELECT status, stage, state FROM grow_active_missions WHERE user_id = $1 AND mission_instance_id = $2";
  Array params{str_or(c.state(), "userId"), str_or(c.state(), "missionInstanceId")};
  auto rows = co_await c.sql(sql, std::move(params));
  if (!rows.ok()) co_return rows.error();
  const Value& s = c.state();
  const std::string status = str_or(s, "status");
  const int64_t version = int_or(s, "version", 0);
  if (rows->rows.empty()) {
    if (status != "not_started") {
      record_drift(c, "row_missing", Value());
      auto st = co_await mirror(c, true);
      if (!st.ok()) co_return st;
    }
  } else {
    Value row = rows->rows[0];
    const Value& row_state = field_or_null(row, "state");
    const int64_t row_version = int_or(row_state, "version", 0);
    if (status == "not_started" && version == 0) {
      record_drift(c, "actor_state_missing", row);
      Value& m = c.mutate_state();
      m["status"] = str_or(row, "status");
      m["stage"] = str_or(row, "stage");
      m["version"] = row_version;
      if (row_state.find("data")) m["data"] = *row_state.find("data");
      if (row_state.find("artifacts")) m["artifacts"] = *row_state.find("artifacts");
    } else if (str_or(row, "status") != status || str_or(row, "stage") != str_or(s, "stage") ||
               row_version != version) {
      record_drift(c, "row_differs", row);
      auto st = co_await mirror(c, true);
      if (!st.ok()) co_return st;
    }
  }
  c.vars()["mirrorChecked"] = true;
  co_return Ok{};
}

Task<Result<Value>> lifecycle(ActionContext& c, MissionEvent event, const MissionSpec* spec) {
  if (auto st = co_await ensure_mirror(c); !st.ok()) co_return st.error();
  const std::string from = str_or(c.state(), "status");
  auto from_status = parse_mission_status(from);
  auto to = from_status ? next_status(*from_status, event) : std::nullopt;
  if (!to) co_return rejected(c, illegal_event(from, to_string(event)));
  Value& s = c.mutate_state();
  s["status"] = std::string(to_string(*to));
  if (event == MissionEvent::start) {
    s["stage"] = spec->stages->initial();
    s["startedAt"] = unix_ms();
  }
  bump_version(c);
  log_change(c, "transition", "from=" + from + " event=" + std::string(to_string(event)));
  push_up(c);
  if (auto st = co_await mirror(c, false); !st.ok()) co_return st.error();
  co_return snapshot(c.state());
}

std::string patch_id(const Value& patch) {
  for (const char* k : {"patchId", "eventId", "dedupeKey"}) {
    std::string id = str_or(patch, k);
    if (!id.empty()) return id;
  }
  return "";
}

bool seen_patch(const Value& s, const std::string& id) {
  const Value& applied = field_or_null(s, "appliedPatches");
  if (!applied.is_array()) return false;
  for (const auto& v : applied.as_array())
    if (v.is_string() && v.as_string() == id) return true;
  return false;
}

Task<Result<Value>> apply_stage_patch(ActionContext& c, Array args, const MissionSpec* spec) {
  if (args.empty() || !args[0].is_object())
    co_return make_error("validation", "invalid_patch", "applyStagePatch expects a patch object.");
  const Value patch = args[0];
  const std::string id = patch_id(patch);
  if (id.empty())
    co_return make_error("validation", "invalid_patch", "A stage patch needs a patchId (or eventId / dedupeKey).");
  if (auto st = co_await ensure_mirror(c); !st.ok()) co_return st.error();
  if (seen_patch(c.state(), id)) {
    Value snap = snapshot(c.state());
    snap["duplicate"] = true;
    co_return snap;
  }
  const std::string status = str_or(c.state(), "status");
  if (status != "active") co_return rejected(c, illegal_event(status, "stagePatch"));
  const std::string from = str_or(c.state(), "stage");
  const std::string to = str_or(patch, "stage", from);
  const Value& data = field_or_null(patch, "data");
  if (!data.is_null() && !data.is_object())
    co_return make_error("validation", "invalid_patch", "A stage patch's data must be an object.");
  if (to != from) {
    if (auto st = spec->stages->check(from, to); !st.ok()) co_return rejected(c, st.error());
  }
  Value& s = c.mutate_state();
  if (to != from) {
    s["stage"] = to;
    if (spec->on_stage) spec->on_stage(s, from, to);
    if (to == spec->stages->final_stage) s["status"] = std::string(to_string(MissionStatus::completed));
  }
  if (data.is_object()) {
    Value& d = s["data"];
    if (!d.is_object()) d = Object{};
    for (const auto& [k, v] : data.as_object()) d[k] = v;
  }
  Value& applied = s["appliedPatches"];
  if (!applied.is_array()) applied = Array{};
  applied.as_array().push_back(id);
  if (applied.as_array().size() > kMaxRememberedPatches) applied.as_array().erase(applied.as_array().begin());
  bump_version(c);
  log_change(c, "stagePatch", "patchId=" + id + " from=" + from + " to=" + to);
  push_up(c);
  if (auto st = co_await mirror(c, false); !st.ok()) co_return st.error();
  Value snap = snapshot(c.state());
  snap["duplicate"] = false;
  co_return snap;
}

// userEventActor's delivery (events/events.hpp, kMissionEventAction): a Grow
// Event becomes a stage patch keyed by its dedupe key, so a redelivered or
// replayed event changes nothing twice. The event's payload carries the patch
// (`stage`, `data`; without `data` the rest of the payload is the data). An
// event for a mission that is not active is acknowledged and ignored (the
// event stays recorded in grow_events; the mission's state is unchanged).
Task<Result<Value>> apply_grow_event(ActionContext& c, Array args, const MissionSpec* spec) {
  if (args.empty() || !args[0].is_object())
    co_return make_error("validation", "invalid_event", "applyGrowEvent expects an event object.");
  const Value event = args[0];
  const std::string key = str_or(event, "dedupeKey");
  if (key.empty()) co_return make_error("validation", "invalid_event", "A Grow Event needs its dedupeKey.");
  Object patch{{"patchId", key}};
  const Value& payload = field_or_null(event, "payload");
  if (payload.is_object()) {
    if (const Value* stage = payload.find("stage"); stage && stage->is_string()) patch.emplace_back("stage", *stage);
    if (const Value* data = payload.find("data"); data && data->is_object()) {
      patch.emplace_back("data", *data);
    } else {
      Object rest;
      for (const auto& [k, v] : payload.as_object())
        if (k != "stage") rest.emplace_back(k, v);
      if (!rest.empty()) patch.emplace_back("data", Value(std::move(rest)));
    }
  }
  if (auto st = co_await ensure_mirror(c); !st.ok()) co_return st.error();
  const std::string status = str_or(c.state(), "status");
  if (status != "active" && !seen_patch(c.state(), key)) {
    Value snap = snapshot(c.state());
    snap["dedupeKey"] = key;
    snap["ignored"] = true;
    co_return snap;
  }
  Array patch_args{Value(std::move(patch))};
  auto out = co_await apply_stage_patch(c, std::move(patch_args), spec);
  if (!out.ok()) co_return out;
  (*out)["dedupeKey"] = key;
  co_return out;
}

Task<Result<Value>> add_artifact(ActionContext& c, Array args) {
  if (args.empty() || !args[0].is_object())
    co_return make_error("validation", "invalid_artifact", "addArtifact expects an artifact object.");
  const Value artifact = args[0];
  const std::string key = str_or(artifact, "key");
  if (key.empty()) co_return make_error("validation", "invalid_artifact", "An artifact needs a key.");
  if (auto st = co_await ensure_mirror(c); !st.ok()) co_return st.error();
  const Value& existing = field_or_null(c.state(), "artifacts");
  if (existing.is_array())
    for (const auto& a : existing.as_array())
      if (str_or(a, "key") == key) {
        Value snap = snapshot(c.state());
        snap["duplicate"] = true;
        co_return snap;
      }
  const std::string status = str_or(c.state(), "status");
  if (status == "not_started" || status == "abandoned") co_return rejected(c, illegal_event(status, "addArtifact"));
  if (existing.is_array() && existing.as_array().size() >= kMaxArtifacts)
    co_return make_error("mission", "too_many_artifacts", "A mission keeps at most 200 artifacts.");
  Value& list = c.mutate_state()["artifacts"];
  if (!list.is_array()) list = Array{};
  list.as_array().push_back(obj({{"key", key},
                                 {"kind", str_or(artifact, "kind", "document")},
                                 {"content", field_or_null(artifact, "content")},
                                 {"metadata", field_or_null(artifact, "metadata")},
                                 {"addedAt", unix_ms()}}));
  bump_version(c);
  log_change(c, "artifact", "key=" + key);
  push_up(c);
  if (auto st = co_await mirror(c, false); !st.ok()) co_return st.error();
  Value snap = snapshot(c.state());
  snap["duplicate"] = false;
  co_return snap;
}

Task<Result<Value>> get_state(ActionContext& c) {
  if (auto st = co_await ensure_mirror(c); !st.ok()) co_return st.error();
  co_return snapshot(c.state());
}

// interview-to-offer's own rule: every move into `interviewing` is one more
// interview round.
void interview_on_stage(Value& s, std::string_view, std::string_view to) {
  if (to != to_string(InterviewStage::interviewing)) return;
  Value& d = s["data"];
  if (!d.is_object()) d = Object{};
  d["interviewRounds"] = int_or(d, "interviewRounds", 0) + 1;
}

ActorDefinition mission_actor(const MissionSpec* spec) {
  ActorDefinition def(spec->type->actor);
  def.create_state([spec](ActorContext& c, const Value&) -> Result<Value> {
       const ActorKey& key = c.key();
       if (key.size() != 2 || key[0].empty() || key[1].empty())
         return make_error("validation", "invalid_key", "A mission actor's key is [userId, missionInstanceId].");
       return obj({{"userId", key[0]},
                   {"missionInstanceId", key[1]},
                   {"type", spec->type->type},
                   {"actor", spec->type->actor},
                   {"status", std::string(to_string(MissionStatus::not_started))},
                   {"stage", spec->stages->initial()},
                   {"version", 0},
                   {"data", Object{}},
                   {"artifacts", Array{}},
                   {"appliedPatches", Array{}},
                   {"drift", Value()}});
     })
      .create_vars([](ActorContext&) -> Result<Value> { return obj({{"mirrorChecked", false}}); })
      .async_action("start", [spec](ActionContext& c, Array) { return lifecycle(c, MissionEvent::start, spec); })
      .async_action("pause", [spec](ActionContext& c, Array) { return lifecycle(c, MissionEvent::pause, spec); })
      .async_action("resume", [spec](ActionContext& c, Array) { return lifecycle(c, MissionEvent::resume, spec); })
      .async_action("abandon",
                    [spec](ActionContext& c, Array) { return lifecycle(c, MissionEvent::abandon, spec); })
      .async_action("applyStagePatch",
                    [spec](ActionContext& c, Array args) { return apply_stage_patch(c, std::move(args), spec); })
      .async_action("applyGrowEvent",
                    [spec](ActionContext& c, Array args) { return apply_grow_event(c, std::move(args), spec); })
      .async_action("addArtifact", [](ActionContext& c, Array args) { return add_artifact(c, std::move(args)); })
      .async_action("getState", [](ActionContext& c, Array) { return get_state(c); });
  return def;
}

}  // namespace

ActorDefinition interview_to_offer_mission() {
  static const MissionSpec spec{find_mission_type("interview-to-offer"), &interview_to_offer_stages(),
                                interview_on_stage};
  return mission_actor(&spec);
}

ActorDefinition thin_mission(const MissionType& type) {
  // One spec per thin type, alive for the program (actor definitions keep a pointer).
  static std::vector<std::unique_ptr<MissionSpec>> specs;
  static std::mutex mu;
  std::lock_guard lock(mu);
  for (const auto& s : specs)
    if (s->type == &type) return mission_actor(s.get());
  specs.push_back(std::make_unique<MissionSpec>(MissionSpec{&type, &thin_mission_stages(), nullptr}));
  return mission_actor(specs.back().get());
}

}  // namespace anvil::growqr
