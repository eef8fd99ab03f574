// Group commit: every actor turn hands its writes over as one batch; a single
// committer thread writes everything queued since its last round and syncs
// the WAL once, then releases the waiters of every batch in that round.
//
// Optionally a second durability stage follows the fsync (a Replicator:
// envoy mode, where the Rivet Engine's actor KV must acknowledge an actor's
// writes too). A batch is then durable once its round's WAL sync succeeded,
// the replicator acknowledged it (unless it was submitted local-only), and
// every earlier round is durable too: the durable watermark never passes a
// round that is still replicating, so the invariants below hold unchanged.
//
// Invariant: async_wait(seq) completes successfully only after batch `seq`
// and every batch before it that was not lost are durable (WAL fsynced and,
// with a replicator, acknowledged). Batches are applied in sequence order,
// so readers of the database never observe batch n+1 without batch n,
// unless n was lost (failed or refused, and its waiters told so). A lost
// batch is never reported durable.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/metrics/metrics.hpp"
#include "base/value/asio.hpp"
#include "storage/store.hpp"

namespace anvil::storage {

// A second durability stage for CommitPipeline (envoy mode: the Rivet
// Engine's actor KV). Must outlive the pipeline (the committer calls it
// until the destructor has joined it); a `done` may outlive both.
class Replicator {
 public:
  virtual ~Replicator() = default;
  struct Item {
    uint64_t seq;
    const rocksdb::WriteBatch* batch;
  };
  // Called on the committer thread once per round, in round order, after
  // the round's WAL write + fsync succeeded, with the round's batches
  // submitted with replicate=true, in seq order (never called for a round
  // that has none). `done` must be called exactly once, from any thread,
  // possibly after later rounds' replicate() calls (rounds overlap); the
  // batch pointers stay valid until then (also if the pipeline is
  // destroyed first). `failed` lists the seqs that could not be
  // replicated, each with its error; every other item of the call is
  // replicated. A second call of `done`, and seqs in `failed` that were
  // not items of the call, are ignored. `done` may be called from inside
  // replicate(). If replicate() throws, every item of the call fails with
  // storage.internal_error (a later `done` is ignored).
  virtual void replicate(std::vector<Item> items,
                         std::function<void(std::vector<std::pair<uint64_t, Error>> failed)> done) = 0;
};

// CommitPipeline::set_replicator's bounds.
struct ReplicationLimits {
  // Rounds written but not yet durable (replicating, or done behind one
  // that is). With this many, the committer waits before the next round.
  size_t max_rounds_in_flight = 64;
  // How long the destructor waits for rounds still replicating before it
  // fails them with storage.replication_aborted.
  std::chrono::milliseconds stop_timeout = std::chrono::seconds(5);
};

class CommitPipeline {
 public:
  // What the storage under the pipeline can do now.
  enum class Health : int {
    kWritable = 0,
    // ENOSPC: the failed batches are lost, new ones are refused, and every
    // `resume_interval` the committer reopens the database (Store::reopen);
    // once the disk has room again writes go on, without a restart.
    kDiskFull = 1,
    // Any other write or fsync error: fail-stop. After a failed fsync the
    // kernel may have dropped the dirty pages, so nothing written since the
    // last good sync can be trusted; every later batch is refused until the
    // process restarts (and WAL recovery decides what survived).
    kFailed = 2,
  };

  // `fallback` runs completion handlers that have no associated executor.
  CommitPipeline(Store& store, asio::any_io_executor fallback,
                 std::chrono::milliseconds resume_interval = std::chrono::seconds(1));
  // Drains queued batches, then stops the committer. With a replicator,
  // then waits for the rounds still replicating, up to `stop_timeout` from
  // the start of the destructor; whatever is not durable by then (queued,
  // written or replicating) is lost with storage.replication_aborted and
  // its waiters are told so. A `done` called later does nothing.
  ~CommitPipeline();

  // Call before the first submit; null = none: every batch is durable once
  // its round's WAL sync succeeded (and `replicate` of submit() is ignored).
  void set_replicator(Replicator* r, ReplicationLimits limits = {});

