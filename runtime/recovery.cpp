// What survives a restart: load() restarts the work that was pending
// (schedules, queue drains, running workflows) from a background scan;
// shutdown() puts every awake actor to sleep, persisted.
#include <spdlog/spdlog.h>

#include <chrono>

#include "runtime/actor_id.hpp"
#include "runtime/core.hpp"
#include "runtime/instance.hpp"

namespace anvil {
Status RuntimeCore::load() {
  // Nothing of the directory is read here: an actor's entry is read from
  // storage on its first use, so a restart serves at once whatever the
  // number of actors. What was pending restarts from a background scan.
  recovery_ = std::thread([this] { recover(); });
  return Ok{};
}

void RuntimeCore::recover() {
  const auto started = std::chrono::steady_clock::now();
  size_t drains = 0, workflows = 0;
  Status st = Ok{};
  // Undelivered queue messages are processed without waiting for a request:
  // one drain per actor, the scan skipping to the next actor's range.
  std::string next;
  for (;;) {
    std::string actor;
    st = store_.scan_from(storage::Family::kQueue, next, [&](std::string_view k, std::string_view) {
      if (k.size() >= actor_id_length()) actor.assign(k.substr(0, actor_id_length()));
      return actor.empty();
    });
    if (!st.ok()) {
      spdlog::error("recovery: reading queues failed: {}", st.error().message);
      break;
    }
    if (actor.empty() || stopping_.load(std::memory_order_relaxed)) break;
    schedule_drain(actor);
    ++drains;
    next = storage::prefix_end(actor);
    if (next.empty()) break;
  }
  // Workflows that were running resume without waiting for a request: the
  // root record (the actor id alone, first in its range) of each actor.
  next.clear();
  for (;;) {
    std::string actor, root;
    st = store_.scan_from(storage::Family::kWorkflow, next, [&](std::string_view k, std::string_view v) {
      if (k.size() < actor_id_length()) return true;
      actor.assign(k.substr(0, actor_id_length()));
      if (k.size() == actor_id_length()) root.assign(v);
      return false;
    });
    if (!st.ok() || actor.empty() || stopping_.load(std::memory_order_relaxed)) break;
    if (!root.empty()) {
      auto row = storage::decode_workflow_row(root);
      if (row.ok() && row->status == "running") {
        schedule_workflow(actor);
        ++workflows;
      }
    }
    next = storage::prefix_end(actor);
    if (next.empty()) break;
  }
  if (!st.ok()) spdlog::error("recovery: reading workflows failed: {}", st.error().message);
  spdlog::info("recovery: {} queue drains, {} workflows resumed in {} ms", drains, workflows,
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                   .count());
  // Schedules survive restarts: the time-ordered index is swept now
  // (overdue ones fire at once) and then every kSweepEveryMs, arming what
  // comes due within the horizon.
  build_due_index();
  std::string from;  // where a pass cut short at its bound goes on
  for (;;) {
    const bool complete = sweep_due(from);
    std::unique_lock lk(stop_mu_);
    if (stop_cv_.wait_for(lk, std::chrono::milliseconds(complete ? kSweepEveryMs : 100),
                          [&] { return stopping_.load(); }))
      return;
  }
}

bool RuntimeCore::sweep_due(std::string& from) {
  constexpr size_t kBatch = 100'000;  // timers armed per pass at most
  const int64_t horizon = now_ms() + kAlarmHorizonMs;
  std::vector<std::pair<std::string, Alarm>> due;
  storage::DueEntry d;
  std::string last;
  auto st = store_.scan_from(storage::Family::kDue, from, [&](std::string_view k, std::string_view) {
    if (stopping_.load(std::memory_order_relaxed) || due.size() >= kBatch) return false;
    if (!storage::parse_due_key(k, actor_id_length(), d)) return true;
    if (d.due_ts > horizon) return false;
    due.emplace_back(d.actor_id, Alarm{d.schedule_id, d.due_ts});
    last.assign(k);
    return true;
  });
  if (!st.ok()) spdlog::error("recovery: reading the schedule index failed: {}", st.error().message);
  for (const auto& [actor, alarm] : due) arm_alarm(actor, alarm);
  // Cut short: the next pass starts after the last entry read (those before
  // it are armed). A complete pass: the next starts at the beginning again,
  // so an alarm whose turn failed is armed again.
  const bool complete = due.size() < kBatch;
  from = complete ? std::string() : last + '\0';
  return complete;
}

void RuntimeCore::build_due_index() {
  auto marker = store_.get(storage::Family::kDue, storage::kDueIndexMarker);
  if (!marker.ok() || marker->has_value()) return;
  rocksdb::WriteBatch b;
  size_t entries = 0;
  uint64_t last = 0;
  auto st = store_.scan(storage::Family::kSchedules, [&](std::string_view k, std::string_view v) {
    if (stopping_.load(std::memory_order_relaxed)) return false;
    if (k.size() <= actor_id_length()) return true;
    auto row = storage::decode_schedule_row(v);
    if (!row.ok()) return true;
    store_.put(b, storage::Family::kDue, storage::due_key(row->due_ts, k.substr(0, actor_id_length()), row->id), "");
    if (++entries % 10'000 == 0) {
      last = pipeline_.submit(std::move(b), last);
      b = rocksdb::WriteBatch();
    }
    return true;
  });
  if (!st.ok()) {
    spdlog::error("recovery: building the schedule index failed: {}", st.error().message);
    return;
  }
  if (stopping_.load()) return;  // (no marker: built again at the next start)
  store_.put(b, storage::Family::kDue, storage::kDueIndexMarker, "1");
  last = pipeline_.submit(std::move(b), last);
  // The first sweep reads what was just written.
  for (int i = 0; i < 1000 && !pipeline_.synced_at_least(last) && !pipeline_.lost(last) && !stopping_.load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (entries) spdlog::info("recovery: schedule index built ({} schedules)", entries);
}

asio::awaitable<void> RuntimeCore::sleep_on_strand(std::shared_ptr<Instance> inst) {
  std::function<int()> work = [inst]() {
    inst->sleep_now();
    return 0;
  };
  co_await run_on(inst->strand(), std::move(work));
}

asio::awaitable<void> RuntimeCore::shutdown() {
  // The gate first: a turn that starts after this line would wake an actor
  // this loop already put to sleep (an open WebSocket, a firing alarm).
  closing_.store(true, std::memory_order_release);
  std::vector<std::shared_ptr<Instance>> awake;
  {
    std::lock_guard lk(mu_);
    for (auto& [_, e] : by_id_) {
      submit_pending_create(*e);
      if (e->instance) awake.push_back(e->instance);
    }
  }
  uint64_t last = 0;
  for (auto& inst : awake) co_await sleep_on_strand(inst);
  last = pipeline_.last_submitted();
  if (Status st = co_await durable(last); !st.ok()) {
    spdlog::error("runtime: {} awake actors put to sleep, but their last commits are not durable: {}", awake.size(),
                  st.error().message);
    co_return;
  }
  spdlog::info("runtime: {} awake actors put to sleep", awake.size());
}

asio::awaitable<Status> RuntimeCore::replace_local(const std::string& actor_id, std::vector<Runtime::StoredRow> rows) {
  if (actor_id.size() != actor_id_length())
    co_return make_error("actor", "invalid_id", "not an actor id of this data directory: " + actor_id);
  rocksdb::WriteBatch b;
  // What is stored now goes: the rows, their due-time entries and the key claim.
  for (const auto& a : stored_alarms(actor_id))
    store_.del(b, storage::Family::kDue, storage::due_key(a.due_ts, actor_id, a.schedule_id));
  if (auto old = store_.get(storage::Family::kActors, actor_id); old.ok() && old->has_value())
    if (auto row = storage::decode_actor_row(**old); row.ok())
      store_.del(b, storage::Family::kKeyIndex, index_key(row->namespace_name, row->name, row->key));
  for (auto f : {storage::Family::kActors, storage::Family::kState, storage::Family::kKv, storage::Family::kQueue,
                 storage::Family::kSchedules, storage::Family::kWorkflow, storage::Family::kDbPages})
    store_.del_prefix(b, f, actor_id);
  for (auto& r : rows) {
    if (r.family < 0 || r.family >= static_cast<int>(storage::Family::kCount) ||
        r.key.compare(0, actor_id.size(), actor_id) != 0)
      co_return make_error("actor", "invalid_row", "a loaded row of actor " + actor_id + " is not one of its rows");
    const auto f = static_cast<storage::Family>(r.family);
    store_.put(b, f, r.key, r.value);
    if (f == storage::Family::kSchedules) {
      if (auto row = storage::decode_schedule_row(r.value); row.ok())
        store_.put(b, storage::Family::kDue, storage::due_key(row->due_ts, actor_id, row->id), "");
    } else if (f == storage::Family::kActors) {
      if (auto row = storage::decode_actor_row(r.value); row.ok())
        store_.put(b, storage::Family::kKeyIndex, index_key(row->namespace_name, row->name, row->key), actor_id);
    }
  }
  uint64_t seq = 0;
  {
    // Checked, submitted and evicted under one lock; until the batch lands
    // the id reads as absent, so no reader (an alarm of the old schedules,
    // an inspector read) installs the old record meanwhile.
    std::lock_guard lk(mu_);
    if (auto it = by_id_.find(actor_id); it != by_id_.end()) {
      auto e = it->second;
      if (e->instance || !e->conns.empty() || e->pending_create)
        co_return make_error("actor", "awake", "actor " + actor_id + " is awake here; it cannot be reloaded");
      drop_resident(e);  // (moves its epochs)
    } else {
      ++epoch(actor_id);
    }
    seq = pipeline_.submit(std::move(b), 0, /*replicate=*/false);
    tombstones_[actor_id] = seq;
  }
  co_return co_await durable(seq);
}

asio::awaitable<Status> RuntimeCore::sleep_actor(const std::string& actor_id) {
  std::shared_ptr<ActorEntry> entry = lookup_id(actor_id);
  if (!entry) co_return make_error("actor", "not_found", "Actor '" + actor_id + "' not found.");
  std::shared_ptr<Instance> inst;
  {
    std::lock_guard lk(mu_);
    submit_pending_create(*entry);
    inst = entry->instance;
  }
  if (inst) co_await sleep_on_strand(inst);
  const uint64_t last = entry->last_seq.load();
  co_return co_await durable(last);
}

}  // namespace anvil
