#include "actors/growqr/subagents/sub_agent.hpp"

#include <random>

#include <spdlog/spdlog.h>

#include "actors/growqr/app.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "actors/growqr/sandbox/sandbox_provider.hpp"
#include "base/value/json.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

using namespace std::chrono_literals;

constexpr size_t kMaxTask = 32 * 1024;
constexpr size_t kMaxResult = 16 * 1024;
constexpr size_t kMaxInbox = 1000;
constexpr auto kPromptTimeout = std::chrono::minutes(20);

const std::string& user_of(const ActorContext& c) { return c.key().at(0); }
const std::string& id_of(const ActorContext& c) { return c.key().at(1); }
std::string title_of(const ActorContext& c) { return "growqr subAgent " + id_of(c); }

bool terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

bool flag(ActorContext& c, const char* name) { return bool_or(c.vars(), name, false); }
void set_flag(ActorContext& c, const char* name, bool v) { c.vars()[name] = v; }

Value summary(const ActorContext& c, bool duplicate) {
  const Value& s = c.state();
  return obj({{"subAgentId", id_of(c)},
              {"sessionId", field_or_null(s, "sessionId")},
              {"status", field_or_null(s, "status")},
              {"duplicate", duplicate}});
}

net::HttpRequest opencode_request(const ActorContext& c, std::string method, std::string path, std::string body = "") {
  net::HttpRequest req;
  req.method = std::move(method);
  req.url = str_or(c.state(), "opencodeUrl") + path;
  req.headers = {{"Accept", "application/json"}};
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  req.body = std::move(body);
  req.total_timeout = 10s;
  req.retry.max_attempts = 3;
  req.retry.retry_budget = 20s;
  return req;
}

// ------------------------------------------------------------------ progress

// The session an OpenCode event belongs to, wherever its type keeps it.
std::string event_session(const Value& ev) {
  const Value& p = field_or_null(ev, "properties");
  std::string s = str_or(p, "sessionID");
  if (s.empty()) s = str_or(field_or_null(p, "info"), "sessionID");
  if (s.empty()) s = str_or(field_or_null(p, "part"), "sessionID");
  return s;
}

// What growAgent and connections hear of one OpenCode event (small).
Value progress_data(const std::string& type, const Value& props) {
  if (type == "message.part.updated") {
    const Value& part = field_or_null(props, "part");
    std::string text = str_or(part, "text");
    if (text.size() > 4096) text.resize(4096);
    return obj({{"partType", field_or_null(part, "type")}, {"text", text}, {"delta", field_or_null(props, "delta")}});
  }
  if (type == "message.updated") {
    const Value& info = field_or_null(props, "info");
    return obj({{"role", field_or_null(info, "role")},
                {"messageId", field_or_null(info, "id")},
                {"completed", !field_or_null(field_or_null(info, "time"), "completed").is_null()}});
  }
  return Object{};
}

// Tells the owning growAgent and this actor's connections; counts it.
void announce(ActorContext& c, const std::string& type, Value data) {
  Value msg = obj({{"subAgentId", id_of(c)},
                   {"sessionId", field_or_null(c.state(), "sessionId")},
                   {"parent", field_or_null(c.state(), "parent")},
                   {"type", type},
                   {"data", std::move(data)}});
  c.broadcast("progress", {msg});
  c.call_actor("growAgent", {user_of(c)}, "onSubAgentProgress", {msg});
  Value& s = c.mutate_state();
  s["progressCount"] = int_or(s, "progressCount", 0) + 1;
  s["lastEvent"] = type;
}

// Events the stream delivered (kept in vars by follow's callback, which
// runs between turns) are announced here, inside a turn.
void pump(ActorContext& c) {
  Value& inbox = c.vars()["inbox"];
  if (!inbox.is_array() || inbox.as_array().empty()) return;
  if (terminal(str_or(c.state(), "status"))) {  // the final word was said
    inbox = Array{};
    return;
  }
  Array events = std::move(inbox.as_array());
  inbox = Array{};
  for (const auto& ev : events) {
    const std::string type = str_or(ev, "type");
    announce(c, type, progress_data(type, field_or_null(ev, "properties")));
    if (type == "session.idle") c.mutate_state()["idleSeen"] = true;
  }
}

