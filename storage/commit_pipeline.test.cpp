#include "storage/commit_pipeline.hpp"

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <stdexcept>
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

// --- With a replicator (envoy mode): a second durability stage after the fsync.

namespace {

using namespace std::chrono_literals;
using Failed = std::vector<std::pair<uint64_t, Error>>;

// A replicator the test drives: it records each call and completes it only
// when told to (or throws once when told to).
class ScriptedReplicator : public Replicator {
 public:
  void replicate(std::vector<Item> items, std::function<void(Failed)> done) override {
    std::lock_guard lk(mu_);
    if (throw_next_) {
      throw_next_ = false;
      throw std::runtime_error("remote store unreachable");
    }
    calls_.push_back(Call{std::move(items), std::move(done)});
    cv_.notify_all();
  }
  // True once at least `n` calls were made (waits up to 10 s).
  bool wait_calls(size_t n) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, 10s, [&] { return calls_.size() >= n; });
  }
  size_t calls() const {
    std::lock_guard lk(mu_);
    return calls_.size();
  }
  std::vector<uint64_t> seqs(size_t call) const {
    std::lock_guard lk(mu_);
    std::vector<uint64_t> out;
    for (const auto& i : calls_.at(call).items) out.push_back(i.seq);
    return out;
  }
  const rocksdb::WriteBatch* batch(size_t call, size_t item) const {
    std::lock_guard lk(mu_);
    return calls_.at(call).items.at(item).batch;
  }
  // Calls the `done` of call `call` (outside the lock: it releases waiters).
  void complete(size_t call, Failed failed = {}) {
    std::function<void(Failed)> done;
    {
      std::lock_guard lk(mu_);
      done = calls_.at(call).done;
    }
    done(std::move(failed));
  }
  void throw_next() {
    std::lock_guard lk(mu_);
    throw_next_ = true;
  }

 private:
  struct Call {
    std::vector<Item> items;
    std::function<void(Failed)> done;
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Call> calls_;
  bool throw_next_ = false;
};

struct CommitPipelineReplicator : ::testing::Test {
  void SetUp() override {
    dir = temp_dir((std::string("pipe-repl-") + ::testing::UnitTest::GetInstance()->current_test_info()->name()).c_str());
    auto s = Store::open({dir});
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(s.value());
  }
  void TearDown() override {
    pipe.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  void start(ReplicationLimits limits = {}) {
    pipe = std::make_unique<CommitPipeline>(*store, io.get_executor());
    pipe->set_replicator(&rep, limits);
  }
  uint64_t put(const std::string& k, uint64_t after = 0, bool replicate = true) {
    rocksdb::WriteBatch b;
    store->put(b, Family::kState, k, "v");
    return pipe->submit(std::move(b), after, replicate);
  }
  bool stored(const std::string& k) { return store->get(Family::kState, k).value().has_value(); }
  // The waiter's result once delivered (async_wait posts it to `io`).
  std::shared_ptr<std::optional<Status>> watch(uint64_t seq) {
    auto r = std::make_shared<std::optional<Status>>();
    pipe->async_wait(seq, [r](Status st) { *r = std::move(st); });
    return r;
  }
  // Runs what was posted to `io` so far.
  void settle() {
    io.restart();
    io.poll();
  }
  // Runs `io` until `r` is delivered (up to 10 s): for completions posted
  // by the committer thread.
  bool delivered(const std::shared_ptr<std::optional<Status>>& r) {
    for (int i = 0; i < 1000 && !r->has_value(); ++i) {
      settle();
      if (!r->has_value()) std::this_thread::sleep_for(10ms);
    }
    return r->has_value();
  }
  // Makes the next round hold every batch `submit_all` submits: with one
  // round in flight allowed, the committer waits while `blocker`'s round
  // (call `blocker_call`) replicates, then takes everything queued at once.
  void one_round(size_t blocker_call, const std::function<void()>& submit_all) {
    submit_all();
    rep.complete(blocker_call);
    ASSERT_TRUE(rep.wait_calls(blocker_call + 2));
  }

  std::string dir;
  asio::io_context io;
  std::unique_ptr<Store> store;
  ScriptedReplicator rep;  // outlives the pipeline
  std::unique_ptr<CommitPipeline> pipe;
};

bool is_error(const std::optional<Status>& st, const std::string& qualified) {
  return st.has_value() && !st->ok() && st->error().qualified() == qualified;
}

}  // namespace

