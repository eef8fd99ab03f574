#include "runtime/inspect.hpp"

#include <algorithm>
#include <span>

#include "base/value/cbor.hpp"
#include "runtime/actor_key.hpp"
#include "storage/records.hpp"
#include "storage/store.hpp"

namespace anvil::inspect {
namespace {

std::span<const uint8_t> as_span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Value key_json(const std::string& serialized) {
  Array key;
  for (auto& part : deserialize_key(serialized)) key.emplace_back(std::move(part));
  return Value(std::move(key));
}

Value opt_ms(int64_t ms) { return ms ? Value(ms) : Value(); }

Result<size_t> count_prefix(const storage::Store& store, storage::Family f, const std::string& prefix) {
  size_t n = 0;
  auto st = store.scan_prefix(f, prefix, [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  if (!st.ok()) return st.error();
  return n;
}

Error not_found(const std::string& id) {
  return make_error("actor", "not_found", "The actor does not exist or was destroyed.", obj({{"actor_id", id}}));
}

}  // namespace

bool key_has_prefix(const std::vector<std::string>& key, const std::string& prefix) {
  if (prefix.empty()) return true;
  const ActorKey want = deserialize_key(prefix);
  if (want.empty()) return true;  // "/" is the empty key: a prefix of every key
  if (key.size() < want.size()) return false;
  for (size_t i = 0; i + 1 < want.size(); ++i)
    if (key[i] != want[i]) return false;
  const std::string& last = want.back();
  return key[want.size() - 1].compare(0, last.size(), last) == 0;
}

Value actor_summary(const storage::ActorRow& row, bool awake) {
  return obj({{"id", row.actor_id}, {"name", row.name}, {"key", key_json(row.key)}, {"awake", awake}});
}

Result<Value> list_actors(const storage::Store& store, const ActorFilter& filter, const AwakeFn& awake) {
  const size_t limit = std::clamp<size_t>(filter.limit, 1, 1000);
  Array out;
  bool more = false;
  Status failure = Ok{};
  auto visit = [&](std::string_view k, std::string_view v) {
    if (!filter.cursor.empty() && k <= filter.cursor) return true;  // Seek lands on the cursor itself
    auto row = storage::decode_actor_row(v);
    if (!row.ok()) {
      failure = row.error();
      return false;
    }
    if (!filter.namespace_name.empty() && row->namespace_name != filter.namespace_name) return true;
    if (!filter.name.empty() && row->name != filter.name) return true;
    if (!filter.key_prefix.empty() && !key_has_prefix(deserialize_key(row->key), filter.key_prefix)) return true;
    const bool is_awake = awake(*row);
    if (filter.awake && *filter.awake != is_awake) return true;
    if (out.size() == limit) {
      more = true;
      return false;
    }
    out.push_back(actor_summary(*row, is_awake));
    return true;
  };
  // Actor ids are fixed-width, so id order is key order; a cursor resumes
  // with a seek rather than a walk from the start.
  Status st = filter.cursor.empty() ? store.scan(storage::Family::kActors, visit)
                                    : store.scan_from(storage::Family::kActors, filter.cursor, visit);
  if (!st.ok()) return st.error();
  if (!failure.ok()) return failure.error();
  Value cursor;
  if (more) cursor = out.back().find("id")->as_string();
  return obj({{"actors", Value(std::move(out))}, {"cursor", std::move(cursor)}});
}

Result<Value> get_actor(const storage::Store& store, const std::string& actor_id, const AwakeFn& awake) {
  auto raw = store.get(storage::Family::kActors, actor_id);
  if (!raw.ok()) return raw.error();
  if (!*raw) return not_found(actor_id);
  auto row = storage::decode_actor_row(**raw);
  if (!row.ok()) return row.error();

  Value state;
  int64_t state_bytes = 0;
  bool initialized = false;
  auto srow_raw = store.get(storage::Family::kState, actor_id);
  if (!srow_raw.ok()) return srow_raw.error();
  if (*srow_raw) {
    auto srow = storage::decode_state_row(**srow_raw);
    if (!srow.ok()) return srow.error();
    initialized = srow->initialized;
    state_bytes = static_cast<int64_t>(srow->state.size());
    if (!srow->state.empty()) {
      auto v = cbor::decode(as_span(srow->state), cbor::Mode::Storage);
      if (!v.ok()) return v.error();
      state = std::move(*v);
    }
  }
  Value input;
  if (row->has_input) {
    auto v = cbor::decode(as_span(row->input), cbor::Mode::Storage);
    if (!v.ok()) return v.error();
    input = std::move(*v);
  }

  Value out = actor_summary(*row, awake(*row));
  Object& o = out.as_object();
  o.emplace_back("namespace", row->namespace_name);
  // Rivet-style per-actor inspector tokens are not implemented (issue 15 §2).
  o.emplace_back("inspectorToken", Value());
  o.emplace_back("state", std::move(state));
  o.emplace_back("stateBytes", state_bytes);
  o.emplace_back("stateInitialized", initialized);
  o.emplace_back("input", std::move(input));
  o.emplace_back("createdAt", row->create_ts);
  o.emplace_back("startTs", opt_ms(row->start_ts));
  o.emplace_back("sleepTs", opt_ms(row->sleep_ts));
  o.emplace_back("generation", static_cast<int64_t>(row->generation));
  const std::pair<const char*, storage::Family> counts[] = {
      {"kvKeys", storage::Family::kKv},
      {"queueMessages", storage::Family::kQueue},
      {"schedules", storage::Family::kSchedules},
      {"workflowRecords", storage::Family::kWorkflow},
      {"dbPages", storage::Family::kDbPages},
  };
  for (const auto& [field, family] : counts) {
    auto n = count_prefix(store, family, actor_id);
    if (!n.ok()) return n.error();
    o.emplace_back(field, static_cast<int64_t>(*n));
  }
  return out;
}

}  // namespace anvil::inspect
