// Blocking work (a git process, a unix-socket call) awaited from an actor
// without blocking its strand: run on a small shared pool, resumed on the
// awaiting coroutine's executor. Await it through ctx.wait(...), so it ends
// the turn like any other wait. Shared by memory/ and sandbox/.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "base/async.hpp"
#include "runtime/actor_api.hpp"

namespace anvil::growqr {

inline asio::thread_pool& blocking_pool() {
  static asio::thread_pool pool(2);
  return pool;
}

template <typename T>
Task<Result<T>> run_blocking(std::function<Result<T>()> fn) {
  auto shot = std::make_shared<OneShot<Result<T>>>();
  asio::post(blocking_pool(), [shot, fn = std::move(fn)] { shot->set(fn()); });
  co_return co_await shot->wait();
}

}  // namespace anvil::growqr
