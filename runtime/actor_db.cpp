// Per-actor SQLite: the connection (pragmas, migrations, statements, values),
// the author-facing Database handle, and the instance's side (opening from
// RocksDB family db_pages, handing a turn's pages to its WriteBatch).
#include "runtime/actor_db.hpp"

#include <sqlite3.h>

#include <spdlog/spdlog.h>

#include "runtime/instance.hpp"
#include "runtime/instance_support.hpp"
#include "storage/store.hpp"

namespace anvil {
namespace {

constexpr size_t kMaxCachedStatements = 64;

Error invalid_parameter(size_t i, std::string why) {
  return make_error("db", "invalid_parameter", "Parameter " + std::to_string(i + 1) + " " + std::move(why),
                    obj({{"index", static_cast<int64_t>(i + 1)}}));
}

// Value -> SQLite: null/undefined NULL, bool 0/1, integers (and bigints
// that fit) INTEGER, doubles REAL, strings TEXT, bytes BLOB.
Status bind(sqlite3_stmt* stmt, size_t i, const Value& v) {
  const int at = static_cast<int>(i + 1);
  int rc = SQLITE_OK;
  if (v.is_nullish()) {
    rc = sqlite3_bind_null(stmt, at);
  } else if (v.is_bool()) {
    rc = sqlite3_bind_int64(stmt, at, v.as_bool() ? 1 : 0);
  } else if (v.is_int()) {
    rc = sqlite3_bind_int64(stmt, at, v.as_int());
  } else if (v.is_double()) {
    rc = sqlite3_bind_double(stmt, at, v.as_double());
  } else if (v.is_bigint()) {
    const BigInt& b = v.as_bigint();
    if (b.negative ? b.magnitude > uint64_t(INT64_MAX) + 1 : b.magnitude > uint64_t(INT64_MAX))
      return invalid_parameter(i, "is a bigint outside the 64-bit range.");
    const int64_t n = b.negative ? static_cast<int64_t>(0 - b.magnitude) : static_cast<int64_t>(b.magnitude);
    rc = sqlite3_bind_int64(stmt, at, n);
  } else if (v.is_string()) {
    const std::string& s = v.as_string();
    rc = sqlite3_bind_text64(stmt, at, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
  } else if (v.is_bytes()) {
    const Bytes& b = v.as_bytes();
    rc = sqlite3_bind_blob64(stmt, at, b.data(), b.size(), SQLITE_STATIC);
  } else {
    return invalid_parameter(i, "must be null, a boolean, a number, a string or bytes.");
  }
  if (rc != SQLITE_OK) return invalid_parameter(i, "could not be bound.");
  return Ok{};
}

bool only_blanks(const char* p) {
  for (; *p; ++p)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';') return false;
  return true;
}

}  // namespace

Value sqlite_column(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
      return Value(static_cast<int64_t>(sqlite3_column_int64(stmt, i)));
    case SQLITE_FLOAT:
      return Value(sqlite3_column_double(stmt, i));
    case SQLITE_TEXT: {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      return Value(std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt, i))));
    }
    case SQLITE_BLOB: {
      const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt, i));
      return Value(Bytes(p, p + sqlite3_column_bytes(stmt, i)));
    }
    default:
      return Value(nullptr);
  }
}

// ---------------------------------------------------------------- ActorDb

Result<std::unique_ptr<ActorDb>> ActorDb::open(std::unique_ptr<db::PageFile> file, const std::string& actor_id,
                                               const DatabaseOptions& opts) {
  std::unique_ptr<ActorDb> self(new ActorDb(std::move(file), opts));
  if (int rc = db::open_database(*self->file_, actor_id, &self->db_); rc != SQLITE_OK)
    return make_error("db", "unavailable", std::string("SQLite could not open the database: ") + sqlite3_errstr(rc));
  // One connection owns the file for good (EXCLUSIVE), the rollback journal
  // stays in memory (statement and transaction rollback within a turn), and
  // nothing is synced by SQLite: the turn's commit is the durability point.
  const std::string max_pages =
      "PRAGMA max_page_count=" + std::to_string(std::max<size_t>(1, opts.max_bytes / db::kPageSize));
  for (const char* pragma : {"PRAGMA page_size=4096", "PRAGMA locking_mode=EXCLUSIVE", "PRAGMA journal_mode=MEMORY",
                             "PRAGMA synchronous=OFF", "PRAGMA temp_store=MEMORY", "PRAGMA cache_size=-512",
                             max_pages.c_str()})
    if (auto st = self->plain(pragma); !st.ok()) return st.error();
  if (auto st = self->begin(); !st.ok()) return st.error();
  if (auto st = self->migrate(); !st.ok()) return st.error();
  return self;
}

