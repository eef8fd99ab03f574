// OneShot (base/async.hpp): delivery on the awaiting coroutine's executor,
// and what becomes of a wait still pending when its io_context goes.
#include "base/async.hpp"

#include <thread>

#include <gtest/gtest.h>

namespace anvil {
namespace {

// Waits on `shot`, holding `sentinel` in its frame; writes the value to `out`.
asio::awaitable<void> wait_holding(std::shared_ptr<OneShot<int>> shot, std::shared_ptr<int> sentinel, int* out) {
  (void)sentinel;
  *out = co_await shot->wait();
}

TEST(OneShot, AValueSetFromAnotherThreadCompletesTheWaitOnTheAwaitingCoroutinesThread) {
  asio::io_context io;
  auto shot = std::make_shared<OneShot<int>>();
  int got = 0;
  asio::co_spawn(io, wait_holding(shot, nullptr, &got), asio::detached);
  io.poll();  // the wait has begun
  std::thread setter([shot] { EXPECT_TRUE(shot->set(7)); });
  setter.join();
  EXPECT_FALSE(shot->set(8));  // the first value wins
  io.run();
  EXPECT_EQ(got, 7);
}

TEST(OneShot, AWaitPendingWhenItsIoContextIsDestroyedFreesTheWaitingFrameEvenWhenTheFrameHoldsTheOneShot) {
  auto sentinel = std::make_shared<int>(1);
  std::weak_ptr<int> frame_alive = sentinel;
  std::weak_ptr<OneShot<int>> shot_alive;
  int got = 0;
  {
    asio::io_context io;
    auto shot = std::make_shared<OneShot<int>>();
    shot_alive = shot;
    // The frame holds the OneShot and the OneShot holds the frame's handler:
    // a cycle nobody will break by setting it.
    asio::co_spawn(io, wait_holding(std::move(shot), std::move(sentinel), &got), asio::detached);
    io.poll();
    ASSERT_FALSE(frame_alive.expired());
  }
  EXPECT_TRUE(frame_alive.expired()) << "the waiting frame leaked";
  EXPECT_TRUE(shot_alive.expired()) << "the OneShot leaked";
  EXPECT_EQ(got, 0);
}

TEST(OneShot, ASetAfterTheIoContextIsGoneStoresTheValueAndReachesNoExecutor) {
  auto shot = std::make_shared<OneShot<int>>();  // held by a "pool thread" that outlives the node
  auto sentinel = std::make_shared<int>(1);
  std::weak_ptr<int> frame_alive = sentinel;
  int got = 0;
  {
    asio::io_context io;
    asio::co_spawn(io, wait_holding(shot, std::move(sentinel), &got), asio::detached);
    io.poll();
  }
  EXPECT_TRUE(frame_alive.expired());
  std::thread setter([shot] { EXPECT_TRUE(shot->set(5)); });  // would post to the destroyed io_context
  setter.join();
  EXPECT_TRUE(shot->is_set());
  EXPECT_EQ(got, 0);
}

}  // namespace
}  // namespace anvil
