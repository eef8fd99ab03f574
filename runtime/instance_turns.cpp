// Turns and async calls on an instance: actions and onRequest (sync, or
// started as a coroutine on the strand), the end of a turn (persist, commit,
// effects), and the segments of a call that waits.
#include "runtime/instance.hpp"

#include <openssl/sha.h>

#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "runtime/actor_db.hpp"
#include "runtime/instance_support.hpp"
#include "storage/records.hpp"

namespace anvil {
using namespace detail;

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
  ctx.traceparent_ = request_traceparent(req);
  const std::optional<log::TraceParent> tp = log::parse_traceparent(ctx.traceparent_);
  log::Scope trace(log::trace_fields(tp));
  return guarded(actor_id, "onRequest", [&] { return def_.on_request_hook()(ctx, req); });
}

Result<Value> Instance::guard_client(ClientRequest req) {
  if (!def_.on_before_connect_async_hook()) return Value();
  auto done = std::make_shared<OneShot<AsyncOutcome>>();
  ++pending_async_;
  idle_.cancel();
  asio::co_spawn(strand_, run_client_guard(shared_from_this(), std::move(req), done), asio::detached);
  started_call_ = std::move(done);
  return Value();  // placeholder: the caller settles the call
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
  const auto started = std::chrono::steady_clock::now();
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
  if (!out.ok()) turn_error_ = out.error();
  rt_.stats.count_action(name, action, fn != nullptr, out.ok() ? Status(Ok{}) : Status(out.error()),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return out;
}

void Instance::register_scope(AsyncScope& scope, std::chrono::milliseconds limit, Error timeout_error) {
  scope.executor = strand_;
  scope.deadline = std::chrono::steady_clock::now() + limit;
  scope.timeout_error = std::move(timeout_error);
  scope.log_actor_id = actor_id;
  scope.log_actor_name = name;
  scopes_.push_back(&scope);
}

void Instance::unregister_scope(AsyncScope& scope) {
  std::erase(scopes_, &scope);
  scope.disarm();
}

namespace {
// Holds only the runtime (which outlives every call), never the instance:
// the waiting action may be cancelled and its actor gone when this ends.
Task<Result<Value>> call_other_actor(RuntimeCore* rt, CallerActor from, std::string name, ActorKey key,
                                     std::string action, Array args) {
  CreateRequest cr;
  cr.name = std::move(name);
  cr.key = std::move(key);
  cr.creator = from.name;
  auto target = rt->get_or_create(cr, false);
  if (!target.ok()) co_return target.error();
  Status st = co_await rt->durable(target->seq);
  if (!st.ok()) co_return st.error();
  std::optional<CallerActor> caller = std::move(from);  // named: no temporary in the co_await (GCC 12)
  Value no_params;
  CallResult r = co_await rt->call_action(target->info.actor_id, std::move(action), std::move(args),
                                          std::move(no_params), std::move(caller));
  co_return std::move(r.output);
}

Task<Result<Value>> send_other_actor(RuntimeCore* rt, std::string from_name, std::string name, ActorKey key,
                                     std::string queue, Value body, std::chrono::milliseconds timeout) {
  CreateRequest cr;
  cr.name = std::move(name);
  cr.key = std::move(key);
  cr.creator = std::move(from_name);
  auto target = rt->get_or_create(cr, false);
  if (!target.ok()) co_return target.error();
  Status st = co_await rt->durable(target->seq);
  if (!st.ok()) co_return st.error();
  auto sent = co_await rt->queue_send(target->info.actor_id, std::move(queue), std::move(body), true,
                                      static_cast<uint64_t>(timeout.count()));
  if (!sent.ok()) co_return sent.error();
  if (sent->status == "timedOut")
    co_return make_error("queue", "timed_out", "The actor did not complete the message in time.");
  co_return sent->response.value_or(Value(Undefined{}));
}
}  // namespace

Task<Result<Value>> Instance::send_other(std::string name, ActorKey key, std::string queue, Value body,
                                         std::chrono::milliseconds timeout) {
  return send_other_actor(&rt_, this->name, std::move(name), std::move(key), std::move(queue), std::move(body),
                          timeout);
}

Task<Result<Value>> Instance::call_other(std::string name, ActorKey key, std::string action, Array args) {
  return call_other_actor(&rt_, CallerActor{actor_id, this->name, this->key}, std::move(name), std::move(key),
                          std::move(action), std::move(args));
}

// Runs an async call's body under `scope` (registered by the caller): an
// exception becomes the sanitized internal error, a cancelled scope answers
// its reason, and a call that ran past its deadline the scope's timeout error.
template <typename T>
asio::awaitable<Result<T>> Instance::run_scoped(AsyncScope& scope, std::string what,
                                                std::function<Task<Result<T>>()> body) {
  Result<T> out = internal_error();
  scope.enter_log();
  try {
    Task<Result<T>> task = body();
    out = co_await std::move(task);
  } catch (const std::exception& e) {
    spdlog::error("actor {}: {} threw: {}", actor_id, what, e.what());
    out = internal_error();
  } catch (...) {
    spdlog::error("actor {}: {} threw a non-exception", actor_id, what);
    out = internal_error();
  }
  scope.leave_log();
  unregister_scope(scope);
  if (scope.cancelled()) {
    out = *scope.cancel_reason();
  } else if (std::chrono::steady_clock::now() > scope.deadline) {
    spdlog::warn("actor {}: {} ran past its time limit", actor_id, what);
    out = scope.timeout_error;
  }
  co_return out;
}

asio::awaitable<void> Instance::run_async_action(std::shared_ptr<Instance> self, AsyncActionFn fn,
                                                 std::string action, Array args, std::shared_ptr<ConnData> conn,
                                                 bool close_conn_after, std::shared_ptr<OneShot<AsyncOutcome>> done) {
  (void)self;  // keeps the instance (and its entry) alive until the call ends
  Result<Value> out = aborted_error();
  const auto started = std::chrono::steady_clock::now();
  if (phase_ == Phase::Running) {
    AsyncScope scope;
    register_scope(scope, def_.options().action_timeout,
                   make_error("actor", "action_timed_out", "Action `" + action + "` timed out."));
    scope.log_ray_id = conn->ray_id;
    if (auto tp = log::parse_traceparent(conn->traceparent)) {
      scope.log_trace_id = tp->trace_id;
      scope.log_span_id = tp->parent_id;
    }
    ActionContext ctx(*this, *conn);
    ctx.scope_ = &scope;
    const Array args_copy = def_.on_before_action_response_hook() ? args : Array{};
    // Named, not temporaries: GCC 12 mishandles temporaries in co_await expressions.
    std::string what = "action " + action;
    std::function<Task<Result<Value>>()> body = [&] { return fn(ctx, std::move(args)); };
    out = co_await run_scoped<Value>(scope, std::move(what), std::move(body));
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
  if (!out.ok()) turn_error_ = out.error();
  // The call's last turn: commit what it changed (or handle a requested
  // sleep now that nothing is pending); its reply waits for that commit.
  Status st = end_segment();
  if (!st.ok() && out.ok()) out = st.error();
  rt_.stats.count_action(name, action, true, out.ok() ? Status(Ok{}) : Status(out.error()),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
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
    ctx.traceparent_ = request_traceparent(req);
    if (auto tp = log::parse_traceparent(ctx.traceparent_)) {
      scope.log_trace_id = tp->trace_id;
      scope.log_span_id = tp->parent_id;
    }
    std::string what = "onRequest";
    std::function<Task<Result<RawResponse>>()> body = [&] { return def_.on_request_async_hook()(ctx, std::move(req)); };
    out = co_await run_scoped<RawResponse>(scope, std::move(what), std::move(body));
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

namespace {
// A guard's Status as the Result<Value> the async-call machinery carries.
Task<Result<Value>> status_as_value(Task<Status> guard) {
  Status st = co_await std::move(guard);
  if (!st.ok()) co_return st.error();
  co_return Value();
}
}  // namespace

asio::awaitable<void> Instance::run_client_guard(std::shared_ptr<Instance> self, ClientRequest req,
                                                 std::shared_ptr<OneShot<AsyncOutcome>> done) {
  (void)self;
  Result<Value> out = aborted_error();
  if (phase_ == Phase::Running) {
    AsyncScope scope;
    register_scope(scope, def_.options().connection_hook_timeout,
                   make_error("actor", "connect_timed_out", "onBeforeConnect timed out."));
    ActorContext ctx(*this);
    ctx.scope_ = &scope;
    std::optional<int64_t> valid_until;
    ctx.client_expiry_ = &valid_until;
    std::string what = "onBeforeConnect";
    std::function<Task<Result<Value>>()> body = [&] {
      return status_as_value(def_.on_before_connect_async_hook()(ctx, std::move(req)));
    };
    out = co_await run_scoped<Value>(scope, std::move(what), std::move(body));
    // What the gateway needs of an accepted client: until when it may stay.
    if (out.ok() && valid_until) out = obj({{"validUntil", *valid_until}});
  }
  --pending_async_;
  Status st = end_segment();
  if (!st.ok() && out.ok()) out = st.error();
  done->set(AsyncOutcome{std::move(out), last_seq_, std::nullopt});
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
    std::string what = "workflow step `" + path + "`";
    std::function<Task<Result<Value>>()> body = [&] { return fn(ctx); };
    out = co_await run_scoped<Value>(scope, std::move(what), std::move(body));
  }
  --pending_async_;
  done->set(std::move(out));
  if (phase_ == Phase::Running) wf_requested_ = true;  // the replay records the attempt
  // The step's outcome is already with the workflow (done). end_segment
  // fails only when the actor stopped meanwhile (nothing is committed; the
  // next generation replays the step) or when the segment was discarded for
  // the state ceiling (end_turn logged it; the replay runs on a fresh
  // instance): nothing is left to report here.
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

void Instance::notify_watchers(bool connections) {
  if (!entry_->extras || entry_->extras->watchers.empty()) return;
  const Value conns = connections ? connections_view() : Value();
  std::erase_if(entry_->extras->watchers, [&](const std::weak_ptr<ActorWatcher>& w) {
    auto watcher = w.lock();
    if (!watcher) return true;
    watcher->changed(last_seq_, connections ? &conns : nullptr);
    return false;
  });
}

Status Instance::begin_segment() {
  if (phase_ != Phase::Running) return aborted_error();
  // The code may still hold a reference from mutate_state() taken before
  // the wait: treat the state as changed.
  dirty = true;
  return Ok{};
}

TurnEffects Instance::take_effects() {
  TurnEffects fx;
  fx.seq = last_seq_;
  fx.alarms.swap(new_alarms_);
  fx.outbox.swap(outbox);
  fx.drain = take_drain_request();
  fx.workflow = take_workflow_request();
  return fx;
}

void Instance::hand_off_effects() {
  TurnEffects fx = take_effects();
  if (fx.empty()) return;
  rt_.apply_after_durable(actor_id, std::move(fx));
}

std::optional<Error> Instance::discard_reason() {
  std::optional<Error> failed = std::move(turn_error_);
  turn_error_.reset();
  if (auto f = db_failure()) return f;
  if (!failed || !def_.database_options()) return std::nullopt;
  // An actor with a database keeps its rows and its state consistent: an
  // action that failed after writing anything commits nothing.
  // (The batch may hold this generation's start records, not this turn's.)
  const uint32_t held = start_in_batch_ || start_unchanged_ ? start_count_ : 0;
  const bool wrote = dirty || (db_ && db_->writing()) || (wb_ && wb_->Count() > held);
  return wrote ? failed : std::nullopt;
}

std::optional<Error> Instance::end_turn() {
  if (phase_ != Phase::Running) {
    commit();
    return std::nullopt;
  }
  std::optional<Error> discard = discard_reason();
  if (!discard && dirty && def_.on_state_change_hook()) {
    // Runs once per turn that changed the state. What it changes is
    // persisted with the turn but does not re-trigger it.
    ActorContext ctx(*this);
    auto st = guarded(actor_id, "onStateChange", [&] { return def_.on_state_change_hook()(ctx, state); });
    if (!st.ok()) spdlog::warn("actor {}: onStateChange failed: {}", actor_id, st.error().message);
  }
  // The turn's database pages join its batch before the state (same batch).
  if (!discard)
    if (auto st = flush_db(); !st.ok()) discard = st.error();
  if (discard) {
    spdlog::log(discard->group == "db" ? spdlog::level::warn : spdlog::level::debug,
                "actor {} ({}): turn discarded: {}", actor_id, name, discard->qualified());
  } else if (dirty && !persist_state()) {
    spdlog::warn("actor {} ({}): state exceeds {} bytes; turn discarded", actor_id, name, kMaxStateBytes);
    discard = make_error("actor", "state_too_large", "The actor state would exceed 1 MiB; the change was discarded.");
  }
  if (discard) {
    // The whole turn is discarded, as if it never ran: nothing of it is
    // written, and the instance stops so the next request starts from the
    // durable state (queue positions, workflow history, KV overlay and the
    // database included). Connections stay in the directory entry.
    if (start_in_batch_) {
      batch().RollbackToSavePoint();  // back to the start records, which stay
      commit();
    } else {
      wb_.reset();
    }
    stop_unsaved();
    return discard;
  }
  const bool wrote = wb_ && wb_->Count() > 0;
  commit();
  if (wrote || conns_changed) notify_watchers(conns_changed);
  conns_changed = false;
  if (destroy_requested) {
    stop(true);
  } else if (sleep_requested) {
    if (pending_async_ == 0) stop(false);  // else: when the last async call ends
  } else {
    arm_idle_timer();
  }
  return std::nullopt;
}

}  // namespace anvil
