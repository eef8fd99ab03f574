// Asio helpers shared by every layer: a one-shot result that one side sets
// (from any thread) and a coroutine awaits (completing on that coroutine's
// own executor, never on the setter's thread).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/value/asio.hpp"

namespace anvil {

namespace detail {

// A wait that its execution context can end without a value: drop the
// waiting handler (and the coroutine frames it owns) without running it.
class AbandonableWait {
 public:
  virtual ~AbandonableWait() = default;
  virtual void abandon() = 0;
};

// The waits on OneShots pending in one execution context (an io_context).
// When the context is destroyed with waits still pending — a process that
// stops without a graceful shutdown, a test node dropped "like a crash" —
// nobody may ever set them: their setter is a frame the context destroys
// (which may itself wait on a OneShot the waiting frame holds: a cycle), or
// a thread outside the context (a blocking pool) that would later post the
// value to the dead context. Shutting the context down abandons them first,
// while the context is still whole: the waiting handlers and their frames
// are destroyed, and a later set() only stores its value.
class PendingWaits final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  explicit PendingWaits(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  // 0 when the context is already shutting down (the caller abandons at once).
  uint64_t add(std::weak_ptr<AbandonableWait> w) {
    std::lock_guard lk(mu_);
    if (closed_) return 0;
    const uint64_t key = ++next_;
    waits_.emplace(key, std::move(w));
    return key;
  }
  void remove(uint64_t key) {
    std::lock_guard lk(mu_);
    waits_.erase(key);
  }

 private:
  void shutdown() override {
    std::vector<std::weak_ptr<AbandonableWait>> all;
    {
      std::lock_guard lk(mu_);
      closed_ = true;
      all.reserve(waits_.size());
      for (auto& [key, w] : waits_) all.push_back(std::move(w));
      waits_.clear();
    }
    // Outside the lock: destroying a frame may release other OneShots.
    for (auto& w : all)
      if (auto s = w.lock()) s->abandon();
  }

  std::mutex mu_;
  bool closed_ = false;                                                  // GUARDED_BY(mu_)
  uint64_t next_ = 0;                                                    // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, std::weak_ptr<AbandonableWait>> waits_;  // GUARDED_BY(mu_)
};

}  // namespace detail

// Set at most once (later sets are ignored: the first outcome wins, which is
// what races between a result, a deadline and a cancellation need). Awaited
// at most once.
template <typename T>
class OneShot final : public detail::AbandonableWait, public std::enable_shared_from_this<OneShot<T>> {
 public:
  OneShot() = default;
  OneShot(const OneShot&) = delete;
  OneShot& operator=(const OneShot&) = delete;
  ~OneShot() override { unregister(); }

  // Returns false when a value was already set.
  bool set(T value) {
    std::unique_ptr<Waiter> w;
    {
      std::lock_guard lk(mu_);
      if (value_) return false;
      value_.emplace(std::move(value));
      w = std::move(waiter_);
      // Posted under the lock: abandon() (the context shutting down) cannot
      // return while a completion is still on its way into the context.
      if (w) w->fire(std::move(*value_));
    }
    if (w) unregister();
    return true;
  }
  bool is_set() const {
    std::lock_guard lk(mu_);
    return value_.has_value();
  }
  // Moves the value out without waiting; only after is_set(), and instead
  // of wait().
  T take() {
    std::lock_guard lk(mu_);
    return std::move(*value_);
  }

  // Completes with the value on the awaiting coroutine's executor. The
  // pending wait holds the OneShot only weakly (asio keeps the initiation in
  // the awaiting frame): when every setter is gone without setting — e.g. the
  // io_context was torn down under a pending operation — the OneShot, the
  // stored handler and the awaiting frame are freed instead of keeping each
  // other alive. Whoever awaits must keep a setter alive, or hold the
  // OneShot itself, until the wait has begun. A wait still pending when its
  // executor's context shuts down is abandoned (detail::PendingWaits): its
  // frames are destroyed, even when the awaiting frame holds the OneShot or
  // the setter is a thread outside the context.
  asio::awaitable<T> wait() {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(
        [weak = this->weak_from_this()](auto handler) {
          if (auto self = weak.lock()) self->install(std::move(handler));
        },
        asio::use_awaitable);
  }

  // The context shut down with the wait pending: drop the handler unrun.
  void abandon() override {
    std::unique_ptr<Waiter> w;
    {
      std::lock_guard lk(mu_);
      w = std::move(waiter_);
      registry_ = nullptr;  // the context already forgot this wait
    }
  }

 private:
  struct Waiter {
    virtual ~Waiter() = default;
    virtual void fire(T value) = 0;
  };
  template <typename Handler>
  struct HandlerWaiter final : Waiter {
    explicit HandlerWaiter(Handler h) : handler(std::move(h)) {}
    Handler handler;
    void fire(T value) override {
      auto ex = asio::get_associated_executor(handler);
      asio::post(ex, [h = std::move(handler), v = std::move(value)]() mutable { h(std::move(v)); });
    }
  };

  template <typename Handler>
  void install(Handler handler) {
    auto& registry =
        asio::use_service<detail::PendingWaits>(asio::query(asio::get_associated_executor(handler), asio::execution::context));
    const uint64_t key = registry.add(this->weak_from_this());
    std::unique_lock lk(mu_);
    if (value_) {
      T v = std::move(*value_);
      lk.unlock();
      if (key) registry.remove(key);
      HandlerWaiter<Handler>(std::move(handler)).fire(std::move(v));
      return;
    }
    if (!key) return;  // the context is shutting down: the handler is dropped unrun
    waiter_ = std::make_unique<HandlerWaiter<Handler>>(std::move(handler));
    registry_ = &registry;
    key_ = key;
  }

  void unregister() {
    detail::PendingWaits* registry = nullptr;
    uint64_t key = 0;
    {
      std::lock_guard lk(mu_);
      std::swap(registry, registry_);
      key = key_;
    }
    if (registry) registry->remove(key);
  }

  mutable std::mutex mu_;
  std::optional<T> value_;                       // GUARDED_BY(mu_); moved out once delivered
  std::unique_ptr<Waiter> waiter_;               // GUARDED_BY(mu_)
  detail::PendingWaits* registry_ = nullptr;     // GUARDED_BY(mu_): where the pending wait is listed
  uint64_t key_ = 0;                             // GUARDED_BY(mu_)
};

}  // namespace anvil
