// `anvil actors ...`: list and show actors, online (a node's admin routes)
// or offline (a data directory, read-only, safe while a node runs on it).
// docs/operator-guide.md, "The anvil CLI".
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/value/error.hpp"
#include "base/value/value.hpp"
#include "runtime/inspect.hpp"

namespace anvil::storage {
class Store;
}

namespace anvil::tools {

// args: everything after `anvil actors`. Returns the process exit code
// (0 ok, 1 not found or failed, 2 usage).
int actors_command(const std::vector<std::string>& args);

// The offline reader: a data directory opened as a RocksDB secondary
// instance (its scratch files in a private temp directory, removed on
// destruction), never writing to the directory.
class DataDirReader {
 public:
  // `dir`: a node's --data-dir (holding rocksdb/) or the RocksDB directory itself.
  static Result<std::unique_ptr<DataDirReader>> open(const std::string& dir);
  ~DataDirReader();

  Result<Value> list(const inspect::ActorFilter& filter) const;
  Result<Value> get(const std::string& actor_id) const;
  Result<Value> view(const std::string& actor_id, inspect::View view, const std::string& arg) const;
  // Whether a process holds the database's lock (a node runs on it), and
  // when that process started (ms since epoch; 0 when unknown).
  bool node_running() const { return holder_.has_value(); }
  int64_t node_started_ms() const { return holder_.value_or(0); }

 private:
  DataDirReader() = default;
  bool awake(const storage::ActorRow& row) const;

  std::string scratch_;
  std::unique_ptr<storage::Store> store_;
  std::optional<int64_t> holder_;
};

}  // namespace anvil::tools
