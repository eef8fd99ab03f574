// Runtime-internal: the SQLite file of one actor as pages held in memory,
// and the VFS ("anvil") through which SQLite reads and writes them.
//
// The pages are loaded from the actor's range of RocksDB family db_pages
// when the instance opens its database and stay in memory for the
// instance's life; SQLite's writes only change the copy here and mark the
// page dirty. At each turn's commit point the instance moves the dirty
// pages (and the pages a truncation dropped) into the turn's WriteBatch
// (collect()), so they become durable with the state, in the same fsync.
// Nothing here touches RocksDB; nothing here is ever synced by SQLite
// (xSync is a no-op: durability is the commit pipeline's).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace anvil::db {

// Every actor database uses this page size (PRAGMA page_size at open).
constexpr uint32_t kPageSize = 4096;

// The key of page `page_no` (0-based) of an actor's file: actor id + the
// number as 4 bytes big-endian, so the pages sort in file order.
std::string page_key(std::string_view actor_id, uint32_t page_no);
// The page number of a key made by page_key (prefix of `id_size` bytes).
uint32_t page_number(std::string_view key, size_t id_size);

class PageFile {
 public:
  // Loading (before the database is opened): page `page_no` holds `bytes`
  // (kPageSize of them). Pages not loaded below the highest one read as
  // zeros (never written by SQLite).
  void load(uint32_t page_no, std::string_view bytes);

  // The VFS side. Reads past the end fill zeros and say so (short read).
  bool read(void* out, size_t amount, uint64_t offset) const;
  void write(const void* in, size_t amount, uint64_t offset);
  void truncate(uint64_t size);
  uint64_t size() const { return uint64_t(pages_.size()) * kPageSize; }

  // Hands every page changed since the last collect() to `put(page_no,
  // bytes)` and every page dropped by a truncation to `del(page_no)`, then
  // treats the file as stored.
  template <typename Put, typename Del>
  void collect(Put&& put, Del&& del) {
    for (uint32_t p : dirty_)
      if (p < pages_.size()) put(p, std::string_view(pages_[p]));
    for (uint32_t p = static_cast<uint32_t>(pages_.size()); p < stored_pages_; ++p) del(p);
    dirty_.clear();
    stored_pages_ = static_cast<uint32_t>(pages_.size());
  }
  bool has_changes() const { return !dirty_.empty() || stored_pages_ != pages_.size(); }

 private:
  std::string& page(uint32_t p);  // grows the file with zero pages

  std::vector<std::string> pages_;  // by page number
  std::set<uint32_t> dirty_;
  uint32_t stored_pages_ = 0;  // the file's page count in RocksDB
};

// Opens `file` as a SQLite database through the anvil VFS (registered on
// first use). `name` only labels the connection (e.g. the actor id). The
// caller owns the returned connection; `file` must outlive it.
int open_database(PageFile& file, const std::string& name, sqlite3** out);

}  // namespace anvil::db
