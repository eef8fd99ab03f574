#include "storage/store.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <spdlog/spdlog.h>

#include "storage/wal_prealloc.hpp"

namespace anvil::storage {
namespace {
constexpr const char* kFamilyNames[] = {"actors", "key_index", "state", "kv", "queue", "schedules", "workflow",
                                       "db_pages", "due"};
static_assert(std::size(kFamilyNames) == static_cast<size_t>(Family::kCount));

// RocksDB's own log goes to the node's log, not to a LOG file in the data
// directory: Debian's 7.8 build writes LOG through a file writer that,
// after one failed append on a full disk, aborts on the next log line
// (docs/architecture.md, "RocksDB: Debian's build").
class SpdlogLogger : public rocksdb::Logger {
 public:
  SpdlogLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    const auto lvl = level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? spdlog::level::err
                     : level >= rocksdb::InfoLogLevel::WARN_LEVEL ? spdlog::level::warn
                                                                  : spdlog::level::debug;
    if (!spdlog::should_log(lvl)) return;
    char buf[1024];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(buf, sizeof buf, format, copy);
    va_end(copy);
    std::string_view line(buf, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
    while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    spdlog::log(lvl, "rocksdb: {}", line);
  }
};

}  // namespace

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c != 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return end;
}

Error Store::storage_error(const rocksdb::Status& s) {
  if (s.IsNoSpace()) return make_error("storage", "disk_full", s.ToString());
  return make_error("storage", "io_error", s.ToString());
}

class Store::FamilyId : public rocksdb::ColumnFamilyHandle {
 public:
  FamilyId(std::string name, uint32_t id) : name_(std::move(name)), id_(id) {}
  const std::string& GetName() const override { return name_; }
  uint32_t GetID() const override { return id_; }
  rocksdb::Status GetDescriptor(rocksdb::ColumnFamilyDescriptor*) override {
    return rocksdb::Status::NotSupported("a batch-building handle");
  }
  const rocksdb::Comparator* GetComparator() const override { return rocksdb::BytewiseComparator(); }

 private:
  std::string name_;
  uint32_t id_;
};

Error Store::closed_error() {
  return make_error("storage", "io_error", "The database is closed after a storage failure.");
}

rocksdb::Status Store::open_db(bool read_only) {
  rocksdb::Options options;
  options.create_if_missing = opts_.create_if_missing;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  // Durability comes from synced WAL writes; keep recovery strict so a torn
  // tail is dropped rather than half-applied.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  if (env_) options.env = env_.get();
  options.info_log = std::make_shared<SpdlogLogger>();
  // A crash's restart replays the WAL written since the last memtable
  // flush: bound it (RocksDB flushes the families holding the oldest log
  // once the logs pass this), so recovery takes well under a second
  // whatever was written (measured: ~65 MB/s of WAL replayed here).
  options.max_total_wal_size = 32ull << 20;
  // Bloom filters (10 bits per key, about 1.2 bytes): the directory is read
  // from storage on demand, and a getOrCreate of a new key must learn
  // "absent" without reading a data block of every level.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  // A reader (secondary or read-only) opens the families the directory has:
  // one written by an older node lacks the newer ones (read as empty).
  std::vector<std::string> existing;
  const bool reader = read_only || !secondary_path_.empty();
  if (reader) rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(options), opts_.path, &existing).PermitUncheckedError();
  auto present = [&](const char* name) {
    return !reader || existing.empty() || std::find(existing.begin(), existing.end(), name) != existing.end();
  };
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  descs.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(options));
  for (const char* name : kFamilyNames)
    if (present(name)) descs.emplace_back(name, rocksdb::ColumnFamilyOptions(options));

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (!secondary_path_.empty()) {
    options.create_if_missing = false;
    options.create_missing_column_families = false;
    options.max_open_files = -1;  // required of a secondary instance
    s = rocksdb::DB::OpenAsSecondary(rocksdb::DBOptions(options), opts_.path, secondary_path_, descs, &handles, &raw);
  } else if (read_only) {
    s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(options), opts_.path, descs, &handles, &raw);
  } else {
    s = rocksdb::DB::Open(rocksdb::DBOptions(options), opts_.path, descs, &handles, &raw);
  }
  if (!s.ok()) return s;
  db_.reset(raw);
  // handles[0] is the default family, which Anvil does not use; a family
  // the directory lacks (readers only) has no handle.
  cfs_.clear();
  size_t next = 1;
  for (const char* name : kFamilyNames) cfs_.push_back(present(name) ? handles[next++] : nullptr);
  cfs_.push_back(handles[0]);
  // A secondary tails the MANIFEST and WAL files written since its open began.
  if (!secondary_path_.empty()) return db_->TryCatchUpWithPrimary();
  return s;
}

