#include "runtime/app_api.hpp"

#include "base/net/url.hpp"
#include "base/value/json.hpp"
#include "storage/pg/pool.hpp"

namespace anvil {
namespace {

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

std::optional<std::string> AppRequest::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return std::nullopt;
}

std::optional<std::string> AppRequest::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    size_t eq = part.find('=');
    if (net::percent_decode(part.substr(0, eq), true) == name)
      return eq == std::string_view::npos ? std::string() : net::percent_decode(part.substr(eq + 1), true);
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

AppResponse AppResponse::json(int status, const Value& body) {
  AppResponse r;
  r.status = status;
  r.headers.emplace_back("content-type", "application/json");
  r.body = json::dump(body);
  return r;
}

AppResponse AppResponse::error(const Error& e, int status) {
  Object o{{"group", e.group}, {"code", e.code}, {"message", e.message}};
  if (e.metadata) o.emplace_back("metadata", *e.metadata);
  AppResponse r = json(status ? status : http_status_for(e), Value(std::move(o)));
  r.headers.emplace_back("x-rivet-error", e.qualified());
  return r;
}

AppDefinition& AppDefinition::actor(ActorDefinition def) {
  actors_.push_back(std::move(def));
  return *this;
}
AppDefinition& AppDefinition::route(std::string method, std::string pattern, AppRouteFn fn) {
  routes_.push_back(AppRoute{std::move(method), std::move(pattern), std::move(fn)});
  return *this;
}
AppDefinition& AppDefinition::service(std::string name, AppServiceFn fn) {
  services_.emplace_back(std::move(name), std::move(fn));
  return *this;
}
AppDefinition& AppDefinition::migrations(std::string set, const std::vector<pg::Migration>* list) {
  migration_set_ = std::move(set);
  migrations_ = list;
  return *this;
}
AppDefinition& AppDefinition::needs_postgres(bool v) {
  needs_postgres_ = v;
  return *this;
}
AppDefinition& AppDefinition::needs_redis(bool v) {
  needs_redis_ = v;
  return *this;
}

AppDefinition& AppDefinition::validate(AppValidateFn fn) {
  validators_.push_back(std::move(fn));
  return *this;
}

std::vector<std::string> AppDefinition::check_config(const AppConfig& config) const {
  std::vector<std::string> problems;
  for (const auto& v : validators_)
    for (auto& p : v(config)) problems.push_back(std::move(p));
  return problems;
}

const AppRoute* match_route(const std::vector<const AppRoute*>& routes, std::string_view method,
                            std::string_view path, std::map<std::string, std::string>& params, bool* path_matched) {
  const auto want = segments(path);
  if (path_matched) *path_matched = false;
  for (const AppRoute* r : routes) {
    const auto pat = segments(r->pattern);
    if (pat.size() != want.size()) continue;
    std::map<std::string, std::string> got;
    bool ok = true;
    for (size_t i = 0; i < pat.size() && ok; ++i) {
      if (!pat[i].empty() && pat[i][0] == ':')
        got[std::string(pat[i].substr(1))] = net::percent_decode(want[i]);
      else
        ok = pat[i] == want[i];
    }
    if (!ok) continue;
    if (path_matched) *path_matched = true;
    if (r->method != method) continue;
    params = std::move(got);
    return r;
  }
  return nullptr;
}

Task<Result<net::HttpResponse>> AppContext::http(net::HttpRequest req) {
  net::HttpClient* client = services().http;
  if (!client) co_return make_error("outbound", "not_configured", "This node has no outbound HTTP client.");
  co_return co_await client->request(std::move(req));
}

Task<Result<pg::QueryResult>> AppContext::sql(std::string query, Array params) {
  pg::Pool* pool = services().pg;
  if (!pool) co_return pg::not_configured_error();
  co_return co_await pool->query(std::move(query), std::move(params));
}

}  // namespace anvil
