// The calls the layers above make, each one or more turn bodies run on the
// actor's strand (see turns.cpp for how turns run and become durable).
#include <boost/asio/redirect_error.hpp>

#include "base/log/log.hpp"
#include "runtime/core.hpp"
#include "runtime/instance.hpp"

namespace anvil {

asio::awaitable<CallResult> RuntimeCore::call_action(const std::string& actor_id, std::string action, Array args,
                                                     Value conn_params, std::optional<CallerActor> caller,
                                                     std::string traceparent, std::string ray_id) {
  const std::optional<log::TraceParent> tp = log::parse_traceparent(traceparent);
  if (!tp) traceparent.clear();  // an invalid header is ignored
  co_return co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    log::Context fields = log::trace_fields(tp);
    fields.ray_id = ray_id;
    log::Scope logging(fields);
    auto conn = inst.open_conn(conn_params, nullptr, /*ephemeral=*/true);
    if (!conn.ok()) return conn.error();
    (*conn)->caller = caller;
    (*conn)->traceparent = traceparent;
    (*conn)->ray_id = ray_id;
    return inst.action(action, args, *conn, /*close_conn=*/true);
  });
}

asio::awaitable<CallResult> RuntimeCore::guard_client(const std::string& actor_id, ClientRequest req) {
  // Most actor types have no guard: answer without visiting the actor.
  const ActorDefinition* def = nullptr;
  if (auto info = find_by_id(actor_id)) def = registry_.find(info->name);
  if (def && !def->on_before_connect_async_hook()) co_return CallResult{Value(), std::nullopt};
  co_return co_await turn(actor_id, [&](Instance& inst) -> Result<Value> { return inst.guard_client(std::move(req)); },
                          /*want_info=*/false);
}

asio::awaitable<CallResult> RuntimeCore::connect(const std::string& actor_id, Value params,
                                                 std::shared_ptr<ConnSink> sink, std::string traceparent) {
  traceparent = log::valid_traceparent(traceparent);
  co_return co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    auto conn = inst.open_conn(std::move(params), sink, /*ephemeral=*/false);
    if (!conn.ok()) return conn.error();
    (*conn)->traceparent = traceparent;
    return Value((*conn)->id);
  });
}

asio::awaitable<PendingTurns> RuntimeCore::conn_calls(const std::string& actor_id, const std::string& conn_id,
                                                      std::vector<ConnCall> calls) {
  std::vector<TurnBody> bodies;
  bodies.reserve(calls.size());
  for (auto& c : calls) {
    bodies.push_back([&conn_id, &c](Instance& inst) -> Result<Value> {
      auto conn = inst.find_conn(conn_id);
      if (!conn) return make_error("actor", "connection_not_found", "The connection is closed.");
      if (!c.is_subscription) {
        const std::optional<log::TraceParent> tp = log::parse_traceparent(conn->traceparent);
        log::Scope trace(log::trace_fields(tp));
        return inst.action(c.name, c.args, conn);
      }
      if (c.subscribe)
        conn->subscriptions.insert(c.name);
      else
        conn->subscriptions.erase(c.name);
      return Value(c.subscribe);
    });
  }
  co_return co_await run_turns(actor_id, std::move(bodies), /*want_info=*/false);
}

asio::awaitable<void> RuntimeCore::disconnect(const std::string& actor_id, const std::string& conn_id) {
  co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    inst.close_conn(conn_id);
    return Value();
  });
}

asio::awaitable<Status> RuntimeCore::destroy(const std::string& actor_id) {
  auto r = co_await turn(actor_id, [](Instance& inst) -> Result<Value> {
    inst.destroy_now();
    return Value(true);
  });
  if (!r.output.ok()) co_return r.output.error();
  co_return Ok{};
}

asio::awaitable<Result<QueueSendOutcome>> RuntimeCore::queue_send(const std::string& actor_id, std::string name,
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

asio::awaitable<Result<RawResponse>> RuntimeCore::raw_request(const std::string& actor_id, RawRequest req) {
  Result<RawResponse> out = make_error("actor", "not_found", "The actor does not exist or was destroyed.");
  std::vector<TurnBody> bodies;
  bodies.push_back([&](Instance& inst) -> Result<Value> {
    out = inst.request(req);
    return Value();
  });
  PendingTurns pending = co_await run_turns(actor_id, std::move(bodies));
  DurableTurns done = co_await finish(std::move(pending));
  // `out` is read only now that the turn is durable.
  if (!done.result(0).output.ok()) co_return done.result(0).output.error();
  if (done.is_async(0)) {
    // settle() for onRequest: the answer is the outcome's response.
    std::shared_ptr<OneShot<AsyncOutcome>> call = std::move(done.take_async(0).outcome_);
    AsyncOutcome outcome = co_await call->wait();
    if (Status st = co_await durable(outcome.seq); !st.ok()) co_return st.error();
    if (!outcome.output.ok()) co_return outcome.output.error();
    co_return std::move(*outcome.response);
  }
  co_return out;
}

asio::awaitable<CallResult> RuntimeCore::raw_ws_open(const std::string& actor_id, RawRequest req,
                                                     std::shared_ptr<RawWebSocket> socket) {
  co_return co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    auto h = inst.open_raw_socket(req, socket);
    if (!h.ok()) return h.error();
    return Value(static_cast<int64_t>(*h));
  });
}

asio::awaitable<void> RuntimeCore::raw_ws_message(const std::string& actor_id, uint64_t handle, WsMessage msg) {
  co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    inst.raw_socket_message(handle, msg);
    return Value();
  });
}

asio::awaitable<void> RuntimeCore::raw_ws_closed(const std::string& actor_id, uint64_t handle, uint16_t code,
                                                 std::string reason) {
  co_await turn(actor_id, [&](Instance& inst) -> Result<Value> {
    inst.raw_socket_closed(handle, code, reason);
    return Value();
  });
}

}  // namespace anvil
