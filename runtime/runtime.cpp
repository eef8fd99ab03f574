#include "runtime/runtime.hpp"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "runtime/actor_id.hpp"
#include <boost/asio/redirect_error.hpp>
#include "runtime/instance.hpp"
#include "storage/pg/pool.hpp"
#include "storage/redis/client.hpp"
#include "base/value/cbor.hpp"

namespace anvil {
namespace {

std::span<const uint8_t> as_span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Error not_found() {
  return make_error("actor", "not_found", "The actor does not exist or was destroyed.");
}

// How often a caller is re-routed to a fresh instance when the one it found
// stopped (slept or failed) before running its action.
constexpr int kMaxRoutingAttempts = 8;

}  // namespace

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

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Runtime::Runtime(asio::io_context& io, storage::Store& store, storage::CommitPipeline& pipeline,
                 const Registry& registry)
    : io_(io), store_(store), pipeline_(pipeline), registry_(registry) {}

Runtime::~Runtime() {
  // Entries and instances point at each other; break the cycle.
  std::lock_guard lk(mu_);
  for (auto& [_, e] : by_id_) e->instance.reset();
}

std::string Runtime::index_key(const std::string& ns, const std::string& name,
                               const std::string& serialized_key) {
  std::string k;
  k.reserve(ns.size() + name.size() + serialized_key.size() + 2);
  k += ns;
  k += '\0';
  k += name;
  k += '\0';
  k += serialized_key;
  return k;
}

Status Runtime::load() {
  std::lock_guard lk(mu_);
  Status failure = Ok{};
  auto st = store_.scan(storage::Family::kActors, [&](std::string_view, std::string_view v) {
    auto row = storage::decode_actor_row(v);
    if (!row.ok()) {
      failure = row.error();
      return false;
    }
    auto e = std::make_shared<ActorEntry>();
    e->info.actor_id = row->actor_id;
    e->info.name = row->name;
    e->info.key = row->key;
    e->info.namespace_name = row->namespace_name;
    e->info.runner_name_selector = row->runner_name_selector;
    e->info.crash_policy = row->crash_policy;
    e->info.datacenter = row->datacenter;
    e->info.create_ts = row->create_ts;
    e->info.generation = row->generation;
    if (row->has_input) {
      auto input = cbor::decode(as_span(row->input), cbor::Mode::Storage);
      if (!input.ok()) {
        failure = input.error();
        return false;
      }
      e->input = std::move(*input);
    }
    by_key_[index_key(e->info.namespace_name, e->info.name, e->info.key)] = e->info.actor_id;
    by_id_[e->info.actor_id] = std::move(e);
    return true;
  });
  if (!st.ok()) return st;
  if (!failure.ok()) return failure;

  // Schedules survive restarts: re-arm every one (overdue ones fire now).
  size_t alarms = 0;
  st = store_.scan(storage::Family::kSchedules, [&](std::string_view k, std::string_view v) {
    auto row = storage::decode_schedule_row(v);
    if (!row.ok()) {
      spdlog::error("skipping unreadable schedule record: {}", row.error().message);
      return true;
    }
    std::string actor_id(k.substr(0, kActorIdLength));
    if (!by_id_.count(actor_id)) return true;
    arm_alarm(actor_id, Alarm{row->id, row->due_ts});
    ++alarms;
    return true;
  });
  if (!st.ok()) return st;
  // Undelivered queue messages are processed without waiting for a request.
  std::string last;
  st = store_.scan(storage::Family::kQueue, [&](std::string_view k, std::string_view) {
    std::string actor_id(k.substr(0, kActorIdLength));
    if (actor_id != last && by_id_.count(actor_id)) schedule_drain(actor_id);
    last = actor_id;
    return true;
  });
  if (!st.ok()) return st;
  // Workflows that were running resume without waiting for a request.
  st = store_.scan(storage::Family::kWorkflow, [&](std::string_view k, std::string_view v) {
    if (k.size() != kActorIdLength) return true;  // only root records
    auto row = storage::decode_workflow_row(v);
    if (row.ok() && row->status == "running" && by_id_.count(std::string(k))) schedule_workflow(std::string(k));
    return true;
  });
  if (!st.ok()) return st;
  spdlog::info("directory loaded: {} actors, {} pending schedules", by_id_.size(), alarms);
  return Ok{};
}

Result<Resolved> Runtime::get_or_create(const CreateRequest& req, bool defer_commit) {
  return resolve(req, false, defer_commit);
}
Result<Resolved> Runtime::create(const CreateRequest& req) { return resolve(req, true, false); }

void Runtime::submit_pending_create(ActorEntry& e) {
  if (!e.pending_create) return;
  e.last_seq.store(pipeline_.submit(std::move(*e.pending_create)));
  e.pending_create.reset();
}

uint64_t Runtime::flush_create(const std::string& actor_id) {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(actor_id);
  if (it == by_id_.end() || !it->second->pending_create) return 0;
  submit_pending_create(*it->second);
  return it->second->last_seq.load();
}

std::unique_ptr<rocksdb::WriteBatch> Runtime::take_pending_create(const std::shared_ptr<ActorEntry>& entry) {
  std::lock_guard lk(mu_);
  return std::move(entry->pending_create);
}

Result<Resolved> Runtime::resolve(const CreateRequest& req, bool fail_if_exists, bool defer_commit) {
  if (!registry_.find(req.name))
    return make_error("actor", "not_registered",
                      "Actor type `" + req.name + "` is not registered on this node.");
  if (auto st = validate_key(req.key); !st.ok()) return st.error();
  const std::string skey = serialize_key(req.key);
  const std::string ikey = index_key(req.namespace_name, req.name, skey);

  std::lock_guard lk(mu_);
  if (auto it = by_key_.find(ikey); it != by_key_.end()) {
    auto& entry = by_id_.at(it->second);
    if (fail_if_exists)
      return make_error("actor", "duplicate_key",
                        "Actor key '" + skey + "' already in use for actor '" + it->second + "'",
                        obj({{"existing_actor_id", it->second}, {"key", skey}}));
    // The creator's commit may still be in flight (or held back for its
    // first turn): report only once durable.
    submit_pending_create(*entry);
    return Resolved{entry->info, false, entry->last_seq.load()};
  }

  // Create: the record and the key claim commit in one batch, under the
  // directory lock, so concurrent creators of one key always find one actor.
  auto e = std::make_shared<ActorEntry>();
  e->info.actor_id = new_actor_id();
  e->info.name = req.name;
  e->info.key = skey;
  e->info.namespace_name = req.namespace_name;
  e->info.runner_name_selector = req.runner_name_selector;
  e->info.crash_policy = req.crash_policy;
  e->info.datacenter = req.datacenter;
  e->info.create_ts = now_ms();
  e->input = req.input;

  storage::ActorRow row;
  row.actor_id = e->info.actor_id;
  row.name = e->info.name;
  row.key = skey;
  row.namespace_name = e->info.namespace_name;
  row.runner_name_selector = e->info.runner_name_selector;
  row.crash_policy = e->info.crash_policy;
  row.datacenter = e->info.datacenter;
  row.create_ts = e->info.create_ts;
  if (req.input) {
    row.has_input = true;
    auto bytes = cbor::encode(*req.input, cbor::Mode::Storage);
    row.input.assign(bytes.begin(), bytes.end());
  }
  rocksdb::WriteBatch batch;
  store_.put(batch, storage::Family::kActors, row.actor_id, storage::encode(row));
  store_.put(batch, storage::Family::kKeyIndex, ikey, row.actor_id);
  uint64_t seq = 0;
  if (defer_commit) {
    e->pending_create = std::make_unique<rocksdb::WriteBatch>(std::move(batch));
  } else {
    seq = pipeline_.submit(std::move(batch));
    e->last_seq.store(seq);
  }
  e->never_started.store(true);

  by_key_[ikey] = e->info.actor_id;
  by_id_[e->info.actor_id] = e;
  spdlog::info("actor {} created: {} key={}", e->info.actor_id, e->info.name, skey);
  // An actor with a run handler starts right away, as on the engine.
  if (registry_.find(req.name)->run_hook()) schedule_workflow(e->info.actor_id);
  return Resolved{e->info, true, seq};
}

std::optional<ActorInfo> Runtime::find_by_key(const std::string& ns, const std::string& name,
                                              const ActorKey& key) const {
  std::lock_guard lk(mu_);
  auto it = by_key_.find(index_key(ns, name, serialize_key(key)));
  if (it == by_key_.end()) return std::nullopt;
  return by_id_.at(it->second)->info;
}

bool Runtime::exists(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  return it != by_id_.end() && !it->second->destroyed;
}

std::optional<ActorInfo> Runtime::find_by_id(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second->info;
}

std::vector<ActorInfo> Runtime::list_by_name(const std::string& ns, const std::string& name) const {
  std::lock_guard lk(mu_);
  std::vector<ActorInfo> out;
  for (const auto& [_, e] : by_id_)
    if (e->info.name == name && e->info.namespace_name == ns) out.push_back(e->info);
  std::sort(out.begin(), out.end(),
            [](const ActorInfo& a, const ActorInfo& b) { return a.create_ts > b.create_ts; });
  return out;
}

size_t Runtime::awake_count() const {
  std::lock_guard lk(mu_);
  size_t n = 0;
  for (const auto& [_, e] : by_id_) n += e->instance != nullptr;
  return n;
}

std::string Runtime::metrics_text() const {
  std::string out;
  auto line = [&](const char* name, const char* help, const char* type, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(v) + "\n";
  };
  line("anvil_actors", "Actors in the directory (awake or asleep).", "gauge", actor_count());
  line("anvil_actors_awake", "Actors with an instance in memory.", "gauge", awake_count());
  line("anvil_commit_rounds_total", "Synced WAL writes (group-commit rounds).", "counter", pipeline_.rounds());
  line("anvil_commits_total", "Batches committed.", "counter", pipeline_.last_synced());
  line("anvil_workflow_step_reexecutions_total",
       "Workflow steps executed again by this process after an earlier execution of the same path.", "counter",
       workflow_reexecutions.load());
  if (services_.http) out += services_.http->metrics_text();
  if (services_.pg) out += services_.pg->metrics_text();
  if (services_.redis) out += services_.redis->metrics_text();
  return out;
}

size_t Runtime::actor_count() const {
  std::lock_guard lk(mu_);
  return by_id_.size();
}

asio::awaitable<Status> Runtime::durable(uint64_t seq) {
  // Already synced (reads, or a write whose round finished): no hand-off.
  if (seq == 0 || pipeline_.synced_at_least(seq)) co_return Ok{};
  std::string err = co_await pipeline_.async_wait(seq, asio::use_awaitable);
  if (!err.empty()) {
    spdlog::error("commit {} failed: {}", seq, err);
    co_return internal_error();
  }
  co_return Ok{};
}

std::shared_ptr<Instance> Runtime::acquire(const std::string& actor_id,
                                           std::shared_ptr<ActorEntry>* entry_out) {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(actor_id);
  if (it == by_id_.end() || it->second->destroyed) return nullptr;
  auto& e = it->second;
  if (!e->instance) {
    const ActorDefinition* def = registry_.find(e->info.name);
    if (!def) return nullptr;  // type no longer hosted on this node
    e->instance = std::make_shared<Instance>(*this, e, *def);
  }
  *entry_out = e;
  return e->instance;
}

void Runtime::detach(const std::shared_ptr<ActorEntry>& entry, const Instance* inst) {
  std::lock_guard lk(mu_);
  if (entry->instance.get() == inst) entry->instance.reset();
  entry->info.sleep_ts = now_ms();
  entry->info.connectable_ts.reset();
}

void Runtime::forget(const std::shared_ptr<ActorEntry>& entry) {
  std::lock_guard lk(mu_);
  entry->destroyed = true;
  entry->instance.reset();
  auto ikey = index_key(entry->info.namespace_name, entry->info.name, entry->info.key);
  if (auto it = by_key_.find(ikey); it != by_key_.end() && it->second == entry->info.actor_id)
    by_key_.erase(it);
  by_id_.erase(entry->info.actor_id);
}

storage::ActorRow Runtime::begin_generation(const std::shared_ptr<ActorEntry>& entry) {
  std::lock_guard lk(mu_);
  auto& info = entry->info;
  info.generation += 1;
  info.start_ts = info.connectable_ts = now_ms();
  info.sleep_ts.reset();
  storage::ActorRow row;
  row.actor_id = info.actor_id;
  row.name = info.name;
  row.key = info.key;
  row.namespace_name = info.namespace_name;
  row.runner_name_selector = info.runner_name_selector;
  row.crash_policy = info.crash_policy;
  row.datacenter = info.datacenter;
  row.create_ts = info.create_ts;
  row.generation = info.generation;
  if (entry->input) {
    row.has_input = true;
    auto bytes = cbor::encode(*entry->input, cbor::Mode::Storage);
    row.input.assign(bytes.begin(), bytes.end());
  }
  return row;
}

ActorInfo Runtime::info_of(const std::shared_ptr<ActorEntry>& entry) const {
  std::lock_guard lk(mu_);
  return entry->info;
}

asio::awaitable<CallResult> Runtime::turn(const std::string& actor_id, TurnBody body, bool want_info) {
  std::vector<TurnBody> bodies;
  bodies.push_back(std::move(body));
  TurnBatch batch = co_await run_turns(actor_id, std::move(bodies), want_info);
  co_await finish_turns(actor_id, batch);
  CallResult& r = batch.results.front();
  co_await settle(r);
  co_return std::move(r);
}

asio::awaitable<TurnBatch> Runtime::run_turns(const std::string& actor_id, std::vector<TurnBody> bodies,
                                              bool want_info) {
  // What one visit of the actor's strand did: turns [from, next) ran.
  struct Visit {
    std::vector<CallResult> results;
    size_t next = 0;
    uint64_t seq = 0;
    bool drain = false;
    bool workflow = false;
    std::vector<Alarm> alarms;
    std::vector<OutboxMessage> outbox;
  };
  TurnBatch batch;
  batch.results.reserve(bodies.size());
  size_t done = 0;
  bool gone = false;
  // Attempts count visits that made no progress (the instance stopped
  // before running anything); a visit cut short by an async call is progress.
  for (int attempt = 0; attempt < kMaxRoutingAttempts && done < bodies.size();) {
    std::shared_ptr<ActorEntry> entry;
    auto inst = acquire(actor_id, &entry);
    if (!inst) {
      gone = true;
      break;
    }
    if (inst->fresh() && !entry->never_started.load()) {
      // Waking: the previous generation's last writes must be readable.
      if (auto st = co_await durable(entry->last_seq.load()); !st.ok()) {
        while (batch.results.size() < bodies.size()) batch.results.push_back(CallResult{st.error(), std::nullopt, nullptr});
        co_return batch;
      }
    }
    // The strand side is plain synchronous code run by run_on(); no lambda
    // coroutine and no temporary lives across this co_await (GCC 12
    // miscompiles captured temporaries in co_await expressions). Each body
    // is its own turn, back to back; an instance that stops midway (sleep,
    // destroy, a failed start) leaves the rest for a fresh one.
    std::function<Visit()> work = [this, inst, entry, &bodies, done, want_info]() {
      Visit v;
      v.next = done;
      for (; v.next < bodies.size(); ++v.next) {
        auto started = inst->begin_turn();
        if (!started) break;  // stopped: route the rest to a fresh instance
        CallResult r;
        if (!started->ok()) {
          r.actor = info_of(entry);
          r.output = started->error();
        } else {
          r.output = bodies[v.next](*inst);
          r.pending = inst->take_started_call();
          if (auto discarded = inst->end_turn()) {
            r.output = std::move(*discarded);
            // The async call (if any) still runs and ends aborted; nobody waits for it.
            r.pending.reset();
          }
          if (want_info || !r.output.ok()) r.actor = info_of(entry);
        }
        // An async call's first turn is queued on the strand: later bodies
        // run after it, in a new visit, so they see what it did first.
        const bool yield_to_async = r.pending != nullptr;
        v.results.push_back(std::move(r));
        for (auto& a : inst->take_alarms()) v.alarms.push_back(std::move(a));
        for (auto& m : inst->take_outbox()) v.outbox.push_back(std::move(m));
        v.drain = inst->take_drain_request() || v.drain;
        v.workflow = inst->take_workflow_request() || v.workflow;
        v.seq = inst->last_seq();  // a failed first start still commits the create
        if (!started->ok() || yield_to_async) {
          ++v.next;
          break;
        }
      }
      return v;
    };
    Visit v = co_await run_on(inst->strand(), std::move(work));
    for (auto& r : v.results) batch.results.push_back(std::move(r));
    for (auto& a : v.alarms) batch.alarms.push_back(std::move(a));
    for (auto& m : v.outbox) batch.outbox.push_back(std::move(m));
    batch.drain = batch.drain || v.drain;
    batch.workflow = batch.workflow || v.workflow;
    batch.seq = std::max(batch.seq, v.seq);
    if (v.next > done)
      attempt = 0;
    else
      ++attempt;
    done = v.next;
  }
  if (done < bodies.size()) {
    // Gone (never existed, destroyed, type not hosted) or kept stopping.
    Error e = gone ? not_found() : make_error("actor", "stopping", "The actor kept stopping; retry later.");
    while (batch.results.size() < bodies.size()) batch.results.push_back(CallResult{e, std::nullopt, nullptr});
  }
  co_return batch;
}

asio::awaitable<void> Runtime::finish_turns(const std::string& actor_id, TurnBatch& batch) {
  if (auto st = co_await durable(batch.seq); !st.ok()) {
    for (auto& r : batch.results) r.output = st.error();
    co_return;
  }
  for (const auto& a : batch.alarms) arm_alarm(actor_id, a);
  if (batch.drain) schedule_drain(actor_id);
  if (batch.workflow) schedule_workflow(actor_id);
  for (auto& m : batch.outbox) dispatch(std::move(m));
  batch.outbox.clear();
}

asio::awaitable<void> Runtime::settle(CallResult& r) {
  if (!r.pending) co_return;
  std::shared_ptr<OneShot<AsyncOutcome>> pending = std::move(r.pending);
  AsyncOutcome outcome = co_await pending->wait();
  Status st = co_await durable(outcome.seq);
  if (!st.ok())
    r.output = st.error();
  else
    r.output = std::move(outcome.output);
}

namespace {
asio::awaitable<void> finish_later(Runtime* rt, std::string actor_id, TurnBatch fx) {
  co_await rt->finish_turns(actor_id, fx);
}
}  // namespace

void Runtime::apply_after_durable(const std::string& actor_id, TurnBatch effects) {
  asio::co_spawn(io_, finish_later(this, actor_id, std::move(effects)), asio::detached);
}

asio::awaitable<CallResult> Runtime::call_action(const std::string& actor_id, std::string action,
                                                 Array args, Value conn_params) {
  co_return co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    auto conn = inst.open_conn(conn_params, nullptr, /*ephemeral=*/true);
    if (!conn.ok()) return conn.error();
    return inst.action(action, args, *conn, /*close_conn=*/true);
  });
}

