// The JWKS cache: one per key-set URL in the process, shared by routes and
// actor hooks. Keys are fetched through the node's one outbound client (the
// caller passes its context's http), lazily on first use, again when older
// than the TTL, and once more when a token names an unknown `kid` (key
// rotation). Fetches are single-flight (concurrent callers wait for the one
// in progress) and rate-limited: at most one per `min_refresh`, so a flood
// of tokens with made-up kids cannot hammer the JWKS server. A failed
// refresh keeps the keys it had.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/growqr/auth/jwt.hpp"
#include "base/async.hpp"
#include "base/net/http_client.hpp"

namespace anvil::growqr::auth {

template <typename T>
using Task = asio::awaitable<T>;

// How to fetch: AppContext::http or ActorContext::http.
using HttpFetch = std::function<Task<Result<net::HttpResponse>>(net::HttpRequest)>;
// How to wait for a fetch another caller runs: directly (routes), or through
// ActorContext::wait in an actor (so the call's deadline and cancellation
// apply and its turn ends while it waits).
using JoinWait = std::function<Task<Status>(Task<Status>)>;

struct JwksSource {
  std::string url;
  std::string bearer;  // sent as `authorization: Bearer` when set (Clerk's Backend API JWKS)
  std::chrono::milliseconds ttl{3'600'000};
  std::chrono::milliseconds min_refresh{5'000};
};

class JwksCache {
 public:
  // The process-wide cache for `url`.
  static std::shared_ptr<JwksCache> for_url(const std::string& url);

  // Verifies `token` (jwt.hpp) with the cached keys, fetching as described
  // above. auth.jwks_unavailable (503) when no keys could ever be fetched.
  Task<Result<Value>> verify(std::string token, JwksSource src, VerifyOptions opts, HttpFetch fetch,
                             JoinWait join = nullptr);

  uint64_t fetches() const;

 private:
  // Fetches unless rate-limited (or joins the fetch in progress).
  Task<Status> refresh(const JwksSource& src, const HttpFetch& fetch, const JoinWait& join);
  std::shared_ptr<const KeySet> keys() const;

  mutable std::mutex mu_;
  std::shared_ptr<const KeySet> keys_;                    // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point fetched_at_{};     // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point last_attempt_{};   // GUARDED_BY(mu_)
  bool attempted_ = false;                                 // GUARDED_BY(mu_)
  bool fetching_ = false;                                  // GUARDED_BY(mu_)
  uint64_t fetches_ = 0;                                   // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<OneShot<Status>>> waiters_;  // GUARDED_BY(mu_)
};

}  // namespace anvil::growqr::auth
