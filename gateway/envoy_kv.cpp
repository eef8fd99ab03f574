#include "gateway/envoy_kv.hpp"

#include <map>
#include <memory>
#include <set>

namespace anvil::envoy_kv {

namespace {

using storage::Family;

// The families an actor's rows live in, and their tags (layout 1).
std::optional<uint8_t> tag_of(Family f) {
  switch (f) {
    case Family::kActors: return 0x01;
    case Family::kState: return 0x02;
    case Family::kKv: return 0x03;
    case Family::kQueue: return 0x04;
    case Family::kSchedules: return 0x05;
    case Family::kWorkflow: return 0x06;
    case Family::kDbPages: return 0x07;
    default: return std::nullopt;  // kKeyIndex, kDue: the node's own
  }
}

std::optional<Family> family_of_tag(uint8_t tag) {
  switch (tag) {
    case 0x01: return Family::kActors;
    case 0x02: return Family::kState;
    case 0x03: return Family::kKv;
    case 0x04: return Family::kQueue;
    case 0x05: return Family::kSchedules;
    case 0x06: return Family::kWorkflow;
    case 0x07: return Family::kDbPages;
    default: return std::nullopt;
  }
}

void put_be(Bytes& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t get_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// The smallest key after every key starting with `p` (p is never all 0xff here).
Bytes after_prefix(Bytes p) {
  while (!p.empty() && p.back() == 0xff) p.pop_back();
  if (!p.empty()) ++p.back();
  return p;
}

Bytes chunk_key(uint8_t tag, std::string_view suffix, uint64_t nonce, uint32_t i) {
  Bytes k = chunk_prefix(tag, suffix);
  put_be(k, nonce, 8);
  put_be(k, i, 4);
  return k;
}

struct Op {
  enum Kind { Put, Delete, DeleteRange } kind;
  Family family;
  std::string key, value_or_end;
};

// Collects a batch's operations (column family ids mapped to families).
class Collector : public rocksdb::WriteBatch::Handler {
 public:
  Collector(const storage::Store& store, std::vector<Op>& ops) : store_(store), ops_(ops) {}
  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
    return add(Op::Put, cf, k, v);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& k) override { return add(Op::Delete, cf, k, {}); }
  rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& k) override { return add(Op::Delete, cf, k, {}); }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& b, const rocksdb::Slice& e) override {
    return add(Op::DeleteRange, cf, b, e);
  }
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    return rocksdb::Status::NotSupported("merge operations are not replicated");
  }

 private:
  rocksdb::Status add(Op::Kind kind, uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) {
    auto f = store_.family_of(cf);
    if (!f) return rocksdb::Status::OK();  // the default family: the node's settings
    ops_.push_back(Op{kind, *f, k.ToString(), v.ToString()});
    return rocksdb::Status::OK();
  }
  const storage::Store& store_;
  std::vector<Op>& ops_;
};

}  // namespace

RequestBuilder::RequestBuilder(std::vector<envoy::KvRequestData>& out) : out_(out) {}

void RequestBuilder::put(Bytes key, Bytes value) {
  flush_deletes();
  const size_t size = key.size() + value.size();
  if (auto it = put_index_.find(key); it != put_index_.end()) {  // a later write of the same key wins
    auto& p = std::get<envoy::KvPutRequest>(out_.back());
    put_bytes_ += value.size();
    put_bytes_ -= p.values[it->second].size();
    p.values[it->second] = std::move(value);
    return;
  }
  if (!in_put_ || put_keys_ >= kMaxKeysPerRequest || put_bytes_ + size > kMaxPutPayload) start_put();
  auto& p = std::get<envoy::KvPutRequest>(out_.back());
  put_index_[key] = p.keys.size();
  p.keys.push_back(std::move(key));
  p.values.push_back(std::move(value));
  ++put_keys_;
  put_bytes_ += size;
}

void RequestBuilder::del(Bytes key) {
  flush_puts();
  if (del_keys_.count(key)) return;
  if (!in_delete_ || del_keys_.size() >= kMaxKeysPerRequest) {
    out_.emplace_back(envoy::KvDeleteRequest{});
    in_delete_ = true;
    del_keys_.clear();
  }
  del_keys_.insert(key);
  std::get<envoy::KvDeleteRequest>(out_.back()).keys.push_back(std::move(key));
}

void RequestBuilder::del_range(Bytes start, Bytes end) {
  flush_puts();
  flush_deletes();
  out_.emplace_back(envoy::KvDeleteRangeRequest{std::move(start), std::move(end)});
}

void RequestBuilder::add(envoy::KvRequestData r) {
  if (auto* put = std::get_if<envoy::KvPutRequest>(&r)) {
    for (size_t i = 0; i < put->keys.size() && i < put->values.size(); ++i)
      this->put(std::move(put->keys[i]), std::move(put->values[i]));
  } else if (auto* d = std::get_if<envoy::KvDeleteRequest>(&r)) {
    for (auto& k : d->keys) del(std::move(k));
  } else if (auto* dr = std::get_if<envoy::KvDeleteRangeRequest>(&r)) {
    del_range(std::move(dr->start), std::move(dr->end));
  } else {
    flush_puts();
    flush_deletes();
    out_.push_back(std::move(r));
  }
}

