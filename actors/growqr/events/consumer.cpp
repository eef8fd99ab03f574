#include "actors/growqr/events/consumer.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <map>

#include "actors/growqr/events/event_store.hpp"
#include "actors/growqr/events/ingest.hpp"
#include "actors/growqr/events/log_fields.hpp"
#include "base/value/json.hpp"
#include "storage/redis/client.hpp"

namespace anvil::growqr {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Retry {
  Clock::time_point due;
  int64_t deliveries = 0;
};

struct ConsumerState {
  AppContext& app;
  ConsumerConfig cfg;
  redis::Client& redis;
  std::map<std::string, Retry> retries{};  // entries of ours that failed, by id
  bool recover = true;                    // re-read our own pending entries (start, after a Redis error)
  bool group_ready = false;
  bool died = false;                      // the test hook fired
  bool db_down = false;                   // the last record failed with db.unavailable
  int64_t records = 0;
  Clock::time_point last_claim{};
};

milliseconds backoff_for(const ConsumerConfig& cfg, int64_t deliveries) {
  milliseconds d = cfg.retry_backoff;
  for (int64_t i = 1; i < deliveries && d < cfg.max_retry_backoff; ++i) d *= 2;
  return std::min(d, cfg.max_retry_backoff);
}

std::string entry_fields(const ConsumerState& s, const std::string& id, int64_t deliveries) {
  LogFields f;
  f.retry_attempt = deliveries;
  return "stream=" + s.cfg.stream + " messageId=" + id + " " + log_fields(f);
}

void retry_later(ConsumerState& s, const std::string& id, int64_t deliveries) {
  s.retries[id] = Retry{Clock::now() + backoff_for(s.cfg, deliveries), deliveries};
}

Task<void> ack(ConsumerState& s, std::string id) {
  std::string stream = s.cfg.stream, group = s.cfg.group;
  std::vector<std::string> ids{id};
  auto r = co_await s.redis.xack(std::move(stream), std::move(group), std::move(ids));
  if (!r.ok()) {
    // Still pending: recovery re-reads it; recording again is a duplicate.
    spdlog::warn("events consumer: XACK failed ({}), will re-process {}", r.error().message, entry_fields(s, id, -1));
    s.recover = true;
  }
  s.retries.erase(id);
}

// Dead-letters one entry: table row (idempotent), copy on the DLQ stream
// (once), then XACK. Any failure leaves the entry pending for a retry.
Task<void> dead_letter(ConsumerState& s, redis::StreamEntry entry, std::string raw, Error why, int64_t attempts) {
  auto pool = events_pool(s.app);
  if (!pool.ok()) {
    retry_later(s, entry.id, attempts);
    co_return;
  }
  DeadLetter dl{s.cfg.stream, entry.id, raw, why.message, why.qualified(), std::max<int64_t>(1, attempts)};
  std::function<Result<Value>(pg::Tx&)> fn = [dl](pg::Tx& tx) -> Result<Value> {
    auto r = insert_dead_letter(tx, dl);
    if (!r.ok()) return r.error();
    return obj({{"id", r->id}, {"dlqStreamId", r->dlq_stream_id ? Value(*r->dlq_stream_id) : Value(nullptr)}});
  };
  auto row = co_await (*pool)->transaction(std::move(fn));
  if (!row.ok()) {
    spdlog::warn("events consumer: cannot write the dead letter ({}), retrying {}", row.error().message,
                 entry_fields(s, entry.id, attempts));
    retry_later(s, entry.id, attempts);
    co_return;
  }
  const int64_t dlq_id = row->find("id")->as_int();
  if (!row->find("dlqStreamId")->is_string()) {
    std::string dlq_stream = s.cfg.dlq_stream;
    std::vector<std::pair<std::string, std::string>> fields{{"event", raw},
                                                            {"error", why.message},
                                                            {"errorCode", why.qualified()},
                                                            {"attempts", std::to_string(dl.attempts)},
                                                            {"stream", s.cfg.stream},
                                                            {"messageId", entry.id},
                                                            {"dlqId", std::to_string(dlq_id)}};
    auto added = co_await s.redis.xadd(std::move(dlq_stream), std::move(fields));
    if (!added.ok()) {
      spdlog::warn("events consumer: cannot XADD to {} ({}), retrying {}", s.cfg.dlq_stream, added.error().message,
                   entry_fields(s, entry.id, attempts));
      retry_later(s, entry.id, attempts);
      co_return;
    }
    std::string mark = "UPDATE grow_events_dlq SET dlq_stream_id = $2 WHERE id = $1";
    Array params{Value(dlq_id), *added};
    auto marked = co_await (*pool)->query(std::move(mark), std::move(params));
    if (!marked.ok())
      spdlog::warn("events consumer: dead letter {} on the DLQ stream but not marked ({})", dlq_id,
                   marked.error().message);
  }
  spdlog::error("events consumer: dead-lettered ({}: {}) as dlqId={} {}", why.qualified(), why.message, dlq_id,
                entry_fields(s, entry.id, attempts));
  co_await ack(s, entry.id);
}

Task<void> handle(ConsumerState& s, redis::StreamEntry entry, int64_t deliveries) {
  if (s.app.stopping() || s.died) co_return;
  if (entry.fields.empty()) {  // deleted from the stream while pending: nothing to record
    co_await ack(s, entry.id);
    co_return;
  }
  const std::string* event_text = nullptr;
  for (const auto& [k, v] : entry.fields)
    if (k == "event") event_text = &v;
  std::string raw;
  if (event_text) {
    raw = *event_text;
  } else {
    Value all = Object{};
    for (const auto& [k, v] : entry.fields) all[k] = v;
    raw = json::dump(all);
  }
  if (!event_text) {
    Error e = make_error("event", "invalid", "The stream entry has no `event` field.", obj({{"field", "event"}}));
    co_await dead_letter(s, std::move(entry), std::move(raw), std::move(e), deliveries);
    co_return;
  }
  auto parsed = json::parse(raw, false);
  if (!parsed.ok()) {
    Error e = make_error("event", "invalid", "The `event` field is not JSON: " + parsed.error().message,
                         obj({{"field", "event"}}));
    co_await dead_letter(s, std::move(entry), std::move(raw), std::move(e), deliveries);
    co_return;
  }
  auto ev = normalize_grow_event(*parsed);
  if (!ev.ok()) {
    co_await dead_letter(s, std::move(entry), std::move(raw), ev.error(), deliveries);
    co_return;
  }
  if (deliveries > s.cfg.max_deliveries) {
    // E.g. claimed from consumers that died while processing it.
    Error e = make_error("events", "budget_spent",
                         "Delivered " + std::to_string(deliveries) + " times (budget " +
                             std::to_string(s.cfg.max_deliveries) + ") without being recorded.");
    co_await dead_letter(s, std::move(entry), std::move(raw), std::move(e), deliveries);
    co_return;
  }
  std::string source = "redis:" + s.cfg.stream;
  std::string request_id = ev->request_id ? *ev->request_id : std::string();
  GrowEvent event = *ev;
  auto out = co_await ingest_event(s.app, std::move(event), std::move(source), std::move(request_id));
  s.db_down = !out.ok() && out.error().qualified() == "db.unavailable";
  if (out.ok()) {
    ++s.records;
    if (s.cfg.stop_after_records_without_ack >= 0 && s.records >= s.cfg.stop_after_records_without_ack) {
      spdlog::warn("events consumer {}: test hook: stopping after a record, before its XACK {}", s.cfg.consumer,
                   entry_fields(s, entry.id, deliveries));
      s.died = true;
      co_return;
    }
    co_await ack(s, entry.id);
    co_return;
  }
  if (deliveries >= s.cfg.max_deliveries) {
    co_await dead_letter(s, std::move(entry), std::move(raw), out.error(), deliveries);
    co_return;
  }
  LogFields f;
  f.user_id = ev->user_id;
  f.idempotency_key = ev->dedupe_key;
  spdlog::warn("events consumer: not recorded ({}: {}), retry in {} ms {} {}", out.error().qualified(),
               out.error().message, backoff_for(s.cfg, deliveries).count(), entry_fields(s, entry.id, deliveries),
               log_fields(f));
  retry_later(s, entry.id, deliveries);
}

// Delivery counts of `entries` (all pending for this consumer) from XPENDING.
Task<Result<std::map<std::string, int64_t>>> deliveries_of(ConsumerState& s,
                                                           const std::vector<redis::StreamEntry>& entries) {
  std::map<std::string, int64_t> out;
  if (entries.empty()) co_return out;
  std::vector<std::string> argv{"XPENDING", s.cfg.stream, s.cfg.group, entries.front().id, entries.back().id,
                                std::to_string(entries.size() + 16), s.cfg.consumer};
  auto r = co_await s.redis.command(std::move(argv));
  if (!r.ok()) co_return r.error();
  if (r->is_array())
    for (const auto& row : r->as_array())
      if (row.is_array() && row.as_array().size() >= 4 && row.as_array()[0].is_string() && row.as_array()[3].is_int())
        out[row.as_array()[0].as_string()] = row.as_array()[3].as_int();
  co_return out;
}

Task<Status> handle_batch(ConsumerState& s, std::vector<redis::StreamEntry> entries, bool fresh) {
  std::map<std::string, int64_t> counts;
  if (!fresh) {
    auto d = co_await deliveries_of(s, entries);
    if (!d.ok()) co_return d.error();
    counts = std::move(*d);
  }
  for (auto& e : entries) {
    if (s.app.stopping() || s.died) break;
    int64_t n = 1;
    if (!fresh) {
      auto it = counts.find(e.id);
      if (it == counts.end()) continue;  // no longer ours (acknowledged or claimed meanwhile)
      n = it->second;
    }
    co_await handle(s, std::move(e), n);
  }
  co_return Ok{};
}

// Our own pending entries (after a start or a Redis error), except retries not yet due.
Task<Status> recover_own(ConsumerState& s) {
  std::string cursor = "0";
  for (int page = 0; page < 1000 && !s.app.stopping() && !s.died; ++page) {
    std::string group = s.cfg.group, consumer = s.cfg.consumer, stream = s.cfg.stream, id = cursor;
    auto r = co_await s.redis.xreadgroup(std::move(group), std::move(consumer), std::move(stream), s.cfg.batch,
                                         std::nullopt, std::move(id));
    if (!r.ok()) co_return r.error();
    if (r->empty()) break;
    cursor = r->back().id;
    std::vector<redis::StreamEntry> due;
    for (auto& e : *r) {
      auto it = s.retries.find(e.id);
      if (it == s.retries.end() || it->second.due <= Clock::now()) due.push_back(std::move(e));
    }
    auto st = co_await handle_batch(s, std::move(due), false);
    if (!st.ok()) co_return st;
  }
  s.recover = false;
  co_return Ok{};
}

Task<Status> run_due_retries(ConsumerState& s) {
  std::vector<std::string> due;
  for (const auto& [id, r] : s.retries)
    if (r.due <= Clock::now()) due.push_back(id);
  for (const auto& id : due) {
    if (s.app.stopping() || s.died) break;
    // XCLAIM to ourselves redelivers it and counts the delivery.
    std::vector<std::string> argv{"XCLAIM", s.cfg.stream, s.cfg.group, s.cfg.consumer, "0", id};
    auto r = co_await s.redis.command(std::move(argv));
    if (!r.ok()) co_return r.error();
    std::vector<redis::StreamEntry> entries;
    if (r->is_array())
      for (const auto& item : r->as_array()) {
        if (!item.is_array() || item.as_array().size() < 2 || !item.as_array()[0].is_string()) continue;
        redis::StreamEntry e;
        e.id = item.as_array()[0].as_string();
        if (item.as_array()[1].is_array()) {
          const Array& kv = item.as_array()[1].as_array();
          for (size_t i = 0; i + 1 < kv.size(); i += 2)
            if (kv[i].is_string() && kv[i + 1].is_string()) e.fields.emplace_back(kv[i].as_string(), kv[i + 1].as_string());
        }
        entries.push_back(std::move(e));
      }
    if (entries.empty()) {
      s.retries.erase(id);  // acknowledged elsewhere or trimmed from the stream
      continue;
    }
    auto st = co_await handle_batch(s, std::move(entries), false);
    if (!st.ok()) co_return st;
  }
  co_return Ok{};
}

// Entries idle longer than claim_idle in any consumer (a dead one's) become ours.
Task<Status> claim_idle(ConsumerState& s) {
  std::string cursor = "0-0";
  for (int page = 0; page < 100 && !s.app.stopping() && !s.died; ++page) {
    std::string stream = s.cfg.stream, group = s.cfg.group, consumer = s.cfg.consumer, start = cursor;
    auto r = co_await s.redis.xautoclaim(std::move(stream), std::move(group), std::move(consumer), s.cfg.claim_idle,
                                         std::move(start), s.cfg.batch);
    if (!r.ok()) co_return r.error();
    if (!r->second.empty())
      spdlog::info("events consumer {}: claimed {} idle entries of {}", s.cfg.consumer, r->second.size(),
                   s.cfg.stream);
    auto st = co_await handle_batch(s, std::move(r->second), false);
    if (!st.ok()) co_return st;
    cursor = r->first;
    if (cursor == "0-0") break;
  }
  s.last_claim = Clock::now();
  co_return Ok{};
}

Task<Status> cycle(ConsumerState& s) {
  if (!s.group_ready) {
    std::string stream = s.cfg.stream, group = s.cfg.group, start = "0";
    auto st = co_await s.redis.xgroup_create(std::move(stream), std::move(group), std::move(start), true);
    if (!st.ok()) co_return st;
    s.group_ready = true;
  }
  if (s.recover) {
    auto st = co_await recover_own(s);
    if (!st.ok()) co_return st;
  }
  if (auto st = co_await run_due_retries(s); !st.ok()) co_return st;
  const milliseconds claim_every = std::max<milliseconds>(milliseconds(100), s.cfg.claim_idle / 2);
  if (Clock::now() - s.last_claim >= claim_every) {
    auto st = co_await claim_idle(s);
    if (!st.ok()) co_return st;
  }
  if (s.app.stopping() || s.died) co_return Ok{};
  if (s.db_down && !s.retries.empty()) {
    // Postgres is down: taking new entries would only spend their delivery
    // budget. Wait for the earliest retry instead.
    milliseconds wait = s.cfg.block;
    for (const auto& [id, r] : s.retries)
      wait = std::min(wait, std::chrono::duration_cast<milliseconds>(r.due - Clock::now()));
    co_await nap_unless_stopping(s.app, std::max(wait, milliseconds(1)));
    co_return Ok{};
  }
  milliseconds block = s.cfg.block;
  for (const auto& [id, r] : s.retries)
    block = std::min(block, std::chrono::duration_cast<milliseconds>(r.due - Clock::now()));
  block = std::min(block, std::chrono::duration_cast<milliseconds>(s.last_claim + claim_every - Clock::now()));
  if (block < milliseconds(1)) block = milliseconds(1);
  std::string group = s.cfg.group, consumer = s.cfg.consumer, stream = s.cfg.stream, id = ">";
  auto fresh = co_await s.redis.xreadgroup(std::move(group), std::move(consumer), std::move(stream), s.cfg.batch,
                                           block, std::move(id));
  if (!fresh.ok()) co_return fresh.error();
  co_return co_await handle_batch(s, std::move(*fresh), true);
}

}  // namespace

