// Runtime-internal: the implementation behind the Runtime facade
// (runtime.hpp). It owns the directory: actors live in storage (id →
// record, (ns, name, key) → id) and a bounded cache of entries is resident,
// runs turns on the actors' strands, applies their effects once durable,
// and gives Instance what it needs of the node (store, commit pipeline,
// directory updates). Definitions are split by concern:
//   directory.cpp  create/resolve/find/list, entries ↔ storage rows
//   turns.cpp      turn/run_turns/finish/settle, durability
//   calls.cpp      the public calls, each a turn body
//   background.cpp alarms, queue drains and workflow runs the runtime starts
//   outbox.cpp     actor-to-actor message delivery
//   recovery.cpp   load (alarms, drains, workflows, in the background) and shutdown
//   metrics.cpp    counters and the operator views
//   operate.cpp    the operator's live reads and changes (AdminOp)
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <thread>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/metrics/metrics.hpp"
#include "runtime/directory.hpp"
#include "runtime/effects.hpp"
#include "runtime/inspect.hpp"
#include "runtime/runtime.hpp"
#include "storage/commit_pipeline.hpp"
#include "storage/records.hpp"
#include "storage/store.hpp"

namespace anvil {

// The runtime's metric families (rendered by RuntimeCore::metrics_text;
// every family is listed in docs/operator-guide.md).
struct RuntimeMetrics {
  RuntimeMetrics();
  metrics::Registry registry;
  // anvil_actions_total{name, action, outcome}: outcome "ok" or "error";
  // action "" for names the type does not define (no unbounded labels).
  metrics::Family<metrics::Counter>& actions;
  // anvil_action_seconds{name}: an action's handler, start to answer.
  metrics::Family<metrics::Histogram>& action_seconds;
  // anvil_errors_total{group, code}: errors actions and hooks answered with.
  metrics::Family<metrics::Counter>& errors;
  // anvil_actor_sleeps_total{name}.
  metrics::Family<metrics::Counter>& sleeps;
  // anvil_schedule_lag_seconds{name}: how late a schedule fired after its due time.
  metrics::Family<metrics::Histogram>& schedule_lag;
  // anvil_queue_messages{name}: messages waiting in the queues of awake actors.
  metrics::Family<metrics::Gauge>& queue_depth;
  // anvil_queue_messages_total{name, event}: event "enqueued" or "processed".
  metrics::Family<metrics::Counter>& queue_messages;
  // anvil_actor_messages_total{outcome}: actor-to-actor messages delivered.
  metrics::Family<metrics::Counter>& actor_messages;
  // Counts an answered action or hook.
  void count_action(const std::string& actor, const std::string& action, bool known, const Status& outcome,
                    double seconds);
};

class RuntimeCore {
 public:
  RuntimeCore(asio::io_context& io, storage::Store& store, storage::CommitPipeline& pipeline,
              const Registry& registry);
  ~RuntimeCore();

