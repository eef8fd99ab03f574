// Turns the runtime starts by itself: due schedules (alarms), queue drains
// and workflow runs.
#include <spdlog/spdlog.h>

#include "runtime/core.hpp"
#include "runtime/instance.hpp"

namespace anvil {

void RuntimeCore::arm_alarm(const std::string& actor_id, const Alarm& alarm) {
  // Beyond the horizon: the sweep arms it when it comes near (memory for
  // timers is bounded by the schedules due soon, not by all of them).
  if (alarm.due_ts > now_ms() + kAlarmHorizonMs) return;
  {
    std::lock_guard lk(alarms_mu_);
    if (!armed_.insert(storage::due_key(alarm.due_ts, actor_id, alarm.schedule_id)).second) return;
  }
  auto timer = std::make_shared<asio::steady_timer>(io_);
  timer->expires_after(std::chrono::milliseconds(std::max<int64_t>(0, alarm.due_ts - now_ms())));
  timer->async_wait([this, timer, actor_id, alarm](const boost::system::error_code& ec) {
    if (ec) return;
    asio::co_spawn(io_, fire_alarm(actor_id, alarm.schedule_id, alarm.due_ts), asio::detached);
  });
}

asio::awaitable<void> RuntimeCore::fire_alarm(std::string actor_id, std::string schedule_id, int64_t due_ts) {
  TurnBody body = [&](Instance& inst) { return inst.fire_schedule(schedule_id, due_ts); };
  auto r = co_await turn(actor_id, std::move(body));
  const std::string entry = storage::due_key(due_ts, actor_id, schedule_id);
  if (!r.output.ok() && r.output.error().qualified() == "actor.not_found") {
    // Its entry goes only if the actor is really gone (else every sweep
    // would arm it); "not found" also means a type this node does not host
    // now, or a failed read, and then the schedule must stay.
    auto stored = store_.get(storage::Family::kActors, actor_id);
    if (stored.ok() && !stored->has_value() && !exists(actor_id)) {
      rocksdb::WriteBatch b;
      store_.del(b, storage::Family::kDue, entry);
      (void)pipeline_.submit(std::move(b));
    }
  } else if (!r.output.ok()) {
    spdlog::warn("actor {}: schedule {} failed: {}", actor_id, schedule_id, r.output.error().message);
  }
  // Unarmed once handled: if the schedule is still pending (the turn
  // failed), the next sweep arms it again.
  std::lock_guard lk(alarms_mu_);
  armed_.erase(entry);
}

std::vector<Alarm> RuntimeCore::stored_alarms(const std::string& actor_id) const {
  std::vector<Alarm> alarms;
  (void)store_.scan_prefix(storage::Family::kSchedules, actor_id, [&](std::string_view, std::string_view v) {
    if (auto row = storage::decode_schedule_row(v); row.ok()) alarms.push_back(Alarm{row->id, row->due_ts});
    return true;
  });
  return alarms;
}

void RuntimeCore::resume_background(const std::string& actor_id) {
  for (const auto& a : stored_alarms(actor_id)) arm_alarm(actor_id, a);
  bool queued = false;
  (void)store_.scan_prefix(storage::Family::kQueue, actor_id, [&](std::string_view, std::string_view) {
    queued = true;
    return false;
  });
  if (queued) schedule_drain(actor_id);
  if (auto root = store_.get(storage::Family::kWorkflow, actor_id); root.ok() && root->has_value()) {
    auto row = storage::decode_workflow_row(**root);
    if (row.ok() && row->status == "running") schedule_workflow(actor_id);
  }
}

std::optional<int64_t> RuntimeCore::next_alarm(const std::string& actor_id) const {
  std::optional<int64_t> next_due;
  for (const auto& a : stored_alarms(actor_id))
    if (!next_due || a.due_ts < *next_due) next_due = a.due_ts;
  return next_due;
}

void RuntimeCore::schedule_drain(const std::string& actor_id) {
  asio::co_spawn(
      io_,
      [this, actor_id]() -> asio::awaitable<void> {
        co_await turn(actor_id, [](Instance& inst) { return inst.process_next_message(); });
      },
      asio::detached);
}

void RuntimeCore::schedule_workflow(const std::string& actor_id) {
  asio::co_spawn(
      io_,
      [this, actor_id]() -> asio::awaitable<void> {
        auto r = co_await turn(actor_id, [](Instance& inst) { return inst.run_workflow(); });
        if (!r.output.ok() && r.output.error().qualified() != "actor.not_found")
          spdlog::warn("actor {}: workflow turn failed: {} ({})", actor_id, r.output.error().qualified(),
                       r.output.error().message);
      },
      asio::detached);
}

}  // namespace anvil
