// Envoy mode's storage layout: whatever batches an actor's turns write to
// the local RocksDB, replaying their translation on an actor KV (applied
// here with the engine's semantics: put, delete, delete-range, in order)
// and loading it back gives the same rows.
#include "gateway/envoy_kv.hpp"

#include <map>
#include <random>

#include <gtest/gtest.h>

#include "storage/test_dir.hpp"

using namespace anvil;
using namespace anvil::envoy_kv;
using storage::Family;

namespace {

constexpr size_t kIdLen = 30;
const std::string kA(30, 'a');
const std::string kB(29, 'b');  // + "c": another actor
const std::string kB2 = kB + "c";

// One actor's KV as the engine keeps it.
using Kv = std::map<Bytes, Bytes, BytesLess>;

// Applies requests with the engine's semantics, checking its limits.
void apply(Kv& kv, const envoy::KvRequestData& r) {
  if (auto* p = std::get_if<envoy::KvPutRequest>(&r)) {
    ASSERT_EQ(p->keys.size(), p->values.size());
    ASSERT_LE(p->keys.size(), kMaxKeysPerRequest);
    size_t payload = 0;
    for (size_t i = 0; i < p->keys.size(); ++i) {
      ASSERT_LE(p->keys[i].size(), kMaxKeyBytes);
      ASSERT_LE(p->values[i].size(), kMaxValueBytes);
      payload += p->keys[i].size() + p->values[i].size();
      kv[p->keys[i]] = p->values[i];
    }
    ASSERT_LE(payload, 976u * 1024);
  } else if (auto* d = std::get_if<envoy::KvDeleteRequest>(&r)) {
    ASSERT_LE(d->keys.size(), kMaxKeysPerRequest);
    for (const auto& k : d->keys) kv.erase(k);
  } else if (auto* dr = std::get_if<envoy::KvDeleteRangeRequest>(&r)) {
    kv.erase(kv.lower_bound(dr->start), kv.lower_bound(dr->end));
  } else {
    FAIL() << "unexpected request kind " << r.index();
  }
}

class Layout : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = storage::Store::open(
        {anvil::testing::temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name())});
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
  }

  // Writes `b` locally and replays its translation on the engine's KVs.
  void commit(rocksdb::WriteBatch b) {
    std::vector<std::pair<uint64_t, const rocksdb::WriteBatch*>> batches{{++seq_, &b}};
    auto t = translate(*store_, batches, kIdLen, [this] { return ++nonce_; });
    ASSERT_TRUE(t.failed.empty()) << t.failed.front().second.message;
    for (const auto& w : t.actors) {
      EXPECT_EQ(w.seqs, std::vector<uint64_t>{seq_});
      for (const auto& r : w.requests) apply(engine_[w.actor_id], r);
    }
    ASSERT_TRUE(store_->write_synced(b).ok());
  }

  // The actor's rows in the families the engine keeps, locally.
  std::map<std::pair<int, std::string>, std::string> local_rows(const std::string& id) {
    std::map<std::pair<int, std::string>, std::string> out;
    for (Family f : {Family::kActors, Family::kState, Family::kKv, Family::kQueue, Family::kSchedules,
                     Family::kWorkflow, Family::kDbPages})
      (void)store_->scan_prefix(f, id, [&](std::string_view k, std::string_view v) {
        out[{static_cast<int>(f), std::string(k)}] = std::string(v);
        return true;
      });
    return out;
  }

  // The same rows, loaded from the engine's KV.
  std::map<std::pair<int, std::string>, std::string> loaded_rows(const std::string& id, size_t* garbage = nullptr) {
    std::vector<Bytes> keys, values;
    for (const auto& [k, v] : engine_[id]) {
      keys.push_back(k);
      values.push_back(v);
    }
    auto l = load(id, keys, values);
    EXPECT_TRUE(l.ok()) << l.error().message;
    std::map<std::pair<int, std::string>, std::string> out;
    if (!l.ok()) return out;
    for (auto& [f, k, v] : l->rows) out[{static_cast<int>(f), k}] = v;
    if (garbage) *garbage = l->garbage.size();
    return out;
  }

  std::unique_ptr<storage::Store> store_;
  std::map<std::string, Kv> engine_;
  uint64_t seq_ = 0, nonce_ = 0;
};

std::string blob(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 31 + (i >> 9));
  return s;
}

}  // namespace

