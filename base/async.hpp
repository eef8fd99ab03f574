// Asio helpers shared by every layer: a one-shot result that one side sets
// (from any thread) and a coroutine awaits (completing on that coroutine's
// own executor, never on the setter's thread).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "base/value/asio.hpp"

namespace anvil {

// Set at most once (later sets are ignored: the first outcome wins, which is
// what races between a result, a deadline and a cancellation need). Awaited
// at most once.
template <typename T>
class OneShot : public std::enable_shared_from_this<OneShot<T>> {
 public:
  // Returns false when a value was already set.
  bool set(T value) {
    std::unique_ptr<Waiter> w;
    {
      std::lock_guard lk(mu_);
      if (value_) return false;
      value_.emplace(std::move(value));
      w = std::move(waiter_);
    }
    if (w) w->fire(std::move(*value_));
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
  // OneShot itself, until the wait has begun.
  asio::awaitable<T> wait() {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(
        [weak = this->weak_from_this()](auto handler) {
          if (auto self = weak.lock()) self->install(std::move(handler));
        },
        asio::use_awaitable);
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
    std::unique_lock lk(mu_);
    if (value_) {
      T v = std::move(*value_);
      lk.unlock();
      HandlerWaiter<Handler>(std::move(handler)).fire(std::move(v));
      return;
    }
    waiter_ = std::make_unique<HandlerWaiter<Handler>>(std::move(handler));
  }

  mutable std::mutex mu_;
  std::optional<T> value_;              // GUARDED_BY(mu_); moved out once delivered
  std::unique_ptr<Waiter> waiter_;      // GUARDED_BY(mu_)
};

}  // namespace anvil