asio::awaitable<CallResult> Runtime::connect(const std::string& actor_id, Value params,
                                             std::shared_ptr<ConnSink> sink) {
  co_return co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    auto conn = inst.open_conn(std::move(params), sink, /*ephemeral=*/false);
    if (!conn.ok()) return conn.error();
    return Value((*conn)->id);
  });
}

asio::awaitable<TurnBatch> Runtime::conn_calls(const std::string& actor_id, const std::string& conn_id,
                                               std::vector<ConnCall> calls) {
  std::vector<TurnBody> bodies;
  bodies.reserve(calls.size());
  for (auto& c : calls) {
    bodies.push_back([&conn_id, &c](Instance& inst) -> Result<Value> {
      auto conn = inst.find_conn(conn_id);
      if (!conn) return make_error("actor", "connection_not_found", "The connection is closed.");
      if (!c.is_subscription) return inst.action(c.name, c.args, conn);
      if (c.subscribe)
        conn->subscriptions.insert(c.name);
      else
        conn->subscriptions.erase(c.name);
      return Value(c.subscribe);
    });
  }
  co_return co_await run_turns(actor_id, std::move(bodies), /*want_info=*/false);
}

asio::awaitable<void> Runtime::disconnect(const std::string& actor_id, const std::string& conn_id) {
  co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    inst.close_conn(conn_id);
    return Value();
  });
}

