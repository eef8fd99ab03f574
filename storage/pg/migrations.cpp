#include "storage/pg/migrations.hpp"

#include <algorithm>
#include <map>

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

namespace anvil::pg {

namespace {

// pg_advisory_xact_lock key shared by every Anvil node and migration set
// ("anvilmig" in ASCII).
constexpr int64_t kLockKey = 0x616e76696c6d6967;

constexpr std::string_view kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " set_name text NOT NULL,"
    " version int NOT NULL CHECK (version > 0),"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (set_name, version))";

struct Known {
  const Migration* migration;
  std::string checksum;
};

// One locked round: verify everything applied so far, then apply the first
// missing migration. Returns its name, or null when nothing is missing.
Result<Value> apply_next(Tx& tx, std::string_view set, const std::map<int, Known>& known) {
  if (auto r = tx.exec("SELECT pg_advisory_xact_lock($1::int8)", {Value(kLockKey)}); !r) return r.take_error();
  if (auto r = tx.exec(kCreateTable); !r) return r.take_error();
  auto applied = tx.exec("SELECT version, name, checksum FROM schema_migrations WHERE set_name = $1 ORDER BY version",
                         {Value(std::string(set))});
  if (!applied) return applied.take_error();

  std::map<int, bool> done;
  for (const auto& row : applied->rows) {
    int version = int(row.find("version")->as_int());
    const auto& name = row.find("name")->as_string();
    const auto& checksum = row.find("checksum")->as_string();
    auto it = known.find(version);
    if (it == known.end())
      return make_error("db", "migration_unknown",
                        "database has migration " + name + " of set '" + std::string(set) +
                            "' that this binary does not know (was a newer version deployed?)",
                        obj({{"set", std::string(set)}, {"version", version}, {"name", name}}));
    if (it->second.checksum != checksum)
      return make_error("db", "migration_changed",
                        "migration " + it->second.migration->name + " of set '" + std::string(set) +
                            "' was changed after it was applied; add a new migration instead",
                        obj({{"set", std::string(set)},
                             {"version", version},
                             {"name", it->second.migration->name},
                             {"applied_checksum", checksum},
                             {"file_checksum", it->second.checksum}}));
    done[version] = true;
  }

  for (const auto& [version, k] : known) {
    if (done.count(version)) continue;
    if (auto st = tx.exec_script(k.migration->sql); !st) {
      Error e = st.take_error();
      e.message = "migration " + k.migration->name + " failed: " + e.message;
      return e;
    }
    auto ins = tx.exec("INSERT INTO schema_migrations (set_name, version, name, checksum) VALUES ($1, $2, $3, $4)",
                       {Value(std::string(set)), Value(version), Value(k.migration->name), Value(k.checksum)});
    if (!ins) return ins.take_error();
    return Value(k.migration->name);
  }
  return Value(nullptr);
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

Status apply_migrations(Pool& pool, std::string_view set, const std::vector<Migration>& migrations) {
  std::map<int, Known> known;
  for (const auto& m : migrations) {
    if (m.version <= 0 || !known.emplace(m.version, Known{&m, sha256_hex(m.sql)}).second)
      return make_error("db", "migration_invalid",
                        "migration set '" + std::string(set) + "' has an invalid or repeated version in " + m.name);
  }
  for (;;) {
    auto r = transaction_sync(pool, [&](Tx& tx) { return apply_next(tx, set, known); });
    if (!r) return r.take_error();
    if (r->is_null()) return Ok{};
    spdlog::info("postgres: applied migration {}/{}", set, r->as_string());
  }
}

}  // namespace anvil::pg
