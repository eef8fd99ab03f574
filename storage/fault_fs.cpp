#include "storage/fault_fs.hpp"

#include <filesystem>
#include <system_error>

namespace anvil::storage {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// A writable file that reports what it wrote and synced to its FaultFs and
// asks it before every write and sync whether a fault hits.
class FaultFs::File : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  File(FaultFs& fs, std::string fname, std::unique_ptr<rocksdb::FSWritableFile> f)
      : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), fname_(std::move(fname)) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = fs_.check(Op::kAppend, fname_); !s.ok()) return s;
    auto s = target()->Append(data, o, dbg);
    if (s.ok()) fs_.on_append(fname_, written_ += data.size());
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& v,
                  IODebugContext* dbg) override {
    if (auto s = fs_.check(Op::kAppend, fname_); !s.ok()) return s;
    auto s = target()->Append(data, o, v, dbg);
    if (s.ok()) fs_.on_append(fname_, written_ += data.size());
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = fs_.check(Op::kAppend, fname_); !s.ok()) return s;
    auto s = target()->PositionedAppend(data, offset, o, dbg);
    if (s.ok()) positioned(offset + data.size());
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const rocksdb::DataVerificationInfo& v, IODebugContext* dbg) override {
    if (auto s = fs_.check(Op::kAppend, fname_); !s.ok()) return s;
    auto s = target()->PositionedAppend(data, offset, o, v, dbg);
    if (s.ok()) positioned(offset + data.size());
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = fs_.check(Op::kAppend, fname_); !s.ok()) return s;
    auto s = target()->Truncate(size, o, dbg);
    if (s.ok()) {
      written_ = size;
      fs_.on_truncate(fname_, size);
    }
    return s;
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = fs_.check(Op::kSync, fname_); !s.ok()) return s;
    auto s = target()->Sync(o, dbg);
    if (s.ok()) fs_.on_sync(fname_);
    return s;
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = fs_.check(Op::kSync, fname_); !s.ok()) return s;
    auto s = target()->Fsync(o, dbg);
    if (s.ok()) fs_.on_sync(fname_);
    return s;
  }
  // RangeSync starts write-back but promises nothing: not a sync here.

  void set_written(uint64_t n) { written_ = n; }

 private:
  void positioned(uint64_t end) {
    if (end > written_) written_ = end;
    fs_.on_append(fname_, written_);
  }

  FaultFs& fs_;
  std::string fname_;
  uint64_t written_ = 0;
};

FaultFs::FaultFs(std::shared_ptr<rocksdb::FileSystem> base) : FileSystemWrapper(std::move(base)) {}

void FaultFs::inject(Op op, Fault fault, std::string file_part, uint64_t skip) {
  std::lock_guard lk(mu_);
  rules_[static_cast<int>(op)] = Rule{true, fault, std::move(file_part), skip};
}

void FaultFs::clear_faults() {
  std::lock_guard lk(mu_);
  for (auto& r : rules_) r = Rule{};
}

uint64_t FaultFs::faults_hit() const {
  std::lock_guard lk(mu_);
  return hits_;
}

uint64_t FaultFs::unsynced_bytes() const {
  std::lock_guard lk(mu_);
  uint64_t n = 0;
  for (const auto& [_, s] : files_) n += s.written - s.synced;
  return n;
}

uint64_t FaultFs::unsynced_bytes(const std::string& fname) const {
  std::lock_guard lk(mu_);
  auto it = files_.find(fname);
  return it == files_.end() ? 0 : it->second.written - it->second.synced;
}

void FaultFs::crash() {
  std::map<std::string, Sizes> files;
  {
    std::lock_guard lk(mu_);
    crashed_ = true;
    files = files_;
  }
  for (const auto& [name, sizes] : files) {
    if (sizes.synced >= sizes.written) continue;
    std::error_code ec;
    // The real file may be shorter than `written` only if RocksDB truncated
    // it; never grow a file here.
    auto len = std::filesystem::file_size(name, ec);
    if (!ec && len > sizes.synced) std::filesystem::resize_file(name, sizes.synced, ec);
  }
}

