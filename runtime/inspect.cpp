#include "runtime/inspect.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <span>

#include <sqlite3.h>

#include "base/value/cbor.hpp"
#include "base/value/detail.hpp"
#include "runtime/actor_db.hpp"
#include "runtime/actor_key.hpp"
#include "runtime/instance_support.hpp"
#include "runtime/sqlite_vfs.hpp"
#include "storage/records.hpp"
#include "storage/store.hpp"

namespace anvil::inspect {
namespace {

std::span<const uint8_t> as_span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Value key_json(const std::string& serialized) {
  Array key;
  for (auto& part : deserialize_key(serialized)) key.emplace_back(std::move(part));
  return Value(std::move(key));
}

Value opt_ms(int64_t ms) { return ms ? Value(ms) : Value(); }

Result<size_t> count_prefix(const storage::Store& store, storage::Family f, const std::string& prefix) {
  size_t n = 0;
  auto st = store.scan_prefix(f, prefix, [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  if (!st.ok()) return st.error();
  return n;
}

Error not_found(const std::string& id) {
  return make_error("actor", "not_found", "The actor does not exist or was destroyed.", obj({{"actor_id", id}}));
}

Result<Value> decode_user_value(const std::string& cbor_bytes) {
  if (cbor_bytes.empty()) return Value();
  return cbor::decode(as_span(cbor_bytes), cbor::Mode::Storage);
}

// KV keys and values are bytes: a string when they are text, else bytes.
Value bytes_or_text(std::string_view b) {
  if (detail::valid_utf8(b)) return Value(b);
  return Value(Bytes(b.begin(), b.end()));
}

Result<Value> schedules(const storage::Store& store, const std::string& id) {
  Array out;
  Status failure = Ok{};
  auto st = store.scan_prefix(storage::Family::kSchedules, id, [&](std::string_view, std::string_view v) {
    auto row = storage::decode_schedule_row(v);
    Result<Value> args = row.ok() ? decode_user_value(row->args) : Result<Value>(row.error());
    if (!args.ok()) {
      failure = args.error();
      return false;
    }
    out.push_back(obj({{"id", row->id},
                       {"action", row->action},
                       {"args", std::move(*args)},
                       {"dueTs", row->due_ts},
                       {"createdTs", row->created_ts},
                       {"intervalMs", row->interval_ms > 0 ? Value(row->interval_ms) : Value()},
                       {"name", row->name.empty() ? Value() : Value(row->name)}}));
    return true;
  });
  if (!st.ok()) return st.error();
  if (!failure.ok()) return failure.error();
  std::stable_sort(out.begin(), out.end(),
                   [](const Value& a, const Value& b) { return a.find("dueTs")->as_int() < b.find("dueTs")->as_int(); });
  return Value(std::move(out));
}

Result<Value> kv(const storage::Store& store, const std::string& id, const std::string& prefix) {
  Array out;
  auto st = store.scan_prefix(storage::Family::kKv, id + prefix, [&](std::string_view k, std::string_view v) {
    out.push_back(obj({{"key", bytes_or_text(k.substr(id.size()))}, {"value", bytes_or_text(v)}}));
    return true;
  });
  if (!st.ok()) return st.error();
  return Value(std::move(out));
}

Result<Value> sql(const storage::Store& store, const std::string& id, const std::string& text) {
  // A private copy of the durable pages, opened through the actor VFS:
  // nothing the statement could do reaches the actor's database.
  db::PageFile file;
  auto st = store.scan_prefix(storage::Family::kDbPages, id, [&](std::string_view k, std::string_view v) {
    file.load(db::page_number(k, id.size()), v);
    return true;
  });
  if (!st.ok()) return st.error();
  if (file.size() == 0) return make_error("db", "not_found", "The actor has no database.", obj({{"actor_id", id}}));
  sqlite3* conn = nullptr;
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(nullptr, sqlite3_close_v2);
  if (int rc = db::open_database(file, "inspect-" + id, &conn); rc != SQLITE_OK) {
    guard.reset(conn);
    return make_error("db", "query_failed", std::string("cannot open the database: ") + sqlite3_errstr(rc));
  }
  guard.reset(conn);
  sqlite3_exec(conn, "PRAGMA query_only = ON", nullptr, nullptr, nullptr);
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(conn, text.c_str(), static_cast<int>(text.size()), &stmt, &tail) != SQLITE_OK)
    return make_error("db", "query_failed", sqlite3_errmsg(conn));
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt_guard(stmt, sqlite3_finalize);
  if (!stmt) return make_error("validation", "invalid_input", "The SQL text holds no statement.");
  for (const char* p = tail; p && *p; ++p)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';')
      return make_error("validation", "invalid_input", "One statement at a time.");
  if (!sqlite3_stmt_readonly(stmt))
    return make_error("validation", "invalid_input", "Only read-only statements (SELECT, read-only PRAGMAs).");
  Array columns;
  const int n = sqlite3_column_count(stmt);
  for (int i = 0; i < n; ++i) columns.emplace_back(sqlite3_column_name(stmt, i));
  Array rows;
  bool truncated = false;
  for (;;) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return make_error("db", "query_failed", sqlite3_errmsg(conn));
    if (rows.size() == kMaxSqlRows) {
      truncated = true;
      break;
    }
    Array row;
    for (int i = 0; i < n; ++i) row.push_back(sqlite_column(stmt, i));
    rows.emplace_back(std::move(row));
  }
  return obj({{"columns", Value(std::move(columns))}, {"rows", Value(std::move(rows))}, {"truncated", truncated}});
}

Result<Value> queue(const storage::Store& store, const std::string& id, const std::string& limit_arg) {
  size_t limit = 100;
  if (!limit_arg.empty()) {
    char* end = nullptr;
    const long n = std::strtol(limit_arg.c_str(), &end, 10);
    if (*end == '\0' && n > 0) limit = static_cast<size_t>(n);
  }
  Array messages;
  int64_t size = 0;
  Status failure = Ok{};
  auto st = store.scan_prefix(storage::Family::kQueue, id, [&](std::string_view, std::string_view v) {
    ++size;
    if (messages.size() == limit) return true;  // counted, not shown
    auto row = storage::decode_queue_row(v);
    Result<Value> body = row.ok() ? decode_user_value(row->body) : Result<Value>(row.error());
    if (!body.ok()) {
      failure = body.error();
      return false;
    }
    messages.push_back(obj({{"id", static_cast<int64_t>(row->id)},
                            {"name", row->name},
                            {"createdAtMs", row->created_ts},
                            {"body", std::move(*body)}}));
    return true;
  });
  if (!st.ok()) return st.error();
  if (!failure.ok()) return failure.error();
  return obj({{"size", size},
              {"maxSize", static_cast<int64_t>(detail::kMaxQueueSize)},
              {"truncated", size > static_cast<int64_t>(messages.size())},
              {"messages", Value(std::move(messages))}});
}

// rivetkit's entry kind for an Anvil record ({tag, val}).
Value rivet_kind(const storage::WorkflowRow& row, const Value& result) {
  auto tagged = [](const char* tag, Value val) { return obj({{"tag", tag}, {"val", std::move(val)}}); };
  const Value error = row.error.empty() ? Value() : Value(row.error);
  if (row.kind == "step") return tagged("WorkflowStepEntry", obj({{"output", result}, {"error", error}}));
  if (row.kind == "loop")
    return tagged("WorkflowLoopEntry",
                  obj({{"iteration", static_cast<int64_t>(row.iteration)},
                       {"output", row.status == "completed" ? result : Value()}}));
  if (row.kind == "queue") {
    const Value* name = result.find("name");
    return tagged("WorkflowMessageEntry",
                  obj({{"name", name ? *name : Value()}, {"messageData", result}}));
  }
  if (row.kind == "sleep")
    return tagged("WorkflowSleepEntry",
                  obj({{"deadline", row.wake_ts}, {"state", row.status == "completed" ? "completed" : "pending"}}));
  if (row.kind == "rollback_checkpoint") {
    const size_t slash = row.path.rfind('/');
    return tagged("WorkflowRollbackCheckpointEntry",
                  obj({{"name", slash == std::string::npos ? row.path : row.path.substr(slash + 1)}}));
  }
  if (row.kind == "join") return tagged("WorkflowJoinEntry", obj({{"branches", Object{}}}));
  if (row.kind == "race") return tagged("WorkflowRaceEntry", obj({{"winner", Value()}, {"branches", Object{}}}));
  if (row.kind == "removed")
    return tagged("WorkflowRemovedEntry", obj({{"originalType", Value()}, {"originalName", Value()}}));
  if (row.kind == "version_check")
    return tagged("WorkflowVersionCheckEntry", obj({{"resolved", result}, {"latest", result}}));
  return tagged("WorkflowStepEntry", obj({{"output", result}, {"error", error}}));
}

std::string rivet_status(const std::string& status) {
  if (status == "completed") return "COMPLETED";
  if (status == "failed") return "FAILED";
  if (status == "waiting") return "PENDING";
  return "RUNNING";
}

}  // namespace