asio::awaitable<Status> Runtime::destroy(const std::string& actor_id) {
  auto r = co_await turn(actor_id, [](Instance& inst) -> Result<Value> {
    inst.destroy_now();
    return Value(true);
  });
  if (!r.output.ok()) co_return r.output.error();
  co_return Ok{};
}

void QueueWaiter::complete(Value r) {
  response = std::move(r);
  completed.store(true, std::memory_order_release);
  asio::post(timer.get_executor(), [self = shared_from_this()] { self->timer.cancel(); });
}

asio::awaitable<Result<QueueSendOutcome>> Runtime::queue_send(const std::string& actor_id, std::string name,
                                                              Value body, bool wait, uint64_t timeout_ms) {
  std::shared_ptr<QueueWaiter> waiter;
  if (wait) waiter = std::make_shared<QueueWaiter>(co_await asio::this_coro::executor);
  auto r = co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    auto id = inst.enqueue(name, std::move(body), waiter);
    if (!id.ok()) return id.error();
    return Value(static_cast<int64_t>(*id));
  });
  if (!r.output.ok()) co_return r.output.error();
  if (!wait) co_return QueueSendOutcome{"completed", std::nullopt};
  if (!waiter->completed.load(std::memory_order_acquire)) {
    waiter->timer.expires_after(std::chrono::milliseconds(timeout_ms));
    boost::system::error_code ec;
    co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (waiter->completed.load(std::memory_order_acquire)) {
    std::optional<Value> response;
    if (!waiter->response.is_undefined()) response = waiter->response;
    co_return QueueSendOutcome{"completed", std::move(response)};
  }
  co_return QueueSendOutcome{"timedOut", std::nullopt};
}