TEST_F(Layout, RowsOfEachFamilyRoundTripAndLocalIndexesStayLocal) {
  rocksdb::WriteBatch b;
  store_->put(b, Family::kActors, kA, "record");
  store_->put(b, Family::kState, kA, "state");
  store_->put(b, Family::kKv, kA + "user-key", "v");
  store_->put(b, Family::kQueue, kA + std::string("\0\0\0\0\0\0\0\1", 8), "msg");
  store_->put(b, Family::kSchedules, kA + "s1", "sched");
  store_->put(b, Family::kWorkflow, kA, "root");
  store_->put(b, Family::kWorkflow, kA + "/step", "rec");
  store_->put(b, Family::kDbPages, kA + std::string("\0\0\0\1", 4), std::string(4096, 'p'));
  store_->put(b, Family::kKeyIndex, "default\0counter\0k", kA);
  store_->put(b, Family::kDue, std::string(8, '\0') + kA + "s1", "");
  commit(std::move(b));
  ASSERT_EQ(engine_.size(), 1u);  // the key and due indexes made no actor of their own
  EXPECT_EQ(loaded_rows(kA), local_rows(kA));
  EXPECT_EQ(engine_[kA].size(), 8u);
  // A row is its tag and the local key after the id; the value a header byte and the bytes.
  EXPECT_EQ(engine_[kA].at(Bytes{0x02}), (Bytes{0x00, 's', 't', 'a', 't', 'e'}));
}

TEST_F(Layout, RowsLargerThanTheEnginesValueLimitGoInChunksAndOverwritesLeaveNoChunkBehind) {
  for (size_t size : {kMaxValueBytes - 1, kMaxValueBytes, 3 * kMaxValueBytes + 17, size_t(1024 * 1024)}) {
    rocksdb::WriteBatch b;
    store_->put(b, Family::kState, kA, blob(size, static_cast<char>(size)));
    commit(std::move(b));
    size_t garbage = 99;
    EXPECT_EQ(loaded_rows(kA, &garbage), local_rows(kA)) << size;
    EXPECT_EQ(garbage, 0u) << "a chunked overwrite deletes the chunks of the row it replaces";
  }
  // Smaller again: the old chunks are left (the node does not know they
  // exist) and reported as garbage when the actor is next loaded.
  rocksdb::WriteBatch small;
  store_->put(small, Family::kState, kA, "small");
  commit(std::move(small));
  size_t garbage = 0;
  EXPECT_EQ(loaded_rows(kA, &garbage), local_rows(kA));
  EXPECT_EQ(garbage, 8u);
}

TEST_F(Layout, DeletesAndPrefixDeletesOfOneActorLeaveTheOthersAlone) {
  rocksdb::WriteBatch b;
  for (int i = 0; i < 300; ++i) {  // more keys than one request takes
    store_->put(b, Family::kKv, kA + "k" + std::to_string(i), blob(100, static_cast<char>(i)));
    store_->put(b, Family::kKv, kB2 + "k" + std::to_string(i), "b");
  }
  store_->put(b, Family::kState, kA, blob(200 * 1024, 'x'));
  commit(std::move(b));
  ASSERT_EQ(loaded_rows(kA), local_rows(kA));
  rocksdb::WriteBatch d;
  store_->del(d, Family::kKv, kA + "k7");
  store_->del_prefix(d, Family::kKv, kA + "k1");  // k1, k10.., k100..
  commit(std::move(d));
  EXPECT_EQ(loaded_rows(kA), local_rows(kA));
  EXPECT_EQ(loaded_rows(kB2), local_rows(kB2));
  // Destroy-style: every family of the actor.
  rocksdb::WriteBatch all;
  store_->del(all, Family::kState, kA);
  store_->del_prefix(all, Family::kKv, kA);
  commit(std::move(all));
  EXPECT_TRUE(local_rows(kA).empty());
  size_t garbage = 0;
  EXPECT_TRUE(loaded_rows(kA, &garbage).empty());
  EXPECT_EQ(loaded_rows(kB2), local_rows(kB2));
}

TEST_F(Layout, ALaterWriteOfAKeyInOneBatchWins) {
  rocksdb::WriteBatch b;
  store_->put(b, Family::kKv, kA + "x", "1");
  store_->put(b, Family::kKv, kA + "x", "2");
  store_->del(b, Family::kKv, kA + "y");
  store_->put(b, Family::kKv, kA + "y", "3");
  store_->put(b, Family::kKv, kA + "z", "4");
  store_->del(b, Family::kKv, kA + "z");
  commit(std::move(b));
  EXPECT_EQ(loaded_rows(kA), local_rows(kA));
}

TEST_F(Layout, RandomHistoriesRoundTrip) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    rocksdb::WriteBatch b;
    const int ops = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < ops; ++i) {
      const std::string& id = (rng() % 2) ? kA : kB2;
      const std::string key = id + "k" + std::to_string(rng() % 40);
      switch (rng() % 6) {
        case 0: store_->del(b, Family::kKv, key); break;
        case 1: store_->del_prefix(b, Family::kKv, id + "k" + std::to_string(rng() % 4)); break;
        case 2: store_->put(b, Family::kKv, key, blob(kMaxValueBytes + rng() % 300000, static_cast<char>(i))); break;
        default: store_->put(b, Family::kKv, key, blob(rng() % 2000, static_cast<char>(i))); break;
      }
    }
    commit(std::move(b));
    ASSERT_EQ(loaded_rows(kA), local_rows(kA)) << "round " << round;
    ASSERT_EQ(loaded_rows(kB2), local_rows(kB2)) << "round " << round;
  }
}

