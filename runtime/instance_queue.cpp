// An instance's durable queue: loading, enqueueing (limits), processing
// with queue handlers, and completing senders that wait.
#include "runtime/instance.hpp"

#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "runtime/instance_support.hpp"
#include "storage/records.hpp"

namespace anvil {
using namespace detail;

void QueueWaiter::complete(Value r) {
  response = std::move(r);
  completed.store(true, std::memory_order_release);
  asio::post(timer.get_executor(), [self = shared_from_this()] { self->timer.cancel(); });
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
  report_queue_depth();
  if (!st.ok()) return st;
  return failure;
}


Result<uint64_t> Instance::enqueue(std::string qname, Value body, std::shared_ptr<QueueWaiter> waiter,
                                   bool any_name) {
  if (!any_name && !def_.declares_queue(qname))
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
  report_queue_depth();
  rt_.stats.queue_messages.with({name, "enqueued"}).inc();
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
  report_queue_depth();
  rt_.stats.queue_messages.with({name, "processed"}).inc();
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

bool Instance::take_drain_request() {
  if (drain_scheduled_ || phase_ != Phase::Running || !has_handled_message()) return false;
  drain_scheduled_ = true;
  return true;
}

void Instance::complete_waiter(uint64_t message_id, Value response) {
  if (!entry_->extras) return;  // nobody ever waited on this actor
  auto& waiters = entry_->extras->queue_waiters;
  if (auto it = waiters.find(message_id); it != waiters.end()) {
    if (auto waiter = it->second.lock()) waiter->complete(std::move(response));
    waiters.erase(it);
  }
}

}  // namespace anvil