TEST_F(CommitPipelineReplicator, AWaiterIsReleasedOnlyOnceItsRoundIsReplicated) {
  start();
  uint64_t a = put("a");
  auto r = watch(a);
  ASSERT_TRUE(rep.wait_calls(1));
  EXPECT_EQ(rep.seqs(0), std::vector<uint64_t>{a});
  EXPECT_EQ(rep.batch(0, 0)->Count(), 1u);
  EXPECT_TRUE(stored("a"));  // the WAL write happened before replicate()
  settle();
  EXPECT_FALSE(r->has_value());
  EXPECT_FALSE(pipe->synced_at_least(a));
  EXPECT_EQ(pipe->last_synced(), 0u);

  rep.complete(0);
  settle();
  ASSERT_TRUE(r->has_value());
  EXPECT_TRUE(r->value().ok());
  EXPECT_TRUE(pipe->synced_at_least(a));
  EXPECT_EQ(pipe->last_synced(), a);
  EXPECT_TRUE(pipe->wait_blocking(a).ok());
  const std::string text = pipe->metrics().text();
  EXPECT_NE(text.find("# HELP anvil_replication_seconds "), std::string::npos);
  EXPECT_NE(text.find("anvil_replication_seconds_count 1"), std::string::npos);
}

TEST_F(CommitPipelineReplicator, RoundsBecomeDurableInOrderWhateverOrderTheirDoneComesIn) {
  start();
  uint64_t a = put("a");
  ASSERT_TRUE(rep.wait_calls(1));
  uint64_t b = put("b");
  ASSERT_TRUE(rep.wait_calls(2));  // rounds overlap: the committer did not wait for a's done
  uint64_t c = put("c");
  ASSERT_TRUE(rep.wait_calls(3));
  EXPECT_EQ(rep.seqs(1), std::vector<uint64_t>{b});
  EXPECT_EQ(rep.seqs(2), std::vector<uint64_t>{c});
  auto ra = watch(a), rb = watch(b), rc = watch(c);

  // A later round done first: not durable before the earlier round.
  rep.complete(1);
  settle();
  EXPECT_FALSE(ra->has_value());
  EXPECT_FALSE(rb->has_value());
  EXPECT_FALSE(pipe->synced_at_least(b));
  EXPECT_EQ(pipe->last_synced(), 0u);

  // The earlier round done: both are durable, the round still replicating is not.
  rep.complete(0);
  settle();
  ASSERT_TRUE(ra->has_value() && rb->has_value());
  EXPECT_TRUE(ra->value().ok());
  EXPECT_TRUE(rb->value().ok());
  EXPECT_FALSE(rc->has_value());
  EXPECT_EQ(pipe->last_synced(), b);
  EXPECT_TRUE(pipe->synced_at_least(a));
  EXPECT_TRUE(pipe->synced_at_least(b));
  EXPECT_FALSE(pipe->synced_at_least(c));

  rep.complete(2);
  settle();
  ASSERT_TRUE(rc->has_value());
  EXPECT_TRUE(rc->value().ok());
  EXPECT_EQ(pipe->last_synced(), c);
}

TEST_F(CommitPipelineReplicator, AFailedSeqIsLostWithItsErrorAndTheRestOfItsRoundIsDurable) {
  start({.max_rounds_in_flight = 1});
  put("x");
  ASSERT_TRUE(rep.wait_calls(1));
  uint64_t a = 0, b = 0;
  one_round(0, [&] {
    a = put("a");
    b = put("b");
  });
  EXPECT_EQ(rep.seqs(1), (std::vector<uint64_t>{a, b}));
  auto ra = watch(a), rb = watch(b);

  rep.complete(1, {{a, make_error("envoy", "kv_unavailable", "The remote store refused the write.")}});
  settle();
  ASSERT_TRUE(ra->has_value() && rb->has_value());
  EXPECT_TRUE(is_error(*ra, "envoy.kv_unavailable"));
  EXPECT_EQ(ra->value().error().message, "The remote store refused the write.");
  EXPECT_TRUE(rb->value().ok());
  EXPECT_TRUE(pipe->lost(a));
  EXPECT_FALSE(pipe->lost(b));
  EXPECT_FALSE(pipe->synced_at_least(a));
  EXPECT_TRUE(pipe->synced_at_least(b));
  EXPECT_EQ(pipe->last_synced(), b);
  EXPECT_TRUE(is_error(std::optional<Status>(pipe->wait_blocking(a)), "envoy.kv_unavailable"));
  EXPECT_EQ(pipe->health(), CommitPipeline::Health::kWritable);
}

