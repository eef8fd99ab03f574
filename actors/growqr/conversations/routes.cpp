// add_conversations: conversationActor and the /conversations routes.
//
//   POST   /conversations                 body {title?, missionInstanceId?, conversationId?}; 201
//   GET    /conversations                 the caller's conversations (newest first, from Postgres)
//   GET    /conversations/:id             the conversation; 404 when not the caller's
//   GET    /conversations/:id/messages    ?after=<seq>
//   POST   /conversations/:id/messages    body {messageId?, text}; messageId or Idempotency-Key required; 200
//   POST   /conversations/:id/chat        the same (seed 000's "chat")
//   PATCH  /conversations/:id             body {title?, status?}
//   DELETE /conversations/:id             archives it
#include <spdlog/spdlog.h>

#include "actors/growqr/app.hpp"
#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/conversations/conversation_actor.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

const char* const kActor = "conversationActor";

// (Arguments are named locals: GCC 12 miscompiles brace and string-literal
// temporaries inside co_await expressions.)
Task<Result<Value>> call(AppContext& c, std::string id, std::string action, Array args) {
  std::string name = kActor;
  ActorKey key{std::move(id)};
  co_return co_await c.actors().call(std::move(name), std::move(key), std::move(action), std::move(args));
}

// The conversation, when it exists and belongs to `user`; else
// conversation.not_found (another user's conversation is not revealed).
Task<Result<Value>> owned(AppContext& c, const std::string& id, const std::string& user) {
  if (!is_uuid(id)) co_return make_error("conversation", "not_found", "No conversation `" + id + "`.");
  std::string action = "getConversation";
  Array none;
  auto conv = co_await call(c, id, std::move(action), std::move(none));
  if (!conv.ok()) co_return conv.error();
  if (str_or(*conv, "userId") != user) co_return make_error("conversation", "not_found", "No conversation `" + id + "`.");
  co_return conv;
}

Task<AppResponse> create(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  std::string id = str_or(*body, "conversationId");
  if (!id.empty() && !is_uuid(id))
    co_return error_response(make_error("validation", "invalid_body", "conversationId must be a UUID."));
  if (id.empty()) {
    if (auto key = req.header("idempotency-key"); key && !key->empty())
      id = derived_uuid(std::string("conversation") + '\0' + *user + '\0' + *key);
    else
      id = derived_uuid(std::string("conversation") + '\0' + *user + '\0' + req.request_id + '\0' + std::to_string(unix_ms()));
  }
  Value in = obj({{"userId", *user}, {"title", field_or_null(*body, "title")},
                  {"missionInstanceId", field_or_null(*body, "missionInstanceId")}});
  std::string action = "create";
  Array args{in};
  auto r = co_await call(c, id, std::move(action), std::move(args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(201, obj({{"conversationId", id}, {"title", field_or_null(*r, "title")},
                                        {"missionInstanceId", field_or_null(*r, "missionInstanceId")}}));
}

Task<AppResponse> list(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  std::string q =
      "SELECT id::text AS \"conversationId\", title, mission_instance_id AS \"missionInstanceId\", status, "
      "(extract(epoch from updated_at) * 1000)::bigint AS \"updatedAt\" FROM grow_conversations "
      "WHERE user_id = $1 ORDER BY updated_at DESC LIMIT 200";
  Array params{Value(*user)};
  auto rows = co_await c.sql(std::move(q), std::move(params));
  if (!rows.ok()) co_return error_response(rows.error());
  Array out;
  for (auto& row : rows->rows) out.push_back(row);
  co_return AppResponse::json(200, obj({{"conversations", out}}));
}

Task<AppResponse> get(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  const std::string id = req.params.at("id");
  auto conv = co_await owned(c, id, *user);
  if (!conv.ok()) co_return error_response(conv.error());
  co_return AppResponse::json(200, *conv);
}

Task<AppResponse> messages(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  const std::string id = req.params.at("id");
  auto conv = co_await owned(c, id, *user);
  if (!conv.ok()) co_return error_response(conv.error());
  int64_t after = 0;
  if (auto a = req.query_param("after")) {
    try {
      after = std::stoll(*a);
    } catch (const std::exception&) {
      co_return error_response(make_error("validation", "invalid_query", "after must be a number."));
    }
  }
  std::string action = "getMessages";
  Array args{Value(after)};
  auto r = co_await call(c, id, std::move(action), std::move(args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, obj({{"messages", *r}}));
}

Task<AppResponse> send(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  const std::string id = req.params.at("id");
  std::string message_id = str_or(*body, "messageId");
  if (message_id.empty()) message_id = req.header("idempotency-key").value_or("");
  if (message_id.empty())
    co_return error_response(make_error("validation", "message_id_required",
                                        "A message needs an id (`messageId` or the Idempotency-Key header)."));
  const Value* text = body->find("text");
  if (!text || !text->is_string())
    co_return error_response(make_error("validation", "invalid_body", "The body needs `text` (a string)."));
  auto conv = co_await owned(c, id, *user);
  if (!conv.ok()) co_return error_response(conv.error());
  Value in = obj({{"messageId", message_id}, {"text", *text}});
  if (const Value* turn = body->find("turnId"); turn && turn->is_string()) in["turnId"] = *turn;
  std::string action = "send";
  Array args{in};
  auto r = co_await call(c, id, std::move(action), std::move(args));
  spdlog::info("route POST {} requestId={} userId={} conversationId={} messageId={} outcome={}", req.path,
               req.request_id, *user, id, message_id, r.ok() ? "ok" : r.error().qualified());
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, *r);
}

Task<AppResponse> patch(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  const std::string id = req.params.at("id");
  auto conv = co_await owned(c, id, *user);
  if (!conv.ok()) co_return error_response(conv.error());
  Value in = Object{};
  if (const Value* t = body->find("title")) in["title"] = *t;
  if (const Value* s = body->find("status")) in["status"] = *s;
  std::string action = "update";
  Array args{in};
  auto r = co_await call(c, id, std::move(action), std::move(args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, *r);
}

Task<AppResponse> archive(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  const std::string id = req.params.at("id");
  auto conv = co_await owned(c, id, *user);
  if (!conv.ok()) co_return error_response(conv.error());
  std::string action = "update";
  Array args{obj({{"status", "archived"}})};
  auto r = co_await call(c, id, std::move(action), std::move(args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, *r);
}

}  // namespace

void add_conversations(AppDefinition& app) {
  app.actor(conversation_actor());
  app.route("POST", "/conversations", create);
  app.route("GET", "/conversations", list);
  app.route("GET", "/conversations/:id", get);
  app.route("GET", "/conversations/:id/messages", messages);
  app.route("POST", "/conversations/:id/messages", send);
  app.route("POST", "/conversations/:id/chat", send);
  app.route("PATCH", "/conversations/:id", patch);
  app.route("DELETE", "/conversations/:id", archive);
}

}  // namespace anvil::growqr
