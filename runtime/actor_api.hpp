// The C++ authoring API: everything an actor type sees. Actors never touch
// RocksDB, Beast or the directory — only this header.
//
//   ActorDefinition def("counter");
//   def.initial_state(obj({{"count", 0}}))
//      .action("increment", [](ActionContext& c, const Array& args) -> Result<Value> {
//        int64_t n = arg_int(args, 0, 1);
//        auto& count = c.mutate_state()["count"];
//        count = count.as_int() + n;
//        c.broadcast("newCount", {count});
//        return count;
//      });
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/async.hpp"
#include "base/log/log.hpp"
#include "base/net/http_client.hpp"
#include "base/value/asio.hpp"
#include "base/value/error.hpp"
#include "base/value/value.hpp"
#include "runtime/actor_key.hpp"

namespace anvil {

class InstanceCore;
namespace pg {
class Pool;
struct QueryResult;
class Tx;
}  // namespace pg
namespace redis {
class Client;
}

// The node's connections to the outside world; null when not configured.
using ConfigMap = std::map<std::string, std::string, std::less<>>;

struct Services {
  net::HttpClient* http = nullptr;
  pg::Pool* pg = nullptr;
  redis::Client* redis = nullptr;
  // The node's application configuration (flags and environment), shared
  // with the app host; null when the node runs no application.
  std::shared_ptr<const ConfigMap> config;
};

// The awaitable every asynchronous hook, action and workflow step returns.
template <typename T>
using Task = asio::awaitable<T>;

// One asynchronous call in progress (an async action, onRequest or workflow
// step): its deadline and the wait it is suspended in, which the runtime
// cancels when the deadline passes or the actor stops. Runtime-owned.
class AsyncScope {
 public:
  virtual ~AsyncScope() = default;
  // Completes the current wait with `why` (no-op when none); later waits
  // fail at once with it.
  void cancel(Error why);
  bool cancelled() const { return cancelled_.has_value(); }
  const std::optional<Error>& cancel_reason() const { return cancelled_; }

  asio::any_io_executor executor;                // the actor's strand
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  Error timeout_error;                           // what a wait past the deadline answers
  std::string idempotency_key;                   // stable key for outbound calls (steps)

  // Used by ActorContext::wait(): arms the deadline timer and the cancel hook.
  void arm(std::function<void(Error)> cancel_hook);
  void disarm();

  // What the call's log lines carry (--log-format json): the actor, and the
  // request's ray id and trace when it came with them. Set by the runtime
  // before the call starts.
  std::string log_actor_id, log_actor_name, log_ray_id, log_trace_id, log_span_id;
  // The thread's log context is the call's while its code runs: from its
  // start to its first wait, and from each wait's end to the next (the
  // runtime and ActorContext::wait() bracket every suspension with these;
  // actor code awaits only through them).
  void enter_log();
  void leave_log();

 private:
  log::Context log_saved_;  // the thread's context before enter_log()
  std::thread::id log_thread_;
  bool log_entered_ = false;
  std::function<void(Error)> current_;
  std::shared_ptr<asio::steady_timer> timer_;
  std::optional<Error> cancelled_;
};

// Where a connection's events go (the gateway's WebSocket session). Called
// on the actor's strand; implementations must be thread-safe and non-blocking.
class ConnSink {
 public:
  virtual ~ConnSink() = default;
  virtual void send_event(const std::string& name, const Array& args) = 0;
  virtual void close(uint16_t code, const std::string& reason) = 0;
};

// Told when an actor changed, for a live view (the inspector's WebSocket):
// after a turn that wrote anything (state, queue, schedules, KV, workflow)
// or opened or closed a connection, once its commit `seq` was submitted;
// and when the actor is destroyed. Called on the actor's strand;
// implementations must be thread-safe and non-blocking.
class ActorWatcher {
 public:
  virtual ~ActorWatcher() = default;
  // `connections`: the actor's connections now (as Instance::
  // connections_view: {id, params, state, subscriptions, ephemeral}) when
  // they changed in this turn, else null.
  virtual void changed(uint64_t seq, const Value* connections) = 0;
  virtual void destroyed() = 0;
};

// A connection as the runtime keeps it. Owned by the actor's directory entry,
// so connections (and their subscriptions) outlive a sleep of the actor.
// The actor whose call an action serves (ctx.call / call_actor / send_to);
// clients and application routes have none.
struct CallerActor {
  std::string actor_id;
  std::string name;
  ActorKey key;
};

struct ConnData {
  std::string id;
  Value params;
  Value state;
  std::set<std::string, std::less<>> subscriptions;
  std::shared_ptr<ConnSink> sink;  // null for the ephemeral conn of an HTTP action
  bool ephemeral = false;
  std::optional<CallerActor> caller;  // set for actor-to-actor calls
  // The client's W3C `traceparent` (validated), or "": outbound calls of
  // the actions run through this connection continue that trace.
  std::string traceparent;
  std::string ray_id;  // the HTTP request's, for an action's log lines; "" otherwise
};

// What actor code sees of a connection.
class Conn {
 public:
  explicit Conn(ConnData& d) : d_(&d) {}
  const std::string& id() const { return d_->id; }
  const Value& params() const { return d_->params; }
  const Value& state() const { return d_->state; }
  Value& mutate_state() { return d_->state; }
  // Sends an event to this connection only.
  void send(const std::string& name, Array args) const {
    if (d_->sink) d_->sink->send_event(name, args);
  }

