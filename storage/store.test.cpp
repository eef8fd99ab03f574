#include "storage/store.hpp"

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <gtest/gtest.h>

#include "storage/test_dir.hpp"

using namespace anvil;
using namespace anvil::storage;

namespace {
std::string temp_dir(const char* name) { return anvil::testing::temp_dir(name); }
}  // namespace

TEST(Store, SyncedWritesAreReadableAfterReopen) {
  auto dir = temp_dir("store-reopen");
  {
    auto s = Store::open({dir});
    ASSERT_TRUE(s.ok()) << s.error().message;
    rocksdb::WriteBatch b;
    (*s)->put(b, Family::kState, "actor1", "v1");
    ASSERT_TRUE((*s)->write_synced(b).ok());
  }
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  auto v = (*s)->get(Family::kState, "actor1");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ(**v, "v1");
  std::filesystem::remove_all(dir);
}

TEST(Store, FamiliesAreSeparateKeySpaces) {
  auto dir = temp_dir("store-families");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  rocksdb::WriteBatch b;
  (*s)->put(b, Family::kActors, "k", "actor");
  (*s)->put(b, Family::kState, "k", "state");
  ASSERT_TRUE((*s)->write_synced(b).ok());
  EXPECT_EQ(*(*s)->get(Family::kActors, "k").value(), "actor");
  EXPECT_EQ(*(*s)->get(Family::kState, "k").value(), "state");
  EXPECT_FALSE((*s)->get(Family::kKv, "k").value().has_value());
  std::filesystem::remove_all(dir);
}

TEST(Store, PrefixDeleteRemovesOnlyThatActorsRange) {
  auto dir = temp_dir("store-prefix");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  rocksdb::WriteBatch b;
  (*s)->put(b, Family::kKv, "aaa/1", "x");
  (*s)->put(b, Family::kKv, "aaa/2", "y");
  (*s)->put(b, Family::kKv, "aab/1", "z");
  ASSERT_TRUE((*s)->write_synced(b).ok());
  rocksdb::WriteBatch d;
  (*s)->del_prefix(d, Family::kKv, "aaa/");
  ASSERT_TRUE((*s)->write_synced(d).ok());
  std::vector<std::string> keys;
  ASSERT_TRUE((*s)->scan(Family::kKv, [&](std::string_view k, std::string_view) {
                    keys.emplace_back(k);
                    return true;
                  }).ok());
  EXPECT_EQ(keys, std::vector<std::string>{"aab/1"});
  std::filesystem::remove_all(dir);
}

TEST(Store, OpeningAPathThatIsAFileFailsWithAnError) {
  auto dir = temp_dir("store-file");
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path());
  { std::ofstream(dir) << "not a db"; }
  auto s = Store::open({dir});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error().group, "storage");
  std::filesystem::remove(dir);
}

// A data directory written before the `due` family existed: a reader
// (secondary instance, as `anvil actors --data-dir` and `anvil data export`
// open it) opens it and reads the missing family as empty; a node's open
// adds the family.
TEST(Store, AReaderOpensADirectoryFromBeforeAFamilyExisted) {
  auto dir = temp_dir("store-old-families");
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> descs{{rocksdb::kDefaultColumnFamilyName, {}}};
    for (const char* name : {"actors", "key_index", "state", "kv", "queue", "schedules", "workflow", "db_pages"})
      descs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir, descs, &handles, &raw).ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), handles[1], "actor1", "row").ok());
    for (auto* h : handles) ASSERT_TRUE(raw->DestroyColumnFamilyHandle(h).ok());
    delete raw;
  }
  {
    auto r = Store::open_secondary(dir, dir + "-secondary");
    ASSERT_TRUE(r.ok()) << r.error().message;
    auto v = (*r)->get(Family::kActors, "actor1");
    ASSERT_TRUE(v.ok() && v->has_value());
    EXPECT_EQ(**v, "row");
    auto due = (*r)->get(Family::kDue, "x");
    ASSERT_TRUE(due.ok());
    EXPECT_FALSE(due->has_value());
    int seen = 0;
    EXPECT_TRUE((*r)->scan(Family::kDue, [&](std::string_view, std::string_view) { return ++seen, true; }).ok());
    EXPECT_EQ(seen, 0);
  }
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok()) << s.error().message;
  rocksdb::WriteBatch b;
  (*s)->put(b, Family::kDue, "k", "");
  ASSERT_TRUE((*s)->write_synced(b).ok());
  EXPECT_TRUE((*(*s)->get(Family::kDue, "k")).has_value());
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(dir + "-secondary");
}
