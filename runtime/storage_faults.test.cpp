// The node on a failing disk (storage/fault_fs.hpp under a real RocksDB):
// a full disk refuses writes with storage.disk_full and no abort, reads of
// awake and sleeping actors go on, and writes come back without a restart;
// a disk error (EIO) refuses writes until restart.
#include <cstdio>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"
#include "runtime/runtime.hpp"
#include "runtime/test_node.hpp"
#include "storage/fault_fs.hpp"

using namespace anvil;
using storage::FaultFs;
using namespace std::chrono_literals;

namespace {

struct NodeOnFaultyDisk : ::testing::Test {
  void SetUp() override {
    dir = anvil::testing::temp_dir(std::string("rt-fault-") +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    node = std::make_unique<anvil::testing::Node>(dir, actors::fixture_registry(), fs);
  }
  void TearDown() override {
    node.reset();
    std::filesystem::remove_all(dir);
  }
  // An actor with count = n that is asleep (its instance gone).
  std::string sleeping_counter(const std::string& key, int n) {
    auto id = node->get_or_create("counter", {key});
    for (int i = 0; i < n; ++i) EXPECT_TRUE(node->call(id, "increment").ok());
    const size_t awake = node->rt().awake_count();
    EXPECT_TRUE(node->call(id, "goToSleep").ok());
    for (int i = 0; i < 300 && node->rt().awake_count() >= awake; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_LT(node->rt().awake_count(), awake);
    return id;
  }
  bool wait_for_state(const std::string& state) {
    for (int i = 0; i < 300 && node->rt().storage_state() != state; ++i) std::this_thread::sleep_for(10ms);
    return node->rt().storage_state() == state;
  }

  std::string dir;
  std::shared_ptr<FaultFs> fs = std::make_shared<FaultFs>();
  std::unique_ptr<anvil::testing::Node> node;
};

}  // namespace

TEST_F(NodeOnFaultyDisk, AWriteOnAFullDiskFailsWithDiskFullAnd507) {
  auto id = node->get_or_create("counter", {"w"});
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kNoSpace);
  auto r = node->call(id, "increment");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "storage.disk_full");
  EXPECT_EQ(http_status_for(r.error()), 507);
  EXPECT_EQ(node->rt().storage_state(), "disk_full");
}

TEST_F(NodeOnFaultyDisk, ReadsOfAwakeAndSleepingActorsGoOnWhileTheDiskIsFull) {
  auto awake = node->get_or_create("counter", {"awake"});
  ASSERT_TRUE(node->call(awake, "increment").ok());
  auto asleep = sleeping_counter("asleep", 2);
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kNoSpace);
  ASSERT_FALSE(node->call(awake, "increment").ok());
  // The failed increment is not visible: the instance restarts from storage.
  auto a = node->call(awake, "getCount");
  ASSERT_TRUE(a.ok()) << a.error().qualified();
  EXPECT_EQ(a->as_int(), 1);
  auto b = node->call(asleep, "getCount");
  ASSERT_TRUE(b.ok()) << b.error().qualified();
  EXPECT_EQ(b->as_int(), 2);
}

TEST_F(NodeOnFaultyDisk, WritesResumeWithoutARestartOnceTheDiskHasRoom) {
  auto awake = node->get_or_create("counter", {"awake"});
  ASSERT_TRUE(node->call(awake, "increment").ok());
  auto asleep = sleeping_counter("asleep", 1);
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kNoSpace);
  ASSERT_FALSE(node->call(awake, "increment").ok());
  ASSERT_FALSE(node->call(awake, "increment").ok());  // refused while full
  fs->clear_faults();
  ASSERT_TRUE(wait_for_state("ok"));
  auto a = node->call(awake, "increment");
  ASSERT_TRUE(a.ok()) << a.error().qualified();
  EXPECT_EQ(a->as_int(), 2);  // the two refused increments never happened
  auto b = node->call(asleep, "increment");
  ASSERT_TRUE(b.ok()) << b.error().qualified();
  EXPECT_EQ(b->as_int(), 2);
  auto created = node->get_or_create("counter", {"new after resume"});
  EXPECT_TRUE(node->call(created, "increment").ok());
}

