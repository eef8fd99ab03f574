#include "gateway/codec/inspector.hpp"

#include "gateway/codec/bare.hpp"

namespace anvil::inspector {
namespace {

// ToClient tags, v6.
enum Tag : uint8_t {
  kStateResponse = 0,
  kConnectionsResponse = 1,
  kActionResponse = 2,
  kConnectionsUpdated = 3,
  kQueueUpdated = 4,
  kStateUpdated = 5,
  kWorkflowHistoryUpdated = 6,
  kSchedulesUpdated = 7,
  kRpcsListResponse = 8,
  kTraceQueryResponse = 9,
  kQueueResponse = 10,
  kWorkflowHistoryResponse = 11,
  kWorkflowReplayResponse = 12,
  kSchedulesResponse = 13,
  kScheduleHistoryResponse = 14,
  kScheduleDeleteResponse = 15,
  kError = 16,
  kInit = 17,
  kDatabaseSchemaResponse = 18,
  kDatabaseTableRowsResponse = 19,
};

void optional_data(bare::Writer& w, const std::optional<Bytes>& d) {
  w.optional_present(d.has_value());
  if (d) w.data(*d);
}

void connections(bare::Writer& w, const std::vector<Connection>& conns) {
  w.uint(conns.size());
  for (const auto& c : conns) {
    w.string(c.id);
    w.data(c.details);
  }
}

void schedules(bare::Writer& w, const std::vector<Schedule>& list) {
  w.uint(list.size());
  for (const auto& s : list) {
    w.string(s.id);
    w.optional_present(s.name.has_value());
    if (s.name) w.string(*s.name);
    w.string(s.kind);
    w.string(s.action);
    w.data(s.args);
    w.uint(s.next_run_at);
    w.optional_present(false);  // lastRunAt: not kept
    w.optional_present(false);  // expression (cron): none
    w.optional_present(false);  // timezone: none
    w.optional_present(s.interval_ms.has_value());
    if (s.interval_ms) w.uint(*s.interval_ms);
    w.optional_present(false);  // maxHistory: no fire history
  }
}

}  // namespace

Result<Request> decode_request(std::span<const uint8_t> frame) {
  bare::Reader r(frame);
  Request q;
  const uint64_t tag = r.uint();
  if (r.ok() && tag > static_cast<uint64_t>(Request::Kind::kScheduleDelete))
    return make_error("inspector", "invalid_request", "Unknown inspector message tag " + std::to_string(tag) + ".");
  q.kind = static_cast<Request::Kind>(tag);
  using K = Request::Kind;
  if (q.kind == K::kPatchState) {
    q.data = r.data();
  } else {
    q.id = r.uint();
    switch (q.kind) {
      case K::kAction:
        q.name = r.string();
        q.data = r.data();
        break;
      case K::kTraceQuery:
        q.start_ms = r.uint();
        q.end_ms = r.uint();
        q.limit = r.uint();
        break;
      case K::kQueue:
        q.limit = r.uint();
        break;
      case K::kWorkflowReplay:
        if (r.optional_present()) q.entry_id = r.string();
        break;
      case K::kDatabaseTableRows:
        q.name = r.string();
        q.limit = r.uint();
        q.offset = r.uint();
        break;
      case K::kScheduleHistory:
        q.name = r.string();
        q.limit = r.uint();
        break;
      case K::kScheduleDelete:
        q.name = r.string();
        q.schedule_kind = r.string();
        break;
      default:  // the id alone
        break;
    }
  }
  if (auto st = r.finish(); !st.ok())
    return make_error("inspector", "invalid_request", "Malformed inspector message: " + st.error().message);
  return q;
}

Bytes encode_init(const Init& init) {
  bare::Writer w;
  w.uint(kInit);
  connections(w, init.connections);
  optional_data(w, init.state);
  w.boolean(true);  // isStateEnabled
  w.uint(init.rpcs.size());
  for (const auto& n : init.rpcs) w.string(n);
  w.boolean(init.database_enabled);
  w.uint(init.queue_size);
  optional_data(w, init.workflow_history);
  w.boolean(init.workflow_enabled);
  w.uint(0);  // tabConfig: no custom tabs
  schedules(w, init.schedules);
  return w.take();
}

Bytes encode_state_response(uint64_t rid, const std::optional<Bytes>& state) {
  bare::Writer w;
  w.uint(kStateResponse);
  w.uint(rid);
  optional_data(w, state);
  w.boolean(true);
  return w.take();
}

Bytes encode_state_updated(std::span<const uint8_t> state) {
  bare::Writer w;
  w.uint(kStateUpdated);
  w.data(state);
  return w.take();
}

Bytes encode_connections(std::optional<uint64_t> rid, const std::vector<Connection>& conns) {
  bare::Writer w;
  w.uint(rid ? kConnectionsResponse : kConnectionsUpdated);
  if (rid) w.uint(*rid);
  connections(w, conns);
  return w.take();
}

Bytes encode_action_response(uint64_t rid, std::span<const uint8_t> output) {
  bare::Writer w;
  w.uint(kActionResponse);
  w.uint(rid);
  w.data(output);
  return w.take();
}

Bytes encode_queue_updated(uint64_t size) {
  bare::Writer w;
  w.uint(kQueueUpdated);
  w.uint(size);
  return w.take();
}

Bytes encode_queue_response(uint64_t rid, const QueueStatus& s) {
  bare::Writer w;
  w.uint(kQueueResponse);
  w.uint(rid);
  w.uint(s.size);
  w.uint(s.max_size);
  w.uint(s.messages.size());
  for (const auto& m : s.messages) {
    w.uint(m.id);
    w.string(m.name);
    w.uint(m.created_at_ms);
  }
  w.boolean(s.truncated);
  return w.take();
}

Bytes encode_rpcs(uint64_t rid, const std::vector<std::string>& rpcs) {
  bare::Writer w;
  w.uint(kRpcsListResponse);
  w.uint(rid);
  w.uint(rpcs.size());
  for (const auto& n : rpcs) w.string(n);
  return w.take();
}

Bytes encode_trace_response(uint64_t rid, std::span<const uint8_t> payload) {
  bare::Writer w;
  w.uint(kTraceQueryResponse);
  w.uint(rid);
  w.data(payload);
  return w.take();
}

Bytes encode_workflow(uint64_t rid, bool replay, const std::optional<Bytes>& history, bool enabled) {
  bare::Writer w;
  w.uint(replay ? kWorkflowReplayResponse : kWorkflowHistoryResponse);
  w.uint(rid);
  optional_data(w, history);
  w.boolean(enabled);
  return w.take();
}

Bytes encode_workflow_history_updated(std::span<const uint8_t> history) {
  bare::Writer w;
  w.uint(kWorkflowHistoryUpdated);
  w.data(history);
  return w.take();
}

Bytes encode_schedules(std::optional<uint64_t> rid, const std::vector<Schedule>& list) {
  bare::Writer w;
  w.uint(rid ? kSchedulesResponse : kSchedulesUpdated);
  if (rid) w.uint(*rid);
  schedules(w, list);
  return w.take();
}

Bytes encode_schedule_history(uint64_t rid, const std::string& schedule_id) {
  bare::Writer w;
  w.uint(kScheduleHistoryResponse);
  w.uint(rid);
  w.string(schedule_id);
  w.uint(0);
  return w.take();
}

Bytes encode_schedule_delete(uint64_t rid, const std::string& schedule_id, bool deleted) {
  bare::Writer w;
  w.uint(kScheduleDeleteResponse);
  w.uint(rid);
  w.string(schedule_id);
  w.boolean(deleted);
  return w.take();
}

Bytes encode_database(uint64_t rid, bool rows, std::span<const uint8_t> cbor) {
  bare::Writer w;
  w.uint(rows ? kDatabaseTableRowsResponse : kDatabaseSchemaResponse);
  w.uint(rid);
  w.data(cbor);
  return w.take();
}

Bytes encode_error(std::string_view message) {
  bare::Writer w;
  w.uint(kError);
  w.string(message);
  return w.take();
}

}  // namespace anvil::inspector
