#include "runtime/workflow_state.hpp"

#include <spdlog/spdlog.h>

#include "runtime/runtime.hpp"

namespace anvil {
namespace {

// Loop iterations run per turn before the workflow yields the strand.
constexpr int kIterationsPerTurn = 256;

[[noreturn]] void divergent(const std::string& path, const std::string& want, const std::string& have) {
  throw WorkflowFailure{make_error("workflow", "history_divergent",
                                   "Workflow history at `" + path + "` is a " + have + ", but the code runs a " +
                                       want + " there. Keep step names stable or version the workflow.")};
}

const WfRecord* expect_kind(const WorkflowState& s, const std::string& path, const char* kind) {
  const WfRecord* rec = s.find(path);
  if (rec && rec->kind != kind) divergent(path, kind, rec->kind);
  return rec;
}

}  // namespace

std::string Workflow::path(std::string_view name) const { return prefix_ + std::string(name); }

Result<Value> Workflow::step(std::string_view name, const std::function<Result<Value>()>& fn, StepOptions opts) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "step");
  if (rec && rec->status == "completed") return rec->result;
  if (rec && rec->status == "failed") return make_error("workflow", "step_failed", rec->error);
  const int64_t now = now_ms();
  if (rec && rec->status == "waiting" && now < rec->wake_ts)
    throw WorkflowSuspend{WorkflowSuspend::Kind::Timer, {}, rec->wake_ts};

  if (!state_.executed.insert(p).second) ++state_.reexecutions;
  WfRecord next = rec ? *rec : WfRecord{};
  next.kind = "step";
  if (!rec) next.started_ts = now;
  next.attempts += 1;

  Value snapshot = state_.host->wf_snapshot_state();
  Result<Value> out = Value();
  try {
    out = fn();
  } catch (const WorkflowSuspend&) {
    throw;
  } catch (const WorkflowFailure&) {
    throw;
  } catch (const std::exception& e) {
    spdlog::error("workflow step `{}` threw: {}", p, e.what());
    out = internal_error();
  }
  if (out.ok()) {
    next.status = "completed";
    next.result = *out;
    next.completed_ts = now_ms();
    next.error.clear();
    state_.write(p, std::move(next));
    return out;
  }
  // A failed attempt leaves no trace in the state.
  state_.host->wf_restore_state(std::move(snapshot));
  next.error = out.error().qualified() + ": " + out.error().message;
  if (next.attempts < opts.max_attempts) {
    next.status = "waiting";
    next.wake_ts = now + opts.backoff.count() * (int64_t{1} << std::min<uint32_t>(next.attempts - 1, 20));
    int64_t wake = next.wake_ts;
    state_.write(p, std::move(next));
    throw WorkflowSuspend{WorkflowSuspend::Kind::Timer, {}, wake};
  }
  next.status = "failed";
  next.completed_ts = now_ms();
  state_.write(p, std::move(next));
  return out;
}

Result<Value> Workflow::loop(std::string_view name, const std::function<Result<LoopResult>(Workflow&)>& fn,
                             size_t history_size) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "loop");
  if (rec && rec->status == "completed") return rec->result;
  if (rec && rec->status == "failed") return make_error("workflow", "loop_failed", rec->error);
  WfRecord cur = rec ? *rec : WfRecord{"loop", "running", Value(), 0, now_ms(), 0, "", 0, 0};
  if (!rec) state_.write(p, cur);
  for (;;) {
    if (++state_.iterations_this_turn > kIterationsPerTurn) throw WorkflowSuspend{WorkflowSuspend::Kind::Yield, {}, 0};
    Workflow inner(state_, actor_, p + "~" + std::to_string(cur.iteration) + "/");
    auto r = fn(inner);
    if (!r.ok()) {
      cur.status = "failed";
      cur.error = r.error().qualified() + ": " + r.error().message;
      cur.completed_ts = now_ms();
      state_.write(p, cur);
      return r.error();
    }
    if (r->done) {
      cur.status = "completed";
      cur.result = r->value;
      cur.completed_ts = now_ms();
      state_.write(p, cur);
      state_.host->wf_erase_prefix(p + "~");
      return r->value;
    }
    // The iteration is complete: the next replay starts at the next one.
    cur.iteration += 1;
    state_.write(p, cur);
    if (cur.iteration > history_size)
      state_.host->wf_erase_prefix(p + "~" + std::to_string(cur.iteration - 1 - history_size) + "/");
  }
}

Result<QueueMessage> Workflow::queue_next(std::string_view name, const std::vector<std::string>& queues) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "queue");
  if (rec && rec->status == "completed") {
    const Value& r = rec->result;
    QueueMessage m;
    m.id = r.find("id") && r.find("id")->is_int() ? static_cast<uint64_t>(r.find("id")->as_int()) : 0;
    m.name = r.find("name") && r.find("name")->is_string() ? r.find("name")->as_string() : "";
    m.body = r.find("body") ? *r.find("body") : Value(Undefined{});
    m.created_at = r.find("createdAt") && r.find("createdAt")->is_int() ? r.find("createdAt")->as_int() : 0;
    return m;
  }
  auto msg = state_.host->wf_take_message(queues);
  if (!msg) throw WorkflowSuspend{WorkflowSuspend::Kind::Queue, queues, 0};
  WfRecord next{"queue", "completed",
                obj({{"id", static_cast<int64_t>(msg->id)}, {"name", msg->name}, {"body", msg->body},
                     {"createdAt", msg->created_at}}),
                1, now_ms(), now_ms(), "", 0, 0};
  state_.write(p, std::move(next));
  return *msg;
}

Status Workflow::sleep(std::string_view name, std::chrono::milliseconds duration) {
  const WfRecord* rec = expect_kind(state_, path(name), "sleep");
  return sleep_until(name, rec ? rec->wake_ts : now_ms() + duration.count());
}

Status Workflow::sleep_until(std::string_view name, int64_t unix_ms) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "sleep");
  if (rec && rec->status == "completed") return Ok{};
  const int64_t wake = rec ? rec->wake_ts : unix_ms;
  const int64_t now = now_ms();
  if (now >= wake) {
    state_.write(p, WfRecord{"sleep", "completed", Value(), 1, rec ? rec->started_ts : now, now, "", 0, wake});
    return Ok{};
  }
  if (!rec) state_.write(p, WfRecord{"sleep", "waiting", Value(), 0, now, 0, "", 0, wake});
  throw WorkflowSuspend{WorkflowSuspend::Kind::Timer, {}, wake};
}

}  // namespace anvil
