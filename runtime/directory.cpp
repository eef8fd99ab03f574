// The directory: every actor (awake or asleep) by id and by (namespace,
// name, key); create/getOrCreate with exactly one actor per key; lookups and
// listings; the entry side of an instance's lifecycle.
#include <algorithm>
#include <span>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "runtime/actor_id.hpp"
#include "runtime/core.hpp"
#include "runtime/instance.hpp"

namespace anvil {

RuntimeCore::RuntimeCore(asio::io_context& io, storage::Store& store, storage::CommitPipeline& pipeline,
                         const Registry& registry)
    : io_(io), store_(store), pipeline_(pipeline), registry_(registry) {
  // The default bound: 1% of physical memory at about 1 KiB per entry.
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0)
    cache_capacity_ = std::clamp<size_t>(size_t(pages) * size_t(page) / 100 / 1024, 10000, 10000000);
  for (const auto& name : registry_.names()) wakes.try_emplace(name);
  register_storage_metrics();
}

RuntimeCore::~RuntimeCore() {
  {
    std::lock_guard lk(stop_mu_);
    stopping_.store(true);
  }
  stop_cv_.notify_all();
  if (recovery_.joinable()) recovery_.join();
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

Result<Resolved> RuntimeCore::existing(const std::shared_ptr<ActorEntry>& entry, const std::string& ikey,
                                       bool fail_if_exists) {
  if (fail_if_exists)
    return make_error("actor", "duplicate_key",
                      "Actor key '" + entry->info.key + "' already in use for actor '" + entry->info.actor_id + "'",
                      obj({{"existing_actor_id", entry->info.actor_id}, {"key", entry->info.key}}));
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

Result<Resolved> RuntimeCore::resolve(const CreateRequest& req, bool fail_if_exists, bool defer_commit) {
  const ActorDefinition* def = registry_.find(req.name);
  if (!def)
    return make_error("actor", "not_registered",
                      "Actor type `" + req.name + "` is not registered on this node.");
  if (auto st = validate_key(req.key); !st.ok()) return st.error();
  const std::string skey = serialize_key(req.key);
  const std::string ikey = index_key(req.namespace_name, req.name, skey);
  if (!req.actor_id.empty()) return adopt(req, skey, ikey);

  uint64_t seen_epoch;
  {
    std::lock_guard lk(mu_);
    if (auto it = by_key_.find(ikey); it != by_key_.end()) {
      cache_hits_.fetch_add(1, std::memory_order_relaxed);
      return existing(resident(it->second), ikey, fail_if_exists);
    }
    seen_epoch = epoch(ikey);
  }
  cache_misses_.fetch_add(1, std::memory_order_relaxed);

  // Not resident: storage says whether the key has an actor. Read without
  // the lock; if an entry of this key's bucket was evicted meanwhile (its
  // record may have changed under the read), read again — the last time
  // under the lock, so "absent" below is certain: every key claim is
  // resident from its create until durable.
  std::unique_lock lk(mu_, std::defer_lock);
  std::shared_ptr<ActorEntry> stored;
  for (int attempt = 0;; ++attempt) {
    const bool locked = attempt >= 2;
    if (locked) lk.lock();
    auto id = store_.get(storage::Family::kKeyIndex, ikey);
    if (!id.ok()) return id.error();
    stored.reset();
    if (id->has_value()) {
      auto e = read_entry(**id);
      if (!e.ok()) return e.error();
      stored = std::move(*e);
    }
    if (!locked) lk.lock();
    if (auto it = by_key_.find(ikey); it != by_key_.end()) return existing(resident(it->second), ikey, fail_if_exists);
    if (locked || epoch(ikey) == seen_epoch) break;
    seen_epoch = epoch(ikey);
    lk.unlock();
  }
  if (stored && !tombstoned(stored->info.actor_id)) {
    // (Not resident by key, so not by id either: the two come and go together.)
    return existing(make_resident(stored), ikey, fail_if_exists);
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
  return create_entry(req, new_actor_id(), now_ms(), skey, ikey, defer_commit);
}

Result<Resolved> RuntimeCore::adopt(const CreateRequest& req, const std::string& skey, const std::string& ikey) {
  if (!is_valid_actor_id(req.actor_id))
    return make_error("actor", "invalid_id",
                      "Actor id '" + req.actor_id + "' is not " + std::to_string(actor_id_length()) +
                          " lowercase base36 characters (the width of this data directory's ids).");
  if (auto e = lookup_id(req.actor_id)) {
    std::lock_guard lk(mu_);
    return existing(e, ikey, false);
  }
  std::lock_guard lk(mu_);
  if (auto e = resident(req.actor_id)) return existing(e, ikey, false);  // adopted meanwhile
  return create_entry(req, req.actor_id, req.create_ts ? req.create_ts : now_ms(), skey, ikey, false);
}

Result<Resolved> RuntimeCore::create_entry(const CreateRequest& req, std::string id, int64_t create_ts,
                                           const std::string& skey, const std::string& ikey, bool defer_commit) {
  auto e = std::make_shared<ActorEntry>();
  e->info.actor_id = std::move(id);
  e->info.name = req.name;
  e->info.key = skey;
  e->info.namespace_name = req.namespace_name;
  e->info.runner_name_selector = req.runner_name_selector;
  e->info.crash_policy = req.crash_policy;
  e->info.datacenter = req.datacenter;
  e->info.create_ts = create_ts;
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

  make_resident(e);
  spdlog::info("actor {} created: {} key={}", e->info.actor_id, e->info.name, skey);
  // An actor with a run handler starts right away, as on the engine.
  if (registry_.find(req.name)->run_hook()) schedule_workflow(e->info.actor_id);
  return Resolved{e->info, true, seq};
}

Result<std::shared_ptr<ActorEntry>> RuntimeCore::read_entry(const std::string& id) const {
  auto raw = store_.get(storage::Family::kActors, id);
  if (!raw.ok()) return raw.error();
  if (!raw->has_value()) return std::shared_ptr<ActorEntry>();
  auto row = storage::decode_actor_row(**raw);
  if (!row.ok()) return row.error();
  auto e = std::make_shared<ActorEntry>();
  e->info.actor_id = row->actor_id;
  e->info.name = row->name;
  e->info.key = row->key;
  e->info.namespace_name = row->namespace_name;
  e->info.runner_name_selector = row->runner_name_selector;
  e->info.crash_policy = row->crash_policy;
  e->info.datacenter = row->datacenter;
  e->info.create_ts = row->create_ts;
  e->info.generation = row->generation;
  // Start and sleep times of an actor that went to sleep in an orderly way
  // (one cut off awake by a crash shows neither, as after a restart).
  if (row->sleep_ts > 0 && row->sleep_ts >= row->start_ts) {
    if (row->start_ts > 0) e->info.start_ts = row->start_ts;
    e->info.sleep_ts = row->sleep_ts;
  }
  e->inspector_token = row->inspector_token;
  if (row->has_input) {
    auto input = cbor::decode(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(row->input.data()), row->input.size()),
        cbor::Mode::Storage);
    if (!input.ok()) return input.error();
    e->input = std::move(*input);
  }
  return e;
}

std::shared_ptr<ActorEntry> RuntimeCore::resident(const std::string& id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second->lru_pos);
  return it->second;
}

std::shared_ptr<ActorEntry> RuntimeCore::make_resident(const std::shared_ptr<ActorEntry>& e) const {
  // (Callers looked under the same lock hold; an entry already resident
  // wins, so one id never has two entries.)
  if (auto it = by_id_.find(e->info.actor_id); it != by_id_.end()) return it->second;
  lru_.push_front(e->info.actor_id);
  e->lru_pos = lru_.begin();
  by_key_[index_key(e->info.namespace_name, e->info.name, e->info.key)] = e->info.actor_id;
  by_id_[e->info.actor_id] = e;
  evict_some();
  return e;
}

bool RuntimeCore::evictable(const std::shared_ptr<ActorEntry>& e) const {
  // Only the cache holds it (no instance, turn, lane or caller), and all
  // of it is in storage: nothing pending, every write durable.
  if (e.use_count() != 1) return false;
  // use_count() is a relaxed read: the fence makes the last holder's writes
  // (its strand's, to conns and extras) visible before they are read here.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (e->destroyed || e->pending_create || !e->conns.empty()) return false;
  if (e->extras && (!e->extras->queue_waiters.empty() || !e->extras->raw_sockets.empty())) return false;
  if (e->has_watchers()) return false;
  const uint64_t created = e->create_seq.load(), last = e->last_seq.load();
  if (created == ActorEntry::kCreateNotSubmitted) return false;
  return (created == 0 || pipeline_.synced_at_least(created)) && (last == 0 || pipeline_.synced_at_least(last));
}

void RuntimeCore::evict_some() const {
  // Bounded work per call: entries that cannot go now move to the front
  // (they are in use), so the next call looks at others.
  for (int budget = 16; by_id_.size() > cache_capacity_.load(std::memory_order_relaxed) && budget > 0 && !lru_.empty(); --budget) {
    auto victim = by_id_.find(lru_.back());
    if (victim == by_id_.end()) {  // (cannot happen: the list mirrors by_id_)
      lru_.pop_back();
      continue;
    }
    if (!evictable(victim->second)) {
      lru_.splice(lru_.begin(), lru_, victim->second->lru_pos);
      continue;
    }
    const auto& info = victim->second->info;
    const std::string ikey = index_key(info.namespace_name, info.name, info.key);
    ++epoch(info.actor_id);
    ++epoch(ikey);
    if (auto k = by_key_.find(ikey); k != by_key_.end() && k->second == info.actor_id) by_key_.erase(k);
    lru_.pop_back();
    by_id_.erase(victim);
    cache_evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  // Destroys now durable: storage no longer shows those actors.
  if (!tombstones_.empty())
    std::erase_if(tombstones_, [&](const auto& t) { return pipeline_.synced_at_least(t.second) || pipeline_.lost(t.second); });
}

bool RuntimeCore::tombstoned(const std::string& id) const {
  auto it = tombstones_.find(id);
  if (it == tombstones_.end()) return false;
  if (pipeline_.lost(it->second)) {  // the destroy never landed: storage still has the actor
    tombstones_.erase(it);
    return false;
  }
  return true;
}

std::shared_ptr<ActorEntry> RuntimeCore::lookup_id(const std::string& id) const {
  uint64_t seen_epoch;
  {
    std::lock_guard lk(mu_);
    if (auto e = resident(id)) {
      cache_hits_.fetch_add(1, std::memory_order_relaxed);
      return e;
    }
    if (tombstoned(id)) return nullptr;
    seen_epoch = epoch(id);
  }
  if (id.size() != actor_id_length()) return nullptr;  // not an id: nothing to read
  cache_misses_.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock lk(mu_, std::defer_lock);
  for (int attempt = 0;; ++attempt) {
    const bool locked = attempt >= 2;
    if (locked) lk.lock();
    auto stored = read_entry(id);
    if (!locked) lk.lock();
    if (auto e = resident(id)) return e;
    if (tombstoned(id)) return nullptr;
    if (!locked && epoch(id) != seen_epoch) {
      seen_epoch = epoch(id);
      lk.unlock();
      continue;
    }
    if (!stored.ok()) {
      spdlog::error("directory: reading actor {} failed: {}", id, stored.error().message);
      return nullptr;
    }
    if (!*stored) return nullptr;
    return make_resident(*stored);
  }
}

std::shared_ptr<ActorEntry> RuntimeCore::lookup_key(const std::string& ikey) const {
  {
    std::lock_guard lk(mu_);
    if (auto it = by_key_.find(ikey); it != by_key_.end()) {
      cache_hits_.fetch_add(1, std::memory_order_relaxed);
      return resident(it->second);
    }
  }
  auto id = store_.get(storage::Family::kKeyIndex, ikey);
  if (!id.ok()) {
    spdlog::error("directory: reading the key index failed: {}", id.error().message);
    return nullptr;
  }
  if (!id->has_value()) {
    // A create not yet in storage is resident (by key) until durable.
    std::lock_guard lk(mu_);
    if (auto it = by_key_.find(ikey); it != by_key_.end()) return resident(it->second);
    return nullptr;
  }
  auto e = lookup_id(**id);
  if (!e || index_key(e->info.namespace_name, e->info.name, e->info.key) != ikey) {
    // Destroyed meanwhile (and maybe the key taken again): the key's own
    // resident entry if any.
    std::lock_guard lk(mu_);
    if (auto it = by_key_.find(ikey); it != by_key_.end()) return resident(it->second);
    return nullptr;
  }
  return e;
}

std::optional<ActorInfo> RuntimeCore::find_by_key(const std::string& ns, const std::string& name,
                                                  const ActorKey& key) const {
  auto e = lookup_key(index_key(ns, name, serialize_key(key)));
  if (!e) return std::nullopt;
  std::lock_guard lk(mu_);
  if (e->destroyed) return std::nullopt;
  return e->info;
}

bool RuntimeCore::exists(const std::string& id) const {
  auto e = lookup_id(id);
  if (!e) return false;
  std::lock_guard lk(mu_);
  return !e->destroyed;
}

std::optional<ActorInfo> RuntimeCore::find_by_id(const std::string& id) const {
  auto e = lookup_id(id);
  if (!e) return std::nullopt;
  std::lock_guard lk(mu_);
  if (e->destroyed) return std::nullopt;
  return e->info;
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

void RuntimeCore::add_stored(const std::string& id, std::vector<ActorInfo>& out) const {
  auto e = read_entry(id);
  if (!e.ok() || !*e) return;
  std::lock_guard lk(mu_);
  if (tombstoned(id)) return;
  if (auto r = by_id_.find(id); r != by_id_.end()) {  // resident: memory is newer
    if (!r->second->destroyed) out.push_back(r->second->info);
    return;
  }
  out.push_back((*e)->info);
}

Pending<std::vector<ActorInfo>> RuntimeCore::list_by_name(const std::string& ns, const std::string& name) {
  // Resident entries first (their creates may not be in storage yet), then
  // the key index's range for the type, read from storage without making
  // those actors resident.
  std::vector<ActorInfo> out;
  std::unordered_set<std::string> listed;
  uint64_t seq = 0;
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, e] : by_id_)
      if (e->info.name == name && e->info.namespace_name == ns) {
        add_to_listing(*e, out, seq);
        listed.insert(id);
      }
  }
  std::vector<std::string> ids;
  auto st = store_.scan_prefix(storage::Family::kKeyIndex, index_key(ns, name, ""),
                               [&](std::string_view, std::string_view id) {
                                 if (!listed.count(std::string(id))) ids.emplace_back(id);
                                 return true;
                               });
  if (!st.ok()) spdlog::error("directory: listing {} failed: {}", name, st.error().message);
  for (const auto& id : ids) add_stored(id, out);
  std::sort(out.begin(), out.end(), [](const ActorInfo& a, const ActorInfo& b) { return a.create_ts > b.create_ts; });
  return {std::move(out), std::max(seq, read_horizon())};
}

