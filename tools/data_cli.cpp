#include "tools/data_cli.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "storage/archive.hpp"
#include "storage/store.hpp"

namespace anvil::tools {
namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

constexpr const char* kUsageText = R"(Usage:
  anvil data export --data-dir DIR [--name NAME] [--id ID]... [-o FILE]
        write the actors of DIR (all, those of type NAME, or the given ids)
        to an archive (FILE, or stdout). Safe while a node runs on DIR: it
        reads a consistent view without writing there.
  anvil data import --data-dir DIR [--replace] FILE
        add the archive's actors to DIR. The node on DIR must be stopped.
        The whole archive is verified first; nothing is written when it is
        damaged, or when an actor id or key is already there (--replace
        overwrites actors with the same id; a key held by another actor is
        always refused). Start the node afterwards: it serves them and arms
        their schedules.
  anvil data compact --data-dir DIR
        compact every column family: reclaims the space of deleted and
        overwritten records. The node on DIR must be stopped.

Progress goes to stderr: a bar on a terminal, plain lines otherwise.
The archive format is in docs/operator-guide.md ("Actor archives").
Exit codes: 0 ok, 1 failed (nothing imported when the archive is refused), 2 usage.
)";

int usage(const std::string& msg) {
  std::cerr << "anvil data: " << msg << "\n\nRun `anvil data --help` for usage.\n";
  return kUsage;
}

// Progress on stderr: a redrawn bar on a terminal, else a line per 10%
// (and at the end).
class Progress {
 public:
  explicit Progress(std::string what) : what_(std::move(what)), tty_(::isatty(2) == 1) {}
  void update(uint64_t done, uint64_t total, const std::string& detail) {
    if (tty_) {
      const int width = 30;
      const int filled = total ? static_cast<int>(width * done / total) : width;
      std::fprintf(stderr, "\r%s [%s%s] %llu/%llu %s", what_.c_str(), std::string(filled, '#').c_str(),
                   std::string(width - filled, ' ').c_str(), static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total), detail.c_str());
      std::fflush(stderr);
      return;
    }
    const int decile = total ? static_cast<int>(10 * done / total) : 10;
    if (decile <= last_decile_ && done != total) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s: %llu/%llu %s\n", what_.c_str(), static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total), detail.c_str());
  }
  void finish() {
    if (tty_) std::fprintf(stderr, "\n");
  }

 private:
  std::string what_;
  bool tty_;
  int last_decile_ = -1;
};

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// The data directory's RocksDB, as `anvil serve` keeps it.
std::string db_path(const std::string& data_dir) { return (std::filesystem::path(data_dir) / "rocksdb").string(); }

Result<std::unique_ptr<storage::Store>> open_primary(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);  // importing into a new node's directory
  storage::StoreOptions o;
  o.path = db_path(data_dir);
  o.create_if_missing = true;
  auto s = storage::Store::open(o);
  if (!s.ok() && s.error().message.find("lock") != std::string::npos)
    return make_error("data", "in_use",
                      "The data directory is in use (a node runs on it?): stop the node first. (" +
                          s.error().message + ")");
  return s;
}