  // Queues a non-empty batch; returns its sequence number (> 0). `after` is
  // the writer's previous batch (0 = none) that this one builds on.
  // Refused -- nothing is queued, and waiting for the returned number
  // reports the error -- while the storage is not writable, or when `after`
  // was lost: a batch never lands without the one it builds on. With a
  // replicator `after` can become lost later (its replication fails after
  // this batch was queued); then this batch is lost too, with the same
  // error, before it could become durable. `replicate` = false (local-only
  // writes, such as loading a cache) skips the replicator: such a batch
  // needs only its WAL sync, but a round is durable as a whole and never
  // before every earlier round, so it still waits for the replication of
  // earlier rounds and of replicated batches written in its own round.
  uint64_t submit(rocksdb::WriteBatch batch, uint64_t after = 0, bool replicate = true);
  // The newest sequence number handed out (0 before any submit).
  uint64_t last_submitted() const;
  // The newest durable batch; a lost batch below it is not durable (it was
  // never written, or -- with a replicator -- written locally but not
  // replicated).
  uint64_t last_synced() const;
  // Lock-free check that `seq` is durable. Never true for a lost batch: the
  // fast path stays at or below the newest lost one (the slow path below
  // tells the batches written before and after it apart).
  bool synced_at_least(uint64_t seq) const {
    return seq <= synced_fast_.load(std::memory_order_acquire) && seq > lost_max_.load(std::memory_order_acquire);
  }
  // True when `seq` failed or was refused: it is never reported durable. A
  // refused batch never reaches RocksDB; one whose write failed might still
  // be replayed by RocksDB's recovery (see docs/architecture.md); one whose
  // replication failed (or was aborted) IS in the local database -- its WAL
  // write succeeded -- but not in the remote store, which the writer has
  // to reconcile.
  bool lost(uint64_t seq) const;
  // A failed replication loses its batches but leaves health kWritable: it
  // is not a disk failure.
  Health health() const { return static_cast<Health>(health_.load(std::memory_order_acquire)); }
  uint64_t rounds() const;  // number of synced WAL writes (for metrics)
  // Failed WAL writes by kind (for metrics) and successful resumes.
  uint64_t disk_full_errors() const;
  uint64_t io_errors() const;
  uint64_t resumes() const;
  // anvil_commit_seconds (submit to durable, per batch), anvil_wal_sync_seconds
  // (one round's write + fsync), anvil_commit_group_batches (batches per round),
  // anvil_replication_seconds (one round's replicate() call to its done).
  const metrics::Registry& metrics() const { return metrics_; }

  // Completes with Ok once `seq` is durable, or with an error once it is
  // known never to be (failed or refused): storage.disk_full /
  // storage.io_error for the disk, the replicator's error for a batch it
  // failed, storage.internal_error if replicate() threw,
  // storage.replication_aborted for what the destructor gave up on. A
  // batch that failed never completes Ok later, whatever happens after.
  template <typename Token>
  auto async_wait(uint64_t seq, Token&& token) {
    return asio::async_initiate<Token, void(Status)>(
        [this, seq](auto handler) {
          auto ex = asio::get_associated_executor(handler, fallback_);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          wait_impl(seq, [h, ex](Status st) mutable {
            asio::post(ex, [h, st = std::move(st)]() mutable { (*h)(std::move(st)); });
          });
        },
        token);
  }

  // Blocking variant for threads outside the io_context (tools, tests).
  Status wait_blocking(uint64_t seq);