void Store::close_db() {
  if (!db_) return;
  for (auto* h : cfs_)
    if (h) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  cfs_.clear();
  db_->Close().PermitUncheckedError();
  db_.reset();
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& opts) {
  std::unique_ptr<Store> store(new Store());
  store->opts_ = opts;
  std::shared_ptr<rocksdb::FileSystem> fs = opts.file_system;
  if (opts.preallocate_wal) fs = std::make_shared<WalPreallocFs>(fs ? fs : rocksdb::FileSystem::Default());
  if (fs) store->env_ = rocksdb::NewCompositeEnv(fs);
  std::unique_lock lk(store->db_mu_);
  if (auto s = store->open_db(false); !s.ok()) return storage_error(s);
  for (size_t f = 0; f < store->cfs_.size(); ++f)
    store->ids_.push_back(std::make_unique<FamilyId>(store->cfs_[f]->GetName(), store->cfs_[f]->GetID()));
  lk.unlock();
  return store;
}

Result<std::unique_ptr<Store>> Store::open_secondary(const std::string& path, const std::string& secondary_path) {
  std::unique_ptr<Store> store(new Store());
  store->opts_.path = path;
  store->opts_.create_if_missing = false;
  store->secondary_path_ = secondary_path;
  // The node may be writing the WAL: read it only as far as its records
  // are written (storage/wal_prealloc.hpp).
  store->env_ = rocksdb::NewCompositeEnv(std::make_shared<WalReadFs>(rocksdb::FileSystem::Default()));
  std::unique_lock lk(store->db_mu_);
  if (auto s = store->open_db(true); !s.ok()) return storage_error(s);
  for (size_t f = 0; f < store->cfs_.size(); ++f) {
    const auto* h = store->cfs_[f];  // null: a family this directory lacks (never written through)
    store->ids_.push_back(std::make_unique<FamilyId>(h ? h->GetName() : std::string(kFamilyNames[f]),
                                                     h ? h->GetID() : UINT32_MAX));
  }
  lk.unlock();
  return store;
}

Store::~Store() {
  std::unique_lock lk(db_mu_);
  close_db();
}

rocksdb::ColumnFamilyHandle* Store::batch_cf(Family f) const { return ids_[static_cast<int>(f)].get(); }

Status Store::reopen() {
  std::unique_lock lk(db_mu_);
  if (db_) {
    // Everything acknowledged is in the synced WAL: closing needs no flush
    // (and a flush could not write anyway).
    db_->SetDBOptions({{"avoid_flush_during_shutdown", "true"}}).PermitUncheckedError();
  }
  close_db();
  auto s = open_db(false);
  if (s.ok()) return Ok{};
  // Still no room (recovery writes new table files and a new WAL): serve
  // reads from a read-only open, which writes nothing, and try again later.
  if (auto ro = open_db(true); !ro.ok()) close_db();
  return storage_error(s);
}

Result<std::optional<std::string>> Store::get(Family f, std::string_view key) const {
  std::shared_lock lk(db_mu_);
  if (!db_) return closed_error();
  if (!cf(f)) return std::optional<std::string>();  // a family this (older) directory lacks
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), cf(f), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return storage_error(s);
  return std::optional<std::string>(std::move(value));
}

std::optional<Family> Store::family_of(uint32_t column_family_id) const {
  for (size_t f = 0; f < static_cast<size_t>(Family::kCount) && f < ids_.size(); ++f)
    if (ids_[f]->GetID() == column_family_id) return static_cast<Family>(f);
  return std::nullopt;
}

Result<std::optional<std::string>> Store::get_meta(std::string_view key) const {
  std::shared_lock lk(db_mu_);
  if (!db_) return closed_error();
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), cfs_.back(), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return storage_error(s);
  return std::optional<std::string>(std::move(value));
}

Status Store::put_meta(std::string_view key, std::string_view value) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::shared_lock lk(db_mu_);
  if (!db_) return closed_error();
  auto s = db_->Put(wo, cfs_.back(), rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()));
  if (!s.ok()) return storage_error(s);
  return Ok{};
}

void Store::put(rocksdb::WriteBatch& b, Family f, std::string_view k, std::string_view v) const {
  b.Put(batch_cf(f), rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(v.data(), v.size()));
}

void Store::del(rocksdb::WriteBatch& b, Family f, std::string_view k) const {
  b.Delete(batch_cf(f), rocksdb::Slice(k.data(), k.size()));
}

void Store::del_prefix(rocksdb::WriteBatch& b, Family f, std::string_view prefix) const {
  std::string end = prefix_end(prefix);
  if (end.empty()) {
    // Prefix of all 0xff bytes: fall back to deleting key by key.
    std::shared_lock lk(db_mu_);
    if (!db_) return;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(f)));
    for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size()));
         it->Valid() && it->key().starts_with(rocksdb::Slice(prefix.data(), prefix.size()));
         it->Next())
      b.Delete(batch_cf(f), it->key());
    return;
  }
  b.DeleteRange(batch_cf(f), rocksdb::Slice(prefix.data(), prefix.size()), rocksdb::Slice(end));
}

