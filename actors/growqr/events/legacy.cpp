#include "actors/growqr/events/legacy.hpp"

#include <ctime>
#include <memory>

#include <spdlog/spdlog.h>

#include "actors/growqr/env/environment.hpp"
#include "actors/growqr/events/consumer.hpp"
#include "actors/growqr/events/event_store.hpp"
#include "actors/growqr/events/ingest.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "base/value/json.hpp"
#include "storage/redis/client.hpp"

namespace anvil::growqr {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

const char* const kTasksPrefix = "tasks:";
const char* const kResponsesPrefix = "responses:";
const char* const kDlqStream = "legacy:responses";

std::string utc_now_iso() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

Value text_or_null(const std::string& s) { return s.empty() ? Value() : Value(s); }

// Every key under `prefix` (SCAN, never KEYS), at most `max`.
Task<Result<std::vector<std::string>>> scan_keys(redis::Client& redis, std::string prefix, size_t max) {
  // SCAN's MATCH is a glob: the prefix's own glob characters are escaped.
  std::string pattern;
  for (char ch : prefix) {
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\') pattern += '\\';
    pattern += ch;
  }
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    std::vector<std::string> argv{"SCAN", cursor, "MATCH", pattern + "*", "COUNT", "500"};
    auto r = co_await redis.command(std::move(argv));
    if (!r.ok()) co_return r.error();
    if (!r->is_array() || r->as_array().size() != 2 || !r->as_array()[0].is_string() || !r->as_array()[1].is_array())
      co_return make_error("redis", "unexpected_reply", "SCAN answered an unexpected shape");
    const Array& reply = r->as_array();
    cursor = reply[0].as_string();
    for (const Value& k : reply[1].as_array())
      if (k.is_string() && keys.size() < max) keys.push_back(k.as_string());
  } while (cursor != "0" && keys.size() < max);
  co_return keys;
}

// MGET of `keys`: the values in order (null for a key gone meanwhile).
Task<Result<Array>> mget(redis::Client& redis, std::vector<std::string> keys) {
  if (keys.empty()) co_return Array{};
  std::vector<std::string> argv{"MGET"};
  argv.insert(argv.end(), keys.begin(), keys.end());
  auto r = co_await redis.command(std::move(argv));
  if (!r.ok()) co_return r.error();
  if (!r->is_array() || r->as_array().size() != keys.size())
    co_return make_error("redis", "unexpected_reply", "MGET answered an unexpected shape");
  co_return r->as_array();
}

// The task id of "tasks:<id>" / "responses:<id>".
std::string id_of(const std::string& key, std::string_view prefix) { return key.substr(prefix.size()); }

// Records a task's context; a row left `orphaned` by its response becomes
// `waiting` again, so the next pass attributes it.
Task<Status> record_task(AppContext& app, const LegacySource& source, std::string task_id, const Value& ctx) {
  std::string service = str_or(ctx, "service");
  if (service.empty()) service = source.service.empty() ? "legacy" : source.service;
  const std::string user = str_or(ctx, "userId"), action = str_or(ctx, "action");
  if (user.empty() || action.empty())
    co_return make_error("event", "invalid", "tasks:" + task_id + " names no userId or action");
  std::string q =
      "INSERT INTO legacy_tasks (task_id, service, user_id, action, mission_instance_id, request_id, context) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT (task_id) DO UPDATE SET "
      "service = EXCLUDED.service, user_id = EXCLUDED.user_id, action = EXCLUDED.action, "
      "mission_instance_id = EXCLUDED.mission_instance_id, request_id = EXCLUDED.request_id, "
      "context = EXCLUDED.context, status = 'waiting' WHERE legacy_tasks.status = 'orphaned'";
  Array params{Value(task_id), Value(service), Value(user), Value(action),
               text_or_null(str_or(ctx, "missionInstanceId")), text_or_null(str_or(ctx, "requestId")),
               Value(json::dump(ctx))};
  auto r = co_await app.sql(std::move(q), std::move(params));
  if (!r.ok()) co_return r.error();
  co_return Ok{};
}

// The Grow Event a response becomes, from its task's row.
Result<GrowEvent> event_for(const Value& row, const std::string& task_id, const Value& response) {
  std::string status = str_or(response, "status");
  if (status != "failed") status = "completed";
  const std::string service = str_or(row, "service"), action = str_or(row, "action");
  const Value* result = response.is_object() ? response.find("result") : nullptr;
  const Value* error = response.is_object() ? response.find("error") : nullptr;
  Value ev = obj({{"id", "legacy:" + service + ":" + task_id},
                  {"type", service + "." + action + "." + status},
                  {"userId", str_or(row, "user_id")},
                  {"occurredAt", utc_now_iso()},
                  {"serviceId", service},
                  {"operation", action},
                  {"requestId", str_or(row, "request_id").empty() ? task_id : str_or(row, "request_id")},
                  {"payload", obj({{"taskId", task_id},
                                   {"status", status},
                                   {"result", result ? *result : Value()},
                                   {"error", error ? *error : Value()},
                                   {"legacy", true}})}});
  if (!str_or(row, "mission_instance_id").empty()) ev["missionInstanceId"] = str_or(row, "mission_instance_id");
  return normalize_grow_event(ev);
}

}  // namespace

