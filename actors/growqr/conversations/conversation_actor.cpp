#include "actors/growqr/conversations/conversation_actor.hpp"

#include <spdlog/spdlog.h>

#include "actors/growqr/agent/anthropic.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "base/value/json.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

constexpr size_t kMaxTextBytes = 32 * 1024;
constexpr size_t kMaxMessageIdBytes = 128;
constexpr size_t kContextMessages = 40;  // messages the model sees

const char* const kDefaultSystemPrompt = "You are GrowQR's career coach. Answer the user helpfully and concisely.";

Error not_created() {
  return make_error("conversation", "not_found", "This conversation does not exist (create it first).");
}

Array& messages_of(Value& s) {
  Value& m = s["messages"];
  if (!m.is_array()) m = Array{};
  return m.as_array();
}

const Value* find_message(const Value& s, const std::string& message_id, const std::string& role) {
  const Value& m = field_or_null(s, "messages");
  if (!m.is_array()) return nullptr;
  // An answer has its own id (`<id>:reply`, unique in the messages table)
  // and names the message it answers in `inReplyTo`.
  const char* field = role == "assistant" ? "inReplyTo" : "messageId";
  for (const Value& msg : m.as_array())
    if (str_or(msg, field) == message_id && str_or(msg, "role") == role) return &msg;
  return nullptr;
}

// Message ids being answered right now (per process, never persisted).
Value& in_flight(ActorContext& c) {
  Value& v = c.vars();
  if (!v.is_object()) v = Object{};
  Value& f = v["inFlight"];
  if (!f.is_object()) f = Object{};
  return f;
}

Value add_message(Value& s, std::string message_id, std::string role, std::string content, std::string turn_id) {
  const int64_t seq = int_or(s, "seq", 0) + 1;
  s["seq"] = seq;
  Value m = obj({{"messageId", std::move(message_id)},
                 {"seq", seq},
                 {"turnId", std::move(turn_id)},
                 {"role", std::move(role)},
                 {"content", std::move(content)},
                 {"createdAt", unix_ms()}});
  messages_of(s).push_back(m);
  return m;
}

// Mirrors one message; insert-or-ignore on (conversation, message id), so a
// retried mirror writes nothing twice.
Task<Status> mirror_message(ActorContext& c, Value m) {
  const std::string conv = str_or(c.state(), "conversationId");
  std::string q =
      "INSERT INTO messages (conversation_id, message_id, seq, turn_id, role, content) "
      "VALUES ($1::uuid, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
  Array params{Value(conv), field_or_null(m, "messageId"), field_or_null(m, "seq"), field_or_null(m, "turnId"),
               field_or_null(m, "role"), field_or_null(m, "content")};
  auto r = co_await c.sql(std::move(q), std::move(params));
  if (!r.ok()) co_return r.error();
  std::string touch = "UPDATE grow_conversations SET updated_at = now() WHERE id = $1::uuid";
  Array touch_params{Value(conv)};
  auto t = co_await c.sql(std::move(touch), std::move(touch_params));
  if (!t.ok()) co_return t.error();
  co_return Ok{};
}

// Mirrors the messages not yet in Postgres (after a failed mirror or a crash).
Task<Status> mirror_pending(ActorContext& c) {
  const int64_t upto = int_or(c.state(), "seq", 0);
  const int64_t done = int_or(c.state(), "mirroredSeq", 0);
  if (done >= upto) co_return Ok{};
  Array todo;
  for (const Value& m : field_or_null(c.state(), "messages").as_array())
    if (int_or(m, "seq", 0) > done) todo.push_back(m);
  for (Value& m : todo) {
    const int64_t seq = int_or(m, "seq", 0);
    if (auto st = co_await mirror_message(c, std::move(m)); !st.ok()) co_return st;
    if (int_or(c.state(), "mirroredSeq", 0) < seq) c.mutate_state()["mirroredSeq"] = seq;
  }
  co_return Ok{};
}

// create({ userId, title?, missionInstanceId? }): the owner and the row.
Task<Result<Value>> create(ActionContext& c, Array args) {
  if (args.empty() || !args[0].is_object())
    co_return make_error("conversation", "invalid_request", "create({userId, title?, missionInstanceId?}) needs an object.");
  const Value in = args[0];
  const std::string user = str_or(in, "userId");
  if (user.empty()) co_return make_error("conversation", "invalid_request", "create needs `userId`.");
  if (bool_or(c.state(), "created", false)) {
    if (str_or(c.state(), "userId") != user) co_return not_created();  // someone else's: as if absent
    co_return c.state();
  }
  {
    Value& s = c.mutate_state();
    s["userId"] = user;
    s["title"] = field_or_null(in, "title");
    s["missionInstanceId"] = field_or_null(in, "missionInstanceId");
  }
  std::string users = "INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING";
  Array user_params{Value(user)};
  auto u = co_await c.sql(std::move(users), std::move(user_params));
  if (!u.ok()) co_return u.error();
  std::string row =
      "INSERT INTO grow_conversations (id, user_id, mission_instance_id, title) VALUES ($1::uuid, $2, $3, $4) "
      "ON CONFLICT (id) DO NOTHING";
  Array row_params{Value(str_or(c.state(), "conversationId")), Value(user), field_or_null(in, "missionInstanceId"),
                   field_or_null(in, "title")};
  auto r = co_await c.sql(std::move(row), std::move(row_params));
  if (!r.ok()) co_return r.error();
  c.mutate_state()["created"] = true;
  spdlog::info("conversation created conversationId={} userId={} missionInstanceId={}",
               str_or(c.state(), "conversationId"), user, str_or(in, "missionInstanceId"));
  co_return c.state();
}

