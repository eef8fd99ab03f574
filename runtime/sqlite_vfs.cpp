// The anvil SQLite VFS: the main database file of a connection is a
// PageFile (memory); any other file SQLite asks for (a statement journal
// that spills, which temp_store=MEMORY should prevent) goes to the default
// VFS. No locking is needed: one connection per file, used on one strand.
#include "runtime/sqlite_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace anvil::db {

std::string page_key(std::string_view actor_id, uint32_t page_no) {
  std::string k(actor_id);
  for (int i = 3; i >= 0; --i) k += static_cast<char>((page_no >> (i * 8)) & 0xff);
  return k;
}

uint32_t page_number(std::string_view key, size_t id_size) {
  uint32_t n = 0;
  for (size_t i = id_size; i < key.size() && i < id_size + 4; ++i) n = (n << 8) | static_cast<uint8_t>(key[i]);
  return n;
}

// ---------------------------------------------------------------- PageFile

std::string& PageFile::page(uint32_t p) {
  while (pages_.size() <= p) pages_.emplace_back(kPageSize, '\0');
  return pages_[p];
}

void PageFile::load(uint32_t page_no, std::string_view bytes) {
  std::string& pg = page(page_no);
  std::memcpy(pg.data(), bytes.data(), std::min<size_t>(bytes.size(), kPageSize));
  stored_pages_ = static_cast<uint32_t>(pages_.size());
}

bool PageFile::read(void* out, size_t amount, uint64_t offset) const {
  auto* dst = static_cast<char*>(out);
  bool complete = true;
  while (amount > 0) {
    const uint64_t p = offset / kPageSize;
    const size_t in_page = offset % kPageSize;
    const size_t n = std::min<size_t>(amount, kPageSize - in_page);
    if (p < pages_.size()) {
      std::memcpy(dst, pages_[p].data() + in_page, n);
    } else {
      std::memset(dst, 0, n);
      complete = false;
    }
    dst += n;
    offset += n;
    amount -= n;
  }
  return complete;
}

void PageFile::write(const void* in, size_t amount, uint64_t offset) {
  const auto* src = static_cast<const char*>(in);
  while (amount > 0) {
    const auto p = static_cast<uint32_t>(offset / kPageSize);
    const size_t in_page = offset % kPageSize;
    const size_t n = std::min<size_t>(amount, kPageSize - in_page);
    // Growing the file: every new page is written (zeros if SQLite skipped it).
    for (auto q = static_cast<uint32_t>(pages_.size()); q < p; ++q) dirty_.insert(q);
    std::memcpy(page(p).data() + in_page, src, n);
    dirty_.insert(p);
    src += n;
    offset += n;
    amount -= n;
  }
}

void PageFile::truncate(uint64_t size) {
  const auto keep = static_cast<size_t>((size + kPageSize - 1) / kPageSize);
  if (keep < pages_.size()) pages_.resize(keep);
}

// ---------------------------------------------------------------- the VFS