TEST_F(CommitPipelineReplicator, LocalOnlyBatchesAreNotReplicatedAndNeedOnlyTheirWalSync) {
  start({.max_rounds_in_flight = 1});
  uint64_t l = put("local", 0, false);
  auto rl = watch(l);
  ASSERT_TRUE(delivered(rl));
  EXPECT_TRUE(rl->value().ok());
  EXPECT_TRUE(pipe->synced_at_least(l));
  EXPECT_EQ(rep.calls(), 0u);

  // In a round with replicated batches only those reach the replicator.
  put("x");
  ASSERT_TRUE(rep.wait_calls(1));
  uint64_t a = 0, m = 0;
  one_round(0, [&] {
    m = put("mixed-local", 0, false);
    a = put("a");
  });
  EXPECT_EQ(rep.seqs(1), std::vector<uint64_t>{a});
  rep.complete(1);
  EXPECT_TRUE(pipe->wait_blocking(m).ok());
  EXPECT_TRUE(pipe->wait_blocking(a).ok());
}

TEST_F(CommitPipelineReplicator, ALocalOnlyBatchWaitsForAnEarlierRoundStillReplicating) {
  start();
  uint64_t a = put("a");
  ASSERT_TRUE(rep.wait_calls(1));
  uint64_t l = put("local", 0, false);
  auto rl = watch(l);
  for (int i = 0; i < 100 && !stored("local"); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(stored("local"));  // written and synced, yet not durable
  settle();
  EXPECT_FALSE(rl->has_value());
  EXPECT_FALSE(pipe->synced_at_least(l));

  rep.complete(0);
  ASSERT_TRUE(delivered(rl));
  EXPECT_TRUE(rl->value().ok());
  EXPECT_EQ(pipe->last_synced(), l);
  EXPECT_EQ(rep.calls(), 1u);
  EXPECT_TRUE(pipe->synced_at_least(a));
}

TEST_F(CommitPipelineReplicator, ASubmitBuiltOnALostSeqIsRefused) {
  start();
  uint64_t a = put("a");
  ASSERT_TRUE(rep.wait_calls(1));
  rep.complete(0, {{a, make_error("envoy", "kv_unavailable", "Refused.")}});
  ASSERT_TRUE(pipe->lost(a));

  uint64_t c = put("c", a);
  EXPECT_TRUE(pipe->lost(c));
  EXPECT_TRUE(is_error(std::optional<Status>(pipe->wait_blocking(c)), "envoy.kv_unavailable"));
  EXPECT_EQ(pipe->health(), CommitPipeline::Health::kWritable);
  // Nothing was queued for it; other writers go on.
  uint64_t d = put("d");
  ASSERT_TRUE(rep.wait_calls(2));
  EXPECT_EQ(rep.seqs(1), std::vector<uint64_t>{d});
  rep.complete(1);
  EXPECT_TRUE(pipe->wait_blocking(d).ok());
  EXPECT_FALSE(stored("c"));
}

TEST_F(CommitPipelineReplicator, ABatchBuiltOnOneWhoseReplicationFailsLaterIsLostToo) {
  start();
  uint64_t a = put("a");
  ASSERT_TRUE(rep.wait_calls(1));
  uint64_t c = put("c", a);  // accepted: a is not lost yet
  ASSERT_TRUE(rep.wait_calls(2));
  auto rc = watch(c);
  rep.complete(1);  // c itself replicated
  rep.complete(0, {{a, make_error("envoy", "kv_unavailable", "Refused.")}});
  settle();
  EXPECT_TRUE(is_error(*rc, "envoy.kv_unavailable"));
  EXPECT_TRUE(pipe->lost(c));
  EXPECT_FALSE(pipe->synced_at_least(c));
}

TEST_F(CommitPipelineReplicator, TheInFlightBoundHoldsTheCommitterUntilARoundIsDone) {
  start({.max_rounds_in_flight = 2});
  uint64_t a = put("a");
  ASSERT_TRUE(rep.wait_calls(1));
  uint64_t b = put("b");
  ASSERT_TRUE(rep.wait_calls(2));
  uint64_t c = put("c");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rep.calls(), 2u);
  EXPECT_FALSE(stored("c"));  // not even written: the committer waits

  rep.complete(0);
  ASSERT_TRUE(rep.wait_calls(3));
  EXPECT_EQ(rep.seqs(2), std::vector<uint64_t>{c});
  rep.complete(1);
  rep.complete(2);
  EXPECT_TRUE(pipe->wait_blocking(a).ok());
  EXPECT_TRUE(pipe->wait_blocking(b).ok());
  EXPECT_TRUE(pipe->wait_blocking(c).ok());
  EXPECT_EQ(pipe->last_synced(), c);
}

