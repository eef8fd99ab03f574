#include "runtime/actor_api.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/redirect_error.hpp>

#include "base/log/log.hpp"
#include "runtime/instance.hpp"
#include "storage/pg/pool.hpp"

namespace anvil {

// ------------------------------------------------------------------ AsyncScope

void AsyncScope::cancel(Error why) {
  if (cancelled_) return;
  cancelled_ = why;
  if (current_) {
    auto hook = std::move(current_);
    current_ = nullptr;
    hook(std::move(why));
  }
}

void AsyncScope::arm(std::function<void(Error)> cancel_hook) {
  current_ = cancel_hook;
  if (deadline == std::chrono::steady_clock::time_point::max()) return;
  // The timer's handler holds only the hook (a OneShot setter), never the
  // scope: a wait that completed first leaves nothing to fire into.
  timer_ = std::make_shared<asio::steady_timer>(executor, deadline);
  timer_->async_wait([hook = std::move(cancel_hook), err = timeout_error](const boost::system::error_code& ec) {
    if (!ec) hook(err);
  });
}

void AsyncScope::disarm() {
  current_ = nullptr;
  if (timer_) {
    timer_->cancel();
    timer_.reset();
  }
}

void AsyncScope::enter_log() {
  log::Context next = log::current();
  auto set = [](std::string_view& field, const std::string& value) {
    if (!value.empty()) field = value;
  };
  set(next.actor_id, log_actor_id);
  set(next.actor_name, log_actor_name);
  set(next.ray_id, log_ray_id);
  set(next.trace_id, log_trace_id);
  set(next.span_id, log_span_id);
  log_saved_ = log::exchange(next);
  log_thread_ = std::this_thread::get_id();
  log_entered_ = true;
}

void AsyncScope::leave_log() {
  if (!log_entered_) return;
  log_entered_ = false;
  // On another thread (code that suspended outside a wait): that thread's
  // earlier context is not known; leave it plain rather than restore
  // another thread's.
  log::exchange(std::this_thread::get_id() == log_thread_ ? log_saved_ : log::Context{});
}

Status ActorContext::before_wait() {
  if (!scope_)
    return make_error("actor", "not_async",
                      "Waiting on I/O needs an asynchronous action, onRequest or workflow step.");
  if (scope_->cancelled()) return *scope_->cancel_reason();
  if (std::chrono::steady_clock::now() >= scope_->deadline) return scope_->timeout_error;
  return core_.end_segment();
}

Status ActorContext::after_wait() {
  if (scope_->cancelled()) return *scope_->cancel_reason();
  return core_.begin_segment();
}

const std::string& ActorContext::idempotency_key() const {
  static const std::string none;
  return scope_ ? scope_->idempotency_key : none;
}

namespace {
// Named coroutines (not lambdas): the client/pool must outlive them, which
// the node guarantees (services live as long as the runtime).
Task<Result<net::HttpResponse>> do_http(net::HttpClient* client, net::HttpRequest req) {
  co_return co_await client->request(std::move(req));
}
Task<Result<net::HttpResponse>> do_http_stream(net::HttpClient* client, net::HttpRequest req,
                                               std::function<void(const net::SseEvent&)> on_event) {
  co_return co_await client->stream(std::move(req), std::move(on_event));
}
Task<Result<pg::QueryResult>> do_sql(pg::Pool* pool, std::string query, Array params) {
  co_return co_await pool->query(std::move(query), std::move(params));
}
Task<Result<Value>> do_sql_tx(pg::Pool* pool, std::function<Result<Value>(pg::Tx&)> fn) {
  co_return co_await pool->transaction(std::move(fn));
}
Task<Result<Ok>> do_sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return Ok{};
}
}  // namespace

void ActorContext::add_traceparent(net::HttpRequest& req) const {
  if (traceparent_.empty()) return;
  for (const auto& [name, _] : req.headers)
    if (boost::algorithm::iequals(name, "traceparent")) return;  // the actor set its own
  if (auto tp = log::parse_traceparent(traceparent_)) req.headers.emplace_back("traceparent", log::child_of(*tp).header());
}

Task<Result<net::HttpResponse>> ActorContext::http(net::HttpRequest req) {
  net::HttpClient* client = core_.services().http;
  if (!client) co_return make_error("outbound", "not_configured", "This node has no outbound HTTP client.");
  if (req.idempotency_key.empty() && scope_) req.idempotency_key = scope_->idempotency_key;
  add_traceparent(req);
  auto op = do_http(client, std::move(req));
  co_return co_await wait(std::move(op));
}

