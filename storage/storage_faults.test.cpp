// The Store and the commit pipeline on a failing disk (FaultFs): a power cut
// keeps exactly what was acknowledged, EIO is fail-stop, ENOSPC refuses
// writes until the disk has room and then resumes without a restart.
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <rocksdb/options.h>

#include "storage/commit_pipeline.hpp"
#include "storage/fault_fs.hpp"
#include "storage/test_dir.hpp"

using namespace anvil;
using namespace anvil::storage;
using namespace std::chrono_literals;

namespace {

struct StorageFaults : ::testing::Test {
  void SetUp() override {
    dir = anvil::testing::temp_dir(std::string("sfault-") +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    open_store();
  }
  void TearDown() override {
    pipe.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  void open_store() {
    auto s = Store::open({dir, true, fs});
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(s.value());
    pipe = std::make_unique<CommitPipeline>(*store, io.get_executor(), 20ms);
  }
  // Closes the store after a power cut and opens it again on the real disk.
  void crash_and_reopen() {
    fs->crash();
    pipe.reset();
    store.reset();
    fs.reset();
    open_store();
  }
  uint64_t put(const std::string& k, const std::string& v, uint64_t after = 0) {
    rocksdb::WriteBatch b;
    store->put(b, Family::kState, k, v);
    return pipe->submit(std::move(b), after);
  }
  std::optional<std::string> get(const std::string& k) {
    auto r = store->get(Family::kState, k);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  }
  // Up to 30 s: resuming flushes the memtable, several MB in the flush
  // test, which a TSan build (RocksDB's memcpy checked) takes seconds over.
  bool wait_until_writable() {
    for (int i = 0; i < 3000 && pipe->health() != CommitPipeline::Health::kWritable; ++i)
      std::this_thread::sleep_for(10ms);
    return pipe->health() == CommitPipeline::Health::kWritable;
  }

  std::string dir;
  asio::io_context io;
  std::shared_ptr<FaultFs> fs = std::make_shared<FaultFs>();
  std::unique_ptr<Store> store;
  std::unique_ptr<CommitPipeline> pipe;
};

}  // namespace

TEST_F(StorageFaults, EveryAcknowledgedBatchLeavesNoUnsyncedBytesBehind) {
  // The test that fails if the pipeline ever writes with sync=false: the
  // moment a batch is acknowledged, every byte written is synced.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(pipe->wait_blocking(put("k" + std::to_string(i), "v")).ok());
    EXPECT_EQ(fs->unsynced_bytes(), 0u) << "batch " << i << " acknowledged before its WAL bytes were synced";
  }
}

TEST_F(StorageFaults, APowerCutKeepsEveryAcknowledgedBatch) {
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i)
        EXPECT_TRUE(pipe->wait_blocking(put(std::to_string(t) + "-" + std::to_string(i), "v")).ok());
    });
  for (auto& t : ts) t.join();
  crash_and_reopen();
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 25; ++i) EXPECT_EQ(get(std::to_string(t) + "-" + std::to_string(i)), "v");
}

TEST_F(StorageFaults, APowerCutDropsWhatRocksDbWroteWithoutSync) {
  // The fault file system's side of the bargain: what `sync=false` would
  // write (the regression the test above guards against) really is gone
  // after the cut, while a synced write survives it.
  const std::string raw_dir = dir + "-raw";
  auto env = rocksdb::NewCompositeEnv(fs);
  rocksdb::Options o;
  o.create_if_missing = true;
  o.env = env.get();
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(o, raw_dir, &db).ok());
  rocksdb::WriteOptions synced, unsynced;
  synced.sync = true;
  ASSERT_TRUE(db->Put(synced, "synced", "1").ok());
  ASSERT_TRUE(db->Put(unsynced, "unsynced", "2").ok());
  EXPECT_GT(fs->unsynced_bytes(), 0u);
  fs->crash();
  delete db;  // its close cannot write any more

  rocksdb::Options plain;
  ASSERT_TRUE(rocksdb::DB::Open(plain, raw_dir, &db).ok());
  std::string v;
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "synced", &v).ok());
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "unsynced", &v).IsNotFound());
  delete db;
  std::filesystem::remove_all(raw_dir);
}