// The mission the conversation belongs to, as context for the model
// ("mission-aware chat routing"): read from the user's growActor, which
// keeps each mission's type, status and stage without waking the mission.
Task<std::string> mission_context(ActorContext& c) {
  const std::string mission = str_or(c.state(), "missionInstanceId");
  if (mission.empty()) co_return "";
  std::string name = "growActor", action = "getMission";
  ActorKey key{str_or(c.state(), "userId")};
  Array args{Value(mission)};
  auto m = co_await c.call(std::move(name), std::move(key), std::move(action), std::move(args));
  if (!m.ok()) co_return "";
  co_return "\nThe conversation is about the user's mission " + mission + " (type " + str_or(*m, "type") +
      ", status " + str_or(*m, "status") + ", stage " + str_or(*m, "stage") + "). Keep the answer on it.";
}

// send({ messageId, text, turnId? }) → { messageId, reply, seq }.
Task<Result<Value>> send(ActionContext& c, Array args) {
  if (!bool_or(c.state(), "created", false)) co_return not_created();
  if (args.empty() || !args[0].is_object())
    co_return make_error("conversation", "invalid_message", "send({messageId, text}) needs an object.");
  const Value in = args[0];
  const std::string message_id = str_or(in, "messageId");
  const std::string text = str_or(in, "text");
  if (message_id.empty() || message_id.size() > kMaxMessageIdBytes)
    co_return make_error("conversation", "invalid_message", "messageId must be a non-empty string of at most 128 bytes.");
  if (text.find_first_not_of(" \t\r\n") == std::string::npos || text.size() > kMaxTextBytes)
    co_return make_error("conversation", "invalid_message", "text must be a non-empty string of at most 32 KiB.");

  // Answered before: the first result, whatever this request's text says.
  if (const Value* reply = find_message(c.state(), message_id, "assistant"))
    co_return obj({{"messageId", message_id}, {"reply", field_or_null(*reply, "content")},
                   {"seq", field_or_null(*reply, "seq")}, {"duplicate", true}});
  // The same message still being answered by another request (in this
  // process: the marker lives in vars, so a crash clears it): wait for that
  // answer instead of asking the model twice.
  for (int waited = 0; in_flight(c).find(message_id); ++waited) {
    if (waited > 6000) co_return make_error("conversation", "message_in_progress", "This message is still being answered.");
    auto slept = co_await c.sleep_for(std::chrono::milliseconds(100));
    if (!slept.ok()) co_return slept.error();
    if (const Value* reply = find_message(c.state(), message_id, "assistant"))
      co_return obj({{"messageId", message_id}, {"reply", field_or_null(*reply, "content")},
                     {"seq", field_or_null(*reply, "seq")}, {"duplicate", true}});
  }

  const std::string turn_id = str_or(in, "turnId", message_id);
  if (!find_message(c.state(), message_id, "user")) {
    Value& s = c.mutate_state();
    add_message(s, message_id, "user", text, turn_id);
  }
  auto cfg = llm_config(c, "CONVERSATION_ACTOR_MODEL");
  if (!cfg.ok()) co_return cfg.error();
  in_flight(c)[message_id] = true;

  // The model sees the recent turns (the user message included).
  Array context;
  const Array& all = field_or_null(c.state(), "messages").as_array();
  for (size_t i = all.size() > kContextMessages ? all.size() - kContextMessages : 0; i < all.size(); ++i) {
    const std::string role = str_or(all[i], "role");
    if (role != "user" && role != "assistant") continue;
    if (context.empty() && role != "user") continue;
    if (!context.empty() && str_or(context.back(), "role") == role) {
      context.back()["content"] = str_or(context.back(), "content") + "\n\n" + str_or(all[i], "content");
      continue;
    }
    context.push_back(obj({{"role", role}, {"content", field_or_null(all[i], "content")}}));
  }
  std::string system = c.config("CONVERSATION_SYSTEM_PROMPT").value_or(kDefaultSystemPrompt);
  system += co_await mission_context(c);
  ActorContext* ctx = &c;
  Value no_tools = Array{};
  Value messages = std::move(context);
  std::function<void(const std::string&)> on_text = [ctx, message_id](const std::string& delta) {
    ctx->broadcast("messageDelta", Array{obj({{"messageId", message_id}, {"text", delta}})});
  };
  auto reply = co_await stream_message(c, *cfg, std::move(system), std::move(no_tools), std::move(messages),
                                       std::move(on_text));
  std::erase_if(in_flight(c).as_object(), [&](const auto& kv) { return kv.first == message_id; });
  if (!reply.ok()) {
    spdlog::warn("conversation reply failed conversationId={} messageId={}: {} ({})", str_or(c.state(), "conversationId"),
                 message_id, reply.error().message, reply.error().qualified());
    co_return reply.error();
  }
  Value answer;
  {
    Value& s = c.mutate_state();
    answer = add_message(s, message_id + ":reply", "assistant", message_text(*reply), turn_id);
    messages_of(s).back()["inReplyTo"] = message_id;
    answer["inReplyTo"] = message_id;
  }
  c.broadcast("messageDone", Array{obj({{"messageId", message_id}, {"reply", field_or_null(answer, "content")},
                                        {"seq", field_or_null(answer, "seq")}})});
  if (auto st = co_await mirror_pending(c); !st.ok())
    spdlog::error("conversation mirror failed conversationId={} messageId={}: {} (retried on the next message)",
                  str_or(c.state(), "conversationId"), message_id, st.error().message);
  co_return obj({{"messageId", message_id}, {"reply", field_or_null(answer, "content")}, {"seq", field_or_null(answer, "seq")}});
}

