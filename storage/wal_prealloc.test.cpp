// The WAL file system layer: a WAL owns its space ahead of the writes while
// open, is cut back to what was written on close, and a crash that leaves
// the zeros behind (or a torn record followed by zeros) recovers every
// synced write.
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>

#include "storage/store.hpp"
#include "storage/test_dir.hpp"
#include "storage/wal_prealloc.hpp"

using namespace anvil;
using namespace anvil::storage;
namespace fs = std::filesystem;

namespace {

struct WalPrealloc : ::testing::Test {
  void SetUp() override {
    dir = anvil::testing::temp_dir(std::string("walpre-") +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    store.reset();
    fs::remove_all(dir);
    fs::remove_all(dir + "-copy");
  }
  // The Store's own layer (preallocate_wal on by default).
  void open(const std::string& path) { open_with(path, std::nullopt, true); }
  // No layer at all: RocksDB's WAL as it writes it.
  void open_plain(const std::string& path) { open_with(path, std::nullopt, false); }
  // A layer with this tuning, given as the Store's file system.
  void open_tuned(const std::string& path, const WalPreallocFs::Tuning& t) { open_with(path, t, false); }
  void open_with(const std::string& path, std::optional<WalPreallocFs::Tuning> t, bool own_layer) {
    StoreOptions o;
    o.path = path;
    o.preallocate_wal = own_layer;
    if (t) o.file_system = std::make_shared<WalPreallocFs>(rocksdb::FileSystem::Default(), *t);
    auto s = Store::open(o);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(s.value());
  }
  // Chunks of `chunk`, zeros a chunk ahead in quarter-chunk pieces.
  static WalPreallocFs::Tuning tuning(uint64_t chunk) {
    WalPreallocFs::Tuning t;
    t.chunk = chunk;
    t.piece = chunk / 4;
    t.zero_ahead = chunk;
    return t;
  }
  void put(int i, size_t value_size = 100) {
    rocksdb::WriteBatch b;
    store->put(b, Family::kState, key(i), value(i, value_size));
    ASSERT_TRUE(store->write_synced(b).ok());
  }
  static std::string key(int i) { return "actor-" + std::to_string(i); }
  static std::string value(int i, size_t n) { return std::string(n, static_cast<char>('a' + i % 26)); }
  std::vector<fs::path> wals(const std::string& path) const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(path))
      if (WalPreallocFs::is_wal(e.path().string())) out.push_back(e.path());
    return out;
  }
  // A copy of the directory as it is on disk now, the store still open:
  // what a power cut after the last fsync leaves (zeros past the WAL's
  // last record included).
  std::string crash_copy() {
    const std::string copy = dir + "-copy";
    fs::remove_all(copy);
    fs::copy(dir, copy, fs::copy_options::recursive);
    fs::remove(copy + "/LOCK");
    return copy;
  }
  static std::string contents(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  // Offset just past the last non-zero byte of a file.
  static uint64_t data_end(const fs::path& p) {
    const std::string bytes = contents(p);
    size_t end = bytes.size();
    while (end > 0 && bytes[end - 1] == '\0') --end;
    return end;
  }
  // Whether [begin, end) of the file is all in written extents (not holes,
  // not fallocate's unwritten ones); nullopt when the file system has no
  // FIEMAP.
  static std::optional<bool> written_extents(const fs::path& p, uint64_t begin, uint64_t end) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    constexpr int kMax = 256;
    std::vector<char> buf(sizeof(fiemap) + kMax * sizeof(fiemap_extent));
    auto* fm = reinterpret_cast<fiemap*>(buf.data());
    fm->fm_start = begin;
    fm->fm_length = end - begin;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = kMax;
    const int rc = ::ioctl(fd, FS_IOC_FIEMAP, fm);
    ::close(fd);
    if (rc != 0) return std::nullopt;
    uint64_t covered = begin;
    for (uint32_t i = 0; i < fm->fm_mapped_extents; ++i) {
      const auto& e = fm->fm_extents[i];
      if (e.fe_logical > covered) return false;  // a hole
      if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) return false;
      covered = std::max<uint64_t>(covered, e.fe_logical + e.fe_length);
    }
    return covered >= end;
  }
  void expect_all(int n, size_t value_size = 100) {
    for (int i = 0; i < n; ++i) {
      auto r = store->get(Family::kState, key(i));
      ASSERT_TRUE(r.ok()) << r.error().message;
      ASSERT_TRUE(r->has_value()) << key(i);
      EXPECT_EQ(**r, value(i, value_size)) << key(i);
    }
  }

  std::string dir;
  std::unique_ptr<Store> store;
};

}  // namespace