Result<Value> rivet_workflow_history(const storage::Store& store, const std::string& actor_id) {
  std::vector<storage::WorkflowRow> rows;
  Status failure = Ok{};
  auto st = store.scan_prefix(storage::Family::kWorkflow, actor_id, [&](std::string_view, std::string_view v) {
    auto row = storage::decode_workflow_row(v);
    if (!row.ok()) {
      failure = row.error();
      return false;
    }
    rows.push_back(std::move(*row));
    return true;
  });
  if (!st.ok()) return st.error();
  if (!failure.ok()) return failure.error();
  if (rows.empty()) return obj({{"history", Value()}, {"workflowState", Value()}});

  // History order: by start, then path (a parent before its children).
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.started_ts != b.started_ts ? a.started_ts < b.started_ts : a.path < b.path;
  });
  Array names;
  std::map<std::string, int64_t> index;
  auto name_index = [&](const std::string& n) {
    auto [it, added] = index.try_emplace(n, static_cast<int64_t>(names.size()));
    if (added) names.emplace_back(n);
    return it->second;
  };
  Array entries;
  Object metadata;
  Value workflow_state;
  bool waiting = false;
  for (const auto& row : rows) waiting = waiting || row.status == "waiting";
  for (const auto& row : rows) {
    if (row.path.empty()) {
      // The run itself: its status is the workflow's state.
      if (row.status == "running") workflow_state = waiting ? "sleeping" : "running";
      else workflow_state = row.status;
      continue;
    }
    if (row.path.find('#') != std::string::npos) continue;  // a rollback's own record
    auto result = decode_user_value(row.result);
    if (!result.ok()) return result.error();
    // "a~3/b" => a, {loop a, iteration 3}, b
    Array location;
    size_t start = 0;
    for (;;) {
      const size_t slash = row.path.find('/', start);
      std::string seg = row.path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      const size_t tilde = seg.rfind('~');
      if (tilde != std::string::npos) {
        const int64_t loop = name_index(seg.substr(0, tilde));
        location.push_back(obj({{"tag", "WorkflowNameIndex"}, {"val", loop}}));
        location.push_back(obj({{"tag", "WorkflowLoopIterationMarker"},
                                {"val", obj({{"loop", loop}, {"iteration", static_cast<int64_t>(std::strtoll(seg.c_str() + tilde + 1, nullptr, 10))}})}}));
      } else {
        location.push_back(obj({{"tag", "WorkflowNameIndex"}, {"val", name_index(seg)}}));
      }
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    entries.push_back(obj({{"id", row.path}, {"location", Value(std::move(location))}, {"kind", rivet_kind(row, *result)}}));
    metadata.emplace_back(row.path, obj({{"status", rivet_status(row.status)},
                                         {"error", row.error.empty() ? Value() : Value(row.error)},
                                         {"attempts", static_cast<int64_t>(row.attempts)},
                                         {"lastAttemptAt", row.started_ts},
                                         {"createdAt", row.started_ts},
                                         {"completedAt", row.completed_ts ? Value(row.completed_ts) : Value()},
                                         {"rollbackCompletedAt", Value()},
                                         {"rollbackError", Value()}}));
  }
  Value history = obj({{"nameRegistry", Value(std::move(names))},
                       {"entries", Value(std::move(entries))},
                       {"entryMetadata", Value(std::move(metadata))}});
  return obj({{"history", std::move(history)}, {"workflowState", std::move(workflow_state)}});
}

