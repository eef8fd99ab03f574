// The node's RocksDB: one database, one column family per kind of record.
// Keys start with the fixed-width actor id, so one actor's data is one
// contiguous range in every family (destroy = range delete).
//
// After a disk-full error the database is closed and opened again
// (reopen()) rather than resumed in place: Debian's RocksDB 7.8 reuses the
// WAL writer that saw the error, which aborts (see docs/architecture.md,
// "RocksDB: Debian's build"). Every read holds db_mu_ shared; only reopen()
// takes it exclusively.
#pragma once

#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
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
  kDbPages,     // actor id + u32 BE page number -> one 4 KiB page of the actor's SQLite file
  kDue,         // u64 BE due time (ms) + actor id + schedule id -> "" (schedules in time order;
                // derived from kSchedules, see storage/records.hpp due_key)
  kCount
};

struct StoreOptions {
  std::string path;
  bool create_if_missing = true;
  // The file system RocksDB writes through; null = the real one. Tests pass
  // a FaultFs (storage/fault_fs.hpp) to cut power or fill the disk.
  std::shared_ptr<rocksdb::FileSystem> file_system = nullptr;
  // Give each WAL file its space ahead of the writes (storage/wal_prealloc.hpp):
  // a commit's fdatasync then writes the data only, not the inode too.
  bool preallocate_wal = true;
};

// The smallest key greater than every key starting with `prefix`; empty
// when there is none (the prefix is all 0xff bytes, or empty).
std::string prefix_end(std::string_view prefix);

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const StoreOptions& opts);
  // Opens the database at `path` read-only as a RocksDB *secondary*
  // instance: safe while a node holds it open (no lock taken, nothing
  // written there); the view is the primary's as of the open, WAL included.
  // Its own info files go to `secondary_path`, which must be private to the
  // reader. Writes fail. For the operator CLI (tools/actors_cli.cpp).
  static Result<std::unique_ptr<Store>> open_secondary(const std::string& path, const std::string& secondary_path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Point read; nullopt when absent. Errors are storage failures only.
  Result<std::optional<std::string>> get(Family f, std::string_view key) const;

  // Visits every (key, value) of a family in key order; stop by returning false.
  template <typename Fn>
  Status scan(Family f, Fn&& fn) const {
    std::shared_lock lk(db_mu_);
    if (!db_) return closed_error();
    if (!cf(f)) return Ok{};  // a family this (older) directory lacks: empty
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(f)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!fn(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size())))
        break;
    }
    if (!it->status().ok()) return storage_error(it->status());
    return Ok{};
  }

  // Visits every (key, value) of a family from the first key >= `start`, in
  // key order; stop by returning false.
  template <typename Fn>
  Status scan_from(Family f, std::string_view start, Fn&& fn) const {
    std::shared_lock lk(db_mu_);
    if (!db_) return closed_error();
    if (!cf(f)) return Ok{};  // a family this (older) directory lacks: empty
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(f)));
    for (it->Seek(rocksdb::Slice(start.data(), start.size())); it->Valid(); it->Next()) {
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
    std::shared_lock lk(db_mu_);
    if (!db_) return closed_error();
    if (!cf(f)) return Ok{};  // a family this (older) directory lacks: empty
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

  // The family a batch operation's column family id names (WriteBatch
  // handlers see ids); nullopt for the default family or an unknown id.
  std::optional<Family> family_of(uint32_t column_family_id) const;

  // The data directory's own settings (RocksDB's default family, which
  // holds nothing else): e.g. "actor_id_length" (runtime/actor_id.hpp).
  // put_meta writes synchronously; call it before serving, never from a turn.
  Result<std::optional<std::string>> get_meta(std::string_view key) const;
  Status put_meta(std::string_view key, std::string_view value);

  // Synchronous durable write (WAL fsync) — used by the commit pipeline only.
  // Errors: storage.disk_full (ENOSPC: nothing of `b` is readable, and
  // reopen() brings writes back once there is room) or storage.io_error (anything else).
  Status write_synced(rocksdb::WriteBatch& b);
  // Leaves RocksDB's stopped-after-an-error state by closing the database
  // (without a flush: every acknowledged write is in the synced WAL) and
  // opening it again, which replays the WAL, drops a torn tail, flushes to
  // new table files and starts a fresh WAL. Succeeds only once the disk has
  // room again; until then the database is open read-only so reads go on.
  // Called by the commit pipeline's thread only, never while it writes.
  Status reopen();
  // Appends every operation of `src` to `dst` (same order).
  Status append(rocksdb::WriteBatch& dst, const rocksdb::WriteBatch& src) const;
  // One batch holding every operation of `batches`, in order, built by
  // joining their records (RocksDB's documented WriteBatch format: a 12-byte
  // header of sequence and count, then the records) without re-encoding.
  static rocksdb::WriteBatch concat(const std::vector<const rocksdb::WriteBatch*>& batches);

  // What RocksDB reports about itself, summed over the column families, and
  // the data directory's file system (for /metrics).
  struct Stats {
    uint64_t sst_bytes = 0;                 // rocksdb.live-sst-files-size
    uint64_t memtable_bytes = 0;            // rocksdb.cur-size-all-mem-tables
    uint64_t pending_compaction_bytes = 0;  // rocksdb.estimate-pending-compaction-bytes
    uint64_t running_compactions = 0;       // rocksdb.num-running-compactions
    uint64_t write_stopped = 0;             // rocksdb.is-write-stopped (0/1)
    uint64_t delayed_write_rate = 0;        // rocksdb.actual-delayed-write-rate (bytes/s, 0 = none)
    uint64_t fs_free_bytes = 0, fs_total_bytes = 0;
  };
  Stats stats() const;
  // RocksDB's estimate of the number of keys in a family
  // (rocksdb.estimate-num-keys: exact for plain puts, approximate once
  // overwrites and deletes are waiting for compaction). O(1).
  uint64_t estimate_keys(Family f) const;
  // Compacts the whole family (RocksDB CompactRange): reclaims the space of
  // deleted and overwritten records. Blocks until done.
  Status compact(Family f);
  // "actors", "key_index", "state", "kv", "queue", "schedules", "workflow", "db_pages", "due".
  static const char* family_name(Family f);

  // storage.disk_full for ENOSPC, storage.io_error for everything else; the
  // message names the RocksDB status.
  static Error storage_error(const rocksdb::Status& s);

 private:
  class FamilyId;
  Store() = default;
  static Error closed_error();
  rocksdb::Status open_db(bool read_only);  // caller holds db_mu_ exclusively
  void close_db();                          // caller holds db_mu_ exclusively
  rocksdb::ColumnFamilyHandle* cf(Family f) const { return cfs_[static_cast<int>(f)]; }
  // A handle for building batches: the family's id only, valid whatever
  // happens to the database (a batch names families by id).
  rocksdb::ColumnFamilyHandle* batch_cf(Family f) const;

  StoreOptions opts_;
  std::string secondary_path_;  // non-empty: a secondary instance (open_secondary)
  std::unique_ptr<rocksdb::Env> env_;  // wraps StoreOptions::file_system; outlives db_
  mutable std::shared_mutex db_mu_;
  std::unique_ptr<rocksdb::DB> db_;                // GUARDED_BY(db_mu_)
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;  // GUARDED_BY(db_mu_), by Family
  std::vector<std::unique_ptr<FamilyId>> ids_;     // by Family; fixed after open()
};

}  // namespace anvil::storage
