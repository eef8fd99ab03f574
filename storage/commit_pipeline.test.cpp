#include "storage/commit_pipeline.hpp"

#include <filesystem>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "storage/test_dir.hpp"

using namespace anvil;
using namespace anvil::storage;

namespace {
std::string temp_dir(const char* name) { return anvil::testing::temp_dir(name); }
}  // namespace

TEST(CommitPipeline, AWaitedSequenceIsReadableFromTheStore) {
  auto dir = temp_dir("pipe-read");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  asio::io_context io;
  CommitPipeline pipe(**s, io.get_executor());
  rocksdb::WriteBatch b;
  (*s)->put(b, Family::kState, "a", "1");
  uint64_t seq = pipe.submit(std::move(b));
  EXPECT_EQ(seq, 1u);
  EXPECT_TRUE(pipe.wait_blocking(seq).ok());
  EXPECT_GE(pipe.last_synced(), seq);
  EXPECT_EQ(*(*s)->get(Family::kState, "a").value(), "1");
  std::filesystem::remove_all(dir);
}

TEST(CommitPipeline, ConcurrentSubmittersShareSyncRounds) {
  auto dir = temp_dir("pipe-group");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  asio::io_context io;
  CommitPipeline pipe(**s, io.get_executor());
  constexpr int kThreads = 8, kPer = 50;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        rocksdb::WriteBatch b;
        (*s)->put(b, Family::kState, "k" + std::to_string(t) + "-" + std::to_string(i), "v");
        EXPECT_TRUE(pipe.wait_blocking(pipe.submit(std::move(b))).ok());
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(pipe.last_synced(), uint64_t(kThreads * kPer));
  // Group commit: fewer fsync rounds than batches when submitters overlap.
  EXPECT_LE(pipe.rounds(), uint64_t(kThreads * kPer));
  int n = 0;
  ASSERT_TRUE((*s)->scan(Family::kState, [&](auto, auto) { ++n; return true; }).ok());
  EXPECT_EQ(n, kThreads * kPer);
  std::filesystem::remove_all(dir);
}

TEST(CommitPipeline, AsyncWaitCompletesOnTheCallersExecutor) {
  auto dir = temp_dir("pipe-async");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  asio::io_context io;
  CommitPipeline pipe(**s, io.get_executor());
  rocksdb::WriteBatch b;
  (*s)->put(b, Family::kState, "x", "y");
  uint64_t seq = pipe.submit(std::move(b));
  Status result = make_error("test", "unset", "");
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    result = co_await pipe.async_wait(seq, asio::use_awaitable);
  }, asio::detached);
  io.run();
  EXPECT_TRUE(result.ok());
  std::filesystem::remove_all(dir);
}

TEST(CommitPipeline, WaitingForAnAlreadySyncedSequenceReturnsAtOnce) {
  auto dir = temp_dir("pipe-old");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  asio::io_context io;
  CommitPipeline pipe(**s, io.get_executor());
  EXPECT_TRUE(pipe.wait_blocking(0).ok());
  std::filesystem::remove_all(dir);
}

TEST(CommitPipeline, ARoundMergesBatchesAcrossFamiliesInOrder) {
  auto dir = temp_dir("pipe-merge");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  rocksdb::WriteBatch a, b, merged;
  (*s)->put(a, Family::kState, "x", "1");
  (*s)->put(a, Family::kKv, "k1", "v");
  (*s)->put(b, Family::kState, "x", "2");  // later batch wins
  (*s)->del(b, Family::kKv, "k1");
  (*s)->del_prefix(b, Family::kQueue, "q");
  ASSERT_TRUE((*s)->append(merged, a).ok());
  ASSERT_TRUE((*s)->append(merged, b).ok());
  EXPECT_EQ(merged.Count(), 5u);
  ASSERT_TRUE((*s)->write_synced(merged).ok());
  EXPECT_EQ(*(*s)->get(Family::kState, "x").value(), "2");
  EXPECT_FALSE((*s)->get(Family::kKv, "k1").value().has_value());
  std::filesystem::remove_all(dir);
}

TEST(Store, ConcatJoinsBatchesInOrderWithTheirCounts) {
  auto dir = temp_dir("store-concat");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  rocksdb::WriteBatch a, b, empty, c;
  (*s)->put(a, Family::kState, "x", "1");
  (*s)->put(a, Family::kKv, "k1", "v");
  (*s)->put(b, Family::kState, "x", "2");  // later batch wins
  (*s)->del(b, Family::kKv, "k1");
  (*s)->put(c, Family::kKv, "k2", std::string(300, 'z'));
  (*s)->del_prefix(c, Family::kQueue, "q");
  auto merged = Store::concat({&a, &b, &empty, &c});
  EXPECT_EQ(merged.Count(), 6u);
  EXPECT_EQ(merged.Data().size(), a.Data().size() + b.Data().size() + c.Data().size() - 24);
  // The same operations as replaying each batch through append().
  rocksdb::WriteBatch replayed;
  for (auto* x : {&a, &b, &empty, &c}) ASSERT_TRUE((*s)->append(replayed, *x).ok());
  EXPECT_EQ(merged.Data(), replayed.Data());
  ASSERT_TRUE((*s)->write_synced(merged).ok());
  EXPECT_EQ(*(*s)->get(Family::kState, "x").value(), "2");
  EXPECT_FALSE((*s)->get(Family::kKv, "k1").value().has_value());
  EXPECT_EQ((*s)->get(Family::kKv, "k2").value()->size(), 300u);
  std::filesystem::remove_all(dir);
}