  // --- what Runtime forwards (see runtime.hpp for the contracts) ---
  Status load();
  void set_directory_cache(size_t entries) { cache_capacity_.store(std::max<size_t>(entries, 1)); }
  struct DirectoryStats {
    size_t resident = 0, capacity = 0;
    uint64_t hits = 0, misses = 0, evictions = 0;
  };
  DirectoryStats directory_stats() const;
  const Registry& registry() const { return registry_; }
  // A snapshot: actors read it on their strands while the node (or a test)
  // may set new services; each reader keeps the set it loaded.
  void set_services(Services s) {
    services_.store(std::make_shared<const Services>(std::move(s)), std::memory_order_release);
  }
  Services services() const { return *services_.load(std::memory_order_acquire); }
  asio::io_context& io() { return io_; }
  Result<Resolved> get_or_create(const CreateRequest& req, bool defer_commit);
  uint64_t flush_create(const std::string& actor_id);
  Result<Resolved> create(const CreateRequest& req);
  std::optional<ActorInfo> find_by_key(const std::string& ns, const std::string& name, const ActorKey& key) const;
  std::optional<ActorInfo> find_by_id(const std::string& id) const;
  bool exists(const std::string& id) const;
  Pending<std::vector<ActorInfo>> list_by_name(const std::string& ns, const std::string& name);
  Pending<ActorPage> list_page(const std::string& ns, const std::string& name, const std::string& cursor,
                               size_t limit);
  Pending<std::vector<ActorInfo>> list_by_key(const std::string& ns, const std::string& name, const ActorKey& key);
  Pending<std::vector<ActorInfo>> list_by_ids(const std::vector<std::string>& ids);
  asio::awaitable<Status> durable(uint64_t seq);
  // `caller`: the calling actor for actor-to-actor calls (ActionContext::caller_actor).
  asio::awaitable<CallResult> call_action(const std::string& actor_id, std::string action, Array args,
                                          Value conn_params, std::optional<CallerActor> caller = std::nullopt,
                                          std::string traceparent = {}, std::string ray_id = {});
  asio::awaitable<CallResult> connect(const std::string& actor_id, Value params, std::shared_ptr<ConnSink> sink,
                                      std::string traceparent = {});
  asio::awaitable<PendingTurns> conn_calls(const std::string& actor_id, const std::string& conn_id,
                                           std::vector<ConnCall> calls);
  asio::awaitable<DurableTurns> finish(PendingTurns turns);
  asio::awaitable<CallResult> settle(AsyncCall call);
  asio::awaitable<void> disconnect(const std::string& actor_id, const std::string& conn_id);
  asio::awaitable<Result<QueueSendOutcome>> queue_send(const std::string& actor_id, std::string name, Value body,
                                                       bool wait, uint64_t timeout_ms);
  asio::awaitable<CallResult> raw_ws_open(const std::string& actor_id, RawRequest req,
                                          std::shared_ptr<RawWebSocket> socket);
  asio::awaitable<void> raw_ws_message(const std::string& actor_id, uint64_t handle, WsMessage msg);
  asio::awaitable<void> raw_ws_closed(const std::string& actor_id, uint64_t handle, uint16_t code,
                                      std::string reason);
  asio::awaitable<Result<RawResponse>> raw_request(const std::string& actor_id, RawRequest req);
  asio::awaitable<CallResult> guard_client(const std::string& actor_id, ClientRequest req);
  asio::awaitable<Status> destroy(const std::string& actor_id);
  asio::awaitable<void> shutdown();
  asio::awaitable<Status> sleep_actor(const std::string& actor_id);
  asio::awaitable<void> sleep_on_strand(std::shared_ptr<Instance> inst);  // sleep_now() on its strand
  Result<Value> workflow_history(const std::string& actor_id) const;
  Result<Pending<Value>> admin_actors(const inspect::ActorFilter& filter) const;
  Result<Pending<Value>> admin_actor(const std::string& actor_id, inspect::View view, const std::string& arg) const;
  asio::awaitable<CallResult> admin_set_state(const std::string& actor_id, Value state);
  asio::awaitable<CallResult> watch(const std::string& actor_id, std::weak_ptr<ActorWatcher> watcher);
  asio::awaitable<CallResult> admin_operate(const std::string& actor_id, AdminOp op);  // operate.cpp
  std::optional<std::string> inspector_token(const std::string& actor_id) const;
  std::string metrics_text() const;
  std::string storage_state() const;
  size_t awake_count() const;
  size_t actor_count() const;
  // Ids of the actors with an instance now.
  std::shared_ptr<const std::unordered_set<std::string>> awake_ids() const;
  // The commit to await before reporting what a store read saw now.
  uint64_t read_horizon() const;

  // --- turns ---
  // One turn on the actor: wakes it if needed, runs `body` on its strand,
  // then persists what changed and waits until that is durable (and, for an
  // async call, until it ended).
  using TurnBody = std::function<Result<Value>(Instance&)>;
  // `want_info`: report the actor's info with a success too (errors always
  // carry it).
  asio::awaitable<CallResult> turn(const std::string& actor_id, TurnBody body, bool want_info = true);
  // Runs each body as its own turn, back to back, in as few visits of the
  // actor's strand as it can; finish() opens the results.
  asio::awaitable<PendingTurns> run_turns(const std::string& actor_id, std::vector<TurnBody> bodies,
                                          bool want_info = true);