asio::awaitable<Result<RawResponse>> Runtime::raw_request(const std::string& actor_id, RawRequest req) {
  Result<RawResponse> out = make_error("actor", "not_found", "The actor does not exist or was destroyed.");
  std::vector<TurnBody> bodies;
  bodies.push_back([&](Instance& inst) -> Result<Value> {
    out = inst.request(req);
    return Value();
  });
  TurnBatch batch = co_await run_turns(actor_id, std::move(bodies));
  co_await finish_turns(actor_id, batch);
  CallResult& r = batch.results.front();
  if (!r.output.ok()) co_return r.output.error();
  if (r.pending) {
    std::shared_ptr<OneShot<AsyncOutcome>> pending = std::move(r.pending);
    AsyncOutcome outcome = co_await pending->wait();
    Status st = co_await durable(outcome.seq);
    if (!st.ok()) co_return st.error();
    if (!outcome.output.ok()) co_return outcome.output.error();
    co_return std::move(*outcome.response);
  }
  co_return out;
}

asio::awaitable<CallResult> Runtime::raw_ws_open(const std::string& actor_id, RawRequest req,
                                                 std::shared_ptr<RawWebSocket> socket) {
  co_return co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    auto h = inst.open_raw_socket(req, socket);
    if (!h.ok()) return h.error();
    return Value(static_cast<int64_t>(*h));
  });
}

