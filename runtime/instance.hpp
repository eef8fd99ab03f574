// One awake actor. All of its code runs on its strand; actions interleave
// only at co_await, so actor code needs no locks.
//
// Lifecycle: Fresh --begin_turn()--> Running --sleep/destroy--> Stopped.
// A Stopped instance refuses work (begin_turn() says so) and the runtime
// routes the caller to a fresh instance, which wakes the actor from storage.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/value/asio.hpp"
#include "runtime/actor_api.hpp"
#include "runtime/core.hpp"
#include "runtime/workflow_state.hpp"


namespace anvil {

class ActorDb;

// The part of an instance the actor API reaches through ActorContext.
class InstanceCore {
 public:
  // Both refer into the directory entry, which the instance keeps alive.
  InstanceCore(const std::string& id, const std::string& type_name) : actor_id(id), name(type_name) {}
  virtual ~InstanceCore() = default;
  virtual Result<std::string> add_schedule(int64_t due_ts, std::string action, Array args) = 0;
  virtual Result<std::string> add_recurring(std::string name, int64_t interval_ms, std::string action, Array args) = 0;
  virtual Result<bool> cancel_schedule(const std::string& id) = 0;
  std::vector<OutboxMessage> outbox;
  // KV (see ActorContext). `get` sees this actor's own uncommitted writes.
  virtual Result<std::optional<std::string>> kv_get(std::string_view key) = 0;
  virtual void kv_put(std::string_view key, std::optional<std::string_view> value) = 0;  // nullopt = delete
  virtual Result<std::vector<std::pair<std::string, std::string>>> kv_scan(std::string_view start,
                                                                          std::string_view end, bool reverse,
                                                                          size_t limit) = 0;
  // The actor's SQLite database (see ActorContext::db).
  virtual Result<DbExecResult> db_exec(std::string_view sql, const Array& params) = 0;
  virtual Result<Array> db_query(std::string_view sql, const Array& params) = 0;
  Value vars;

  const std::string& actor_id;
  const std::string& name;
  ActorKey key;
  Value state;
  bool dirty = false;
  // A connection (not an HTTP action's) opened or closed in this turn: the
  // watchers hear of it at the turn's end.
  bool conns_changed = false;
  bool sleep_requested = false;
  bool destroy_requested = false;
  std::vector<std::shared_ptr<ConnData>>* conns = nullptr;

  // Asynchronous calls (ActorContext::wait): a wait ends the current turn
  // (end_segment commits what it changed) and the code after it starts a
  // new one (begin_segment). Both fail with actor.aborted once the actor stopped.
  virtual Status end_segment() = 0;
  virtual Status begin_segment() = 0;
  virtual Services services() const = 0;
  // An awaitable call of an action on another actor (get-or-created by name
  // and key); see ActorContext::call.
  virtual Task<Result<Value>> call_other(std::string name, ActorKey key, std::string action, Array args) = 0;
  // Likewise onto a queue, waiting for the message's completion.
  virtual Task<Result<Value>> send_other(std::string name, ActorKey key, std::string queue, Value body,
                                         std::chrono::milliseconds timeout) = 0;
};

class Instance : public std::enable_shared_from_this<Instance>, private InstanceCore, private WorkflowHost {
 public:
  using Strand = asio::strand<asio::io_context::executor_type>;
  // Typed on the strand: an any_io_executor cannot hold a strand in its
  // small buffer and heap-allocates a copy (48 B) per timer and per wait.
  using IdleTimer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                               asio::wait_traits<std::chrono::steady_clock>, Strand>;

  Instance(RuntimeCore& rt, std::shared_ptr<ActorEntry> entry, const ActorDefinition& def);
  ~Instance() override;

  const Strand& strand() const { return strand_; }
  bool fresh() const { return phase_ == Phase::Fresh; }

  // --- all below run on strand() ---

  // Starts the actor if needed. nullopt: stopped, route to a fresh instance.
  std::optional<Status> begin_turn();
  // Persists what the turn changed, then acts on sleep/destroy requests or
  // re-arms the idle timer. An error means the turn was discarded (its state
  // outgrew the ceiling) and the instance stopped; the caller reports it.
  std::optional<Error> end_turn();
  // What the turn leaves for after its commit (alarms to arm, messages to
  // send, a queue drain or workflow run to schedule) and that commit. Taken
  // after every turn, including one whose start failed (it still commits
  // a held-back create).
  TurnEffects take_effects();