static Task<void> nap(milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

Task<void> nap_unless_stopping(const AppContext& app, milliseconds d) {
  const auto until = Clock::now() + d;
  while (!app.stopping() && Clock::now() < until)
    co_await nap(std::min<milliseconds>(milliseconds(100), std::chrono::duration_cast<milliseconds>(until - Clock::now()) + milliseconds(1)));
}


int64_t positive_config(const AppContext& app, std::string_view key, int64_t dflt) {
  auto v = app.config(key);
  if (!v || v->empty()) return dflt;
  try {
    size_t used = 0;
    long long n = std::stoll(*v, &used);
    if (used == v->size() && n > 0) return n;
  } catch (const std::exception&) {
  }
  spdlog::warn("events: config {}={} is not a positive integer; using {}", key, *v, dflt);
  return dflt;
}

namespace {

std::string default_consumer_name() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "anvil");
  return std::string(host) + "-" + std::to_string(::getpid());
}

}  // namespace

ConsumerConfig consumer_config(const AppContext& app) {
  ConsumerConfig c;
  auto str = [&](std::string_view key, std::string& out) {
    if (auto v = app.config(key); v && !v->empty()) out = *v;
  };
  str("GROWQR_STREAM", c.stream);
  str("GROWQR_GROUP", c.group);
  str("GROWQR_DLQ_STREAM", c.dlq_stream);
  c.consumer = default_consumer_name();
  str("GROWQR_CONSUMER", c.consumer);
  c.max_deliveries = positive_config(app, "GROWQR_MAX_DELIVERIES", c.max_deliveries);
  c.claim_idle = milliseconds(positive_config(app, "GROWQR_CLAIM_IDLE_MS", c.claim_idle.count()));
  c.block = milliseconds(positive_config(app, "GROWQR_BLOCK_MS", c.block.count()));
  c.retry_backoff = milliseconds(positive_config(app, "GROWQR_RETRY_BACKOFF_MS", c.retry_backoff.count()));
  c.batch = static_cast<size_t>(positive_config(app, "GROWQR_BATCH", static_cast<int64_t>(c.batch)));
  return c;
}

