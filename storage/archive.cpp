#include "storage/archive.hpp"

#include <cstring>
#include <map>
#include <vector>

#include "storage/records.hpp"

namespace anvil::storage {
namespace {

constexpr char kMagic[8] = {'A', 'N', 'V', 'I', 'L', 'A', 'R', 'C'};
constexpr uint32_t kVersion = 1;
constexpr uint8_t kTrailer = 0xFF;
constexpr size_t kMaxField = 64u << 20;        // no stored key or value is near this
constexpr size_t kBatchBytes = 4u << 20;       // import batches end at the first actor boundary past this

// Per-actor families: keys start with the actor id.
constexpr Family kPerActor[] = {Family::kState, Family::kKv,       Family::kQueue,
                                Family::kSchedules, Family::kWorkflow, Family::kDbPages};

Error invalid(const std::string& why) { return make_error("archive", "invalid", "Not a valid actor archive: " + why); }

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(p[i]);
      h *= 1099511628211ull;
    }
  }
};

class Writer {
 public:
  explicit Writer(std::ostream& out) : out_(out) {}
  void raw(const void* p, size_t n, bool checked = true) {
    out_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    if (checked) sum_.add(static_cast<const char*>(p), n);
    bytes_ += n;
  }
  template <typename T>
  void num(T v, bool checked = true) {
    unsigned char b[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> (8 * i));
    raw(b, sizeof b, checked);
  }
  void record(Family f, std::string_view k, std::string_view v) {
    num<uint8_t>(static_cast<uint8_t>(f));
    num<uint32_t>(static_cast<uint32_t>(k.size()));
    raw(k.data(), k.size());
    num<uint32_t>(static_cast<uint32_t>(v.size()));
    raw(v.data(), v.size());
    ++records_;
  }
  uint64_t checksum() const { return sum_.h; }
  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }
  bool ok() const { return static_cast<bool>(out_); }

 private:
  std::ostream& out_;
  Fnv sum_;
  uint64_t records_ = 0, bytes_ = 0;
};

class Reader {
 public:
  explicit Reader(std::istream& in) : in_(in) {}
  bool raw(void* p, size_t n, bool checked = true) {
    in_.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    if (static_cast<size_t>(in_.gcount()) != n) return false;
    if (checked) sum_.add(static_cast<const char*>(p), n);
    return true;
  }
  template <typename T>
  bool num(T& v, bool checked = true) {
    unsigned char b[sizeof(T)];
    if (!raw(b, sizeof b, checked)) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < sizeof(T); ++i) x |= static_cast<uint64_t>(b[i]) << (8 * i);
    v = static_cast<T>(x);
    return true;
  }
  bool field(std::string& s) {
    uint32_t n = 0;
    if (!num(n) || n > kMaxField) return false;
    s.resize(n);
    return n == 0 || raw(s.data(), n);
  }
  uint64_t checksum() const { return sum_.h; }
  void add(const char* p, size_t n) { sum_.add(p, n); }
  bool at_end() { return in_.peek() == std::char_traits<char>::eof(); }

 private:
  std::istream& in_;
  Fnv sum_;
};

struct Record {
  Family family = Family::kActors;
  std::string key, value;
};