Task<Status> mirror_session_status(ActorContext& c, std::string status) {
  const std::string sid = str_or(c.state(), "sessionId");
  if (sid.empty()) co_return Ok{};
  std::string q = "UPDATE opencode_sessions SET status = $2, updated_at = now() WHERE id = $1";
  Array params{Value(sid), Value(std::move(status))};
  auto r = co_await c.sql(std::move(q), std::move(params));
  if (!r.ok() && r.error().qualified() != "db.not_configured") co_return r.error();
  co_return Ok{};
}

void stop_watchdog(ActorContext& c) {
  const std::string id = str_or(c.state(), "watchdog");
  if (!id.empty()) (void)c.cancel_schedule(id);
  c.mutate_state()["watchdog"] = "";
}

Task<void> finish(ActorContext& c, std::string status, Value result, std::string error) {
  if (terminal(str_or(c.state(), "status"))) co_return;
  pump(c);
  Value& s = c.mutate_state();
  s["status"] = status;
  std::string text = result.is_string() ? result.as_string() : "";
  if (text.size() > kMaxResult) text.resize(kMaxResult);
  s["result"] = result.is_null() ? Value() : Value(text);
  s["error"] = error.empty() ? Value() : Value(error);
  s["finishedAt"] = unix_ms();
  stop_watchdog(c);
  announce(c, status, obj({{"result", field_or_null(s, "result")}, {"error", field_or_null(s, "error")}}));
  spdlog::info("subAgent {} userId={} subAgentId={} sessionId={}", status, user_of(c), id_of(c),
               str_or(c.state(), "sessionId"));
  std::string row_status = status == "completed" ? "idle" : "closed";
  auto st = co_await mirror_session_status(c, row_status);
  if (!st.ok()) spdlog::warn("opencode_sessions not updated subAgentId={}: {}", id_of(c), st.error().message);
}

// The assistant's final text in a `GET /session/:id/message` answer, and
// whether a user message (our prompt) is there at all.
struct SessionView {
  bool prompt_seen = false;
  bool completed = false;
  std::string text;
};
std::string text_of(const Value& message) {
  std::string text;
  const Value& parts = field_or_null(message, "parts");
  if (parts.is_array())
    for (const auto& p : parts.as_array())
      if (str_or(p, "type") == "text") text += str_or(p, "text");
  return text;
}

SessionView view_of(const Value& messages) {
  SessionView v;
  if (!messages.is_array()) return v;
  for (const auto& m : messages.as_array()) {
    const Value& info = field_or_null(m, "info");
    const std::string role = str_or(info, "role");
    if (role == "user") v.prompt_seen = true;
    if (role == "assistant" && v.prompt_seen) {
      v.completed = !field_or_null(field_or_null(info, "time"), "completed").is_null();
      v.text = text_of(m);
    }
  }
  return v;
}

Task<Result<SessionView>> read_session(ActorContext& c) {
  net::HttpRequest req = opencode_request(c, "GET", "/session/" + str_or(c.state(), "sessionId") + "/message");
  auto r = co_await c.http(std::move(req));
  if (!r.ok()) co_return r.error();
  auto v = json::parse(r->body, false);
  if (!v.ok()) co_return make_error("subagent", "bad_response", "OpenCode's message list is not JSON.");
  co_return view_of(*v);
}

// ------------------------------------------------------------------ start

Task<Result<std::string>> find_or_create_session(ActorContext& c) {
  const std::string title = title_of(c);
  net::HttpRequest list_req = opencode_request(c, "GET", "/session");
  auto listed = co_await c.http(std::move(list_req));
  if (listed.ok()) {
    auto v = json::parse(listed->body, false);
    if (v.ok() && v->is_array())
      for (const auto& s : v->as_array())
        if (str_or(s, "title") == title && !str_or(s, "id").empty()) co_return str_or(s, "id");
  }
  net::HttpRequest create_req = opencode_request(c, "POST", "/session", json::dump(obj({{"title", title}})));
  auto created = co_await c.http(std::move(create_req));
  if (!created.ok()) co_return created.error();
  auto v = json::parse(created->body, false);
  if (!v.ok() || str_or(*v, "id").empty())
    co_return make_error("subagent", "bad_response", "OpenCode created a session without an id.");
  co_return str_or(*v, "id");
}

