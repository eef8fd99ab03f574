// The node's actor runtime as the layers above (engine-api, gateway, tools)
// see it: the directory of every actor (awake or asleep), create/get/
// getOrCreate with exactly-one-actor-per-key semantics, and calls onto each
// actor's strand. The machinery behind it (directory entries, instances,
// the commit pipeline and RocksDB) is runtime-internal (runtime/core.hpp);
// this header includes nothing of storage.
//
// No result is reported before it is durable, and the types say so:
// - CallResult values handed out by Runtime are durable;
// - turns run for a pipelining caller come back as PendingTurns, whose
//   results open only through finish() (DurableTurns), and an async call
//   among them only through settle();
// - directory listings come back as Pending<T>, which opens only through
//   once_durable().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/value/asio.hpp"
#include "runtime/actor_api.hpp"

namespace anvil {

namespace storage {
class Store;
class CommitPipeline;
}  // namespace storage

namespace inspect {  // runtime/inspect.hpp
struct ActorFilter;
enum class View : int;
}  // namespace inspect

class RuntimeCore;    // runtime/core.hpp
struct ActorEntry;    // runtime/directory.hpp
struct Alarm;         // runtime/effects.hpp
struct OutboxMessage;  // runtime/effects.hpp
struct AsyncOutcome;  // runtime/effects.hpp

// An operator's live read or change of one actor (Runtime::admin_operate,
// runtime/operate.cpp; the admin routes, `anvil actors` and the inspector
// routes all go through it).
struct AdminOp {
  enum class Kind {
    kState,           // => the state of the awake actor (started if need be)
    kConnections,     // => [{id, params, state, subscriptions, ephemeral}]
    kQueueSend,       // `name` a queue (any name), `value` the body => {id, name, createdAtMs}
    kQueuePurge,      // => {purged: n}
    kCancelSchedule,  // `name` the schedule id => {cancelled: bool}
    kWorkflowReplay,  // `name` the history path to replay from ("": the start) => {erased: n}
    kSqlExecute,      // `name` one SQL statement, `value` its parameters (array, or object: named) => {rows}
  };
  Kind kind = Kind::kConnections;
  std::string name;
  Value value;
};

// What the manager API reports about an actor.
struct ActorInfo {
  std::string actor_id;
  std::string name;
  std::string key;  // serialized
  std::string namespace_name;
  std::string runner_name_selector;
  std::string crash_policy;
  std::string datacenter;
  int64_t create_ts = 0;
  std::optional<int64_t> start_ts, connectable_ts, sleep_ts;
  uint32_t generation = 0;
};

struct CreateRequest {
  std::string namespace_name = "default";
  std::string name;
  ActorKey key;
  std::optional<Value> input;
  std::string runner_name_selector = "default";
  std::string crash_policy = "sleep";
  std::string datacenter = "default";
  // The actor type asking (ctx.call and friends); empty for clients, the
  // manager API and application routes. Checked against
  // ActorDefinition::creators() when the key has no actor yet.
  std::string creator;
  // Envoy mode (gateway/envoy.hpp): the Rivet Engine created the actor and
  // named it. get_or_create then returns the actor with this id, or makes
  // it with this id and create time, claiming the key (the engine decides
  // which actor a key has; a local claim of another id is replaced).
  std::string actor_id;
  int64_t create_ts = 0;
};

struct Resolved {
  ActorInfo info;
  bool created = false;
  uint64_t seq = 0;  // commit to await before reporting the actor to a client
};

// One page of a listing by name (Runtime::list_page): actors in key order;
// `cursor` resumes after the last one, empty when there are no more.
struct ActorPage {
  std::vector<ActorInfo> actors;
  std::string cursor;
};

struct QueueSendOutcome {
  std::string status;  // "completed" | "timedOut"
  std::optional<Value> response;
};


// One call of a connection's batch (conn_calls): an action or a subscription change.
struct ConnCall {
  bool is_subscription = false;
  bool subscribe = true;  // for subscriptions: on or off
  std::string name;       // action or event name
  Array args;
};

// A call's outcome. Durable: what the call wrote, and what of the actor it
// may have read, is on disk.
struct CallResult {
  Result<Value> output;
  std::optional<ActorInfo> actor;  // for the error's actor specifier / headers
};

// What turns leave for the runtime to do once their commit is durable: arm
// alarms, deliver actor-to-actor messages, schedule a queue drain or a
// workflow run. One value per turn (Instance::take_effects) and per batch
// (merged). Its parts are runtime-internal (runtime/effects.hpp).
struct TurnEffects {
  uint64_t seq = 0;  // the commit covering the turns
  bool drain = false;
  bool workflow = false;
  std::vector<Alarm> alarms;
  std::vector<OutboxMessage> outbox;

