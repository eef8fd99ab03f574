// Actor archives: every stored record of a set of actors in one file, so
// actors can be moved to another node (`anvil data export` / `import`,
// docs/operator-guide.md "Move actors to a new node").
//
// Format (version 1), all integers little-endian:
//   header   "ANVILARC" (8 bytes), u32 version = 1
//   records  u8 family (storage::Family: 0 actors, 1 key_index, 2 state,
//            3 kv, 4 queue, 5 schedules, 6 workflow, 7 db_pages),
//            u32 key length, key bytes, u32 value length, value bytes
//   trailer  u8 0xFF, u64 record count, u64 actor count, u64 checksum
// The checksum is FNV-1a 64 over the header and every record (not the
// trailer). The records of one actor are contiguous and start with its
// `actors` record; nothing may follow the trailer.
// Values are copied as stored (no re-encoding), so an archive round-trips
// losslessly, and a node of the same storage format reads them unchanged.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <ostream>
#include <set>
#include <string>

#include "base/value/error.hpp"
#include "storage/store.hpp"

namespace anvil::storage {

struct ArchiveProgress {
  uint64_t actors_done = 0, actors_total = 0;
  uint64_t records = 0, bytes = 0;
};
using ProgressFn = std::function<void(const ArchiveProgress&)>;

struct ExportFilter {
  std::string name;            // "" = every type
  std::set<std::string> ids;   // empty = every actor (of `name`)
};

// Writes the actors `filter` selects. Counts in the result.
Result<ArchiveProgress> export_actors(const Store& store, const ExportFilter& filter, std::ostream& out,
                                      const ProgressFn& progress = nullptr);

struct ImportOptions {
  // An actor id already in the store: false = refuse the whole import,
  // true = its old records are deleted and the archive's written.
  bool replace = false;
};

// Reads the archive twice (so `in` must be seekable: a file, not a pipe).
// First it verifies all of it (format, checksum, every actor record
// decodes, no actor id already stored unless `replace`, no key already
// taken by another actor) and writes nothing when anything is wrong; then
// it writes it in synced batches that end only between actors, so a crash
// midway leaves whole actors (importing the same archive again with
// `replace` completes it). archive.invalid for a damaged or foreign file,
// archive.conflict for an id or key taken; storage errors as the store's.
Result<ArchiveProgress> import_actors(Store& store, std::istream& in, const ImportOptions& opts,
                                      const ProgressFn& progress = nullptr);

}  // namespace anvil::storage