IOStatus FaultFs::check(Op op, const std::string& fname) {
  std::lock_guard lk(mu_);
  if (crashed_) return IOStatus::IOError("FaultFs: the machine crashed", fname);
  Rule& r = rules_[static_cast<int>(op)];
  if (!r.active || fname.find(r.file_part) == std::string::npos) return IOStatus::OK();
  if (r.skip > 0) {
    --r.skip;
    return IOStatus::OK();
  }
  ++hits_;
  if (r.fault == Fault::kNoSpace) return IOStatus::NoSpace("FaultFs: injected ENOSPC", fname);
  return IOStatus::IOError("FaultFs: injected EIO", fname);
}

IOStatus FaultFs::wrap(const std::string& fname, IOStatus s, uint64_t existing,
                       std::unique_ptr<rocksdb::FSWritableFile>* r) {
  if (!s.ok()) return s;
  auto file = std::make_unique<File>(*this, fname, std::move(*r));
  file->set_written(existing);
  {
    std::lock_guard lk(mu_);
    // A reopened file's existing bytes count as synced unless this file
    // system saw them written and not synced.
    auto [it, fresh] = files_.try_emplace(fname, Sizes{existing, existing});
    if (!fresh) {
      it->second.written = existing;
      if (it->second.synced > existing) it->second.synced = existing;
    }
  }
  *r = std::move(file);
  return s;
}

IOStatus FaultFs::NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                  std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  if (auto s = check(Op::kCreate, f); !s.ok()) return s;
  {
    std::lock_guard lk(mu_);
    files_.erase(f);  // a new file replaces whatever had that name
  }
  return wrap(f, target()->NewWritableFile(f, o, r, dbg), 0, r);
}

IOStatus FaultFs::ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                     std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  if (auto s = check(Op::kCreate, f); !s.ok()) return s;
  std::error_code ec;
  auto len = std::filesystem::file_size(f, ec);
  return wrap(f, target()->ReopenWritableFile(f, o, r, dbg), ec ? 0 : len, r);
}

IOStatus FaultFs::ReuseWritableFile(const std::string& f, const std::string& old, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  if (auto s = check(Op::kCreate, f); !s.ok()) return s;
  {
    std::lock_guard lk(mu_);
    files_.erase(old);
    files_.erase(f);
  }
  return wrap(f, target()->ReuseWritableFile(f, old, o, r, dbg), 0, r);
}

IOStatus FaultFs::RenameFile(const std::string& src, const std::string& dst, const IOOptions& o,
                             IODebugContext* dbg) {
  {
    std::lock_guard lk(mu_);
    if (crashed_) return IOStatus::IOError("FaultFs: the machine crashed", src);
  }
  auto s = target()->RenameFile(src, dst, o, dbg);
  if (s.ok()) {
    std::lock_guard lk(mu_);
    files_.erase(dst);
    if (auto it = files_.find(src); it != files_.end()) {
      files_[dst] = it->second;
      files_.erase(src);
    }
  }
  return s;
}

IOStatus FaultFs::DeleteFile(const std::string& f, const IOOptions& o, IODebugContext* dbg) {
  {
    std::lock_guard lk(mu_);
    if (crashed_) return IOStatus::IOError("FaultFs: the machine crashed", f);
  }
  auto s = target()->DeleteFile(f, o, dbg);
  if (s.ok()) {
    std::lock_guard lk(mu_);
    files_.erase(f);
  }
  return s;
}

void FaultFs::on_append(const std::string& fname, uint64_t end) {
  std::lock_guard lk(mu_);
  files_[fname].written = end;
}

void FaultFs::on_truncate(const std::string& fname, uint64_t size) {
  std::lock_guard lk(mu_);
  auto& s = files_[fname];
  s.written = size;
  if (s.synced > size) s.synced = size;
}

void FaultFs::on_sync(const std::string& fname) {
  std::lock_guard lk(mu_);
  auto& s = files_[fname];
  s.synced = s.written;
}

}  // namespace anvil::storage
