#include "storage/fault_fs.hpp"

#include <filesystem>

#include <gtest/gtest.h>

#include "storage/test_dir.hpp"

using namespace anvil::storage;
using rocksdb::IOOptions;

namespace {

struct FaultFsTest : ::testing::Test {
  void SetUp() override {
    dir = anvil::testing::temp_dir(std::string("faultfs-") +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  std::unique_ptr<rocksdb::FSWritableFile> create(const std::string& name) {
    std::unique_ptr<rocksdb::FSWritableFile> f;
    auto s = fs->NewWritableFile(dir + "/" + name, rocksdb::FileOptions(), &f, nullptr);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return f;
  }
  rocksdb::IOStatus append(rocksdb::FSWritableFile& f, size_t n) {
    std::string data(n, 'x');
    return f.Append(data, IOOptions(), nullptr);
  }

  std::string dir;
  std::shared_ptr<FaultFs> fs = std::make_shared<FaultFs>();
};

}  // namespace

TEST_F(FaultFsTest, BytesCountAsUnsyncedUntilTheFileIsSynced) {
  auto f = create("a");
  ASSERT_TRUE(append(*f, 100).ok());
  EXPECT_EQ(fs->unsynced_bytes(), 100u);
  EXPECT_EQ(fs->unsynced_bytes(dir + "/a"), 100u);
  ASSERT_TRUE(f->Sync(IOOptions(), nullptr).ok());
  EXPECT_EQ(fs->unsynced_bytes(), 0u);
  ASSERT_TRUE(append(*f, 7).ok());
  ASSERT_TRUE(f->Fsync(IOOptions(), nullptr).ok());
  EXPECT_EQ(fs->unsynced_bytes(), 0u);
}

TEST_F(FaultFsTest, ACrashCutsEveryFileBackToWhatWasSynced) {
  auto a = create("a");
  auto b = create("b");
  ASSERT_TRUE(append(*a, 100).ok());
  ASSERT_TRUE(a->Sync(IOOptions(), nullptr).ok());
  ASSERT_TRUE(append(*a, 50).ok());
  ASSERT_TRUE(append(*b, 30).ok());  // never synced
  ASSERT_TRUE(a->Flush(IOOptions(), nullptr).ok());
  ASSERT_TRUE(b->Flush(IOOptions(), nullptr).ok());
  ASSERT_EQ(std::filesystem::file_size(dir + "/a"), 150u);

  fs->crash();
  EXPECT_EQ(std::filesystem::file_size(dir + "/a"), 100u);
  EXPECT_EQ(std::filesystem::file_size(dir + "/b"), 0u);
}

TEST_F(FaultFsTest, AfterACrashNothingCanBeWrittenSyncedOrCreated) {
  auto a = create("a");
  fs->crash();
  EXPECT_TRUE(append(*a, 10).IsIOError());
  EXPECT_TRUE(a->Sync(IOOptions(), nullptr).IsIOError());
  std::unique_ptr<rocksdb::FSWritableFile> f;
  EXPECT_TRUE(fs->NewWritableFile(dir + "/c", rocksdb::FileOptions(), &f, nullptr).IsIOError());
}

TEST_F(FaultFsTest, ARenamedFileKeepsItsUnsyncedBytes) {
  auto a = create("a");
  ASSERT_TRUE(append(*a, 20).ok());
  ASSERT_TRUE(fs->RenameFile(dir + "/a", dir + "/b", IOOptions(), nullptr).ok());
  EXPECT_EQ(fs->unsynced_bytes(dir + "/a"), 0u);
  EXPECT_EQ(fs->unsynced_bytes(dir + "/b"), 20u);
}

TEST_F(FaultFsTest, InjectedNoSpaceFailsAppendsUntilCleared) {
  auto f = create("a");
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kNoSpace);
  auto s = append(*f, 10);
  EXPECT_TRUE(s.IsNoSpace()) << s.ToString();
  EXPECT_TRUE(append(*f, 10).IsNoSpace());
  EXPECT_EQ(fs->faults_hit(), 2u);
  EXPECT_EQ(fs->unsynced_bytes(), 0u);  // a failed append wrote nothing
  fs->clear_faults();
  EXPECT_TRUE(append(*f, 10).ok());
}

TEST_F(FaultFsTest, InjectedEioFailsSyncAndLeavesTheBytesUnsynced) {
  auto f = create("a");
  ASSERT_TRUE(append(*f, 10).ok());
  fs->inject(FaultFs::Op::kSync, FaultFs::Fault::kIoError);
  auto s = f->Sync(IOOptions(), nullptr);
  EXPECT_TRUE(s.IsIOError() && !s.IsNoSpace()) << s.ToString();
  EXPECT_TRUE(f->Fsync(IOOptions(), nullptr).IsIOError());
  EXPECT_EQ(fs->unsynced_bytes(), 10u);
}

TEST_F(FaultFsTest, AFaultHitsOnlyMatchingFilesAndOnlyAfterTheSkippedCalls) {
  auto wal = create("000001.log");
  auto sst = create("000002.sst");
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kIoError, ".log", 1);
  EXPECT_TRUE(append(*sst, 10).ok());
  EXPECT_TRUE(append(*wal, 10).ok());  // skipped
  EXPECT_TRUE(append(*wal, 10).IsIOError());
  EXPECT_TRUE(append(*sst, 10).ok());
}

TEST_F(FaultFsTest, InjectedCreateFaultRefusesNewFiles) {
  fs->inject(FaultFs::Op::kCreate, FaultFs::Fault::kNoSpace);
  std::unique_ptr<rocksdb::FSWritableFile> f;
  EXPECT_TRUE(fs->NewWritableFile(dir + "/a", rocksdb::FileOptions(), &f, nullptr).IsNoSpace());
  EXPECT_FALSE(std::filesystem::exists(dir + "/a"));
}