Task<Status> record_session(ActorContext& c) {
  const std::string user = user_of(c), sub = id_of(c), actor = c.actor_id(), title = title_of(c);
  const std::string sid = str_or(c.state(), "sessionId");
  std::function<Result<Value>(pg::Tx&)> fn = [=](pg::Tx& tx) -> Result<Value> {
    auto u = tx.exec("INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING", {user});
    if (!u.ok()) return u.error();
    auto a = tx.exec(
        "INSERT INTO actors (user_id, name, key, actor_id) VALUES ($1, 'subAgent', $2, $3) "
        "ON CONFLICT (user_id, name, key) DO UPDATE SET actor_id = EXCLUDED.actor_id RETURNING id",
        {user, sub, actor});
    if (!a.ok()) return a.error();
    auto s = tx.exec(
        "INSERT INTO opencode_sessions (id, user_id, actor_id, title, status) VALUES ($1, $2, $3::uuid, $4, 'active') "
        "ON CONFLICT (id) DO NOTHING",
        {sid, user, field_or_null(a->rows[0], "id"), title});
    if (!s.ok()) return s.error();
    return true;
  };
  auto r = co_await c.sql_transaction(std::move(fn));
  if (!r.ok() && r.error().qualified() != "db.not_configured") co_return r.error();
  co_return Ok{};
}

void kick(ActorContext& c, const char* action) { (void)c.schedule_after(0, action, {}); }

Task<Result<Value>> start(ActionContext& c, Array args) {
  // A start interrupted by a crash (still `starting` with no start running
  // in this generation) or one that failed before it had a session is taken
  // up again; the session lookup by title keeps it to one session.
  const std::string status = str_or(c.state(), "status");
  const bool resumable = (status == "starting" && !flag(c, "starting")) ||
                         (status == "failed" && str_or(c.state(), "sessionId").empty());
  if (status != "new" && !resumable) co_return summary(c, true);
  std::string task;
  Value parent;
  if (!args.empty() && args[0].is_object()) {
    task = str_or(args[0], "task");
    parent = field_or_null(args[0], "parent");
  } else if (!args.empty() && args[0].is_string()) {
    task = args[0].as_string();
  }
  if (task.empty() && status == "starting") task = str_or(c.state(), "task");
  if (task.empty() || task.size() > kMaxTask)
    co_return make_error("validation", "invalid_args", "start({task, parent?}) needs a task (at most 32 KiB).");
  auto provider = make_sandbox_provider(c);
  if (!provider.ok()) co_return provider.error();
  set_flag(c, "starting", true);
  {
    Value& s = c.mutate_state();
    s["status"] = "starting";
    if (status == "new" || str_or(s, "task").empty()) s["task"] = task;
    s["parent"] = parent;
    s["startedAt"] = unix_ms();
    auto wd = c.schedule_every("watchdog", 5000, "drive", {});
    if (wd.ok()) s["watchdog"] = *wd;
  }
  spdlog::info("subAgent starting userId={} subAgentId={}", user_of(c), id_of(c));
  std::string user = user_of(c);
  auto runtime = co_await (*provider)->provision(c, user);
  if (!runtime.ok()) {
    std::string failed = "failed", why = runtime.error().message;
    Value nothing;
    set_flag(c, "starting", false);
    co_await finish(c, failed, nothing, why);
    co_return runtime.error();
  }
  c.mutate_state()["opencodeUrl"] = runtime->opencode_url;
  set_flag(c, "runtimeEnsured", true);
  auto session = co_await find_or_create_session(c);
  if (!session.ok()) {
    std::string failed = "failed", why = session.error().message;
    Value nothing;
    set_flag(c, "starting", false);
    co_await finish(c, failed, nothing, why);
    co_return session.error();
  }
  c.mutate_state()["sessionId"] = *session;
  auto rec = co_await record_session(c);
  if (!rec.ok()) spdlog::warn("opencode_sessions not recorded subAgentId={}: {}", id_of(c), rec.error().message);
  if (str_or(c.state(), "status") == "starting") c.mutate_state()["status"] = "running";
  set_flag(c, "starting", false);
  kick(c, "follow");
  kick(c, "sendPrompt");
  kick(c, "drive");
  co_return summary(c, false);
}

// ------------------------------------------------------------------ background