int do_export(const std::vector<std::string>& args) {
  std::string dir, out_path;
  storage::ExportFilter filter;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    const std::string* v = nullptr;
    if (a == "--data-dir" && (v = value())) dir = *v;
    else if (a == "--name" && (v = value())) filter.name = *v;
    else if (a == "--id" && (v = value())) filter.ids.insert(*v);
    else if ((a == "-o" || a == "--output") && (v = value())) out_path = *v;
    else return usage("unknown or incomplete option `" + a + "`");
  }
  if (dir.empty()) return usage("export needs --data-dir");
  if (!std::filesystem::exists(db_path(dir))) {
    std::cerr << "anvil data export: " << dir << " is not a data directory (no rocksdb/ in it)\n";
    return kFailed;
  }
  const std::string secondary = (std::filesystem::temp_directory_path() /
                                 ("anvil-export-" + std::to_string(::getpid())))
                                    .string();
  auto store = storage::Store::open_secondary(db_path(dir), secondary);
  if (!store.ok()) {
    std::cerr << "anvil data export: " << store.error().message << "\n";
    return kFailed;
  }
  std::ofstream file;
  if (!out_path.empty()) {
    file.open(out_path, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "anvil data export: cannot write " << out_path << "\n";
      return kFailed;
    }
  } else if (::isatty(1) == 1) {
    return usage("export writes binary: give -o FILE or redirect stdout");
  }
  std::ostream& out = out_path.empty() ? std::cout : file;
  Progress progress("export");
  auto r = storage::export_actors(**store, filter, out, [&](const storage::ArchiveProgress& p) {
    progress.update(p.actors_done, p.actors_total, "actors, " + mib(p.bytes));
  });
  progress.finish();
  store->reset();
  std::error_code ec;
  std::filesystem::remove_all(secondary, ec);
  if (!r.ok()) {
    std::cerr << "anvil data export: " << r.error().message << "\n";
    if (!out_path.empty()) std::filesystem::remove(out_path, ec);
    return kFailed;
  }
  std::cerr << "exported " << r->actors_done << " actors (" << r->records << " records, " << mib(r->bytes) << ")\n";
  return kOk;
}

int do_import(const std::vector<std::string>& args) {
  std::string dir, file;
  storage::ImportOptions opts;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--data-dir" && i + 1 < args.size()) dir = args[++i];
    else if (a == "--replace") opts.replace = true;
    else if (!a.empty() && a[0] != '-' && file.empty()) file = a;
    else return usage("unknown or incomplete option `" + a + "`");
  }
  if (dir.empty() || file.empty()) return usage("import needs --data-dir DIR and an archive FILE");
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "anvil data import: cannot read " << file << "\n";
    return kFailed;
  }
  auto store = open_primary(dir);
  if (!store.ok()) {
    std::cerr << "anvil data import: " << store.error().message << "\n";
    return kFailed;
  }
  Progress progress("import");
  auto r = storage::import_actors(**store, in, opts, [&](const storage::ArchiveProgress& p) {
    progress.update(p.actors_done, p.actors_total, "actors");
  });
  progress.finish();
  if (!r.ok()) {
    std::cerr << "anvil data import: " << r.error().message << " (" << r.error().qualified() << ")\n";
    return kFailed;
  }
  std::cerr << "imported " << r->actors_done << " actors (" << r->records << " records)\n";
  return kOk;
}

int do_compact(const std::vector<std::string>& args) {
  std::string dir;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data-dir" && i + 1 < args.size()) dir = args[++i];
    else return usage("unknown or incomplete option `" + args[i] + "`");
  }
  if (dir.empty()) return usage("compact needs --data-dir");
  if (!std::filesystem::exists(db_path(dir))) {
    std::cerr << "anvil data compact: " << dir << " is not a data directory (no rocksdb/ in it)\n";
    return kFailed;
  }
  auto store = open_primary(dir);
  if (!store.ok()) {
    std::cerr << "anvil data compact: " << store.error().message << "\n";
    return kFailed;
  }
  const auto before = (*store)->stats().sst_bytes;
  Progress progress("compact");
  const auto n = static_cast<uint64_t>(storage::Family::kCount);
  for (uint64_t f = 0; f < n; ++f) {
    const auto fam = static_cast<storage::Family>(f);
    progress.update(f, n, storage::Store::family_name(fam));
    if (auto st = (*store)->compact(fam); !st.ok()) {
      progress.finish();
      std::cerr << "anvil data compact: " << st.error().message << "\n";
      return kFailed;
    }
  }
  progress.update(n, n, "done");
  progress.finish();
  std::cerr << "compacted: table files " << mib(before) << " -> " << mib((*store)->stats().sst_bytes) << "\n";
  return kOk;
}

}  // namespace

int data_command(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsageText;
    return args.empty() ? kUsage : kOk;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const auto& a : rest)
    if (a == "--help" || a == "-h") {
      std::cout << kUsageText;
      return kOk;
    }
  if (args[0] == "export") return do_export(rest);
  if (args[0] == "import") return do_import(rest);
  if (args[0] == "compact") return do_compact(rest);
  return usage("unknown subcommand `" + args[0] + "`");
}

}  // namespace anvil::tools