TEST_F(WalPrealloc, OnlyWalFilesAreRecognised) {
  EXPECT_TRUE(WalPreallocFs::is_wal("/data/rocksdb/000123.log"));
  EXPECT_TRUE(WalPreallocFs::is_wal("000004.log"));
  EXPECT_FALSE(WalPreallocFs::is_wal("/data/rocksdb/LOG"));
  EXPECT_FALSE(WalPreallocFs::is_wal("/data/rocksdb/LOG.old.1700000000"));
  EXPECT_FALSE(WalPreallocFs::is_wal("/data/rocksdb/MANIFEST-000005"));
  EXPECT_FALSE(WalPreallocFs::is_wal("/data/rocksdb/000123.sst"));
  EXPECT_FALSE(WalPreallocFs::is_wal("/data/rocksdb/app.log"));
  EXPECT_FALSE(WalPreallocFs::is_wal("/data/rocksdb/.log"));
  EXPECT_FALSE(WalPreallocFs::is_wal("/data/000123.log/"));
}

TEST_F(WalPrealloc, AnOpenWalOwnsItsSpaceAheadAndIsCutBackOnClose) {
  open(dir);
  for (int i = 0; i < 10; ++i) put(i);
  auto live = wals(dir);
  ASSERT_EQ(live.size(), 1u);
  // The file's size is the space set aside, far past the ~1.5 KB written.
  EXPECT_GE(fs::file_size(live[0]), WalPreallocFs::Tuning{}.chunk);
  EXPECT_LT(data_end(live[0]), 4096u);

  store.reset();
  for (const auto& w : wals(dir)) EXPECT_LT(fs::file_size(w), 4096u) << w;
  open(dir);
  expect_all(10);
}

TEST_F(WalPrealloc, OffLeavesTheWalAsRocksDbWritesIt) {
  open_plain(dir);
  for (int i = 0; i < 10; ++i) put(i);
  auto live = wals(dir);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_LT(fs::file_size(live[0]), 4096u);
}

TEST_F(WalPrealloc, ACrashLeavingZerosAfterTheLastRecordRecoversEverySyncedWrite) {
  open(dir);
  for (int i = 0; i < 500; ++i) put(i);
  const std::string copy = crash_copy();
  store.reset();
  open(copy);
  expect_all(500);
  // And the recovered store takes writes again.
  put(500);
  expect_all(501);
}