Result<Value> workflow_history(const storage::Store& store, const std::string& actor_id) {
  Array steps;
  Status failure = Ok{};
  auto st = store.scan_prefix(storage::Family::kWorkflow, actor_id, [&](std::string_view, std::string_view v) {
    auto row = storage::decode_workflow_row(v);
    if (!row.ok()) {
      failure = row.error();
      return false;
    }
    Object o{{"path", row->path}, {"kind", row->kind}, {"status", row->status},
             {"attempts", static_cast<int64_t>(row->attempts)}, {"startedTs", row->started_ts},
             {"completedTs", row->completed_ts ? Value(row->completed_ts) : Value()}};
    if (!row->error.empty()) o.emplace_back("error", row->error);
    if (row->kind == "loop") o.emplace_back("iteration", static_cast<int64_t>(row->iteration));
    if (row->wake_ts) o.emplace_back("wakeTs", row->wake_ts);
    steps.emplace_back(Value(std::move(o)));
    return true;
  });
  if (!st.ok()) return st.error();
  if (!failure.ok()) return failure.error();
  return Value(std::move(steps));
}

Result<Value> actor_view(const storage::Store& store, const std::string& actor_id, View view,
                         const std::string& arg, const AwakeFn& awake) {
  if (view == View::kDetail || view == View::kState) {
    auto detail = get_actor(store, actor_id, awake);
    if (!detail.ok() || view == View::kDetail) return detail;
    return *detail->find("state");
  }
  auto raw = store.get(storage::Family::kActors, actor_id);
  if (!raw.ok()) return raw.error();
  if (!*raw) return not_found(actor_id);
  switch (view) {
    case View::kSchedules:
      return schedules(store, actor_id);
    case View::kKv:
      return kv(store, actor_id, arg);
    case View::kWorkflow:
      return workflow_history(store, actor_id);
    case View::kSql:
      return sql(store, actor_id, arg);
    case View::kQueue:
      return queue(store, actor_id, arg);
    case View::kRivetWorkflow:
      return rivet_workflow_history(store, actor_id);
    default:
      break;
  }
  return make_error("validation", "invalid_input", "Unknown view.");
}

