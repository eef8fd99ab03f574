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
  // Schedules survive restarts: re-arm every one (overdue ones fire now).
  // An alarm of a destroyed actor finds no actor and does nothing.
  size_t alarms = 0, drains = 0, workflows = 0;
  auto st = store_.scan(storage::Family::kSchedules, [&](std::string_view k, std::string_view v) {
    if (stopping_.load(std::memory_order_relaxed)) return false;
    if (k.size() < kActorIdLength) return true;
    auto row = storage::decode_schedule_row(v);
    if (!row.ok()) {
      spdlog::error("skipping unreadable schedule record: {}", row.error().message);
      return true;
    }
    arm_alarm(std::string(k.substr(0, kActorIdLength)), Alarm{row->id, row->due_ts});
    ++alarms;
    return true;
  });
  if (!st.ok()) spdlog::error("recovery: reading schedules failed: {}", st.error().message);
  // Undelivered queue messages are processed without waiting for a request:
  // one drain per actor, the scan skipping to the next actor's range.
  std::string next;
  for (;;) {
    std::string actor;
    st = store_.scan_from(storage::Family::kQueue, next, [&](std::string_view k, std::string_view) {
      if (k.size() >= kActorIdLength) actor.assign(k.substr(0, kActorIdLength));
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
      if (k.size() < kActorIdLength) return true;
      actor.assign(k.substr(0, kActorIdLength));
      if (k.size() == kActorIdLength) root.assign(v);
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
  spdlog::info("recovery: {} schedules re-armed, {} queue drains, {} workflows resumed in {} ms", alarms, drains,
               workflows,
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                   .count());
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
  for (auto& inst : awake) {
    std::function<int()> work = [inst]() {
      inst->sleep_now();
      return 0;
    };
    co_await run_on(inst->strand(), std::move(work));
  }
  last = pipeline_.last_submitted();
  if (Status st = co_await durable(last); !st.ok()) {
    spdlog::error("runtime: {} awake actors put to sleep, but their last commits are not durable: {}", awake.size(),
                  st.error().message);
    co_return;
  }
  spdlog::info("runtime: {} awake actors put to sleep", awake.size());
}

}  // namespace anvil
