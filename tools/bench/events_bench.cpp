// anvil-events-bench: GrowQR events from a Redis stream to recorded rows and
// mission actors, side by side with the plain loop that only records them
// (issue "GrowQR part 1", bench cell), in one run and one process.
//
//   anvil-events-bench [--events N] [--users U] [--timeout-s T]
//
// Needs ANVIL_POSTGRES_URL and ANVIL_REDIS_URL (exit 2 without them). Creates
// a private Postgres schema with the growqr migrations and two unique stream
// names; N stream entries (10 % of them duplicates: the same event id again,
// every 10th entry) are XADDed to each stream before anything is timed.
//   floor  one Postgres connection + one Redis connection: XREADGROUP COUNT 100
//          -> one INSERT ... ON CONFLICT (dedupe_key) DO NOTHING per entry
//          (autocommit, no multi-row insert) into floor_events (LIKE
//          grow_events INCLUDING ALL) -> one XACK per batch, until a read
//          comes back empty. Timed from the first read to that empty read.
//   anvil  the app's `events-consumer` service (AppHost::start with
//          GROWQR_* config pointing at the second stream): per entry, record
//          in grow_events + hand to userEventActor + XACK; userEventActor
//          calls the mission actor's applyGrowEvent, runs the projectors and
//          marks the row processed. Timed from AppHost::start until every
//          distinct event is `processed` (polled every 20 ms).
// Missions resolve through a bench registry (interview-to-offer ->
// benchMission), a copy of the events tests' testMission: idempotent by
// dedupeKey, counts calls and distinct effects. The real mission actors
// acknowledge-and-ignore events of missions that were never started, which
// would measure less work. Prints one JSON line.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "actors/growqr/events/events.hpp"
#include "anvil_migrations/growqr.hpp"
#include "base/value/json.hpp"
#include "runtime/app_host.hpp"
#include "runtime/test_node.hpp"
#include "storage/pg/migrations.hpp"
#include "storage/pg/pool.hpp"
#include "storage/redis/client.hpp"

using namespace anvil;
using namespace anvil::growqr;
using Clock = std::chrono::steady_clock;

namespace {

const char* kBenchMission = "benchMission";

const MissionType* bench_mission_registry(std::string_view type) {
  static const MissionType interview{"interview-to-offer", kBenchMission, "Interview to offer (bench)"};
  return type == interview.type ? &interview : nullptr;
}

Task<Result<Value>> apply_bench_mission_event(ActionContext& c, Array args) {
  Value& s = c.mutate_state();
  s["calls"] = s["calls"].as_int() + 1;
  const std::string key = args.at(0).find("dedupeKey")->as_string();
  if (!s["seen"].find(key)) {
    s["seen"][key] = true;
    s["effects"] = s["effects"].as_int() + 1;
  }
  co_return obj({{"dedupeKey", key}});
}

ActorDefinition bench_mission_actor() {
  ActorDefinition def(kBenchMission);
  def.initial_state(obj({{"calls", 0}, {"effects", 0}, {"seen", Object{}}}))
      .async_action(kMissionEventAction,
                    [](ActionContext& c, Array args) { return apply_bench_mission_event(c, std::move(args)); })
      .action("stats", [](ActionContext& c, const Array&) -> Result<Value> {
        return obj({{"calls", *c.state().find("calls")}, {"effects", *c.state().find("effects")}});
      });
  return def;
}

std::string url_with_schema(const std::string& url, const std::string& schema) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
}