bool key_has_prefix(const std::vector<std::string>& key, const std::string& prefix) {
  if (prefix.empty()) return true;
  const ActorKey want = deserialize_key(prefix);
  if (want.empty()) return true;  // "/" is the empty key: a prefix of every key
  if (key.size() < want.size()) return false;
  for (size_t i = 0; i + 1 < want.size(); ++i)
    if (key[i] != want[i]) return false;
  const std::string& last = want.back();
  return key[want.size() - 1].compare(0, last.size(), last) == 0;
}

Value actor_summary(const storage::ActorRow& row, bool awake) {
  return obj({{"id", row.actor_id}, {"name", row.name}, {"key", key_json(row.key)}, {"awake", awake}});
}

Result<Value> list_actors(const storage::Store& store, const ActorFilter& filter, const AwakeFn& awake) {
  const size_t limit = std::clamp<size_t>(filter.limit, 1, 1000);
  Array out;
  bool more = false;
  Status failure = Ok{};
  // One actor's record against the filter; false ends the scan.
  auto consider = [&](const storage::ActorRow& row) {
    if (!filter.namespace_name.empty() && row.namespace_name != filter.namespace_name) return true;
    if (!filter.name.empty() && row.name != filter.name) return true;
    if (!filter.key_prefix.empty() && !key_has_prefix(deserialize_key(row.key), filter.key_prefix)) return true;
    const bool is_awake = awake(row);
    if (filter.awake && *filter.awake != is_awake) return true;
    if (out.size() == limit) {
      more = true;
      return false;
    }
    out.push_back(actor_summary(row, is_awake));
    return true;
  };
  if (!filter.name.empty()) {
    // By type: the key index's range of (namespace, name) in each namespace
    // (or the one asked for), in key order; only that type's records are
    // read. A cursor (an actor id) resumes after that actor's key.
    std::string after;
    if (!filter.cursor.empty()) {
      auto raw = store.get(storage::Family::kActors, filter.cursor);
      if (!raw.ok()) return raw.error();
      if (!*raw)
        return make_error("validation", "invalid_input",
                          "The cursor names an actor that no longer exists; list again from the start.");
      auto row = storage::decode_actor_row(**raw);
      if (!row.ok()) return row.error();
      after = row->namespace_name + '\0' + row->name + '\0' + row->key;
    }
    std::string ns = filter.namespace_name;
    if (!after.empty()) ns = after.substr(0, after.find('\0'));
    bool done = false;
    while (!done && failure.ok()) {
      if (filter.namespace_name.empty() && ns.empty() && after.empty()) {
        // The first namespace: the index's first key.
        Status st = store.scan(storage::Family::kKeyIndex, [&](std::string_view k, std::string_view) {
          ns.assign(k.substr(0, k.find('\0')));
          return false;
        });
        if (!st.ok()) return st.error();
        if (ns.empty()) break;
      }
      const std::string prefix = ns + '\0' + filter.name + '\0';
      const std::string start = after.empty() ? prefix : after;
      Status st = store.scan_from(storage::Family::kKeyIndex, start, [&](std::string_view k, std::string_view id) {
        if (k.substr(0, prefix.size()) != prefix) return false;
        if (k == after) return true;
        auto raw = store.get(storage::Family::kActors, id);
        if (!raw.ok()) {
          failure = raw.error();
          return false;
        }
        if (!*raw) return true;  // destroyed meanwhile
        auto row = storage::decode_actor_row(**raw);
        if (!row.ok()) {
          failure = row.error();
          return false;
        }
        if (!consider(*row)) {
          done = true;
          return false;
        }
        return true;
      });
      if (!st.ok()) return st.error();
      after.clear();
      if (!filter.namespace_name.empty()) break;
      // The next namespace after this one.
      const std::string next = storage::prefix_end(ns + '\0');
      ns.clear();
      if (next.empty()) break;
      st = store.scan_from(storage::Family::kKeyIndex, next, [&](std::string_view k, std::string_view) {
        ns.assign(k.substr(0, k.find('\0')));
        return false;
      });
      if (!st.ok()) return st.error();
      if (ns.empty()) break;
    }
  } else {
    auto visit = [&](std::string_view k, std::string_view v) {
      if (!filter.cursor.empty() && k <= filter.cursor) return true;  // Seek lands on the cursor itself
      auto row = storage::decode_actor_row(v);
      if (!row.ok()) {
        failure = row.error();
        return false;
      }
      return consider(*row);
    };
    // Actor ids are fixed-width, so id order is key order; a cursor resumes
    // with a seek rather than a walk from the start.
    Status st = filter.cursor.empty() ? store.scan(storage::Family::kActors, visit)
                                      : store.scan_from(storage::Family::kActors, filter.cursor, visit);
    if (!st.ok()) return st.error();
  }
  if (!failure.ok()) return failure.error();
  Value cursor;
  if (more) cursor = out.back().find("id")->as_string();
  return obj({{"actors", Value(std::move(out))}, {"cursor", std::move(cursor)}});
}