asio::awaitable<void> Runtime::raw_ws_message(const std::string& actor_id, uint64_t handle, WsMessage msg) {
  co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    inst.raw_socket_message(handle, msg);
    return Value();
  });
}

asio::awaitable<void> Runtime::raw_ws_closed(const std::string& actor_id, uint64_t handle, uint16_t code,
                                             std::string reason) {
  co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    inst.raw_socket_closed(handle, code, reason);
    return Value();
  });
}

void Runtime::arm_alarm(const std::string& actor_id, const Alarm& alarm) {
  auto timer = std::make_shared<asio::steady_timer>(io_);
  timer->expires_after(std::chrono::milliseconds(std::max<int64_t>(0, alarm.due_ts - now_ms())));
  timer->async_wait([this, timer, actor_id, sid = alarm.schedule_id](const boost::system::error_code& ec) {
    if (ec) return;
    asio::co_spawn(io_, fire_alarm(actor_id, sid), asio::detached);
  });
}

asio::awaitable<void> Runtime::fire_alarm(std::string actor_id, std::string schedule_id) {
  auto r = co_await turn(actor_id, [&](Instance& inst) { return inst.fire_schedule(schedule_id); });
  if (!r.output.ok() && r.output.error().qualified() != "actor.not_found")
    spdlog::warn("actor {}: schedule {} failed: {}", actor_id, schedule_id, r.output.error().message);
}

