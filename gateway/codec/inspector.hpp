// The Rivet inspector's live WebSocket protocol, version 6 (rivetkit
// 2.3.19, `/gateway/{actorId}/inspector/connect?protocol_version=6`): one
// BARE message per binary frame, no prefix. The client sends ToServer
// requests; the server answers each (the request's `id` echoed as `rid`) and
// pushes snapshots when the actor changes. Values inside (state, action
// arguments and results, connection details, database answers) are CBOR;
// workflow history is rivetkit's BARE transport bytes.
// docs/protocol-notes.md, "Inspector", has the message tables.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::inspector {

inline constexpr uint16_t kProtocolVersion = 6;

// ToServer, v6 (tag = position in the union).
struct Request {
  enum class Kind : uint8_t {
    kPatchState = 0,
    kState = 1,
    kConnections = 2,
    kAction = 3,
    kRpcsList = 4,
    kTraceQuery = 5,
    kQueue = 6,
    kWorkflowHistory = 7,
    kWorkflowReplay = 8,
    kDatabaseSchema = 9,
    kDatabaseTableRows = 10,
    kSchedules = 11,
    kScheduleHistory = 12,
    kScheduleDelete = 13,
  };
  Kind kind = Kind::kState;
  uint64_t id = 0;                      // every kind but kPatchState
  Bytes data;                           // PatchState: the new state; Action: CBOR array of args
  std::string name;                     // Action: its name; TableRows: the table; Schedule*: scheduleId
  std::string schedule_kind;            // ScheduleDelete: "at" | "every" | "cron"
  std::optional<std::string> entry_id;  // WorkflowReplay
  uint64_t limit = 0, offset = 0;       // Queue, TableRows, ScheduleHistory; TraceQuery
  uint64_t start_ms = 0, end_ms = 0;    // TraceQuery
};
// A bad frame (unknown tag, truncated, trailing bytes, invalid UTF-8) is an
// error; the session answers it with an Error message and goes on.
Result<Request> decode_request(std::span<const uint8_t> frame);

struct Connection {
  std::string id;
  Bytes details;  // CBOR {type, params, stateEnabled, state, subscriptions, isHibernatable}
  bool operator==(const Connection&) const = default;
};

struct Schedule {
  std::string id;
  std::optional<std::string> name;
  std::string kind;  // "at" | "every"
  std::string action;
  Bytes args;  // CBOR array
  uint64_t next_run_at = 0;
  std::optional<uint64_t> interval_ms;
  bool operator==(const Schedule&) const = default;
};

struct QueueMessage {
  uint64_t id = 0;
  std::string name;
  uint64_t created_at_ms = 0;
};
struct QueueStatus {
  uint64_t size = 0, max_size = 0;
  std::vector<QueueMessage> messages;
  bool truncated = false;
};

// What the server sends first.
struct Init {
  std::vector<Connection> connections;
  std::optional<Bytes> state;  // absent when the actor has no state
  std::vector<std::string> rpcs;
  bool database_enabled = false;
  uint64_t queue_size = 0;
  std::optional<Bytes> workflow_history;
  bool workflow_enabled = false;
  std::vector<Schedule> schedules;
};

// ToClient, v6. `rid` present: the answer to a request; absent: a push.
Bytes encode_init(const Init& init);
Bytes encode_state_response(uint64_t rid, const std::optional<Bytes>& state);
Bytes encode_state_updated(std::span<const uint8_t> state);
Bytes encode_connections(std::optional<uint64_t> rid, const std::vector<Connection>& conns);
Bytes encode_action_response(uint64_t rid, std::span<const uint8_t> output);
Bytes encode_queue_updated(uint64_t size);
Bytes encode_queue_response(uint64_t rid, const QueueStatus& status);
Bytes encode_rpcs(uint64_t rid, const std::vector<std::string>& rpcs);
Bytes encode_trace_response(uint64_t rid, std::span<const uint8_t> payload);
// WorkflowHistoryResponse, or WorkflowReplayResponse with `replay`.
Bytes encode_workflow(uint64_t rid, bool replay, const std::optional<Bytes>& history, bool enabled);
Bytes encode_workflow_history_updated(std::span<const uint8_t> history);
Bytes encode_schedules(std::optional<uint64_t> rid, const std::vector<Schedule>& schedules);
// ScheduleHistoryResponse with no fires (Anvil keeps no fire history).
Bytes encode_schedule_history(uint64_t rid, const std::string& schedule_id);
Bytes encode_schedule_delete(uint64_t rid, const std::string& schedule_id, bool deleted);
// DatabaseSchemaResponse, or DatabaseTableRowsResponse with `rows`.
Bytes encode_database(uint64_t rid, bool rows, std::span<const uint8_t> cbor);
Bytes encode_error(std::string_view message);

// rivetkit's workflow history transport (its `transport/v1` BARE schema, the
// bytes the inspector's `workflowHistory` fields carry) from the JSON form
// the HTTP route answers ({nameRegistry, entries, entryMetadata}; runtime/
// inspect.hpp, kRivetWorkflow). Values inside become CBOR.
Result<Bytes> encode_workflow_history(const Value& history);

}  // namespace anvil::inspector
