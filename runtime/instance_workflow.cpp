// An instance as the workflow engine's host: history records, queue
// messages for the workflow, and the replay of the run handler.
#include "runtime/instance.hpp"

#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "runtime/instance_support.hpp"
#include "storage/records.hpp"

namespace anvil {
using namespace detail;

Status Instance::load_workflow() {
  wf_finished_ = false;
  if (!def_.run_hook()) return Ok{};
  wfs().history.clear();
  Status failure = Ok{};
  auto st = rt_.store().scan_prefix(storage::Family::kWorkflow, actor_id, [&](std::string_view, std::string_view v) {
    auto row = storage::decode_workflow_row(v);
    if (!row.ok()) {
      failure = row.error();
      return false;
    }
    Value result;
    if (!row->result.empty()) {
      auto r = cbor::decode(as_span(row->result), cbor::Mode::Storage);
      if (!r.ok()) {
        failure = r.error();
        return false;
      }
      result = std::move(*r);
    }
    wfs().history[row->path] = WfRecord{row->kind,        row->status, std::move(result), row->attempts,
                                      row->started_ts,  row->completed_ts, row->error,  row->iteration,
                                      row->wake_ts};
    return true;
  });
  if (!st.ok()) return st;
  if (!failure.ok()) return failure;
  const WfRecord* root = wfs().find("");
  wf_finished_ = root && (root->status == "completed" || root->status == "failed");
  wf_requested_ = !wf_finished_;
  return Ok{};
}

void Instance::wf_write(const std::string& path, const WfRecord& rec) {
  storage::WorkflowRow row{path, rec.kind, rec.status, "", rec.attempts, rec.started_ts, rec.completed_ts,
                           rec.error, rec.iteration, rec.wake_ts};
  if (!rec.result.is_null()) {
    auto bytes = cbor::encode(rec.result, cbor::Mode::Storage);
    row.result.assign(bytes.begin(), bytes.end());
  }
  rt_.store().put(batch(), storage::Family::kWorkflow, actor_id + path, storage::encode(row));
}

void Instance::wf_erase_prefix(const std::string& prefix) {
  for (auto it = wfs().history.lower_bound(prefix); it != wfs().history.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    rt_.store().del(batch(), storage::Family::kWorkflow, actor_id + it->first);
    it = wfs().history.erase(it);
  }
}

std::optional<QueueMessage> Instance::wf_take_message(const std::vector<std::string>& queues) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const QueueMessage& m) {
    return queues.empty() || std::find(queues.begin(), queues.end(), m.name) != queues.end();
  });
  if (it == queue_.end()) return std::nullopt;
  QueueMessage msg = std::move(*it);
  queue_.erase(it);
  report_queue_depth();
  rt_.stats.queue_messages.with({name, "processed"}).inc();
  rt_.store().del(batch(), storage::Family::kQueue, queue_key(actor_id, msg.id));
  // A sender waiting for completion keeps waiting until complete() (or its timeout).
  return msg;
}

void Instance::wf_complete(uint64_t message_id, Value response) { complete_waiter(message_id, std::move(response)); }