  // An operator's state replacement (Runtime::admin_set_state) as a turn's
  // body: the end of the turn persists it and runs onStateChange.
  Result<Value> replace_state(Value next);
  // Operator operations as turn bodies (Runtime::admin_*;
  // runtime/instance_operate.cpp).
  Value state_view() const { return state; }
  // The open connections: [{id, params, state, subscriptions, ephemeral}].
  Value connections_view() const;
  // Adds a live view of the actor (Runtime::watch).
  void watch(std::weak_ptr<ActorWatcher> watcher) {
    auto& list = entry_->ext().watchers;
    std::erase_if(list, [](const std::weak_ptr<ActorWatcher>& w) { return w.expired(); });
    list.push_back(std::move(watcher));
  }
  // Queues a message from an operator (any queue name, no waiter):
  // {"id": "<n>", "name", "createdAtMs"}.
  Result<Value> operator_enqueue(std::string queue_name, Value body);
  // Deletes every queued message in this turn's batch: {"purged": n}.
  // Senders waiting on one are left to their timeout.
  Result<Value> purge_queue();
  // Cancels a pending schedule: {"cancelled": whether it existed}.
  Result<Value> cancel_schedule_now(const std::string& schedule_id);
  // Replays the finished (completed or failed) run workflow from the entry
  // at history path `from` (nullopt or "": from the start): that entry,
  // its children and every entry started at or after it are erased, the
  // failed entries enclosing it run again, and a workflow turn follows.
  // actor.workflow_in_flight while the workflow has not finished.
  Result<Value> replay_workflow(const std::optional<std::string>& from);
  // One SQL statement on the actor's database in this turn (writes commit
  // with it): {"rows": [{column: value}...]}.
  // `params`: an array (positional) or an object (named parameters).
  Result<Value> execute_sql(const std::string& sql, const Value& params);
  // A synchronous action's result, or (for an async action) a placeholder:
  // the call then runs as a coroutine and take_started_call() hands out its
  // outcome. With `close_conn`, the connection is closed once the action
  // finished (HTTP actions' ephemeral connections).
  Result<Value> action(const std::string& name, const Array& args, const std::shared_ptr<ConnData>& conn,
                       bool close_conn = false);
  // The async call the last action()/request() started, if any.
  std::shared_ptr<OneShot<AsyncOutcome>> take_started_call() { return std::move(started_call_); }
  // Runs the connection hooks; the connection id on success.
  Result<std::shared_ptr<ConnData>> open_conn(Value params, std::shared_ptr<ConnSink> sink, bool ephemeral);
  // onDisconnect + removal; no-op for unknown ids.
  void close_conn(const std::string& conn_id);
  std::shared_ptr<ConnData> find_conn(const std::string& conn_id) const;

  // Durable queue: appends a message to this turn's batch (FIFO by id).
  // `any_name`: an operator's message (the inspector's POST /queue) may
  // name a queue the actor does not declare, as on Rivet.
  Result<uint64_t> enqueue(std::string name, Value body, std::shared_ptr<QueueWaiter> waiter,
                           bool any_name = false);
  // Processes the oldest message with its queue handler; the message is
  // deleted in the same batch as the handler's state change.
  Result<Value> process_next_message();
  // Runs a due schedule (if it still exists) and deletes it in this turn's batch.
  // `due_ts`: the due time of the index entry that armed it.
  Result<Value> fire_schedule(const std::string& schedule_id, int64_t due_ts);
  Result<RawResponse> request(const RawRequest& req);
  // Starts the on_before_connect_async guard as an async call (its outcome
  // through take_started_call()); null Value at once when there is none.
  Result<Value> guard_client(ClientRequest req);
  Result<uint64_t> open_raw_socket(const RawRequest& req, std::shared_ptr<RawWebSocket> socket);
  void raw_socket_message(uint64_t handle, const WsMessage& msg);
  void raw_socket_closed(uint64_t handle, uint16_t code, const std::string& reason);

