// taskSession [orgId, repoId, taskId, sessionId]: one session's transcript,
// model and runtime status, shared by every user of the task; pushes its
// summary to its task. sessionStatusSync [same key]: its 0..1 child that
// keeps the runtime status in sync with the session's runtime in the task's
// sandbox.
#include "actors/workbench/common.hpp"
#include "actors/workbench/workbench.hpp"

namespace anvil::workbench {
namespace {

const std::vector<std::string> kMigrations = {
    std::string(kOutboxTable) + ";" +
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT UNIQUE, author TEXT NOT NULL, "
        "role TEXT NOT NULL, text TEXT NOT NULL, at INTEGER NOT NULL);",
};

constexpr size_t kMaxMessage = 64 * 1024;
constexpr int64_t kSnapshotMessages = 200;

ActorKey task_key(const ActorContext& c) { return key_prefix(c.key(), 3); }

Value session_summary(const ActorContext& c) {
  const Value& s = c.state();
  return obj({{"sessionId", Value(c.key().at(3))},
              {"title", *s.find("title")},
              {"model", *s.find("model")},
              {"runtimeStatus", *s.find("runtimeStatus")},
              {"messageCount", *s.find("messageCount")},
              {"lastMessage", *s.find("lastMessage")},
              {"version", *s.find("version")}});
}

// A change of the session: next version, subscribers told, the summary
// pushed to the task.
Status changed(ActorContext& c) {
  c.mutate_state()["version"] = int_or(c.state(), "version", 0) + 1;
  Value s = session_summary(c);
  publish(c, "sessionUpdated", {{"session", s}});
  return outbox_call(c, "task", task_key(c), "_sessionChanged", std::move(s));
}

Value message_row(const Value& r) {
  return obj({{"seq", *r.find("seq")},
              {"author", *r.find("author")},
              {"role", *r.find("role")},
              {"text", *r.find("text")},
              {"at", *r.find("at")},
              {"clientMessageId", *r.find("client_id")}});
}

Result<Value> init(ActionContext& c, const Array& args) {
  if (auto st = require_caller(c, "task", task_key(c)); !st.ok()) return st.error();
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  if (int_or(c.state(), "version", 0) == 0) {
    c.mutate_state()["title"] = str_or(*o, "title");
    c.mutate_state()["model"] = str_or(*o, "model");
    c.mutate_state()["version"] = 1;
  }
  return session_summary(c);
}

// sendMessage({text, author?, role?, clientMessageId?}): appended once per
// clientMessageId; every subscriber of the session gets transcriptAppended.
Result<Value> send_message(ActionContext& c, const Array& args) {
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  auto text = string_field(*o, "text", kMaxMessage);
  if (!text.ok()) return text.error();
  auto author = string_field(*o, "author", 128, std::string("anonymous"));
  if (!author.ok()) return author.error();
  auto role = string_field(*o, "role", 32, std::string("user"));
  if (!role.ok()) return role.error();
  auto client_id = string_field(*o, "clientMessageId", 128, std::string());
  if (!client_id.ok()) return client_id.error();
  if (!client_id->empty()) {
    auto seen = c.db().query("SELECT seq, author, role, text, at, client_id FROM messages WHERE client_id = ?",
                             {Value(*client_id)});
    if (!seen.ok()) return seen.error();
    if (!seen->empty()) return message_row((*seen)[0]);
  }
  const int64_t now = now_unix_ms();
  auto ins = c.db().exec("INSERT INTO messages (client_id, author, role, text, at) VALUES (?, ?, ?, ?, ?)",
                         {client_id->empty() ? Value() : Value(*client_id), Value(*author), Value(*role), Value(*text),
                          Value(now)});
  if (!ins.ok()) return ins.error();
  Value message = obj({{"seq", Value(ins->last_insert_rowid)},
                       {"author", Value(*author)},
                       {"role", Value(*role)},
                       {"text", Value(*text)},
                       {"at", Value(now)},
                       {"clientMessageId", client_id->empty() ? Value() : Value(*client_id)}});
  c.mutate_state()["messageCount"] = int_or(c.state(), "messageCount", 0) + 1;
  c.mutate_state()["lastMessage"] = text->substr(0, 200);
  publish(c, "transcriptAppended", {{"message", message}});
  if (auto st = changed(c); !st.ok()) return st.error();
  return message;
}

Result<Array> messages_after(ActorContext& c, int64_t after, int64_t limit) {
  auto rows = c.db().query(
      "SELECT seq, author, role, text, at, client_id FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
      {Value(after), Value(limit)});
  if (!rows.ok()) return rows.error();
  Array out;
  for (const auto& r : *rows) out.push_back(message_row(r));
  return out;
}

Result<Value> get_transcript(ActionContext& c, const Array& args) {
  Value o = args.empty() || args[0].is_nullish() ? Value(Object{}) : args[0];
  const int64_t after = int_or(o, "afterSeq", 0);
  const int64_t limit = std::clamp<int64_t>(int_or(o, "limit", 500), 1, 5000);
  auto m = messages_after(c, after, limit);
  if (!m.ok()) return m.error();
  return Value(std::move(*m));
}

Result<Value> get_snapshot(ActionContext& c, const Array&) {
  auto last = c.db().query("SELECT COALESCE(MAX(seq), 0) AS top FROM messages");
  if (!last.ok()) return last.error();
  auto m = messages_after(c, std::max<int64_t>(0, int_or((*last)[0], "top", 0) - kSnapshotMessages), kSnapshotMessages);
  if (!m.ok()) return m.error();
  Value s = session_summary(c);
  s["seq"] = current_seq(c);
  s["sandbox"] = *c.state().find("sandbox");
  s["messages"] = Value(std::move(*m));
  return s;
}

Result<Value> set_model(ActionContext& c, const Array& args) {
  auto model = string_arg(args, 0, "model", 128);
  if (!model.ok()) return model.error();
  if (str_or(c.state(), "model") == *model) return session_summary(c);
  c.mutate_state()["model"] = *model;
  if (auto st = changed(c); !st.ok()) return st.error();
  return session_summary(c);
}

// task -> the task's active sandbox (where this session's runtime runs):
// (re)starts the status sync.
Task<Result<Value>> attach_sandbox(ActionContext& c, Array args) {
  if (auto st = require_caller(c, "task", task_key(c)); !st.ok()) co_return st.error();
  // Pushes may come batched: the last sandbox is the active one.
  if (args.empty() || !args.back().is_object()) co_return invalid_argument("_attachSandbox takes the sandbox.");
  const Value box = args.back();
  c.mutate_state()["sandbox"] = box;
  std::string type = "sessionStatusSync";
  std::string action = "_start";
  ActorKey key = c.key();
  Array start_args{box};
  auto started = co_await c.call(std::move(type), std::move(key), std::move(action), std::move(start_args));
  if (!started.ok()) co_return started.error();
  co_return Value(true);
}

// sessionStatusSync -> the runtime reports a new status.
Result<bool> runtime_status(ActionContext& c, const Value& item) {
  if (auto st = require_caller(c, "sessionStatusSync", c.key()); !st.ok()) return st.error();
  auto status = string_arg(Array{item}, 0, "status", 64);
  if (!status.ok()) return status.error();
  if (str_or(c.state(), "runtimeStatus") == *status) return false;
  c.mutate_state()["runtimeStatus"] = *status;
  if (auto st = changed(c); !st.ok()) return st.error();
  return true;
}

Task<Result<Value>> destroy(ActionContext& c, Array) {
  if (auto st = require_caller(c, "task", task_key(c)); !st.ok()) co_return st.error();
  if (c.state().find("sandbox") && c.state().find("sandbox")->is_object()) {
    std::string type = "sessionStatusSync";
    std::string action = "_stop";
    ActorKey key = c.key();
    auto stopped = co_await c.call(std::move(type), std::move(key), std::move(action), Array{});
    if (!stopped.ok() && stopped.error().code != "not_found") co_return stopped.error();
  }
  c.destroy();
  co_return Value(true);
}

// ---- sessionStatusSync

constexpr int64_t kPollMs = 5'000;  // the runtime's shortest recurring schedule

Result<Value> sync_start(ActionContext& c, const Array& args) {
  if (auto st = require_caller(c, "taskSession", c.key()); !st.ok()) return st.error();
  auto box = object_arg(args);
  if (!box.ok()) return box.error();
  c.mutate_state()["sandbox"] = *box;
  if (auto every = c.schedule_every("poll", kPollMs, "poll", {}); !every.ok()) return every.error();
  if (auto now = c.schedule_after(0, "poll", {}); !now.ok()) return now.error();
  return Value(true);
}

// Reads the runtime's status in the sandbox (.workbench/sessions/<id>/status,
// written by the session's runtime) and reports a change to the session.
Task<Result<Value>> sync_poll(ActionContext& c, Array) {
  const Value* box = c.state().find("sandbox");
  if (!box || !box->is_object()) co_return Value(false);
  std::string type = "sandboxInstance";
  std::string action = "readSessionStatus";
  ActorKey key{c.key().at(0), str_or(*box, "providerId"), str_or(*box, "sandboxId")};
  Array read_args{Value(c.key().at(3))};
  auto status = co_await c.call(std::move(type), std::move(key), std::move(action), std::move(read_args));
  std::string now = status.ok() && status->is_string() ? status->as_string() : "unavailable";
  if (now == str_or(c.state(), "lastStatus")) co_return Value(false);
  c.mutate_state()["lastStatus"] = now;
  if (auto st = outbox_call(c, "taskSession", c.key(), "_runtimeStatus", Value(now)); !st.ok()) co_return st.error();
  co_return Value(true);
}

Result<Value> sync_stop(ActionContext& c, const Array&) {
  if (auto st = require_caller(c, "taskSession", c.key()); !st.ok()) return st.error();
  (void)c.cancel_schedule("every:poll");
  c.destroy();
  return Value(true);
}

Result<Value> sync_state(ActionContext& c, const Array&) {
  return obj({{"sandbox", *c.state().find("sandbox")}, {"lastStatus", *c.state().find("lastStatus")}});
}

}  // namespace

ActorDefinition task_session_actor() {
  ActorDefinition def("taskSession");
  def.initial_state(obj({{"seq", 0},
                         {"version", 0},
                         {"title", ""},
                         {"model", ""},
                         {"runtimeStatus", "idle"},
                         {"messageCount", 0},
                         {"lastMessage", Value()},
                         {"sandbox", Value()}}))
      .database(database(kMigrations))
      .created_only_by({"task"}, child_refusal("taskSession", "task"))
      .action("_init", init)
      .async_action("_destroy", destroy)
      .async_action("_attachSandbox", attach_sandbox)
      .async_action("_runtimeStatus", delivered(pushes(runtime_status)))
      .async_action("sendMessage", delivered(send_message))
      .action("getTranscript", get_transcript)
      .action("getSnapshot", get_snapshot)
      .async_action("setModel", delivered(set_model));
  with_outbox(def);
  guard_internal(def);
  return def;
}

ActorDefinition session_status_sync_actor() {
  ActorDefinition def("sessionStatusSync");
  def.initial_state(obj({{"sandbox", Value()}, {"lastStatus", ""}}))
      .database(database({kOutboxTable}))
      .created_only_by({"taskSession"}, child_refusal("sessionStatusSync", "taskSession"))
      .action("_start", sync_start)
      .async_action("poll", sync_poll)
      .action("_stop", sync_stop)
      .action("getState", sync_state);
  with_outbox(def);
  guard_internal(def);
  return def;
}

}  // namespace anvil::workbench