  TurnEffects();
  TurnEffects(TurnEffects&&) noexcept;
  TurnEffects& operator=(TurnEffects&&) noexcept;
  ~TurnEffects();
  bool empty() const;  // nothing to do but wait for `seq`
  // Adds `later`'s effects after these (seq: the newer commit).
  void merge(TurnEffects&& later);
};

// An async call still running after the turn that started it: settle()
// waits for its end and its durability.
class [[nodiscard]] AsyncCall {
 private:
  friend class RuntimeCore;
  friend class DurableTurns;
  std::shared_ptr<OneShot<AsyncOutcome>> outcome_;
  std::optional<ActorInfo> actor_;
};

namespace detail {
// One turn's outcome inside PendingTurns/DurableTurns.
struct TurnSlot {
  CallResult result;  // a placeholder while `async` runs
  std::shared_ptr<OneShot<AsyncOutcome>> async;
};
}  // namespace detail

// Turns that ran on an actor's strand, before their writes are durable:
// nothing of them can be read until Runtime::finish() returns DurableTurns.
class [[nodiscard]] PendingTurns {
 public:
  PendingTurns() = default;  // no turns (asio needs a default)
  size_t size() const { return slots_.size(); }

 private:
  friend class RuntimeCore;
  std::vector<detail::TurnSlot> slots_;  // one per body, in order
  TurnEffects effects_;                  // effects_.seq covers every turn
  std::shared_ptr<ActorEntry> entry_;    // the actor (null if never found)
};

// Turns whose writes are durable (from Runtime::finish()): their results may
// be reported. An async call's result comes later: take_async() it and
// settle() it.
class [[nodiscard]] DurableTurns {
 public:
  DurableTurns() = default;  // no turns (asio needs a default)
  size_t size() const { return slots_.size(); }
  bool is_async(size_t i) const { return static_cast<bool>(slots_[i].async); }
  // The result of a call that is not async (a placeholder for one that is).
  CallResult& result(size_t i) { return slots_[i].result; }
  AsyncCall take_async(size_t i);

 private:
  friend class RuntimeCore;
  std::vector<detail::TurnSlot> slots_;
};

// A value that may be reported only once commit `seq` is durable; only
// Runtime::once_durable() opens it.
template <typename T>
class [[nodiscard]] Pending {
 private:
  friend class Runtime;
  friend class RuntimeCore;
  Pending(T value, uint64_t seq) : value_(std::move(value)), seq_(seq) {}
  T value_;
  uint64_t seq_;
};

// Envoy mode (gateway/envoy.hpp): the Rivet Engine decides where an actor
// runs, so the runtime asks before it wakes one and tells when one stops.
struct HostHooks {
  // Whether this node may wake the actor now (the engine runs it here). A
  // refused wake answers as actor.not_found. Called from any thread, under
  // the directory lock: must be quick and must not call the runtime.
  std::function<bool(const std::string& actor_id)> may_wake;
  // After an awake actor stopped: asleep (idle, ctx.sleep(), or put to
  // sleep by Runtime::sleep/shutdown) or `destroyed`. Any thread; must not
  // block.
  std::function<void(const std::string& actor_id, bool destroyed)> stopped;
};

class Runtime {
 public:
  Runtime(asio::io_context& io, storage::Store& store, storage::CommitPipeline& pipeline,
          const Registry& registry);
  ~Runtime();

  // Starts serving what storage holds: the directory itself is read on
  // demand (nothing is loaded here); schedules are re-armed, queue drains
  // and running workflows resumed by a background scan. Call once before
  // serving.
  Status load();
  // How many directory entries of sleeping, idle actors stay in memory
  // (may be changed at any time; takes effect as entries come and go). Awake actors and those with connections or
  // writes in flight are always resident, beyond this bound.
  void set_directory_cache(size_t entries);