Pending<ActorPage> RuntimeCore::list_page(const std::string& ns, const std::string& name, const std::string& cursor,
                                          size_t limit) {
  ActorPage page;
  const std::string prefix = index_key(ns, name, "");
  std::vector<std::pair<std::string, std::string>> keys;  // (serialized key, id)
  // One more than asked: whether another page follows.
  auto st = store_.scan_from(storage::Family::kKeyIndex, prefix + cursor, [&](std::string_view k, std::string_view id) {
    if (k.substr(0, prefix.size()) != prefix) return false;
    std::string skey(k.substr(prefix.size()));
    if (!cursor.empty() && skey == cursor) return true;
    keys.emplace_back(std::move(skey), std::string(id));
    return keys.size() <= limit;
  });
  if (!st.ok()) spdlog::error("directory: listing {} failed: {}", name, st.error().message);
  const bool more = keys.size() > limit;
  if (more) keys.resize(limit);
  for (const auto& key_and_id : keys) add_stored(key_and_id.second, page.actors);
  if (more && !keys.empty()) page.cursor = keys.back().first;
  return {std::move(page), read_horizon()};
}

Pending<std::vector<ActorInfo>> RuntimeCore::list_by_key(const std::string& ns, const std::string& name,
                                                         const ActorKey& key) {
  std::vector<ActorInfo> out;
  uint64_t seq = 0;
  auto e = lookup_key(index_key(ns, name, serialize_key(key)));
  std::lock_guard lk(mu_);
  if (e) add_to_listing(*e, out, seq);
  return {std::move(out), seq};
}