Result<Value> Instance::run_workflow() {
  wf_scheduled_ = false;
  wf_requested_ = false;
  if (!def_.run_hook() || wf_finished_) return Value();
  wfs().waiting_queues.clear();
  wfs().iterations_this_turn = 0;
  wfs().visited.clear();
  wfs().rollbacks.clear();
  if (!wfs().find("")) wfs().write("", WfRecord{"run", "running", Value(), 1, now_ms(), 0, "", 0, 0});
  wfs().rolling_back = wfs().find("")->status == "rolling_back";
  ActorContext ctx(*this);
  Workflow wf(wfs(), ctx, "");
  struct CountReexecutions {
    RuntimeCore& rt;
    WorkflowState& s;
    uint64_t before;
    ~CountReexecutions() { rt.workflow_reexecutions += s.reexecutions - before; }
  } count{rt_, wfs(), wfs().reexecutions};
  Result<Value> out = Value();
  try {
    out = def_.run_hook()(wf);
  } catch (const WorkflowSuspend& s) {
    if (!s.queues.empty()) wfs().waiting_queues = s.queues;
    if (s.wake_ts && wfs().timer_ts != s.wake_ts) {
      wfs().timer_ts = s.wake_ts;
      // A durable wake-up: survives sleep and restarts like any schedule.
      storage::ScheduleRow row{"wf-" + std::to_string(s.wake_ts), kWorkflowWake, "", s.wake_ts, now_ms(), 0, ""};
      auto args = cbor::encode(Value(Array{}), cbor::Mode::Storage);
      row.args.assign(args.begin(), args.end());
      rt_.store().put(batch(), storage::Family::kSchedules, actor_id + row.id, storage::encode(row));
      rt_.store().put(batch(), storage::Family::kDue, storage::due_key(s.wake_ts, actor_id, row.id), "");
      new_alarms_.push_back(Alarm{row.id, s.wake_ts});
    }
    if (s.yield) wf_requested_ = true;
    return Value();
  } catch (const WorkflowFailure& f) {
    out = f.error;
  } catch (const std::exception& e) {
    spdlog::error("actor {}: workflow threw: {}", actor_id, e.what());
    out = internal_error();
  }
  WfRecord root = *wfs().find("");

  if (wfs().rolling_back) {
    // Compensation: rollback handlers of completed steps, newest first, each
    // recorded so that a crash resumes where it stopped.
    for (auto it = wfs().rollbacks.rbegin(); it != wfs().rollbacks.rend(); ++it) {
      const std::string rp = it->first + "#rollback";
      if (const WfRecord* r = wfs().find(rp); r && r->status == "completed") continue;
      const Value output = wfs().find(it->first)->result;
      auto st = guarded(actor_id, "rollback", [&]() -> Status { return it->second(ctx, output); });
      wfs().write(rp, WfRecord{"rollback", st.ok() ? "completed" : "failed", Value(), 1, now_ms(), now_ms(),
                             st.ok() ? "" : st.error().qualified() + ": " + st.error().message, 0, 0});
      if (!st.ok()) {
        root.error += "; rollback of `" + it->first + "` failed: " + st.error().message;
        break;
      }
    }
    root.status = "failed";
    root.completed_ts = now_ms();
    wfs().write("", std::move(root));
    wf_finished_ = true;
    wfs().rolling_back = false;
    spdlog::error("actor {} ({}): workflow rolled back and failed: {}", actor_id, name, wfs().find("")->error);
    return Value();
  }

  if (out.ok()) {
    // Every recorded entry must have been reached (outside loop iterations,
    // which are pruned and skipped by design); use removed() for deletions.
    for (const auto& [p, rec] : wfs().history)
      if (!p.empty() && p.find('~') == std::string::npos && p.find('#') == std::string::npos &&
          !wfs().visited.count(p)) {
        out = make_error("workflow", "history_divergent",
                         "Workflow entry `" + p + "` exists in history but was not visited. Use removed().");
        break;
      }
  }
  if (!out.ok()) {
    root.error = out.error().qualified() + ": " + out.error().message;
    bool has_checkpoint = false;
    for (const auto& [p, rec] : wfs().history) has_checkpoint = has_checkpoint || rec.kind == "rollback_checkpoint";
    if (has_checkpoint && out.error().code != "history_divergent") {
      // Replay once more in rollback mode to collect the compensations.
      root.status = "rolling_back";
      wfs().write("", std::move(root));
      wf_requested_ = true;
      return Value();
    }
  }
  root.status = out.ok() ? "completed" : "failed";
  root.completed_ts = now_ms();
  if (out.ok()) root.result = *out;
  wfs().write("", std::move(root));
  wf_finished_ = true;
  if (!out.ok())
    spdlog::error("actor {} ({}): workflow failed: {} ({})", actor_id, name, out.error().qualified(),
                  out.error().message);
  return out;
}

bool Instance::take_workflow_request() {
  if (!wf_requested_ || wf_scheduled_ || phase_ != Phase::Running) return false;
  wf_scheduled_ = true;
  return true;
}


}  // namespace anvil
