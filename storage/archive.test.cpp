// Actor archives against real RocksDB: export → import round-trips every
// record byte for byte; damaged, truncated or conflicting archives write
// nothing.
#include "storage/archive.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "storage/records.hpp"
#include "storage/test_dir.hpp"

namespace anvil::storage {
namespace {

using Dump = std::map<std::pair<int, std::string>, std::string>;

std::unique_ptr<Store> open_store(const std::string& dir) {
  StoreOptions o;
  o.path = dir;
  auto s = Store::open(o);
  if (!s.ok()) throw std::runtime_error(s.error().message);
  return std::move(*s);
}

// Every record of every family.
Dump dump(const Store& s) {
  Dump d;
  for (int f = 0; f < static_cast<int>(Family::kCount); ++f)
    if (f != static_cast<int>(Family::kDue))  // derived from schedules, rebuilt on import
    (void)s.scan(static_cast<Family>(f), [&](std::string_view k, std::string_view v) {
      d[{f, std::string(k)}] = std::string(v);
      return true;
    });
  return d;
}

void add_actor(Store& s, const std::string& id, const std::string& name, const std::string& key, int kv_entries) {
  rocksdb::WriteBatch b;
  ActorRow row;
  row.actor_id = id;
  row.name = name;
  row.key = key;
  row.namespace_name = "default";
  row.create_ts = 1700000000000;
  s.put(b, Family::kActors, id, encode(row));
  s.put(b, Family::kKeyIndex, std::string("default") + '\0' + name + '\0' + key, id);
  StateRow st;
  st.state = std::string("\xa1\x61n\x05", 4);
  st.initialized = true;
  s.put(b, Family::kState, id, encode(st));
  for (int i = 0; i < kv_entries; ++i)
    s.put(b, Family::kKv, id + "k" + std::to_string(i), std::string("v\0\xff", 3) + std::to_string(i));
  QueueRow q{1, "jobs", "\x01", 5};
  s.put(b, Family::kQueue, id + std::string(7, '\0') + '\x01', encode(q));
  ASSERT_TRUE(s.write_synced(b).ok());
}

// Only the records of actors whose id is in `ids`.
Dump only(const Dump& d, const std::set<std::string>& ids) {
  Dump out;
  for (const auto& [k, v] : d) {
    const bool index = k.first == static_cast<int>(Family::kKeyIndex);
    const std::string owner = index ? v : k.second.substr(0, 10);
    if (ids.count(owner)) out[k] = v;
  }
  return out;
}

class Archive : public ::testing::Test {
 protected:
  void SetUp() override {
    from_dir_ = anvil::testing::temp_dir("archive-from");
    to_dir_ = anvil::testing::temp_dir("archive-to");
    file_ = anvil::testing::temp_dir("archive-file");
    from_ = open_store(from_dir_);
    add_actor(*from_, "actor00001", "counter", "a", 3);
    add_actor(*from_, "actor00002", "counter", "b", 0);
    add_actor(*from_, "actor00003", "chat", "room/1", 200);
  }
  void TearDown() override {
    from_.reset();
    for (const auto& d : {from_dir_, to_dir_, file_}) std::filesystem::remove_all(d);
  }
  ArchiveProgress export_to_file(const ExportFilter& f) {
    std::ofstream out(file_, std::ios::binary);
    auto r = export_actors(*from_, f, out);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : ArchiveProgress{};
  }
  Result<ArchiveProgress> import_file(Store& s, ImportOptions o = {}) {
    std::ifstream in(file_, std::ios::binary);
    return import_actors(s, in, o);
  }
  std::string from_dir_, to_dir_, file_;
  std::unique_ptr<Store> from_;
};

TEST_F(Archive, ExportThenImportCopiesEveryRecordOfTheChosenActorsByteForByte) {
  ExportFilter f;
  f.name = "counter";
  auto exported = export_to_file(f);
  EXPECT_EQ(exported.actors_done, 2u);
  auto to = open_store(to_dir_);
  auto imported = import_file(*to);
  ASSERT_TRUE(imported.ok()) << imported.error().message;
  EXPECT_EQ(imported->actors_done, 2u);
  EXPECT_EQ(imported->records, exported.records);
  EXPECT_EQ(dump(*to), only(dump(*from_), {"actor00001", "actor00002"}));
}

TEST_F(Archive, EveryActorIsExportedWithoutAFilterAndById) {
  export_to_file({});
  auto to = open_store(to_dir_);
  ASSERT_TRUE(import_file(*to).ok());
  EXPECT_EQ(dump(*to), dump(*from_));
  ExportFilter one;
  one.ids = {"actor00003"};
  EXPECT_EQ(export_to_file(one).actors_done, 1u);
}

TEST_F(Archive, ADamagedOrTruncatedArchiveIsRefusedAndNothingIsWritten) {
  export_to_file({});
  std::string bytes;
  {
    std::ifstream in(file_, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto to = open_store(to_dir_);
  const auto write = [&](const std::string& b) { std::ofstream(file_, std::ios::binary) << b; };
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x20;
  for (const std::string& bad : {flipped, bytes.substr(0, bytes.size() - 5), bytes.substr(0, bytes.size() / 2),
                                 std::string("not an archive at all"), bytes + "x"}) {
    write(bad);
    auto r = import_file(*to);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().qualified(), "archive.invalid") << r.error().message;
    EXPECT_TRUE(dump(*to).empty()) << "nothing written";
  }
}

TEST_F(Archive, AnActorOrKeyAlreadyThereIsAConflictUnlessReplaced) {
  ExportFilter f;
  f.ids = {"actor00001"};
  export_to_file(f);
  auto to = open_store(to_dir_);
  add_actor(*to, "actor00001", "counter", "a", 0);
  add_actor(*to, "actor00009", "other", "z", 1);
  const Dump before = dump(*to);
  auto r = import_file(*to);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "archive.conflict");
  EXPECT_EQ(dump(*to), before);
  ImportOptions replace;
  replace.replace = true;
  ASSERT_TRUE(import_file(*to, replace).ok());
  Dump expected = only(dump(*from_), {"actor00001"});
  for (const auto& [k, v] : only(before, {"actor00009"})) expected[k] = v;
  EXPECT_EQ(dump(*to), expected) << "the old actor's records are gone, the archive's are there";

  // The same key held by another actor id: refused even with replace.
  auto other_dir = anvil::testing::temp_dir("archive-other");
  {
    auto other = open_store(other_dir);
    add_actor(*other, "actor00077", "counter", "a", 0);
    auto clash = import_file(*other, replace);
    ASSERT_FALSE(clash.ok());
    EXPECT_EQ(clash.error().qualified(), "archive.conflict");
  }
  std::filesystem::remove_all(other_dir);
}

}  // namespace
}  // namespace anvil::storage