TEST_F(WalPrealloc, ATornRecordFollowedByZerosIsDroppedAndEverythingBeforeItKept) {
  open(dir);
  for (int i = 0; i < 200; ++i) put(i);
  const std::string copy = crash_copy();
  store.reset();
  auto live = wals(copy);
  ASSERT_EQ(live.size(), 1u);
  // Half a record after the last one: a header announcing 300 bytes (crc,
  // length, full-record type) and 100 of them, then the zeros.
  const uint64_t end = data_end(live[0]);
  {
    std::fstream f(live[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(end));
    const char header[7] = {'\x12', '\x34', '\x56', '\x78', '\x2c', '\x01', '\x01'};
    f.write(header, sizeof header);
    const std::string body(100, 'x');
    f.write(body.data(), static_cast<std::streamsize>(body.size()));
  }
  open(copy);
  expect_all(200);
  put(200);
  expect_all(201);
}

TEST_F(WalPrealloc, AWalGrowsChunkByChunkPastItsFirstSpace) {
  constexpr uint64_t kChunk = 64 << 10;
  open_tuned(dir, tuning(kChunk));
  // ~1 MiB of values: sixteen chunks' worth.
  for (int i = 0; i < 256; ++i) put(i, 4000);
  auto live = wals(dir);
  ASSERT_EQ(live.size(), 1u);
  const uint64_t size = fs::file_size(live[0]);
  EXPECT_EQ(size % kChunk, 0u);
  EXPECT_GE(size, data_end(live[0]));
  // Space is set aside only so far ahead: the zeroing's reach plus a chunk.
  EXPECT_LE(size - data_end(live[0]), kChunk + kChunk + kChunk / 4);

  const std::string copy = crash_copy();
  store.reset();
  open_tuned(copy, tuning(kChunk));
  expect_all(256, 4000);
}

TEST_F(WalPrealloc, ZerosAreWrittenAheadOfTheWriter) {
  constexpr uint64_t kChunk = 1 << 20;
  WalPreallocFs::Tuning t;
  t.chunk = kChunk;
  t.piece = 64 << 10;
  t.zero_ahead = 512 << 10;
  open_tuned(dir, t);
  for (int i = 0; i < 10; ++i) put(i);
  auto live = wals(dir);
  ASSERT_EQ(live.size(), 1u);
  const uint64_t end = (data_end(live[0]) + 4095) / 4096 * 4096;
  std::optional<bool> ahead;
  for (int i = 0; i < 200; ++i) {
    // From the second piece on (the first is the writer's at once).
    ahead = written_extents(live[0], std::max<uint64_t>(end, t.piece), end + t.zero_ahead - t.piece);
    if (!ahead || *ahead) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!ahead) GTEST_SKIP() << "no FIEMAP on this file system";
  EXPECT_TRUE(*ahead) << "the space past the writer is not written with zeros";
  // The space further out is only set aside.
  EXPECT_EQ(written_extents(live[0], kChunk - 4096, kChunk), std::optional<bool>(false));
  // The zeros are zeros: the writer's data ends where it did.
  EXPECT_LE(data_end(live[0]), end);
  store.reset();
  open(dir);
  expect_all(10);
}

// Small pieces just ahead of a writer whose appends often reach past them:
// the writer keeps catching up with the zeroing. Any zero written over a
// record would lose that record (and every later one) at recovery.
TEST_F(WalPrealloc, ZeroingNeverOverwritesWhatTheWriterWrote) {
  WalPreallocFs::Tuning t;
  t.chunk = 16 << 10;
  t.piece = 4 << 10;
  t.zero_ahead = 8 << 10;
  open_tuned(dir, t);
  constexpr int kN = 600;
  auto size_of = [](int i) { return static_cast<size_t>(50 + (i * 7919) % 20000); };
  for (int i = 0; i < kN; ++i) put(i, size_of(i));
  const std::string copy = crash_copy();
  store.reset();
  open(copy);
  for (int i = 0; i < kN; ++i) {
    auto v = store->get(Family::kState, key(i));
    ASSERT_TRUE(v.ok() && v->has_value()) << key(i);
    ASSERT_EQ(**v, value(i, size_of(i))) << key(i);
  }
}

// The layer on its own, appends without a sync between most of them (the
// Store syncs every write, which hides races), compared byte for byte
// while the file is open and after Close.
TEST_F(WalPrealloc, RandomAppendsSurviveTheZeroingByteForByte) {
  fs::create_directories(dir);
  WalPreallocFs::Tuning t;
  t.chunk = 16 << 10;
  t.piece = 4 << 10;
  t.zero_ahead = 12 << 10;
  auto wfs = std::make_shared<WalPreallocFs>(rocksdb::FileSystem::Default(), t);
  std::mt19937 rng(7);
  for (int round = 0; round < 10; ++round) {
    const std::string f = dir + "/0000" + std::to_string(10 + round) + ".log";
    std::unique_ptr<rocksdb::FSWritableFile> w;
    ASSERT_TRUE(wfs->NewWritableFile(f, rocksdb::FileOptions(), &w, nullptr).ok());
    std::string expect;
    for (int i = 0; i < 2000; ++i) {
      std::string d(1 + rng() % (i % 50 == 0 ? 70000 : 3000), '\0');
      for (auto& c : d) c = static_cast<char>(1 + rng() % 255);
      ASSERT_TRUE(w->Append(d, rocksdb::IOOptions(), nullptr).ok());
      expect += d;
      if (i % 7 == 0) {
        ASSERT_TRUE(w->Sync(rocksdb::IOOptions(), nullptr).ok());
      }
    }
    {
      const std::string got = contents(f);
      ASSERT_GE(got.size(), expect.size());
      ASSERT_TRUE(got.compare(0, expect.size(), expect) == 0) << "data overwritten in round " << round;
      for (size_t k = expect.size(); k < got.size(); ++k) ASSERT_EQ(got[k], '\0') << k;
    }
    ASSERT_TRUE(w->Close(rocksdb::IOOptions(), nullptr).ok());
    EXPECT_EQ(fs::file_size(f), expect.size());
  }
}

// ---- Readers of a WAL that is still being written (WalReadFs) -------------

namespace {

// A RocksDB secondary instance over `path` reading through WalReadFs (or
// not), as Store::open_secondary does, that can catch up again.
struct Secondary {
  explicit Secondary(bool through_layer) {
    if (through_layer) env = rocksdb::NewCompositeEnv(std::make_shared<WalReadFs>(rocksdb::FileSystem::Default()));
  }
  rocksdb::Status open(const std::string& path, const std::string& own) {
    rocksdb::Options o;
    o.max_open_files = -1;
    o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    if (env) o.env = env.get();
    std::vector<std::string> names;
    auto s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(o), path, &names);
    if (!s.ok()) return s;
    std::vector<rocksdb::ColumnFamilyDescriptor> d;
    for (auto& n : names) d.emplace_back(n, rocksdb::ColumnFamilyOptions(o));
    s = rocksdb::DB::OpenAsSecondary(rocksdb::DBOptions(o), path, own, d, &handles, &db);
    for (size_t i = 0; s.ok() && i < names.size(); ++i) {
      if (names[i] == "state") state = handles[i];
    }
    return s;
  }
  // How many of keys 0..n-1 it sees, and whether they are a prefix (no key
  // seen after one missing: a view some moment of the writer had).
  std::pair<int, bool> view(int n) {
    int seen = 0;
    bool missing = false, prefix = true;
    for (int i = 0; i < n; ++i) {
      std::string v;
      const bool have = db->Get(rocksdb::ReadOptions(), state, WalPrealloc::key(i), &v).ok();
      seen += have;
      if (have && missing) prefix = false;
      missing = missing || !have;
    }
    return {seen, prefix};
  }
  ~Secondary() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  std::unique_ptr<rocksdb::Env> env;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* state = nullptr;
};

}  // namespace

