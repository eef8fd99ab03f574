#include "actors/growqr/auth/jwks.hpp"

#include <map>

#include <spdlog/spdlog.h>

namespace anvil::growqr::auth {

std::shared_ptr<JwksCache> JwksCache::for_url(const std::string& url) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<JwksCache>> caches;  // GUARDED_BY(mu)
  std::lock_guard lk(mu);
  auto& c = caches[url];
  if (!c) c = std::make_shared<JwksCache>();
  return c;
}

uint64_t JwksCache::fetches() const {
  std::lock_guard lk(mu_);
  return fetches_;
}

std::shared_ptr<const KeySet> JwksCache::keys() const {
  std::lock_guard lk(mu_);
  return keys_;
}

Task<Status> JwksCache::refresh(const JwksSource& src, const HttpFetch& fetch, const JoinWait& join) {
  std::shared_ptr<OneShot<Status>> joined;
  {
    std::lock_guard lk(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (fetching_) {
      joined = std::make_shared<OneShot<Status>>();
      waiters_.push_back(joined);
    } else if (attempted_ && now - last_attempt_ < src.min_refresh) {
      co_return Ok{};  // rate-limited: the caller goes on with the keys it has
    } else {
      fetching_ = true;
      attempted_ = true;
      last_attempt_ = now;
      ++fetches_;
    }
  }
  if (joined) {
    Task<Status> waiting = joined->wait();
    if (join) {
      Status st = co_await join(std::move(waiting));
      co_return st;
    }
    Status st = co_await std::move(waiting);
    co_return st;
  }

  net::HttpRequest req;
  req.method = "GET";
  req.url = src.url;
  req.headers.emplace_back("accept", "application/json");
  if (!src.bearer.empty()) req.headers.emplace_back("authorization", "Bearer " + src.bearer);
  req.connect_timeout = std::chrono::milliseconds(2'000);
  req.total_timeout = std::chrono::milliseconds(3'000);
  auto res = co_await fetch(std::move(req));
  Status out = Ok{};
  std::shared_ptr<const KeySet> fresh;
  if (!res.ok()) {
    out = make_error("auth", "jwks_unavailable", "The JWKS could not be fetched: " + res.error().message);
  } else if (auto set = parse_jwks(res->body); !set.ok()) {
    out = set.error();
  } else {
    fresh = std::make_shared<const KeySet>(std::move(*set));
  }
  if (!out.ok()) spdlog::warn("auth: JWKS refresh from {} failed: {}", src.url, out.error().message);
  std::vector<std::shared_ptr<OneShot<Status>>> waiters;
  {
    std::lock_guard lk(mu_);
    if (fresh) {
      keys_ = std::move(fresh);
      fetched_at_ = std::chrono::steady_clock::now();
    }
    fetching_ = false;
    waiters.swap(waiters_);
  }
  for (auto& w : waiters) w->set(out);
  co_return out;
}

Task<Result<Value>> JwksCache::verify(std::string token, JwksSource src, VerifyOptions opts, HttpFetch fetch,
                                      JoinWait join) {
  // Malformed tokens and refused algorithms never cost a fetch.
  if (auto h = read_header(token); !h.ok()) co_return h.error();
  auto set = keys();
  bool stale = !set;
  if (set) {
    std::lock_guard lk(mu_);
    stale = std::chrono::steady_clock::now() - fetched_at_ > src.ttl;
  }
  Status fetched = Ok{};
  if (stale) {
    fetched = co_await refresh(src, fetch, join);
    set = keys();
  }
  if (!set) {
    if (fetched.ok()) fetched = make_error("auth", "jwks_unavailable", "The JWKS has not been fetched yet.");
    co_return make_error("auth", "jwks_unavailable", fetched.error().message);
  }
  auto claims = auth::verify(token, *set, opts);
  if (!claims.ok() && claims.error().code == "unknown_key") {
    // Maybe the keys rotated: refresh (rate-limited) and try once more.
    Status again = co_await refresh(src, fetch, join);
    (void)again;  // a failed refresh leaves the old keys: the token stays unknown
    auto newer = keys();
    if (newer && newer != set) claims = auth::verify(token, *newer, opts);
  }
  co_return claims;
}

}  // namespace anvil::growqr::auth