 private:
  ConnData* d_;
};

// ------------------------------------------------------------ per-actor SQLite
//
// An actor type that declares a database (ActorDefinition::database) has its
// own SQLite database, reached with ctx.db() from any hook, action or step.
// Calls are synchronous: SQLite runs over the actor's pages held in memory
// and does no I/O of its own. Every turn that uses the database is one
// SQLite transaction, committed with the turn in the same RocksDB batch as
// the state (durable before the reply, one fsync). See docs/workbench.md.
struct DatabaseOptions {
  // Migration v (1-based) is migrations[v - 1]: SQL, several statements
  // allowed. Each runs once per actor, in order, on the first use of the
  // database by an awake actor that is behind (the applied version is
  // SQLite's user_version, committed with the turn). Append only: an actor
  // at a version the list lacks fails with db.migration_unknown.
  std::vector<std::string> migrations;
  // Size limit of the database file. A statement that would grow it past
  // the limit fails with db.too_large and the whole turn is discarded.
  size_t max_bytes = 16 * 1024 * 1024;
};

struct DbExecResult {
  int64_t changes = 0;            // rows changed by the statement
  int64_t last_insert_rowid = 0;  // the connection's last inserted rowid
};

// ctx.db(): one statement per call with positional parameters (?, ?NNN),
// bound from Values: null/undefined NULL, bool 0/1, int (and bigint in
// range) INTEGER, double REAL, string TEXT, bytes BLOB. Rows come back as
// objects {column: value} in column order (INTEGER int, REAL double, TEXT
// string, BLOB bytes, NULL null). Errors: db.query_failed {sqliteCode,
// sqliteError}, db.invalid_parameter, db.too_large, db.not_enabled,
// db.migration_failed {version}, db.migration_unknown. The runtime owns
// the transaction (no BEGIN/COMMIT; SAVEPOINT works inside a turn).
class Database {
 public:
  explicit Database(InstanceCore& core) : core_(core) {}
  Result<DbExecResult> exec(std::string_view sql, const Array& params = {});
  Result<Array> query(std::string_view sql, const Array& params = {});

 private:
  InstanceCore& core_;
};

// What every hook and action sees.
class ActorContext {
 public:
  explicit ActorContext(InstanceCore& core) : core_(core) {}
  const std::string& actor_id() const;
  const std::string& name() const;
  const ActorKey& key() const;

  // Persisted state. Reading is free; mutate_state() marks it dirty so the
  // end of this turn writes it through the commit pipeline (the reply waits
  // until it is durable).
  const Value& state() const;
  Value& mutate_state();

  // Sends an event to every connection subscribed to `name`.
  void broadcast(const std::string& name, Array args);
  // Every open connection, in the order they connected.
  std::vector<Conn> conns() const;
  // Schedules `action` on this actor with `args` (plus a trailing fire-info
  // object {kind, id, scheduledAt, firedAt}). Persisted with this turn;
  // survives sleep and restarts; wakes the actor. Returns the schedule id.
  Result<std::string> schedule_after(int64_t delay_ms, std::string action, Array args);
  Result<std::string> schedule_at(int64_t unix_ms, std::string action, Array args);
  // Recurring: runs `action` every `interval_ms` (>= 5000 ms), anchored to the
  // first deadline so it never drifts; a run missed while the node was down
  // fires once on restart. Reusing `name` replaces the job. Returns its id.
  Result<std::string> schedule_every(std::string name, int64_t interval_ms, std::string action, Array args);
  // Cancels a pending schedule; false when there is none with that id.
  Result<bool> cancel_schedule(const std::string& id);

