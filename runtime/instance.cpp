#include "runtime/instance.hpp"

#include <random>

#include <openssl/sha.h>

#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "storage/records.hpp"

namespace anvil {
namespace {

std::span<const uint8_t> as_span(const std::string& s) {
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

// Connection ids: random UUIDv4 text, as RivetKit's.
std::string new_conn_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", unsigned(a >> 32), unsigned((a >> 16) & 0xffff),
                unsigned(a & 0xffff), unsigned(b >> 48), (unsigned long long)(b & 0xffffffffffffULL));
  return buf;
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

}  // namespace

Instance::Instance(Runtime& rt, std::shared_ptr<ActorEntry> entry, const ActorDefinition& def)
    : InstanceCore(entry->info.actor_id, entry->info.name),
      rt_(rt),
      entry_(std::move(entry)),
      def_(def),
      strand_(asio::make_strand(rt.io())),
      idle_(strand_) {
  key = deserialize_key(entry_->info.key);
  conns = &entry_->conns;
}

std::optional<Status> Instance::begin_turn() {
  if (phase_ == Phase::Stopped) return std::nullopt;
  if (phase_ == Phase::Running) return Status(Ok{});
  auto st = start();
  if (!st.ok()) {
    // What the start already wrote (at least a held-back create) stays.
    commit();
    spdlog::error("actor {} ({}) could not start: {} ({})", actor_id, name, st.error().qualified(),
                  st.error().message);
    phase_ = Phase::Stopped;
    rt_.detach(entry_, this);
  }
  return st;
}

Status Instance::start() {
  auto& store = rt_.store();
  if (auto create = rt_.take_pending_create(entry_)) {
    if (auto st = store.append(batch(), *create); !st.ok()) return st;
  }
  auto row = store.get(storage::Family::kState, actor_id);
  if (!row.ok()) return row.error();

  ActorContext ctx(*this);
  bool initialized = false;
  if (row->has_value()) {
    auto rec = storage::decode_state_row(**row);
    if (!rec.ok()) return rec.error();
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

// Anvil's documented state ceiling (actor-model.md §2.4 recommends 1 MiB).
constexpr size_t kMaxStateBytes = 1024 * 1024;

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
  start_in_batch_ = false;
  if (!wb_ || wb_->Count() == 0) return;
  last_seq_ = rt_.pipeline().submit(std::move(*wb_));
  wb_.reset();
  entry_->last_seq.store(last_seq_);
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

static std::string queue_key(const std::string& actor_id, uint64_t id) {
  std::string k = actor_id;
  for (int i = 7; i >= 0; --i) k += static_cast<char>((id >> (i * 8)) & 0xff);
  return k;
}

Status Instance::load_queue() {
  queue_.clear();
  Status failure = Ok{};
  auto st = rt_.store().scan_prefix(storage::Family::kQueue, actor_id, [&](std::string_view, std::string_view v) {
    auto row = storage::decode_queue_row(v);
    if (!row.ok()) {
      failure = row.error();
      return false;
    }
    auto body = cbor::decode(as_span(row->body), cbor::Mode::Storage);
    if (!body.ok()) {
      failure = body.error();
      return false;
    }
    queue_.push_back(QueueMessage{row->id, row->name, std::move(*body), row->created_ts});
    next_queue_id_ = std::max(next_queue_id_, row->id + 1);
    return true;
  });
  if (!st.ok()) return st;
  return failure;
}

// RivetKit's limits (actor-model.md §8.2).
constexpr size_t kMaxQueueMessageBytes = 64 * 1024;
constexpr size_t kMaxQueueSize = 1000;

Result<uint64_t> Instance::enqueue(std::string qname, Value body, std::shared_ptr<QueueWaiter> waiter) {
  if (!def_.declares_queue(qname))
    return make_error("queue", "not_found", "Queue `" + qname + "` is not declared by actor `" + name + "`.");
  auto bytes = cbor::encode(body, cbor::Mode::Storage);
  if (bytes.size() > kMaxQueueMessageBytes)
    return make_error("queue", "message_too_large", "Queue message exceeds 64 KiB.");
  if (queue_.size() >= kMaxQueueSize)
    return make_error("queue", "full", "Queue is full (1000 messages).");
  storage::QueueRow row{next_queue_id_++, qname, std::string(bytes.begin(), bytes.end()), now_ms()};
  rt_.store().put(batch(), storage::Family::kQueue, queue_key(actor_id, row.id), storage::encode(row));
  if (wf_ && std::find(wf_->waiting_queues.begin(), wf_->waiting_queues.end(), qname) != wf_->waiting_queues.end())
    wf_requested_ = true;
  queue_.push_back(QueueMessage{row.id, std::move(qname), std::move(body), row.created_ts});
  if (waiter) entry_->ext().queue_waiters[row.id] = waiter;
  return row.id;
}

bool Instance::has_handled_message() const {
  for (const auto& m : queue_)
    if (def_.find_queue(m.name)) return true;
  return false;
}

Result<Value> Instance::process_next_message() {
  drain_scheduled_ = false;
  // The oldest message that has a queue handler; the others wait for the
  // workflow's queue_next.
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const QueueMessage& m) { return def_.find_queue(m.name); });
  if (it == queue_.end()) return Value();
  QueueMessage msg = std::move(*it);
  queue_.erase(it);
  const QueueHandlerFn* handler = def_.find_queue(msg.name);
  Result<Value> out = Value();
  if (handler) {
    ActorContext ctx(*this);
    out = guarded(actor_id, "queue handler", [&] { return (*handler)(ctx, msg); });
    if (!out.ok())
      spdlog::warn("actor {}: queue `{}` message {} failed: {}", actor_id, msg.name, msg.id, out.error().message);
  }
  // Consumed in the same batch as the handler's state change.
  rt_.store().del(batch(), storage::Family::kQueue, queue_key(actor_id, msg.id));
  complete_waiter(msg.id, out.ok() ? *out : Value(Undefined{}));
  return out;
}

Result<uint64_t> Instance::open_raw_socket(const RawRequest& req, std::shared_ptr<RawWebSocket> socket) {
  if (!def_.on_websocket_hook())
    return make_error("actor", "websocket_handler_not_found", "This actor has no onWebSocket handler.");
  ActorContext ctx(*this);
  auto handlers = guarded(actor_id, "onWebSocket", [&] { return def_.on_websocket_hook()(ctx, socket, req); });
  if (!handlers.ok()) return handlers.error();
  uint64_t handle = entry_->ext().next_raw_socket++;
  entry_->ext().raw_sockets[handle] = ActorEntry::RawSocket{std::move(socket), std::move(*handlers)};
  return handle;
}

void Instance::raw_socket_message(uint64_t handle, const WsMessage& msg) {
  auto it = entry_->ext().raw_sockets.find(handle);
  if (it == entry_->ext().raw_sockets.end() || !it->second.handlers.on_message) return;
  ActorContext ctx(*this);
  auto sock = it->second.socket;
  auto& fn = it->second.handlers.on_message;
  guarded(actor_id, "websocket message", [&]() -> Status {
    fn(ctx, *sock, msg);
    return Ok{};
  });
}

void Instance::raw_socket_closed(uint64_t handle, uint16_t code, const std::string& reason) {
  auto it = entry_->ext().raw_sockets.find(handle);
  if (it == entry_->ext().raw_sockets.end()) return;
  auto entry = std::move(it->second);
  entry_->ext().raw_sockets.erase(it);
  if (!entry.handlers.on_close) return;
  ActorContext ctx(*this);
  guarded(actor_id, "websocket close", [&]() -> Status {
    entry.handlers.on_close(ctx, *entry.socket, code, reason);
    return Ok{};
  });
}

bool Instance::take_drain_request() {
  if (drain_scheduled_ || phase_ != Phase::Running || !has_handled_message()) return false;
  drain_scheduled_ = true;
  return true;
}

// ------------------------------------------------------------------ workflow

// The schedule action that resumes the workflow after a timer suspension.
static constexpr const char* kWorkflowWake = "__workflow_wake";

Status Instance::load_workflow() {
  wf_finished_ = false;
  if (!def_.run_hook()) return Ok{};
  wfs().history.clear();
  Status failure = Ok{};
  auto st = rt_.store().scan_prefix(storage::Family::kWorkflow, actor_id, [&](std::string_view, std::string_view v) {
    auto row = storage::decode_workflow_row(v);
    if (!row.ok()) {
      failure = row.error();
      return false;
    }
    Value result;
    if (!row->result.empty()) {
      auto r = cbor::decode(as_span(row->result), cbor::Mode::Storage);
      if (!r.ok()) {
        failure = r.error();
        return false;
      }
      result = std::move(*r);
    }
    wfs().history[row->path] = WfRecord{row->kind,        row->status, std::move(result), row->attempts,
                                      row->started_ts,  row->completed_ts, row->error,  row->iteration,
                                      row->wake_ts};
    return true;
  });
  if (!st.ok()) return st;
  if (!failure.ok()) return failure;
  const WfRecord* root = wfs().find("");
  wf_finished_ = root && (root->status == "completed" || root->status == "failed");
  wf_requested_ = !wf_finished_;
  return Ok{};
}

void Instance::wf_write(const std::string& path, const WfRecord& rec) {
  storage::WorkflowRow row{path, rec.kind, rec.status, "", rec.attempts, rec.started_ts, rec.completed_ts,
                           rec.error, rec.iteration, rec.wake_ts};
  if (!rec.result.is_null()) {
    auto bytes = cbor::encode(rec.result, cbor::Mode::Storage);
    row.result.assign(bytes.begin(), bytes.end());
  }
  rt_.store().put(batch(), storage::Family::kWorkflow, actor_id + path, storage::encode(row));
}

void Instance::wf_erase_prefix(const std::string& prefix) {
  for (auto it = wfs().history.lower_bound(prefix); it != wfs().history.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    rt_.store().del(batch(), storage::Family::kWorkflow, actor_id + it->first);
    it = wfs().history.erase(it);
  }
}

std::optional<QueueMessage> Instance::wf_take_message(const std::vector<std::string>& queues) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const QueueMessage& m) {
    return queues.empty() || std::find(queues.begin(), queues.end(), m.name) != queues.end();
  });
  if (it == queue_.end()) return std::nullopt;
  QueueMessage msg = std::move(*it);
  queue_.erase(it);
  rt_.store().del(batch(), storage::Family::kQueue, queue_key(actor_id, msg.id));
  // A sender waiting for completion keeps waiting until complete() (or its timeout).
  return msg;
}