  // --- used by Instance ---
  storage::Store& store() { return store_; }
  storage::CommitPipeline& pipeline() { return pipeline_; }
  // Drops `inst` from its entry if it is still the entry's instance.
  void detach(const std::shared_ptr<ActorEntry>& entry, const Instance* inst);
  HostHooks host_hooks;  // set before serving (Runtime::set_host_hooks)
  asio::awaitable<Status> replace_local(const std::string& actor_id, std::vector<Runtime::StoredRow> rows);
  // Runtime::resume_background / next_alarm.
  void resume_background(const std::string& actor_id);
  std::optional<int64_t> next_alarm(const std::string& actor_id) const;
  // The actor's schedules as stored (id, due time): what its due-index
  // entries are keyed by.
  std::vector<Alarm> stored_alarms(const std::string& actor_id) const;
  // Removes a destroyed actor from the directory and the key index.
  void forget(const std::shared_ptr<ActorEntry>& entry);
  // Removes an entry from the cache (both maps, the recency list) and moves
  // its buckets' epochs, so a reader that read it before reads again
  // (caller holds mu_).
  void drop_resident(const std::shared_ptr<ActorEntry>& entry);
  // A new generation starts: bumps it, stamps start/connectable times and
  // returns the record to persist with the start batch.
  storage::ActorRow begin_generation(const std::shared_ptr<ActorEntry>& entry);
  // The actor goes to sleep: stamps the sleep time and returns the record
  // to persist with the sleep's commit (so a reader of the data directory,
  // `anvil actors ls --data-dir`, sees it asleep).
  storage::ActorRow mark_asleep(const std::shared_ptr<ActorEntry>& entry);
  ActorInfo info_of(const std::shared_ptr<ActorEntry>& entry) const;
  // Hands a held-back create record to the actor's first start.
  std::unique_ptr<rocksdb::WriteBatch> take_pending_create(const std::shared_ptr<ActorEntry>& entry);
  // Effects of a commit made outside a turn (an async call's segments):
  // applied once `effects.seq` is durable, as finish() does.
  void apply_after_durable(const std::string& actor_id, TurnEffects effects);
  void schedule_workflow(const std::string& actor_id);
  static std::string index_key(const std::string& ns, const std::string& name, const std::string& serialized_key);
  std::atomic<uint64_t> workflow_reexecutions{0};
  // Instances started (created or woken from sleep), by actor type:
  // anvil_actor_wakes_total{name=...}. One counter per registered type,
  // made at construction, so counting takes no lock.
  std::map<std::string, std::atomic<uint64_t>, std::less<>> wakes;
  RuntimeMetrics stats;
  // Other parts of the node (the HTTP server, the WebSocket gateway) add
  // their families to /metrics through this.
  void add_metrics_source(std::function<std::string()> source);
  void register_storage_metrics();
  // Set when shutdown() begins: from then on no turn starts (calls answer
  // actor.stopping), so nothing can wake an actor shutdown put to sleep.
  bool closing() const { return closing_.load(std::memory_order_acquire); }

 private:
  Result<Resolved> resolve(const CreateRequest& req, bool fail_if_exists, bool defer_commit);
  // resolve() for an actor the engine named (req.actor_id).
  Result<Resolved> adopt(const CreateRequest& req, const std::string& skey, const std::string& ikey);
  // A new entry, its record and key claim (caller holds mu_).
  Result<Resolved> create_entry(const CreateRequest& req, std::string id, int64_t create_ts, const std::string& skey,
                                const std::string& ikey, bool defer_commit);
  void submit_pending_create(ActorEntry& e);  // requires mu_
  // The record an entry is stored as (requires mu_).
  static storage::ActorRow actor_row(const ActorEntry& e);
  // Adds `e` to a listing if its create record is submitted (requires mu_).
  void add_to_listing(ActorEntry& e, std::vector<ActorInfo>& out, uint64_t& seq);

