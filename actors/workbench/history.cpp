// history [orgId]: the organization's audit feed (not a coordinator). The
// organization appends what it sees; subscribers get historyAppended.
#include "actors/workbench/common.hpp"
#include "actors/workbench/workbench.hpp"

#include "base/value/json.hpp"

namespace anvil::workbench {
namespace {

const std::vector<std::string> kMigrations = {
    "CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, source_id INTEGER UNIQUE, at INTEGER NOT NULL, "
    "kind TEXT NOT NULL, data TEXT NOT NULL);",
};

constexpr int64_t kSnapshotEntries = 100;

Value entry_row(const Value& r) {
  auto data = json::parse(str_or(r, "data"));
  return obj({{"id", *r.find("id")},
              {"at", *r.find("at")},
              {"kind", *r.find("kind")},
              {"data", data.ok() ? *data : Value()}});
}

Result<bool> append(ActionContext& c, const Value& item) {
  if (auto st = require_caller(c, "organization", {c.key().at(0)}); !st.ok()) return st.error();
  if (!item.is_object()) return invalid_argument("A history entry is an object.");
  const Value* e = &item;
  const Value* data = e->find("data");
  // The organization numbers its entries: a delivery repeated after a crash
  // is recorded once.
  auto ins = c.db().exec("INSERT OR IGNORE INTO entries (source_id, at, kind, data) VALUES (?, ?, ?, ?)",
                         {Value(int_or(*e, "sourceId", 0)), Value(int_or(*e, "at", now_unix_ms())),
                          Value(str_or(*e, "kind")), Value(json::dump(data ? *data : Value()))});
  if (!ins.ok()) return ins.error();
  if (ins->changes == 0) return false;
  auto row = c.db().query("SELECT id, at, kind, data FROM entries WHERE id = ?", {Value(ins->last_insert_rowid)});
  if (!row.ok()) return row.error();
  publish(c, "historyAppended", {{"entry", entry_row((*row)[0])}});
  return true;
}

Result<Array> entries(ActorContext& c, int64_t after, int64_t limit, bool newest) {
  auto rows = newest ? c.db().query("SELECT id, at, kind, data FROM (SELECT * FROM entries ORDER BY id DESC LIMIT ?) "
                                    "ORDER BY id",
                                    {Value(limit)})
                     : c.db().query("SELECT id, at, kind, data FROM entries WHERE id > ? ORDER BY id LIMIT ?",
                                    {Value(after), Value(limit)});
  if (!rows.ok()) return rows.error();
  Array out;
  for (const auto& r : *rows) out.push_back(entry_row(r));
  return out;
}

// list({afterId?, limit?}): entries in order, oldest first.
Result<Value> list(ActionContext& c, const Array& args) {
  Value o = args.empty() || args[0].is_nullish() ? Value(Object{}) : args[0];
  auto out = entries(c, int_or(o, "afterId", 0), std::clamp<int64_t>(int_or(o, "limit", 100), 1, 1000), false);
  if (!out.ok()) return out.error();
  return Value(std::move(*out));
}

Result<Value> get_snapshot(ActionContext& c, const Array&) {
  auto out = entries(c, 0, kSnapshotEntries, true);
  if (!out.ok()) return out.error();
  return obj({{"seq", Value(current_seq(c))}, {"entries", Value(std::move(*out))}});
}

}  // namespace

ActorDefinition history_actor() {
  ActorDefinition def("history");
  def.initial_state(obj({{"seq", 0}}))
      .database(database(kMigrations))
      .created_only_by({"organization"}, child_refusal("history", "organization"))
      .action("_append", pushes(append))
      .action("list", list)
      .action("getSnapshot", get_snapshot);
  guard_internal(def);
  return def;
}

}  // namespace anvil::workbench
