// An instance's schedules: at/after/every, cancel, and firing a due one.
#include "runtime/instance.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "runtime/instance_support.hpp"
#include "storage/records.hpp"

namespace anvil {
using namespace detail;

// RivetKit's maxSchedules default (actor-model.md §6.2).
constexpr size_t kMaxSchedules = 1000;

Status Instance::check_schedule_room() {
  if (schedule_count_ >= kMaxSchedules)
    return make_error("schedule", "max_schedules_exceeded", "An actor holds at most 1000 pending schedules.");
  return Ok{};
}

Result<std::string> Instance::add_recurring(std::string job, int64_t interval_ms, std::string action, Array args) {
  if (!def_.has_action(action))
    return make_error("actor", "action_not_found", "Action `" + action + "` was not found.");
  if (interval_ms < 5000)
    return make_error("schedule", "invalid_interval", "A recurring schedule's interval must be at least 5000 ms.");
  if (job.empty()) return make_error("schedule", "invalid_name", "A recurring schedule needs a name.");
  storage::ScheduleRow row;
  row.id = "every:" + job;
  auto existing = rt_.store().get(storage::Family::kSchedules, actor_id + row.id);
  if (!existing.ok()) return existing.error();
  // The store shows committed schedules only: one this generation wrote in
  // a turn not yet committed is known from recurring_added_ (else every
  // upsert in a burst of turns would count as a new schedule).
  if (existing->has_value())
    if (auto old = storage::decode_schedule_row(**existing); old.ok())
      rt_.store().del(batch(), storage::Family::kDue, storage::due_key(old->due_ts, actor_id, row.id));
  if (!existing->has_value() && !recurring_added_.count(row.id)) {
    if (auto st = check_schedule_room(); !st.ok()) return st.error();
    ++schedule_count_;
  }
  recurring_added_.insert(row.id);
  row.action = std::move(action);
  auto bytes = cbor::encode(Value(std::move(args)), cbor::Mode::Storage);
  row.args.assign(bytes.begin(), bytes.end());
  row.created_ts = now_ms();
  row.due_ts = row.created_ts + interval_ms;
  row.interval_ms = interval_ms;
  row.name = std::move(job);
  rt_.store().put(batch(), storage::Family::kSchedules, actor_id + row.id, storage::encode(row));
  rt_.store().put(batch(), storage::Family::kDue, storage::due_key(row.due_ts, actor_id, row.id), "");
  new_alarms_.push_back(Alarm{row.id, row.due_ts});
  return row.id;
}

Result<bool> Instance::cancel_schedule(const std::string& id) {
  auto existing = rt_.store().get(storage::Family::kSchedules, actor_id + id);
  if (!existing.ok()) return existing.error();
  const bool pending = recurring_added_.erase(id) > 0;  // written by a turn not committed yet
  if (!existing->has_value() && !pending) return false;
  rt_.store().del(batch(), storage::Family::kSchedules, actor_id + id);
  if (existing->has_value())
    if (auto old = storage::decode_schedule_row(**existing); old.ok())
      rt_.store().del(batch(), storage::Family::kDue, storage::due_key(old->due_ts, actor_id, id));
  if (schedule_count_ > 0) --schedule_count_;
  return true;  // its armed timer finds no record and does nothing
}

Result<std::string> Instance::add_schedule(int64_t due_ts, std::string action, Array args) {
  if (!def_.has_action(action))
    return make_error("actor", "action_not_found", "Action `" + action + "` was not found.");
  if (auto st = check_schedule_room(); !st.ok()) return st.error();
  ++schedule_count_;
  storage::ScheduleRow row;
  row.id = new_conn_id();
  row.action = std::move(action);
  auto bytes = cbor::encode(Value(std::move(args)), cbor::Mode::Storage);
  row.args.assign(bytes.begin(), bytes.end());
  row.due_ts = due_ts;
  row.created_ts = now_ms();
  rt_.store().put(batch(), storage::Family::kSchedules, actor_id + row.id, storage::encode(row));
  rt_.store().put(batch(), storage::Family::kDue, storage::due_key(due_ts, actor_id, row.id), "");
  new_alarms_.push_back(Alarm{row.id, due_ts});
  return row.id;
}

Result<Value> Instance::fire_schedule(const std::string& schedule_id, int64_t due_ts) {
  auto raw = rt_.store().get(storage::Family::kSchedules, actor_id + schedule_id);
  if (!raw.ok()) return raw.error();
  const std::string armed_by = storage::due_key(due_ts, actor_id, schedule_id);
  if (!raw->has_value()) {  // already fired (e.g. before a restart) or cancelled: a stale entry
    rt_.store().del(batch(), storage::Family::kDue, armed_by);
    return Value();
  }
  auto row = storage::decode_schedule_row(**raw);
  if (!row.ok()) return row.error();
  if (std::max<int64_t>(row->due_ts, 0) != std::max<int64_t>(due_ts, 0)) {
    // The schedule moved since this entry was written: the entry goes, and
    // the schedule's own entry (written with the row) fires it, never this
    // one too.
    rt_.store().del(batch(), storage::Family::kDue, armed_by);
    return Value();
  }
  rt_.store().del(batch(), storage::Family::kDue, storage::due_key(row->due_ts, actor_id, schedule_id));
  if (row->action == kWorkflowWake) {
    rt_.store().del(batch(), storage::Family::kSchedules, actor_id + schedule_id);
    wfs().timer_ts = 0;
    wf_requested_ = true;
    return Value();
  }
  auto args = cbor::decode(as_span(row->args), cbor::Mode::Storage);
  if (!args.ok() || !args->is_array()) return make_error("storage", "corrupt_record", "schedule args");
  Array call_args = std::move(args->as_array());
  const int64_t fired_at = now_ms();
  rt_.stats.schedule_lag.with({name}).observe(double(std::max<int64_t>(0, fired_at - row->due_ts)) / 1000.0);
  Object info{{"kind", row->interval_ms > 0 ? "every" : "at"}, {"id", row->id}, {"scheduledAt", row->due_ts},
              {"firedAt", fired_at}};
  if (!row->name.empty()) info.emplace_back("name", row->name);
  call_args.emplace_back(Value(std::move(info)));
  // Scheduled actions run without a client connection: each gets its own
  // empty one (never shared across calls, actors or threads).
  auto out = action(row->action, call_args, std::make_shared<ConnData>());
  if (row->interval_ms > 0) {
    // Next deadline on the original cadence; runs missed while the node was
    // down collapse into the one that just fired.
    int64_t next = row->due_ts + row->interval_ms;
    if (next <= fired_at) next += ((fired_at - next) / row->interval_ms + 1) * row->interval_ms;
    row->due_ts = next;
    rt_.store().put(batch(), storage::Family::kSchedules, actor_id + schedule_id, storage::encode(*row));
    rt_.store().put(batch(), storage::Family::kDue, storage::due_key(next, actor_id, schedule_id), "");
    new_alarms_.push_back(Alarm{row->id, next});
    return out;
  }
  // Deleted with the action's state change: the effect is applied once, and
  // a crash before this commit fires it again after restart.
  rt_.store().del(batch(), storage::Family::kSchedules, actor_id + schedule_id);
  if (schedule_count_ > 0) --schedule_count_;
  return out;
}

}  // namespace anvil
