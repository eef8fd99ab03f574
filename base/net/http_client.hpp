// The one outbound HTTP client: every actor and service module calls external
// HTTP APIs (Anthropic Messages with SSE, Gitea, OpenCode, product services)
// through it. Beast + OpenSSL on the node's io_context, C++20 coroutines.
//
// Contracts:
// - Completion: request() and stream() resume the awaiting coroutine on its
//   own executor (an actor's strand), never on a foreign thread; on_event runs
//   there too. Nothing blocks a thread while waiting (no thread per request).
// - Errors are values (group "outbound"), never exceptions:
//     invalid_url         the URL is not absolute http(s) (url.hpp)
//     connect_failed      DNS failure, refused, unreachable
//     tls_failed          TLS handshake or certificate/hostname verification failed
//     timeout             connect_timeout or total_timeout (per attempt) passed
//     connection_reset    reset or EOF before the response was complete
//     http_status         the final response was not 2xx/3xx;
//                         metadata {status, body: first 4 KiB, attempts}
//     response_too_large  body over 64 MiB (ClientOptions::max_body_bytes)
//     bad_response        the peer did not speak HTTP/1.1
//   A spent retry budget or max_attempts is not an error of its own: the last
//   attempt's error is returned, with metadata.attempts.
// - 2xx is success. 3xx is returned as a response: redirects are not followed
//   (an API redirect is a configuration problem the caller should see).
// - Retries (RetryPolicy): connect failures, timeouts, resets, 408, 429 and
//   5xx; other 4xx fail at once. POST/PATCH (any non-idempotent method)
//   without an idempotency_key are retried only when the connection could not
//   be opened (nothing was sent), unless retry_non_idempotent. Every attempt
//   carries the same Idempotency-Key and X-Request-Id. Retry-After on 429/503
//   is honoured; when it would cross the retry budget the client gives up.
// - Connections: HTTP/1.1 keep-alive pool per (scheme, host, port), at most
//   max_idle_per_host idle each, closed after idle_timeout. A pooled
//   connection the server closed meanwhile is replaced without using an attempt.
// - The client must outlive the start of every request/stream call; in-flight
//   calls keep the shared pool alive on their own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/net/retry.hpp"
#include "base/net/sse.hpp"
#include "base/value/asio.hpp"
#include "base/value/error.hpp"

namespace anvil::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // http:// or https://
  Headers headers;  // sent as given; Host, User-Agent, Content-Length are set unless given here
  std::string body;
  std::string idempotency_key;  // sent as Idempotency-Key on every attempt when non-empty
  std::string request_id;       // sent as X-Request-Id on every attempt; generated when empty
  // total_timeout bounds one attempt (connect + send + whole response). For
  // stream() it bounds the time to the response headers and then every gap
  // between two reads, so a long LLM stream is not cut while it makes progress.
  std::chrono::milliseconds connect_timeout{5'000}, total_timeout{30'000};
  RetryPolicy retry;
  bool retry_non_idempotent = false;  // POST/PATCH without idempotency key are retried only on connect failure unless set
};

struct HttpResponse {
  int status = 0;
  Headers headers;  // names lowercased, in arrival order
  std::string body;  // empty for stream(): the events went to on_event
  uint32_t attempts = 1;
  std::optional<std::string> header(std::string_view lower) const;  // first header with that name
};

struct ClientOptions {
  size_t max_idle_per_host = 64;
  std::chrono::milliseconds idle_timeout{30'000};
  std::string user_agent = "anvil";
  // Extra trusted CA certificates (PEM), on top of the system store. Tests
  // use it for a self-signed fake; production leaves it empty.
  std::string ca_file;
  size_t max_body_bytes = size_t{64} << 20;
};

class HttpClient {
 public:
  explicit HttpClient(asio::io_context& io, ClientOptions opts = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  asio::awaitable<Result<HttpResponse>> request(HttpRequest req);

  // Server-sent events: on_event is called for every event as it arrives;
  // completes when the server ends the stream. Non-2xx responses are errors
  // as for request(). Retries happen only before the first event. An
  // exception thrown by on_event ends the stream (the connection is closed)
  // and propagates to the awaiting coroutine: it is the caller's own.
  asio::awaitable<Result<HttpResponse>> stream(HttpRequest req, std::function<void(const SseEvent&)> on_event);

  struct Metrics {
    std::atomic<uint64_t> requests{0};   // request()/stream() calls
    std::atomic<uint64_t> attempts{0};   // attempts sent or tried
    std::atomic<uint64_t> retries{0};    // attempts after the first
    std::atomic<uint64_t> failures{0};   // calls that returned an error
    std::atomic<uint64_t> timeouts{0};   // attempts that timed out
    std::atomic<uint64_t> connections_opened{0};
    std::atomic<uint64_t> connections_reused{0};  // attempts served by a pooled connection
    std::atomic<uint64_t> stale_connections{0};   // pooled connections found closed by the peer
    std::atomic<int64_t> in_flight{0};
    std::atomic<uint64_t> responses_by_class[6]{};  // [1..5] = 1xx..5xx final statuses
    std::atomic<uint64_t> events{0};               // SSE events delivered
    // Call duration histogram (seconds), Prometheus buckets.
    static constexpr double kBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    std::atomic<uint64_t> duration_buckets[std::size(kBuckets) + 1]{};  // last = +Inf
    std::atomic<uint64_t> duration_us_sum{0};
  };
  const Metrics& metrics() const;
  std::string metrics_text() const;  // Prometheus text, names anvil_outbound_*

  // Idle pooled connections right now (all hosts).
  size_t idle_connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace anvil::net
