// Runtime-internal: one directory entry per actor (awake or asleep), and
// what it keeps across the actor's sleeps.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <rocksdb/write_batch.h>

#include "base/value/asio.hpp"
#include "runtime/runtime.hpp"

namespace anvil {

class Instance;

// A sender waiting for its queue message to be completed (`wait: true`).
// Completed on the actor's strand; the sender's timer is cancelled on its
// own executor to wake it.
struct QueueWaiter : std::enable_shared_from_this<QueueWaiter> {
  explicit QueueWaiter(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  std::atomic<bool> completed{false};
  Value response;  // written before `completed` is set
  void complete(Value r);
};

// One directory entry: resident in the directory cache while the actor is
// awake, holds connections or waiters, has writes not yet durable, or was
// used recently; otherwise it may be evicted and is read again from storage
// on the next use (RuntimeCore, directory.cpp). Dropped on destroy.
struct ActorEntry {
  // create_seq of an actor whose create record is not submitted yet (held
  // back in pending_create, or folded into its first start's batch).
  static constexpr uint64_t kCreateNotSubmitted = std::numeric_limits<uint64_t>::max();

  ActorInfo info;
  std::optional<Value> input;
  // Bearer token of the actor's /inspector/* routes (kept in its record;
  // made at create, or at the first start of an older record).
  // GUARDED_BY(RuntimeCore::mu_).
  std::string inspector_token;
  std::atomic<uint64_t> last_seq{0};  // newest commit touching this actor
  // The commit holding the create record (0: loaded from storage, durable).
  std::atomic<uint64_t> create_seq{0};
  // Created by this process and not started yet: nothing of it is in the
  // state family, so its first start need not wait for the create commit.
  std::atomic<bool> never_started{false};
  bool destroyed = false;  // GUARDED_BY(RuntimeCore::mu_)
  // Its place in the cache's recency list. GUARDED_BY(RuntimeCore::mu_).
  std::list<std::string>::iterator lru_pos;
  std::shared_ptr<Instance> instance;  // GUARDED_BY(RuntimeCore::mu_); null while asleep
  // A create whose record is not submitted yet (get_or_create with
  // defer_commit): the actor's first start folds it into its own batch, so a
  // cold request waits for one fsync, not two. Whoever else needs the actor
  // durable first submits it (flush_create). GUARDED_BY(RuntimeCore::mu_).
  std::unique_ptr<rocksdb::WriteBatch> pending_create;
  // Open connections in connect order. Touched only by the current instance,
  // on its strand; kept here so they survive the actor's sleep.
  std::vector<std::shared_ptr<ConnData>> conns;
  // Rarely used per-actor state, allocated on first use (same strand
  // discipline as `conns`).
  struct RawSocket {
    std::shared_ptr<RawWebSocket> socket;
    WebSocketHandlers handlers;
    std::string traceparent;  // the upgrade request's (valid) W3C header, or ""
  };
  struct Extras {
    // Senders waiting for completion of a queue message, by message id; in
    // memory only (as RivetKit's).
    std::map<uint64_t, std::weak_ptr<QueueWaiter>> queue_waiters;
    // Open raw WebSockets by handle.
    std::map<uint64_t, RawSocket> raw_sockets;
    uint64_t next_raw_socket = 1;
    // Live views of the actor (Runtime::watch); expired ones are dropped
    // when next told.
    std::vector<std::weak_ptr<ActorWatcher>> watchers;
  };
  std::unique_ptr<Extras> extras;
  Extras& ext() {
    if (!extras) extras = std::make_unique<Extras>();
    return *extras;
  }
  bool has_raw_sockets() const { return extras && !extras->raw_sockets.empty(); }
  bool has_watchers() const {
    if (!extras) return false;
    for (const auto& w : extras->watchers)
      if (!w.expired()) return true;
    return false;
  }
};

}  // namespace anvil