void Instance::wf_complete(uint64_t message_id, Value response) { complete_waiter(message_id, std::move(response)); }

void Instance::complete_waiter(uint64_t message_id, Value response) {
  if (!entry_->extras) return;  // nobody ever waited on this actor
  auto& waiters = entry_->extras->queue_waiters;
  if (auto it = waiters.find(message_id); it != waiters.end()) {
    if (auto waiter = it->second.lock()) waiter->complete(std::move(response));
    waiters.erase(it);
  }
}

Result<Value> Instance::run_workflow() {
  wf_scheduled_ = false;
  wf_requested_ = false;
  if (!def_.run_hook() || wf_finished_) return Value();
  wfs().waiting_queues.clear();
  wfs().iterations_this_turn = 0;
  wfs().visited.clear();
  wfs().rollbacks.clear();
  if (!wfs().find("")) wfs().write("", WfRecord{"run", "running", Value(), 1, now_ms(), 0, "", 0, 0});
  wfs().rolling_back = wfs().find("")->status == "rolling_back";
  ActorContext ctx(*this);
  Workflow wf(wfs(), ctx, "");
  struct CountReexecutions {
    Runtime& rt;
    WorkflowState& s;
    uint64_t before;
    ~CountReexecutions() { rt.workflow_reexecutions += s.reexecutions - before; }
  } count{rt_, wfs(), wfs().reexecutions};
  Result<Value> out = Value();
  try {
    out = def_.run_hook()(wf);
  } catch (const WorkflowSuspend& s) {
    if (!s.queues.empty()) wfs().waiting_queues = s.queues;
    if (s.wake_ts && wfs().timer_ts != s.wake_ts) {
      wfs().timer_ts = s.wake_ts;
      // A durable wake-up: survives sleep and restarts like any schedule.
      storage::ScheduleRow row{"wf-" + std::to_string(s.wake_ts), kWorkflowWake, "", s.wake_ts, now_ms(), 0, ""};
      auto args = cbor::encode(Value(Array{}), cbor::Mode::Storage);
      row.args.assign(args.begin(), args.end());
      rt_.store().put(batch(), storage::Family::kSchedules, actor_id + row.id, storage::encode(row));
      new_alarms_.push_back(Alarm{row.id, s.wake_ts});
    }
    if (s.yield) wf_requested_ = true;
    return Value();
  } catch (const WorkflowFailure& f) {
    out = f.error;
  } catch (const std::exception& e) {
    spdlog::error("actor {}: workflow threw: {}", actor_id, e.what());
    out = internal_error();
  }
  WfRecord root = *wfs().find("");

  if (wfs().rolling_back) {
    // Compensation: rollback handlers of completed steps, newest first, each
    // recorded so that a crash resumes where it stopped.
    for (auto it = wfs().rollbacks.rbegin(); it != wfs().rollbacks.rend(); ++it) {
      const std::string rp = it->first + "#rollback";
      if (const WfRecord* r = wfs().find(rp); r && r->status == "completed") continue;
      const Value output = wfs().find(it->first)->result;
      auto st = guarded(actor_id, "rollback", [&]() -> Status { return it->second(ctx, output); });
      wfs().write(rp, WfRecord{"rollback", st.ok() ? "completed" : "failed", Value(), 1, now_ms(), now_ms(),
                             st.ok() ? "" : st.error().qualified() + ": " + st.error().message, 0, 0});
      if (!st.ok()) {
        root.error += "; rollback of `" + it->first + "` failed: " + st.error().message;
        break;
      }
    }
    root.status = "failed";
    root.completed_ts = now_ms();
    wfs().write("", std::move(root));
    wf_finished_ = true;
    wfs().rolling_back = false;
    spdlog::error("actor {} ({}): workflow rolled back and failed: {}", actor_id, name, wfs().find("")->error);
    return Value();
  }

  if (out.ok()) {
    // Every recorded entry must have been reached (outside loop iterations,
    // which are pruned and skipped by design); use removed() for deletions.
    for (const auto& [p, rec] : wfs().history)
      if (!p.empty() && p.find('~') == std::string::npos && p.find('#') == std::string::npos &&
          !wfs().visited.count(p)) {
        out = make_error("workflow", "history_divergent",
                         "Workflow entry `" + p + "` exists in history but was not visited. Use removed().");
        break;
      }
  }
  if (!out.ok()) {
    root.error = out.error().qualified() + ": " + out.error().message;
    bool has_checkpoint = false;
    for (const auto& [p, rec] : wfs().history) has_checkpoint = has_checkpoint || rec.kind == "rollback_checkpoint";
    if (has_checkpoint && out.error().code != "history_divergent") {
      // Replay once more in rollback mode to collect the compensations.
      root.status = "rolling_back";
      wfs().write("", std::move(root));
      wf_requested_ = true;
      return Value();
    }
  }
  root.status = out.ok() ? "completed" : "failed";
  root.completed_ts = now_ms();
  if (out.ok()) root.result = *out;
  wfs().write("", std::move(root));
  wf_finished_ = true;
  if (!out.ok())
    spdlog::error("actor {} ({}): workflow failed: {} ({})", actor_id, name, out.error().qualified(),
                  out.error().message);
  return out;
}

