// Actor KV: the author-facing operations with their limits, and the
// instance's storage side (RocksDB family kv, keys = actor id + user key).
#include <algorithm>

#include "runtime/instance.hpp"
#include "storage/store.hpp"

namespace anvil {
namespace {

constexpr size_t kMaxKeyBytes = 2 * 1024;
constexpr size_t kMaxValueBytes = 128 * 1024;
constexpr size_t kMaxBatchKeys = 128;
constexpr size_t kMaxBatchPutBytes = 976 * 1024;

Status check_key(std::string_view key) {
  if (key.size() > kMaxKeyBytes) return make_error("kv", "key_too_large", "KV key exceeds 2 KiB.");
  return Ok{};
}

Status check_value(std::string_view value) {
  if (value.size() > kMaxValueBytes) return make_error("kv", "value_too_large", "KV value exceeds 128 KiB.");
  return Ok{};
}

Status check_batch(size_t n) {
  if (n > kMaxBatchKeys) return make_error("kv", "batch_too_large", "A KV batch holds at most 128 keys.");
  return Ok{};
}

}  // namespace

// ---------------------------------------------------------------- context API

Result<std::optional<std::string>> ActorContext::kv_get(std::string_view key) {
  if (auto st = check_key(key); !st.ok()) return st.error();
  return core_.kv_get(key);
}

Result<std::vector<std::optional<std::string>>> ActorContext::kv_get_batch(const std::vector<std::string>& keys) {
  if (auto st = check_batch(keys.size()); !st.ok()) return st.error();
  std::vector<std::optional<std::string>> out;
  for (const auto& k : keys) {
    auto v = kv_get(k);
    if (!v.ok()) return v.error();
    out.push_back(std::move(*v));
  }
  return out;
}

Status ActorContext::kv_put(std::string_view key, std::string_view value) {
  if (auto st = check_key(key); !st.ok()) return st;
  if (auto st = check_value(value); !st.ok()) return st;
  core_.kv_put(key, value);
  return Ok{};
}

Status ActorContext::kv_put_batch(const std::vector<std::pair<std::string, std::string>>& entries) {
  if (auto st = check_batch(entries.size()); !st.ok()) return st;
  size_t total = 0;
  for (const auto& [k, v] : entries) {
    if (auto st = check_key(k); !st.ok()) return st;
    if (auto st = check_value(v); !st.ok()) return st;
    total += k.size() + v.size();
  }
  if (total > kMaxBatchPutBytes) return make_error("kv", "batch_too_large", "A KV batch put holds at most 976 KiB.");
  // All or nothing: validated above, applied together in this turn's batch.
  for (const auto& [k, v] : entries) core_.kv_put(k, std::string_view(v));
  return Ok{};
}

Status ActorContext::kv_delete(std::string_view key) {
  if (auto st = check_key(key); !st.ok()) return st;
  core_.kv_put(key, std::nullopt);
  return Ok{};
}

Status ActorContext::kv_delete_batch(const std::vector<std::string>& keys) {
  if (auto st = check_batch(keys.size()); !st.ok()) return st;
  for (const auto& k : keys)
    if (auto st = check_key(k); !st.ok()) return st;
  for (const auto& k : keys) core_.kv_put(k, std::nullopt);
  return Ok{};
}

Status ActorContext::kv_delete_range(std::string_view start, std::string_view end) {
  auto entries = core_.kv_scan(start, end, false, SIZE_MAX);
  if (!entries.ok()) return entries.error();
  for (const auto& [k, _] : *entries) core_.kv_put(k, std::nullopt);
  return Ok{};
}

Result<ActorContext::KvEntries> ActorContext::kv_list_prefix(std::string_view prefix, KvListOptions opts) {
  return core_.kv_scan(prefix, storage::prefix_end(prefix), opts.reverse, opts.limit);
}

Result<ActorContext::KvEntries> ActorContext::kv_list_range(std::string_view start, std::string_view end,
                                                            KvListOptions opts) {
  return core_.kv_scan(start, end, opts.reverse, opts.limit);
}

Value& ActorContext::vars() { return core_.vars; }

// ---------------------------------------------------------------- instance side

Result<std::optional<std::string>> Instance::kv_get(std::string_view key) {
  if (kv_overlay_)
    if (auto it = kv_overlay_->find(std::string(key)); it != kv_overlay_->end()) return it->second.second;
  return rt_.store().get(storage::Family::kKv, actor_id + std::string(key));
}

void Instance::kv_put(std::string_view key, std::optional<std::string_view> value) {
  std::string full = actor_id + std::string(key);
  if (value)
    rt_.store().put(batch(), storage::Family::kKv, full, *value);
  else
    rt_.store().del(batch(), storage::Family::kKv, full);
  if (!kv_overlay_) kv_overlay_ = std::make_unique<KvOverlay>();
  (*kv_overlay_)[std::string(key)] = {0, value ? std::optional<std::string>(std::string(*value)) : std::nullopt};
}

Result<std::vector<std::pair<std::string, std::string>>> Instance::kv_scan(std::string_view start,
                                                                         std::string_view end, bool reverse,
                                                                         size_t limit) {
  // Merge RocksDB's view with the not-yet-durable writes of this actor.
  std::map<std::string, std::string> merged;
  const std::string lo = actor_id + std::string(start);
  const std::string hi = end.empty() ? std::string() : actor_id + std::string(end);
  Status failure = Ok{};
  auto st = rt_.store().scan_prefix(storage::Family::kKv, actor_id, [&](std::string_view k, std::string_view v) {
    if (k < lo) return true;
    if (!hi.empty() && k >= hi) return false;
    merged.emplace(std::string(k.substr(actor_id.size())), std::string(v));
    return true;
  });
  if (!st.ok()) return st.error();
  if (kv_overlay_) {
    for (const auto& [k, entry] : *kv_overlay_) {
      if (k < start || (!end.empty() && k >= end)) continue;
      if (entry.second)
        merged[k] = *entry.second;
      else
        merged.erase(k);
    }
  }

  std::vector<std::pair<std::string, std::string>> out;
  auto take = [&](auto begin, auto finish) {
    for (auto it = begin; it != finish && out.size() < limit; ++it) out.emplace_back(it->first, it->second);
  };
  if (reverse)
    take(merged.rbegin(), merged.rend());
  else
    take(merged.begin(), merged.end());
  return out;
}

}  // namespace anvil