LegacyConfig legacy_config(const AppContext& app) {
  LegacyConfig cfg;
  auto lookup = lookup_in(app);
  auto env = environment_of(lookup);
  const auto flag = setting(lookup, "LEGACY_REDIS_OBSERVERS");
  const bool dev_like = env.ok() && (*env == Environment::development || *env == Environment::test);
  cfg.enabled = flag ? (*flag == "true" || *flag == "1") : dev_like;
  cfg.poll = milliseconds(positive_config(app, "GROWQR_LEGACY_POLL_MS", cfg.poll.count()));
  cfg.orphan_after = milliseconds(positive_config(app, "GROWQR_LEGACY_ORPHAN_MS", cfg.orphan_after.count()));
  cfg.key_prefix = setting(lookup, "GROWQR_LEGACY_KEY_PREFIX").value_or("");
  const std::string node_redis = setting(lookup, "ANVIL_REDIS_URL").value_or("");
  const std::string shared = setting(lookup, "LEGACY_REDIS_URL").value_or("");
  cfg.sources.push_back(LegacySource{"", shared == node_redis ? "" : shared});
  for (const std::string& service : enabled_services(lookup)) {
    std::string upper;
    for (char ch : service) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    const auto own = setting(lookup, upper + "_REDIS_URL");
    if (own && *own != node_redis && *own != shared) cfg.sources.push_back(LegacySource{service, *own});
  }
  return cfg;
}