bool Instance::take_workflow_request() {
  if (!wf_requested_ || wf_scheduled_ || phase_ != Phase::Running) return false;
  wf_scheduled_ = true;
  return true;
}

// RivetKit's maxSchedules default (actor-model.md §6.2).
constexpr size_t kMaxSchedules = 1000;

Status Instance::check_schedule_room() {
  if (schedule_count_ >= kMaxSchedules)
    return make_error("schedule", "max_schedules_exceeded", "An actor holds at most 1000 pending schedules.");
  return Ok{};
}

Result<std::string> Instance::add_recurring(std::string job, int64_t interval_ms, std::string action, Array args) {
  if (!def_.has_action(action))
    return make_error("actor", "action_not_found", "Action `" + action + "` was not found.");
  if (interval_ms < 5000)
    return make_error("schedule", "invalid_interval", "A recurring schedule's interval must be at least 5000 ms.");
  if (job.empty()) return make_error("schedule", "invalid_name", "A recurring schedule needs a name.");
  storage::ScheduleRow row;
  row.id = "every:" + job;
  auto existing = rt_.store().get(storage::Family::kSchedules, actor_id + row.id);
  if (!existing.ok()) return existing.error();
  if (!existing->has_value()) {
    if (auto st = check_schedule_room(); !st.ok()) return st.error();
    ++schedule_count_;
  }
  row.action = std::move(action);
  auto bytes = cbor::encode(Value(std::move(args)), cbor::Mode::Storage);
  row.args.assign(bytes.begin(), bytes.end());
  row.created_ts = now_ms();
  row.due_ts = row.created_ts + interval_ms;
  row.interval_ms = interval_ms;
  row.name = std::move(job);
  rt_.store().put(batch(), storage::Family::kSchedules, actor_id + row.id, storage::encode(row));
  new_alarms_.push_back(Alarm{row.id, row.due_ts});
  return row.id;
}