TEST_F(WalPrealloc, ValidEndStopsAtTheFirstRecordNotWholeAndValid) {
  open(dir);
  for (int i = 0; i < 50; ++i) put(i);
  auto live = wals(dir);
  ASSERT_EQ(live.size(), 1u);
  const std::string bytes = contents(live[0]);
  const uint64_t end = data_end(live[0]);
  ASSERT_GT(bytes.size(), end);  // zeros past the records
  EXPECT_EQ(WalReadFs::valid_end(bytes), end);
  // The last record half copied in: the valid end is before it.
  const uint64_t before_last = WalReadFs::valid_end(bytes.substr(0, end - 10));
  EXPECT_LT(before_last, end - 10);
  EXPECT_EQ(WalReadFs::valid_end(bytes, before_last), end);
  std::string torn = bytes;
  torn[end - 3] ^= 0x5a;
  EXPECT_EQ(WalReadFs::valid_end(torn), before_last);
  // A record in the middle not written yet (zero header): nothing after it
  // counts, valid or not.
  const uint64_t mid = WalReadFs::valid_end(bytes.substr(0, before_last / 2));  // a record boundary
  ASSERT_GT(mid, 0u);
  const std::string hole = bytes.substr(0, mid) + std::string(7, '\0') + bytes.substr(mid + 7);
  EXPECT_EQ(WalReadFs::valid_end(hole), mid);
}