  // Actor-to-actor messages, sent after this turn commits (an outbox), to
  // actors on this node without going through the network. `send` enqueues
  // on the target's durable queue; `call` runs an action on the target and,
  // with `reply_to`, delivers {ok, output} or {ok:false, error} to one of
  // this actor's actions. Targets are get-or-created by (name, key).
  // Messages to one target arrive in the order they were sent.
  void send_to(std::string name, ActorKey key, std::string queue, Value body);
  void call_actor(std::string name, ActorKey key, std::string action, Array args, std::string reply_to = "");

  // Actor KV (actor-model.md §10.1): binary-safe keys and values, written
  // with this turn (durable before the reply), read-your-writes. Limits: key
  // <= 2 KiB, value <= 128 KiB, <= 128 keys per batch, <= 976 KiB per batch
  // put; lists return at most `limit` (default 16,384) entries in key order.
  Result<std::optional<std::string>> kv_get(std::string_view key);
  Result<std::vector<std::optional<std::string>>> kv_get_batch(const std::vector<std::string>& keys);
  Status kv_put(std::string_view key, std::string_view value);
  Status kv_put_batch(const std::vector<std::pair<std::string, std::string>>& entries);
  Status kv_delete(std::string_view key);
  Status kv_delete_batch(const std::vector<std::string>& keys);
  // Deletes keys in [start, end).
  Status kv_delete_range(std::string_view start, std::string_view end);
  struct KvListOptions {
    bool reverse = false;
    size_t limit = 16'384;
  };
  using KvEntries = std::vector<std::pair<std::string, std::string>>;
  Result<KvEntries> kv_list_prefix(std::string_view prefix, KvListOptions opts);
  // Keys in [start, end).
  Result<KvEntries> kv_list_range(std::string_view start, std::string_view end, KvListOptions opts);

  // The actor's SQLite database (see Database above). Its writes commit
  // with this turn's state; in an actor with a database, an action that
  // fails after writing anything is discarded as a whole (state and rows).
  Database db();

  // Ephemeral per-generation values (createVars), never persisted.
  Value& vars();

  // ---- waiting on I/O (only in async actions, onRequest and steps) ----
  //
  // Every wait ends the current turn: what the code changed so far is
  // committed (the reply still waits until every turn of the call is
  // durable), then the actor's other actions, events and schedules run
  // until the awaited operation completes. On resume the state is whatever
  // the other turns left. A wait past the call's time limit answers the
  // limit's error (actor.action_timed_out for actions); a wait of an actor
  // that is destroyed or shut down answers actor.stopped.
  template <typename T>
  Task<Result<T>> wait(Task<Result<T>> op);

  // Outbound HTTP through the node's one client (timeouts, retries with
  // backoff, idempotency key, request id). Errors: outbound.*.
  Task<Result<net::HttpResponse>> http(net::HttpRequest req);
  // Server-sent events; on_event runs on the actor's strand.
  Task<Result<net::HttpResponse>> http_stream(net::HttpRequest req, std::function<void(const net::SseEvent&)> on_event);
  // A parameterised Postgres query ($1, $2, ...) on the node's pool.
  // db.not_configured when the node has no --postgres-url.
  Task<Result<pg::QueryResult>> sql(std::string query, Array params = {});
  // fn runs inside BEGIN/COMMIT on a pool thread (synchronous, several statements).
  Task<Result<Value>> sql_transaction(std::function<Result<Value>(pg::Tx&)> fn);
  // The node's Redis client, or redis.not_configured. Await its calls with wait().
  Result<redis::Client*> redis();
  // Calls `action` on the actor (name, key), get-or-creating it, and waits
  // for its durable result: RivetKit's `await c.client().name.getOrCreate(key).action(...)`.
  // A wait like any other (this turn ends; the call may target this actor
  // too). Errors are the callee's (its group/code/metadata).
  Task<Result<Value>> call(std::string name, ActorKey key, std::string action, Array args = {});
  // Sends `body` to a declared queue of the actor (name, key), get-or-creating
  // it, and waits until the actor completes the message (Workflow::complete)
  // — RivetKit's `send(queue, body, { wait: true })`. The queue message is
  // durable before the wait begins. queue.timed_out after `timeout`. May
  // target this actor (e.g. an action handing work to its own workflow).
  Task<Result<Value>> send_wait(std::string name, ActorKey key, std::string queue, Value body,
                                std::chrono::milliseconds timeout);
  // Sleeps without holding the strand (a wait like any other).
  Task<Status> sleep_for(std::chrono::milliseconds d);
  // The call's stable idempotency key: for a workflow step it derives from
  // the actor id and the step path (the same on every attempt and after a
  // crash); for an action it is empty unless set by the caller.
  const std::string& idempotency_key() const;

