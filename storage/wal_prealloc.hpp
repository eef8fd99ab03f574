// A RocksDB file system layer that gives each WAL file its space ahead of
// the writes, as real file size (fallocate without KEEP_SIZE).
//
// And a background thread writes zeros into that space ahead of the
// writer (a few MiB ahead, in pieces it writes back at once): blocks
// fallocate sets aside are "unwritten", and the first write into each one
// converts it, which changes the inode again; blocks already written with
// zeros are plain overwrites.
//
// Why: RocksDB appends to the WAL and fdatasyncs after every commit round.
// An append past the end of the file changes the file's size, so every
// fdatasync also has to write the inode: two device writes in sequence per
// round. Writing inside space the file already owns (its size set ahead)
// leaves only the data write: on this machine's disk a 600-byte append +
// fdatasync takes 0.13 ms instead of 0.20 ms at the median, and 0.14 ms
// instead of 0.21 ms at p90 once the blocks are zeroed (bench/PROFILE.md,
// "Cold start"). RocksDB's own preallocation keeps the size (KEEP_SIZE), and its
// WAL recycling, which would also avoid it, is switched off by RocksDB 7.8
// under point-in-time recovery.
//
// Safety: the space comes from fallocate, so it reads as zeros until
// written (the file system guarantees it, crash or not), and the zeroing
// never writes a page the WAL's writer has written or is writing (it
// claims pages past the writer's end; a write reaching a claimed page
// waits for it). RocksDB's WAL reader skips zeros (it takes a zero header
// for padding and goes on at the next 32 KiB block), so after a crash the
// zeros past the last record end recovery like the end of the file, and a
// record torn by the crash is a checksum mismatch at the tail, which
// point-in-time recovery treats like a torn end. On a clean close the file
// is cut back to what was written. When the file system refuses the space
// (no room, or no fallocate), the file just grows as it would without
// this layer.
//
// A reader of a WAL that is still being written (a secondary instance:
// `anvil actors --data-dir`, `anvil data export`) must not skip the zeros:
// they are records that are not written yet. WalReadFs gives such readers
// a WAL that ends where its checksum-valid records end, as a WAL without
// preallocated space does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <rocksdb/file_system.h>

namespace anvil::storage {

struct WalPreallocTuning {
  uint64_t chunk = 4ull << 20;       // space set aside at a time
  uint64_t piece = 256ull << 10;     // zeros written (and written back) at a time
  uint64_t zero_ahead = 2ull << 20;  // how far past the writer zeros are kept; 0: no zeroing
};

class WalPreallocFs : public rocksdb::FileSystemWrapper {
 public:
  using Tuning = WalPreallocTuning;

  explicit WalPreallocFs(std::shared_ptr<rocksdb::FileSystem> base, Tuning t = {});
  const char* Name() const override { return "AnvilWalPreallocFs"; }

  // True for RocksDB's WAL file names ("000123.log").
  static bool is_wal(const std::string& fname);

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;

 private:
  class File;
  Tuning t_;
};

// For readers of WAL files another process may still be writing: each WAL
// read through it ends before the first record that is not whole and
// checksum-valid yet (a zero header: space set aside ahead; a record the
// writer is still copying in), and grows as more becomes valid. The same
// end a reader sees at the end of a WAL file written without preallocated
// space, so RocksDB's secondary waits there and goes on from there.
class WalReadFs : public rocksdb::FileSystemWrapper {
 public:
  explicit WalReadFs(std::shared_ptr<rocksdb::FileSystem> base);
  const char* Name() const override { return "AnvilWalReadFs"; }

  rocksdb::IOStatus NewSequentialFile(const std::string& f, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* r,
                                      rocksdb::IODebugContext* dbg) override;

  // The end of the whole, checksum-valid records of a RocksDB log file's
  // bytes `data`, scanning from `from` (a record boundary). Exposed for
  // tests.
  static uint64_t valid_end(std::string_view data, uint64_t from = 0);

 private:
  class File;
};

}  // namespace anvil::storage