TEST_F(Layout, KeysTooLongForTheEngineFailTheirBatchWhole) {
  rocksdb::WriteBatch b;
  store_->put(b, Family::kKv, kA + "ok", "1");
  store_->put(b, Family::kKv, kA + std::string(3000, 'k'), "2");
  std::vector<std::pair<uint64_t, const rocksdb::WriteBatch*>> batches{{5, &b}};
  auto t = translate(*store_, batches, kIdLen, [] { return 1; });
  ASSERT_EQ(t.failed.size(), 1u);
  EXPECT_EQ(t.failed[0].first, 5u);
  EXPECT_EQ(t.failed[0].second.qualified(), "envoy.key_too_large");
  EXPECT_EQ(t.failed_actors, std::vector<std::string>{kA});  // handed back to the engine by the envoy
  EXPECT_TRUE(t.actors.empty());
}

TEST_F(Layout, ACorruptRowIsAnErrorNotAGuess) {
  auto l = load(kA, {Bytes{0x02}}, {Bytes{0x07, 1, 2}});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().qualified(), "envoy.invalid_kv");
  Bytes manifest{0x01};
  for (int i = 0; i < 20; ++i) manifest.push_back(i == 11 ? 2 : 0);  // 2 chunks, none stored
  auto missing = load(kA, {Bytes{0x02}}, {manifest});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("missing"), std::string::npos);
}

TEST(LayoutMerge, WritesOfSeveralTurnsShareRequestsInOrderWithinTheEnginesLimits) {
  std::vector<envoy::KvRequestData> out;
  RequestBuilder merge(out);
  merge.add( envoy::KvPutRequest{{Bytes{1}}, {Bytes{'a'}}});
  merge.add(envoy::KvPutRequest{{Bytes{2}, Bytes{1}}, {Bytes{'b'}, Bytes{'c'}}});  // 1 again: the later wins
  ASSERT_EQ(out.size(), 1u);
  auto& put = std::get<envoy::KvPutRequest>(out[0]);
  EXPECT_EQ(put.keys, (std::vector<Bytes>{Bytes{1}, Bytes{2}}));
  EXPECT_EQ(put.values, (std::vector<Bytes>{Bytes{'c'}, Bytes{'b'}}));
  // A delete after a put stays after it; deletes merge with deletes.
  merge.add(envoy::KvDeleteRequest{{Bytes{1}}});
  merge.add(envoy::KvDeleteRequest{{Bytes{3}}});
  merge.add(envoy::KvPutRequest{{Bytes{1}}, {Bytes{'d'}}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(std::get<envoy::KvDeleteRequest>(out[1]).keys, (std::vector<Bytes>{Bytes{1}, Bytes{3}}));
  // Limits: no request over 128 keys or the put payload.
  std::vector<envoy::KvRequestData> many;
  RequestBuilder merge_many(many);
  for (int i = 0; i < 300; ++i)
    merge_many.add(envoy::KvPutRequest{{Bytes{static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)}}, {Bytes(100, 'v')}});
  EXPECT_EQ(many.size(), 3u);
  std::vector<envoy::KvRequestData> big;
  RequestBuilder merge_big(big);
  for (int i = 0; i < 20; ++i)
    merge_big.add(envoy::KvPutRequest{{Bytes{static_cast<uint8_t>(i)}}, {Bytes(100 * 1024, 'v')}});
  for (const auto& r : big) {
    size_t bytes = 0;
    for (const auto& v : std::get<envoy::KvPutRequest>(r).values) bytes += v.size() + 1;
    EXPECT_LE(bytes, kMaxPutPayload);
  }
  EXPECT_GE(big.size(), 3u);
  // Merged requests replay to the same KV as the unmerged ones.
  Kv merged, plain;
  std::mt19937 rng(3);
  std::vector<envoy::KvRequestData> reqs, joined;
  RequestBuilder join(joined);
  for (int i = 0; i < 500; ++i) {
    const uint8_t k = static_cast<uint8_t>(rng() % 20);
    envoy::KvRequestData r;
    if (rng() % 3 == 0)
      r = envoy::KvDeleteRequest{{Bytes{k}}};
    else
      r = envoy::KvPutRequest{{Bytes{k}}, {Bytes{static_cast<uint8_t>(i)}}};
    reqs.push_back(r);
    join.add(r);
  }
  for (const auto& r : reqs) apply(plain, r);
  for (const auto& r : joined) apply(merged, r);
  EXPECT_EQ(merged, plain);
  EXPECT_LT(joined.size(), reqs.size());
}