  // Replays the run workflow until it suspends or completes.
  Result<Value> run_workflow();
  uint64_t workflow_reexecutions() const { return wf_ ? wf_->reexecutions : 0; }

  // Puts the actor to sleep if still running.
  void sleep_now();
  // Destroys the actor.
  void destroy_now();

 private:
  enum class Phase { Fresh, Running, Stopped };

  Status start();
  // Whether the runtime should schedule a queue-drain turn (once per
  // request; see take_effects).
  bool take_drain_request();
  // Whether the runtime should schedule a workflow turn (likewise).
  bool take_workflow_request();
  Status load_queue();
  Status load_workflow();
  bool has_handled_message() const;
  // WorkflowHost
  void wf_write(const std::string& path, const WfRecord& rec) override;
  void wf_erase_prefix(const std::string& prefix) override;
  std::optional<QueueMessage> wf_take_message(const std::vector<std::string>& queues) override;
  void wf_complete(uint64_t message_id, Value response) override;
  // Completes the sender waiting on a queue message, if any.
  void complete_waiter(uint64_t message_id, Value response);
  Value wf_snapshot_state() override { return state; }
  void wf_restore_state(Value v) override { state = std::move(v); }
  std::shared_ptr<OneShot<Result<Value>>> wf_start_call(const std::string& path, Workflow::AsyncStepFn fn,
                                                        std::chrono::milliseconds timeout) override;
  asio::awaitable<void> run_async_step(std::shared_ptr<Instance> self, std::string path, Workflow::AsyncStepFn fn,
                                       std::chrono::milliseconds timeout,
                                       std::shared_ptr<OneShot<Result<Value>>> done);
  bool persist_state();  // false: the state exceeds kMaxStateBytes, nothing written
  void commit();
  Result<std::string> add_schedule(int64_t due_ts, std::string action, Array args) override;
  Result<std::string> add_recurring(std::string name, int64_t interval_ms, std::string action, Array args) override;
  Result<bool> cancel_schedule(const std::string& id) override;
  Status check_schedule_room();
  size_t schedule_count_ = 0;  // pending schedules of this actor (loaded at start)
  std::set<std::string> recurring_added_;  // recurring schedule ids this generation wrote
  Result<std::optional<std::string>> kv_get(std::string_view key) override;
  void kv_put(std::string_view key, std::optional<std::string_view> value) override;
  Result<std::vector<std::pair<std::string, std::string>>> kv_scan(std::string_view start, std::string_view end,
                                                                  bool reverse, size_t limit) override;
  // Per-actor SQLite (actor_db.cpp). The database opens on first use and
  // stays open for the instance's life; flush_db() ends the turn's SQLite
  // transaction and moves its pages into the turn's batch.
  Result<ActorDb*> database();
  Result<DbExecResult> db_exec(std::string_view sql, const Array& params) override;
  Result<Array> db_query(std::string_view sql, const Array& params) override;
  std::optional<Error> db_failure() const;
  Status flush_db();
  void close_db();
  // Why this turn must be discarded rather than committed, if it must: the
  // database failed, or (in an actor with a database) the action failed
  // after writing something.
  std::optional<Error> discard_reason();
  std::unique_ptr<ActorDb> db_;
  std::optional<Error> db_error_;  // a failed open: poisons the turn
  bool db_closed_ = false;         // stopped: no database any more
  // The error of the action this turn ran, if it failed (set by action()
  // and by the last segment of an async action).
  std::optional<Error> turn_error_;
  void stop(bool destroy);
  // Stops without writing anything more: the alarms and messages this turn
  // left are dropped, and the next request starts a fresh instance from the
  // durable state (connections stay in the directory entry). The caller
  // decides what happens to the batch.
  void stop_unsaved();
  Status end_segment() override;
  Status begin_segment() override;
  Services services() const override { return rt_.services(); }
  Task<Result<Value>> call_other(std::string name, ActorKey key, std::string action, Array args) override;
  Task<Result<Value>> send_other(std::string name, ActorKey key, std::string queue, Value body,
                                 std::chrono::milliseconds timeout) override;
  // Hands effects of a commit made outside a runtime turn to the runtime.
  void hand_off_effects();
  // Tells the actor's watchers it changed (ActorWatcher).
  void notify_watchers(bool connections);
  asio::awaitable<void> run_async_action(std::shared_ptr<Instance> self, AsyncActionFn fn, std::string action,
                                         Array args, std::shared_ptr<ConnData> conn, bool close_conn,
                                         std::shared_ptr<OneShot<AsyncOutcome>> done);
  asio::awaitable<void> run_async_request(std::shared_ptr<Instance> self, RawRequest req,
                                          std::shared_ptr<OneShot<AsyncOutcome>> done);
  asio::awaitable<void> run_client_guard(std::shared_ptr<Instance> self, ClientRequest req,
                                         std::shared_ptr<OneShot<AsyncOutcome>> done);
  template <typename T>
  asio::awaitable<Result<T>> run_scoped(AsyncScope& scope, std::string what, std::function<Task<Result<T>>()> body);
  void register_scope(AsyncScope& scope, std::chrono::milliseconds limit, Error timeout_error);
  void unregister_scope(AsyncScope& scope);
  // Async calls in flight: the actor does not go idle while there are any,
  // and a requested sleep waits for them.
  size_t pending_async_ = 0;
  std::vector<AsyncScope*> scopes_;
  std::shared_ptr<OneShot<AsyncOutcome>> started_call_;
  void arm_idle_timer();
  struct IdleWake;