Task<Result<LegacyPoll>> observe_legacy_once(AppContext& app, redis::Client& redis, const LegacySource& source,
                                             const LegacyConfig& cfg, LegacyState& state) {
  LegacyPoll out;
  // 1. Task contexts, recorded once each.
  const std::string tasks_prefix = cfg.key_prefix + kTasksPrefix;
  const std::string responses_prefix = cfg.key_prefix + kResponsesPrefix;
  auto task_keys = co_await scan_keys(redis, tasks_prefix, cfg.max_keys_per_poll);
  if (!task_keys.ok()) co_return task_keys.error();
  std::vector<std::string> fresh;
  for (const auto& k : *task_keys)
    if (!state.tasks_recorded.count(id_of(k, tasks_prefix))) fresh.push_back(k);
  auto task_values = co_await mget(redis, fresh);
  if (!task_values.ok()) co_return task_values.error();
  for (size_t i = 0; i < fresh.size(); ++i) {
    const std::string id = id_of(fresh[i], tasks_prefix);
    const Value& raw = (*task_values)[i];
    if (!raw.is_string() || id.empty()) continue;  // gone meanwhile
    auto ctx = json::parse(raw.as_string(), false);
    Status st = Ok{};
    if (ctx.ok()) {
      st = co_await record_task(app, source, id, *ctx);  // (no co_await inside ?: with GCC 12)
    } else {
      st = make_error("event", "invalid", "tasks:" + id + " is not JSON");
    }
    if (!st.ok()) {
      if (st.error().group == "db") co_return st.error();  // retried next poll
      spdlog::warn("legacy observer: {} ({}); ignored", st.error().message, st.error().qualified());
      state.tasks_recorded.insert(id);  // malformed: not read again until a restart
      continue;
    }
    state.tasks_recorded.insert(id);
    ++out.tasks_recorded;
  }

  // 2. Responses not yet handled: attributed from legacy_tasks.
  auto response_keys = co_await scan_keys(redis, responses_prefix, cfg.max_keys_per_poll);
  if (!response_keys.ok()) co_return response_keys.error();
  std::vector<std::string> open_keys;
  Array open_ids;
  for (const auto& k : *response_keys) {
    std::string id = id_of(k, responses_prefix);
    if (!id.empty() && !state.responses_done.count(id)) {
      open_keys.push_back(k);
      open_ids.push_back(Value(std::move(id)));
    }
  }
  if (open_keys.empty()) co_return out;
  std::string q =
      "SELECT task_id, service, user_id, action, mission_instance_id, request_id, status FROM legacy_tasks "
      "WHERE task_id = ANY(SELECT jsonb_array_elements_text($1::jsonb))";
  Array params{Value(json::dump(Value(open_ids)))};
  auto known = co_await app.sql(std::move(q), std::move(params));
  if (!known.ok()) co_return known.error();
  std::unordered_map<std::string, Value> rows;
  for (const Value& r : known->rows) rows[str_or(r, "task_id")] = r;
  auto response_values = co_await mget(redis, open_keys);
  if (!response_values.ok()) co_return response_values.error();

  for (size_t i = 0; i < open_keys.size(); ++i) {
    const std::string id = open_ids[i].as_string();
    const Value& raw = (*response_values)[i];
    if (!raw.is_string()) continue;
    auto it = rows.find(id);
    const std::string status = it == rows.end() ? "" : str_or(it->second, "status");
    if (status == "emitted") {
      state.responses_done.insert(id);
      continue;
    }
    if (it == rows.end() || status == "orphaned") {
      if (status == "orphaned") continue;  // dead-lettered already; a task may still come
      auto first = state.orphans_seen.try_emplace(id, Clock::now()).first->second;
      if (Clock::now() - first < cfg.orphan_after) continue;
      // No task context after the grace period: dead-letter once.
      DeadLetter dl{kDlqStream, id, raw.as_string(), "responses:" + id + " has no task context (tasks:" + id +
                                                         " was never seen)",
                    "event.unattributed", 1};
      auto pool = events_pool(app);
      if (!pool.ok()) co_return pool.error();
      std::function<Result<Value>(pg::Tx&)> fn = [dl, id](pg::Tx& tx) -> Result<Value> {
        auto d = insert_dead_letter(tx, dl);
        if (!d.ok()) return d.error();
        auto r = tx.exec("INSERT INTO legacy_tasks (task_id, status) VALUES ($1, 'orphaned') ON CONFLICT DO NOTHING",
                         {id});
        if (!r.ok()) return r.error();
        return Value(true);
      };
      auto done = co_await (*pool)->transaction(std::move(fn));
      if (!done.ok()) co_return done.error();
      spdlog::warn("legacy observer: responses:{} has no task context; dead-lettered", id);
      state.orphans_seen.erase(id);
      ++out.dead_lettered;
      continue;
    }
    auto response = json::parse(raw.as_string(), false);
    Value body = response.ok() ? *response : obj({{"status", "failed"}, {"error", "unparseable response"}});
    auto ev = event_for(it->second, id, body);
    if (!ev.ok()) {
      spdlog::warn("legacy observer: responses:{} makes no valid event: {}", id, ev.error().message);
      state.responses_done.insert(id);
      continue;
    }
    std::string source_name = "redis:legacy", request_id = ev->request_id.value_or("");
    auto ingested = co_await ingest_event(app, *ev, std::move(source_name), std::move(request_id));
    if (!ingested.ok()) {
      // Recorded but not handed on, or not recorded: the next poll tries
      // again (the dedupe key makes it one event either way).
      spdlog::warn("legacy observer: responses:{} not ingested yet: {}", id, ingested.error().message);
      continue;
    }
    std::string mark = "UPDATE legacy_tasks SET status = 'emitted', responded_at = now(), event_id = $2 WHERE task_id = $1";
    Array mark_params{Value(id), Value(ingested->event_id)};
    auto marked = co_await app.sql(std::move(mark), std::move(mark_params));
    if (!marked.ok()) co_return marked.error();
    state.responses_done.insert(id);
    ++out.events_emitted;
  }
  // Bounded memory: forget and let Postgres answer again.
  if (state.responses_done.size() > 100'000) state.responses_done.clear();
  if (state.tasks_recorded.size() > 100'000) state.tasks_recorded.clear();
  co_return out;
}

Task<Status> run_legacy_observer(AppContext& app, LegacyConfig cfg) {
  if (!cfg.enabled) {
    spdlog::info("legacy observer: off (LEGACY_REDIS_OBSERVERS)");
    co_return Ok{};
  }
  if (!app.services().pg) {
    spdlog::info("legacy observer: no Postgres configured; off");
    co_return Ok{};
  }
  // The node's own client, and one client of our own per other URL.
  auto& io = static_cast<asio::io_context&>(asio::query(co_await asio::this_coro::executor, asio::execution::context));
  std::vector<std::unique_ptr<redis::Client>> own;
  std::vector<std::pair<redis::Client*, LegacySource>> sources;
  for (const auto& s : cfg.sources) {
    if (s.url.empty()) {
      if (app.services().redis) sources.emplace_back(app.services().redis, s);
      continue;
    }
    redis::Options o;
    o.url = s.url;
    own.push_back(std::make_unique<redis::Client>(io, o));
    sources.emplace_back(own.back().get(), s);
  }
  if (sources.empty()) {
    spdlog::info("legacy observer: no Redis configured; off");
    co_return Ok{};
  }
  spdlog::info("legacy observer: on, {} source(s), every {} ms", sources.size(), cfg.poll.count());
  std::vector<LegacyState> states(sources.size());
  while (!app.stopping()) {
    for (size_t i = 0; i < sources.size() && !app.stopping(); ++i) {
      auto r = co_await observe_legacy_once(app, *sources[i].first, sources[i].second, cfg, states[i]);
      if (!r.ok())
        spdlog::warn("legacy observer ({}): {} ({}); next poll retries", sources[i].second.url.empty() ? "node Redis" : sources[i].second.service,
                     r.error().message, r.error().qualified());
    }
    co_await nap_unless_stopping(app, cfg.poll);
  }
  co_return Ok{};
}

}  // namespace anvil::growqr