namespace {

constexpr const char* kVfsName = "anvil";
constexpr const char* kNamePrefix = "anvil-db:";

// The file being opened by open_database() on this thread: SQLite opens the
// main database file inside sqlite3_open_v2, on the calling thread.
thread_local PageFile* t_opening = nullptr;

struct File {
  sqlite3_file base;
  PageFile* pages;
};

bool ours(const char* name) { return name && std::strncmp(name, kNamePrefix, std::strlen(kNamePrefix)) == 0; }

PageFile& pages_of(sqlite3_file* f) { return *reinterpret_cast<File*>(f)->pages; }

int x_close(sqlite3_file*) { return SQLITE_OK; }
int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  return pages_of(f).read(out, static_cast<size_t>(amount), static_cast<uint64_t>(offset)) ? SQLITE_OK
                                                                                            : SQLITE_IOERR_SHORT_READ;
}
int x_write(sqlite3_file* f, const void* in, int amount, sqlite3_int64 offset) {
  pages_of(f).write(in, static_cast<size_t>(amount), static_cast<uint64_t>(offset));
  return SQLITE_OK;
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  pages_of(f).truncate(static_cast<uint64_t>(size));
  return SQLITE_OK;
}
int x_sync(sqlite3_file*, int) { return SQLITE_OK; }  // durability is the turn's commit
int x_file_size(sqlite3_file* f, sqlite3_int64* out) {
  *out = static_cast<sqlite3_int64>(pages_of(f).size());
  return SQLITE_OK;
}
int x_lock(sqlite3_file*, int) { return SQLITE_OK; }
int x_unlock(sqlite3_file*, int) { return SQLITE_OK; }
int x_check_reserved_lock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int x_file_control(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int x_sector_size(sqlite3_file*) { return static_cast<int>(kPageSize); }
int x_device_characteristics(sqlite3_file*) {
  return SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL |
         SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

const sqlite3_io_methods kMethods = {
    1,  // iVersion: no WAL, no shared memory, no mmap
    x_close, x_read, x_write, x_truncate, x_sync, x_file_size, x_lock, x_unlock, x_check_reserved_lock,
    x_file_control, x_sector_size, x_device_characteristics,
    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};

sqlite3_vfs* default_vfs() { return static_cast<sqlite3_vfs*>(sqlite3_vfs_find(nullptr)); }

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  if ((flags & SQLITE_OPEN_MAIN_DB) && ours(name)) {
    if (!t_opening) return SQLITE_CANTOPEN;
    auto* file = reinterpret_cast<File*>(f);
    file->base.pMethods = &kMethods;
    file->pages = t_opening;
    if (out_flags) *out_flags = flags;
    return SQLITE_OK;
  }
  sqlite3_vfs* d = default_vfs();
  return d->xOpen(d, name, f, flags, out_flags);
}
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  if (ours(name)) return SQLITE_OK;
  sqlite3_vfs* d = default_vfs();
  return d->xDelete(d, name, sync_dir);
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  if (ours(name)) {
    *out = 0;  // no journal or WAL file of ours ever exists
    return SQLITE_OK;
  }
  sqlite3_vfs* d = default_vfs();
  return d->xAccess(d, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  if (ours(name)) {
    sqlite3_snprintf(n, out, "%s", name);
    return SQLITE_OK;
  }
  sqlite3_vfs* d = default_vfs();
  return d->xFullPathname(d, name, n, out);
}
int x_randomness(sqlite3_vfs*, int n, char* out) { return default_vfs()->xRandomness(default_vfs(), n, out); }
int x_sleep(sqlite3_vfs*, int us) { return default_vfs()->xSleep(default_vfs(), us); }
int x_current_time(sqlite3_vfs*, double* out) { return default_vfs()->xCurrentTime(default_vfs(), out); }
int x_get_last_error(sqlite3_vfs*, int n, char* out) {
  return default_vfs()->xGetLastError(default_vfs(), n, out);
}

sqlite3_vfs* anvil_vfs() {
  static sqlite3_vfs vfs;
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_initialize();
    std::memset(&vfs, 0, sizeof vfs);
    vfs.iVersion = 1;
    // Room for our file or for a file of the default VFS (delegated opens).
    vfs.szOsFile = std::max(static_cast<int>(sizeof(File)), default_vfs()->szOsFile);
    vfs.mxPathname = default_vfs()->mxPathname;
    vfs.zName = kVfsName;
    vfs.xOpen = x_open;
    vfs.xDelete = x_delete;
    vfs.xAccess = x_access;
    vfs.xFullPathname = x_full_pathname;
    vfs.xRandomness = x_randomness;
    vfs.xSleep = x_sleep;
    vfs.xCurrentTime = x_current_time;
    vfs.xGetLastError = x_get_last_error;
    sqlite3_vfs_register(&vfs, 0);
  });
  return &vfs;
}

}  // namespace

int open_database(PageFile& file, const std::string& name, sqlite3** out) {
  anvil_vfs();
  t_opening = &file;
  const std::string path = kNamePrefix + name;
  // NOMUTEX: the connection is used by one strand at a time.
  const int rc = sqlite3_open_v2(path.c_str(), out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 kVfsName);
  t_opening = nullptr;
  return rc;
}

}  // namespace anvil::db
