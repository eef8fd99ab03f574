#include "actors/growqr/agent/grow_agent.hpp"

#include <spdlog/spdlog.h>

#include "actors/growqr/agent/anthropic.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "actors/growqr/sandbox/sandbox_provider.hpp"
#include "base/value/json.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

constexpr const char* kChatQueue = "chats";
constexpr size_t kMaxTextBytes = 32 * 1024;
constexpr size_t kMaxChatIdBytes = 128;
constexpr size_t kKeptChats = 50;  // finished chats kept for idempotent retries

const char* const kDefaultSystemPrompt =
    "You are the user's GrowQR agent. You keep long-term notes about the user as markdown files "
    "with commit_memory, read_memory and list_memory, and hand longer tasks to a worker with "
    "spawn_sub_agent. Answer concisely.";

struct Limits {
  int64_t max_iterations;  // GROWQR_AGENT_MAX_ITERATIONS: model calls per chat
  int64_t deadline_ms;     // GROWQR_AGENT_DEADLINE_MS: wall time of one chat
  int64_t history;         // GROWQR_AGENT_HISTORY: messages kept for the model
};

Limits limits(const ActorContext& c) {
  return Limits{config_int(c, "GROWQR_AGENT_MAX_ITERATIONS", 8, 1, 100),
                config_int(c, "GROWQR_AGENT_DEADLINE_MS", 120'000, 1'000, 3'600'000),
                config_int(c, "GROWQR_AGENT_HISTORY", 40, 2, 1'000)};
}

Value string_schema(std::string description) {
  return obj({{"type", "string"}, {"description", std::move(description)}});
}

Value tool(std::string name, std::string description, Value properties, Array required) {
  return obj({{"name", std::move(name)},
              {"description", std::move(description)},
              {"input_schema", obj({{"type", "object"}, {"properties", std::move(properties)},
                                    {"required", std::move(required)}})}});
}

void emit(ActorContext& c, const std::string& chat_id, std::string type, Value fields = Value(Object{})) {
  Value ev = std::move(fields);
  ev["type"] = std::move(type);
  ev["chatId"] = chat_id;
  c.broadcast("runtimeEvent", Array{std::move(ev)});
}

// The history keeps at most `limit` messages and always starts with a user
// text turn, so a tool_result never loses the tool_use it answers.
bool is_user_text_turn(const Value& m) {
  if (str_or(m, "role") != "user") return false;
  const Value& content = field_or_null(m, "content");
  if (content.is_string()) return true;
  if (!content.is_array()) return false;
  for (const Value& b : content.as_array())
    if (str_or(b, "type") == "tool_result") return false;
  return true;
}

void trim_history(Array& history, size_t limit) {
  size_t cut = history.size() > limit ? history.size() - limit : 0;
  while (cut + 1 < history.size() && !is_user_text_turn(history[cut])) ++cut;
  if (cut > 0) history.erase(history.begin(), history.begin() + static_cast<std::ptrdiff_t>(cut));
  // The first turn may still carry results of tool calls that were cut off
  // (a chat that stopped at its limit, then a new user turn merged into
  // its results): those results go, the user's text stays.
  if (!history.empty() && cut > 0) {
    Value& content = history.front()["content"];
    if (content.is_array())
      std::erase_if(content.as_array(), [](const Value& b) { return str_or(b, "type") == "tool_result"; });
  }
}

// A user turn after a user turn (e.g. a chat after one that ended on tool
// results) joins it, as the Messages API wants alternating roles.
void append_user_text(Array& history, const std::string& text) {
  if (!history.empty() && str_or(history.back(), "role") == "user") {
    Value& last = history.back();
    Value& content = last["content"];
    if (content.is_string()) content = Array{obj({{"type", "text"}, {"text", content.as_string()}})};
    content.as_array().push_back(obj({{"type", "text"}, {"text", text}}));
    return;
  }
  history.push_back(obj({{"role", "user"}, {"content", text}}));
}

Value& chat_entry(Value& state, const std::string& chat_id) { return state["chats"][chat_id]; }

void forget_old_chats(Value& state) {
  Value& order = state["chatOrder"];
  if (!order.is_array()) order = Array{};
  Array& ids = order.as_array();
  while (ids.size() > kKeptChats) {
    const std::string id = ids.front().is_string() ? ids.front().as_string() : "";
    const Value& e = field_or_null(field_or_null(state, "chats"), id);
    if (str_or(e, "status") != "done") break;  // never forget a chat still running
    if (Value* chats = state.find("chats"); chats && chats->is_object())
      std::erase_if(chats->as_object(), [&](const auto& kv) { return kv.first == id; });
    ids.erase(ids.begin());
  }
}

// ---- the model call (an awaiting workflow step) ----

// Streams the model's reply; text deltas go to subscribers as they arrive.
Task<Result<Value>> call_model(ActorContext& c, std::string chat_id) {
  auto cfg = llm_config(c);
  if (!cfg.ok()) co_return cfg.error();
  std::string system = c.config("GROWQR_AGENT_SYSTEM_PROMPT").value_or(kDefaultSystemPrompt);
  Value history = field_or_null(c.state(), "history");
  ActorContext* ctx = &c;
  Value tools = agent_tool_specs();
  std::function<void(const std::string&)> on_text = [ctx, chat_id](const std::string& delta) {
    emit(*ctx, chat_id, "text.delta", obj({{"text", delta}}));
  };
  co_return co_await stream_message(c, *cfg, std::move(system), std::move(tools), std::move(history), std::move(on_text));
}

// ---- tools (awaiting workflow steps) ----

bool transient(const Error& e) {
  const std::string q = e.qualified();
  return q == "actor.aborted" || q == "actor.stopped" || q == "actor.action_timed_out" || q == "queue.timed_out";
}

Result<std::string> string_input(const Value& input, std::string_view field, bool required) {
  const Value* v = input.find(field);
  if (!v || v->is_nullish()) {
    if (required) return make_error("agent", "invalid_tool_input", "`" + std::string(field) + "` is required.");
    return std::string();
  }
  if (!v->is_string()) return make_error("agent", "invalid_tool_input", "`" + std::string(field) + "` must be a string.");
  return v->as_string();
}

// The memory and sub-agent calls behind the tools. A tool that fails for a
// reason the model can act on (bad path, missing file) answers an error
// result to the model; an interrupted call fails the step, which retries.
Task<Result<Value>> run_tool(ActorContext& c, std::string chat_id, Value block) {
  const std::string name = str_or(block, "name");
  const std::string tool_use_id = str_or(block, "id");
  const Value input = field_or_null(block, "input");
  const std::string user = c.key().empty() ? "" : c.key()[0];
  emit(c, chat_id, "tool.started", obj({{"name", name}, {"toolUseId", tool_use_id}, {"input", input}}));
  Result<Value> out = make_error("agent", "unknown_tool", "There is no tool `" + name + "`.");
  std::string memory = "memoryActor";
  if (name == "commit_memory") {
    auto path = string_input(input, "path", true);
    auto content = string_input(input, "content", true);
    if (!path.ok()) out = path.error();
    else if (!content.ok()) out = content.error();
    else {
      std::string action = "commitMemory";
      ActorKey key{user};
      Array args{Value(*path), Value(*content)};
      out = co_await c.call(std::move(memory), std::move(key), std::move(action), std::move(args));
    }
  } else if (name == "read_memory") {
    auto path = string_input(input, "path", true);
    if (!path.ok()) out = path.error();
    else {
      std::string action = "readMemory";
      ActorKey key{user};
      Array args{Value(*path)};
      out = co_await c.call(std::move(memory), std::move(key), std::move(action), std::move(args));
    }
  } else if (name == "list_memory") {
    auto prefix = string_input(input, "prefix", false);
    if (!prefix.ok()) out = prefix.error();
    else {
      std::string action = "listMemory";
      Array args;
      if (!prefix->empty()) args.emplace_back(*prefix);
      ActorKey key{user};
      out = co_await c.call(std::move(memory), std::move(key), std::move(action), std::move(args));
    }
  } else if (name == "spawn_sub_agent") {
    auto task = string_input(input, "task", true);
    if (!task.ok()) out = task.error();
    else {
      // The worker's id derives from the chat and the tool call, so a
      // re-run of this step (after a crash) reaches the same worker.
      const std::string sub_id = "sa-" + sha256_hex(chat_id + '\0' + tool_use_id).substr(0, 20);
      std::string sub = "subAgent", action = "start";
      ActorKey key{user, sub_id};
      Array args{obj({{"task", *task}, {"parent", user}, {"chatId", chat_id}})};
      out = co_await c.call(std::move(sub), std::move(key), std::move(action), std::move(args));
    }
  }
  if (!out.ok() && transient(out.error())) co_return out.error();
  const bool ok = out.ok();
  emit(c, chat_id, "tool.finished", obj({{"name", name}, {"toolUseId", tool_use_id}, {"ok", ok}}));
  if (!ok) {
    spdlog::info("growAgent tool failed userId={} chatId={} tool={}: {} ({})", user, chat_id, name,
                 out.error().message, out.error().qualified());
    co_return obj({{"content", out.error().qualified() + ": " + out.error().message}, {"isError", true}});
  }
  co_return obj({{"content", out->is_string() ? out->as_string() : json::dump(*out)}, {"isError", false}});
}

// ---- the loop ----

Value chat_result(std::string reply, Array tool_calls, std::string stop_reason) {
  return obj({{"reply", std::move(reply)}, {"toolCalls", std::move(tool_calls)}, {"stopReason", std::move(stop_reason)}});
}

// One chat: model call, tools, model call, ... until the model ends its turn,
// the iteration limit or the deadline. Never fails the workflow: a model
// that stays unavailable ends the chat with an error result.
Value run_chat(Workflow& it, const std::string& chat_id, const std::string& text) {
  auto begun = it.step("begin", [&]() -> Result<Value> {
    ActorContext& c = it.actor();
    // A chat id already answered (a retried request queued twice) is not run again.
    const Value& known = field_or_null(field_or_null(c.state(), "chats"), chat_id);
    if (str_or(known, "status") == "done") return obj({{"skip", true}});
    Value& s = c.mutate_state();
    Value& entry = chat_entry(s, chat_id);
    if (!entry.is_object()) {
      entry = obj({{"text", text}, {"createdAt", unix_ms()}});
      Value& order = s["chatOrder"];
      if (!order.is_array()) order = Array{};
      order.as_array().emplace_back(chat_id);
    }
    entry["status"] = "running";
    const int64_t now = unix_ms();
    entry["startedAt"] = now;
    Value& history = s["history"];
    if (!history.is_array()) history = Array{};
    append_user_text(history.as_array(), text);
    trim_history(history.as_array(), static_cast<size_t>(limits(c).history));
    emit(c, chat_id, "chat.started", obj({{"text", text}}));
    return obj({{"startedAt", now}});
  });
  if (!begun.ok()) return obj({{"error", obj({{"group", begun.error().group}, {"code", begun.error().code},
                                              {"message", begun.error().message}})}});
  if (bool_or(*begun, "skip", false))
    return field_or_null(field_or_null(field_or_null(it.actor().state(), "chats"), chat_id), "result");
  const int64_t started_at = int_or(*begun, "startedAt", unix_ms());

  Value initial = obj({{"iteration", 0}, {"toolCalls", Array{}}, {"reply", ""}});
  auto outcome = it.loop("turns", initial, [&](Workflow& t, const Value& ls) -> Result<LoopResult> {
    const int64_t iteration = int_or(ls, "iteration", 0);
    Array tool_calls = field_or_null(ls, "toolCalls").is_array() ? field_or_null(ls, "toolCalls").as_array() : Array{};
    const std::string last_reply = str_or(ls, "reply");
    auto check = t.step("check", [&]() -> Result<Value> {
      const Limits lim = limits(t.actor());
      if (iteration >= lim.max_iterations) return Value("max_iterations");
      if (unix_ms() > started_at + lim.deadline_ms) return Value("deadline");
      return Value("");
    });
    if (!check.ok()) return check.error();
    if (!check->as_string().empty())
      return LoopResult::finish(chat_result(last_reply, std::move(tool_calls), check->as_string()));

    StepOptions model_opts;
    model_opts.max_attempts = 3;
    model_opts.backoff = std::chrono::milliseconds(500);
    model_opts.timeout = std::chrono::milliseconds(limits(t.actor()).deadline_ms);
    auto reply = t.step_async("model", [chat_id](ActorContext& c) { return call_model(c, chat_id); }, model_opts);
    if (!reply.ok()) {
      Value r = chat_result(last_reply, std::move(tool_calls), "error");
      r["error"] = obj({{"group", reply.error().group}, {"code", reply.error().code}, {"message", reply.error().message}});
      return LoopResult::finish(std::move(r));
    }
    const std::string text_now = message_text(*reply);
    const bool wants_tools = str_or(*reply, "stop_reason") == "tool_use";
    auto recorded = t.step("record-reply", [&]() -> Result<Value> {
      Value& history = t.actor().mutate_state()["history"];
      if (!history.is_array()) history = Array{};
      history.as_array().push_back(obj({{"role", "assistant"}, {"content", field_or_null(*reply, "content")}}));
      return true;
    });
    if (!recorded.ok()) return recorded.error();
    if (!wants_tools)
      return LoopResult::finish(chat_result(text_now, std::move(tool_calls), str_or(*reply, "stop_reason", "end_turn")));

    Array results;
    size_t n = 0;
    for (const Value& block : field_or_null(*reply, "content").as_array()) {
      if (str_or(block, "type") != "tool_use") continue;
      StepOptions tool_opts;
      tool_opts.max_attempts = 3;
      tool_opts.backoff = std::chrono::milliseconds(200);
      tool_opts.timeout = std::chrono::milliseconds(60'000);
      auto ran = t.step_async("tool-" + std::to_string(n++),
                              [chat_id, block](ActorContext& c) { return run_tool(c, chat_id, block); }, tool_opts);
      Value result = obj({{"type", "tool_result"}, {"tool_use_id", str_or(block, "id")}});
      if (ran.ok()) {
        result["content"] = str_or(*ran, "content");
        if (bool_or(*ran, "isError", false)) result["is_error"] = true;
      } else {
        result["content"] = ran.error().qualified() + ": " + ran.error().message;
        result["is_error"] = true;
      }
      results.push_back(std::move(result));
      tool_calls.push_back(obj({{"name", str_or(block, "name")}, {"input", field_or_null(block, "input")}}));
    }
    auto kept = t.step("record-tools", [&]() -> Result<Value> {
      Value& history = t.actor().mutate_state()["history"];
      if (!history.is_array()) history = Array{};
      history.as_array().push_back(obj({{"role", "user"}, {"content", results}}));
      return true;
    });
    if (!kept.ok()) return kept.error();
    return LoopResult::next(obj({{"iteration", iteration + 1}, {"toolCalls", std::move(tool_calls)},
                                 {"reply", text_now}}));
  });
  Value result = outcome.ok() ? *outcome
                              : obj({{"reply", ""}, {"toolCalls", Array{}}, {"stopReason", "error"},
                                     {"error", obj({{"group", outcome.error().group}, {"code", outcome.error().code},
                                                    {"message", outcome.error().message}})}});
  auto done = it.step("finish", [&]() -> Result<Value> {
    ActorContext& c = it.actor();
    Value& s = c.mutate_state();
    Value& entry = chat_entry(s, chat_id);
    entry["status"] = "done";
    entry["result"] = result;
    entry["finishedAt"] = unix_ms();
    forget_old_chats(s);
    emit(c, chat_id, "chat.finished", obj({{"reply", str_or(result, "reply")}, {"stopReason", str_or(result, "stopReason")}}));
    spdlog::info("growAgent chat done userId={} chatId={} stopReason={} toolCalls={}", str_or(s, "userId"), chat_id,
                 str_or(result, "stopReason"), field_or_null(result, "toolCalls").is_array()
                                                   ? field_or_null(result, "toolCalls").as_array().size()
                                                   : 0);
    return true;
  });
  (void)done;
  return result;
}

Result<Value> run_agent(Workflow& wf) {
  return wf.loop("chats", [](Workflow& it) -> Result<LoopResult> {
    auto msg = it.queue_next("next", {kChatQueue});
    if (!msg.ok()) return msg.error();
    const std::string chat_id = str_or(msg->body, "chatId");
    const std::string text = str_or(msg->body, "text");
    Value result = run_chat(it, chat_id, text);
    it.complete(*msg, result);
    return LoopResult::next();
  }, 4);
}

// What chat() answers for a finished chat: the result, or its error.
Result<Value> answer_of(const Value& entry) {
  const Value& result = field_or_null(entry, "result");
  if (const Value* e = result.find("error"); e && e->is_object())
    return make_error(str_or(*e, "group", "agent"), str_or(*e, "code", "failed"), str_or(*e, "message"),
                      obj({{"toolCalls", field_or_null(result, "toolCalls")}}));
  return obj({{"reply", field_or_null(result, "reply")}, {"toolCalls", field_or_null(result, "toolCalls")}});
}

Task<Result<Value>> chat(ActionContext& c, Array args) {
  if (args.empty() || !args[0].is_string())
    co_return make_error("agent", "invalid_message", "chat(text) needs the message text as a string.");
  std::string text = args[0].as_string();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    co_return make_error("agent", "invalid_message", "The message is empty.");
  if (text.size() > kMaxTextBytes)
    co_return make_error("agent", "invalid_message", "The message is longer than 32 KiB.");
  std::string chat_id;
  if (args.size() > 1 && args[1].is_object()) {
    const Value* id = args[1].find("chatId");
    if (id && !id->is_nullish()) {
      if (!id->is_string() || id->as_string().empty() || id->as_string().size() > kMaxChatIdBytes)
        co_return make_error("agent", "invalid_message", "chatId must be a non-empty string of at most 128 bytes.");
      chat_id = id->as_string();
    }
  }
  const Limits lim = limits(c);
  const auto wait_limit = std::chrono::milliseconds(lim.deadline_ms + 30'000);
  {
    if (chat_id.empty()) {
      Value& s = c.mutate_state();
      const int64_t seq = int_or(s, "chatSeq", 0) + 1;
      s["chatSeq"] = seq;
      chat_id = "chat-" + std::to_string(seq);
    }
    const Value& existing = field_or_null(field_or_null(c.state(), "chats"), chat_id);
    const std::string status = str_or(existing, "status");
    if (status == "done") co_return answer_of(existing);
    if (status != "running") {
      // Onto the workflow's durable queue; the loop answers when the chat ends.
      std::string self = c.name(), queue = kChatQueue;
      ActorKey key = c.key();
      Value body = obj({{"chatId", chat_id}, {"text", text}});
      auto r = co_await c.send_wait(std::move(self), std::move(key), std::move(queue), std::move(body), wait_limit);
      if (!r.ok()) co_return r.error();
      co_return answer_of(obj({{"result", *r}}));
    }
  }
  // The same chat id is already queued or running (a retried request): wait
  // for that run's result instead of running it twice.
  const auto until = std::chrono::steady_clock::now() + wait_limit;
  while (std::chrono::steady_clock::now() < until) {
    auto slept = co_await c.sleep_for(std::chrono::milliseconds(100));
    if (!slept.ok()) co_return slept.error();
    const Value& entry = field_or_null(field_or_null(c.state(), "chats"), chat_id);
    if (str_or(entry, "status") == "done") co_return answer_of(entry);
  }
  co_return make_error("queue", "timed_out", "The chat did not finish in time.");
}

// userActor's facade actions: the same arguments, answered by the actor that
// now owns the responsibility.
Task<Result<Value>> forward_call(ActionContext& c, std::string target, std::string action, Array args) {
  ActorKey key = c.key();
  co_return co_await c.call(std::move(target), std::move(key), std::move(action), std::move(args));
}

// The users row (seed 001: "users are mirrored into Postgres on first sight").
Task<Result<Value>> get_profile(ActionContext& c, Array) {
  const std::string user = c.key().at(0);
  std::string q =
      "INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id "
      "RETURNING id, email, display_name AS \"displayName\", profile, "
      "(extract(epoch from created_at) * 1000)::bigint AS \"createdAt\"";
  Array params{Value(user)};
  auto r = co_await c.sql(std::move(q), std::move(params));
  if (!r.ok()) co_return r.error();
  if (r->rows.empty()) co_return make_error("user", "not_found", "No user `" + user + "`.");
  co_return r->rows[0];
}

Task<Result<Value>> update_profile(ActionContext& c, Array args) {
  if (args.empty() || !args[0].is_object())
    co_return make_error("user", "invalid_profile", "updateProfile({displayName?, email?, profile?}) needs an object.");
  const Value in = args[0];
  for (const char* f : {"displayName", "email"})
    if (const Value* v = in.find(f); v && !v->is_string() && !v->is_null())
      co_return make_error("user", "invalid_profile", std::string(f) + " must be a string.");
  if (const Value* p = in.find("profile"); p && !p->is_object())
    co_return make_error("user", "invalid_profile", "profile must be an object.");
  const std::string user = c.key().at(0);
  std::string q =
      "INSERT INTO users (id, email, display_name, profile) VALUES ($1, $2, $3, coalesce($4::jsonb, '{}'::jsonb)) "
      "ON CONFLICT (id) DO UPDATE SET email = coalesce($2, users.email), "
      "display_name = coalesce($3, users.display_name), profile = coalesce($4::jsonb, users.profile), "
      "updated_at = now() "
      "RETURNING id, email, display_name AS \"displayName\", profile";
  Array params{Value(user), field_or_null(in, "email"), field_or_null(in, "displayName"),
               in.find("profile") ? Value(json::dump(*in.find("profile"))) : Value()};
  auto r = co_await c.sql(std::move(q), std::move(params));
  if (!r.ok()) co_return r.error();
  co_return r->rows.at(0);
}

// The user's agent runtime (OpenCode) through the node's sandbox provider:
// provisioned on demand (idempotent), stopped on request; mirrored into
// `user_stacks` by the provider.
Task<Result<Value>> provision_runtime(ActionContext& c, Array) {
  auto made = make_sandbox_provider(c);
  if (!made.ok()) co_return made.error();
  std::unique_ptr<SandboxProvider> provider = std::move(*made);
  std::string user = c.key().at(0);
  auto rt = co_await provider->provision(c, user);
  if (!rt.ok()) co_return rt.error();
  co_return obj({{"userId", user}, {"status", "running"}, {"provider", rt->provider}, {"opencodeUrl", rt->opencode_url},
              {"handle", rt->handle}});
}

Task<Result<Value>> stop_runtime(ActionContext& c, Array) {
  auto made = make_sandbox_provider(c);
  if (!made.ok()) co_return made.error();
  std::unique_ptr<SandboxProvider> provider = std::move(*made);
  std::string user = c.key().at(0);
  auto st = co_await provider->stop(c, user);
  if (!st.ok()) co_return st.error();
  co_return obj({{"userId", user}, {"status", "stopped"}, {"provider", provider->name()}});
}

AsyncActionFn forward(std::string target, std::string action) {
  return [target, action](ActionContext& c, Array args) { return forward_call(c, target, action, std::move(args)); };
}

}  // namespace

Value agent_tool_specs() {
  static const Value specs = Array{
      tool("commit_memory", "Save a markdown note to the user's long-term memory (creates or replaces the file).",
           obj({{"path", string_schema("Relative path of the note, e.g. goals/2026.md")},
                {"content", string_schema("The full markdown content")}}),
           Array{"path", "content"}),
      tool("read_memory", "Read one note from the user's memory.",
           obj({{"path", string_schema("Relative path of the note")}}), Array{"path"}),
      tool("list_memory", "List the paths of the user's memory notes, optionally under a prefix.",
           obj({{"prefix", string_schema("Only paths starting with this prefix")}}), Array{}),
      tool("spawn_sub_agent", "Start a worker agent on a longer task; its progress streams to the user.",
           obj({{"task", string_schema("What the worker should do")}}), Array{"task"}),
  };
  return specs;
}

ActorDefinition grow_agent() {
  ActorDefinition def("growAgent");
  ActorOptions opts;
  opts.action_timeout = std::chrono::minutes(65);  // chat() waits for its loop; the loop has its own deadline
  def.options(opts);
  def.create_state([](ActorContext& c, const Value&) -> Result<Value> {
       const ActorKey& key = c.key();
       if (key.size() != 1 || key[0].empty())
         return make_error("validation", "invalid_key", "growAgent's key is [userId].");
       return obj({{"userId", key[0]}, {"chats", Object{}}, {"chatOrder", Array{}}, {"history", Array{}},
                   {"chatSeq", 0}});
     })
      .queue(kChatQueue)
      .run(run_agent)
      .async_action("chat", chat)
      .action("getChat",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                if (args.empty() || !args[0].is_string())
                  return make_error("agent", "invalid_message", "getChat(chatId) needs the chat id.");
                const Value& e = field_or_null(field_or_null(c.state(), "chats"), args[0].as_string());
                if (!e.is_object()) return make_error("agent", "chat_not_found", "No chat `" + args[0].as_string() + "`.");
                return e;
              })
      .action("getHistory",
              [](ActionContext& c, const Array&) -> Result<Value> { return field_or_null(c.state(), "history"); })
      // A sub-agent's progress (subAgent calls this), re-broadcast to the UI.
      .action("onSubAgentProgress", [](ActionContext& c, const Array& args) -> Result<Value> {
        if (args.empty() || !args[0].is_object())
          return make_error("agent", "invalid_progress", "onSubAgentProgress({subAgentId, type, data}) needs an object.");
        Value ev = obj({{"type", "subAgent.progress"},
                        {"subAgentId", field_or_null(args[0], "subAgentId")},
                        {"event", field_or_null(args[0], "type")},
                        {"data", field_or_null(args[0], "data")}});
        if (const Value* chat = args[0].find("chatId"); chat && chat->is_string()) ev["chatId"] = *chat;
        c.broadcast("runtimeEvent", Array{std::move(ev)});
        return true;
      });
  return def;
}

ActorDefinition user_actor() {
  ActorDefinition def("userActor");
  ActorOptions opts;
  opts.action_timeout = std::chrono::minutes(65);
  def.options(opts);
  def.create_state([](ActorContext& c, const Value&) -> Result<Value> {
       const ActorKey& key = c.key();
       if (key.size() != 1 || key[0].empty())
         return make_error("validation", "invalid_key", "userActor's key is [userId].");
       return obj({{"userId", key[0]}});
     })
      .async_action("chat", forward("growAgent", "chat"))
      .async_action("commitMemory", forward("memoryActor", "commitMemory"))
      .async_action("readMemory", forward("memoryActor", "readMemory"))
      .async_action("listMemory", forward("memoryActor", "listMemory"))
      .async_action("getActiveState", forward("growActor", "getActiveState"))
      .async_action("provisionRuntime", provision_runtime)
      .async_action("stopRuntime", stop_runtime)
      .async_action("getProfile", get_profile)
      .async_action("updateProfile", update_profile);
  return def;
}

}  // namespace anvil::growqr