ActorDb::~ActorDb() {
  for (auto& [_, stmt] : stmts_) sqlite3_finalize(stmt);
  if (db_) sqlite3_close(db_);
}

Error ActorDb::error(int rc, std::string_view what) {
  const int primary = rc & 0xff;
  if (primary == SQLITE_FULL) {
    failure_ = make_error("db", "too_large",
                          "The actor's database would exceed " + std::to_string(opts_.max_bytes) +
                              " bytes; the turn was discarded.",
                          obj({{"maxBytes", static_cast<int64_t>(opts_.max_bytes)}}));
    return *failure_;
  }
  Error e = make_error("db", "query_failed", std::string(what) + ": " + sqlite3_errmsg(db_),
                       obj({{"sqliteCode", static_cast<int64_t>(rc)}, {"sqliteError", sqlite3_errstr(rc)}}));
  if (primary == SQLITE_NOMEM || primary == SQLITE_IOERR || primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
    failure_ = e;
  return e;
}

Status ActorDb::plain(const char* sql) {
  char* msg = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  sqlite3_free(msg);
  if (rc != SQLITE_OK) return error(rc, sql);
  return Ok{};
}

Status ActorDb::begin() {
  if (failure_) return *failure_;
  if (!sqlite3_get_autocommit(db_)) return Ok{};  // the turn's transaction is open
  return plain("BEGIN");
}

Status ActorDb::migrate() {
  // The applied version is SQLite's user_version (in the file header), so it
  // commits with the schema it describes.
  auto rows = query("PRAGMA user_version", {});
  if (!rows.ok()) return rows.error();
  const int64_t applied = (*rows)[0].as_object()[0].second.as_int();
  const auto& list = opts_.migrations;
  if (applied > static_cast<int64_t>(list.size())) {
    failure_ = make_error("db", "migration_unknown",
                          "The database is at migration " + std::to_string(applied) + " but the actor type has " +
                              std::to_string(list.size()) + ".");
    return *failure_;
  }
  for (size_t v = static_cast<size_t>(applied); v < list.size(); ++v) {
    char* msg = nullptr;
    const int rc = sqlite3_exec(db_, list[v].c_str(), nullptr, nullptr, &msg);
    std::string why = msg ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    if (rc != SQLITE_OK) {
      Error e = error(rc, "migration");
      if (failure_ && failure_->code == "too_large") return e;
      failure_ = make_error("db", "migration_failed", "Migration " + std::to_string(v + 1) + " failed: " + why,
                            obj({{"version", static_cast<int64_t>(v + 1)}}));
      return *failure_;
    }
    const std::string set = "PRAGMA user_version=" + std::to_string(v + 1);
    if (auto st = plain(set.c_str()); !st.ok()) {
      failure_ = st.error();
      return st;
    }
  }
  return Ok{};
}

Result<sqlite3_stmt*> ActorDb::prepare(std::string_view sql) {
  if (auto it = stmts_.find(std::string(sql)); it != stmts_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                                    &tail);
  if (rc != SQLITE_OK) return error(rc, "prepare");
  const std::string rest(tail ? tail : "", tail ? static_cast<size_t>(sql.data() + sql.size() - tail) : 0);
  if (!only_blanks(rest.c_str())) {
    sqlite3_finalize(stmt);
    return make_error("db", "query_failed", "One statement per call (use a migration for scripts).");
  }
  if (!stmt) return static_cast<sqlite3_stmt*>(nullptr);  // blank or a comment
  if (stmts_.size() >= kMaxCachedStatements) {
    for (auto& [_, s] : stmts_) sqlite3_finalize(s);
    stmts_.clear();
  }
  stmts_.emplace(std::string(sql), stmt);
  return stmt;
}

Status ActorDb::run(sqlite3_stmt* stmt, const Array& params, Array* rows) {
  const auto expected = static_cast<size_t>(sqlite3_bind_parameter_count(stmt));
  if (params.size() != expected)
    return make_error("db", "invalid_parameter",
                      "The statement takes " + std::to_string(expected) + " parameters; " +
                          std::to_string(params.size()) + " were given.");
  Status out = Ok{};
  for (size_t i = 0; i < params.size() && out.ok(); ++i) out = bind(stmt, i, params[i]);
  while (out.ok()) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      out = error(rc, "step");
      break;
    }
    if (!rows) continue;
    Object row;
    const int n = sqlite3_column_count(stmt);
    row.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) row.emplace_back(sqlite3_column_name(stmt, i), sqlite_column(stmt, i));
    rows->emplace_back(std::move(row));
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  return out;
}

