// The node's actor runtime: the directory of every actor (awake or asleep),
// create/get/getOrCreate with exactly-one-actor-per-key semantics, and action
// dispatch onto each actor's strand. The layer above (engine-api, gateway)
// talks only to this class.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/actor_api.hpp"
#include "base/value/asio.hpp"
#include "storage/commit_pipeline.hpp"
#include "storage/records.hpp"
#include "storage/store.hpp"

namespace anvil {

class Instance;

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
};

struct Resolved {
  ActorInfo info;
  bool created = false;
  uint64_t seq = 0;  // commit to await before reporting the actor to a client
};

// A sender waiting for its queue message to be completed (`wait: true`).
// Completed on the actor's strand; the sender's timer is cancelled on its
// own executor to wake it.
struct QueueWaiter : std::enable_shared_from_this<QueueWaiter> {
  explicit QueueWaiter(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  std::atomic<bool> completed{false};
  Value response;  // written before `completed` is set
  void complete(Value r);
};

// A schedule to arm once its record is durable.
struct Alarm {
  std::string schedule_id;
  int64_t due_ts = 0;
};

// An actor-to-actor message, dispatched after the sending turn commits.
struct OutboxMessage {
  std::string name;
  ActorKey key;
  bool is_call = false;
  std::string queue_or_action;
  Value payload;  // queue body, or call args (array)
  std::string reply_to;
  std::string from_actor_id;
};

struct QueueSendOutcome {
  std::string status;  // "completed" | "timedOut"
  std::optional<Value> response;
};

// One directory entry. Survives sleep; dropped on destroy.
struct ActorEntry {
  ActorInfo info;
  std::optional<Value> input;
  std::atomic<uint64_t> last_seq{0};  // newest commit touching this actor
  // Created by this process and not started yet: nothing of it is in the
  // state family, so its first start need not wait for the create commit.
  std::atomic<bool> never_started{false};
  bool destroyed = false;  // GUARDED_BY(Runtime::mu_)
  std::shared_ptr<Instance> instance;  // GUARDED_BY(Runtime::mu_); null while asleep
  // A create whose record is not submitted yet (get_or_create with
  // defer_commit): the actor's first start folds it into its own batch, so a
  // cold request waits for one fsync, not two. Whoever else needs the actor
  // durable first submits it (flush_create). GUARDED_BY(Runtime::mu_).
  std::unique_ptr<rocksdb::WriteBatch> pending_create;
  // Open connections in connect order. Touched only by the current instance,
  // on its strand; kept here so they survive the actor's sleep.
  std::vector<std::shared_ptr<ConnData>> conns;
  // Rarely used per-actor state, allocated on first use (same strand
  // discipline as `conns`).
  struct RawSocket {
    std::shared_ptr<RawWebSocket> socket;
    WebSocketHandlers handlers;
  };
  struct Extras {
    // Senders waiting for completion of a queue message, by message id; in
    // memory only (as RivetKit's).
    std::map<uint64_t, std::weak_ptr<QueueWaiter>> queue_waiters;
    // Open raw WebSockets by handle.
    std::map<uint64_t, RawSocket> raw_sockets;
    uint64_t next_raw_socket = 1;
  };
  std::unique_ptr<Extras> extras;
  Extras& ext() {
    if (!extras) extras = std::make_unique<Extras>();
    return *extras;
  }
  bool has_raw_sockets() const { return extras && !extras->raw_sockets.empty(); }
};

// What an asynchronous call ended with, and the commit covering its last turn.
struct AsyncOutcome {
  Result<Value> output;
  uint64_t seq = 0;
  std::optional<RawResponse> response;  // onRequest
};

struct CallResult {
  Result<Value> output;
  std::optional<ActorInfo> actor;  // for the error's actor specifier / headers
  // An async call still running: `output` is a placeholder until settle().
  std::shared_ptr<OneShot<AsyncOutcome>> pending;
};



// Turns that ran on an actor's strand, before their writes are durable.
struct TurnBatch {
  std::vector<CallResult> results;  // one per body, in order
  uint64_t seq = 0;                 // commit covering every turn of the batch
  bool drain = false;
  bool workflow = false;
  std::vector<Alarm> alarms;
  std::vector<OutboxMessage> outbox;
};

// One call of a connection's batch (conn_calls): an action or a subscription change.
struct ConnCall {
  bool is_subscription = false;
  bool subscribe = true;  // for subscriptions: on or off
  std::string name;       // action or event name
  Array args;
};

class Runtime {
 public:
  Runtime(asio::io_context& io, storage::Store& store, storage::CommitPipeline& pipeline,
          const Registry& registry);
  ~Runtime();

  // Loads the directory from storage. Call once before serving.
  Status load();

  const Registry& registry() const { return registry_; }
  // Set before serving; the pointees outlive the runtime.
  void set_services(Services s) { services_ = s; }
  const Services& services() const { return services_; }
  asio::io_context& io() { return io_; }

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
  std::optional<ActorInfo> find_by_key(const std::string& ns, const std::string& name,
                                       const ActorKey& key) const;
  std::optional<ActorInfo> find_by_id(const std::string& id) const;
  bool exists(const std::string& id) const;  // find_by_id without the copy
  std::vector<ActorInfo> list_by_name(const std::string& ns, const std::string& name) const;