  // The node's application configuration by key (e.g. "ANTHROPIC_BASE_URL"),
  // the same values routes see through AppContext::config.
  std::optional<std::string> config(std::string_view key) const;

  // Ask the runtime to put the actor to sleep / destroy it once the current
  // turn has finished (single-shot; repeated calls are ignored).
  void sleep();
  void destroy();

  // In on_before_connect_async only (ignored elsewhere): the credentials the
  // client presented stop being valid at `unix_ms` (e.g. a session token's
  // exp). A WebSocket opened through this guard is then closed with
  // auth.token_expired; the client reconnects with fresh credentials, which
  // the guard checks again. The earliest of several calls counts.
  void client_valid_until(int64_t unix_ms);

 protected:
  InstanceCore& core_;
  std::string traceparent_;  // the action's caller's trace (ActionContext), or ""

 private:
  friend class Instance;
  friend class Workflow;
  AsyncScope* scope_ = nullptr;  // set for asynchronous calls
  std::optional<int64_t>* client_expiry_ = nullptr;  // set while a client guard runs
  void add_traceparent(net::HttpRequest& req) const;
  Status before_wait();
  Status after_wait();
};

// What an action additionally sees: the connection it came through.
class ActionContext : public ActorContext {
 public:
  ActionContext(InstanceCore& core, ConnData& conn) : ActorContext(core), conn_(conn) {
    traceparent_ = conn.traceparent;
  }
  // The caller's W3C `traceparent` header, or "" (docs/operator-guide.md,
  // "Traces"). ctx.http / http_stream send a child of it.
  const std::string& traceparent() const { return conn_.traceparent; }
  // The connection the action came through (ephemeral for HTTP actions).
  Conn conn() const { return Conn(conn_); }
  // Params the client sent (x-rivet-conn-params / rivet_conn_params), or null.
  const Value& conn_params() const { return conn_.params; }
  // The calling actor when another actor called this action (ctx.call,
  // call_actor): coordinators' children use it to accept pushes and
  // lifecycle calls from their coordinator only. Null for clients and routes.
  const CallerActor* caller_actor() const { return conn_.caller ? &*conn_.caller : nullptr; }

 private:
  ConnData& conn_;
};

using ActionFn = std::function<Result<Value>(ActionContext&, const Array& args)>;
// An action that awaits I/O. `args` is its own copy: it lives as long as the
// coroutine. The context lives until the coroutine completes.
using AsyncActionFn = std::function<Task<Result<Value>>(ActionContext&, Array args)>;
class Workflow;
using WorkflowFn = std::function<Result<Value>(Workflow&)>;

// A durable queue message as its handler sees it.
struct QueueMessage {
  uint64_t id = 0;  // monotonically increasing per actor, from 1
  std::string name;
  Value body;
  int64_t created_at = 0;
};
// Processes one message; the returned value completes a sender waiting with
// `wait: true`. The message is deleted in the same commit as the state the
// handler changed, so its effect is applied exactly once.
using QueueHandlerFn = std::function<Result<Value>(ActorContext&, const QueueMessage&)>;

// Raw HTTP (`handle.fetch`): the request with `/request` stripped.
struct RawRequest {
  std::string method;
  std::string path;   // e.g. "/hello/world"
  std::string query;  // e.g. "?x=1", or "" when none
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::optional<std::string> header(std::string_view lower_name) const;
};
struct RawResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};
using RequestFn = std::function<Result<RawResponse>(ActorContext&, const RawRequest&)>;
using AsyncRequestFn = std::function<Task<Result<RawResponse>>(ActorContext&, RawRequest req)>;

