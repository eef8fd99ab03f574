// An instance's lifecycle: start (a new generation, loaded from storage),
// the idle timer, sleep and destroy; and its commits.
#include "runtime/instance.hpp"

#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "runtime/actor_db.hpp"
#include "runtime/instance_support.hpp"
#include "storage/records.hpp"

namespace anvil {
using namespace detail;

Instance::Instance(RuntimeCore& rt, std::shared_ptr<ActorEntry> entry, const ActorDefinition& def)
    : InstanceCore(entry->info.actor_id, entry->info.name),
      rt_(rt),
      entry_(std::move(entry)),
      def_(def),
      strand_(asio::make_strand(rt.io())),
      idle_(strand_) {
  key = deserialize_key(entry_->info.key);
  conns = &entry_->conns;
}

// Never touches the runtime: an instance may outlive it (a coroutine frame
// destroyed with the io_context). Its share of the gauge goes when it stops.
Instance::~Instance() = default;

void Instance::report_queue_depth() {
  if (phase_ == Phase::Stopped) return;
  const auto depth = static_cast<int64_t>(queue_.size());
  if (depth == queue_reported_) return;
  if (!queue_gauge_) queue_gauge_ = &rt_.stats.queue_depth.with({name});
  queue_gauge_->add(depth - queue_reported_);
  queue_reported_ = depth;
}

void Instance::detach_from_runtime() {
  if (queue_gauge_) queue_gauge_->add(-queue_reported_);
  queue_gauge_ = nullptr;
  queue_reported_ = 0;
  rt_.detach(entry_, this);
}

std::optional<Status> Instance::begin_turn() {
  if (phase_ == Phase::Stopped) return std::nullopt;
  if (phase_ == Phase::Running && rt_.pipeline().lost(last_seq_)) {
    // This instance's last commit failed (disk full, disk error): what it
    // holds in memory was never saved. Drop it, so the next instance starts
    // from the durable state, and route the turn there.
    spdlog::warn("actor {} ({}): its last write was not saved; restarting from storage", actor_id, name);
    wb_.reset();
    stop_unsaved();
    return std::nullopt;
  }
  if (phase_ == Phase::Running) return Status(Ok{});
  auto st = start();
  if (!st.ok()) {
    // What the start already wrote (at least a held-back create) stays.
    commit();
    spdlog::error("actor {} ({}) could not start: {} ({})", actor_id, name, st.error().qualified(),
                  st.error().message);
    phase_ = Phase::Stopped;
    close_db();
    detach_from_runtime();
  }
  return st;
}

void Instance::stop_unsaved() {
  new_alarms_.clear();
  outbox.clear();
  close_db();  // its pages may be ahead of the durable ones
  phase_ = Phase::Stopped;
  idle_.cancel();
  detach_from_runtime();
}

Status Instance::start() {
  auto& store = rt_.store();
  if (auto create = rt_.take_pending_create(entry_)) {
    if (auto st = store.append(batch(), *create); !st.ok()) return st;
    create_in_batch_ = true;
  }
  auto row = store.get(storage::Family::kState, actor_id);
  if (!row.ok()) return row.error();

  ActorContext ctx(*this);
  bool initialized = false;
  std::string stored_state;
  if (row->has_value()) {
    auto rec = storage::decode_state_row(**row);
    if (!rec.ok()) return rec.error();
    stored_state = rec->state;
    auto v = cbor::decode(as_span(rec->state), cbor::Mode::Storage);
    if (!v.ok()) return v.error();
    state = std::move(*v);
    initialized = rec->initialized;
  }
  if (!initialized) {
    // First start: createState, then onCreate, both with the create input.
    const Value input = entry_->input.value_or(Value(Undefined{}));
    auto s = guarded(actor_id, "createState", [&] { return def_.make_state(ctx, input); });
    if (!s.ok()) return s.error();
    state = std::move(*s);
    if (def_.on_create_hook()) {
      auto st = guarded(actor_id, "onCreate", [&] { return def_.on_create_hook()(ctx, input); });
      if (!st.ok()) return st.error();
    }
  }
  if (def_.create_vars_hook()) {
    auto v = timed(actor_id, "createVars", def_.options().create_vars_timeout,
                   make_error("actor", "create_vars_timed_out", "createVars timed out."),
                   [&] { return def_.create_vars_hook()(ctx); });
    if (!v.ok()) return v.error();
    vars = std::move(*v);
  }
  if (def_.on_wake_hook()) {
    auto st = guarded(actor_id, "onWake", [&] { return def_.on_wake_hook()(ctx); });
    if (!st.ok()) return st.error();
  }

  // What the hooks wrote to the database joins the start records (below the
  // save point a discarded first turn rolls back to).
  if (auto st = flush_db(); !st.ok()) return st;

  // Every start is a new generation; the record and the state (with what the
  // hooks changed) land in one batch.
  storage::ActorRow actor_row = rt_.begin_generation(entry_);
  generation_ = actor_row.generation;
  batch().SetSavePoint();
  store.put(batch(), storage::Family::kActors, actor_id, storage::encode(actor_row));
  if (!persist_state()) {
    batch().RollbackToSavePoint();
    return make_error("actor", "state_too_large", "The actor's initial state exceeds 1 MiB.");
  }
  // The start records commit with the turn that woke the actor (one fsync
  // for a cold request); a discarded turn keeps them (end_turn).
  batch().SetSavePoint();
  start_in_batch_ = true;
  start_count_ = batch().Count();
  start_unchanged_ = false;
  if (initialized && !create_in_batch_ &&
      rt_.pipeline().health() != storage::CommitPipeline::Health::kWritable) {
    auto bytes = cbor::encode(state, cbor::Mode::Storage);
    start_unchanged_ = std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()) == stored_state;
  }
  entry_->never_started.store(false);
  if (auto st = load_queue(); !st.ok()) return st;
  if (auto st = load_workflow(); !st.ok()) return st;
  schedule_count_ = 0;
  if (auto st = rt_.store().scan_prefix(storage::Family::kSchedules, actor_id,
                                        [&](std::string_view, std::string_view) {
                                          ++schedule_count_;
                                          return true;
                                        });
      !st.ok())
    return st;
  phase_ = Phase::Running;
  spdlog::debug("actor {} ({}) started, generation {}", actor_id, name, generation_);
  return Ok{};
}