// Reads the header; then next() yields records until the trailer (nullopt),
// checking counts and checksum there.
class ArchiveStream {
 public:
  explicit ArchiveStream(std::istream& in) : r_(in) {}
  Status header() {
    char magic[8];
    uint32_t version = 0;
    if (!r_.raw(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return invalid("it does not start with ANVILARC.");
    if (!r_.num(version)) return invalid("the header is cut short.");
    if (version != kVersion) return invalid("version " + std::to_string(version) + " is not supported (1 is).");
    return Ok{};
  }
  Result<std::optional<Record>> next() {
    uint8_t tag = 0;
    const uint64_t before = r_.checksum();
    if (!r_.num(tag, false)) return invalid("it ends before its trailer (truncated?).");
    if (tag == kTrailer) {
      uint64_t records = 0, actors = 0, sum = 0;
      if (!r_.num(records, false) || !r_.num(actors, false) || !r_.num(sum, false))
        return invalid("the trailer is cut short.");
      if (sum != before) return invalid("the checksum does not match (damaged).");
      if (records != records_) return invalid("the record count does not match.");
      if (actors != actors_) return invalid("the actor count does not match.");
      if (!r_.at_end()) return invalid("there are bytes after the trailer.");
      return std::optional<Record>();
    }
    r_.add(reinterpret_cast<const char*>(&tag), 1);
    if (tag >= static_cast<uint8_t>(Family::kCount)) return invalid("unknown family " + std::to_string(tag) + ".");
    Record rec;
    rec.family = static_cast<Family>(tag);
    if (!r_.field(rec.key) || !r_.field(rec.value)) return invalid("a record is cut short.");
    ++records_;
    if (rec.family == Family::kActors) ++actors_;
    return std::optional<Record>(std::move(rec));
  }

 private:
  Reader r_;
  uint64_t records_ = 0, actors_ = 0;
};

}  // namespace

Result<ArchiveProgress> export_actors(const Store& store, const ExportFilter& filter, std::ostream& out,
                                      const ProgressFn& progress) {
  // The actors first (ids and rows), then their key index entries.
  std::vector<std::pair<std::string, std::string>> actors;  // id, stored row
  Status st = store.scan(Family::kActors, [&](std::string_view k, std::string_view v) {
    if (!filter.ids.empty() && !filter.ids.count(std::string(k))) return true;
    if (!filter.name.empty()) {
      auto row = decode_actor_row(v);
      if (!row.ok() || row->name != filter.name) return true;
    }
    actors.emplace_back(std::string(k), std::string(v));
    return true;
  });
  if (!st.ok()) return st.error();
  std::map<std::string, std::vector<std::string>> index_keys;  // actor id -> its key index keys
  st = store.scan(Family::kKeyIndex, [&](std::string_view k, std::string_view v) {
    index_keys[std::string(v)].emplace_back(k);
    return true;
  });
  if (!st.ok()) return st.error();

  Writer w(out);
  w.raw(kMagic, 8);
  w.num<uint32_t>(kVersion);
  ArchiveProgress p;
  p.actors_total = actors.size();
  for (const auto& [id, row] : actors) {
    w.record(Family::kActors, id, row);
    if (auto it = index_keys.find(id); it != index_keys.end())
      for (const auto& k : it->second) w.record(Family::kKeyIndex, k, id);
    for (Family f : kPerActor) {
      st = store.scan_prefix(f, id, [&](std::string_view k, std::string_view v) {
        w.record(f, k, v);
        return true;
      });
      if (!st.ok()) return st.error();
    }
    if (!w.ok()) return make_error("archive", "write_failed", "Writing the archive failed (disk full?).");
    ++p.actors_done;
    p.records = w.records();
    p.bytes = w.bytes();
    if (progress) progress(p);
  }
  const uint64_t sum = w.checksum();
  w.num<uint8_t>(kTrailer, false);
  w.num<uint64_t>(w.records(), false);
  w.num<uint64_t>(p.actors_done, false);
  w.num<uint64_t>(sum, false);
  out.flush();
  if (!w.ok()) return make_error("archive", "write_failed", "Writing the archive failed (disk full?).");
  p.records = w.records();
  p.bytes = w.bytes();
  return p;
}

Result<ArchiveProgress> import_actors(Store& store, std::istream& in, const ImportOptions& opts,
                                      const ProgressFn& progress) {
  // Pass 1: verify everything; write nothing.
  ArchiveProgress p;
  {
    ArchiveStream a(in);
    if (auto st = a.header(); !st.ok()) return st.error();
    std::string current;  // the actor whose records follow
    std::set<std::string> seen;
    for (;;) {
      auto rec = a.next();
      if (!rec.ok()) return rec.error();
      if (!*rec) break;
      Record& r = **rec;
      if (r.family == Family::kActors) {
        auto row = decode_actor_row(r.value);
        if (!row.ok()) return invalid("actor " + r.key + " has an unreadable record.");
        if (row->actor_id != r.key) return invalid("actor record " + r.key + " names another id.");
        if (!seen.insert(r.key).second) return invalid("actor " + r.key + " appears twice.");
        current = r.key;
        auto existing = store.get(Family::kActors, r.key);
        if (!existing.ok()) return existing.error();
        if (existing->has_value() && !opts.replace)
          return make_error("archive", "conflict",
                            "Actor " + r.key + " already exists here; import with --replace to overwrite it.");
        ++p.actors_total;
      } else {
        if (current.empty()) return invalid("a record comes before any actor.");
        if (r.family == Family::kKeyIndex) {
          if (r.value != current) return invalid("a key index record names another actor.");
          auto existing = store.get(Family::kKeyIndex, r.key);
          if (!existing.ok()) return existing.error();
          if (existing->has_value() && **existing != current)
            return make_error("archive", "conflict",
                              "Another actor (" + **existing + ") here already has the key of actor " + current + ".");
        } else if (r.key.compare(0, current.size(), current) != 0) {
          return invalid("a record of actor " + current + " has a key outside it.");
        }
      }
    }
  }
  // Pass 2: write, in batches that end between actors.
  in.clear();
  in.seekg(0);
  if (!in) return make_error("archive", "not_seekable", "The archive must be a file (it is read twice).");
  ArchiveStream a(in);
  if (auto st = a.header(); !st.ok()) return st.error();
  rocksdb::WriteBatch batch;
  size_t batch_bytes = 0;
  auto flush = [&]() -> Status {
    if (batch.Count() == 0) return Ok{};
    Status st = store.write_synced(batch);
    batch.Clear();
    batch_bytes = 0;
    if (progress) progress(p);
    return st;
  };
  std::string actor;  // the id of the actor whose records come now
  for (;;) {
    auto rec = a.next();
    if (!rec.ok()) return rec.error();
    if (!*rec) break;
    Record& r = **rec;
    if (r.family == Family::kActors) {
      if (batch_bytes >= kBatchBytes)
        if (auto st = flush(); !st.ok()) return st.error();
      if (opts.replace) {
        store.del(batch, Family::kActors, r.key);
        for (Family f : kPerActor) store.del_prefix(batch, f, r.key);
      }
      ++p.actors_done;
    }
    store.put(batch, r.family, r.key, r.value);
    // The time-ordered index is derived, not archived: each schedule
    // brings its entry.
    if (r.family == Family::kActors) actor = r.key;
    if (r.family == Family::kSchedules && !actor.empty() && r.key.rfind(actor, 0) == 0)
      if (auto row = decode_schedule_row(r.value); row.ok())
        store.put(batch, Family::kDue, due_key(row->due_ts, actor, row->id), "");
    batch_bytes += r.key.size() + r.value.size();
    ++p.records;
    p.bytes += r.key.size() + r.value.size() + 9;
  }
  if (auto st = flush(); !st.ok()) return st.error();
  return p;
}

}  // namespace anvil::storage