TEST_F(WalPrealloc, ASecondaryTailingTheLiveWalSeesEveryRecordPastTheFirstChunk) {
  open(dir);
  int n = 0;
  for (; n < 10; ++n) put(n);
  Secondary sec(true);
  ASSERT_TRUE(sec.open(dir, dir + "-copy").ok());
  EXPECT_EQ(sec.view(n), std::make_pair(n, true));
  for (; n < 20; ++n) put(n);
  ASSERT_TRUE(sec.db->TryCatchUpWithPrimary().ok());
  EXPECT_EQ(sec.view(n), std::make_pair(n, true));
  // Past the first 4 MiB chunk, in records that span blocks.
  for (; n < 170; ++n) put(n, 40000);
  ASSERT_TRUE(sec.db->TryCatchUpWithPrimary().ok());
  EXPECT_EQ(sec.view(n), std::make_pair(n, true));
}

// A record ending exactly where the first chunk ends: a reader that skips
// zeros goes past the records written after it opened and then applies
// the ones after 4 MiB (a view no moment had). Through WalReadFs it sees
// them all.
TEST_F(WalPrealloc, ASecondaryNeverSkipsRecordsWrittenAfterItLooked) {
  open(dir);
  int n = 0;
  for (; n < 10; ++n) put(n);
  auto live = wals(dir);
  ASSERT_EQ(live.size(), 1u);
  Secondary sec(true);
  ASSERT_TRUE(sec.open(dir, dir + "-copy").ok());
  const uint64_t kEnd = WalPreallocFs::Tuning{}.chunk;
  for (;;) {
    const uint64_t d = data_end(live[0]);
    ASSERT_LT(d, kEnd);
    if (kEnd - d <= 2000) break;
    put(n++, static_cast<size_t>(std::min<uint64_t>(20000, kEnd - d - 1000)));
  }
  // A record whose end is the chunk's end: 7 header + 12 batch header + put
  // tag, family id, key length, key ("actor-NNN"), value length + value.
  const uint64_t left = kEnd - data_end(live[0]);
  const size_t key_len = key(n).size();
  size_t value_len = left - 7 - 12 - 1 - 1 - 1 - key_len - 1;
  if (value_len >= 128) --value_len;  // a two-byte varint length
  put(n++, value_len);
  ASSERT_EQ(data_end(live[0]), kEnd) << "could not end a record at the chunk's end";
  for (int i = 0; i < 10; ++i) put(n++);
  ASSERT_TRUE(sec.db->TryCatchUpWithPrimary().ok());
  auto [seen, prefix] = sec.view(n);
  EXPECT_TRUE(prefix);
  EXPECT_EQ(seen, n);
}

// `anvil actors --data-dir` / `anvil data export`: one-shot secondary opens
// (Store::open_secondary) while the node writes: none fails, each sees a
// prefix of the writes.
TEST_F(WalPrealloc, OneShotSecondaryOpensWhileTheNodeWritesSeeAPrefix) {
  open(dir);
  std::atomic<int> written{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::mt19937 rng(1);
    for (int i = 0; !stop && i < 100000; ++i) {
      rocksdb::WriteBatch b;
      store->put(b, Family::kState, key(i), value(i, 1000 + rng() % 60000));
      if (!store->write_synced(b).ok()) break;
      written = i + 1;
    }
  });
  int opens = 0, failed = 0, gapped = 0;
  std::string first_error;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < until) {
    const std::string own = dir + "-copy/" + std::to_string(opens++);
    auto s = Store::open_secondary(dir, own);
    if (!s.ok()) {
      ++failed;
      if (first_error.empty()) first_error = s.error().message;
      continue;
    }
    const int n = written.load() + 20;
    bool missing = false;
    for (int i = 0; i < n; ++i) {
      auto v = (*s)->get(Family::kState, key(i));
      const bool have = v.ok() && v->has_value();
      if (have && missing) {
        ++gapped;
        break;
      }
      missing = missing || !have;
    }
  }
  stop = true;
  writer.join();
  EXPECT_GT(opens, 3);
  EXPECT_EQ(failed, 0) << first_error;
  EXPECT_EQ(gapped, 0);
}