Result<bool> Instance::cancel_schedule(const std::string& id) {
  auto existing = rt_.store().get(storage::Family::kSchedules, actor_id + id);
  if (!existing.ok()) return existing.error();
  if (!existing->has_value()) return false;
  rt_.store().del(batch(), storage::Family::kSchedules, actor_id + id);
  if (schedule_count_ > 0) --schedule_count_;
  return true;  // its armed timer finds no record and does nothing
}

Result<std::string> Instance::add_schedule(int64_t due_ts, std::string action, Array args) {
  if (!def_.has_action(action))
    return make_error("actor", "action_not_found", "Action `" + action + "` was not found.");
  if (auto st = check_schedule_room(); !st.ok()) return st.error();
  ++schedule_count_;
  storage::ScheduleRow row;
  row.id = new_conn_id();
  row.action = std::move(action);
  auto bytes = cbor::encode(Value(std::move(args)), cbor::Mode::Storage);
  row.args.assign(bytes.begin(), bytes.end());
  row.due_ts = due_ts;
  row.created_ts = now_ms();
  rt_.store().put(batch(), storage::Family::kSchedules, actor_id + row.id, storage::encode(row));
  new_alarms_.push_back(Alarm{row.id, due_ts});
  return row.id;
}

Result<Value> Instance::fire_schedule(const std::string& schedule_id) {
  auto raw = rt_.store().get(storage::Family::kSchedules, actor_id + schedule_id);
  if (!raw.ok()) return raw.error();
  if (!raw->has_value()) return Value();  // already fired (e.g. before a restart)
  auto row = storage::decode_schedule_row(**raw);
  if (!row.ok()) return row.error();
  if (row->action == kWorkflowWake) {
    rt_.store().del(batch(), storage::Family::kSchedules, actor_id + schedule_id);
    wfs().timer_ts = 0;
    wf_requested_ = true;
    return Value();
  }
  auto args = cbor::decode(as_span(row->args), cbor::Mode::Storage);
  if (!args.ok() || !args->is_array()) return make_error("storage", "corrupt_record", "schedule args");
  Array call_args = std::move(args->as_array());
  const int64_t fired_at = now_ms();
  Object info{{"kind", row->interval_ms > 0 ? "every" : "at"}, {"id", row->id}, {"scheduledAt", row->due_ts},
              {"firedAt", fired_at}};
  if (!row->name.empty()) info.emplace_back("name", row->name);
  call_args.emplace_back(Value(std::move(info)));
  // Scheduled actions run without a client connection: each gets its own
  // empty one (never shared across calls, actors or threads).
  auto out = action(row->action, call_args, std::make_shared<ConnData>());
  if (row->interval_ms > 0) {
    // Next deadline on the original cadence; runs missed while the node was
    // down collapse into the one that just fired.
    int64_t next = row->due_ts + row->interval_ms;
    if (next <= fired_at) next += ((fired_at - next) / row->interval_ms + 1) * row->interval_ms;
    row->due_ts = next;
    rt_.store().put(batch(), storage::Family::kSchedules, actor_id + schedule_id, storage::encode(*row));
    new_alarms_.push_back(Alarm{row->id, next});
    return out;
  }
  // Deleted with the action's state change: the effect is applied once, and
  // a crash before this commit fires it again after restart.
  rt_.store().del(batch(), storage::Family::kSchedules, actor_id + schedule_id);
  if (schedule_count_ > 0) --schedule_count_;
  return out;
}

