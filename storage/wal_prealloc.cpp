#include "storage/wal_prealloc.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace anvil::storage {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// Forwards every call to the file RocksDB opened; before an append that
// would pass the space set aside, sets aside the next chunk through a second
// descriptor of the same file (RocksDB's writes go to its own descriptor's
// position, which the larger size does not move).
class WalPreallocFs::File : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  File(std::string fname, std::unique_ptr<rocksdb::FSWritableFile> f, uint64_t chunk)
      : FSWritableFileOwnerWrapper(std::move(f)), fname_(std::move(fname)), chunk_(chunk) {
    fd_ = ::open(fname_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) spdlog::debug("wal prealloc: open {}: {}; the WAL grows as written", fname_, std::strerror(errno));
    reserve(0);
  }
  ~File() override {
    if (fd_ >= 0) ::close(fd_);
  }

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    reserve(written_ + data.size());
    auto s = target()->Append(data, o, dbg);
    if (s.ok()) written_ += data.size();
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& v,
                  IODebugContext* dbg) override {
    reserve(written_ + data.size());
    auto s = target()->Append(data, o, v, dbg);
    if (s.ok()) written_ += data.size();
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o, IODebugContext* dbg) override {
    reserve(offset + data.size());
    auto s = target()->PositionedAppend(data, offset, o, dbg);
    if (s.ok() && offset + data.size() > written_) written_ = offset + data.size();
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const rocksdb::DataVerificationInfo& v, IODebugContext* dbg) override {
    reserve(offset + data.size());
    auto s = target()->PositionedAppend(data, offset, o, v, dbg);
    if (s.ok() && offset + data.size() > written_) written_ = offset + data.size();
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* dbg) override {
    auto s = target()->Truncate(size, o, dbg);
    if (s.ok()) written_ = size;
    return s;
  }
  IOStatus Close(const IOOptions& o, IODebugContext* dbg) override {
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
  // Makes the file at least `end` bytes long (rounded up to whole chunks).
  // A failure only stops preallocating this file.
  void reserve(uint64_t end) {
    if (fd_ < 0 || (end <= allocated_ && allocated_ > 0)) return;
    const uint64_t want = (end / chunk_ + 1) * chunk_;
    if (::fallocate(fd_, 0, static_cast<off_t>(allocated_), static_cast<off_t>(want - allocated_)) != 0) {
      spdlog::debug("wal prealloc: fallocate {}: {}; the WAL grows as written", fname_, std::strerror(errno));
      ::close(fd_);
      fd_ = -1;
      return;
    }
    allocated_ = want;
  }

  std::string fname_;
  uint64_t chunk_;
  int fd_ = -1;
  uint64_t written_ = 0;
  uint64_t allocated_ = 0;
};

WalPreallocFs::WalPreallocFs(std::shared_ptr<rocksdb::FileSystem> base, uint64_t chunk)
    : FileSystemWrapper(std::move(base)), chunk_(chunk == 0 ? kDefaultChunk : chunk) {}

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
  *r = std::make_unique<File>(f, std::move(*r), chunk_);
  return s;
}

}  // namespace anvil::storage
