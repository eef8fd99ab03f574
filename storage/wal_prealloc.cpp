#include "storage/wal_prealloc.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace anvil::storage {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

namespace {

constexpr uint64_t kPage = 4096;

uint64_t page_ceil(uint64_t n) { return (n + kPage - 1) / kPage * kPage; }

}  // namespace

// Forwards every call to the file RocksDB opened (RocksDB's writes go to
// its own descriptor's position). A second descriptor of the same file sets
// space aside (fallocate, in chunks) and, from a background thread, writes
// zeros into it ahead of the writer, so the writer's appends land in blocks
// that are already written: no extent conversion, no inode write at sync.
//
// The zeroing never touches a page the writer has written or is writing:
// it claims a range past the writer's end (rounded up to a page) under the
// mutex, and an append that would reach a claimed range waits for it.
class WalPreallocFs::File : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  File(std::string fname, std::unique_ptr<rocksdb::FSWritableFile> f, const Tuning& t)
      : FSWritableFileOwnerWrapper(std::move(f)), fname_(std::move(fname)), t_(t) {
    fd_ = ::open(fname_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) {
      spdlog::debug("wal prealloc: open {}: {}; the WAL grows as written", fname_, std::strerror(errno));
      return;
    }
    std::lock_guard lk(mu_);
    allocate(0);
    if (fd_ >= 0 && t_.zero_ahead > 0) filler_ = std::thread([this] { fill(); });
  }
  ~File() override {
    stop();
    if (fd_ >= 0) ::close(fd_);
  }

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    const uint64_t at = begin_write(UINT64_MAX, data.size());
    auto s = target()->Append(data, o, dbg);
    end_write(at, data.size(), s.ok());
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& v,
                  IODebugContext* dbg) override {
    const uint64_t at = begin_write(UINT64_MAX, data.size());
    auto s = target()->Append(data, o, v, dbg);
    end_write(at, data.size(), s.ok());
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o, IODebugContext* dbg) override {
    begin_write(offset, data.size());
    auto s = target()->PositionedAppend(data, offset, o, dbg);
    end_write(offset, data.size(), s.ok());
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const rocksdb::DataVerificationInfo& v, IODebugContext* dbg) override {
    begin_write(offset, data.size());
    auto s = target()->PositionedAppend(data, offset, o, v, dbg);
    end_write(offset, data.size(), s.ok());
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* dbg) override {
    // The zeroed space past `size` may hold records after this: start over
    // from the new end (RocksDB does not truncate a WAL it is writing).
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return claim_end_ == 0; });
    auto s = target()->Truncate(size, o, dbg);
    if (s.ok()) {
      written_ = size;
      allocated_ = std::min(allocated_, size);
      zeroed_ = std::min(zeroed_, size);
    }
    return s;
  }
  IOStatus Close(const IOOptions& o, IODebugContext* dbg) override {
    stop();
    auto s = target()->Close(o, dbg);
    // RocksDB cuts the file to its written length when it had preallocated
    // space itself; cut it here too, so a closed WAL never keeps zeros.
    if (s.ok() && fd_ >= 0 && allocated_ > written_ && ::ftruncate(fd_, static_cast<off_t>(written_)) != 0)
      spdlog::debug("wal prealloc: truncate {}: {}", fname_, std::strerror(errno));
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return s;
  }

 private:
  // Before a write of [at, at + n) (at = UINT64_MAX: at the end): makes room
  // and waits while the zeroing holds a page of it. Returns `at`.
  uint64_t begin_write(uint64_t at, uint64_t n) {
    std::unique_lock lk(mu_);
    if (at == UINT64_MAX) at = written_;
    writing_end_ = at + n;
    if (fd_ >= 0 && at + n > allocated_) allocate(at + n);
    cv_.wait(lk, [&] { return claim_end_ == 0 || at + n <= claim_begin_ || at >= claim_end_; });
    return at;
  }
  void end_write(uint64_t at, uint64_t n, bool ok) {
    {
      std::lock_guard lk(mu_);
      if (ok) written_ = std::max(written_, at + n);
      writing_end_ = 0;
    }
    cv_.notify_all();
  }

  // Makes the file at least `end` bytes long (whole chunks). A failure only
  // stops preallocating this file. Caller holds mu_.
  void allocate(uint64_t end) {
    if (fd_ < 0 || stopped_alloc_ || (end <= allocated_ && allocated_ > 0)) return;
    const uint64_t want = (end / t_.chunk + 1) * t_.chunk;
    if (::fallocate(fd_, 0, static_cast<off_t>(allocated_), static_cast<off_t>(want - allocated_)) != 0) {
      spdlog::debug("wal prealloc: fallocate {}: {}; the WAL grows as written", fname_, std::strerror(errno));
      stopped_alloc_ = true;
      return;
    }
    allocated_ = want;
  }

  // The background thread: keeps [written end, + zero_ahead) written with
  // zeros, one piece at a time.
  void fill() {
    ::pthread_setname_np(::pthread_self(), "anvil-walzero");
    const std::vector<char> zeros(t_.piece, '\0');
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] {
        return stopping_ || stopped_alloc_ ||
               std::max(zeroed_, page_ceil(std::max(written_, writing_end_))) < written_ + t_.zero_ahead;
      });
      if (stopping_ || stopped_alloc_) return;
      const uint64_t begin = std::max(zeroed_, page_ceil(std::max(written_, writing_end_)));
      const uint64_t end = begin + t_.piece;
      if (end > allocated_) allocate(end);
      if (stopped_alloc_ || end > allocated_) return;
      claim_begin_ = begin;
      claim_end_ = end;
      lk.unlock();
      bool ok = true;
      for (uint64_t off = begin; ok && off < end;) {
        const ssize_t w = ::pwrite(fd_, zeros.data(), static_cast<size_t>(end - off), static_cast<off_t>(off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = false;
        else off += static_cast<uint64_t>(w);
      }
      // Written back now, so the writer's fdatasync does not carry them.
      if (ok && ::sync_file_range(fd_, static_cast<off_t>(begin), static_cast<off_t>(end - begin),
                                  SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                      SYNC_FILE_RANGE_WAIT_AFTER) != 0)
        ok = false;
      if (!ok) spdlog::debug("wal prealloc: zeroing {}: {}; the rest stays unwritten", fname_, std::strerror(errno));
      lk.lock();
      claim_begin_ = claim_end_ = 0;
      if (ok) zeroed_ = std::max(zeroed_, end);
      cv_.notify_all();
      if (!ok) return;
    }
  }

  void stop() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (filler_.joinable()) filler_.join();
  }

  std::string fname_;
  Tuning t_;
  int fd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t written_ = 0;       // GUARDED_BY(mu_): end of what RocksDB wrote
  uint64_t writing_end_ = 0;   // GUARDED_BY(mu_): end of a write in progress (0: none)
  uint64_t allocated_ = 0;     // GUARDED_BY(mu_): the file's size as set aside
  uint64_t zeroed_ = 0;        // GUARDED_BY(mu_): zeros written up to here (past written_)
  uint64_t claim_begin_ = 0;   // GUARDED_BY(mu_): the range being zeroed
  uint64_t claim_end_ = 0;     // GUARDED_BY(mu_): (0: none)
  bool stopped_alloc_ = false; // GUARDED_BY(mu_)
  bool stopping_ = false;      // GUARDED_BY(mu_)
  std::thread filler_;
};

