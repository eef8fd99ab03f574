// Turns the runtime starts by itself: due schedules (alarms), queue drains
// and workflow runs.
#include <spdlog/spdlog.h>

#include "runtime/core.hpp"
#include "runtime/instance.hpp"

namespace anvil {

void RuntimeCore::arm_alarm(const std::string& actor_id, const Alarm& alarm) {
  auto timer = std::make_shared<asio::steady_timer>(io_);
  timer->expires_after(std::chrono::milliseconds(std::max<int64_t>(0, alarm.due_ts - now_ms())));
  timer->async_wait([this, timer, actor_id, sid = alarm.schedule_id](const boost::system::error_code& ec) {
    if (ec) return;
    asio::co_spawn(io_, fire_alarm(actor_id, sid), asio::detached);
  });
}

asio::awaitable<void> RuntimeCore::fire_alarm(std::string actor_id, std::string schedule_id) {
  auto r = co_await turn(actor_id, [&](Instance& inst) { return inst.fire_schedule(schedule_id); });
  if (!r.output.ok() && r.output.error().qualified() != "actor.not_found")
    spdlog::warn("actor {}: schedule {} failed: {}", actor_id, schedule_id, r.output.error().message);
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
