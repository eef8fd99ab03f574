// add_agent: growAgent, the userActor facade and the chat route.
//
//   POST /api/chat   body {text | message, chatId?}; the caller's growAgent.chat;
//                    200 {reply, toolCalls, chatId?}; 400 bad body; 401 no caller
#include <spdlog/spdlog.h>

#include "actors/growqr/agent/grow_agent.hpp"
#include "actors/growqr/app.hpp"
#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/missions/app_util.hpp"

namespace anvil::growqr {
namespace {

Task<AppResponse> post_chat(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  const Value* text = body->find("text");
  if (!text || text->is_nullish()) text = body->find("message");
  if (!text || !text->is_string())
    co_return error_response(make_error("validation", "invalid_body", "The body needs `text` (a string)."));
  Value opts = Object{};
  if (const Value* id = body->find("chatId"); id && !id->is_nullish()) opts["chatId"] = *id;
  else if (auto key = req.header("idempotency-key")) opts["chatId"] = *key;
  std::string name = "growAgent", action = "chat";
  ActorKey key{*user};
  Array args{*text, opts};
  auto r = co_await c.actors().call(std::move(name), std::move(key), std::move(action), std::move(args));
  spdlog::info("route POST /api/chat requestId={} userId={} outcome={}", req.request_id, *user,
               r.ok() ? "ok" : r.error().qualified());
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, *r);
}

}  // namespace

void add_agent(AppDefinition& app) {
  app.actor(grow_agent());
  app.actor(user_actor());
  app.route("POST", "/api/chat", post_chat);
}

}  // namespace anvil::growqr