Task<Result<net::HttpResponse>> ActorContext::http_stream(net::HttpRequest req,
                                                         std::function<void(const net::SseEvent&)> on_event) {
  net::HttpClient* client = core_.services().http;
  if (!client) co_return make_error("outbound", "not_configured", "This node has no outbound HTTP client.");
  if (req.idempotency_key.empty() && scope_) req.idempotency_key = scope_->idempotency_key;
  add_traceparent(req);
  auto op = do_http_stream(client, std::move(req), std::move(on_event));
  co_return co_await wait(std::move(op));
}

Task<Result<pg::QueryResult>> ActorContext::sql(std::string query, Array params) {
  pg::Pool* pool = core_.services().pg;
  if (!pool) co_return pg::not_configured_error();
  auto op = do_sql(pool, std::move(query), std::move(params));
  co_return co_await wait(std::move(op));
}

Task<Result<Value>> ActorContext::sql_transaction(std::function<Result<Value>(pg::Tx&)> fn) {
  pg::Pool* pool = core_.services().pg;
  if (!pool) co_return pg::not_configured_error();
  auto op = do_sql_tx(pool, std::move(fn));
  co_return co_await wait(std::move(op));
}

Result<redis::Client*> ActorContext::redis() {
  redis::Client* client = core_.services().redis;
  if (!client) return make_error("redis", "not_configured", "This node has no Redis (start it with --redis-url).");
  return client;
}

Task<Result<Value>> ActorContext::call(std::string name, ActorKey key, std::string action, Array args) {
  auto op = core_.call_other(std::move(name), std::move(key), std::move(action), std::move(args));
  co_return co_await wait(std::move(op));
}

Task<Result<Value>> ActorContext::send_wait(std::string name, ActorKey key, std::string queue, Value body,
                                            std::chrono::milliseconds timeout) {
  auto op = core_.send_other(std::move(name), std::move(key), std::move(queue), std::move(body), timeout);
  co_return co_await wait(std::move(op));
}

std::optional<std::string> ActorContext::config(std::string_view key) const {
  const std::shared_ptr<const ConfigMap> cfg = core_.services().config;
  if (!cfg) return std::nullopt;
  auto it = cfg->find(key);
  if (it == cfg->end()) return std::nullopt;
  return it->second;
}

Task<Status> ActorContext::sleep_for(std::chrono::milliseconds d) {
  auto op = do_sleep(d);
  co_return co_await wait(std::move(op));
}

const std::string& ActorContext::actor_id() const { return core_.actor_id; }
const std::string& ActorContext::name() const { return core_.name; }
const ActorKey& ActorContext::key() const { return core_.key; }
const Value& ActorContext::state() const { return core_.state; }

Value& ActorContext::mutate_state() {
  core_.dirty = true;
  return core_.state;
}

void ActorContext::broadcast(const std::string& name, Array args) {
  if (!core_.conns) return;
  for (const auto& c : *core_.conns)
    if (c->sink && c->subscriptions.contains(name)) c->sink->send_event(name, args);
}

std::vector<Conn> ActorContext::conns() const {
  std::vector<Conn> out;
  if (core_.conns)
    for (const auto& c : *core_.conns) out.emplace_back(*c);
  return out;
}

Result<std::string> ActorContext::schedule_after(int64_t delay_ms, std::string action, Array args) {
  if (delay_ms < 0) delay_ms = 0;
  return core_.add_schedule(now_ms() + delay_ms, std::move(action), std::move(args));
}

Result<std::string> ActorContext::schedule_at(int64_t unix_ms, std::string action, Array args) {
  return core_.add_schedule(unix_ms, std::move(action), std::move(args));
}

Result<std::string> ActorContext::schedule_every(std::string name, int64_t interval_ms, std::string action,
                                                 Array args) {
  return core_.add_recurring(std::move(name), interval_ms, std::move(action), std::move(args));
}

Result<bool> ActorContext::cancel_schedule(const std::string& id) { return core_.cancel_schedule(id); }

void ActorContext::send_to(std::string name, ActorKey key, std::string queue, Value body) {
  core_.outbox.push_back(OutboxMessage{std::move(name), std::move(key), false, std::move(queue), std::move(body), "",
                                       core_.actor_id, core_.name, core_.key});
}

void ActorContext::call_actor(std::string name, ActorKey key, std::string action, Array args, std::string reply_to) {
  core_.outbox.push_back(OutboxMessage{std::move(name), std::move(key), true, std::move(action), Value(std::move(args)),
                                       std::move(reply_to), core_.actor_id, core_.name, core_.key});
}

void ActorContext::sleep() { core_.sleep_requested = true; }
void ActorContext::destroy() { core_.destroy_requested = true; }

void ActorContext::client_valid_until(int64_t unix_ms) {
  if (!client_expiry_) return;
  if (!*client_expiry_ || unix_ms < **client_expiry_) *client_expiry_ = unix_ms;
}

}  // namespace anvil