Result<RawResponse> Instance::request(const RawRequest& req) {
  if (def_.on_request_async_hook()) {
    auto done = std::make_shared<OneShot<AsyncOutcome>>();
    ++pending_async_;
    idle_.cancel();
    asio::co_spawn(strand_, run_async_request(shared_from_this(), req, done), asio::detached);
    started_call_ = std::move(done);
    return RawResponse{};  // placeholder: the caller settles the call
  }
  if (!def_.on_request_hook())
    return make_error("actor", "request_handler_not_found", "This actor has no onRequest handler.");
  ActorContext ctx(*this);
  return guarded(actor_id, "onRequest", [&] { return def_.on_request_hook()(ctx, req); });
}

Result<Value> Instance::action(const std::string& action, const Array& args, const std::shared_ptr<ConnData>& conn,
                               bool close_conn_after) {
  if (const AsyncActionFn* afn = def_.find_async_action(action)) {
    auto done = std::make_shared<OneShot<AsyncOutcome>>();
    ++pending_async_;
    idle_.cancel();
    asio::co_spawn(strand_, run_async_action(shared_from_this(), *afn, action, args, conn, close_conn_after, done),
                   asio::detached);
    started_call_ = std::move(done);
    return Value();  // placeholder: the caller settles the call
  }
  const ActionFn* fn = def_.find_action(action);
  Result<Value> out = make_error("actor", "action_not_found", "Action `" + action + "` was not found.");
  if (fn) {
    ActionContext ctx(*this, *conn);
    out = timed(actor_id, "action", def_.options().action_timeout,
                make_error("actor", "action_timed_out", "Action `" + action + "` timed out."),
                [&] { return (*fn)(ctx, args); });
    if (out.ok() && def_.on_before_action_response_hook())
      out = guarded(actor_id, "onBeforeActionResponse",
                    [&] { return def_.on_before_action_response_hook()(ctx, action, args, std::move(*out)); });
  }
  if (close_conn_after) close_conn(conn->id);
  return out;
}