Result<DbExecResult> ActorDb::exec(std::string_view sql, const Array& params) {
  if (auto st = begin(); !st.ok()) return st.error();
  auto stmt = prepare(sql);
  if (!stmt.ok()) return stmt.error();
  if (!*stmt) return DbExecResult{};
  if (auto st = run(*stmt, params, nullptr); !st.ok()) return st.error();
  return DbExecResult{sqlite3_changes64(db_), sqlite3_last_insert_rowid(db_)};
}

Result<Array> ActorDb::bind_named(std::string_view sql, const Object& named) {
  auto stmt = prepare(sql);
  if (!stmt.ok()) return stmt.error();
  Array out;
  if (!*stmt) return out;
  const int count = sqlite3_bind_parameter_count(*stmt);
  for (int i = 1; i <= count; ++i) {
    const char* full = sqlite3_bind_parameter_name(*stmt, i);
    if (!full || (full[0] != ':' && full[0] != '@' && full[0] != '$'))
      return make_error("db", "invalid_parameter",
                        "Parameter " + std::to_string(i) + " of the statement is positional; pass args, not properties.");
    const std::string_view name(full);
    const Value* v = nullptr;
    for (const auto& [k, val] : named)
      if (k == name) v = &val;  // the exact spelling first
    if (!v)
      for (const auto& [k, val] : named)
        if (k == name.substr(1)) v = &val;
    if (!v) return make_error("db", "invalid_parameter", "Missing named parameter " + std::string(name) + ".");
    out.push_back(*v);
  }
  return out;
}

Result<Array> ActorDb::query(std::string_view sql, const Array& params) {
  if (auto st = begin(); !st.ok()) return st.error();
  auto stmt = prepare(sql);
  if (!stmt.ok()) return stmt.error();
  Array rows;
  if (!*stmt) return rows;
  if (auto st = run(*stmt, params, &rows); !st.ok()) return st.error();
  return rows;
}

bool ActorDb::writing() const { return sqlite3_txn_state(db_, nullptr) == SQLITE_TXN_WRITE || file_->has_changes(); }

Status ActorDb::commit() {
  if (failure_) return *failure_;
  if (sqlite3_get_autocommit(db_)) return Ok{};  // nothing open (or the code committed itself)
  if (auto st = plain("COMMIT"); !st.ok()) {
    if (!failure_) failure_ = st.error();  // the turn cannot be saved as it is
    return st;
  }
  return Ok{};
}

// ---------------------------------------------------------------- context API

Result<DbExecResult> Database::exec(std::string_view sql, const Array& params) { return core_.db_exec(sql, params); }

Result<Array> Database::query(std::string_view sql, const Array& params) { return core_.db_query(sql, params); }

Database ActorContext::db() { return Database(core_); }

// ---------------------------------------------------------------- instance side

Result<ActorDb*> Instance::database() {
  if (db_) return db_.get();
  const DatabaseOptions* opts = def_.database_options();
  if (!opts)
    return make_error("db", "not_enabled", "The actor type `" + name + "` declares no database (ActorDefinition::database).");
  if (db_closed_) return detail::aborted_error();
  auto file = std::make_unique<db::PageFile>();
  auto st = rt_.store().scan_prefix(storage::Family::kDbPages, actor_id, [&](std::string_view k, std::string_view v) {
    file->load(db::page_number(k, actor_id.size()), v);
    return true;
  });
  if (!st.ok()) return st.error();
  auto opened = ActorDb::open(std::move(file), actor_id, *opts);
  if (!opened.ok()) {
    // A failed open (a migration, the size limit) poisons the turn: nothing
    // it did is kept, and the next instance tries again.
    db_error_ = opened.error();
    return opened.error();
  }
  db_ = std::move(*opened);
  return db_.get();
}

Result<DbExecResult> Instance::db_exec(std::string_view sql, const Array& params) {
  auto d = database();
  if (!d.ok()) return d.error();
  return (*d)->exec(sql, params);
}

Result<Array> Instance::db_query(std::string_view sql, const Array& params) {
  auto d = database();
  if (!d.ok()) return d.error();
  return (*d)->query(sql, params);
}

std::optional<Error> Instance::db_failure() const {
  if (db_error_) return db_error_;
  if (db_ && db_->failure()) return db_->failure();
  return std::nullopt;
}

Status Instance::flush_db() {
  if (auto failed = db_failure()) return *failed;
  if (!db_) return Ok{};
  if (auto st = db_->commit(); !st.ok()) return st;
  auto& store = rt_.store();
  db_->file().collect(
      [&](uint32_t p, std::string_view bytes) {
        store.put(batch(), storage::Family::kDbPages, db::page_key(actor_id, p), bytes);
      },
      [&](uint32_t p) { store.del(batch(), storage::Family::kDbPages, db::page_key(actor_id, p)); });
  return Ok{};
}

void Instance::close_db() {
  db_.reset();
  db_error_.reset();
  db_closed_ = true;
}

}  // namespace anvil