void RequestBuilder::start_put() {
  out_.emplace_back(envoy::KvPutRequest{});
  in_put_ = true;
  put_keys_ = 0;
  put_bytes_ = 0;
  put_index_.clear();
}
void RequestBuilder::flush_puts() {
  in_put_ = false;
  put_index_.clear();
}
void RequestBuilder::flush_deletes() {
  in_delete_ = false;
  del_keys_.clear();
}

Bytes row_key(uint8_t tag, std::string_view suffix) {
  Bytes k;
  k.reserve(1 + suffix.size());
  k.push_back(tag);
  k.insert(k.end(), suffix.begin(), suffix.end());
  return k;
}

Bytes chunk_prefix(uint8_t tag, std::string_view suffix) {
  Bytes k{kChunkTag, tag};
  put_be(k, suffix.size(), 4);
  k.insert(k.end(), suffix.begin(), suffix.end());
  return k;
}

std::optional<EngineKey> engine_key(Family f, std::string_view local_key, size_t id_len) {
  auto tag = tag_of(f);
  if (!tag || local_key.size() < id_len) return std::nullopt;
  return EngineKey{std::string(local_key.substr(0, id_len)), *tag, std::string(local_key.substr(id_len))};
}

Translation translate(const storage::Store& store, const std::vector<std::pair<uint64_t, const rocksdb::WriteBatch*>>& batches,
                      size_t id_len, const std::function<uint64_t()>& nonce) {
  Translation t;
  // Each actor's requests and their builder (which writes into them), in
  // the order actors first appear.
  struct Acc {
    ActorWrites w;
    RequestBuilder b{w.requests};
  };
  std::map<std::string, std::unique_ptr<Acc>> accs;
  std::vector<std::string> order;
  auto actor = [&](const std::string& id, uint64_t seq) -> RequestBuilder& {
    auto& acc = accs[id];
    if (!acc) {
      acc = std::make_unique<Acc>();
      acc->w.actor_id = id;
      order.push_back(id);
    }
    if (acc->w.seqs.empty() || acc->w.seqs.back() != seq) acc->w.seqs.push_back(seq);
    return acc->b;
  };
  for (const auto& [seq, batch] : batches) {
    std::vector<Op> ops;
    Collector c(store, ops);
    if (auto st = batch->Iterate(&c); !st.ok()) {
      t.failed.emplace_back(seq, make_error("envoy", "replication_failed",
                                            "a write cannot be stored in the engine: " + st.ToString()));
      continue;
    }
    // Checked before anything of the batch is translated: a batch goes
    // whole or not at all.
    std::optional<Error> bad;
    std::set<std::string> touched;
    for (const auto& op : ops) {
      auto k = engine_key(op.family, op.key, id_len);
      if (!k) continue;
      touched.insert(k->actor_id);
      const bool chunked = op.kind == Op::Put && op.value_or_end.size() + 1 > kMaxValueBytes;
      const size_t longest = chunked ? chunk_prefix(k->tag, k->suffix).size() + 12 : 1 + k->suffix.size();
      if (longest > kMaxKeyBytes)
        bad = make_error("envoy", "key_too_large",
                         "a storage key of " + std::to_string(op.key.size()) + " bytes is too long for the engine's " +
                             "actor KV (" + std::to_string(kMaxKeyBytes) + " bytes with its prefix)");
    }
    if (bad) {
      t.failed.emplace_back(seq, *bad);
      t.failed_actors.insert(t.failed_actors.end(), touched.begin(), touched.end());
      continue;
    }
    for (const auto& op : ops) {
      auto k = engine_key(op.family, op.key, id_len);
      if (!k) continue;
      RequestBuilder& b = actor(k->actor_id, seq);
      if (op.kind == Op::Put) {
        const std::string& v = op.value_or_end;
        if (v.size() + 1 <= kMaxValueBytes) {
          Bytes value;
          value.reserve(v.size() + 1);
          value.push_back(0x00);
          value.insert(value.end(), v.begin(), v.end());
          b.put(row_key(k->tag, k->suffix), std::move(value));
        } else {
          // New chunks under a new nonce, then the row that names them
          // (so a reader never sees a row with missing chunks), then the
          // chunks of every other nonce go.
          const uint64_t n = nonce();
          const uint32_t count = static_cast<uint32_t>((v.size() + kMaxValueBytes - 1) / kMaxValueBytes);
          for (uint32_t i = 0; i < count; ++i) {
            const size_t at = size_t(i) * kMaxValueBytes;
            const size_t len = std::min(kMaxValueBytes, v.size() - at);
            b.put(chunk_key(k->tag, k->suffix, n, i), bytes_of(std::string_view(v).substr(at, len)));
          }
          Bytes manifest{0x01};
          put_be(manifest, n, 8);
          put_be(manifest, count, 4);
          put_be(manifest, v.size(), 8);
          b.put(row_key(k->tag, k->suffix), std::move(manifest));
          Bytes prefix = chunk_prefix(k->tag, k->suffix);
          Bytes mine = prefix;
          put_be(mine, n, 8);
          b.del_range(prefix, mine);
          b.del_range(after_prefix(mine), after_prefix(prefix));
        }
      } else if (op.kind == Op::Delete) {
        b.del(row_key(k->tag, k->suffix));
      } else {
        // A range within one actor's rows of the family; an end past the
        // actor (the end of its id prefix) is the end of the family.
        Bytes start = row_key(k->tag, k->suffix);
        Bytes end;
        const std::string& e = op.value_or_end;
        if (e.size() >= id_len && e.compare(0, id_len, k->actor_id) == 0)
          end = row_key(k->tag, std::string_view(e).substr(id_len));
        else
          end = Bytes{static_cast<uint8_t>(k->tag + 1)};
        b.del_range(std::move(start), std::move(end));
        if (k->suffix.empty()) {
          // The whole family: its chunks too.
          b.del_range(Bytes{kChunkTag, k->tag}, Bytes{kChunkTag, static_cast<uint8_t>(k->tag + 1)});
        }
      }
    }
  }
  for (const auto& id : order) t.actors.push_back(std::move(accs[id]->w));
  return t;
}

