// Plain C++ views of the Cap'n Proto records in schemas/anvil.capnp, so the
// layers above never see Cap'n Proto. encode/decode are pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/value/error.hpp"

namespace anvil::storage {

struct ActorRow {
  std::string actor_id, name, key, namespace_name, runner_name_selector, crash_policy, datacenter;
  int64_t create_ts = 0;
  bool has_input = false;
  std::string input;  // CBOR (storage mode)
  uint32_t generation = 0;
  // The newest start and sleep (ms; 0 = none): written with the start's and
  // the sleep's commits, so a reader of the data directory can tell an awake
  // actor (start_ts > sleep_ts) without asking the node.
  int64_t start_ts = 0, sleep_ts = 0;
  // The Bearer token of the actor's inspector routes; "" in records
  // written before tokens existed (filled in at the next start).
  std::string inspector_token;
};

struct StateRow {
  uint32_t generation = 0;
  std::string state;  // CBOR (storage mode)
  bool initialized = false;
};

struct QueueRow {
  uint64_t id = 0;
  std::string name;
  std::string body;  // CBOR (storage mode)
  int64_t created_ts = 0;
};

struct ScheduleRow {
  std::string id;
  std::string action;
  std::string args;  // CBOR (storage mode) array
  int64_t due_ts = 0;
  int64_t created_ts = 0;
  int64_t interval_ms = 0;  // > 0: recurring
  std::string name;         // recurring job name
};

// The time-ordered schedule index (Family::kDue): one empty record per
// pending schedule, keyed by due time, so the schedules due soon are read
// without scanning actors. Written with the schedule row in the same batch;
// a stale entry (the schedule fired, was cancelled or moved) is dropped
// when it comes due. The record "\0" (shorter than any entry, so first)
// says the index was built for a data directory that predates it.
std::string due_key(int64_t due_ts, std::string_view actor_id, std::string_view schedule_id);
struct DueEntry {
  int64_t due_ts = 0;
  std::string actor_id, schedule_id;
};
// False for the marker or a malformed key.
bool parse_due_key(std::string_view key, size_t actor_id_length, DueEntry& out);
inline constexpr std::string_view kDueIndexMarker{"\0", 1};

struct WorkflowRow {
  std::string path, kind, status;
  std::string result;  // CBOR (storage mode)
  uint32_t attempts = 0;
  int64_t started_ts = 0, completed_ts = 0;
  std::string error;
  uint64_t iteration = 0;
  int64_t wake_ts = 0;
};

std::string encode(const WorkflowRow& r);
Result<WorkflowRow> decode_workflow_row(std::string_view bytes);
std::string encode(const QueueRow& r);
std::string encode(const ScheduleRow& r);
Result<QueueRow> decode_queue_row(std::string_view bytes);
Result<ScheduleRow> decode_schedule_row(std::string_view bytes);

std::string encode(const ActorRow& r);
std::string encode(const StateRow& r);
Result<ActorRow> decode_actor_row(std::string_view bytes);
Result<StateRow> decode_state_row(std::string_view bytes);

}  // namespace anvil::storage
