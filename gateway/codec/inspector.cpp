#include "gateway/codec/inspector.hpp"

#include "base/value/cbor.hpp"
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

// The messages that are a tag, the request's id when an answer, and one
// `data` field.
Bytes tagged_data(Tag tag, std::optional<uint64_t> rid, std::span<const uint8_t> data) {
  bare::Writer w;
  w.uint(tag);
  if (rid) w.uint(*rid);
  w.data(data);
  return w.take();
}

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

Bytes encode_state_updated(std::span<const uint8_t> state) { return tagged_data(kStateUpdated, std::nullopt, state); }

Bytes encode_connections(std::optional<uint64_t> rid, const std::vector<Connection>& conns) {
  bare::Writer w;
  w.uint(rid ? kConnectionsResponse : kConnectionsUpdated);
  if (rid) w.uint(*rid);
  connections(w, conns);
  return w.take();
}

Bytes encode_action_response(uint64_t rid, std::span<const uint8_t> output) {
  return tagged_data(kActionResponse, rid, output);
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
  return tagged_data(kTraceQueryResponse, rid, payload);
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
  return tagged_data(kWorkflowHistoryUpdated, std::nullopt, history);
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
  return tagged_data(rows ? kDatabaseTableRowsResponse : kDatabaseSchemaResponse, rid, cbor);
}

Bytes encode_error(std::string_view message) {
  bare::Writer w;
  w.uint(kError);
  w.string(message);
  return w.take();
}

namespace {

// The history's JSON, read strictly: a field of the wrong type is an error.
struct HistoryWriter {
  bare::Writer w;
  std::string error;

  const Value& field(const Value& o, const char* name) {
    static const Value null;
    const Value* v = o.is_object() ? o.find(name) : nullptr;
    return v ? *v : null;
  }
  void fail(std::string why) {
    if (error.empty()) error = std::move(why);
  }
  uint64_t integer(const Value& v, const char* what) {
    if (v.is_int() && v.as_int() >= 0) return static_cast<uint64_t>(v.as_int());
    if (v.is_double() && v.as_double() >= 0 && v.as_double() < 18446744073709551616.0)  // finite, fits in u64
      return static_cast<uint64_t>(v.as_double());
    fail(std::string("workflow history: ") + what + " is not a non-negative integer");
    return 0;
  }
  std::string text(const Value& v) { return v.is_string() ? v.as_string() : std::string(); }
  void cbor(const Value& v) { w.data(cbor::encode(v, cbor::Mode::Compat)); }
  void optional_cbor(const Value& v) {
    w.optional_present(!v.is_null() && !v.is_undefined());
    if (!v.is_null() && !v.is_undefined()) cbor(v);
  }
  void optional_string(const Value& v) {
    w.optional_present(v.is_string());
    if (v.is_string()) w.string(v.as_string());
  }
  void optional_u64(const Value& v, const char* what) {
    w.optional_present(!v.is_null());
    if (!v.is_null()) w.u64(integer(v, what));
  }
  void enumeration(const Value& v, std::initializer_list<const char*> names, const char* what) {
    std::string s = text(v);
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    uint8_t i = 0;
    for (const char* n : names) {
      if (s == n) {
        w.u8(i);
        return;
      }
      ++i;
    }
    fail(std::string("workflow history: unknown ") + what + " `" + text(v) + "`");
  }
  void branches(const Value& v) {
    const Object empty;
    const Object& map = v.is_object() ? v.as_object() : empty;
    w.uint(map.size());
    for (const auto& [name, b] : map) {
      w.string(name);
      enumeration(field(b, "status"), {"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"}, "branch status");
      optional_cbor(field(b, "output"));
      optional_string(field(b, "error"));
    }
  }
  void kind(const Value& k) {
    static const char* kTags[] = {"WorkflowStepEntry",   "WorkflowLoopEntry",  "WorkflowSleepEntry",
                                  "WorkflowMessageEntry", "WorkflowRollbackCheckpointEntry",
                                  "WorkflowJoinEntry",   "WorkflowRaceEntry",  "WorkflowRemovedEntry",
                                  "WorkflowVersionCheckEntry"};
    const std::string tag = text(field(k, "tag"));
    const Value& v = field(k, "val");
    uint8_t t = 0;
    while (t < 9 && tag != kTags[t]) ++t;
    if (t == 9) return fail("workflow history: unknown entry kind `" + tag + "`");
    w.u8(t);
    switch (t) {
      case 0:  // step
        optional_cbor(field(v, "output"));
        optional_string(field(v, "error"));
        break;
      case 1:  // loop: Anvil keeps no loop state
        cbor(field(v, "state"));
        w.u32(static_cast<uint32_t>(integer(field(v, "iteration"), "loop iteration")));
        optional_cbor(field(v, "output"));
        break;
      case 2:  // sleep
        w.u64(integer(field(v, "deadline"), "sleep deadline"));
        enumeration(field(v, "state"), {"PENDING", "COMPLETED", "INTERRUPTED"}, "sleep state");
        break;
      case 3:  // message
        w.string(text(field(v, "name")));
        cbor(field(v, "messageData"));
        break;
      case 4:  // rollback checkpoint
        w.string(text(field(v, "name")));
        break;
      case 5:  // join
        branches(field(v, "branches"));
        break;
      case 6:  // race
        optional_string(field(v, "winner"));
        branches(field(v, "branches"));
        break;
      case 7:  // removed
        w.string(text(field(v, "originalType")));
        optional_string(field(v, "originalName"));
        break;
      case 8:  // version check
        w.u32(static_cast<uint32_t>(field(v, "resolved").is_int() ? field(v, "resolved").as_int() : 0));
        w.u32(static_cast<uint32_t>(field(v, "latest").is_int() ? field(v, "latest").as_int() : 0));
        break;
    }
  }
};

}  // namespace

