// Versioned schema migrations, embedded into the binary at build time.
//
// A migration set is a folder of `NNNN_name.sql` files (NNNN = version, from
// 0001). The CMake function `anvil_embed_migrations(<target> <set> <dir>)`
// (storage/pg/CMakeLists.txt) compiles the files into <target> and generates
// the header "anvil_migrations/<set>.hpp" declaring
//   const std::vector<anvil::pg::Migration>& anvil::pg::embedded::<set>();
// so the running binary never reads the source tree.
//
// apply_migrations, under a Postgres advisory lock (two nodes starting at
// once apply each migration once):
//   - creates schema_migrations(set_name, version, name, checksum, applied_at)
//     in the first schema of the search_path, if missing;
//   - refuses with db.migration_changed (naming the file) when an applied
//     migration's SHA-256 differs from the embedded file's;
//   - refuses with db.migration_unknown when the database has a version of
//     the set that the binary does not know (a newer binary ran before);
//   - applies the missing ones in version order, each in its own transaction
//     together with its schema_migrations row.
// It checks everything before applying anything, so a refused start changes
// nothing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/value/error.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::pg {

struct Migration {
  int version = 0;   // NNNN of the file name
  std::string name;  // file name, e.g. "0001_identity.sql"
  std::string sql;   // file contents, run as one script
};

// Lower-case hex SHA-256 of `data` (OpenSSL).
std::string sha256_hex(std::string_view data);

// Applies `migrations` (any order; versions must be unique and > 0) of `set`.
// Blocking: call at startup, before actors use the tables.
Status apply_migrations(Pool& pool, std::string_view set, const std::vector<Migration>& migrations);

}  // namespace anvil::pg