// Follows /event for this session until it goes idle or the stream ends;
// events wait in vars until drive/sendPrompt announce them in a turn.
Task<Result<Value>> follow(ActionContext& c, Array) {
  if (flag(c, "following") || terminal(str_or(c.state(), "status")) || bool_or(c.state(), "idleSeen", false) ||
      str_or(c.state(), "sessionId").empty())
    co_return Value(false);
  set_flag(c, "following", true);
  set_flag(c, "connected", false);
  const std::string sid = str_or(c.state(), "sessionId");
  net::HttpRequest req = opencode_request(c, "GET", "/event");
  req.headers = {{"Accept", "text/event-stream"}};
  req.total_timeout = 90s;  // OpenCode sends heartbeats; a silent minute and a half is a dead stream
  req.retry.max_attempts = 1;
  // The stream may outlive this call (a timed-out wait is not torn down):
  // the callback reaches the context only while this frame lives.
  ActorContext* ctx = &c;
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> weak = alive;
  std::function<void(const net::SseEvent&)> on_event = [ctx, sid, weak](const net::SseEvent& e) {
    if (weak.expired()) throw std::runtime_error("subAgent follow ended");
    auto v = json::parse(e.data, false);
    if (!v.ok() || !v->is_object()) return;
    const std::string type = str_or(*v, "type");
    if (type == "server.connected") ctx->vars()["connected"] = true;
    if (event_session(*v) != sid) return;
    Value& inbox = ctx->vars()["inbox"];
    if (!inbox.is_array()) inbox = Array{};
    if (inbox.as_array().size() < kMaxInbox) inbox.as_array().push_back(*v);
    if (type == "session.idle") throw std::runtime_error("session idle");  // ends the stream
  };
  auto r = co_await c.http_stream(std::move(req), std::move(on_event));
  set_flag(c, "following", false);
  pump(c);
  co_return Value(r.ok());
}

// Sends the prompt unless OpenCode already has it; completes on the answer.
Task<Result<Value>> send_prompt(ActionContext& c, Array) {
  if (flag(c, "sending") || terminal(str_or(c.state(), "status")) || str_or(c.state(), "sessionId").empty())
    co_return Value(false);
  set_flag(c, "sending", true);
  // Give the event stream a moment to connect, so the first events are seen.
  for (int i = 0; i < 50 && !flag(c, "connected"); ++i) {
    auto slept = co_await c.sleep_for(20ms);
    if (!slept.ok()) break;
  }
  pump(c);
  auto seen = co_await read_session(c);
  if (!seen.ok()) {
    set_flag(c, "sending", false);
    co_return seen.error();
  }
  if (seen->prompt_seen) {
    c.mutate_state()["promptSent"] = true;
    if (seen->completed) {
      std::string completed = "completed", none;
      Value text(seen->text);
      co_await finish(c, completed, text, none);
    }
    set_flag(c, "sending", false);
    co_return Value(false);
  }
  {
    Value& s = c.mutate_state();
    s["promptSent"] = true;
    s["promptAttempts"] = int_or(s, "promptAttempts", 0) + 1;
  }
  net::HttpRequest req = opencode_request(
      c, "POST", "/session/" + str_or(c.state(), "sessionId") + "/message",
      json::dump(obj({{"parts", Array{obj({{"type", "text"}, {"text", str_or(c.state(), "task")}})}}})));
  req.retry.max_attempts = 1;  // never blindly: a failure is re-checked against the session first
  req.total_timeout = kPromptTimeout;
  req.idempotency_key = "subagent-" + sha256_hex(c.actor_id() + ":prompt").substr(0, 32);
  spdlog::info("subAgent prompt sent userId={} subAgentId={} sessionId={} idempotencyKey={}", user_of(c), id_of(c),
               str_or(c.state(), "sessionId"), req.idempotency_key);
  auto r = co_await c.http(std::move(req));
  pump(c);
  set_flag(c, "sending", false);
  if (!r.ok()) {
    spdlog::warn("subAgent prompt failed subAgentId={}: {} (re-checked by the watchdog)", id_of(c), r.error().message);
    if (r.error().qualified() == "outbound.connect_failed") c.mutate_state()["promptSent"] = false;
    co_return r.error();
  }
  auto v = json::parse(r->body, false);
  std::string completed = "completed", none;
  Value text(v.ok() ? text_of(*v) : std::string());
  co_await finish(c, completed, text, none);
  co_return Value(true);
}