WalPreallocFs::WalPreallocFs(std::shared_ptr<rocksdb::FileSystem> base, Tuning t)
    : FileSystemWrapper(std::move(base)), t_(t) {
  if (t_.chunk < kPage) t_.chunk = Tuning{}.chunk;
  if (t_.piece < kPage) t_.piece = Tuning{}.piece;
  t_.piece = page_ceil(t_.piece);
}

bool WalPreallocFs::is_wal(const std::string& fname) {
  const auto slash = fname.find_last_of('/');
  const std::string_view base = slash == std::string::npos ? std::string_view(fname)
                                                           : std::string_view(fname).substr(slash + 1);
  constexpr std::string_view kExt = ".log";
  if (base.size() <= kExt.size() || base.substr(base.size() - kExt.size()) != kExt) return false;
  for (char c : base.substr(0, base.size() - kExt.size()))
    if (c < '0' || c > '9') return false;
  return true;
}

IOStatus WalPreallocFs::NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                        std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  auto s = target()->NewWritableFile(f, o, r, dbg);
  // Direct writes bypass the page cache with their own alignment rules:
  // leave such files alone.
  if (!s.ok() || !is_wal(f) || o.use_direct_writes) return s;
  *r = std::make_unique<File>(f, std::move(*r), t_);
  return s;
}

}  // namespace anvil::storage
