// A RocksDB file system for tests that fails the way disks do: it remembers
// how much of every file written through it was synced, can drop everything
// else (a power cut: the page cache is gone, only fsynced bytes survive), and
// injects ENOSPC or EIO at chosen calls until told to stop.
//
// Select it with StoreOptions::file_system. Everything else is forwarded to
// the wrapped file system (the real one by default), so the files on disk are
// real RocksDB files that the next Store::open reads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <rocksdb/file_system.h>

namespace anvil::storage {

class FaultFs : public rocksdb::FileSystemWrapper {
 public:
  // Which calls a fault hits.
  enum class Op {
    kCreate,  // NewWritableFile, ReopenWritableFile, ReuseWritableFile
    kAppend,  // Append, PositionedAppend (nothing is written)
    kSync,    // Sync, Fsync (the bytes stay unsynced)
  };
  enum class Fault {
    kNoSpace,  // ENOSPC: IOStatus::NoSpace
    kIoError,  // EIO: IOStatus::IOError
  };

  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());
  const char* Name() const override { return "AnvilFaultFs"; }

  // From now on, every call of `op` on a file whose name contains `file_part`
  // ("" = any file; ".log" = the WAL) fails with `fault`, after `skip` more
  // such calls succeed. One rule per op; a new one replaces the old.
  void inject(Op op, Fault fault, std::string file_part = "", uint64_t skip = 0);
  // Stops every injected fault: the disk has space again / works again.
  void clear_faults();
  // How many calls failed because of an injected fault.
  uint64_t faults_hit() const;

  // Bytes written through this file system but not synced yet, over all
  // files (or one file, by full path as RocksDB names it).
  uint64_t unsynced_bytes() const;
  uint64_t unsynced_bytes(const std::string& fname) const;

  // A power cut. From now on every write, sync, create, rename and delete
  // fails (so a DB still open cannot persist anything more); then every file
  // written through this file system is cut back to its synced length. Close
  // the Store after this; open a new Store (with a new FaultFs, or none) to
  // see what survived.
  void crash();

  // ---- rocksdb::FileSystem -------------------------------------------------
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;

 private:
  class File;
  friend class File;
  struct Rule {
    bool active = false;
    Fault fault = Fault::kNoSpace;
    std::string file_part;
    uint64_t skip = 0;
  };
  struct Sizes {
    uint64_t written = 0;
    uint64_t synced = 0;
  };

  // An error when an injected fault (or the crash) hits this call.
  rocksdb::IOStatus check(Op op, const std::string& fname);
  rocksdb::IOStatus wrap(const std::string& fname, rocksdb::IOStatus s, uint64_t existing,
                         std::unique_ptr<rocksdb::FSWritableFile>* r);
  void on_append(const std::string& fname, uint64_t end);
  void on_truncate(const std::string& fname, uint64_t size);
  void on_sync(const std::string& fname);

  mutable std::mutex mu_;
  Rule rules_[3];                       // GUARDED_BY(mu_), indexed by Op
  uint64_t hits_ = 0;                   // GUARDED_BY(mu_)
  bool crashed_ = false;                // GUARDED_BY(mu_)
  std::map<std::string, Sizes> files_;  // GUARDED_BY(mu_)
};

}  // namespace anvil::storage