bool Instance::persist_state() {
  storage::StateRow srow{generation_, "", true};
  auto bytes = cbor::encode(state, cbor::Mode::Storage);
  if (bytes.size() > kMaxStateBytes) return false;
  srow.state.assign(bytes.begin(), bytes.end());
  rt_.store().put(batch(), storage::Family::kState, actor_id, storage::encode(srow));
  dirty = false;
  return true;
}

void Instance::commit() {
  // (A batch is reset when submitted, so a batch of start_count_ records
  // while start_unchanged_ holds is the held start records.)
  const bool only_start = start_unchanged_ && wb_ && wb_->Count() == start_count_;
  start_in_batch_ = false;
  if (!wb_ || wb_->Count() == 0) return;
  if (only_start && rt_.pipeline().health() != storage::CommitPipeline::Health::kWritable) {
    // Woken while the storage refuses writes, by a turn that wrote nothing
    // and hooks that changed nothing: its reply reveals only stored state.
    // The start records stay in the batch and commit with the next write
    // (refused, and the instance dropped, if the storage still refuses it).
    return;
  }
  start_unchanged_ = false;
  // Builds on this instance's previous commit: if that one was lost, this
  // one is refused too, so no write lands without those it builds on.
  last_seq_ = rt_.pipeline().submit(std::move(*wb_), last_seq_);
  wb_.reset();
  entry_->last_seq.store(last_seq_);
  if (create_in_batch_) {
    entry_->create_seq.store(last_seq_);
    create_in_batch_ = false;
  }
  // KV overlay: this turn's writes now belong to `last_seq_`; writes whose
  // commit is synced are in RocksDB and need no overlay any more.
  const uint64_t synced = rt_.pipeline().last_synced();
  if (!kv_overlay_) return;
  for (auto it = kv_overlay_->begin(); it != kv_overlay_->end();) {
    if (it->second.first == 0) it->second.first = last_seq_;
    if (it->second.first <= synced)
      it = kv_overlay_->erase(it);
    else
      ++it;
  }
  if (kv_overlay_->empty()) kv_overlay_.reset();
}

namespace {
// Plain, exactly sized allocation for a handler's operation. Asio's default
// hands a long-pending wait the thread's cached block, whatever its size (up
// to ~1 KiB, typically a just-freed socket op), and the wait pins it.
template <typename T>
struct ExactAlloc {
  using value_type = T;
  ExactAlloc() = default;
  template <typename U>
  ExactAlloc(const ExactAlloc<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p); }
  template <typename U>
  bool operator==(const ExactAlloc<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const ExactAlloc<U>&) const noexcept { return false; }
};
}  // namespace

struct Instance::IdleWake {
  std::shared_ptr<Instance> self;
  using allocator_type = ExactAlloc<void>;
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()(const boost::system::error_code& ec) const {
    if (ec) return;  // re-armed or cancelled
    if (self->phase_ == Phase::Running && self->pending_async_ == 0 && self->entry_->conns.empty() &&
        !self->entry_->has_raw_sockets())
      self->stop(false);
  }
};

void Instance::arm_idle_timer() {
  // Open connections, raw sockets and calls in flight keep an actor awake
  // (actor-model.md §7.2).
  if (pending_async_ > 0 || !entry_->conns.empty() || entry_->has_raw_sockets()) {
    idle_.cancel();
    return;
  }
  idle_.expires_after(def_.options().sleep_timeout);
  idle_.async_wait(IdleWake{shared_from_this()});
}