Task<Status> run_consumer(AppContext& app, ConsumerConfig cfg) {
  redis::Client* redis = app.services().redis;
  if (!redis) {
    spdlog::info("events consumer: no Redis configured; the stream consumer is off");
    co_return Ok{};
  }
  ConsumerState s{app, std::move(cfg), *redis, {}};
  spdlog::info("events consumer {}: stream={} group={} dlq={} maxDeliveries={} claimIdleMs={}", s.cfg.consumer,
               s.cfg.stream, s.cfg.group, s.cfg.dlq_stream, s.cfg.max_deliveries, s.cfg.claim_idle.count());
  milliseconds pause(100);
  while (!app.stopping() && !s.died) {
    Status st = co_await cycle(s);
    if (st.ok()) {
      pause = milliseconds(100);
      continue;
    }
    const Value* code = st.error().metadata ? st.error().metadata->find("reply_code") : nullptr;
    if (code && code->is_string() && code->as_string() == "NOGROUP") s.group_ready = false;
    s.recover = true;
    spdlog::warn("events consumer {}: {} ({}); retrying in {} ms", s.cfg.consumer, st.error().message,
                 st.error().qualified(), pause.count());
    co_await nap_unless_stopping(app, pause);
    pause = std::min(pause * 2, milliseconds(5'000));
  }
  spdlog::info("events consumer {}: stopped", s.cfg.consumer);
  co_return Ok{};
}

Task<Result<int64_t>> sweep_pending_once(AppContext& app, milliseconds age) {
  auto pool = events_pool(app);
  if (!pool.ok()) co_return pool.error();
  std::string select =
      "SELECT id::text AS id, dedupe_key, user_id, type, mission_instance_id, mission_type, payload, event, "
      "occurred_at FROM grow_events WHERE processing_status = 'pending' "
      "AND received_at < now() - ($1::int8 * interval '1 millisecond') ORDER BY received_at LIMIT 200";
  Array params{Value(static_cast<int64_t>(age.count()))};
  auto rows = co_await (*pool)->query(std::move(select), std::move(params));
  if (!rows.ok()) co_return rows.error();
  int64_t handed = 0;
  for (const Value& row : rows->rows) {
    Value ev = event_of_row(row);
    auto r = co_await hand_to_user_actor(app, ev, false);
    if (r.ok()) ++handed;
    spdlog::info("events sweep: re-handed a pending event ({}) {}", r.ok() ? "ok" : r.error().message,
                 event_log_fields(ev, ev.find("eventId")->as_string()));
  }
  co_return handed;
}

Task<Status> run_pending_sweep(AppContext& app, milliseconds interval, milliseconds age) {
  if (!app.services().pg) co_return Ok{};
  while (!app.stopping()) {
    co_await nap_unless_stopping(app, interval);
    if (app.stopping()) break;
    auto r = co_await sweep_pending_once(app, age);
    if (!r.ok()) spdlog::warn("events sweep: {}", r.error().message);
  }
  co_return Ok{};
}

}  // namespace anvil::growqr
