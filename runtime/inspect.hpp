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

// Whether the actor of this record is awake now.
using AwakeFn = std::function<bool(const storage::ActorRow&)>;

// `prefix` in serialized key form (runtime/actor_key.hpp: components joined
// by '/'): every component but the last must equal the key's, the last is a
// string prefix of the key's component at that place. "" matches every key;
// "user-" matches ["user-1"]; "org/" matches ["org", anything].
bool key_has_prefix(const std::vector<std::string>& key, const std::string& prefix);

// One page of actors in id order: {"actors": [summary...], "cursor": next
// id or null when this is the last page}.
Result<Value> list_actors(const storage::Store& store, const ActorFilter& filter, const AwakeFn& awake);

// The detail of one actor; actor.not_found when there is none.
Result<Value> get_actor(const storage::Store& store, const std::string& actor_id, const AwakeFn& awake);

// An actor record's summary {id, name, key, awake}.
Value actor_summary(const storage::ActorRow& row, bool awake);

}  // namespace inspect
}  // namespace anvil
