// What survives a restart: load() rebuilds the directory from storage and
// restarts the work that was pending (schedules, queue drains, running
// workflows); shutdown() puts every awake actor to sleep, persisted.
#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "runtime/actor_id.hpp"
#include "runtime/core.hpp"
#include "runtime/instance.hpp"

namespace anvil {
namespace {

std::span<const uint8_t> as_span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

Status RuntimeCore::load() {
  std::lock_guard lk(mu_);
  Status failure = Ok{};
  auto st = store_.scan(storage::Family::kActors, [&](std::string_view, std::string_view v) {
    auto row = storage::decode_actor_row(v);
    if (!row.ok()) {
      failure = row.error();
      return false;
    }
    auto e = std::make_shared<ActorEntry>();
    e->info.actor_id = row->actor_id;
    e->info.name = row->name;
    e->info.key = row->key;
    e->info.namespace_name = row->namespace_name;
    e->info.runner_name_selector = row->runner_name_selector;
    e->info.crash_policy = row->crash_policy;
    e->info.datacenter = row->datacenter;
    e->info.create_ts = row->create_ts;
    e->info.generation = row->generation;
    e->inspector_token = row->inspector_token;
    if (row->has_input) {
      auto input = cbor::decode(as_span(row->input), cbor::Mode::Storage);
      if (!input.ok()) {
        failure = input.error();
        return false;
      }
      e->input = std::move(*input);
    }
    by_key_[index_key(e->info.namespace_name, e->info.name, e->info.key)] = e->info.actor_id;
    by_id_[e->info.actor_id] = std::move(e);
    return true;
  });
  if (!st.ok()) return st;
  if (!failure.ok()) return failure;

  // Schedules survive restarts: re-arm every one (overdue ones fire now).
  size_t alarms = 0;
  st = store_.scan(storage::Family::kSchedules, [&](std::string_view k, std::string_view v) {
    auto row = storage::decode_schedule_row(v);
    if (!row.ok()) {
      spdlog::error("skipping unreadable schedule record: {}", row.error().message);
      return true;
    }
    std::string actor_id(k.substr(0, kActorIdLength));
    if (!by_id_.count(actor_id)) return true;
    arm_alarm(actor_id, Alarm{row->id, row->due_ts});
    ++alarms;
    return true;
  });
  if (!st.ok()) return st;
  // Undelivered queue messages are processed without waiting for a request.
  std::string last;
  st = store_.scan(storage::Family::kQueue, [&](std::string_view k, std::string_view) {
    std::string actor_id(k.substr(0, kActorIdLength));
    if (actor_id != last && by_id_.count(actor_id)) schedule_drain(actor_id);
    last = actor_id;
    return true;
  });
  if (!st.ok()) return st;
  // Workflows that were running resume without waiting for a request.
  st = store_.scan(storage::Family::kWorkflow, [&](std::string_view k, std::string_view v) {
    if (k.size() != kActorIdLength) return true;  // only root records
    auto row = storage::decode_workflow_row(v);
    if (row.ok() && row->status == "running" && by_id_.count(std::string(k))) schedule_workflow(std::string(k));
    return true;
  });
  if (!st.ok()) return st;
  spdlog::info("directory loaded: {} actors, {} pending schedules", by_id_.size(), alarms);
  return Ok{};
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
