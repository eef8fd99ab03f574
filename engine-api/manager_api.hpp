// The manager API (client-protocol.md §1.2, §2): /metadata, /actors,
// /actors/names, /datacenters. JSON only.
#pragma once

#include "engine-api/http.hpp"
#include "runtime/runtime.hpp"
#include "base/value/asio.hpp"

namespace anvil {

// The rivetkit protocol generation Anvil speaks: in /metadata, and in an
// actor's /metadata, where Rivet's dashboard picks its inspector protocol by it.
inline constexpr const char* kRivetkitVersion = "2.3.19";

class ManagerApi {
 public:
  explicit ManagerApi(Runtime& rt) : rt_(rt) {}

  // `path` is relative to the base path (e.g. "/actors"). Unknown routes give
  // 404 api.not_found.
  asio::awaitable<http::Response> handle(const http::Request& req, std::string_view path);

  // The manager API's JSON form of an actor.
  static Value actor_json(const ActorInfo& a);

 private:
  asio::awaitable<http::Response> put_actors(const http::Request& req);
  asio::awaitable<http::Response> post_actors(const http::Request& req);
  asio::awaitable<http::Response> get_actors(const http::Request& req);
  asio::awaitable<http::Response> delete_actor(std::string_view id);
  // `id` empty: the listing; `part`: state, schedules, kv, workflow, sql.
  asio::awaitable<http::Response> admin_actors(const http::Request& req, std::string_view raw_id,
                                               std::string_view part, std::string_view sub = {});
  // Admin operations (Runtime::admin_operate) under /admin/actors/{id}/….
  asio::awaitable<http::Response> admin_operate(const http::Request& req, const std::string& id,
                                                std::string_view part, std::string_view sub);
  // GET /actors/{id}/kv/keys/{base64 key}, as on Rivet's engine (admin).
  asio::awaitable<http::Response> kv_get(std::string_view raw_id, std::string_view raw_key);

  Runtime& rt_;
};

}  // namespace anvil