// ------------------------------------------------------------------ async calls

namespace {
Error aborted_error() {
  return make_error("actor", "aborted", "The actor stopped while the call was waiting.");
}
}  // namespace

void Instance::register_scope(AsyncScope& scope, std::chrono::milliseconds limit, Error timeout_error) {
  scope.executor = strand_;
  scope.deadline = std::chrono::steady_clock::now() + limit;
  scope.timeout_error = std::move(timeout_error);
  scopes_.push_back(&scope);
}

void Instance::unregister_scope(AsyncScope& scope) {
  std::erase(scopes_, &scope);
  scope.disarm();
}

asio::awaitable<void> Instance::run_async_action(std::shared_ptr<Instance> self, AsyncActionFn fn,
                                                 std::string action, Array args, std::shared_ptr<ConnData> conn,
                                                 bool close_conn_after, std::shared_ptr<OneShot<AsyncOutcome>> done) {
  (void)self;  // keeps the instance (and its entry) alive until the call ends
  Result<Value> out = aborted_error();
  if (phase_ == Phase::Running) {
    AsyncScope scope;
    register_scope(scope, def_.options().action_timeout,
                   make_error("actor", "action_timed_out", "Action `" + action + "` timed out."));
    ActionContext ctx(*this, *conn);
    ctx.scope_ = &scope;
    const Array args_copy = def_.on_before_action_response_hook() ? args : Array{};
    try {
      Task<Result<Value>> task = fn(ctx, std::move(args));
      out = co_await std::move(task);
    } catch (const std::exception& e) {
      spdlog::error("actor {}: action {} threw: {}", actor_id, action, e.what());
      out = internal_error();
    } catch (...) {
      spdlog::error("actor {}: action {} threw a non-exception", actor_id, action);
      out = internal_error();
    }
    unregister_scope(scope);
    if (scope.cancelled()) {
      out = *scope.cancel_reason();
    } else if (std::chrono::steady_clock::now() > scope.deadline) {
      spdlog::warn("actor {}: action {} ran past its {} ms limit", actor_id, action,
                   def_.options().action_timeout.count());
      out = scope.timeout_error;
    }
    if (phase_ == Phase::Running && out.ok() && def_.on_before_action_response_hook())
      out = guarded(actor_id, "onBeforeActionResponse",
                    [&] { return def_.on_before_action_response_hook()(ctx, action, args_copy, std::move(*out)); });
  }
  if (close_conn_after) {
    if (phase_ == Phase::Running)
      close_conn(conn->id);
    else
      std::erase(entry_->conns, conn);  // no hooks on a stopped actor, but never a leftover connection
  }
  --pending_async_;
  // The call's last turn: commit what it changed (or handle a requested
  // sleep now that nothing is pending); its reply waits for that commit.
  Status st = end_segment();
  if (!st.ok() && out.ok()) out = st.error();
  done->set(AsyncOutcome{std::move(out), last_seq_, std::nullopt});
}

asio::awaitable<void> Instance::run_async_request(std::shared_ptr<Instance> self, RawRequest req,
                                                  std::shared_ptr<OneShot<AsyncOutcome>> done) {
  (void)self;
  Result<RawResponse> out = aborted_error();
  if (phase_ == Phase::Running) {
    AsyncScope scope;
    register_scope(scope, def_.options().action_timeout,
                   make_error("actor", "action_timed_out", "onRequest timed out."));
    ActorContext ctx(*this);
    ctx.scope_ = &scope;
    try {
      Task<Result<RawResponse>> task = def_.on_request_async_hook()(ctx, std::move(req));
      out = co_await std::move(task);
    } catch (const std::exception& e) {
      spdlog::error("actor {}: onRequest threw: {}", actor_id, e.what());
      out = internal_error();
    } catch (...) {
      out = internal_error();
    }
    unregister_scope(scope);
    if (scope.cancelled())
      out = *scope.cancel_reason();
    else if (std::chrono::steady_clock::now() > scope.deadline)
      out = scope.timeout_error;
  }
  --pending_async_;
  Status st = end_segment();
  AsyncOutcome outcome;
  outcome.seq = last_seq_;
  if (!st.ok() && out.ok()) out = st.error();
  if (out.ok()) {
    outcome.output = Value();
    outcome.response = std::move(*out);
  } else {
    outcome.output = out.error();
  }
  done->set(std::move(outcome));
}

