#include "gateway/access.hpp"

#include <cctype>

namespace anvil::gateway {
namespace {

bool proxied(const http::Request& req) {
  return req.header("forwarded") || req.header("x-forwarded-for") || req.header("x-real-ip");
}

}  // namespace

std::optional<std::string_view> bearer_token(const http::Request& req) {
  auto h = req.header("authorization");
  if (!h) return std::nullopt;
  std::string_view v = *h;
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() + 1) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(v[i])) != kScheme[i]) return std::nullopt;
  v.remove_prefix(kScheme.size());
  if (v.front() != ' ' && v.front() != '\t') return std::nullopt;
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  if (v.empty()) return std::nullopt;
  return v;
}

RouteAccess route_access(std::string_view method, std::string_view path, bool is_actor_route,
                         std::string_view query) {
  auto segs = http::split_path(path);
  if (is_actor_route) {
    // /gateway/{actor id}/inspector/…
    bool by_key = false;
    for (const auto& p : http::parse_query(query)) by_key = by_key || p.name.rfind("rvt-", 0) == 0;
    if (segs.size() >= 3 && segs[0] == "gateway" && segs[2] == "inspector" && !by_key) return RouteAccess::Inspector;
    // The actor's /metadata (versions only) as the node's.
    if (segs.size() == 3 && segs[0] == "gateway" && segs[2] == "metadata" && method == "GET" && !by_key)
      return RouteAccess::Public;
    return RouteAccess::Client;
  }
  // GET /actors/{id}/kv/keys/{key}: reads the inspector token (key [3]).
  if (segs.size() == 5 && segs[0] == "actors" && segs[2] == "kv" && segs[3] == "keys") return RouteAccess::Admin;
  if (segs.size() == 1 && (segs[0] == "metadata" || segs[0] == "health") && method == "GET")
    return RouteAccess::Public;
  if (segs.size() == 1 && segs[0] == "metrics") return RouteAccess::Admin;
  if (segs.size() == 3 && segs[0] == "actors" && segs[2] == "workflow") return RouteAccess::Admin;
  if (!segs.empty() && segs[0] == "admin") return RouteAccess::Admin;
  return RouteAccess::Client;
}

std::vector<std::string> presented_tokens(const http::Request& req, std::string_view path) {
  std::vector<std::string> out;
  if (auto b = bearer_token(req)) out.emplace_back(*b);
  if (auto h = req.header("x-rivet-token")) out.emplace_back(*h);
  // /gateway/<id>@<token>/…
  constexpr std::string_view kGateway = "/gateway/";
  if (path.substr(0, kGateway.size()) == kGateway) {
    std::string_view seg = path.substr(kGateway.size());
    seg = seg.substr(0, seg.find('/'));
    if (size_t at = seg.find('@'); at != seg.npos) {
      if (auto tok = http::percent_decode(seg.substr(at + 1))) out.push_back(std::move(*tok));
    }
  }
  for (const auto& p : http::parse_query(req.query))
    if (p.name == "rvt-token") out.push_back(p.value);
  // rivet_token.<t>: rivetkit sends the token as is (a subprotocol cannot
  // carry every character); a percent-encoded one is taken decoded too.
  if (auto protocols = req.header("sec-websocket-protocol")) {
    constexpr std::string_view kPrefix = "rivet_token.";
    std::string_view rest = *protocols;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == rest.npos ? std::string_view() : rest.substr(comma + 1);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (item.substr(0, kPrefix.size()) != kPrefix) continue;
      std::string_view raw = item.substr(kPrefix.size());
      out.emplace_back(raw);
      if (auto decoded = http::percent_decode(raw); decoded && *decoded != raw) out.push_back(std::move(*decoded));
    }
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walks the longer input whatever the contents; a length difference is
  // folded into the result rather than returned early.
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0u;
    const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0u;
    diff |= x ^ y;
  }
  return diff == 0;
}

Error AccessGuard::forbidden() { return make_error("api", "forbidden", "Access denied"); }

bool AccessGuard::presents(const std::string& expected, const std::vector<std::string>& tokens) const {
  bool ok = false;
  for (const auto& t : tokens) ok |= constant_time_equal(t, expected);  // no early exit
  return ok;
}

std::optional<Error> AccessGuard::check(RouteAccess access, const http::Request& req, std::string_view path) const {
  switch (access) {
    case RouteAccess::Public:
    case RouteAccess::Inspector:
      return std::nullopt;
    case RouteAccess::Client: {
      if (opts_.token.empty()) return std::nullopt;
      auto tokens = presented_tokens(req, path);
      if (presents(opts_.token, tokens)) return std::nullopt;
      if (!opts_.admin_token.empty() && presents(opts_.admin_token, tokens)) return std::nullopt;
      return forbidden();
    }
    case RouteAccess::Admin: {
      if (opts_.admin_token.empty()) {
        if (req.from_loopback && !proxied(req)) return std::nullopt;
        return make_error("api", "forbidden",
                          "Access denied: no admin token is configured (--admin-token), so admin endpoints answer "
                          "local clients only.");
      }
      auto b = bearer_token(req);
      if (b && constant_time_equal(*b, opts_.admin_token)) return std::nullopt;
      return forbidden();
    }
  }
  return forbidden();
}

}  // namespace anvil::gateway
