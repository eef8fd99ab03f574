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

const WfRecord* expect_kind(WorkflowState& s, const std::string& path, const char* kind) {
  const WfRecord* rec = s.find(path);
  if (rec && rec->kind != kind) divergent(path, kind, rec->kind);
  return rec;
}

}  // namespace

std::string Workflow::path(std::string_view name) const { return prefix_ + std::string(name); }

// What replay answers for a step that already ended (completed: its
// recorded result, collecting its rollback when rolling back; failed: its
// error), or nullopt when the step must run (again).
std::optional<Result<Value>> Workflow::recorded_outcome(const std::string& p, const WfRecord* rec,
                                                        const StepOptions& opts) {
  if (rec && rec->status == "completed") {
    if (opts.rollback) {
      if (!has_checkpoint())
        throw WorkflowFailure{make_error("workflow", "rollback_checkpoint_missing",
                                         "Step `" + p + "` has a rollback but no rollback_checkpoint precedes it.")};
      if (state_.rolling_back) state_.rollbacks.emplace_back(p, opts.rollback);
    }
    return rec->result;
  }
  if (state_.rolling_back) throw WorkflowFailure{make_error("workflow", "rolled_back", "rolled back")};
  if (rec && rec->status == "failed") return make_error("workflow", "step_failed", rec->error);
  return std::nullopt;
}

Result<Value> Workflow::step(std::string_view name, const std::function<Result<Value>()>& fn, StepOptions opts) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "step");
  if (auto done = recorded_outcome(p, rec, opts)) return std::move(*done);
  const int64_t now = now_ms();
  if (rec && rec->status == "waiting" && now < rec->wake_ts)
    throw WorkflowSuspend::at(rec->wake_ts);

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
  // A failed attempt leaves no trace in the state.
  if (!out.ok()) state_.host->wf_restore_state(std::move(snapshot));
  return record_attempt(p, std::move(next), std::move(out), opts);
}

Result<Value> Workflow::record_attempt(const std::string& p, WfRecord next, Result<Value> out,
                                       const StepOptions& opts) {
  const int64_t now = now_ms();
  if (out.ok()) {
    next.status = "completed";
    next.result = *out;
    next.completed_ts = now_ms();
    next.error.clear();
    state_.write(p, std::move(next));
    if (opts.rollback && !has_checkpoint())
      throw WorkflowFailure{make_error("workflow", "rollback_checkpoint_missing",
                                       "Step `" + p + "` has a rollback but no rollback_checkpoint precedes it.")};
    return out;
  }
  next.error = out.error().qualified() + ": " + out.error().message;
  if (next.attempts < opts.max_attempts) {
    next.status = "waiting";
    next.wake_ts = now + opts.backoff.count() * (int64_t{1} << std::min<uint32_t>(next.attempts - 1, 20));
    int64_t wake = next.wake_ts;
    state_.write(p, std::move(next));
    throw WorkflowSuspend::at(wake);
  }
  next.status = "failed";
  next.completed_ts = now_ms();
  state_.write(p, std::move(next));
  return out;
}

Result<Value> Workflow::step_async(std::string_view name, AsyncStepFn fn, StepOptions opts) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "step");
  if (auto done = recorded_outcome(p, rec, opts)) return std::move(*done);
  if (rec && rec->status == "waiting" && now_ms() < rec->wake_ts) throw WorkflowSuspend::at(rec->wake_ts);

  auto call = state_.calls.find(p);
  if (call == state_.calls.end()) {
    // Start an attempt; the workflow waits for it without holding the strand.
    if (!state_.executed.insert(p).second) ++state_.reexecutions;
    state_.calls[p] = state_.host->wf_start_call(p, std::move(fn), opts.timeout);
    throw WorkflowSuspend::on_call();
  }
  if (!call->second->is_set()) throw WorkflowSuspend::on_call();
  // The attempt ended: record it (once) like a synchronous step's.
  Result<Value> out = call->second->take();
  state_.calls.erase(call);
  WfRecord next = rec ? *rec : WfRecord{};
  next.kind = "step";
  if (!rec) next.started_ts = now_ms();
  next.attempts += 1;
  return record_attempt(p, std::move(next), std::move(out), opts);
}

Result<Value> Workflow::loop(std::string_view name, const std::function<Result<LoopResult>(Workflow&)>& fn,
                             size_t history_size) {
  return loop(name, Value(), [&fn](Workflow& w, const Value&) { return fn(w); }, history_size);
}