void Runtime::schedule_drain(const std::string& actor_id) {
  asio::co_spawn(
      io_,
      [this, actor_id]() -> asio::awaitable<void> {
        co_await turn(actor_id, [](Instance& inst) { return inst.process_next_message(); });
      },
      asio::detached);
}

void Runtime::schedule_workflow(const std::string& actor_id) {
  asio::co_spawn(
      io_,
      [this, actor_id]() -> asio::awaitable<void> {
        auto r = co_await turn(actor_id, [](Instance& inst) { return inst.run_workflow(); });
        (void)r;
      },
      asio::detached);
}

void Runtime::dispatch(OutboxMessage msg) { asio::co_spawn(io_, deliver(std::move(msg)), asio::detached); }

asio::awaitable<void> Runtime::deliver(OutboxMessage msg) {
  CreateRequest cr;
  cr.name = msg.name;
  cr.key = msg.key;
  auto target = get_or_create(cr);
  Result<Value> result = Value();
  if (!target.ok()) {
    result = target.error();
  } else {
    Status st = co_await durable(target->seq);
    if (!st.ok()) {
      result = st.error();
    } else if (msg.is_call) {
      Array args = msg.payload.is_array() ? msg.payload.as_array() : Array{};
      CallResult called = co_await call_action(target->info.actor_id, msg.queue_or_action, std::move(args), Value());
      result = std::move(called.output);
    } else {
      Result<QueueSendOutcome> sent = co_await queue_send(target->info.actor_id, msg.queue_or_action, msg.payload, false, 0);
      if (!sent.ok()) result = sent.error();
    }
  }
  if (!result.ok())
    spdlog::warn("actor {}: message to {} ({}) failed: {}", msg.from_actor_id, msg.name, msg.queue_or_action,
                 result.error().qualified());
  if (msg.is_call && !msg.reply_to.empty()) {
    Value reply;
    if (result.ok()) {
      reply = obj({{"ok", true}, {"output", *result}});
    } else {
      reply = obj({{"ok", false},
                   {"error", obj({{"group", result.error().group},
                                  {"code", result.error().code},
                                  {"message", result.error().message}})}});
    }
    Array reply_args;
    reply_args.push_back(std::move(reply));
    CallResult done = co_await call_action(msg.from_actor_id, msg.reply_to, std::move(reply_args), Value());
    if (!done.output.ok())
      spdlog::warn("actor {}: reply action {} failed: {}", msg.from_actor_id, msg.reply_to,
                   done.output.error().qualified());
  }
}