TEST_F(StorageFaults, AFailedWalSyncIsNeverReportedDurable) {
  ASSERT_TRUE(pipe->wait_blocking(put("before", "1")).ok());
  fs->inject(FaultFs::Op::kSync, FaultFs::Fault::kIoError, ".log");
  uint64_t seq = put("failed", "2");
  auto st = pipe->wait_blocking(seq);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().qualified(), "storage.io_error");
  EXPECT_FALSE(pipe->synced_at_least(seq));
  EXPECT_TRUE(pipe->lost(seq));
  EXPECT_EQ(pipe->health(), CommitPipeline::Health::kFailed);
  EXPECT_EQ(pipe->io_errors(), 1u);
  // Waiting again, later, says the same.
  EXPECT_FALSE(pipe->wait_blocking(seq).ok());
}

TEST_F(StorageFaults, AfterAnIoErrorSubmitRefusesWorkEvenWhenTheDiskWorksAgain) {
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kIoError, ".log");
  uint64_t failed = put("a", "1");
  ASSERT_FALSE(pipe->wait_blocking(failed).ok());
  fs->clear_faults();
  std::this_thread::sleep_for(100ms);  // several resume intervals: fail-stop never resumes
  const uint64_t rounds = pipe->rounds();
  uint64_t later = put("b", "2");
  auto st = pipe->wait_blocking(later);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().qualified(), "storage.io_error");
  EXPECT_EQ(pipe->rounds(), rounds) << "a refused batch reached RocksDB";
  EXPECT_FALSE(pipe->synced_at_least(later));
  EXPECT_LT(pipe->last_synced(), failed);
  EXPECT_FALSE(get("b").has_value());
}

TEST_F(StorageFaults, BatchesDurableBeforeAnIoErrorStayDurable) {
  uint64_t good = put("a", "1");
  ASSERT_TRUE(pipe->wait_blocking(good).ok());
  fs->inject(FaultFs::Op::kSync, FaultFs::Fault::kIoError, ".log");
  ASSERT_FALSE(pipe->wait_blocking(put("b", "2")).ok());
  EXPECT_TRUE(pipe->wait_blocking(good).ok());
  EXPECT_EQ(get("a"), "1");
}

TEST_F(StorageFaults, ADiskFullWriteFailsWithDiskFullAndReadsGoOn) {
  ASSERT_TRUE(pipe->wait_blocking(put("before", "1")).ok());
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kNoSpace);
  uint64_t seq = put("full", "2");
  auto st = pipe->wait_blocking(seq);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().qualified(), "storage.disk_full");
  EXPECT_EQ(pipe->health(), CommitPipeline::Health::kDiskFull);
  EXPECT_EQ(pipe->disk_full_errors(), 1u);
  EXPECT_EQ(get("before"), "1");
  EXPECT_FALSE(get("full").has_value());
  // Refused while full, without touching the disk.
  auto refused = pipe->wait_blocking(put("meanwhile", "3"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().qualified(), "storage.disk_full");
}

TEST_F(StorageFaults, WritesResumeWithoutARestartOnceTheDiskHasRoom) {
  ASSERT_TRUE(pipe->wait_blocking(put("before", "1")).ok());
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kNoSpace);
  uint64_t lost = put("full", "2");
  ASSERT_FALSE(pipe->wait_blocking(lost).ok());
  std::this_thread::sleep_for(60ms);  // resume attempts fail while still full
  EXPECT_EQ(pipe->health(), CommitPipeline::Health::kDiskFull);
  fs->clear_faults();
  ASSERT_TRUE(wait_until_writable());
  EXPECT_EQ(pipe->resumes(), 1u);
  uint64_t after = put("after", "3");
  ASSERT_TRUE(pipe->wait_blocking(after).ok());
  EXPECT_EQ(get("after"), "3");
  // The lost batch stays lost: never durable, never readable.
  EXPECT_FALSE(pipe->wait_blocking(lost).ok());
  EXPECT_FALSE(pipe->synced_at_least(lost));
  EXPECT_TRUE(pipe->synced_at_least(after) || pipe->wait_blocking(after).ok());
  EXPECT_FALSE(get("full").has_value());
  // And everything acknowledged survives a power cut after the resume.
  crash_and_reopen();
  EXPECT_EQ(get("before"), "1");
  EXPECT_EQ(get("after"), "3");
  EXPECT_FALSE(get("full").has_value());
}

