// Operator views of actors read straight from a node's RocksDB: the same
// code answers the node's admin routes (`GET /admin/actors…`, over the
// node's own Store) and `anvil actors … --data-dir` (over a secondary,
// read-only Store of a data directory, tools/actors_cli.cpp), so the two
// print the same JSON. Only whether an actor is awake comes from outside
// (`AwakeFn`): the node's directory online, the records and the data
// directory's lock offline.
//
// JSON shapes (docs/operator-guide.md, "The anvil CLI"):
//   summary: {id, name, key, awake}
//   detail:  summary + {namespace, inspectorToken, state, stateBytes,
//            stateInitialized, input, createdAt, startTs, sleepTs,
//            generation, kvKeys, queueMessages, schedules, workflowRecords,
//            dbPages}
// User values (state, input) are the stored CBOR decoded; json::dump tags
// bytes and bigints as rivetkit's JSON-compat does.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil {

namespace storage {
class Store;
struct ActorRow;
}  // namespace storage

namespace inspect {

struct ActorFilter {
  std::string namespace_name;    // "" = every namespace
  std::string name;              // "" = every actor type
  std::string key_prefix;        // serialized key form; see key_has_prefix
  std::optional<bool> awake;     // nullopt = awake and asleep
  std::string cursor;            // the listing starts after this actor id
  size_t limit = 100;            // at most this many per page (1..1000)
};

// What of one actor to show (admin route GET /admin/actors/{id}[/part]).
enum class View : int {
  kDetail,     // the detail object above
  kState,      // the state alone (null before it was first written)
  kSchedules,  // [{id, action, args, dueTs, createdTs, intervalMs, name}], due order
  kKv,         // [{key, value}] in key order; `arg`: a key prefix
  kWorkflow,   // the workflow history: [{path, kind, status, attempts, ...}]
  kSql,        // `arg`: one read-only statement => {columns, rows, truncated}
  kQueue,      // `arg`: at most this many messages ("" = 100) =>
               // {size, maxSize, truncated, messages: [{id, name, createdAtMs, body}]}
  kRivetWorkflow,  // rivet_workflow_history below
};

// Rows a kSql answer holds at most (then "truncated": true).
constexpr size_t kMaxSqlRows = 10'000;

// Whether the actor of this record is awake now.
using AwakeFn = std::function<bool(const storage::ActorRow&)>;

// `prefix` in serialized key form (runtime/actor_key.hpp: components joined
// by '/'): every component but the last must equal the key's, the last is a
// string prefix of the key's component at that place. "" matches every key;
// "user-" matches ["user-1"]; "org/" matches ["org", anything].
bool key_has_prefix(const std::vector<std::string>& key, const std::string& prefix);

// One page of actors: {"actors": [summary...], "cursor": the last one's id,
// or null when this is the last page}. With a `name`, the pages walk that
// type's range of the key index (namespace, then key order) and read only
// its records; without, every record in id order.
Result<Value> list_actors(const storage::Store& store, const ActorFilter& filter, const AwakeFn& awake);

// The detail of one actor; actor.not_found when there is none.
Result<Value> get_actor(const storage::Store& store, const std::string& actor_id, const AwakeFn& awake);

// One view of one actor; actor.not_found when there is none. kSql:
// validation.invalid_input for a statement that is not read-only (or more
// than one), db.query_failed for SQLite's errors; the query runs on a copy
// of the actor's durable database pages, never on the live database.
Result<Value> actor_view(const storage::Store& store, const std::string& actor_id, View view,
                         const std::string& arg, const AwakeFn& awake);

// The workflow history rows (no actor check).
Result<Value> workflow_history(const storage::Store& store, const std::string& actor_id);

// The workflow history as rivetkit's inspector serializes it (no actor
// check): {"history": {nameRegistry, entries: [{id, location, kind}],
// entryMetadata: {id: {...}}} or null when there is none, "workflowState":
// "running"|"sleeping"|"completed"|"failed"|"rolling_back" or null}. An
// entry's id is its Anvil history path (docs/protocol-notes.md, "Inspector").
Result<Value> rivet_workflow_history(const storage::Store& store, const std::string& actor_id);

// An actor record's summary {id, name, key, awake}.
Value actor_summary(const storage::ActorRow& row, bool awake);

}  // namespace inspect
}  // namespace anvil