Result<Value> Runtime::workflow_history(const std::string& actor_id) const {
  if (!find_by_id(actor_id)) return make_error("actor", "not_found", "The actor does not exist or was destroyed.");
  Array steps;
  Status failure = Ok{};
  auto st = store_.scan_prefix(storage::Family::kWorkflow, actor_id, [&](std::string_view, std::string_view v) {
    auto row = storage::decode_workflow_row(v);
    if (!row.ok()) {
      failure = row.error();
      return false;
    }
    Object o{{"path", row->path}, {"kind", row->kind}, {"status", row->status},
             {"attempts", static_cast<int64_t>(row->attempts)}, {"startedTs", row->started_ts},
             {"completedTs", row->completed_ts ? Value(row->completed_ts) : Value()}};
    if (!row->error.empty()) o.emplace_back("error", row->error);
    if (row->kind == "loop") o.emplace_back("iteration", static_cast<int64_t>(row->iteration));
    if (row->wake_ts) o.emplace_back("wakeTs", row->wake_ts);
    steps.emplace_back(Value(std::move(o)));
    return true;
  });
  if (!st.ok()) return st.error();
  if (!failure.ok()) return failure.error();
  return Value(std::move(steps));
}

asio::awaitable<void> Runtime::shutdown() {
  std::vector<std::shared_ptr<Instance>> awake;
  {
    std::lock_guard lk(mu_);
    for (auto& [_, e] : by_id_) {
      submit_pending_create(*e);
      if (e->instance) awake.push_back(e->instance);
    }
  }
  uint64_t last = 0;
  for (auto& inst : awake) {
    std::function<int()> work = [inst]() {
      inst->sleep_now();
      return 0;
    };
    co_await run_on(inst->strand(), std::move(work));
  }
  last = pipeline_.last_submitted();
  co_await durable(last);
  spdlog::info("runtime: {} awake actors put to sleep", awake.size());
}

}  // namespace anvil