Pending<std::vector<ActorInfo>> RuntimeCore::list_by_ids(const std::vector<std::string>& ids) {
  std::vector<ActorInfo> out;
  uint64_t seq = 0;
  for (const auto& id : ids) {
    auto e = lookup_id(id);
    std::lock_guard lk(mu_);
    if (e) add_to_listing(*e, out, seq);
  }
  return {std::move(out), seq};
}

std::shared_ptr<Instance> RuntimeCore::acquire(const std::string& actor_id, std::shared_ptr<ActorEntry>* entry_out) {
  auto e = lookup_id(actor_id);
  if (!e) return nullptr;
  std::lock_guard lk(mu_);
  if (e->destroyed) return nullptr;
  if (!e->instance) {
    const ActorDefinition* def = registry_.find(e->info.name);
    if (!def) return nullptr;  // type no longer hosted on this node
    if (host_hooks.may_wake && !host_hooks.may_wake(actor_id)) return nullptr;  // the engine runs it elsewhere
    e->instance = std::make_shared<Instance>(*this, e, *def);
  }
  *entry_out = e;
  return e->instance;
}

void RuntimeCore::detach(const std::shared_ptr<ActorEntry>& entry, const Instance* inst) {
  {
    std::lock_guard lk(mu_);
    if (entry->instance.get() == inst) entry->instance.reset();
    if (!entry->info.sleep_ts) entry->info.sleep_ts = now_ms();  // (mark_asleep may have stamped it)
    entry->info.connectable_ts.reset();
  }
  if (host_hooks.stopped) host_hooks.stopped(entry->info.actor_id, false);
}

