// Runtime-internal state of one actor's workflow run (see Workflow in
// actor_api.hpp). Lives in the Instance; history is loaded at start.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/actor_api.hpp"

namespace anvil {

struct WfRecord {
  std::string kind;    // run | step | loop | queue | sleep
  std::string status;  // running | completed | failed | waiting
  Value result;
  uint32_t attempts = 0;
  int64_t started_ts = 0, completed_ts = 0;
  std::string error;
  uint64_t iteration = 0;
  int64_t wake_ts = 0;
};

// Thrown through the author's workflow code to stop this turn's replay. The
// workflow resumes when any of the conditions holds (branches of a join or
// race merge theirs).
struct WorkflowSuspend {
  std::vector<std::string> queues;  // a message on one of these queues
  int64_t wake_ts = 0;              // this time (0: none)
  bool yield = false;               // right away (long loops give up the strand)

  static WorkflowSuspend on_queues(std::vector<std::string> q) { return {std::move(q), 0, false}; }
  static WorkflowSuspend at(int64_t ts) { return {{}, ts, false}; }
  static WorkflowSuspend now() { return {{}, 0, true}; }
  // Until an async step in flight ends (its end requests a workflow turn).
  static WorkflowSuspend on_call() { return {{}, 0, false}; }
  void merge(const WorkflowSuspend& o) {
    queues.insert(queues.end(), o.queues.begin(), o.queues.end());
    if (o.wake_ts && (!wake_ts || o.wake_ts < wake_ts)) wake_ts = o.wake_ts;
    yield = yield || o.yield;
  }
};
// Thrown when history and code disagree; the run is marked failed.
struct WorkflowFailure {
  Error error;
};

// What the workflow needs from its instance.
class WorkflowHost {
 public:
  virtual ~WorkflowHost() = default;
  virtual void wf_write(const std::string& path, const WfRecord& rec) = 0;
  virtual void wf_erase_prefix(const std::string& prefix) = 0;
  virtual std::optional<QueueMessage> wf_take_message(const std::vector<std::string>& queues) = 0;
  virtual void wf_complete(uint64_t message_id, Value response) = 0;
  virtual Value wf_snapshot_state() = 0;
  virtual void wf_restore_state(Value v) = 0;
  // Starts an async step's attempt as a coroutine on the actor's strand; its
  // end sets the returned result and requests a workflow turn.
  virtual std::shared_ptr<OneShot<Result<Value>>> wf_start_call(const std::string& path, Workflow::AsyncStepFn fn,
                                                                std::chrono::milliseconds timeout) = 0;
};

struct WorkflowState {
  WorkflowHost* host = nullptr;
  std::map<std::string, WfRecord> history;
  std::set<std::string> executed;  // step paths executed by this process
  uint64_t reexecutions = 0;        // executions of an already-executed step path
  int iterations_this_turn = 0;
  std::set<std::string> visited;  // paths touched by this replay
  // Rollback: handlers of completed steps, collected in replay order.
  bool rolling_back = false;
  std::vector<std::pair<std::string, std::function<Status(ActorContext&, const Value&)>>> rollbacks;
  std::vector<std::string> waiting_queues;  // the suspension waits for a message on one of these
  int64_t timer_ts = 0;                     // the wake already armed for a timer suspension
  // Async step attempts started by this instance, by path (memory only: a
  // new instance starts the attempt again, with the same idempotency key).
  std::map<std::string, std::shared_ptr<OneShot<Result<Value>>>> calls;

  const WfRecord* find(const std::string& path) {
    visited.insert(path);
    auto it = history.find(path);
    return it == history.end() ? nullptr : &it->second;
  }
  void write(const std::string& path, WfRecord rec) {
    host->wf_write(path, rec);
    history[path] = std::move(rec);
  }
};

}  // namespace anvil