TEST_F(StorageFaults, ABatchBuildingOnALostOneIsRefusedAfterTheResume) {
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kNoSpace);
  uint64_t lost = put("turn1", "1");
  ASSERT_FALSE(pipe->wait_blocking(lost).ok());
  fs->clear_faults();
  ASSERT_TRUE(wait_until_writable());
  uint64_t next = put("turn2", "2", lost);
  auto st = pipe->wait_blocking(next);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().qualified(), "storage.disk_full");
  EXPECT_FALSE(get("turn2").has_value());
  EXPECT_TRUE(pipe->wait_blocking(put("other", "3")).ok());
}

TEST_F(StorageFaults, ADiskFullOnFlushFilesDoesNotAbortTheNode) {
  // Memtable flushes and compactions write SST files; when they hit ENOSPC
  // RocksDB stops writes in the background. The next WAL write reports it.
  fs->inject(FaultFs::Op::kCreate, FaultFs::Fault::kNoSpace, ".sst");
  std::string big(64 * 1024, 'z');
  Status last = Ok{};
  for (int i = 0; i < 2000 && last.ok(); ++i) last = pipe->wait_blocking(put("big" + std::to_string(i), big));
  ASSERT_FALSE(last.ok()) << "the memtable never flushed";
  EXPECT_EQ(last.error().qualified(), "storage.disk_full");
  fs->clear_faults();
  ASSERT_TRUE(wait_until_writable());
  EXPECT_TRUE(pipe->wait_blocking(put("after", "1")).ok());
}

TEST(StorageOnARealFullDisk, FillingTheDiskRefusesWritesKeepsReadsAndResumesOnceItGrows) {
  const std::string mount_dir = anvil::testing::temp_dir("sfault-tmpfs");
  anvil::testing::SmallDisk disk(mount_dir);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  const std::string path = mount_dir + "/db";
  asio::io_context io;
  auto store = Store::open({path});
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto pipe = std::make_unique<CommitPipeline>(**store, io.get_executor(), 20ms);
  auto put = [&](const std::string& k, const std::string& v) {
    rocksdb::WriteBatch b;
    (*store)->put(b, Family::kState, k, v);
    return pipe->wait_blocking(pipe->submit(std::move(b)));
  };
  const std::string big(64 * 1024, 'z');
  Status last = Ok{};
  int written = 0;
  for (; written < 1000; ++written) {
    last = put("k" + std::to_string(written), big);
    if (!last.ok()) break;
  }
  ASSERT_FALSE(last.ok()) << "4 MiB never filled up";
  EXPECT_EQ(last.error().qualified(), "storage.disk_full");
  ASSERT_GT(written, 0);
  // Reads of what was acknowledged go on.
  auto r = (*store)->get(Family::kState, "k0");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->value_or(""), big);
  EXPECT_FALSE(put("refused", "x").ok());

  ASSERT_TRUE(disk.grow());
  for (int i = 0; i < 500 && pipe->health() != CommitPipeline::Health::kWritable; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(pipe->health(), CommitPipeline::Health::kWritable);
  EXPECT_TRUE(put("after", "1").ok());
  for (int i = 0; i < written; ++i) {
    auto v = (*store)->get(Family::kState, "k" + std::to_string(i));
    ASSERT_TRUE(v.ok() && v->has_value()) << "acknowledged k" << i << " lost";
  }
  EXPECT_FALSE((*store)->get(Family::kState, "refused")->has_value());
  pipe.reset();
}