Status Store::write_synced(rocksdb::WriteBatch& b) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::shared_lock lk(db_mu_);
  if (!db_) return closed_error();
  auto s = db_->Write(wo, &b);
  if (!s.ok()) return storage_error(s);
  return Ok{};
}

rocksdb::WriteBatch Store::concat(const std::vector<const rocksdb::WriteBatch*>& batches) {
  constexpr size_t kHeader = 12;  // fixed64 sequence, fixed32 count (little-endian)
  size_t total = kHeader;
  for (const auto* b : batches) total += b->Data().size() - kHeader;
  std::string rep(kHeader, '\0');
  rep.reserve(total);
  uint32_t count = 0;
  for (const auto* b : batches) {
    rep.append(b->Data(), kHeader, std::string::npos);
    count += b->Count();
  }
  for (int i = 0; i < 4; ++i) rep[8 + i] = static_cast<char>((count >> (8 * i)) & 0xff);
  return rocksdb::WriteBatch(std::move(rep));
}

Status Store::append(rocksdb::WriteBatch& dst, const rocksdb::WriteBatch& src) const {
  // Replays `src` into `dst` through the public Handler interface.
  struct Copier : rocksdb::WriteBatch::Handler {
    const Store& store;
    rocksdb::WriteBatch& out;
    Copier(const Store& s, rocksdb::WriteBatch& o) : store(s), out(o) {}
    rocksdb::ColumnFamilyHandle* cf(uint32_t id) const {
      for (const auto& h : store.ids_)
        if (h->GetID() == id) return h.get();
      return nullptr;
    }
    rocksdb::Status PutCF(uint32_t id, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
      auto* h = cf(id);
      return h ? out.Put(h, k, v) : rocksdb::Status::InvalidArgument("unknown column family");
    }
    rocksdb::Status DeleteCF(uint32_t id, const rocksdb::Slice& k) override {
      auto* h = cf(id);
      return h ? out.Delete(h, k) : rocksdb::Status::InvalidArgument("unknown column family");
    }
    rocksdb::Status DeleteRangeCF(uint32_t id, const rocksdb::Slice& b, const rocksdb::Slice& e) override {
      auto* h = cf(id);
      return h ? out.DeleteRange(h, b, e) : rocksdb::Status::InvalidArgument("unknown column family");
    }
  } copier(*this, dst);
  auto s = src.Iterate(&copier);
  if (!s.ok()) return storage_error(s);
  return Ok{};
}

}  // namespace anvil::storage

namespace anvil::storage {

const char* Store::family_name(Family f) { return kFamilyNames[static_cast<int>(f)]; }

Status Store::compact(Family f) {
  std::shared_lock lock(db_mu_);
  if (!db_) return closed_error();
  if (!cf(f)) return Ok{};
  rocksdb::CompactRangeOptions o;
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  auto s = db_->CompactRange(o, cf(f), nullptr, nullptr);
  if (!s.ok()) return storage_error(s);
  return Ok{};
}

uint64_t Store::estimate_keys(Family f) const {
  std::shared_lock lock(db_mu_);
  uint64_t v = 0;
  if (db_ && cf(f)) db_->GetIntProperty(cf(f), "rocksdb.estimate-num-keys", &v);
  return v;
}

Store::Stats Store::stats() const {
  Stats out;
  std::shared_lock lock(db_mu_);
  if (db_) {
    auto sum = [&](const std::string& prop) {
      uint64_t total = 0;
      for (auto* h : cfs_) {
        uint64_t v = 0;
        if (h && db_->GetIntProperty(h, prop, &v)) total += v;
      }
      return total;
    };
    out.sst_bytes = sum("rocksdb.live-sst-files-size");
    out.memtable_bytes = sum("rocksdb.cur-size-all-mem-tables");
    out.pending_compaction_bytes = sum("rocksdb.estimate-pending-compaction-bytes");
    uint64_t v = 0;
    if (db_->GetIntProperty("rocksdb.num-running-compactions", &v)) out.running_compactions = v;
    if (db_->GetIntProperty("rocksdb.is-write-stopped", &v)) out.write_stopped = v;
    if (db_->GetIntProperty("rocksdb.actual-delayed-write-rate", &v)) out.delayed_write_rate = v;
  }
  std::error_code ec;
  auto space = std::filesystem::space(opts_.path, ec);
  if (!ec) {
    out.fs_free_bytes = space.available;
    out.fs_total_bytes = space.capacity;
  }
  return out;
}

}  // namespace anvil::storage
