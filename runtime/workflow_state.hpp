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

// Thrown through the author's workflow code to stop this turn's replay.
struct WorkflowSuspend {
  enum class Kind { Queue, Timer, Yield } kind;
  std::vector<std::string> queues;  // Queue
  int64_t wake_ts = 0;              // Timer
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
  virtual Value wf_snapshot_state() = 0;
  virtual void wf_restore_state(Value v) = 0;
};

struct WorkflowState {
  WorkflowHost* host = nullptr;
  std::map<std::string, WfRecord> history;
  std::set<std::string> executed;  // step paths executed by this process
  uint64_t reexecutions = 0;        // executions of an already-executed step path
  int iterations_this_turn = 0;

  const WfRecord* find(const std::string& path) const {
    auto it = history.find(path);
    return it == history.end() ? nullptr : &it->second;
  }
  void write(const std::string& path, WfRecord rec) {
    host->wf_write(path, rec);
    history[path] = std::move(rec);
  }
};

}  // namespace anvil