 private:
  using Waiter = std::function<void(Status)>;
  using Ready = std::vector<std::pair<Waiter, Status>>;
  struct Lost {
    uint64_t last;  // the range [first (map key), last] was lost
    Error error;
  };
  struct Queued {
    uint64_t seq;
    rocksdb::WriteBatch batch;
    std::chrono::steady_clock::time_point at;  // when submitted
    uint64_t after;
    bool replicate;
  };
  // A round whose WAL write succeeded and that is not durable yet.
  struct Round {
    uint64_t id;
    std::shared_ptr<std::vector<Queued>> batches;  // shared with its `done`
    std::vector<uint64_t> replicated;              // the seqs handed to replicate(), ascending
    bool done;                                     // replicated (or nothing to replicate)
    std::chrono::steady_clock::time_point replicate_at;
  };
  // What a `done` reaches the pipeline through: it may be called after the
  // destructor, which clears `pipe` (and so waits for a `done` running).
  struct Link {
    explicit Link(CommitPipeline* p) : pipe(p) {}
    std::mutex mu;
    CommitPipeline* pipe;  // GUARDED_BY(mu)
  };

  void wait_impl(uint64_t seq, Waiter w);
  void run();
  // Registers a written round and hands it to the replicator (committer only).
  void replicate_round(Replicator* replicator, std::vector<Queued> round);
  // A round's `done`: marks `failed` lost, then moves the watermark.
  Ready on_replicated(uint64_t round_id, std::vector<std::pair<uint64_t, Error>> failed);
  // Pops the durable rounds off the front of in_flight_ and releases their
  // waiters. Caller holds mu_.
  void advance(Ready& ready);
  // Records [first, last] as lost with `error`, joining the previous range
  // when they touch. Caller holds mu_; no seq of the range is lost yet.
  void mark_lost(uint64_t first, uint64_t last, const Error& error);
  // The same for the seqs of [first, last] that are not lost yet (ranges
  // never overlap, or find_lost could miss one).
  void mark_lost_unless_lost(uint64_t first, uint64_t last, const Error& error);
  // mark_lost for one seq, and its waiters told. Caller holds mu_.
  void lose(uint64_t seq, const Error& error, Ready& ready);
  const Lost* find_lost(uint64_t seq) const;  // caller holds mu_
  void try_resume();

  Store& store_;
  asio::any_io_executor fallback_;
  std::chrono::milliseconds resume_interval_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the committer
  std::condition_variable idle_cv_;  // wakes the destructor: committer gone, nothing in flight
  std::vector<Queued> pending_;                                     // GUARDED_BY(mu_)
  std::multimap<uint64_t, Waiter> waiters_;                         // GUARDED_BY(mu_)
  uint64_t next_seq_ = 1;                                           // GUARDED_BY(mu_)
  uint64_t synced_ = 0;                                             // GUARDED_BY(mu_)
  std::atomic<uint64_t> synced_fast_{0};  // = synced_
  std::atomic<uint64_t> lost_max_{0};     // the newest lost batch (0 = none)
  std::atomic<int> health_{0};            // Health; written under mu_
  std::map<uint64_t, Lost> lost_;         // GUARDED_BY(mu_), by first seq
  std::optional<Error> failure_;          // GUARDED_BY(mu_): why not writable
  uint64_t rounds_ = 0;                   // GUARDED_BY(mu_)
  uint64_t disk_full_errors_ = 0;         // GUARDED_BY(mu_)
  uint64_t io_errors_ = 0;                // GUARDED_BY(mu_)
  uint64_t resumes_ = 0;                  // GUARDED_BY(mu_)
  Replicator* replicator_ = nullptr;      // GUARDED_BY(mu_)
  ReplicationLimits limits_;              // GUARDED_BY(mu_)
  std::deque<Round> in_flight_;           // GUARDED_BY(mu_), in round order
  uint64_t next_round_id_ = 1;            // GUARDED_BY(mu_)
  std::shared_ptr<Link> link_;
  metrics::Registry metrics_;
  metrics::Histogram& commit_seconds_;
  metrics::Histogram& sync_seconds_;
  metrics::Histogram& group_batches_;
  metrics::Histogram& replication_seconds_;
  bool stopping_ = false;                 // GUARDED_BY(mu_)
  bool aborting_ = false;                 // GUARDED_BY(mu_): the destructor gave up waiting
  bool committer_done_ = false;           // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace anvil::storage