// The stream's entries: distinct events with every 10th entry a duplicate of
// an earlier one.
std::vector<std::string> make_entries(const std::string& tag, size_t n, size_t users, size_t* distinct) {
  std::vector<std::string> out;
  out.reserve(n);
  size_t made = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % 10 == 9 && made > 0) {
      out.push_back(out[(i * 7919) % out.size()]);  // an earlier entry, maybe itself a duplicate
      continue;
    }
    const size_t u = made % users;
    Value e = obj({{"id", "ev-" + tag + "-" + std::to_string(made)},
                   {"type", "service.session.updated"},
                   {"userId", "u" + std::to_string(u)},
                   {"occurredAt", "2026-03-01T10:00:00Z"},
                   {"missionType", "interview-to-offer"},
                   {"missionInstanceId", "m" + std::to_string(u)},
                   {"payload", obj({{"sessionId", "s" + std::to_string(made)}, {"n", int64_t(made)}})}});
    out.push_back(json::dump(e));
    ++made;
  }
  *distinct = made;
  return out;
}

asio::awaitable<Status> xadd_all(redis::Client& redis, std::string stream, const std::vector<std::string>* entries) {
  for (const auto& text : *entries) {
    std::vector<std::pair<std::string, std::string>> fields{{"event", text}};
    std::string s = stream;
    auto r = co_await redis.xadd(std::move(s), std::move(fields));
    if (!r.ok()) co_return r.error();
  }
  co_return Ok{};
}

struct FloorOut {
  int64_t read = 0, inserted = 0;
  std::string error;
};

// The floor: XREADGROUP COUNT 100 -> INSERT ... ON CONFLICT DO NOTHING per
// entry -> XACK the batch, until the stream is drained.
asio::awaitable<void> floor_loop(redis::Client& redis, pg::Pool& pool, std::string stream, FloorOut* out) {
  const std::string group = "floor", consumer = "floor-1", source = "redis:" + stream;
  {
    std::string s = stream, g = group, start = "0";
    auto st = co_await redis.xgroup_create(std::move(s), std::move(g), std::move(start), true);
    if (!st.ok()) {
      out->error = st.error().message;
      co_return;
    }
  }
  for (;;) {
    std::string g = group, c = consumer, s = stream, id = ">";
    auto batch = co_await redis.xreadgroup(std::move(g), std::move(c), std::move(s), 100, std::nullopt, std::move(id));
    if (!batch.ok()) {
      out->error = batch.error().message;
      co_return;
    }
    if (batch->empty()) co_return;
    std::vector<std::string> ids;
    ids.reserve(batch->size());
    for (auto& e : *batch) {
      ++out->read;
      ids.push_back(e.id);
      const std::string* text = nullptr;
      for (const auto& [k, v] : e.fields)
        if (k == "event") text = &v;
      if (!text) continue;
      auto ev = json::parse(*text, false);
      if (!ev.ok() || !ev->is_object()) continue;
      auto str = [&](const char* k) -> Value {
        const Value* v = ev->find(k);
        return v && v->is_string() ? *v : Value(nullptr);
      };
      const Value* payload = ev->find("payload");
      std::string sql =
          "INSERT INTO floor_events (dedupe_key, user_id, type, source, mission_instance_id, payload, occurred_at) "
          "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::timestamptz) ON CONFLICT (dedupe_key) DO NOTHING";
      Array params{str("id"), str("userId"), str("type"), Value(source), str("missionInstanceId"),
                   Value(payload ? json::dump(*payload) : std::string("{}")), str("occurredAt")};
      auto r = co_await pool.query(std::move(sql), std::move(params));
      if (!r.ok()) {
        out->error = r.error().message;
        co_return;
      }
      out->inserted += r->affected;
    }
    std::string s2 = stream, g2 = group;
    auto acked = co_await redis.xack(std::move(s2), std::move(g2), std::move(ids));
    if (!acked.ok()) {
      out->error = acked.error().message;
      co_return;
    }
  }
}

int64_t count_of(pg::Pool& pool, const std::string& sql) {
  auto r = pg::query_sync(pool, sql);
  if (!r.ok() || r->rows.empty()) return -1;
  return r->rows[0].as_object().front().second.as_int();
}

std::string esc(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) o += ch;
  }
  return o.substr(0, 200);
}

}  // namespace

