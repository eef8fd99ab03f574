// Envoy mode's storage layout: an actor's rows in the Rivet Engine's actor
// KV (docs/envoy.md, "Storage layout"). The node writes every actor row to
// its local RocksDB first (the commit pipeline, as on a single node) and
// then to the engine (the pipeline's replication stage); an actor started
// on a node loads its rows from the engine. Pure functions: batches in,
// KV requests out; KV entries in, local rows out.
//
// Layout 1 (keys are relative to the actor; the engine keeps one key space
// per actor):
//   [tag] + the local key without the actor id    one row
//     tag 0x01 actor record, 0x02 state, 0x03 KV, 0x04 queue,
//         0x05 schedules, 0x06 workflow, 0x07 SQLite pages
//   value: 0x00 + the row's bytes                  (rows up to 128 KiB - 1)
//          0x01 + u64 BE nonce + u32 BE chunks + u64 BE size   (larger rows)
//   [0x0F][tag][u32 BE suffix length][suffix][u64 BE nonce][u32 BE i]
//          chunk i of a larger row (each up to 128 KiB)
// The key index and the due-time index are the node's own: the engine
// decides which actor a key names, and the due index is rebuilt from the
// schedules when an actor is loaded.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <rocksdb/write_batch.h>

#include "gateway/codec/envoy.hpp"
#include "storage/store.hpp"

namespace anvil::envoy_kv {

// The engine's limits (pegboard actor_kv; two confirmed against 2.3.19).
inline constexpr size_t kMaxKeysPerRequest = 128;
inline constexpr size_t kMaxValueBytes = 128 * 1024;
inline constexpr size_t kMaxKeyBytes = 2045;  // the engine's 2048 less its 2-byte framing, less 1 for paging
inline constexpr size_t kMaxPutPayload = 900 * 1024;  // the engine allows 976 KiB

inline constexpr uint8_t kChunkTag = 0x0F;

// Byte-wise order of keys, as the engine sorts them (std::less<Bytes> trips
// a false -Wstringop-overread in GCC 12).
struct BytesLess {
  bool operator()(const Bytes& a, const Bytes& b) const {
    const size_t n = std::min(a.size(), b.size());
    const int c = n ? std::memcmp(a.data(), b.data(), n) : 0;
    return c < 0 || (c == 0 && a.size() < b.size());
  }
};

// The engine key of a local row of family `f`; nullopt for a family kept
// only locally (key index, due index) or a key too short to hold an id.
struct EngineKey {
  std::string actor_id;
  uint8_t tag = 0;
  std::string suffix;  // the local key after the actor id
};
std::optional<EngineKey> engine_key(storage::Family f, std::string_view local_key, size_t id_len);
Bytes row_key(uint8_t tag, std::string_view suffix);
Bytes chunk_prefix(uint8_t tag, std::string_view suffix);  // every chunk of one row (any nonce)

// One actor's writes out of some batches, as the KV requests that replay
// them in order (the engine applies one actor's requests in order).
struct ActorWrites {
  std::string actor_id;
  std::vector<envoy::KvRequestData> requests;
  std::vector<uint64_t> seqs;  // the batches they came from
};
struct Translation {
  std::vector<ActorWrites> actors;
  std::vector<std::pair<uint64_t, Error>> failed;  // batches that cannot be stored in the engine
  std::vector<std::string> failed_actors;          // the actors those batches wrote to
};
// `nonce`: a source of unique 64-bit numbers (chunked rows).
Translation translate(const storage::Store& store, const std::vector<std::pair<uint64_t, const rocksdb::WriteBatch*>>& batches,
                      size_t id_len, const std::function<uint64_t()>& nonce);

// Builds one actor's request list in order: runs of puts and of deletes
// share requests up to the engine's limits (a later put of a key replaces
// an earlier one in its run); a range delete goes alone. Used for one
// batch's rows (translate) and to merge the requests of several turns into
// the next engine write (add), so they travel together, applied in order.
class RequestBuilder {
 public:
  explicit RequestBuilder(std::vector<envoy::KvRequestData>& out);
  void put(Bytes key, Bytes value);
  void del(Bytes key);
  void del_range(Bytes start, Bytes end);
  void add(envoy::KvRequestData request);  // its keys, as above; other kinds go alone

 private:
  void start_put();
  void flush_puts();
  void flush_deletes();

  std::vector<envoy::KvRequestData>& out_;
  bool in_put_ = false, in_delete_ = false;
  size_t put_keys_ = 0, put_bytes_ = 0;
  std::map<Bytes, size_t, BytesLess> put_index_;
  std::set<Bytes, BytesLess> del_keys_;
};

// The local rows of an actor from all of its engine entries (as listed,
// any order): (family, local key, value). Chunks that no row refers to
// (left by an overwrite or a delete) come back in `garbage`, for deletion.
struct Loaded {
  std::vector<std::tuple<storage::Family, std::string, std::string>> rows;
  std::vector<Bytes> garbage;
};
Result<Loaded> load(const std::string& actor_id, const std::vector<Bytes>& keys, const std::vector<Bytes>& values);

}  // namespace anvil::envoy_kv