Result<Value> Workflow::loop(std::string_view name, Value initial_state,
                             const std::function<Result<LoopResult>(Workflow&, const Value& state)>& fn,
                             size_t history_size) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "loop");
  if (rec && rec->status == "completed") return rec->result;
  if (rec && rec->status == "failed") return make_error("workflow", "loop_failed", rec->error);
  // While running, `result` holds the loop state for the current iteration.
  WfRecord cur = rec ? *rec : WfRecord{"loop", "running", std::move(initial_state), 0, now_ms(), 0, "", 0, 0};
  if (!rec) state_.write(p, cur);
  for (;;) {
    if (++state_.iterations_this_turn > kIterationsPerTurn) throw WorkflowSuspend::now();
    Workflow inner(state_, actor_, p + "~" + std::to_string(cur.iteration) + "/");
    auto r = fn(inner, cur.result);
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
    // The iteration is complete: the next replay starts at the next one,
    // with the state it handed on.
    cur.iteration += 1;
    cur.result = std::move(r->value);
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
  if (state_.rolling_back) throw WorkflowFailure{make_error("workflow", "rolled_back", "rolled back")};
  auto msg = state_.host->wf_take_message(queues);
  if (!msg) {
    // Recording where the run waits lets get_version() tell that an in-flight
    // run has already passed code inserted before this point.
    if (!rec) state_.write(p, WfRecord{"queue", "waiting", Value(), 0, now_ms(), 0, "", 0, 0});
    throw WorkflowSuspend::on_queues(queues);
  }
  WfRecord next{"queue", "completed",
                obj({{"id", static_cast<int64_t>(msg->id)}, {"name", msg->name}, {"body", msg->body},
                     {"createdAt", msg->created_at}}),
                1, now_ms(), now_ms(), "", 0, 0};
  state_.write(p, std::move(next));
  return *msg;
}

bool Workflow::has_checkpoint() const {
  for (const auto& [p, r] : state_.history)
    if (r.kind == "rollback_checkpoint") return true;
  return false;
}

Status Workflow::rollback_checkpoint(std::string_view name) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "rollback_checkpoint");
  if (!rec) state_.write(p, WfRecord{"rollback_checkpoint", "completed", Value(), 1, now_ms(), now_ms(), "", 0, 0});
  return Ok{};
}

Result<Value> Workflow::join(std::string_view name, const std::vector<Branch>& branches) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "join");
  if (rec && rec->status == "completed") return rec->result;
  if (!rec) state_.write(p, WfRecord{"join", "running", Value(), 1, now_ms(), 0, "", 0, 0});
  // Every branch advances as far as it can; the join suspends until all are done.
  std::optional<WorkflowSuspend> waiting;
  Object outputs;
  std::string failures;
  for (const auto& [branch, fn] : branches) {
    Workflow inner(state_, actor_, p + "/" + branch + "/");
    try {
      auto r = fn(inner);
      if (r.ok())
        outputs.emplace_back(branch, *r);
      else
        failures += (failures.empty() ? "" : "; ") + branch + ": " + r.error().qualified() + " " + r.error().message;
    } catch (const WorkflowSuspend& s) {
      if (!waiting) waiting = s;
      else waiting->merge(s);
    }
  }
  if (waiting) throw *waiting;
  WfRecord done = *state_.find(p);
  done.completed_ts = now_ms();
  if (!failures.empty()) {
    done.status = "failed";
    done.error = failures;
    state_.write(p, done);
    return make_error("workflow", "join_failed", "Join `" + p + "` failed: " + failures);
  }
  done.status = "completed";
  done.result = Value(std::move(outputs));
  state_.write(p, done);
  return done.result;
}

Result<Value> Workflow::race(std::string_view name, const std::vector<Branch>& branches) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "race");
  if (rec && rec->status == "completed") return rec->result;
  if (!rec) state_.write(p, WfRecord{"race", "running", Value(), 1, now_ms(), 0, "", 0, 0});
  std::optional<WorkflowSuspend> waiting;
  std::string failures;
  for (const auto& [branch, fn] : branches) {
    Workflow inner(state_, actor_, p + "/" + branch + "/");
    try {
      auto r = fn(inner);
      if (r.ok()) {
        // First to finish wins; the others are cancelled (never resumed).
        WfRecord done = *state_.find(p);
        done.status = "completed";
        done.completed_ts = now_ms();
        done.result = obj({{"winner", branch}, {"value", *r}});
        state_.write(p, done);
        return done.result;
      }
      failures += (failures.empty() ? "" : "; ") + branch + ": " + r.error().qualified() + " " + r.error().message;
    } catch (const WorkflowSuspend& s) {
      if (!waiting) waiting = s;
      else waiting->merge(s);
    }
  }
  if (waiting) throw *waiting;
  WfRecord done = *state_.find(p);
  done.status = "failed";
  done.error = failures;
  done.completed_ts = now_ms();
  state_.write(p, done);
  return make_error("workflow", "race_failed", "Every branch of race `" + p + "` failed: " + failures);
}