Result<Value> get_actor(const storage::Store& store, const std::string& actor_id, const AwakeFn& awake) {
  auto raw = store.get(storage::Family::kActors, actor_id);
  if (!raw.ok()) return raw.error();
  if (!*raw) return not_found(actor_id);
  auto row = storage::decode_actor_row(**raw);
  if (!row.ok()) return row.error();

  Value state;
  int64_t state_bytes = 0;
  bool initialized = false;
  auto srow_raw = store.get(storage::Family::kState, actor_id);
  if (!srow_raw.ok()) return srow_raw.error();
  if (*srow_raw) {
    auto srow = storage::decode_state_row(**srow_raw);
    if (!srow.ok()) return srow.error();
    initialized = srow->initialized;
    state_bytes = static_cast<int64_t>(srow->state.size());
    if (!srow->state.empty()) {
      auto v = cbor::decode(as_span(srow->state), cbor::Mode::Storage);
      if (!v.ok()) return v.error();
      state = std::move(*v);
    }
  }
  Value input;
  if (row->has_input) {
    auto v = cbor::decode(as_span(row->input), cbor::Mode::Storage);
    if (!v.ok()) return v.error();
    input = std::move(*v);
  }

  Value out = actor_summary(*row, awake(*row));
  Object& o = out.as_object();
  o.emplace_back("namespace", row->namespace_name);
  // null for a record from before tokens, until the actor's next start.
  o.emplace_back("inspectorToken", row->inspector_token.empty() ? Value() : Value(row->inspector_token));
  o.emplace_back("state", std::move(state));
  o.emplace_back("stateBytes", state_bytes);
  o.emplace_back("stateInitialized", initialized);
  o.emplace_back("input", std::move(input));
  o.emplace_back("createdAt", row->create_ts);
  o.emplace_back("startTs", opt_ms(row->start_ts));
  o.emplace_back("sleepTs", opt_ms(row->sleep_ts));
  o.emplace_back("generation", static_cast<int64_t>(row->generation));
  const std::pair<const char*, storage::Family> counts[] = {
      {"kvKeys", storage::Family::kKv},
      {"queueMessages", storage::Family::kQueue},
      {"schedules", storage::Family::kSchedules},
      {"workflowRecords", storage::Family::kWorkflow},
      {"dbPages", storage::Family::kDbPages},
  };
  for (const auto& [field, family] : counts) {
    auto n = count_prefix(store, family, actor_id);
    if (!n.ok()) return n.error();
    o.emplace_back(field, static_cast<int64_t>(*n));
  }
  return out;
}

}  // namespace anvil::inspect