// "wf-" + 32 hex digits of SHA-256(actor id, NUL, step path): the same for
// every attempt of a step and across restarts, different for any other step
// or actor.
static std::string step_idempotency_key(const std::string& actor_id, const std::string& path) {
  std::string material = actor_id;
  material += '\0';
  material += path;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest);
  static const char* hex = "0123456789abcdef";
  std::string out = "wf-";
  for (int i = 0; i < 16; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::shared_ptr<OneShot<Result<Value>>> Instance::wf_start_call(const std::string& path, Workflow::AsyncStepFn fn,
                                                                std::chrono::milliseconds timeout) {
  auto done = std::make_shared<OneShot<Result<Value>>>();
  ++pending_async_;
  idle_.cancel();
  asio::co_spawn(strand_, run_async_step(shared_from_this(), path, std::move(fn), timeout, done), asio::detached);
  return done;
}

asio::awaitable<void> Instance::run_async_step(std::shared_ptr<Instance> self, std::string path,
                                               Workflow::AsyncStepFn fn, std::chrono::milliseconds timeout,
                                               std::shared_ptr<OneShot<Result<Value>>> done) {
  (void)self;
  Result<Value> out = aborted_error();
  if (phase_ == Phase::Running) {
    AsyncScope scope;
    register_scope(scope, timeout,
                   make_error("workflow", "step_timed_out", "Workflow step `" + path + "` timed out."));
    scope.idempotency_key = step_idempotency_key(actor_id, path);
    ActorContext ctx(*this);
    ctx.scope_ = &scope;
    try {
      Task<Result<Value>> task = fn(ctx);
      out = co_await std::move(task);
    } catch (const std::exception& e) {
      spdlog::error("actor {}: workflow step `{}` threw: {}", actor_id, path, e.what());
      out = internal_error();
    } catch (...) {
      out = internal_error();
    }
    unregister_scope(scope);
    if (scope.cancelled())
      out = *scope.cancel_reason();
    else if (std::chrono::steady_clock::now() > scope.deadline)
      out = scope.timeout_error;
  }
  --pending_async_;
  done->set(std::move(out));
  if (phase_ == Phase::Running) wf_requested_ = true;  // the replay records the attempt
  (void)end_segment();
}

Status Instance::end_segment() {
  if (phase_ != Phase::Running) {
    // Stopped meanwhile (destroyed, or put to sleep at shutdown): what the
    // code changed after that is never written.
    wb_.reset();
    new_alarms_.clear();
    outbox.clear();
    return aborted_error();
  }
  auto discarded = end_turn();
  hand_off_effects();
  if (discarded) return *discarded;
  return Ok{};
}

Status Instance::begin_segment() {
  if (phase_ != Phase::Running) return aborted_error();
  // The code may still hold a reference from mutate_state() taken before
  // the wait: treat the state as changed.
  dirty = true;
  return Ok{};
}

void Instance::hand_off_effects() {
  TurnBatch fx;
  fx.seq = last_seq_;
  fx.alarms = take_alarms();
  fx.outbox = take_outbox();
  fx.drain = take_drain_request();
  fx.workflow = take_workflow_request();
  if (fx.alarms.empty() && fx.outbox.empty() && !fx.drain && !fx.workflow) return;
  rt_.apply_after_durable(actor_id, std::move(fx));
}

Result<std::shared_ptr<ConnData>> Instance::open_conn(Value params, std::shared_ptr<ConnSink> sink,
                                                      bool ephemeral) {
  ActorContext ctx(*this);
  if (def_.on_before_connect_hook()) {
    auto st = timed(actor_id, "onBeforeConnect", def_.options().connection_hook_timeout,
                    make_error("actor", "connect_timed_out", "onBeforeConnect timed out."),
                    [&] { return def_.on_before_connect_hook()(ctx, params); });
    if (!st.ok()) return st.error();
  }
  auto conn = std::make_shared<ConnData>();
  conn->id = new_conn_id();
  conn->ephemeral = ephemeral;
  conn->sink = std::move(sink);
  if (def_.create_conn_state_hook()) {
    auto s = timed(actor_id, "createConnState", def_.options().connection_hook_timeout,
                   make_error("actor", "connect_timed_out", "createConnState timed out."),
                   [&] { return def_.create_conn_state_hook()(ctx, params); });
    if (!s.ok()) return s.error();
    conn->state = std::move(*s);
  }
  conn->params = std::move(params);
  entry_->conns.push_back(conn);
  if (def_.on_connect_hook()) {
    Conn view(*conn);
    auto st = timed(actor_id, "onConnect", def_.options().connection_hook_timeout,
                    make_error("actor", "connect_timed_out", "onConnect timed out."),
                    [&] { return def_.on_connect_hook()(ctx, view); });
    if (!st.ok()) {
      std::erase(entry_->conns, conn);
      return st.error();
    }
  }
  return conn;
}

std::shared_ptr<ConnData> Instance::find_conn(const std::string& conn_id) const {
  for (const auto& c : entry_->conns)
    if (c->id == conn_id) return c;
  return nullptr;
}

void Instance::close_conn(const std::string& conn_id) {
  auto conn = find_conn(conn_id);
  if (!conn) return;
  std::erase(entry_->conns, conn);
  if (def_.on_disconnect_hook()) {
    ActorContext ctx(*this);
    Conn view(*conn);
    auto st = guarded(actor_id, "onDisconnect", [&] { return def_.on_disconnect_hook()(ctx, view); });
    if (!st.ok()) spdlog::warn("actor {}: onDisconnect failed: {}", actor_id, st.error().message);
  }
}

std::optional<Error> Instance::end_turn() {
  if (phase_ != Phase::Running) {
    commit();
    return std::nullopt;
  }
  if (dirty && def_.on_state_change_hook()) {
    // Runs once per turn that changed the state. What it changes is
    // persisted with the turn but does not re-trigger it.
    ActorContext ctx(*this);
    auto st = guarded(actor_id, "onStateChange", [&] { return def_.on_state_change_hook()(ctx, state); });
    if (!st.ok()) spdlog::warn("actor {}: onStateChange failed: {}", actor_id, st.error().message);
  }
  if (dirty && !persist_state()) {
    // The whole turn is discarded, as if it never ran: nothing of it is
    // written, and the instance stops so the next request starts from the
    // durable state (queue positions, workflow history and KV overlay
    // included). Connections stay in the directory entry.
    spdlog::warn("actor {} ({}): state exceeds {} bytes; turn discarded", actor_id, name, kMaxStateBytes);
    if (start_in_batch_) {
      batch().RollbackToSavePoint();  // back to the start records, which stay
      commit();
    } else {
      wb_.reset();
    }
    new_alarms_.clear();
    outbox.clear();
    phase_ = Phase::Stopped;
    idle_.cancel();
    rt_.detach(entry_, this);
    return make_error("actor", "state_too_large",
                      "The actor state would exceed 1 MiB; the change was discarded.");
  }
  commit();
  if (destroy_requested) {
    stop(true);
  } else if (sleep_requested) {
    if (pending_async_ == 0) stop(false);  // else: when the last async call ends
  } else {
    arm_idle_timer();
  }
  return std::nullopt;
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
    // All actor storage goes in one batch with the key release.
    auto& store = rt_.store();
    batch().Clear();  // nothing of this turn outlives the actor
    auto info = rt_.info_of(entry_);
    store.del(batch(), storage::Family::kActors, actor_id);
    store.del(batch(), storage::Family::kState, actor_id);
    store.del_prefix(batch(), storage::Family::kKv, actor_id);
    store.del_prefix(batch(), storage::Family::kQueue, actor_id);
    store.del_prefix(batch(), storage::Family::kSchedules, actor_id);
    store.del_prefix(batch(), storage::Family::kWorkflow, actor_id);
    store.del(batch(), storage::Family::kKeyIndex, Runtime::index_key(info.namespace_name, info.name, info.key));
    commit();
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
    if (dirty && !persist_state())
      spdlog::warn("actor {} ({}): state exceeds {} bytes at sleep; onSleep's changes discarded", actor_id, name,
                   kMaxStateBytes);
    commit();
  }
  // Open connections stay in the directory entry (hibernated) and are served
  // by the next generation without running onConnect again.
  rt_.detach(entry_, this);
  spdlog::debug("actor {} ({}) asleep", actor_id, name);
}

}  // namespace anvil