int64_t Workflow::get_version(std::string_view name, int64_t latest) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "version_check");
  if (rec) return rec->result.is_int() ? rec->result.as_int() : 1;
  // An instance that already ran past this point (it has history this
  // replay has not reached yet) keeps the old behaviour: version 1.
  bool ran_past = false;
  for (const auto& [hp, r] : state_.history)
    if (!hp.empty() && hp.compare(0, prefix_.size(), prefix_) == 0 && !state_.visited.count(hp)) ran_past = true;
  int64_t resolved = ran_past ? 1 : std::max<int64_t>(1, latest);
  state_.write(p, WfRecord{"version_check", "completed", Value(resolved), 1, now_ms(), now_ms(), "", 0, 0});
  return resolved;
}

void Workflow::removed(std::string_view name, std::string_view original_kind) {
  const std::string p = path(name);
  const WfRecord* rec = state_.find(p);
  if (rec && rec->kind != original_kind && rec->kind != "removed") divergent(p, std::string(original_kind), rec->kind);
  if (!rec) state_.write(p, WfRecord{"removed", "completed", Value(), 0, now_ms(), now_ms(), "", 0, 0});
}

Result<std::optional<QueueMessage>> Workflow::queue_next_for(std::string_view name,
                                                           const std::vector<std::string>& queues,
                                                           std::chrono::milliseconds timeout) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "queue");
  if (rec && rec->status == "completed") {
    if (rec->result.is_null()) return std::optional<QueueMessage>();  // timed out
    auto m = queue_next(name, queues);
    if (!m.ok()) return m.error();
    return std::optional<QueueMessage>(std::move(*m));
  }
  const int64_t now = now_ms();
  const int64_t deadline = rec && rec->wake_ts ? rec->wake_ts : now + timeout.count();
  if (now >= deadline && !state_.rolling_back) {
    // Deadline passed: a message that is already there still wins.
    try {
      auto m = queue_next(name, queues);
      if (!m.ok()) return m.error();
      return std::optional<QueueMessage>(std::move(*m));
    } catch (const WorkflowSuspend&) {
      state_.write(p, WfRecord{"queue", "completed", Value(), 0, rec ? rec->started_ts : now, now, "", 0, deadline});
      return std::optional<QueueMessage>();
    }
  }
  if (!rec) state_.write(p, WfRecord{"queue", "waiting", Value(), 0, now, 0, "", 0, deadline});
  try {
    auto m = queue_next(name, queues);
    if (!m.ok()) return m.error();
    return std::optional<QueueMessage>(std::move(*m));
  } catch (WorkflowSuspend& s) {
    s.merge(WorkflowSuspend::at(deadline));  // a message or the deadline, whichever first
    throw;
  }
}

void Workflow::complete(const QueueMessage& msg, Value response) { state_.host->wf_complete(msg.id, std::move(response)); }

Status Workflow::sleep(std::string_view name, std::chrono::milliseconds duration) {
  const WfRecord* rec = expect_kind(state_, path(name), "sleep");
  return sleep_until(name, rec ? rec->wake_ts : now_ms() + duration.count());
}

Status Workflow::sleep_until(std::string_view name, int64_t unix_ms) {
  const std::string p = path(name);
  const WfRecord* rec = expect_kind(state_, p, "sleep");
  if (rec && rec->status == "completed") return Ok{};
  if (state_.rolling_back) throw WorkflowFailure{make_error("workflow", "rolled_back", "rolled back")};
  const int64_t wake = rec ? rec->wake_ts : unix_ms;
  const int64_t now = now_ms();
  if (now >= wake) {
    state_.write(p, WfRecord{"sleep", "completed", Value(), 1, rec ? rec->started_ts : now, now, "", 0, wake});
    return Ok{};
  }
  if (!rec) state_.write(p, WfRecord{"sleep", "waiting", Value(), 0, now, 0, "", 0, wake});
  throw WorkflowSuspend::at(wake);
}

}  // namespace anvil
