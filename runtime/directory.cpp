// The directory: every actor (awake or asleep) by id and by (namespace,
// name, key); create/getOrCreate with exactly one actor per key; lookups and
// listings; the entry side of an instance's lifecycle.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "runtime/actor_id.hpp"
#include "runtime/core.hpp"
#include "runtime/instance.hpp"

namespace anvil {

RuntimeCore::RuntimeCore(asio::io_context& io, storage::Store& store, storage::CommitPipeline& pipeline,
                         const Registry& registry)
    : io_(io), store_(store), pipeline_(pipeline), registry_(registry) {
  for (const auto& name : registry_.names()) wakes.try_emplace(name);
  register_storage_metrics();
}

RuntimeCore::~RuntimeCore() {
  // Entries and instances point at each other; break the cycle.
  std::lock_guard lk(mu_);
  for (auto& [_, e] : by_id_) e->instance.reset();
}

std::string RuntimeCore::index_key(const std::string& ns, const std::string& name,
                                   const std::string& serialized_key) {
  std::string k;
  k.reserve(ns.size() + name.size() + serialized_key.size() + 2);
  k += ns;
  k += '\0';
  k += name;
  k += '\0';
  k += serialized_key;
  return k;
}

storage::ActorRow RuntimeCore::actor_row(const ActorEntry& e) {
  const ActorInfo& info = e.info;
  storage::ActorRow row;
  row.actor_id = info.actor_id;
  row.name = info.name;
  row.key = info.key;
  row.namespace_name = info.namespace_name;
  row.runner_name_selector = info.runner_name_selector;
  row.crash_policy = info.crash_policy;
  row.datacenter = info.datacenter;
  row.create_ts = info.create_ts;
  row.generation = info.generation;
  row.start_ts = info.start_ts.value_or(0);
  row.sleep_ts = info.sleep_ts.value_or(0);
  row.inspector_token = e.inspector_token;
  if (e.input) {
    row.has_input = true;
    auto bytes = cbor::encode(*e.input, cbor::Mode::Storage);
    row.input.assign(bytes.begin(), bytes.end());
  }
  return row;
}

Result<Resolved> RuntimeCore::get_or_create(const CreateRequest& req, bool defer_commit) {
  return resolve(req, false, defer_commit);
}
Result<Resolved> RuntimeCore::create(const CreateRequest& req) { return resolve(req, true, false); }

void RuntimeCore::submit_pending_create(ActorEntry& e) {
  if (!e.pending_create) return;
  const uint64_t seq = pipeline_.submit(std::move(*e.pending_create));
  e.last_seq.store(seq);
  e.create_seq.store(seq);
  e.pending_create.reset();
}

uint64_t RuntimeCore::flush_create(const std::string& actor_id) {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(actor_id);
  if (it == by_id_.end() || !it->second->pending_create) return 0;
  submit_pending_create(*it->second);
  return it->second->last_seq.load();
}

std::unique_ptr<rocksdb::WriteBatch> RuntimeCore::take_pending_create(const std::shared_ptr<ActorEntry>& entry) {
  std::lock_guard lk(mu_);
  return std::move(entry->pending_create);
}

Result<Resolved> RuntimeCore::resolve(const CreateRequest& req, bool fail_if_exists, bool defer_commit) {
  const ActorDefinition* def = registry_.find(req.name);
  if (!def)
    return make_error("actor", "not_registered",
                      "Actor type `" + req.name + "` is not registered on this node.");
  if (auto st = validate_key(req.key); !st.ok()) return st.error();
  const std::string skey = serialize_key(req.key);
  const std::string ikey = index_key(req.namespace_name, req.name, skey);

  std::lock_guard lk(mu_);
  if (auto it = by_key_.find(ikey); it != by_key_.end()) {
    auto& entry = by_id_.at(it->second);
    if (fail_if_exists)
      return make_error("actor", "duplicate_key",
                        "Actor key '" + skey + "' already in use for actor '" + it->second + "'",
                        obj({{"existing_actor_id", it->second}, {"key", skey}}));
    // The creator's commit may still be in flight (or held back for its
    // first turn): report only once durable.
    submit_pending_create(*entry);
    if (pipeline_.lost(entry->create_seq.load())) {
      // Its create was lost to a storage failure (disk full): write it
      // again, so the key keeps its actor and getOrCreate works once the
      // storage takes writes.
      rocksdb::WriteBatch again;
      store_.put(again, storage::Family::kActors, entry->info.actor_id, storage::encode(actor_row(*entry)));
      store_.put(again, storage::Family::kKeyIndex, ikey, entry->info.actor_id);
      const uint64_t seq = pipeline_.submit(std::move(again));
      entry->create_seq.store(seq);
      entry->last_seq.store(seq);
      return Resolved{entry->info, false, seq};
    }
    // A lost last write (disk full) does not make the actor unreachable:
    // then only its creation has to be durable.
    uint64_t seq = entry->last_seq.load();
    if (pipeline_.lost(seq)) seq = entry->create_seq.load();
    return Resolved{entry->info, false, seq};
  }

  // A type only its coordinator creates: anyone else naming a new key is
  // refused before anything is written.
  if (const auto& creators = def->creators();
      !creators.empty() && std::find(creators.begin(), creators.end(), req.creator) == creators.end()) {
    Error refused = def->creation_refusal();
    if (!refused.metadata) refused.metadata = obj({{"name", req.name}, {"key", skey}});
    return refused;
  }

  // Create: the record and the key claim commit in one batch, under the
  // directory lock, so concurrent creators of one key always find one actor.
  auto e = std::make_shared<ActorEntry>();
  e->info.actor_id = new_actor_id();
  e->info.name = req.name;
  e->info.key = skey;
  e->info.namespace_name = req.namespace_name;
  e->info.runner_name_selector = req.runner_name_selector;
  e->info.crash_policy = req.crash_policy;
  e->info.datacenter = req.datacenter;
  e->info.create_ts = now_ms();
  e->input = req.input;
  e->inspector_token = new_inspector_token();

  rocksdb::WriteBatch batch;
  store_.put(batch, storage::Family::kActors, e->info.actor_id, storage::encode(actor_row(*e)));
  store_.put(batch, storage::Family::kKeyIndex, ikey, e->info.actor_id);
  uint64_t seq = 0;
  if (defer_commit) {
    e->pending_create = std::make_unique<rocksdb::WriteBatch>(std::move(batch));
    e->create_seq.store(ActorEntry::kCreateNotSubmitted);
  } else {
    seq = pipeline_.submit(std::move(batch));
    e->last_seq.store(seq);
    e->create_seq.store(seq);
  }
  e->never_started.store(true);

  by_key_[ikey] = e->info.actor_id;
  by_id_[e->info.actor_id] = e;
  spdlog::info("actor {} created: {} key={}", e->info.actor_id, e->info.name, skey);
  // An actor with a run handler starts right away, as on the engine.
  if (registry_.find(req.name)->run_hook()) schedule_workflow(e->info.actor_id);
  return Resolved{e->info, true, seq};
}

std::optional<ActorInfo> RuntimeCore::find_by_key(const std::string& ns, const std::string& name,
                                                  const ActorKey& key) const {
  std::lock_guard lk(mu_);
  auto it = by_key_.find(index_key(ns, name, serialize_key(key)));
  if (it == by_key_.end()) return std::nullopt;
  return by_id_.at(it->second)->info;
}

bool RuntimeCore::exists(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  return it != by_id_.end() && !it->second->destroyed;
}

std::optional<ActorInfo> RuntimeCore::find_by_id(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second->info;
}

void RuntimeCore::add_to_listing(ActorEntry& e, std::vector<ActorInfo>& out, uint64_t& seq) {
  if (e.destroyed) return;
  // A held-back create is submitted now (as for any other resolver); one
  // folded into the actor's first turn is not submitted yet, so that actor
  // does not exist for a listing until that turn commits.
  submit_pending_create(e);
  const uint64_t created = e.create_seq.load();
  if (created == ActorEntry::kCreateNotSubmitted) return;
  out.push_back(e.info);
  seq = std::max(seq, created);
}

Pending<std::vector<ActorInfo>> RuntimeCore::list_by_name(const std::string& ns, const std::string& name) {
  std::vector<ActorInfo> out;
  uint64_t seq = 0;
  {
    std::lock_guard lk(mu_);
    for (const auto& [_, e] : by_id_)
      if (e->info.name == name && e->info.namespace_name == ns) add_to_listing(*e, out, seq);
  }
  std::sort(out.begin(), out.end(), [](const ActorInfo& a, const ActorInfo& b) { return a.create_ts > b.create_ts; });
  return {std::move(out), seq};
}

Pending<std::vector<ActorInfo>> RuntimeCore::list_by_key(const std::string& ns, const std::string& name,
                                                         const ActorKey& key) {
  std::vector<ActorInfo> out;
  uint64_t seq = 0;
  std::lock_guard lk(mu_);
  if (auto it = by_key_.find(index_key(ns, name, serialize_key(key))); it != by_key_.end())
    add_to_listing(*by_id_.at(it->second), out, seq);
  return {std::move(out), seq};
}

Pending<std::vector<ActorInfo>> RuntimeCore::list_by_ids(const std::vector<std::string>& ids) {
  std::vector<ActorInfo> out;
  uint64_t seq = 0;
  std::lock_guard lk(mu_);
  for (const auto& id : ids)
    if (auto it = by_id_.find(id); it != by_id_.end()) add_to_listing(*it->second, out, seq);
  return {std::move(out), seq};
}

std::shared_ptr<Instance> RuntimeCore::acquire(const std::string& actor_id, std::shared_ptr<ActorEntry>* entry_out) {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(actor_id);
  if (it == by_id_.end() || it->second->destroyed) return nullptr;
  auto& e = it->second;
  if (!e->instance) {
    const ActorDefinition* def = registry_.find(e->info.name);
    if (!def) return nullptr;  // type no longer hosted on this node
    e->instance = std::make_shared<Instance>(*this, e, *def);
  }
  *entry_out = e;
  return e->instance;
}

void RuntimeCore::detach(const std::shared_ptr<ActorEntry>& entry, const Instance* inst) {
  std::lock_guard lk(mu_);
  if (entry->instance.get() == inst) entry->instance.reset();
  if (!entry->info.sleep_ts) entry->info.sleep_ts = now_ms();  // (mark_asleep may have stamped it)
  entry->info.connectable_ts.reset();
}

storage::ActorRow RuntimeCore::mark_asleep(const std::shared_ptr<ActorEntry>& entry) {
  std::lock_guard lk(mu_);
  stats.sleeps.with({entry->info.name}).inc();
  entry->info.sleep_ts = now_ms();
  entry->info.connectable_ts.reset();
  return actor_row(*entry);
}

void RuntimeCore::forget(const std::shared_ptr<ActorEntry>& entry) {
  std::lock_guard lk(mu_);
  entry->destroyed = true;
  entry->instance.reset();
  auto ikey = index_key(entry->info.namespace_name, entry->info.name, entry->info.key);
  if (auto it = by_key_.find(ikey); it != by_key_.end() && it->second == entry->info.actor_id) by_key_.erase(it);
  by_id_.erase(entry->info.actor_id);
}

storage::ActorRow RuntimeCore::begin_generation(const std::shared_ptr<ActorEntry>& entry) {
  std::lock_guard lk(mu_);
  auto& info = entry->info;
  info.generation += 1;
  if (auto w = wakes.find(info.name); w != wakes.end()) w->second.fetch_add(1, std::memory_order_relaxed);
  info.start_ts = info.connectable_ts = now_ms();
  info.sleep_ts.reset();
  // A record from before inspector tokens: the start's record carries one.
  if (entry->inspector_token.empty()) entry->inspector_token = new_inspector_token();
  return actor_row(*entry);
}

std::optional<std::string> RuntimeCore::inspector_token(const std::string& actor_id) const {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(actor_id);
  if (it == by_id_.end() || it->second->destroyed) return std::nullopt;
  return it->second->inspector_token;
}

ActorInfo RuntimeCore::info_of(const std::shared_ptr<ActorEntry>& entry) const {
  std::lock_guard lk(mu_);
  return entry->info;
}

}  // namespace anvil