Result<Value> Instance::replace_state(Value next) {
  state = std::move(next);
  dirty = true;
  return state;
}

void Instance::sleep_now() {
  if (phase_ == Phase::Running) stop(false);
}

void Instance::destroy_now() {
  if (phase_ == Phase::Stopped) return;
  stop(true);
}

void Instance::stop(bool destroy) {
  if (phase_ == Phase::Stopped) return;
  const bool was_running = phase_ == Phase::Running;
  phase_ = Phase::Stopped;
  idle_.cancel();
  // Waits in flight end with actor.aborted; their coroutines resume after
  // this and find the actor stopped (nothing they write is committed).
  for (AsyncScope* scope : std::vector<AsyncScope*>(scopes_)) scope->cancel(aborted_error());
  ActorContext ctx(*this);
  if (destroy) {
    if (was_running && def_.on_destroy_hook()) {
      auto st = guarded(actor_id, "onDestroy", [&] { return def_.on_destroy_hook()(ctx); });
      if (!st.ok()) spdlog::warn("actor {}: onDestroy failed: {}", actor_id, st.error().message);
    }
    // Connections end with the actor; clients re-resolve on reconnect.
    auto open = std::move(entry_->conns);
    entry_->conns.clear();
    for (auto& c : open)
      if (c->sink) c->sink->close(1000, "actor.destroyed");
    std::map<uint64_t, ActorEntry::RawSocket> raws;
    if (entry_->extras) {
      raws = std::move(entry_->extras->raw_sockets);
      entry_->extras->raw_sockets.clear();
    }
    for (auto& [_, r] : raws) r.socket->close(1000, "actor destroyed");
    if (entry_->extras) {
      auto watchers = std::move(entry_->extras->watchers);
      entry_->extras->watchers.clear();
      for (auto& w : watchers)
        if (auto watcher = w.lock()) watcher->destroyed();
    }
    // All actor storage goes in one batch with the key release.
    auto& store = rt_.store();
    batch().Clear();  // nothing of this turn outlives the actor
    auto info = rt_.info_of(entry_);
    store.del(batch(), storage::Family::kActors, actor_id);
    store.del(batch(), storage::Family::kState, actor_id);
    store.del_prefix(batch(), storage::Family::kKv, actor_id);
    store.del_prefix(batch(), storage::Family::kQueue, actor_id);
    // The schedules' index entries (keyed by time) go with them.
    for (const auto& a : rt_.stored_alarms(actor_id))
      store.del(batch(), storage::Family::kDue, storage::due_key(a.due_ts, actor_id, a.schedule_id));
    store.del_prefix(batch(), storage::Family::kSchedules, actor_id);
    store.del_prefix(batch(), storage::Family::kWorkflow, actor_id);
    store.del_prefix(batch(), storage::Family::kDbPages, actor_id);
    store.del(batch(), storage::Family::kKeyIndex, RuntimeCore::index_key(info.namespace_name, info.name, info.key));
    commit();
    close_db();
    new_alarms_.clear();
    outbox.clear();
    rt_.forget(entry_);
    spdlog::info("actor {} ({}) destroyed", actor_id, name);
    return;
  }
  if (was_running) {
    if (def_.on_sleep_hook()) {
      auto st = guarded(actor_id, "onSleep", [&] { return def_.on_sleep_hook()(ctx); });
      if (!st.ok()) spdlog::warn("actor {}: onSleep failed: {}", actor_id, st.error().message);
    }
    // onSleep's database writes and state changes are kept together or not at all.
    if (auto st = flush_db(); !st.ok())
      spdlog::warn("actor {} ({}): database failed at sleep ({}); onSleep's changes discarded", actor_id, name,
                   st.error().qualified());
    else if (dirty && !persist_state())
      spdlog::warn("actor {} ({}): state exceeds {} bytes at sleep; onSleep's changes discarded", actor_id, name,
                   kMaxStateBytes);
    // The record says asleep (its sleep time after its start time): what
    // readers of the data directory go by. Not while the storage refuses
    // writes (the start record may not be stored either; the batch would
    // only be refused).
    storage::ActorRow asleep = rt_.mark_asleep(entry_);
    if (rt_.pipeline().health() == storage::CommitPipeline::Health::kWritable)
      rt_.store().put(batch(), storage::Family::kActors, actor_id, storage::encode(asleep));
    commit();
    if (!destroy) notify_watchers(false);  // what onSleep changed
  }
  close_db();
  // Open connections stay in the directory entry (hibernated) and are served
  // by the next generation without running onConnect again.
  detach_from_runtime();
  spdlog::debug("actor {} ({}) asleep", actor_id, name);
}

}  // namespace anvil
