// Blocking work (a git process, a unix-socket call) awaited from a coroutine
// without blocking its executor: it runs on a small shared pool and the
// result resumes the awaiting coroutine on its own executor. From an actor,
// await it through ctx.wait(...), so it ends the turn like any other wait.
//
// The pool has two threads: work that may take long (a command with a
// minute's timeout) belongs on run_on_own_thread instead, so it cannot
// starve the short calls.
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "base/async.hpp"
#include "base/value/error.hpp"

namespace anvil::proc {

inline asio::thread_pool& blocking_pool() {
  static asio::thread_pool pool(2);
  return pool;
}

template <typename T>
asio::awaitable<Result<T>> run_blocking(std::function<Result<T>()> fn) {
  auto shot = std::make_shared<OneShot<Result<T>>>();
  asio::post(blocking_pool(), [shot, fn = std::move(fn)] { shot->set(fn()); });
  co_return co_await shot->wait();
}

// Same, on a thread of its own (detached: it ends when fn returns).
template <typename T>
asio::awaitable<Result<T>> run_on_own_thread(std::function<Result<T>()> fn) {
  auto shot = std::make_shared<OneShot<Result<T>>>();
  std::thread([shot, fn = std::move(fn)] { shot->set(fn()); }).detach();
  co_return co_await shot->wait();
}

}  // namespace anvil::proc
