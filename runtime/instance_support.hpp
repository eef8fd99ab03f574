// Runtime-internal: what the Instance's files share (hook guards, ids,
// storage keys, limits).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <span>
#include <string>

#include <spdlog/spdlog.h>

#include "base/value/error.hpp"
#include "runtime/actor_api.hpp"

namespace anvil::detail {

// RivetKit's queue limits (actor-model.md §8.2).
constexpr size_t kMaxQueueMessageBytes = 64 * 1024;
constexpr size_t kMaxQueueSize = 1000;

inline std::span<const uint8_t> as_span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Runs a user hook/action, turning stray exceptions into the sanitized
// internal error (the message goes to the log, never to the client).
template <typename Fn>
auto guarded(const std::string& actor_id, const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    spdlog::error("actor {}: {} threw: {}", actor_id, what, e.what());
  } catch (...) {
    spdlog::error("actor {}: {} threw a non-exception", actor_id, what);
  }
  return internal_error();
}

// As guarded(), and answers `timeout_error` when the call took longer than
// `limit` (the call itself cannot be interrupted).
template <typename Fn>
auto timed(const std::string& actor_id, const char* what, std::chrono::milliseconds limit, Error timeout_error,
           Fn&& fn) -> decltype(fn()) {
  const auto started = std::chrono::steady_clock::now();
  auto out = guarded(actor_id, what, std::forward<Fn>(fn));
  const auto took = std::chrono::steady_clock::now() - started;
  if (took > limit) {
    spdlog::warn("actor {}: {} took {} ms, over its {} ms limit", actor_id, what,
                 std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), limit.count());
    return timeout_error;
  }
  return out;
}

// Connection (and schedule) ids: random UUIDv4 text, as RivetKit's.
inline std::string new_conn_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", unsigned(a >> 32), unsigned((a >> 16) & 0xffff),
                unsigned(a & 0xffff), unsigned(b >> 48), (unsigned long long)(b & 0xffffffffffffULL));
  return buf;
}

// A raw request's W3C `traceparent` when valid, else "".
inline std::string request_traceparent(const RawRequest& req) {
  return log::valid_traceparent(req.header("traceparent").value_or(""));
}

inline Error aborted_error() {
  return make_error("actor", "aborted", "The actor stopped while the call was waiting.");
}

// Anvil's documented state ceiling (actor-model.md §2.4 recommends 1 MiB).
constexpr size_t kMaxStateBytes = 1024 * 1024;

// A queue message's key: actor id + big-endian message id (FIFO order).
inline std::string queue_key(const std::string& actor_id, uint64_t id) {
  std::string k = actor_id;
  for (int i = 7; i >= 0; --i) k += static_cast<char>((id >> (i * 8)) & 0xff);
  return k;
}

// The schedule action that resumes the workflow after a timer suspension.
inline constexpr const char* kWorkflowWake = "__workflow_wake";

}  // namespace anvil::detail