  const Registry& registry() const;
  // Set before serving (envoy mode only).
  void set_host_hooks(HostHooks hooks);
  // Set before serving; the pointees outlive the runtime. Setting them
  // again while actors run is safe (they read a snapshot: services() returns
  // a copy), but a pointee replaced must stay alive until no actor can still
  // hold the old snapshot.
  void set_services(Services s);
  Services services() const;
  asio::io_context& io();

  // Validates name/key; then returns the existing actor or creates one.
  // With `defer_commit`, a new actor's record is held back for its first
  // turn to commit (Resolved::seq is then 0); the caller must run a turn on
  // it or call flush_create() before telling anyone about the actor.
  Result<Resolved> get_or_create(const CreateRequest& req, bool defer_commit = false);
  // Submits a held-back create record, if any; returns the commit to await
  // before reporting the actor (0: nothing to wait for).
  uint64_t flush_create(const std::string& actor_id);
  // Fails with actor.duplicate_key when the key is in use.
  Result<Resolved> create(const CreateRequest& req);
  // Routing lookups (not for reporting an actor's existence: see list_*).
  std::optional<ActorInfo> find_by_key(const std::string& ns, const std::string& name,
                                       const ActorKey& key) const;
  std::optional<ActorInfo> find_by_id(const std::string& id) const;
  bool exists(const std::string& id) const;  // find_by_id without the copy

  // Listings to report (manager API): only actors whose create record is
  // submitted (held-back ones are flushed now), newest first for list_by_name;
  // an actor whose create is still inside its first turn is left out.
  // The listing opens once every listed create is durable.
  Pending<std::vector<ActorInfo>> list_by_name(const std::string& ns, const std::string& name);
  Pending<std::vector<ActorInfo>> list_by_key(const std::string& ns, const std::string& name, const ActorKey& key);
  Pending<std::vector<ActorInfo>> list_by_ids(const std::vector<std::string>& ids);
  // Up to `limit` actors of a type in key order, from storage (pages through
  // the key index; nothing else is loaded), after `cursor` (a previous
  // page's; empty = from the start).
  Pending<ActorPage> list_page(const std::string& ns, const std::string& name, const std::string& cursor,
                               size_t limit);
  template <typename T>
  asio::awaitable<Result<T>> once_durable(Pending<T> p) {
    if (auto st = co_await durable(p.seq_); !st.ok()) co_return st.error();
    co_return std::move(p.value_);
  }

  // Waits until commit `seq` is durable (error message on storage failure).
  asio::awaitable<Status> durable(uint64_t seq);

  // Runs a stateless action (ephemeral connection: onBeforeConnect,
  // createConnState, onConnect, the action, onDisconnect) on the actor's
  // strand, waking it if needed; completes after the actor's writes up to
  // this turn are durable. `traceparent`: the client's W3C header (checked
  // here; an invalid one is ignored), seen by the action and passed on by
  // its outbound calls. `ray_id`: the request's (http::Request::ray_id),
  // named by the log lines of the turns it runs.
  asio::awaitable<CallResult> call_action(const std::string& actor_id, std::string action,
                                          Array args, Value conn_params, std::string traceparent = {},
                                          std::string ray_id = {});

  // Persistent connections (WebSocket). connect() runs the connection hooks
  // and returns the connection id as a string Value.
  asio::awaitable<CallResult> connect(const std::string& actor_id, Value params,
                                      std::shared_ptr<ConnSink> sink, std::string traceparent = {});
  // A connection's queued actions and subscription changes, each its own
  // turn, in one visit of the actor's strand (fewer hand-offs than a turn
  // each). Their results open through finish().
  asio::awaitable<PendingTurns> conn_calls(const std::string& actor_id, const std::string& conn_id,
                                           std::vector<ConnCall> calls);
  // Waits until `turns` are durable, then arms their alarms and dispatches
  // their messages. A storage failure turns every result into an error.
  asio::awaitable<DurableTurns> finish(PendingTurns turns);
  // Waits for an async call's end and for its writes to be durable.
  asio::awaitable<CallResult> settle(AsyncCall call);
  // Runs onDisconnect and forgets the connection (no-op if already gone).
  asio::awaitable<void> disconnect(const std::string& actor_id, const std::string& conn_id);