TEST_F(CommitPipelineReplicator, AReplicatorThatThrowsFailsItsRoundButNotTheNext) {
  start();
  rep.throw_next();
  uint64_t a = put("a");
  EXPECT_TRUE(is_error(std::optional<Status>(pipe->wait_blocking(a)), "storage.internal_error"));
  EXPECT_TRUE(pipe->lost(a));
  EXPECT_EQ(pipe->health(), CommitPipeline::Health::kWritable);
  uint64_t b = put("b");
  ASSERT_TRUE(rep.wait_calls(1));
  rep.complete(0);
  EXPECT_TRUE(pipe->wait_blocking(b).ok());
}

TEST_F(CommitPipelineReplicator, TheDestructorFailsRoundsThatNeverCompleteAfterItsTimeout) {
  start({.max_rounds_in_flight = 1, .stop_timeout = 300ms});
  uint64_t a = put("a");
  ASSERT_TRUE(rep.wait_calls(1));
  uint64_t b = put("b");                // queued: the bound holds the committer
  uint64_t l = put("local", 0, false);  // local-only, queued behind them
  auto ra = watch(a), rb = watch(b), rl = watch(l);

  const auto t0 = std::chrono::steady_clock::now();
  pipe.reset();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s);
  settle();
  EXPECT_TRUE(is_error(*ra, "storage.replication_aborted"));
  EXPECT_TRUE(is_error(*rb, "storage.replication_aborted"));
  EXPECT_TRUE(is_error(*rl, "storage.replication_aborted"));
  EXPECT_EQ(rep.calls(), 1u);
}

TEST_F(CommitPipelineReplicator, TheDestructorWaitsForRoundsThatCompleteInTime) {
  start();
  uint64_t a = put("a");
  ASSERT_TRUE(rep.wait_calls(1));
  auto ra = watch(a);
  std::thread finisher([&] {
    std::this_thread::sleep_for(100ms);
    rep.complete(0);
  });
  pipe.reset();
  finisher.join();
  settle();
  ASSERT_TRUE(ra->has_value());
  EXPECT_TRUE(ra->value().ok());
}

TEST_F(CommitPipelineReplicator, ADoneCalledAfterThePipelineIsDestroyedIsHarmless) {
  start({.stop_timeout = 50ms});
  uint64_t a = put("a");
  ASSERT_TRUE(rep.wait_calls(1));
  auto ra = watch(a);
  pipe.reset();
  settle();
  EXPECT_TRUE(is_error(*ra, "storage.replication_aborted"));
  // The batch stays readable until done, and done changes nothing.
  EXPECT_EQ(rep.batch(0, 0)->Count(), 1u);
  rep.complete(0, {{a, make_error("envoy", "kv_unavailable", "Refused.")}});
  rep.complete(0);  // even twice
  settle();
  EXPECT_TRUE(is_error(*ra, "storage.replication_aborted"));
}
