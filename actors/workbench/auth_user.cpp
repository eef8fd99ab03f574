// authUser [orgId, userId]: one user's workbench UI state — the active
// session tab per task, unread counts, draft text and draft attachments,
// keyed by (taskId, sessionId). Never on the shared task/session actors, so
// two users on one task each see only their own. Created by the
// organization at sign-in; a client reaches it only with one of the user's
// session tokens (conn params {sessionToken}).
#include "actors/workbench/common.hpp"
#include "actors/workbench/workbench.hpp"
#include "base/value/json.hpp"

namespace anvil::workbench {
namespace {

const std::vector<std::string> kMigrations = {
    "CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);"
    "CREATE TABLE active_tabs (task_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE session_ui (task_id TEXT NOT NULL, session_id TEXT NOT NULL, draft_text TEXT NOT NULL DEFAULT '', "
    "last_read_seq INTEGER NOT NULL DEFAULT 0, latest_seq INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL, "
    "PRIMARY KEY (task_id, session_id));"
    "CREATE TABLE draft_attachments (task_id TEXT NOT NULL, session_id TEXT NOT NULL, attachment_id TEXT NOT NULL, "
    "name TEXT NOT NULL, content_type TEXT NOT NULL, data BLOB NOT NULL, created_at INTEGER NOT NULL, "
    "PRIMARY KEY (task_id, session_id, attachment_id));",
};

constexpr size_t kMaxDraft = 64 * 1024;
constexpr size_t kMaxAttachment = 1024 * 1024;
constexpr int64_t kMaxAttachmentsPerDraft = 20;

// ---- who may connect

Task<Status> guard(ActorContext& c, ClientRequest req) {
  if (auto st = refuse_internal(req); !st.ok()) co_return st;
  const std::string token = str_or(req.params, "sessionToken");
  if (token.empty())
    co_return make_error("auth", "unauthorized", "This user's state needs a session token (conn params {sessionToken}).");
  auto row = c.db().query("SELECT expires_at FROM sessions WHERE token_hash = ?", {Value(sha256_hex(token))});
  if (!row.ok()) co_return row.error();
  const int64_t now = now_unix_ms();
  if (row->empty() || int_or((*row)[0], "expires_at", 0) <= now)
    co_return make_error("auth", "unauthorized", "Unknown or expired session token for this user.");
  c.client_valid_until(int_or((*row)[0], "expires_at", 0));
  co_return Ok{};
}

Result<Value> add_session(ActionContext& c, const Array& args) {
  if (auto st = require_caller(c, "organization", {c.key().at(0)}); !st.ok()) return st.error();
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  auto ins = c.db().exec("INSERT OR REPLACE INTO sessions (token_hash, expires_at) VALUES (?, ?)",
                         {Value(str_or(*o, "tokenHash")), Value(int_or(*o, "expiresAt", 0))});
  if (!ins.ok()) return ins.error();
  // Expired sessions are dropped as new ones come.
  if (auto d = c.db().exec("DELETE FROM sessions WHERE expires_at <= ?", {Value(now_unix_ms())}); !d.ok())
    return d.error();
  if (const std::string email = str_or(*o, "email"); !email.empty()) c.mutate_state()["email"] = email;
  return obj({{"userId", Value(c.key().at(1))}});
}

Result<bool> remove_session(ActionContext& c, const Value& item) {
  if (auto st = require_caller(c, "organization", {c.key().at(0)}); !st.ok()) return st.error();
  auto d = c.db().exec("DELETE FROM sessions WHERE token_hash = ?", {Value(str_or(item, "tokenHash"))});
  if (!d.ok()) return d.error();
  return d->changes > 0;
}

// ---- the UI state

struct Where {
  std::string task_id, session_id;
};

Result<Where> where(const Value& o) {
  auto task = string_field(o, "taskId", 128);
  if (!task.ok()) return task.error();
  auto session = string_field(o, "sessionId", 128);
  if (!session.ok()) return session.error();
  return Where{*task, *session};
}

// {taskId, sessionId, attachmentId}: one draft attachment.
struct AttachmentRef {
  Where w;
  std::string id;
};

Result<AttachmentRef> attachment_ref(const Array& args) {
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  auto w = where(*o);
  if (!w.ok()) return w.error();
  auto id = string_field(*o, "attachmentId", 128);
  if (!id.ok()) return id.error();
  return AttachmentRef{std::move(*w), std::move(*id)};
}

Status ensure_ui_row(ActorContext& c, const Where& w) {
  auto r = c.db().exec("INSERT OR IGNORE INTO session_ui (task_id, session_id, updated_at) VALUES (?, ?, ?)",
                       {Value(w.task_id), Value(w.session_id), Value(now_unix_ms())});
  if (!r.ok()) return r.error();
  return Ok{};
}

Result<Value> ui_of(ActorContext& c, const Where& w) {
  auto rows = c.db().query(
      "SELECT draft_text, last_read_seq, latest_seq FROM session_ui WHERE task_id = ? AND session_id = ?",
      {Value(w.task_id), Value(w.session_id)});
  if (!rows.ok()) return rows.error();
  auto atts = c.db().query(
      "SELECT attachment_id, name, content_type, length(data) AS size FROM draft_attachments "
      "WHERE task_id = ? AND session_id = ? ORDER BY created_at, attachment_id",
      {Value(w.task_id), Value(w.session_id)});
  if (!atts.ok()) return atts.error();
  Array attachments;
  for (const auto& a : *atts)
    attachments.push_back(obj({{"attachmentId", *a.find("attachment_id")},
                               {"name", *a.find("name")},
                               {"contentType", *a.find("content_type")},
                               {"size", *a.find("size")}}));
  const Value row = rows->empty() ? Value(Object{}) : (*rows)[0];
  const int64_t last_read = int_or(row, "last_read_seq", 0), latest = int_or(row, "latest_seq", 0);
  return obj({{"taskId", Value(w.task_id)},
              {"sessionId", Value(w.session_id)},
              {"draftText", Value(str_or(row, "draft_text"))},
              {"lastReadSeq", Value(last_read)},
              {"unread", Value(std::max<int64_t>(0, latest - last_read))},
              {"attachments", Value(std::move(attachments))}});
}

// Every change is told to this user's own connections only.
Result<Value> changed(ActorContext& c, const Where& w) {
  auto ui = ui_of(c, w);
  if (!ui.ok()) return ui.error();
  publish(c, "uiStateUpdated", {{"session", *ui}});
  return *ui;
}

Result<Value> set_active_tab(ActionContext& c, const Array& args) {
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  auto w = where(*o);
  if (!w.ok()) return w.error();
  auto r = c.db().exec("INSERT OR REPLACE INTO active_tabs (task_id, session_id, updated_at) VALUES (?, ?, ?)",
                       {Value(w->task_id), Value(w->session_id), Value(now_unix_ms())});
  if (!r.ok()) return r.error();
  publish(c, "activeTabChanged", {{"taskId", Value(w->task_id)}, {"sessionId", Value(w->session_id)}});
  return obj({{"taskId", Value(w->task_id)}, {"sessionId", Value(w->session_id)}});
}

Result<Value> set_draft(ActionContext& c, const Array& args) {
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  auto w = where(*o);
  if (!w.ok()) return w.error();
  auto text = string_field(*o, "text", kMaxDraft, std::string());
  if (!text.ok()) return text.error();
  if (auto st = ensure_ui_row(c, *w); !st.ok()) return st.error();
  auto r = c.db().exec("UPDATE session_ui SET draft_text = ?, updated_at = ? WHERE task_id = ? AND session_id = ?",
                       {Value(*text), Value(now_unix_ms()), Value(w->task_id), Value(w->session_id)});
  if (!r.ok()) return r.error();
  return changed(c, *w);
}

Result<Bytes> attachment_data(const Value& o) {
  const Value* d = o.find("data");
  if (!d) return invalid_argument("`data` is required (bytes, or a base64 string).");
  Bytes data;
  if (d->is_bytes()) {
    data = d->as_bytes();
  } else if (d->is_string()) {
    auto decoded = json::base64_decode(d->as_string());
    if (!decoded.ok()) return invalid_argument("`data` is not valid base64.");
    data = std::move(*decoded);
  } else {
    return invalid_argument("`data` must be bytes or a base64 string.");
  }
  if (data.size() > kMaxAttachment) return invalid_argument("An attachment holds at most 1 MiB.");
  return data;
}

Result<Value> add_attachment(ActionContext& c, const Array& args) {
  auto a = attachment_ref(args);
  if (!a.ok()) return a.error();
  const Value& o = args[0];
  const Where& w = a->w;
  auto name = string_field(o, "name", 256);
  if (!name.ok()) return name.error();
  auto type = string_field(o, "contentType", 128, std::string("application/octet-stream"));
  if (!type.ok()) return type.error();
  auto data = attachment_data(o);
  if (!data.ok()) return data.error();
  auto count = c.db().query("SELECT COUNT(*) AS n FROM draft_attachments WHERE task_id = ? AND session_id = ?",
                            {Value(w.task_id), Value(w.session_id)});
  if (!count.ok()) return count.error();
  if (int_or((*count)[0], "n", 0) >= kMaxAttachmentsPerDraft)
    return invalid_argument("A draft holds at most 20 attachments.");
  if (auto st = ensure_ui_row(c, w); !st.ok()) return st.error();
  auto r = c.db().exec(
      "INSERT OR REPLACE INTO draft_attachments (task_id, session_id, attachment_id, name, content_type, data, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)",
      {Value(w.task_id), Value(w.session_id), Value(a->id), Value(*name), Value(*type), Value(std::move(*data)),
       Value(now_unix_ms())});
  if (!r.ok()) return r.error();
  return changed(c, w);
}

Result<Value> remove_attachment(ActionContext& c, const Array& args) {
  auto a = attachment_ref(args);
  if (!a.ok()) return a.error();
  auto r = c.db().exec("DELETE FROM draft_attachments WHERE task_id = ? AND session_id = ? AND attachment_id = ?",
                       {Value(a->w.task_id), Value(a->w.session_id), Value(a->id)});
  if (!r.ok()) return r.error();
  return changed(c, a->w);
}

Result<Value> get_attachment(ActionContext& c, const Array& args) {
  auto a = attachment_ref(args);
  if (!a.ok()) return a.error();
  auto rows = c.db().query(
      "SELECT attachment_id, name, content_type, data FROM draft_attachments WHERE task_id = ? AND session_id = ? "
      "AND attachment_id = ?",
      {Value(a->w.task_id), Value(a->w.session_id), Value(a->id)});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return not_found("No such draft attachment.");
  const Value& row = (*rows)[0];
  return obj({{"attachmentId", *row.find("attachment_id")},
              {"name", *row.find("name")},
              {"contentType", *row.find("content_type")},
              {"data", *row.find("data")}});
}

// noteActivity({taskId, sessionId, latestSeq}): the newest message seq the
// user's UI has seen announced (sessionUpdated / transcriptAppended); the
// unread count is what lies beyond the last one read.
Result<Value> note_activity(ActionContext& c, const Array& args) {
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  auto w = where(*o);
  if (!w.ok()) return w.error();
  if (auto st = ensure_ui_row(c, *w); !st.ok()) return st.error();
  auto r = c.db().exec(
      "UPDATE session_ui SET latest_seq = MAX(latest_seq, ?), updated_at = ? WHERE task_id = ? AND session_id = ?",
      {Value(int_or(*o, "latestSeq", 0)), Value(now_unix_ms()), Value(w->task_id), Value(w->session_id)});
  if (!r.ok()) return r.error();
  return changed(c, *w);
}

// markRead({taskId, sessionId, seq?}): read up to `seq` (default: all seen).
Result<Value> mark_read(ActionContext& c, const Array& args) {
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  auto w = where(*o);
  if (!w.ok()) return w.error();
  if (auto st = ensure_ui_row(c, *w); !st.ok()) return st.error();
  Result<DbExecResult> r = DbExecResult{};
  if (o->find("seq") && o->find("seq")->is_number()) {
    const int64_t seq = int_or(*o, "seq", 0);
    r = c.db().exec(
        "UPDATE session_ui SET last_read_seq = MAX(last_read_seq, ?), latest_seq = MAX(latest_seq, ?), updated_at = ? "
        "WHERE task_id = ? AND session_id = ?",
        {Value(seq), Value(seq), Value(now_unix_ms()), Value(w->task_id), Value(w->session_id)});
  } else {
    r = c.db().exec("UPDATE session_ui SET last_read_seq = latest_seq, updated_at = ? WHERE task_id = ? AND session_id = ?",
                    {Value(now_unix_ms()), Value(w->task_id), Value(w->session_id)});
  }
  if (!r.ok()) return r.error();
  return changed(c, *w);
}

Result<Value> get_session_state(ActionContext& c, const Array& args) {
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  auto w = where(*o);
  if (!w.ok()) return w.error();
  return ui_of(c, *w);
}

Result<Value> get_snapshot(ActionContext& c, const Array&) {
  auto tabs = c.db().query("SELECT task_id, session_id FROM active_tabs ORDER BY task_id");
  if (!tabs.ok()) return tabs.error();
  Object active;
  for (const auto& t : *tabs) active.emplace_back(str_or(t, "task_id"), *t.find("session_id"));
  auto rows = c.db().query("SELECT task_id, session_id FROM session_ui ORDER BY task_id, session_id");
  if (!rows.ok()) return rows.error();
  Array sessions;
  for (const auto& r : *rows) {
    auto ui = ui_of(c, Where{str_or(r, "task_id"), str_or(r, "session_id")});
    if (!ui.ok()) return ui.error();
    sessions.push_back(std::move(*ui));
  }
  return obj({{"seq", Value(current_seq(c))},
              {"userId", Value(c.key().at(1))},
              {"activeTabs", Value(std::move(active))},
              {"sessions", Value(std::move(sessions))}});
}

}  // namespace

ActorDefinition auth_user_actor() {
  ActorDefinition def("authUser");
  def.initial_state(obj({{"seq", 0}, {"email", ""}}))
      .database(database(kMigrations))
      .created_only_by({"organization"}, child_refusal("authUser", "organization"))
      .on_before_connect_async(guard)
      .action("_addSession", add_session)
      .action("_removeSession", pushes(remove_session))
      .action("getSnapshot", get_snapshot)
      .action("getSessionState", get_session_state)
      .action("setActiveTab", set_active_tab)
      .action("setDraft", set_draft)
      .action("addDraftAttachment", add_attachment)
      .action("removeDraftAttachment", remove_attachment)
      .action("getDraftAttachment", get_attachment)
      .action("noteActivity", note_activity)
      .action("markRead", mark_read);
  return def;
}

}  // namespace anvil::workbench