  // Sends a message to a declared queue; with `wait`, holds until the actor
  // completes it or `timeout_ms` passes.
  asio::awaitable<Result<QueueSendOutcome>> queue_send(const std::string& actor_id, std::string name,
                                                       Value body, bool wait, uint64_t timeout_ms);
  // Raw WebSocket to the actor's onWebSocket: open returns a handle (int).
  asio::awaitable<CallResult> raw_ws_open(const std::string& actor_id, RawRequest req,
                                          std::shared_ptr<RawWebSocket> socket);
  asio::awaitable<void> raw_ws_message(const std::string& actor_id, uint64_t handle, WsMessage msg);
  asio::awaitable<void> raw_ws_closed(const std::string& actor_id, uint64_t handle, uint16_t code,
                                      std::string reason);
  // Raw HTTP to the actor's onRequest.
  asio::awaitable<Result<RawResponse>> raw_request(const std::string& actor_id, RawRequest req);

  // Runs the actor type's on_before_connect_async guard for a client's
  // request (the gateway calls it before actions, connections, queue sends
  // and raw requests/sockets); ok at once for types without one. An error
  // output refuses the request.
  asio::awaitable<CallResult> guard_client(const std::string& actor_id, ClientRequest req);

  // Destroys an actor (onDestroy, then all its storage).
  asio::awaitable<Status> destroy(const std::string& actor_id);

  // Puts one actor to sleep if it is awake (onSleep runs, its state is
  // persisted) and waits until that is durable; the next call wakes it.
  // actor.not_found for no such actor.
  asio::awaitable<Status> sleep(const std::string& actor_id);

  // Envoy mode: replaces everything this node stores of an actor by `rows`
  // (loaded from the engine: each a storage family number, the full local
  // key and the value), rebuilding its due-time and key index entries, and
  // drops its directory entry so the next lookup reads them. Written
  // locally only (not replicated back). The actor must not be awake
  // (actor.awake otherwise).
  struct StoredRow {
    int family = 0;  // storage::Family
    std::string key, value;
  };
  asio::awaitable<Status> replace_local(const std::string& actor_id, std::vector<StoredRow> rows);

  // Envoy mode, when the engine starts an actor here: arms its schedules,
  // drains its queue and resumes its running workflow (what a restart's
  // recovery does for every actor).
  void resume_background(const std::string& actor_id);
  // The earliest due time of the actor's schedules (from storage), if any.
  std::optional<int64_t> next_alarm(const std::string& actor_id) const;

  // Graceful stop: puts every awake actor to sleep (persisting its state).
  asio::awaitable<void> shutdown();

  // Operator view: the actor's workflow history (durable records).
  Result<Value> workflow_history(const std::string& actor_id) const;

  // Operator views from storage (runtime/inspect.hpp; the admin routes): a
  // page of actors, one view of one actor (actor.not_found). They open once
  // everything they read is durable.
  Result<Pending<Value>> admin_actors(const inspect::ActorFilter& filter) const;
  Result<Pending<Value>> admin_actor(const std::string& actor_id, inspect::View view, const std::string& arg) const;
  // Replaces an actor's state in a turn (waking it; onStateChange runs);
  // completes once durable, with the new state.
  asio::awaitable<CallResult> admin_set_state(const std::string& actor_id, Value state);
  // Registers a live view of the actor (waking it, as a turn): `watcher`
  // hears of every change until it expires or the actor is destroyed.
  asio::awaitable<CallResult> watch(const std::string& actor_id, std::weak_ptr<ActorWatcher> watcher);
  // An operator's live read or change of one actor, run as one turn (it
  // wakes the actor; a change is durable before this completes). See
  // AdminOp for what each kind answers.
  asio::awaitable<CallResult> admin_operate(const std::string& actor_id, AdminOp op);
  // The Bearer token of the actor's /inspector/* routes ("" for an actor
  // not started since before tokens existed); nullopt for no such actor.
  std::optional<std::string> inspector_token(const std::string& actor_id) const;

  // Prometheus text exposition of the node's counters.
  // Adds another part of the node's exposition to /metrics (the HTTP
  // server's connections, the gateway's traffic).
  void add_metrics_source(std::function<std::string()> source);
  std::string metrics_text() const;
  // What the storage can do now: "ok", "disk_full" (writes refused until
  // space is freed, then they resume) or "failed" (writes refused until
  // restart). Reads work in all three.
  std::string storage_state() const;
  size_t awake_count() const;
  size_t actor_count() const;

 private:
  std::unique_ptr<RuntimeCore> core_;
};

int64_t now_ms();

}  // namespace anvil