  RuntimeCore& rt_;
  std::shared_ptr<ActorEntry> entry_;
  const ActorDefinition& def_;
  Strand strand_;
  IdleTimer idle_;
  // Atomic: fresh() is read off the strand (RuntimeCore::run_turns decides
  // whether to wait for the previous generation's writes) while a turn on
  // the strand may be starting the instance (a race TSan reported).
  std::atomic<Phase> phase_ = Phase::Fresh;
  uint32_t generation_ = 0;
  uint64_t last_seq_ = 0;
  // This turn's writes; allocated by the turn's first write, handed to the
  // commit pipeline by commit() (an idle actor holds none).
  std::unique_ptr<rocksdb::WriteBatch> wb_;
  rocksdb::WriteBatch& batch() {
    if (!wb_) wb_ = std::make_unique<rocksdb::WriteBatch>();
    return *wb_;
  }
  // batch_ holds this generation's start records (and a held-back create)
  // under a save point: a discarded first turn keeps them.
  bool start_in_batch_ = false;
  // Woken while the storage refuses writes with the stored state unchanged
  // by the hooks: until the first write, the start records (a generation)
  // wait in the batch instead of being refused, so reads go on (commit()).
  bool start_unchanged_ = false;
  uint32_t start_count_ = 0;  // the batch's size right after the start records
  // The batch holds this actor's held-back create record: its commit is the
  // entry's create_seq.
  bool create_in_batch_ = false;
  std::vector<Alarm> new_alarms_;
  // Undelivered messages, by id. A vector, not a deque: libstdc++ deques
  // allocate a 512 B node and a map even when empty (at most 1000 entries).
  std::vector<QueueMessage> queue_;
  uint64_t next_queue_id_ = 1;
  // anvil_queue_messages{name}: what this instance added to it (found on
  // first use: most actors never queue anything).
  metrics::Gauge* queue_gauge_ = nullptr;
  int64_t queue_reported_ = 0;
  void report_queue_depth();
  // Leaves the directory entry (rt_.detach), taking its share of the
  // queue gauge along.
  void detach_from_runtime();
  bool drain_scheduled_ = false;
  // Allocated on first use: only actors with a run hook have a workflow.
  std::unique_ptr<WorkflowState> wf_;
  WorkflowState& wfs() {
    if (!wf_) {
      wf_ = std::make_unique<WorkflowState>();
      wf_->host = this;
    }
    return *wf_;
  }
  bool wf_finished_ = false;
  bool wf_requested_ = false;
  bool wf_scheduled_ = false;
  // KV writes not yet known to be in RocksDB: user key -> (commit seq, value
  // or nullopt for a delete). seq 0 = this turn's batch, not yet submitted.
  // Allocated by the first KV write, dropped once empty.
  using KvOverlay = std::map<std::string, std::pair<uint64_t, std::optional<std::string>>>;
  std::unique_ptr<KvOverlay> kv_overlay_;
};

}  // namespace anvil