  // --- the directory cache (directory.cpp) ---
  // The resident entry for an id or (ns, name, key), read from storage and
  // made resident when it is not; null when there is no such actor (or on a
  // storage read error, logged). The caller's copy pins the entry.
  std::shared_ptr<ActorEntry> lookup_id(const std::string& id) const;
  std::shared_ptr<ActorEntry> lookup_key(const std::string& ikey) const;
  // Adds a listed actor read from storage (not made resident; the resident
  // entry's info when there is one; nothing if absent or destroyed).
  void add_stored(const std::string& id, std::vector<ActorInfo>& out) const;
  // An actor's record as stored, as an entry (not resident); null if absent.
  Result<std::shared_ptr<ActorEntry>> read_entry(const std::string& id) const;
  // The following require mu_.
  std::shared_ptr<ActorEntry> resident(const std::string& id) const;  // touches it
  // Returns the resident entry (`e`, or one already resident for its id).
  std::shared_ptr<ActorEntry> make_resident(const std::shared_ptr<ActorEntry>& e) const;
  bool evictable(const std::shared_ptr<ActorEntry>& e) const;
  void evict_some() const;
  bool tombstoned(const std::string& id) const;
  uint64_t& epoch(const std::string& s) const { return epochs_[std::hash<std::string>{}(s) % epochs_.size()]; }
  // Resolve's answer for an existing (resident) actor (requires mu_).
  Result<Resolved> existing(const std::shared_ptr<ActorEntry>& entry, const std::string& ikey, bool fail_if_exists);
  // The background part of load(): re-arms schedules, starts queue drains
  // and resumes workflows without holding up the first request.
  void recover();
  // Arms the alarms, schedules the drain/workflow and dispatches the
  // messages of durable turns.
  void apply(const std::string& actor_id, TurnEffects& effects);
  asio::awaitable<void> apply_when_durable(std::string actor_id, TurnEffects effects);
  // Schedules due within this horizon have a timer; later ones are found by
  // the sweep of the time-ordered index (Family::kDue) as they come near.
  static constexpr int64_t kAlarmHorizonMs = 60'000;
  static constexpr int64_t kSweepEveryMs = 30'000;
  void arm_alarm(const std::string& actor_id, const Alarm& alarm);
  asio::awaitable<void> fire_alarm(std::string actor_id, std::string schedule_id, int64_t due_ts);
  // Arms the indexed schedules due within the horizon, from `from` (recovery
  // thread). Returns false when it stopped at its batch bound (more are due
  // now; `from` is then where the next pass goes on, else it is reset).
  bool sweep_due(std::string& from);
  // Builds the time-ordered index once for a data directory from before it.
  void build_due_index();
  void schedule_drain(const std::string& actor_id);
  // Messages from one sender to one target are delivered in the order they
  // were sent: each (sender, target) pair is a lane, and a lane delivers its
  // next message only once the previous one reached the target (queued, or
  // the call answered). Different lanes run concurrently.
  void dispatch(OutboxMessage msg);
  asio::awaitable<void> drain_lane(std::string lane, OutboxMessage first);
  asio::awaitable<void> deliver(OutboxMessage msg);
  // The awake instance for an actor, creating it (not yet started) if asleep.
  std::shared_ptr<Instance> acquire(const std::string& actor_id, std::shared_ptr<ActorEntry>* entry_out);

  asio::io_context& io_;
  storage::Store& store_;
  storage::CommitPipeline& pipeline_;
  const Registry& registry_;
  std::atomic<std::shared_ptr<const Services>> services_{std::make_shared<const Services>()};

  std::atomic<bool> closing_{false};
  mutable std::mutex mu_;
  // The resident entries (a cache over the actors and key-index families)
  // and their keys; an actor not resident is read from storage on use.
  mutable std::unordered_map<std::string, std::shared_ptr<ActorEntry>> by_id_;  // GUARDED_BY(mu_)
  mutable std::unordered_map<std::string, std::string> by_key_;                 // GUARDED_BY(mu_)
  mutable std::list<std::string> lru_;  // resident ids, most recently used first; GUARDED_BY(mu_)
  std::atomic<size_t> cache_capacity_{100000};
  // Bumped for an evicted entry's id and key (by hash): a reader that went to
  // storage without the lock reads again if its bucket moved meanwhile.
  mutable std::array<uint64_t, 256> epochs_{};  // GUARDED_BY(mu_)
  // Destroyed actors whose destroy commit is not durable yet (id → its
  // seq): storage may still show them. GUARDED_BY(mu_).
  mutable std::unordered_map<std::string, uint64_t> tombstones_;
  mutable std::atomic<uint64_t> cache_hits_{0}, cache_misses_{0}, cache_evictions_{0};
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread recovery_;
  // Index keys (storage::due_key) of the schedules with a timer now.
  std::mutex alarms_mu_;
  std::unordered_set<std::string> armed_;  // GUARDED_BY(alarms_mu_)

  mutable std::mutex sources_mu_;
  std::vector<std::function<std::string()>> metrics_sources_;  // GUARDED_BY(sources_mu_)

  // Lanes being delivered → the messages waiting behind the one in flight.
  std::mutex lanes_mu_;
  std::unordered_map<std::string, std::deque<OutboxMessage>> lanes_;  // GUARDED_BY(lanes_mu_)
};

// Runs `fn` on `ex` and completes on the awaiting coroutine's executor.
template <typename R, typename Executor>
asio::awaitable<R> run_on(Executor ex, std::function<R()> fn) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      [ex](auto handler, std::function<R()> f) {
        asio::post(ex, [handler = std::move(handler), f = std::move(f)]() mutable {
          R r = f();
          auto hex = asio::get_associated_executor(handler);
          asio::post(hex, [handler = std::move(handler), r = std::move(r)]() mutable { handler(std::move(r)); });
        });
      },
      asio::use_awaitable, std::move(fn));
}

}  // namespace anvil