TEST_F(NodeOnFaultyDisk, MetricsAndHealthSayTheDiskIsFull) {
  auto id = node->get_or_create("counter", {"m"});
  EXPECT_NE(node->rt().metrics_text().find("anvil_storage_writable 1\n"), std::string::npos);
  fs->inject(FaultFs::Op::kAppend, FaultFs::Fault::kNoSpace);
  ASSERT_FALSE(node->call(id, "increment").ok());
  auto m = node->rt().metrics_text();
  EXPECT_NE(m.find("anvil_storage_writable 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("anvil_storage_errors_total{kind=\"disk_full\"} 1\n"), std::string::npos) << m;
  fs->clear_faults();
  ASSERT_TRUE(wait_for_state("ok"));
  m = node->rt().metrics_text();
  EXPECT_NE(m.find("anvil_storage_writable 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("anvil_storage_resumes_total 1\n"), std::string::npos) << m;
}

TEST_F(NodeOnFaultyDisk, AFailedFsyncRefusesWritesUntilRestartButReadsGoOn) {
  auto id = node->get_or_create("counter", {"eio"});
  ASSERT_TRUE(node->call(id, "increment").ok());
  fs->inject(FaultFs::Op::kSync, FaultFs::Fault::kIoError, ".log");
  auto r = node->call(id, "increment");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "storage.io_error");
  EXPECT_EQ(http_status_for(r.error()), 503);
  fs->clear_faults();
  std::this_thread::sleep_for(200ms);  // several retry intervals: fail-stop stays stopped
  EXPECT_EQ(node->rt().storage_state(), "failed");
  auto again = node->call(id, "increment");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().qualified(), "storage.io_error");
  auto read = node->call(id, "getCount");
  ASSERT_TRUE(read.ok()) << read.error().qualified();
  EXPECT_EQ(read->as_int(), 1);
}

TEST_F(NodeOnFaultyDisk, EveryAcknowledgedWriteSurvivesAPowerCut) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(node->get_or_create("counter", {"p" + std::to_string(i)}));
    for (int j = 0; j <= i; ++j) ASSERT_TRUE(node->call(ids.back(), "increment").ok());
  }
  fs->crash();
  node.reset();
  node = std::make_unique<anvil::testing::Node>(dir, actors::fixture_registry());
  for (int i = 0; i < 5; ++i) {
    auto r = node->call(ids[i], "getCount");
    ASSERT_TRUE(r.ok()) << r.error().qualified();
    EXPECT_EQ(r->as_int(), i + 1);
  }
}

TEST(NodeOnARealFullDisk, WritesAre507ReadsGoOnAndWritesResumeWhenSpaceIsFreed) {
  const std::string mount_dir = anvil::testing::temp_dir("rt-fault-tmpfs");
  anvil::testing::SmallDisk disk(mount_dir);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  {
    anvil::testing::Node node(mount_dir + "/db", actors::fixture_registry());
    auto id = node.get_or_create("counter", {"full"});
    ASSERT_TRUE(node.call(id, "increment").ok());
    // Another program fills the disk.
    const std::string filler = mount_dir + "/filler";
    {
      FILE* f = std::fopen(filler.c_str(), "wb");
      ASSERT_NE(f, nullptr);
      std::string chunk(4096, 'f');
      while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size() && std::fflush(f) == 0) {
      }
      std::fclose(f);
    }
    Result<Value> r = Value(0);
    int64_t acknowledged = 1;
    for (int i = 0; i < 20000 && r.ok(); ++i)
      if ((r = node.call(id, "increment")).ok()) acknowledged = r->as_int();
    ASSERT_FALSE(r.ok()) << "the full disk never failed a write";
    EXPECT_EQ(r.error().qualified(), "storage.disk_full");
    EXPECT_EQ(http_status_for(r.error()), 507);
    auto read = node.call(id, "getCount");
    ASSERT_TRUE(read.ok()) << read.error().qualified();
    EXPECT_EQ(read->as_int(), acknowledged);

    std::filesystem::remove(filler);
    for (int i = 0; i < 300 && node.rt().storage_state() != "ok"; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(node.rt().storage_state(), "ok");
    auto after = node.call(id, "increment");
    ASSERT_TRUE(after.ok()) << after.error().qualified();
    EXPECT_EQ(after->as_int(), acknowledged + 1);
  }
}
