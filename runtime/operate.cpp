// The operator's live reads and changes of one actor (Runtime::admin_operate):
// each runs as one turn on the actor's strand, so a change commits like an
// action's (durable before the reply) and a read sees the awake instance.
#include "runtime/core.hpp"
#include "runtime/instance.hpp"

namespace anvil {

asio::awaitable<CallResult> RuntimeCore::admin_operate(const std::string& actor_id, AdminOp op) {
  TurnBody body = [op = std::move(op)](Instance& inst) -> Result<Value> {
    switch (op.kind) {
      case AdminOp::Kind::kState:
        return inst.state_view();
      case AdminOp::Kind::kConnections:
        return inst.connections_view();
      case AdminOp::Kind::kQueueSend:
        return inst.operator_enqueue(op.name, op.value);
      case AdminOp::Kind::kQueuePurge:
        return inst.purge_queue();
      case AdminOp::Kind::kCancelSchedule:
        return inst.cancel_schedule_now(op.name);
      case AdminOp::Kind::kWorkflowReplay:
        return inst.replay_workflow(op.name);
      case AdminOp::Kind::kSqlExecute:
        return inst.execute_sql(op.name, op.value);
    }
    return make_error("validation", "invalid_input", "Unknown operation.");
  };
  co_return co_await turn(actor_id, std::move(body), true);
}

asio::awaitable<CallResult> RuntimeCore::watch(const std::string& actor_id, std::weak_ptr<ActorWatcher> watcher) {
  TurnBody body = [watcher = std::move(watcher)](Instance& inst) -> Result<Value> {
    inst.watch(watcher);
    return Value();
  };
  co_return co_await turn(actor_id, std::move(body), true);
}

}  // namespace anvil
