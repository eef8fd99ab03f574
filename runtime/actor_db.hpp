// Runtime-internal: one awake actor's SQLite connection (ActorContext::db).
//
// Contract with the instance: every turn that uses the database runs in one
// SQLite transaction (BEGIN on the turn's first statement), which commit()
// ends at the turn's commit point; the instance then moves the file's dirty
// pages into the turn's WriteBatch. A turn is never rolled back in place: an
// instance whose turn is discarded (a failed action that wrote, the size
// limit, the state ceiling) stops, and the next instance opens the database
// again from the durable pages. So SQLite's own rollback is never relied on
// for atomicity with the state.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "runtime/actor_api.hpp"
#include "runtime/sqlite_vfs.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace anvil {

// A result column as a Value: INTEGER => int64, REAL => double, TEXT =>
// string, BLOB => bytes, NULL => null.
Value sqlite_column(sqlite3_stmt* stmt, int i);

class ActorDb {
 public:
  // Opens the database held by `file` (its durable pages), and begins the
  // first transaction, in which the type's pending migrations run (errors:
  // db.migration_failed, db.too_large; nothing of a failed open is kept).
  static Result<std::unique_ptr<ActorDb>> open(std::unique_ptr<db::PageFile> file, const std::string& actor_id,
                                               const DatabaseOptions& opts);
  ~ActorDb();
  ActorDb(const ActorDb&) = delete;
  ActorDb& operator=(const ActorDb&) = delete;

  Result<DbExecResult> exec(std::string_view sql, const Array& params);
  Result<Array> query(std::string_view sql, const Array& params);
  // The positional parameters of `sql` from named ones (`:name`, `@name` or
  // `$name` in the statement; `named` keys with or without that prefix, as
  // rivetkit's inspector binds them). A `?` parameter or a name missing
  // from `named` is db.invalid_parameter.
  Result<Array> bind_named(std::string_view sql, const Object& named);

  // Whether the current turn's transaction has written anything.
  bool writing() const;
  // Ends the current turn's transaction (COMMIT), so that every page it
  // changed is in file(). An error poisons the connection.
  Status commit();
  db::PageFile& file() { return *file_; }
  // Set once an error left the turn unusable (the size limit, a failed
  // migration, an I/O or corruption error): the instance must discard the
  // turn and stop.
  const std::optional<Error>& failure() const { return failure_; }

 private:
  ActorDb(std::unique_ptr<db::PageFile> file, const DatabaseOptions& opts) : file_(std::move(file)), opts_(opts) {}
  Status begin();
  Status migrate();
  Result<sqlite3_stmt*> prepare(std::string_view sql);
  // Binds, steps to the end (rows into `rows` when given) and resets.
  Status run(sqlite3_stmt* stmt, const Array& params, Array* rows);
  Error error(int rc, std::string_view what);
  Status plain(const char* sql);

  std::unique_ptr<db::PageFile> file_;  // outlives db_ (declared first, destroyed last)
  const DatabaseOptions& opts_;         // the type's, alive as long as the registry
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;  // prepared once per connection
  std::optional<Error> failure_;
};

}  // namespace anvil