// Raw WebSocket (`handle.webSocket`): the actor's end of the socket. Sends
// are thread-safe and never block.
class RawWebSocket {
 public:
  virtual ~RawWebSocket() = default;
  virtual void send_text(std::string text) = 0;
  virtual void send_binary(Bytes data) = 0;
  virtual void close(uint16_t code, std::string reason) = 0;
};
struct WsMessage {
  bool binary = false;
  std::string data;
};
// What an actor does with an accepted raw socket.
struct WebSocketHandlers {
  std::function<void(ActorContext&, RawWebSocket&, const WsMessage&)> on_message;
  std::function<void(ActorContext&, RawWebSocket&, uint16_t code, const std::string& reason)> on_close;
};
// Called when a raw socket opens (path after `/websocket`, query, headers in
// `req`); an error refuses the socket.
using WebSocketFn =
    std::function<Result<WebSocketHandlers>(ActorContext&, const std::shared_ptr<RawWebSocket>&, const RawRequest&)>;
// A request of a client from outside the node (through the gateway), as the
// actor's on_before_connect_async guard sees it before anything else of the
// actor runs for it.
struct ClientRequest {
  // "action" | "connect" (WebSocket connection) | "queue" | "request" (raw
  // HTTP) | "websocket" (raw WebSocket).
  std::string kind;
  std::string name;  // the action or queue name ("" otherwise)
  Value params;      // x-rivet-conn-params / rivet_conn_params (JSON), or null
  std::vector<std::pair<std::string, std::string>> headers;  // the HTTP (upgrade) request's, names lowercased
  std::optional<std::string> header(std::string_view lower_name) const;
};
// Awaits I/O like an async action (ctx.http, ctx.sql, ...); an error refuses
// the client's request with that error.
using ClientGuardFn = std::function<Task<Status>(ActorContext&, ClientRequest req)>;
using CreateStateFn = std::function<Result<Value>(ActorContext&, const Value& input)>;
using InputHookFn = std::function<Status(ActorContext&, const Value& input)>;
using HookFn = std::function<Status(ActorContext&)>;
using ParamsHookFn = std::function<Status(ActorContext&, const Value& params)>;
using CreateConnStateFn = std::function<Result<Value>(ActorContext&, const Value& params)>;
using ConnHookFn = std::function<Status(ActorContext&, Conn&)>;
using CreateVarsFn = std::function<Result<Value>(ActorContext&)>;
// Runs once after every turn that changed the state; errors are logged.
using StateChangeFn = std::function<Status(ActorContext&, const Value& new_state)>;
// May replace an action's output before it is sent.
using BeforeActionResponseFn =
    std::function<Result<Value>(ActorContext&, const std::string& action, const Array& args, Value output)>;

