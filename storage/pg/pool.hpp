// Postgres for actors: a small pool of libpq connections on threads of its
// own. libpqxx is synchronous, so no statement ever runs on an actor strand;
// `Pool::query` and `Pool::transaction` hand the work to a pool thread and
// complete on the awaiting coroutine's executor (the actor's strand).
//
// Connections. Each of the `connections` slots opens lazily, the first time a
// statement needs it; the constructor also starts one connection in the
// background (it does not block) so `healthy()` is known soon after start.
// Every session runs with TimeZone=UTC, DateStyle=ISO, bytea_output=hex and
// the configured statement_timeout. Before a statement runs on an idle
// connection the pool checks the socket: a connection the server has closed
// (restart, pg_terminate_backend) is dropped and re-opened, so the statement
// is not lost. A connection that breaks *during* a statement yields
// `db.unavailable` (the statement may or may not have run) and is re-opened on
// next use. When opening fails, further attempts wait for a short backoff
// (100 ms doubling to 2 s); statements arriving in that window fail at once
// with `db.unavailable` instead of each waiting for connect_timeout.
//
// Value <-> Postgres mapping.
//   Parameters ($1, $2, ... only; SQL text is never built from values), all
//   sent in text format so the server infers the type from the statement:
//     null, undefined  -> NULL
//     bool             -> true / false
//     int64, BigInt    -> decimal text
//     double           -> shortest round-trip decimal; NaN, Infinity, -Infinity
//     string           -> text
//     Bytes            -> bytea (hex input form \x..)
//     Object, Array    -> JSON text (json::dump, i.e. rivetkit's compat tagging
//                         for nested Bytes/BigInt) for json/jsonb columns
//   A parameter without context (`SELECT $1`) is text; cast it (`$1::int8`).
//   Results, by column type OID:
//     NULL                          -> null
//     bool                          -> bool
//     int2, int4, int8, oid         -> int64
//     float4, float8                -> double (NaN/Infinity included)
//     numeric                       -> double when it has at most 15 significant
//                                      digits (then the double is the nearest to
//                                      the exact decimal and prints back the
//                                      same), otherwise its exact decimal text
//                                      as a string; numeric NaN -> double NaN
//     json, jsonb                   -> parsed Value (plain JSON: no compat
//                                      revival, so ["$x", ..] stays an array)
//     bytea                         -> Bytes
//     timestamptz                   -> ISO-8601 UTC, "2024-05-01T10:00:00.5Z"
//     timestamp                     -> ISO-8601 without zone, "2024-05-01T10:00:00"
//     text, varchar, char, name,
//     uuid, date and anything else  -> string (Postgres' text form)
//
// Errors (Error.group is "db"):
//   db.unavailable     cannot connect, or the connection was lost; the message
//                      says which. Retry later: the pool reconnects by itself.
//   db.query_failed    the server rejected the statement; metadata
//                      {sqlstate: "23505", ...} and the server's message.
//   db.not_configured  no Postgres URL (see not_configured_error()).
//   db.transaction_failed  the function given to transaction() threw.
//   db.shutting_down   the pool was destroyed with the statement still queued.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/value/asio.hpp"
#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::pg {

struct PoolOptions {
  std::string url;  // libpq URI or key=value conninfo
  size_t connections = 4;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds statement_timeout{30'000};
};

struct QueryResult {
  std::vector<std::string> columns;
  Array rows;  // each row an Object column -> Value, in column order
  int64_t affected = 0;  // rows affected by INSERT/UPDATE/DELETE (or returned by SELECT)
};

// The error callers return when no Postgres URL is configured.
Error not_configured_error();

class Pool;
class Tx;

namespace detail {
struct TxState;
struct Session;
struct Job;
// Monotonic counters behind metrics_text().
struct Counters {
  std::atomic<uint64_t> statements{0}, query_failed{0}, unavailable{0};
  std::atomic<uint64_t> transactions{0}, rollbacks{0}, retries{0};
  std::atomic<uint64_t> connects{0}, connect_failures{0}, connections_lost{0};
  std::atomic<int64_t> open{0}, in_flight{0};
  std::atomic<uint64_t> busy_micros{0};
};
}  // namespace detail

// A transaction in progress, handed to the function given to
// Pool::transaction. Synchronous: it runs on a pool thread. Invariant: after
// one statement fails, Postgres has aborted the transaction, so every later
// exec fails and the transaction ends in ROLLBACK: Pool::transaction returns
// the function's error, or that first statement error when the function
// ignored it and returned success.
class Tx {
 public:
  Result<QueryResult> exec(std::string_view sql, const Array& params = {});
  // Several statements without parameters in one round trip (migrations).
  Status exec_script(std::string_view sql);