Result<Bytes> encode_workflow_history(const Value& history) {
  HistoryWriter h;
  const Value& names = h.field(history, "nameRegistry");
  const Value& entries = h.field(history, "entries");
  const Value& metadata = h.field(history, "entryMetadata");
  if (!names.is_array() || !entries.is_array() || !metadata.is_object())
    return make_error("inspector", "invalid_history", "The workflow history lacks nameRegistry, entries or entryMetadata.");
  h.w.uint(names.as_array().size());
  for (const auto& n : names.as_array()) h.w.string(h.text(n));
  h.w.uint(entries.as_array().size());
  for (const auto& e : entries.as_array()) {
    h.w.string(h.text(h.field(e, "id")));
    const Value& location = h.field(e, "location");
    const Array none;
    const Array& segs = location.is_array() ? location.as_array() : none;
    h.w.uint(segs.size());
    for (const auto& seg : segs) {
      const Value& val = h.field(seg, "val");
      if (h.text(h.field(seg, "tag")) == "WorkflowLoopIterationMarker") {
        h.w.u8(1);
        h.w.u32(static_cast<uint32_t>(h.integer(h.field(val, "loop"), "loop name index")));
        h.w.u32(static_cast<uint32_t>(h.integer(h.field(val, "iteration"), "loop iteration")));
      } else {
        h.w.u8(0);
        h.w.u32(static_cast<uint32_t>(h.integer(val, "name index")));
      }
    }
    h.kind(h.field(e, "kind"));
  }
  h.w.uint(metadata.as_object().size());
  for (const auto& [id, m] : metadata.as_object()) {
    h.w.string(id);
    h.enumeration(h.field(m, "status"), {"PENDING", "RUNNING", "COMPLETED", "FAILED", "EXHAUSTED"}, "entry status");
    h.optional_string(h.field(m, "error"));
    h.w.u32(static_cast<uint32_t>(h.integer(h.field(m, "attempts"), "attempts")));
    h.w.u64(h.integer(h.field(m, "lastAttemptAt"), "lastAttemptAt"));
    h.w.u64(h.integer(h.field(m, "createdAt"), "createdAt"));
    h.optional_u64(h.field(m, "completedAt"), "completedAt");
    h.optional_u64(h.field(m, "rollbackCompletedAt"), "rollbackCompletedAt");
    h.optional_string(h.field(m, "rollbackError"));
  }
  if (!h.error.empty()) return make_error("inspector", "invalid_history", h.error);
  return h.w.take();
}

}  // namespace anvil::inspector