struct ActorOptions {
  // Idle time after which an actor with no work goes to sleep (RivetKit's
  // default sleepTimeout is 30 s).
  std::chrono::milliseconds sleep_timeout{30'000};
  // RivetKit's time limits (actor-model.md §2.2, §3.4, §4.3). Hooks and
  // actions are synchronous C++ and cannot be interrupted, so a limit is
  // enforced when the call returns: an action over its limit answers
  // actor.action_timed_out (its state changes stand, as RivetKit's keep
  // running), a connection hook over its limit rejects the connection, a
  // createVars over its limit fails the start.
  std::chrono::milliseconds action_timeout{60'000};
  std::chrono::milliseconds create_vars_timeout{5'000};
  std::chrono::milliseconds connection_hook_timeout{5'000};  // onBeforeConnect, createConnState, onConnect
};

class ActorDefinition {
 public:
  explicit ActorDefinition(std::string name) : name_(std::move(name)) {}

  // Exactly one of initial_state / create_state (the last call wins).
  ActorDefinition& initial_state(Value v);
  ActorDefinition& create_state(CreateStateFn fn);
  ActorDefinition& on_create(InputHookFn fn);
  ActorDefinition& on_wake(HookFn fn);
  ActorDefinition& on_sleep(HookFn fn);
  ActorDefinition& on_destroy(HookFn fn);
  // Connection hooks, in order: on_before_connect (an error rejects the
  // connection), create_conn_state, on_connect; on_disconnect on close.
  ActorDefinition& on_before_connect(ParamsHookFn fn);
  ActorDefinition& create_conn_state(CreateConnStateFn fn);
  ActorDefinition& on_connect(ConnHookFn fn);
  ActorDefinition& on_disconnect(ConnHookFn fn);
  // RivetKit's awaitable onBeforeConnect, for clients: runs before every
  // request a client makes through the gateway (HTTP actions, WebSocket
  // connections, queue sends, raw HTTP and raw WebSockets) and before the
  // connection hooks above, as an async call on the actor's strand (it sees
  // the state and may wait on I/O, e.g. fetch keys to verify a token; its
  // time limit is connection_hook_timeout). An error refuses the request
  // (HTTP: the error's status; WebSocket connection: Error + close 1011).
  // The node's own calls (app routes' ActorClient, ctx.call / call_actor /
  // send_to, schedules) are trusted code and skip it. A WebSocket is checked
  // once, when it opens.
  ActorDefinition& on_before_connect_async(ClientGuardFn fn);
  ActorDefinition& create_vars(CreateVarsFn fn);
  ActorDefinition& on_state_change(StateChangeFn fn);
  ActorDefinition& on_before_action_response(BeforeActionResponseFn fn);
  ActorDefinition& action(std::string name, ActionFn fn);
  // An action that may co_await I/O (ctx.http, ctx.sql, ctx.wait, ...).
  ActorDefinition& async_action(std::string name, AsyncActionFn fn);
  ActorDefinition& options(ActorOptions o);
  // Declares a durable queue and, optionally, its consumer (without one,
  // the run workflow reads it with queue_next).
  ActorDefinition& queue(std::string name, QueueHandlerFn fn = nullptr);
  ActorDefinition& on_request(RequestFn fn);
  ActorDefinition& on_request_async(AsyncRequestFn fn);
  ActorDefinition& on_websocket(WebSocketFn fn);
  // The actor's run handler as a durable workflow (started on every wake
  // until it completes).
  ActorDefinition& run(WorkflowFn fn);
  // Gives every actor of this type its own SQLite database (ctx.db()).
  ActorDefinition& database(DatabaseOptions opts);
  // Only actors of the `creators` types may create actors of this type
  // (through ctx.call / call_actor / send_to / send_wait). Anyone else —
  // a client's getOrCreate or create, an application route, another actor
  // type — that names a key no creator made gets `refusal` and nothing is
  // created; existing actors stay reachable. The manager API cannot destroy
  // them either (only the actor itself, ctx.destroy(), on its creator's word).
  ActorDefinition& created_only_by(std::vector<std::string> creators, Error refusal);

  const std::string& name() const { return name_; }
  const ActorOptions& options() const { return options_; }
  const ActionFn* find_action(const std::string& name) const;
  const AsyncActionFn* find_async_action(const std::string& name) const;
  bool has_action(const std::string& name) const { return find_action(name) || find_async_action(name); }
  // Every action's name (sync and async), sorted.
  std::vector<std::string> action_names() const;
  const QueueHandlerFn* find_queue(std::string_view name) const;
  const RequestFn& on_request_hook() const { return on_request_; }
  const AsyncRequestFn& on_request_async_hook() const { return on_request_async_; }
  const WebSocketFn& on_websocket_hook() const { return on_websocket_; }
  const WorkflowFn& run_hook() const { return run_; }
  bool declares_queue(std::string_view name) const { return queues_.count(std::string(name)) > 0; }
  const DatabaseOptions* database_options() const { return database_ ? &*database_ : nullptr; }
  // Empty: anyone may create one.
  const std::vector<std::string>& creators() const { return creators_; }
  const Error& creation_refusal() const { return creation_refusal_; }

  // Used by the runtime.
  Result<Value> make_state(ActorContext& c, const Value& input) const;
  const InputHookFn& on_create_hook() const { return on_create_; }
  const HookFn& on_wake_hook() const { return on_wake_; }
  const HookFn& on_sleep_hook() const { return on_sleep_; }
  const HookFn& on_destroy_hook() const { return on_destroy_; }
  const ParamsHookFn& on_before_connect_hook() const { return on_before_connect_; }
  const ClientGuardFn& on_before_connect_async_hook() const { return on_before_connect_async_; }
  const CreateConnStateFn& create_conn_state_hook() const { return create_conn_state_; }
  const ConnHookFn& on_connect_hook() const { return on_connect_; }
  const ConnHookFn& on_disconnect_hook() const { return on_disconnect_; }
  const CreateVarsFn& create_vars_hook() const { return create_vars_; }
  const StateChangeFn& on_state_change_hook() const { return on_state_change_; }
  const BeforeActionResponseFn& on_before_action_response_hook() const { return on_before_action_response_; }

 private:
  std::string name_;
  Value initial_state_ = Object{};
  CreateStateFn create_state_;
  InputHookFn on_create_;
  HookFn on_wake_, on_sleep_, on_destroy_;
  ParamsHookFn on_before_connect_;
  ClientGuardFn on_before_connect_async_;
  CreateConnStateFn create_conn_state_;
  ConnHookFn on_connect_, on_disconnect_;
  CreateVarsFn create_vars_;
  StateChangeFn on_state_change_;
  BeforeActionResponseFn on_before_action_response_;
  std::map<std::string, ActionFn, std::less<>> actions_;
  std::map<std::string, AsyncActionFn, std::less<>> async_actions_;
  std::map<std::string, QueueHandlerFn, std::less<>> queues_;
  RequestFn on_request_;
  AsyncRequestFn on_request_async_;
  WebSocketFn on_websocket_;
  WorkflowFn run_;
  ActorOptions options_;
  std::optional<DatabaseOptions> database_;
  std::vector<std::string> creators_;
  Error creation_refusal_;
};

// ------------------------------------------------------------------ workflows
//
// A workflow is the actor's `run` handler written as named, durable steps
// (actor-model.md §9). It is replayed from the top on every resume: a step
// whose result is recorded returns that result without running again, and a
// step's record commits in the same RocksDB batch as the state it changed,
// so its effect lands exactly once. Waiting (queue_next with no message,
// sleep, retry backoff) suspends the workflow by unwinding the author's code:
// workflow code must not swallow exceptions with catch (...).
struct WorkflowState;
struct WfRecord;

struct StepOptions {
  uint32_t max_attempts = 3;                  // failed attempts are retried...
  std::chrono::milliseconds backoff{100};     // ...after backoff * 2^(attempt-1)
  // Compensation run (in reverse step order) when the workflow fails after
  // this step completed; needs an earlier rollback_checkpoint.
  std::function<Status(ActorContext&, const Value& output)> rollback;
  // step_async: time limit of one attempt (workflow.step_timed_out).
  std::chrono::milliseconds timeout{60'000};
};

// What one loop iteration decides: go on (with the loop state for the next
// iteration) or finish with a value.
struct LoopResult {
  bool done = false;
  Value value;  // finish: the loop's result; next: the new loop state
  static LoopResult next(Value state = Value()) { return {false, std::move(state)}; }
  static LoopResult finish(Value v = Value()) { return {true, std::move(v)}; }
};

class Workflow {
 public:
  Workflow(WorkflowState& state, ActorContext& actor, std::string prefix)
      : state_(state), actor_(actor), prefix_(std::move(prefix)) {}

  ActorContext& actor() { return actor_; }

  // Runs `fn` once per path; replay returns the recorded result. A failing
  // attempt rolls back the state it changed and is retried with backoff up
  // to opts.max_attempts; then the step's error is returned.
  Result<Value> step(std::string_view name, const std::function<Result<Value>()>& fn, StepOptions opts = {});
  // A step that awaits I/O. `fn` runs as its own coroutine on the actor's
  // strand while the workflow is suspended (the actor's other work goes on);
  // its result is recorded once, like step()'s, and replays return it.
  // ctx.idempotency_key() is derived from the actor id and the step path,
  // not the attempt: a retry or a re-run after a crash mid-call sends the
  // same key, so the remote side can deduplicate. Failed attempts are
  // retried with opts' backoff. `fn` should not change the actor's state
  // (its writes would commit apart from the step's record): return a value
  // and apply it in the next step. opts.timeout bounds one attempt.
  using AsyncStepFn = std::function<Task<Result<Value>>(ActorContext&)>;
  Result<Value> step_async(std::string_view name, AsyncStepFn fn, StepOptions opts = {});
  // Iterations run under `name~i/`; a finished iteration is never replayed
  // (the loop records its next iteration with the iteration's last step).
  // History of iterations older than `history_size` is pruned.
  Result<Value> loop(std::string_view name, const std::function<Result<LoopResult>(Workflow&)>& fn,
                     size_t history_size = 20);
  // A loop with state: each iteration sees the state the previous one passed
  // to LoopResult::next(state), persisted with the iteration.
  Result<Value> loop(std::string_view name, Value initial_state,
                     const std::function<Result<LoopResult>(Workflow&, const Value& state)>& fn,
                     size_t history_size = 20);
  // The next message of one of `queues` (FIFO by id), recorded in history;
  // suspends until one arrives. The message is deleted from the queue in the
  // same batch as the record.
  Result<QueueMessage> queue_next(std::string_view name, const std::vector<std::string>& queues);
  // As queue_next, but gives up after `timeout` (deadline recorded on first
  // execution, so replays agree): nullopt when nothing arrived in time.
  Result<std::optional<QueueMessage>> queue_next_for(std::string_view name, const std::vector<std::string>& queues,
                                                     std::chrono::milliseconds timeout);
  // Completes a received message: a sender waiting with `wait: true` gets
  // `response` (in memory, as in RivetKit: lost if the actor restarts first).
  void complete(const QueueMessage& msg, Value response = Value(Undefined{}));
  // Durable timers: survive sleep and restarts.
  Status sleep(std::string_view name, std::chrono::milliseconds duration);
  Status sleep_until(std::string_view name, int64_t unix_ms);

  // Named branches, each with its own history scope (`name/branch/`).
  using Branch = std::pair<std::string, std::function<Result<Value>(Workflow&)>>;
  // Completes when every branch has ({branch: output}); failures aggregate
  // into workflow.join_failed.
  Result<Value> join(std::string_view name, const std::vector<Branch>& branches);
  // The first branch to complete wins ({winner, value}); the others are
  // cancelled. All failing is workflow.race_failed.
  Result<Value> race(std::string_view name, const std::vector<Branch>& branches);
  // Marks where compensation begins: when the run fails, the rollback of every
  // completed step (StepOptions::rollback) runs in reverse order, each once.
  Status rollback_checkpoint(std::string_view name);
  // Versioning: a fresh run gets `latest`; a run that already executed past
  // this point gets 1. Recorded, so replays agree.
  int64_t get_version(std::string_view name, int64_t latest);
  // Placeholder for a deleted entry of `original_kind` ("step", "loop", ...):
  // satisfies the old history entry, or records a removed entry.
  void removed(std::string_view name, std::string_view original_kind);

 private:
  std::string path(std::string_view name) const;
  bool has_checkpoint() const;
  Result<Value> record_attempt(const std::string& path, WfRecord next, Result<Value> out,
                               const StepOptions& opts);
  std::optional<Result<Value>> recorded_outcome(const std::string& path, const WfRecord* rec,
                                                const StepOptions& opts);
  WorkflowState& state_;
  ActorContext& actor_;
  std::string prefix_;
};

// Errors an actor returns to its caller. Group "user" unless given; the
// message and metadata reach the client unchanged (internal errors never do).
Error user_error(std::string message, std::string code = "user_error",
                 std::optional<Value> metadata = std::nullopt);

// Argument helpers: args[i] when present and of the right type, else the
// fallback; a present argument of the wrong type is an invalid_request.
Result<int64_t> arg_int(const Array& args, size_t i, int64_t fallback);

// All actor types a node hosts, by name.
class Registry {
 public:
  void add(ActorDefinition def);
  const ActorDefinition* find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, std::shared_ptr<const ActorDefinition>, std::less<>> defs_;
};

// ------------------------------------------------------------------ waiting

template <typename T>
Task<Result<T>> ActorContext::wait(Task<Result<T>> op) {
  if (auto st = before_wait(); !st.ok()) co_return st.error();
  AsyncScope* scope = scope_;
  auto shot = std::make_shared<OneShot<Result<T>>>();
  // The operation runs as its own coroutine: a deadline or a stop completes
  // this wait without it, and it finishes (or fails) on its own, holding
  // nothing of the actor.
  asio::co_spawn(scope->executor, std::move(op), [shot](std::exception_ptr e, Result<T> r) {
    if (e) {
      shot->set(Result<T>(internal_error()));
    } else {
      shot->set(std::move(r));
    }
  });
  // The deadline/cancel hook holds the result weakly and this frame lets go
  // of it: only the operation keeps it (and so this wait) alive. Both run on
  // this strand, so the operation cannot finish before the wait has begun.
  std::weak_ptr<OneShot<Result<T>>> weak = shot;
  scope->arm([weak](Error why) {
    if (auto s = weak.lock()) s->set(Result<T>(std::move(why)));
  });
  auto waiting = shot->wait();
  shot.reset();
  scope->leave_log();  // another actor's code may run on this thread meanwhile
  Result<T> out = co_await std::move(waiting);
  scope->enter_log();
  scope->disarm();
  if (auto st = after_wait(); !st.ok()) co_return st.error();
  co_return out;
}

}  // namespace anvil