 private:
  friend class Pool;
  explicit Tx(detail::TxState& state) : state_(state) {}
  detail::TxState& state_;
};

// Blocking helpers for startup and tests (same semantics as Pool::query /
// Pool::transaction, on the calling thread through a connection borrowed from
// the pool). Never call them from an actor strand.
Result<QueryResult> query_sync(Pool& pool, std::string sql, Array params = {});
Result<Value> transaction_sync(Pool& pool, std::function<Result<Value>(Tx&)> fn);

class Pool {
 public:
  // Starts `connections` threads; never blocks on the network (see above).
  explicit Pool(PoolOptions opts);
  // Fails every queued statement with db.shutting_down, waits for the ones
  // running, closes the connections and joins the threads. Each completion
  // is posted to its caller's executor (and counts as work on it until
  // then), so a pool must go before the io_context its callers run on: a
  // node declares it after the io_context (tools/main.cpp); a test that
  // drops a node "like a crash" halts the node's threads, destroys the pool,
  // then the node (runtime/test_node.hpp).
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // One parameterised statement. Completes on the awaiting coroutine's
  // executor (an actor's strand), never on a pool thread.
  asio::awaitable<Result<QueryResult>> query(std::string sql, Array params = {});

  // Runs fn inside BEGIN/COMMIT on a pool thread; fn may exec several
  // statements. An error Result, a failed statement or an exception from fn
  // rolls back. A serialization failure (40001) or deadlock (40P01), in a
  // statement or at COMMIT, reruns fn from the start up to 3 more times, so
  // fn must not have effects outside the transaction. Completes on the
  // awaiting coroutine's executor.
  asio::awaitable<Result<Value>> transaction(std::function<Result<Value>(Tx&)> fn);

  // Last known state: true once a connection opened or a statement reached
  // the server, false after a failed connect or a lost connection.
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  // Prometheus text exposition, metric names anvil_pg_*.
  std::string metrics_text() const;

  const PoolOptions& options() const { return opts_; }

 private:
  friend Result<QueryResult> query_sync(Pool&, std::string, Array);
  friend Result<Value> transaction_sync(Pool&, std::function<Result<Value>(Tx&)>);
  template <typename T, typename Handler>
  struct JobFor;

  template <typename T, typename Token>
  auto async_run(std::function<Result<T>(detail::Session&)> work, Token&& token);

  void enqueue(std::unique_ptr<detail::Job> job);
  void worker();
  detail::Session* acquire();         // blocks until a session is free
  void release(detail::Session* s);
  Result<QueryResult> run_query(detail::Session& s, std::string_view sql, const Array& params);
  Result<Value> run_transaction(detail::Session& s, const std::function<Result<Value>(Tx&)>& fn);
  // Opens the session's connection when needed (honouring the backoff) and
  // drops one the server closed while it was idle.
  Status ensure_connected(detail::Session& s);
  // Drops a connection found broken during a statement.
  void connection_lost(detail::Session& s);
  void warm_up();

  PoolOptions opts_;
  std::string conninfo_;

  mutable std::mutex mu_;
  std::condition_variable jobs_cv_;
  std::condition_variable sessions_cv_;
  std::deque<std::unique_ptr<detail::Job>> jobs_;          // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<detail::Session>> sessions_;  // owned; fixed after construction
  std::vector<detail::Session*> free_;                      // GUARDED_BY(mu_)
  bool stopping_ = false;                                   // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point retry_at_{};        // GUARDED_BY(mu_): connect backoff
  std::chrono::milliseconds backoff_{0};                    // GUARDED_BY(mu_)
  std::string last_connect_error_;                          // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;

  std::atomic<bool> healthy_{false};
  detail::Counters counters_;
};

// ---------------------------------------------------------------------------
// Implementation of the asynchronous hand-off.

namespace detail {
// A queued unit of work: run on a pool thread with a session, or abandoned
// (pool shutting down). Exactly one of the two is called.
struct Job {
  virtual ~Job() = default;
  virtual void run(Session& s) = 0;
  virtual void abandon(Error e) = 0;
};
}  // namespace detail

template <typename T, typename Handler>
struct Pool::JobFor final : detail::Job {
  using Work = std::function<Result<T>(detail::Session&)>;
  // Keeps the caller's executor busy (io_context::run does not return) until
  // the completion has been posted to it.
  using Tracked = std::decay_t<decltype(asio::prefer(
      std::declval<asio::associated_executor_t<Handler>>(), asio::execution::outstanding_work.tracked))>;

  JobFor(Work w, Handler h)
      : work(std::move(w)),
        executor(asio::prefer(asio::get_associated_executor(h), asio::execution::outstanding_work.tracked)),
        handler(std::move(h)) {}

  void run(detail::Session& s) override { complete(work(s)); }
  void abandon(Error e) override { complete(Result<T>(std::move(e))); }
  void complete(Result<T> r) {
    asio::post(executor, [h = std::move(handler), r = std::move(r)]() mutable { h(std::move(r)); });
  }

  Work work;
  Tracked executor;
  Handler handler;
};

template <typename T, typename Token>
auto Pool::async_run(std::function<Result<T>(detail::Session&)> work, Token&& token) {
  return asio::async_initiate<Token, void(Result<T>)>(
      [this](auto handler, std::function<Result<T>(detail::Session&)> w) {
        using H = decltype(handler);
        enqueue(std::make_unique<JobFor<T, H>>(std::move(w), std::move(handler)));
      },
      token, std::move(work));
}

}  // namespace anvil::pg