  // Waits until commit `seq` is durable (error message on storage failure).
  asio::awaitable<Status> durable(uint64_t seq);

  // Runs a stateless action (ephemeral connection: onBeforeConnect,
  // createConnState, onConnect, the action, onDisconnect) on the actor's
  // strand, waking it if needed; completes after the actor's writes up to
  // this turn are durable.
  asio::awaitable<CallResult> call_action(const std::string& actor_id, std::string action,
                                          Array args, Value conn_params);

  // Persistent connections (WebSocket). connect() runs the connection hooks
  // and returns the connection id as a string Value.
  asio::awaitable<CallResult> connect(const std::string& actor_id, Value params,
                                      std::shared_ptr<ConnSink> sink);
  // A connection's actions and subscription changes go through conn_calls().
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

  // One turn on the actor: wakes it if needed, runs `body` on its strand,
  // then persists what changed and waits until that is durable.
  using TurnBody = std::function<Result<Value>(Instance&)>;
  // `want_info`: report the actor's info with a success too (errors always
  // carry it).
  asio::awaitable<CallResult> turn(const std::string& actor_id, TurnBody body, bool want_info = true);
  // The two halves of turns, for callers that pipeline: run_turns runs each
  // body as its own turn in one visit of the actor's strand (fewer hand-offs
  // than one turn() each); finish_turns waits until they are durable, then
  // arms their alarms and dispatches their messages. A storage failure turns
  // every result into an error. Results must not be reported before
  // finish_turns completes.
  asio::awaitable<TurnBatch> run_turns(const std::string& actor_id, std::vector<TurnBody> bodies,
                                       bool want_info = true);
  asio::awaitable<void> finish_turns(const std::string& actor_id, TurnBatch& batch);
  // Waits for an async call's outcome (and its durability) when `r` holds
  // one; no-op otherwise. Call after finish_turns.
  asio::awaitable<void> settle(CallResult& r);
  // A connection's queued calls as one run_turns (then finish_turns).
  asio::awaitable<TurnBatch> conn_calls(const std::string& actor_id, const std::string& conn_id,
                                        std::vector<ConnCall> calls);
  // Destroys an actor (onDestroy, then all its storage).
  asio::awaitable<Status> destroy(const std::string& actor_id);

  // Graceful stop: puts every awake actor to sleep (persisting its state).
  asio::awaitable<void> shutdown();

  // Operator view: the actor's workflow history (durable records).
  Result<Value> workflow_history(const std::string& actor_id) const;

  // Prometheus text exposition of the node's counters.
  std::string metrics_text() const;
  std::atomic<uint64_t> workflow_reexecutions{0};

  size_t awake_count() const;
  size_t actor_count() const;

  // --- used by Instance ---
  storage::Store& store() { return store_; }
  storage::CommitPipeline& pipeline() { return pipeline_; }
  // Drops `inst` from its entry if it is still the entry's instance.
  void detach(const std::shared_ptr<ActorEntry>& entry, const Instance* inst);
  // Removes a destroyed actor from the directory and the key index.
  void forget(const std::shared_ptr<ActorEntry>& entry);
  // A new generation starts: bumps it, stamps start/connectable times and
  // returns the record to persist with the start batch.
  storage::ActorRow begin_generation(const std::shared_ptr<ActorEntry>& entry);
  ActorInfo info_of(const std::shared_ptr<ActorEntry>& entry) const;
  // Hands a held-back create record to the actor's first start.
  std::unique_ptr<rocksdb::WriteBatch> take_pending_create(const std::shared_ptr<ActorEntry>& entry);
  // Effects of a commit made outside a turn (an async call's segments):
  // applied once `seq` is durable, as finish_turns does.
  void apply_after_durable(const std::string& actor_id, TurnBatch effects);
  void schedule_workflow(const std::string& actor_id);
  static std::string index_key(const std::string& ns, const std::string& name,
                               const std::string& serialized_key);

 private:
  Result<Resolved> resolve(const CreateRequest& req, bool fail_if_exists, bool defer_commit);
  void submit_pending_create(ActorEntry& e);  // requires mu_
  void arm_alarm(const std::string& actor_id, const Alarm& alarm);
  asio::awaitable<void> fire_alarm(std::string actor_id, std::string schedule_id);
  void schedule_drain(const std::string& actor_id);
  void dispatch(OutboxMessage msg);
  asio::awaitable<void> deliver(OutboxMessage msg);
  // The awake instance for an actor, creating it (not yet started) if asleep.
  std::shared_ptr<Instance> acquire(const std::string& actor_id,
                                    std::shared_ptr<ActorEntry>* entry_out);

  asio::io_context& io_;
  storage::Store& store_;
  storage::CommitPipeline& pipeline_;
  const Registry& registry_;
  Services services_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<ActorEntry>> by_id_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::string> by_key_;                 // GUARDED_BY(mu_)
};

int64_t now_ms();

}  // namespace anvil
