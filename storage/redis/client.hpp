// Redis streams for the runtime: an asynchronous hiredis client driven by the
// node's Asio loop (no thread of its own, no blocking call on an io thread).
//
// Threading. Every hiredis context of a Client lives on ONE strand of that
// client: the hiredis event hooks (addRead/delRead/addWrite/delWrite/cleanup)
// map onto async_wait on a non-owning posix::stream_descriptor, and replies are
// parsed there. A command completes on the executor of the coroutine that
// awaits it (an actor's strand), never on the client's strand or another
// thread. Host names are resolved with asio's resolver (off the io threads),
// so hiredis only ever connects to a numeric address, non-blocking.
//
// Connections.
//   - One shared connection carries every non-blocking command, pipelined.
//   - A blocking read (xreadgroup with `block`) borrows a connection of its
//     own from a small pool (opened on demand, one per concurrent blocking
//     read, up to 4 kept idle afterwards), so a read parked in the server for
//     seconds never delays the shared connection.
//     Do NOT send blocking commands (BLPOP, XREAD BLOCK, ...) through
//     command(): they would hold up every command behind them.
//   - AUTH (password, or user and password) and SELECT (db) run after each
//     connect, before any queued command; their failure fails the attempt.
//
// Reconnect. When the shared connection drops (or an attempt fails) the
// client waits 100 ms, doubling up to Options::max_backoff, each wait
// jittered to a random point in [d/2, d], then connects again, forever, by
// itself. While it waits, commands fail at once with redis.unavailable (no
// unbounded queueing); commands issued while an attempt is under way wait for
// that attempt (bounded by their own timeout). A command in flight when the
// connection drops completes with redis.unavailable: it may or may not have
// run on the server. Blocking-read connections are not reconnected: a broken
// one is discarded and the next read opens a fresh one.
//
// Timeouts. Each command gets Options::command_timeout (a blocking read gets
// that plus its block time), then completes with redis.timeout; its late
// reply is dropped. A blocking-read connection whose read timed out is
// closed; the shared connection is kept (the late reply still arrives in
// order). TCP keepalive is on, so a silently dead peer is noticed eventually.
//
// Reply mapping (command()): status and bulk strings -> string (bytes kept
// exact), integer -> int64, nil -> null, array -> Array (recursively); an
// error reply anywhere in it -> redis.command_failed.
//
// Errors (Error.group is "redis"):
//   redis.unavailable     not connected (connecting failed, reconnect backoff,
//                         connection lost with the command in flight, client
//                         destroyed); the message says which. Retry later.
//   redis.timeout         no reply within the command's timeout.
//   redis.command_failed  the server replied with an error; message = the
//                         server's message verbatim ("NOGROUP No such key
//                         ..."), metadata {command: "XREADGROUP",
//                         reply_code: "NOGROUP"}.
//   redis.unexpected_reply  the reply did not have the shape the typed
//                         helper expects (metadata {command}).
//   redis.invalid_argument  a typed helper got an argument it cannot send
//                         (xreadgroup with block = 0, i.e. forever).
//   redis.invalid_url     the URL does not parse (every command returns it).
//   redis.not_configured  the URL is empty (every command returns it).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/value/asio.hpp"
#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::redis {

struct Options {
  // redis://[[user]:password@]host[:port][/db]; password and user may be
  // percent-encoded. Default port 6379, db 0.
  std::string url;
  std::chrono::milliseconds command_timeout{5'000};
  std::chrono::milliseconds max_backoff{5'000};
};

// A parsed redis:// URL.
struct Endpoint {
  std::string host;  // name or address; IPv6 without brackets
  uint16_t port = 6379;
  std::string user;      // empty: AUTH <password> (or no AUTH when no password)
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECT when not 0
  // host:port/db, never the password (for logs).
  std::string display() const;
};

// redis.invalid_url / redis.not_configured as described above; lets the
// config layer reject a bad --redis-url at startup.
Result<Endpoint> parse_url(std::string_view url);

struct StreamEntry {
  std::string id;
  // Empty for an entry that was deleted while still pending (Redis reports
  // it with nil fields when reading history or claiming).
  std::vector<std::pair<std::string, std::string>> fields;
};

struct PendingSummary {
  int64_t count = 0;
  std::string min_id, max_id;  // empty when count == 0
  std::vector<std::pair<std::string, int64_t>> consumers;  // consumer -> pending count
};

struct PendingEntry {
  std::string id;
  std::string consumer;
  int64_t idle_ms = 0;
  int64_t deliveries = 0;
};

namespace detail {
class Impl;
}

class Client {
 public:
  // Starts connecting in the background; never blocks.
  Client(asio::io_context& io, Options opts);
  // Safe with commands in flight: they complete with redis.unavailable
  // ("redis client closed") on their own executors once the io_context runs
  // the posted shutdown, which closes every connection and cancels every
  // timer. When the io_context is stopped first, everything is reclaimed when
  // it is destroyed (suspended callers are destroyed then, not resumed).
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any non-blocking command; reply mapped as described above.
  asio::awaitable<Result<Value>> command(std::vector<std::string> argv);

  // XADD stream [MAXLEN ~ n] id field value ...; returns the entry id.
  asio::awaitable<Result<std::string>> xadd(std::string stream,
                                            std::vector<std::pair<std::string, std::string>> fields,
                                            std::optional<size_t> maxlen_approx = {}, std::string id = "*");
  // XGROUP CREATE stream group start_id [MKSTREAM]; an existing group
  // (BUSYGROUP) is success.
  asio::awaitable<Status> xgroup_create(std::string stream, std::string group, std::string start_id = "$",
                                        bool mkstream = true);
  // XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] STREAMS stream id.
  // count 0 sends no COUNT. With `block` the read runs on a connection of its
  // own (see above); block must be > 0. No entries (or block elapsed) -> empty.
  asio::awaitable<Result<std::vector<StreamEntry>>> xreadgroup(std::string group, std::string consumer,
                                                               std::string stream, size_t count,
                                                               std::optional<std::chrono::milliseconds> block,
                                                               std::string id = ">");
  // XACK; returns how many ids were pending and are now acknowledged.
  asio::awaitable<Result<int64_t>> xack(std::string stream, std::string group, std::vector<std::string> ids);
  // XPENDING stream group (summary form).
  asio::awaitable<Result<PendingSummary>> xpending(std::string stream, std::string group);
  // XPENDING stream group [IDLE ms] start end count (extended form).
  asio::awaitable<Result<std::vector<PendingEntry>>> xpending_range(
      std::string stream, std::string group, std::string start, std::string end, size_t count,
      std::optional<std::chrono::milliseconds> min_idle = {});
  // XAUTOCLAIM stream group consumer min_idle start COUNT count (Redis >= 6.2;
  // Debian 12 ships 7.0): the next cursor ("0-0" when the scan is complete)
  // and the entries now owned by `consumer`. Ids of entries deleted meanwhile
  // (Redis 7's third element) are dropped from the PEL by the server and not
  // returned.
  asio::awaitable<Result<std::pair<std::string, std::vector<StreamEntry>>>> xautoclaim(
      std::string stream, std::string group, std::string consumer, std::chrono::milliseconds min_idle,
      std::string start = "0-0", size_t count = 100);

  // The shared connection is up (connected and AUTH/SELECT done).
  bool connected() const;
  // Prometheus text exposition, metric names anvil_redis_*.
  std::string metrics_text() const;

 private:
  asio::awaitable<Result<Value>> run(std::vector<std::string> argv,
                                     std::optional<std::chrono::milliseconds> block);

  std::shared_ptr<detail::Impl> impl_;
};

}  // namespace anvil::redis