Value summary(const Value& s) {
  return obj({{"conversationId", field_or_null(s, "conversationId")},
              {"userId", field_or_null(s, "userId")},
              {"title", field_or_null(s, "title")},
              {"missionInstanceId", field_or_null(s, "missionInstanceId")},
              {"status", field_or_null(s, "status")},
              {"messageCount", static_cast<int64_t>(field_or_null(s, "messages").is_array()
                                                        ? field_or_null(s, "messages").as_array().size()
                                                        : 0)}});
}

Task<Result<Value>> update(ActionContext& c, Array args) {
  if (!bool_or(c.state(), "created", false)) co_return not_created();
  if (args.empty() || !args[0].is_object())
    co_return make_error("conversation", "invalid_request", "update({title?, status?}) needs an object.");
  const Value in = args[0];
  const Value* title = in.find("title");
  const Value* status = in.find("status");
  if (status && !(*status == Value("active") || *status == Value("archived")))
    co_return make_error("conversation", "invalid_request", "status is `active` or `archived`.");
  if (title && !title->is_string() && !title->is_null())
    co_return make_error("conversation", "invalid_request", "title must be a string.");
  {
    Value& s = c.mutate_state();
    if (title) s["title"] = *title;
    if (status) s["status"] = *status;
  }
  std::string q = "UPDATE grow_conversations SET title = $2, status = $3, updated_at = now() WHERE id = $1::uuid";
  Array params{field_or_null(c.state(), "conversationId"), field_or_null(c.state(), "title"),
               field_or_null(c.state(), "status")};
  auto r = co_await c.sql(std::move(q), std::move(params));
  if (!r.ok()) co_return r.error();
  co_return summary(c.state());
}

}  // namespace

ActorDefinition conversation_actor() {
  ActorDefinition def("conversationActor");
  ActorOptions opts;
  opts.action_timeout = std::chrono::minutes(10);
  def.options(opts);
  def.create_state([](ActorContext& c, const Value&) -> Result<Value> {
       const ActorKey& key = c.key();
       if (key.size() != 1 || !is_uuid(key[0]))
         return make_error("validation", "invalid_key", "conversationActor's key is [conversationId] (a UUID).");
       return obj({{"conversationId", key[0]}, {"created", false}, {"userId", nullptr}, {"status", "active"},
                   {"messages", Array{}}, {"seq", 0}, {"mirroredSeq", 0}});
     })
      .async_action("create", create)
      .async_action("send", send)
      .async_action("update", update)
      .action("getConversation",
              [](ActionContext& c, const Array&) -> Result<Value> {
                if (!bool_or(c.state(), "created", false)) return not_created();
                // The messages being answered right now (this process; a
                // crash ends them, so this is never persisted).
                Value out = summary(c.state());
                Array streaming;
                for (const auto& [id, _] : in_flight(c).as_object()) streaming.emplace_back(id);
                out["streaming"] = std::move(streaming);
                return out;
              })
      .action("getMessages", [](ActionContext& c, const Array& args) -> Result<Value> {
        if (!bool_or(c.state(), "created", false)) return not_created();
        const int64_t after = !args.empty() && args[0].is_int() ? args[0].as_int() : 0;
        Array out;
        for (const Value& m : field_or_null(c.state(), "messages").as_array())
          if (int_or(m, "seq", 0) > after) out.push_back(m);
        return out;
      });
  return def;
}

}  // namespace anvil::growqr
