#include "gateway/router.hpp"

#include <random>

#include <spdlog/spdlog.h>

#include "gateway/traffic.hpp"

namespace anvil::gateway {
namespace {

constexpr std::string_view kBasePath = "/api/rivet";

std::string new_ray_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(20, '0');
  uint64_t a = rng(), b = rng();
  for (int i = 0; i < 16; ++i) id[i] = kHex[(a >> (i * 4)) & 15];
  for (int i = 16; i < 20; ++i) id[i] = kHex[(b >> ((i - 16) * 4)) & 15];
  return id;
}

// A caller-supplied ray id is reused when it is a plain token.
bool sane_ray_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

void add_cors(const http::Request& req, http::Response& res) {
  auto origin = req.header("origin");
  if (!origin) return;
  res.set_header("access-control-allow-origin", std::string(*origin));
  res.set_header("access-control-allow-credentials", "true");
  res.set_header("access-control-expose-headers", "*");
  res.set_header("vary", "Origin");
}

}  // namespace

std::string_view Router::strip_base(std::string_view path) {
  if (path.substr(0, kBasePath.size()) == kBasePath &&
      (path.size() == kBasePath.size() || path[kBasePath.size()] == '/')) {
    path.remove_prefix(kBasePath.size());
  }
  return path.empty() ? std::string_view("/") : path;
}

namespace {

void count(const http::Request& req, const http::Response& res) {
  Traffic& t = traffic();
  t.http_in.inc(req.body.size());
  t.http_out.inc(res.body.size());
  t.count_response(res.status);
}

}  // namespace

asio::awaitable<http::Response> Router::handle(http::Request req) {
  auto ray = req.header("x-rivet-ray-id");
  req.ray_id = ray && sane_ray_id(*ray) ? std::string(*ray) : new_ray_id();
  const std::string& ray_id = req.ray_id;
  std::string path(strip_base(req.path));
  const bool is_actor_route = actors_.matches(req, path);

  http::Response res;
  const bool under_base = req.path.substr(0, kBasePath.size()) == kBasePath &&
                          (req.path.size() == kBasePath.size() || req.path[kBasePath.size()] == '/');
  if (apps_ && !apps_->empty() && !under_base && req.method != "OPTIONS") {
    AppRequest areq;
    areq.method = req.method;
    areq.path = req.path;
    areq.query = req.query;
    areq.headers = req.headers;
    areq.body = req.body;
    areq.request_id = ray_id;
    std::optional<AppResponse> app_res = co_await apps_->handle(std::move(areq));
    if (app_res) {
      res.status = app_res->status;
      res.headers = std::move(app_res->headers);
      res.body = std::move(app_res->body);
      add_cors(req, res);
      res.set_header("x-rivet-ray-id", ray_id);
      if (res.status >= 500) spdlog::warn("{} {} -> {} rayId={}", req.method, req.path, res.status, ray_id);
      count(req, res);
      co_return res;
    }
  }
  if (req.method == "OPTIONS") {
    // CORS preflight: 204 on gateway routes, 200 on the manager API (as the engine).
    res.status = is_actor_route ? 204 : 200;
    if (req.header("origin")) {
      res.set_header("access-control-allow-methods", "GET, POST, PUT, DELETE, OPTIONS, PATCH");
      if (auto h = req.header("access-control-request-headers"))
        res.set_header("access-control-allow-headers", std::string(*h));
      res.set_header("access-control-max-age", "86400");
    }
  } else if (auto denied = access_ ? access_->check(route_access(req.method, path, is_actor_route, req.query), req, path)
                                    : std::nullopt) {
    res = http::error_response(*denied, 403);
  } else if (is_actor_route) {
    res = co_await actors_.handle(req, path);
  } else {
    res = co_await api_.handle(req, path);
  }
  add_cors(req, res);
  res.set_header("x-rivet-ray-id", ray_id);
  if (res.status >= 500)
    spdlog::warn("{} {} -> {} rayId={}", req.method, req.path, res.status, ray_id);
  else
    spdlog::debug("{} {} -> {} rayId={}", req.method, req.path, res.status, ray_id);
  count(req, res);
  co_return res;
}

}  // namespace anvil::gateway