int main(int argc, char** argv) {
  size_t events = 20'000, users = 100;
  int timeout_s = 600;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (i + 1 >= argc) k = "?";
    long v = i + 1 < argc ? std::atol(argv[i + 1]) : 0;
    if (k == "--events" && v > 0) events = size_t(v);
    else if (k == "--users" && v > 0) users = size_t(v);
    else if (k == "--timeout-s" && v > 0) timeout_s = int(v);
    else {
      std::fprintf(stderr, "usage: anvil-events-bench [--events N] [--users U] [--timeout-s T]\n");
      return 2;
    }
  }
  const char* pg_env = std::getenv("ANVIL_POSTGRES_URL");
  const char* redis_env = std::getenv("ANVIL_REDIS_URL");
  if (!pg_env || !*pg_env || !redis_env || !*redis_env) {
    std::fprintf(stderr,
                 "anvil-events-bench: ANVIL_POSTGRES_URL and ANVIL_REDIS_URL must be set "
                 "(eval \"$(scripts/services.sh env)\")\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  const std::string base_url = pg_env, redis_url = redis_env;
  const std::string tag = std::to_string(::getpid()) + "_" +
                          std::to_string(std::chrono::system_clock::now().time_since_epoch().count() / 1000);
  const std::string schema = "bench_events_" + tag;
  const std::string floor_stream = "anvil-bench:grow:events:floor:" + tag;
  const std::string anvil_stream = "anvil-bench:grow:events:anvil:" + tag;

  pg::Pool admin(pg::PoolOptions{base_url, 1});
  if (auto r = pg::query_sync(admin, "CREATE SCHEMA " + schema); !r.ok()) {
    std::fprintf(stderr, "anvil-events-bench: CREATE SCHEMA: %s\n", r.error().message.c_str());
    return 1;
  }
  // Dropped on every way out, early errors included.
  struct DropSchema {
    pg::Pool& admin;
    std::string schema;
    ~DropSchema() { (void)pg::query_sync(admin, "DROP SCHEMA IF EXISTS " + schema + " CASCADE"); }
  } drop_schema{admin, schema};
  int rc = 0;
  const std::string dir = testing::temp_dir("events-bench");
  {
    const std::string url = url_with_schema(base_url, schema);
    pg::Pool bench_pool(pg::PoolOptions{url, 1});  // setup and polling
    pg::Pool floor_pool(pg::PoolOptions{url, 1});  // the floor's one connection
    pg::Pool app_pool(pg::PoolOptions{url, 4});    // the app's
    if (auto st = pg::apply_migrations(bench_pool, "growqr", pg::embedded::growqr()); !st.ok()) {
      std::fprintf(stderr, "anvil-events-bench: migrations: %s\n", st.error().message.c_str());
      return 1;
    }
    if (auto r = pg::query_sync(bench_pool, "CREATE TABLE floor_events (LIKE grow_events INCLUDING ALL)"); !r.ok()) {
      std::fprintf(stderr, "anvil-events-bench: floor table: %s\n", r.error().message.c_str());
      return 1;
    }

    size_t distinct = 0;
    const auto entries = make_entries(tag, events, users, &distinct);

    EventsOptions o;
    o.resolve_mission = bench_mission_registry;
    AppDefinition app("growqr-events-bench");
    add_events(app, std::move(o));
    Registry registry;
    for (auto& d : app.actors()) registry.add(d);
    registry.add(bench_mission_actor());

    testing::Node node(dir, registry);
    redis::Client app_redis(node.io(), redis::Options{redis_url});
    redis::Client floor_redis(node.io(), redis::Options{redis_url});
    Services services;
    services.pg = &app_pool;
    services.redis = &app_redis;
    node.rt().set_services(services);

    std::string error;
    for (const auto* stream : {&floor_stream, &anvil_stream})
      if (auto st = node.run(xadd_all(floor_redis, *stream, &entries)); !st.ok()) error = "XADD: " + st.error().message;

    // 1. floor
    FloorOut fo;
    double floor_s = 0;
    if (error.empty()) {
      const auto t0 = Clock::now();
      node.run(floor_loop(floor_redis, floor_pool, floor_stream, &fo));
      floor_s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!fo.error.empty()) error = "floor: " + fo.error;
    }
    const int64_t floor_rows = count_of(bench_pool, "SELECT count(*) FROM floor_events");

    // 2. anvil: the app's events-consumer service on the second stream.
    double anvil_s = 0;
    int64_t processed = 0, effects = 0, calls = 0, dlq = 0;
    bool timed_out = false;
    const std::map<std::string, std::string> config{{"GROWQR_ENV", "development"},
                                                    {"GROWQR_STREAM", anvil_stream},
                                                    {"GROWQR_DLQ_STREAM", anvil_stream + ":dlq"},
                                                    {"GROWQR_GROUP", "anvil"},
                                                    {"GROWQR_CONSUMER", "bench-1"},
                                                    {"GROWQR_BLOCK_MS", "100"}};
    AppHost host(node.rt(), config);
    host.add(app);
    if (error.empty()) {
      const auto t0 = Clock::now();
      const auto until = t0 + std::chrono::seconds(timeout_s);
      host.start();
      for (;;) {
        processed = count_of(bench_pool, "SELECT count(*) FROM grow_events WHERE processing_status = 'processed'");
        if (processed >= int64_t(distinct)) break;
        if (Clock::now() > until) {
          timed_out = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      anvil_s = std::chrono::duration<double>(Clock::now() - t0).count();
      host.stop();
      dlq = count_of(bench_pool, "SELECT count(*) FROM grow_events_dlq");
      for (size_t u = 0; u < users && u < distinct; ++u) {
        auto id = node.get_or_create(kBenchMission, {"u" + std::to_string(u), "m" + std::to_string(u)});
        auto st = node.call(id, "stats");
        if (st.ok()) {
          effects += st->find("effects")->as_int();
          calls += st->find("calls")->as_int();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the consumer's 100 ms block ends
    }
    for (const auto* stream : {&floor_stream, &anvil_stream}) {
      std::string s = *stream, s2 = *stream + ":dlq";
      std::vector<std::string> del{"DEL", s, s2};
      (void)node.run(floor_redis.command(std::move(del)));
    }

    const size_t dups = events - distinct;
    const double floor_ps = floor_s > 0 ? double(fo.read) / floor_s : 0;
    const double anvil_ps = anvil_s > 0 && !timed_out ? double(events) / anvil_s : 0;
    std::printf(
        "{\"events\":%zu,\"duplicates\":%zu,\"distinct\":%zu,\"users\":%zu,"
        "\"floor\":{\"seconds\":%.3f,\"per_second\":%.1f,\"read\":%lld,\"rows\":%lld,"
        "\"insert\":\"one INSERT ... ON CONFLICT (dedupe_key) DO NOTHING per entry, autocommit\","
        "\"xack\":\"one per batch of 100\"},"
        "\"anvil\":{\"seconds\":%.3f,\"per_second\":%.1f,\"processed\":%lld,\"timed_out\":%s,"
        "\"mission_calls\":%lld,\"mission_effects\":%lld,\"dlq\":%lld,\"consumer_batch\":32},"
        "\"ratio\":%.2f,\"ratio_means\":\"floor per_second / anvil per_second\",\"error\":%s}\n",
        events, dups, distinct, users, floor_s, floor_ps, (long long)fo.read, (long long)floor_rows, anvil_s, anvil_ps,
        (long long)processed, timed_out ? "true" : "false", (long long)calls, (long long)effects, (long long)dlq,
        anvil_ps > 0 ? floor_ps / anvil_ps : 0.0, error.empty() ? "null" : ("\"" + esc(error) + "\"").c_str());
    if (!error.empty() || timed_out || processed != int64_t(distinct) || floor_rows != int64_t(distinct)) rc = 1;
  }
  std::filesystem::remove_all(dir);
  return rc;
}
