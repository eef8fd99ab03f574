// The node's RocksDB: one database, one column family per kind of record.
// Keys start with the fixed-width actor id, so one actor's data is one
// contiguous range in every family (destroy = range delete).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "base/value/error.hpp"

namespace anvil::storage {

enum class Family : int {
  kActors = 0,  // actor id -> schema::ActorRecord
  kKeyIndex,    // namespace \0 name \0 serialized key -> actor id
  kState,       // actor id -> schema::StateRecord
  kKv,          // actor id + user key -> bytes (actor KV)
  kQueue,       // actor id + u64 BE message id -> schema::QueueRecord
  kSchedules,   // actor id + schedule id -> schema::ScheduleRecord
  kWorkflow,    // actor id + history path -> schema::WorkflowRecord
  kCount
};

struct StoreOptions {
  std::string path;
  bool create_if_missing = true;
};

// The smallest key greater than every key starting with `prefix`; empty
// when there is none (the prefix is all 0xff bytes, or empty).
std::string prefix_end(std::string_view prefix);

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const StoreOptions& opts);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Point read; nullopt when absent. Errors are storage failures only.
  Result<std::optional<std::string>> get(Family f, std::string_view key) const;

  // Visits every (key, value) of a family in key order; stop by returning false.
  template <typename Fn>
  Status scan(Family f, Fn&& fn) const {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(f)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!fn(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size())))
        break;
    }
    if (!it->status().ok()) return storage_error(it->status());
    return Ok{};
  }

  // Visits the keys of `f` starting with `prefix`, in key order.
  template <typename Fn>
  Status scan_prefix(Family f, std::string_view prefix, Fn&& fn) const {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(f)));
    rocksdb::Slice p(prefix.data(), prefix.size());
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      if (!fn(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size())))
        break;
    }
    if (!it->status().ok()) return storage_error(it->status());
    return Ok{};
  }

  // Batch building helpers (the batch is committed by CommitPipeline).
  void put(rocksdb::WriteBatch& b, Family f, std::string_view k, std::string_view v) const;
  void del(rocksdb::WriteBatch& b, Family f, std::string_view k) const;
  // Deletes every key of `f` that starts with `prefix`.
  void del_prefix(rocksdb::WriteBatch& b, Family f, std::string_view prefix) const;

  // Synchronous durable write (WAL fsync) — used by the commit pipeline only.
  Status write_synced(rocksdb::WriteBatch& b);
  // Appends every operation of `src` to `dst` (same order).
  Status append(rocksdb::WriteBatch& dst, const rocksdb::WriteBatch& src) const;
  // One batch holding every operation of `batches`, in order, built by
  // joining their records (RocksDB's documented WriteBatch format: a 12-byte
  // header of sequence and count, then the records) without re-encoding.
  static rocksdb::WriteBatch concat(const std::vector<const rocksdb::WriteBatch*>& batches);

  static Error storage_error(const rocksdb::Status& s);
  rocksdb::ColumnFamilyHandle* cf(Family f) const { return cfs_[static_cast<int>(f)]; }

 private:
  Store() = default;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
};

}  // namespace anvil::storage
