// Group commit: every actor turn hands its writes over as one batch; a single
// committer thread writes everything queued since its last round and syncs
// the WAL once, then releases the waiters of every batch in that round.
//
// Invariant: async_wait(seq) completes successfully only after every batch
// with a sequence number <= seq is durable (WAL fsynced). Batches are applied
// in sequence order, so readers of the database never observe batch n+1
// without batch n.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/value/asio.hpp"
#include "storage/store.hpp"

namespace anvil::storage {

class CommitPipeline {
 public:
  // `fallback` runs completion handlers that have no associated executor.
  CommitPipeline(Store& store, asio::any_io_executor fallback);
  ~CommitPipeline();  // drains queued batches, then stops the committer

  // Queues a non-empty batch; returns its sequence number (> 0).
  uint64_t submit(rocksdb::WriteBatch batch);
  // The newest sequence number handed out (0 before any submit).
  uint64_t last_submitted() const;
  uint64_t last_synced() const;
  // Lock-free check that `seq` is durable (false after a storage failure).
  bool synced_at_least(uint64_t seq) const { return seq <= synced_fast_.load(std::memory_order_acquire); }
  uint64_t rounds() const;  // number of synced WAL writes (for metrics)

  // Completes with "" once `seq` is durable, or with an error message when
  // the storage failed (the pipeline then refuses further work).
  template <typename Token>
  auto async_wait(uint64_t seq, Token&& token) {
    return asio::async_initiate<Token, void(std::string)>(
        [this, seq](auto handler) {
          auto ex = asio::get_associated_executor(handler, fallback_);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          wait_impl(seq, [h, ex](std::string err) mutable {
            asio::post(ex, [h, err = std::move(err)]() mutable { (*h)(std::move(err)); });
          });
        },
        token);
  }

  // Blocking variant for threads outside the io_context (tools, tests).
  std::string wait_blocking(uint64_t seq);

 private:
  using Waiter = std::function<void(std::string)>;
  void wait_impl(uint64_t seq, Waiter w);
  void run();

  Store& store_;
  asio::any_io_executor fallback_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<uint64_t, rocksdb::WriteBatch>> pending_;  // GUARDED_BY(mu_)
  std::multimap<uint64_t, Waiter> waiters_;                         // GUARDED_BY(mu_)
  uint64_t next_seq_ = 1;                                           // GUARDED_BY(mu_)
  uint64_t synced_ = 0;                                             // GUARDED_BY(mu_)
  std::atomic<uint64_t> synced_fast_{0};  // = synced_ while no failure; stays put after one
  uint64_t rounds_ = 0;                                             // GUARDED_BY(mu_)
  std::string failure_;                                             // GUARDED_BY(mu_)
  bool stopping_ = false;                                           // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace anvil::storage
