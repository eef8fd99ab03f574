// Group commit: every actor turn hands its writes over as one batch; a single
// committer thread writes everything queued since its last round and syncs
// the WAL once, then releases the waiters of every batch in that round.
//
// Invariant: async_wait(seq) completes successfully only after batch `seq`
// and every batch before it that was not lost are durable (WAL fsynced).
// Batches are applied in sequence order, so readers of the database never
// observe batch n+1 without batch n, unless n was lost (failed or refused,
// and its waiters told so). A lost batch is never reported durable.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
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
  ~CommitPipeline();  // drains queued batches, then stops the committer

  // Queues a non-empty batch; returns its sequence number (> 0). `after` is
  // the writer's previous batch (0 = none) that this one builds on.
  // Refused -- nothing is queued, and waiting for the returned number
  // reports the error -- while the storage is not writable, or when `after`
  // was lost: a batch never lands without the one it builds on.
  uint64_t submit(rocksdb::WriteBatch batch, uint64_t after = 0);
  // The newest sequence number handed out (0 before any submit).
  uint64_t last_submitted() const;
  // The newest durable batch; a lost batch below it was never written.
  uint64_t last_synced() const;
  // Lock-free check that `seq` is durable. Never true for a lost batch: the
  // fast path stays at or below the newest lost one (the slow path below
  // tells the batches written before and after it apart).
  bool synced_at_least(uint64_t seq) const {
    return seq <= synced_fast_.load(std::memory_order_acquire) && seq > lost_max_.load(std::memory_order_acquire);
  }
  // True when `seq` failed or was refused: it is not in the database and
  // is never reported durable. (A refused batch never reaches RocksDB; one
  // whose write failed might still be replayed by RocksDB's recovery, see
  // docs/architecture.md.)
  bool lost(uint64_t seq) const;
  Health health() const { return static_cast<Health>(health_.load(std::memory_order_acquire)); }
  uint64_t rounds() const;  // number of synced WAL writes (for metrics)
  // Failed WAL writes by kind (for metrics) and successful resumes.
  uint64_t disk_full_errors() const;
  uint64_t io_errors() const;
  uint64_t resumes() const;
  // anvil_commit_seconds (submit to durable, per batch), anvil_wal_sync_seconds
  // (one round's write + fsync), anvil_commit_group_batches (batches per round).
  const metrics::Registry& metrics() const { return metrics_; }

  // Completes with Ok once `seq` is durable, or with storage.disk_full /
  // storage.io_error once it is known never to be (failed or refused). A
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
  struct Lost {
    uint64_t last;  // the range [first (map key), last] was lost
    Error error;
  };
  void wait_impl(uint64_t seq, Waiter w);
  void run();
  // Records [first, last] as lost with `error`, joining the previous range
  // when they touch. Caller holds mu_.
  void mark_lost(uint64_t first, uint64_t last, const Error& error);
  const Lost* find_lost(uint64_t seq) const;  // caller holds mu_
  void try_resume();

  Store& store_;
  asio::any_io_executor fallback_;
  std::chrono::milliseconds resume_interval_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Queued {
    uint64_t seq;
    rocksdb::WriteBatch batch;
    std::chrono::steady_clock::time_point at;  // when submitted
  };
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
  metrics::Registry metrics_;
  metrics::Histogram& commit_seconds_;
  metrics::Histogram& sync_seconds_;
  metrics::Histogram& group_batches_;
  bool stopping_ = false;                 // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace anvil::storage
