#include "storage/wal_prealloc.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <system_error>
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

// Reads up to `len` bytes at `off` (fewer only at the end of the file);
// -1 on an error (errno says which).
ssize_t pread_full(int fd, void* out, size_t len, uint64_t off) {
  size_t got = 0;
  while (got < len) {
    const ssize_t r = ::pread(fd, static_cast<char*>(out) + got, len - got, static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

// RocksDB's log format: 32 KiB blocks of records, each a header (masked
// CRC32C of type + payload, u16 length, u8 type; the recyclable types 5-8
// add a u32 log number) and its payload, never across a block; a block's
// last < 7 bytes are zero padding.
constexpr uint64_t kBlock = 32768;
constexpr size_t kHeader = 7;
constexpr size_t kRecyclableHeader = 11;

// CRC32C (Castagnoli, reflected), as RocksDB checks its log records.
uint32_t crc32c(const uint8_t* p, size_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t unmask_crc(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

// From `from` (a record boundary), the end of the whole, checksum-valid
// records, stopping once past `want`. read(offset, n, out) returns how many
// bytes it read (fewer at the end of the file).
template <typename Read>
uint64_t scan_valid(uint64_t from, uint64_t want, Read&& read) {
  uint64_t end = from;
  std::vector<uint8_t> rec;
  while (end < want) {
    uint64_t at = end;
    if (kBlock - at % kBlock < kHeader) at += kBlock - at % kBlock;  // the block's padding
    uint8_t h[kRecyclableHeader];
    if (read(at, kHeader, h) < kHeader) break;
    if (std::all_of(h, h + kHeader, [](uint8_t b) { return b == 0; })) break;  // not written yet
    const unsigned type = h[6];
    const size_t header = type >= 5 && type <= 8 ? kRecyclableHeader : kHeader;
    if (header > kHeader && read(at + kHeader, header - kHeader, h + kHeader) < header - kHeader) break;
    const size_t length = static_cast<size_t>(h[4]) | (static_cast<size_t>(h[5]) << 8);
    if (at % kBlock + header + length > kBlock) break;  // not a record
    rec.assign(h + 6, h + header);
    rec.resize(header - 6 + length);
    if (length > 0 && read(at + header, length, rec.data() + (header - 6)) < length) break;
    const uint32_t stored = static_cast<uint32_t>(h[0]) | (static_cast<uint32_t>(h[1]) << 8) |
                            (static_cast<uint32_t>(h[2]) << 16) | (static_cast<uint32_t>(h[3]) << 24);
    if (crc32c(rec.data(), rec.size()) != unmask_crc(stored)) break;  // being written, or torn
    end = at + header + length;
  }
  return end;
}

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
    // The first piece stays as fallocate left it: the writer starts there
    // at once and would otherwise wait for its zeros.
    zeroed_ = t_.piece;
    if (fd_ < 0 || stopped_alloc_ || t_.zero_ahead == 0) return;
    try {
      filler_ = std::thread([this] { fill(); });
    } catch (const std::system_error& e) {
      spdlog::warn("wal prealloc: no thread to zero {} ahead ({}); its space is only set aside", fname_, e.what());
    }
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
    // RocksDB does not truncate a WAL it writes through this layer (only
    // with direct writes, which it leaves alone). Should it: no more zeros
    // from here on, since where the next write lands is the wrapped file's
    // business (a POSIX file keeps writing at its old position).
    stop();
    auto s = target()->Truncate(size, o, dbg);
    std::lock_guard lk(mu_);
    if (s.ok()) {
      written_ = size;
      allocated_ = std::min(allocated_, size);
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
    bool wake = false;
    {
      std::lock_guard lk(mu_);
      if (ok) written_ = std::max(written_, at + n);
      // A failed write may have written part of it: where the data ends is
      // not known any more, so no zeros from here on.
      if (!ok) stopping_ = true;
      writing_end_ = 0;
      // Only the zeroing waits on a write's end: wake it when it has work
      // (once a piece, not once a commit round).
      wake = stopping_ || fill_due();
    }
    if (wake) cv_.notify_all();
  }

  // Where the next piece of zeros begins: past what is zeroed and past the
  // page the writer has written or is writing. Caller holds mu_.
  uint64_t fill_begin() const { return std::max(zeroed_, page_ceil(std::max(written_, writing_end_))); }
  // Whether the zeros reach less than zero_ahead past the writer.
  bool fill_due() const { return fill_begin() < written_ + t_.zero_ahead; }

  // Makes the file at least `end` bytes long (whole chunks). A failure only
  // stops preallocating this file. Caller holds mu_.
  void allocate(uint64_t end) {
    if (fd_ < 0 || stopped_alloc_ || (end <= allocated_ && allocated_ > 0)) return;
    const uint64_t want = (end / t_.chunk + 1) * t_.chunk;
    if (::fallocate(fd_, 0, static_cast<off_t>(allocated_), static_cast<off_t>(want - allocated_)) != 0) {
      // Said once per process at info (a file system without fallocate
      // says it for every WAL), then at debug.
      static std::atomic<bool> said{false};
      const bool first = !said.exchange(true);
      spdlog::log(first ? spdlog::level::info : spdlog::level::debug,
                  "wal prealloc: no space set aside for {} ({}); the WAL grows as written, so each fsync "
                  "also writes the file's size",
                  fname_, std::strerror(errno));
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
      cv_.wait(lk, [&] { return stopping_ || stopped_alloc_ || fill_due(); });
      if (stopping_ || stopped_alloc_) return;
      const uint64_t begin = fill_begin();
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

// A WAL as far as its valid records go (see WalReadFs). Reads with its own
// descriptor at its own position: a buffered reader could keep zeros the
// writer has overwritten since.
class WalReadFs::File : public rocksdb::FSSequentialFileOwnerWrapper {
 public:
  File(int fd, std::unique_ptr<rocksdb::FSSequentialFile> f) : FSSequentialFileOwnerWrapper(std::move(f)), fd_(fd) {}
  ~File() override { ::close(fd_); }

  IOStatus Read(size_t n, const IOOptions&, Slice* result, char* scratch, IODebugContext*) override {
    const ssize_t got = pread_full(fd_, scratch, available(n), pos_);
    if (got < 0) return IOStatus::IOError("read WAL", std::strerror(errno));
    pos_ += static_cast<uint64_t>(got);
    *result = Slice(scratch, static_cast<size_t>(got));
    return IOStatus::OK();
  }
  IOStatus Skip(uint64_t n) override {
    pos_ += available(n);
    return IOStatus::OK();
  }
  bool use_direct_io() const override { return false; }

 private:
  // How much of the next n bytes is valid records, scanning further first.
  size_t available(uint64_t n) {
    if (pos_ + n > valid_)
      valid_ = scan_valid(valid_, pos_ + n, [this](uint64_t off, size_t len, uint8_t* out) -> size_t {
        return static_cast<size_t>(std::max<ssize_t>(0, pread_full(fd_, out, len, off)));  // an error ends the scan
      });
    return static_cast<size_t>(std::min<uint64_t>(n, valid_ > pos_ ? valid_ - pos_ : 0));
  }

  int fd_;
  uint64_t pos_ = 0;    // what the reader has been given
  uint64_t valid_ = 0;  // the end of the valid records found so far (a record boundary)
};

WalReadFs::WalReadFs(std::shared_ptr<rocksdb::FileSystem> base) : FileSystemWrapper(std::move(base)) {}

uint64_t WalReadFs::valid_end(std::string_view data, uint64_t from) {
  return scan_valid(from, data.size(), [&](uint64_t off, size_t len, uint8_t* out) -> size_t {
    if (off >= data.size()) return 0;
    const size_t n = std::min<uint64_t>(len, data.size() - off);
    std::memcpy(out, data.data() + off, n);
    return n;
  });
}

IOStatus WalReadFs::NewSequentialFile(const std::string& f, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* r, IODebugContext* dbg) {
  auto s = target()->NewSequentialFile(f, o, r, dbg);
  if (!s.ok() || !WalPreallocFs::is_wal(f) || o.use_direct_reads) return s;
  const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return s;  // read as RocksDB opened it
  *r = std::make_unique<File>(fd, std::move(*r));
  return s;
}

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