Result<Loaded> load(const std::string& actor_id, const std::vector<Bytes>& keys, const std::vector<Bytes>& values) {
  if (keys.size() != values.size()) return make_error("envoy", "invalid_kv", "KV listing with unequal keys and values");
  Loaded out;
  // Chunks by (row key, nonce) -> index -> bytes (keyed as text: see BytesLess).
  using ChunkId = std::pair<std::string, uint64_t>;
  auto chunk_id = [](const Bytes& row, uint64_t nonce) { return ChunkId(std::string(row.begin(), row.end()), nonce); };
  std::map<ChunkId, std::map<uint32_t, const Bytes*>> chunks;
  std::map<ChunkId, std::vector<Bytes>> chunk_keys;
  struct Big {
    Family family;
    std::string local_key;
    Bytes row;
    uint64_t nonce;
    uint32_t count;
    uint64_t size;
  };
  std::vector<Big> big;
  for (size_t i = 0; i < keys.size(); ++i) {
    const Bytes& k = keys[i];
    const Bytes& v = values[i];
    if (k.empty()) continue;
    if (k[0] == kChunkTag) {
      // Only chunks of a family this layout knows (a later layout's are not ours to delete).
      if (k.size() < 2 + 4 + 12 || !family_of_tag(k[1])) continue;
      const uint64_t len = get_be(k.data() + 2, 4);
      if (k.size() != 2 + 4 + len + 12) continue;
      Bytes row = row_key(k[1], std::string_view(reinterpret_cast<const char*>(k.data()) + 6, len));
      const uint64_t nonce = get_be(k.data() + 6 + len, 8);
      const uint32_t index = static_cast<uint32_t>(get_be(k.data() + 6 + len + 8, 4));
      chunks[chunk_id(row, nonce)][index] = &v;
      chunk_keys[chunk_id(row, nonce)].push_back(k);
      continue;
    }
    auto family = family_of_tag(k[0]);
    if (!family) continue;  // a key of a later layout: not ours to read
    std::string local_key = actor_id;
    local_key.append(reinterpret_cast<const char*>(k.data()) + 1, k.size() - 1);
    if (v.empty()) return make_error("envoy", "invalid_kv", "an engine KV row without its header byte");
    if (v[0] == 0x00) {
      out.rows.emplace_back(*family, std::move(local_key), std::string(v.begin() + 1, v.end()));
    } else if (v[0] == 0x01 && v.size() == 1 + 8 + 4 + 8) {
      big.push_back(Big{*family, std::move(local_key), k, get_be(v.data() + 1, 8),
                        static_cast<uint32_t>(get_be(v.data() + 9, 4)), get_be(v.data() + 13, 8)});
    } else {
      return make_error("envoy", "invalid_kv", "an engine KV row with an unknown header");
    }
  }
  for (auto& b : big) {
    auto it = chunks.find(chunk_id(b.row, b.nonce));
    std::string value;
    value.reserve(b.size);
    for (uint32_t i = 0; i < b.count; ++i) {
      const Bytes* part = nullptr;
      if (it != chunks.end())
        if (auto p = it->second.find(i); p != it->second.end()) part = p->second;
      if (!part)
        return make_error("envoy", "invalid_kv",
                          "a large row's chunk " + std::to_string(i) + " of " + std::to_string(b.count) +
                              " is missing from the engine");
      value.append(part->begin(), part->end());
    }
    if (value.size() != b.size) return make_error("envoy", "invalid_kv", "a large row's chunks do not add up");
    out.rows.emplace_back(b.family, std::move(b.local_key), std::move(value));
    chunk_keys.erase(chunk_id(b.row, b.nonce));
  }
  for (auto& [_, ks] : chunk_keys)
    for (auto& k : ks) out.garbage.push_back(std::move(k));
  return out;
}

}  // namespace anvil::envoy_kv