// The driver: announces the stream's events every 100 ms, restarts the
// stream or the prompt when nothing in this generation runs them, and
// completes a session whose answer was missed (the node died while the
// prompt ran). One per generation; the 5 s watchdog schedule starts it again
// after a crash or when its time limit ended it.
Task<Result<Value>> drive(ActionContext& c, Array) {
  if (flag(c, "driving")) co_return Value(str_or(c.state(), "status"));
  set_flag(c, "driving", true);
  for (int tick = 0;; ++tick) {
    const std::string status = str_or(c.state(), "status");
    if (terminal(status)) {
      stop_watchdog(c);
      break;
    }
    if (status == "new" || str_or(c.state(), "sessionId").empty()) break;
    if (tick == 0 && !flag(c, "runtimeEnsured")) {
      // First drive of this generation (after a restart or a wake): the
      // user's runtime may have gone with the node (a process provider's
      // runtimes die with it); provisioning is idempotent and starts it
      // again, possibly on another port.
      auto provider = make_sandbox_provider(c);
      Result<UserRuntime> rt = provider.ok() ? Result<UserRuntime>(UserRuntime{}) : Result<UserRuntime>(provider.error());
      if (provider.ok()) {
        std::string user = user_of(c);
        rt = co_await (*provider)->provision(c, user);
      }
      if (rt.ok()) {
        set_flag(c, "runtimeEnsured", true);
        if (rt->opencode_url != str_or(c.state(), "opencodeUrl")) c.mutate_state()["opencodeUrl"] = rt->opencode_url;
      } else {
        spdlog::warn("subAgent runtime not provisioned yet subAgentId={}: {}", id_of(c), rt.error().message);
      }
    }
    pump(c);
    if (tick % 20 == 0) {  // every 2 s
      if (!flag(c, "following") && !bool_or(c.state(), "idleSeen", false)) kick(c, "follow");
      if (!flag(c, "sending")) {
        if (!bool_or(c.state(), "promptSent", false)) {
          kick(c, "sendPrompt");
        } else {
          auto seen = co_await read_session(c);
          if (seen.ok() && seen->completed) {
            std::string completed = "completed", none;
            Value text(seen->text);
            co_await finish(c, completed, text, none);
            continue;
          }
          if (seen.ok() && !seen->prompt_seen && !flag(c, "sending")) kick(c, "sendPrompt");
        }
      }
    }
    auto slept = co_await c.sleep_for(100ms);
    if (!slept.ok()) break;
  }
  set_flag(c, "driving", false);
  co_return Value(str_or(c.state(), "status"));
}

Task<Result<Value>> cancel(ActionContext& c, Array) {
  const std::string status = str_or(c.state(), "status");
  if (terminal(status) || status == "new") co_return summary(c, false);
  if (!str_or(c.state(), "sessionId").empty()) {
    net::HttpRequest abort_req = opencode_request(c, "POST", "/session/" + str_or(c.state(), "sessionId") + "/abort", "{}");
    auto r = co_await c.http(std::move(abort_req));
    if (!r.ok()) spdlog::warn("subAgent abort failed subAgentId={}: {}", id_of(c), r.error().message);
  }
  std::string cancelled = "cancelled", none;
  Value nothing;
  co_await finish(c, cancelled, nothing, none);
  co_return summary(c, false);
}

Result<Value> get_status(ActionContext& c, const Array&) {
  pump(c);
  const Value& s = c.state();
  return obj({{"subAgentId", id_of(c)},
              {"userId", user_of(c)},
              {"sessionId", field_or_null(s, "sessionId")},
              {"status", field_or_null(s, "status")},
              {"task", field_or_null(s, "task")},
              {"parent", field_or_null(s, "parent")},
              {"result", field_or_null(s, "result")},
              {"error", field_or_null(s, "error")},
              {"progressCount", int_or(s, "progressCount", 0)},
              {"opencodeUrl", field_or_null(s, "opencodeUrl")},
              {"promptSent", bool_or(s, "promptSent", false)}});
}

}  // namespace

ActorDefinition sub_agent_actor() {
  ActorDefinition def("subAgent");
  ActorOptions o;
  o.action_timeout = kPromptTimeout + std::chrono::minutes(1);  // sendPrompt waits for the whole task
  def.options(o)
      .create_state([](ActorContext& c, const Value&) -> Result<Value> {
        const ActorKey& key = c.key();
        if (key.size() != 2 || key[0].empty() || key[1].empty())
          return make_error("validation", "invalid_key", "subAgent's key is [userId, subAgentId].");
        return obj({{"status", "new"}, {"progressCount", 0}, {"watchdog", ""}});
      })
      .create_vars([](ActorContext&) -> Result<Value> {
        return obj({{"starting", false},
                    {"following", false},
                    {"sending", false},
                    {"driving", false},
                    {"connected", false},
                    {"inbox", Array{}}});
      })
      .async_action("start", start)
      .async_action("follow", follow)
      .async_action("sendPrompt", send_prompt)
      .async_action("drive", drive)
      .async_action("cancel", cancel)
      .action("getStatus", get_status);
  return def;
}

void add_subagents(AppDefinition& app) { app.actor(sub_agent_actor()); }

}  // namespace anvil::growqr