storage::ActorRow RuntimeCore::mark_asleep(const std::shared_ptr<ActorEntry>& entry) {
  std::lock_guard lk(mu_);
  stats.sleeps.with({entry->info.name}).inc();
  entry->info.sleep_ts = now_ms();
  entry->info.connectable_ts.reset();
  return actor_row(*entry);
}

void RuntimeCore::drop_resident(const std::shared_ptr<ActorEntry>& entry) {
  auto ikey = index_key(entry->info.namespace_name, entry->info.name, entry->info.key);
  if (auto it = by_key_.find(ikey); it != by_key_.end() && it->second == entry->info.actor_id) by_key_.erase(it);
  if (auto it = by_id_.find(entry->info.actor_id); it != by_id_.end() && it->second == entry) {
    lru_.erase(entry->lru_pos);
    by_id_.erase(it);
  }
  ++epoch(entry->info.actor_id);
  ++epoch(ikey);
}

void RuntimeCore::forget(const std::shared_ptr<ActorEntry>& entry) {
  {
    std::lock_guard lk(mu_);
    entry->destroyed = true;
    entry->instance.reset();
    // A reader that read the record from storage before the destroy landed
    // must not install it: its bucket moved, so it reads again.
    drop_resident(entry);
    // Until the destroy commit is durable, storage still shows the actor.
    if (const uint64_t seq = entry->last_seq.load(); seq != 0 && !pipeline_.synced_at_least(seq))
      tombstones_[entry->info.actor_id] = seq;
  }
  if (host_hooks.stopped) host_hooks.stopped(entry->info.actor_id, true);
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
  auto e = lookup_id(actor_id);
  if (!e) return std::nullopt;
  std::lock_guard lk(mu_);
  if (e->destroyed) return std::nullopt;
  return e->inspector_token;
}

RuntimeCore::DirectoryStats RuntimeCore::directory_stats() const {
  DirectoryStats s;
  {
    std::lock_guard lk(mu_);
    s.resident = by_id_.size();
  }
  s.capacity = cache_capacity_.load();
  s.hits = cache_hits_.load(std::memory_order_relaxed);
  s.misses = cache_misses_.load(std::memory_order_relaxed);
  s.evictions = cache_evictions_.load(std::memory_order_relaxed);
  return s;
}

ActorInfo RuntimeCore::info_of(const std::shared_ptr<ActorEntry>& entry) const {
  std::lock_guard lk(mu_);
  return entry->info;
}

}  // namespace anvil
