#include "storage/commit_pipeline.hpp"

#include <future>

#include <spdlog/spdlog.h>

namespace anvil::storage {
namespace {

// What a caller whose batch was lost is told; the RocksDB detail goes to the
// log only.
Error lost_error(const Error& cause) {
  if (cause.code == "disk_full")
    return make_error("storage", "disk_full",
                      "The node's disk is full; the write was not saved. Writes resume once space is freed.");
  return make_error("storage", "io_error",
                    "A storage write failed; the write was not saved. The node refuses writes until it is "
                    "restarted.");
}

}  // namespace

CommitPipeline::CommitPipeline(Store& store, asio::any_io_executor fallback, std::chrono::milliseconds resume_interval)
    : store_(store),
      fallback_(std::move(fallback)),
      resume_interval_(resume_interval),
      commit_seconds_(metrics_
                          .histogram("anvil_commit_seconds",
                                     "Time from a batch's submit until it is durable (queueing, write and fsync).",
                                     {}, metrics::latency_buckets())
                          .with({})),
      sync_seconds_(metrics_
                        .histogram("anvil_wal_sync_seconds",
                                   "One group-commit round: the WAL write and its fsync.", {},
                                   metrics::latency_buckets())
                        .with({})),
      group_batches_(metrics_
                         .histogram("anvil_commit_group_batches", "Batches written together in one round.", {},
                                    metrics::count_buckets())
                         .with({})),
      thread_([this] { run(); }) {}

CommitPipeline::~CommitPipeline() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t CommitPipeline::submit(rocksdb::WriteBatch batch, uint64_t after) {
  std::lock_guard lk(mu_);
  uint64_t seq = next_seq_++;
  if (failure_) {
    mark_lost(seq, seq, *failure_);
    return seq;
  }
  if (after != 0 && after <= lost_max_.load(std::memory_order_relaxed)) {
    if (const Lost* l = find_lost(after)) {
      Error e = l->error;
      mark_lost(seq, seq, e);
      return seq;
    }
  }
  pending_.push_back(Queued{seq, std::move(batch), std::chrono::steady_clock::now()});
  cv_.notify_one();
  return seq;
}

uint64_t CommitPipeline::last_submitted() const {
  std::lock_guard lk(mu_);
  return next_seq_ - 1;
}

uint64_t CommitPipeline::last_synced() const {
  std::lock_guard lk(mu_);
  return synced_;
}

bool CommitPipeline::lost(uint64_t seq) const {
  if (seq == 0 || seq > lost_max_.load(std::memory_order_acquire)) return false;
  std::lock_guard lk(mu_);
  return find_lost(seq) != nullptr;
}

uint64_t CommitPipeline::rounds() const {
  std::lock_guard lk(mu_);
  return rounds_;
}

uint64_t CommitPipeline::disk_full_errors() const {
  std::lock_guard lk(mu_);
  return disk_full_errors_;
}

uint64_t CommitPipeline::io_errors() const {
  std::lock_guard lk(mu_);
  return io_errors_;
}

uint64_t CommitPipeline::resumes() const {
  std::lock_guard lk(mu_);
  return resumes_;
}

void CommitPipeline::mark_lost(uint64_t first, uint64_t last, const Error& error) {
  if (!lost_.empty()) {
    auto& [prev_first, prev] = *lost_.rbegin();
    if (prev.last + 1 == first && prev.error.code == error.code) {
      prev.last = last;
      lost_max_.store(last, std::memory_order_release);
      return;
    }
  }
  lost_.emplace(first, Lost{last, error});
  lost_max_.store(last, std::memory_order_release);
}

const CommitPipeline::Lost* CommitPipeline::find_lost(uint64_t seq) const {
  auto it = lost_.upper_bound(seq);
  if (it == lost_.begin()) return nullptr;
  --it;
  return seq <= it->second.last ? &it->second : nullptr;
}

void CommitPipeline::wait_impl(uint64_t seq, Waiter w) {
  std::unique_lock lk(mu_);
  Status result = Ok{};
  if (const Lost* l = find_lost(seq)) {
    result = l->error;
  } else if (seq > synced_ && seq >= next_seq_) {
    // Never handed out: nothing to wait for that could ever become durable.
    result = make_error("storage", "io_error", "No write with this sequence number was submitted.");
  } else if (seq > synced_) {
    waiters_.emplace(seq, std::move(w));
    return;
  }
  lk.unlock();
  w(std::move(result));
}

Status CommitPipeline::wait_blocking(uint64_t seq) {
  std::promise<Status> p;
  auto f = p.get_future();
  wait_impl(seq, [&p](Status st) { p.set_value(std::move(st)); });
  return f.get();
}

void CommitPipeline::try_resume() {
  // Called by the committer only, without mu_: reopening replays the WAL
  // and flushes, which may take a while. Nothing is being written meanwhile.
  auto st = store_.reopen();
  std::lock_guard lk(mu_);
  if (st.ok()) {
    failure_.reset();
    ++resumes_;
    health_.store(static_cast<int>(Health::kWritable), std::memory_order_release);
    spdlog::warn("commit pipeline: storage writable again; accepting writes");
  } else if (st.error().code != "disk_full") {
    // Reopening failed for another reason than space: nothing to come back to.
    failure_ = lost_error(st.error());
    health_.store(static_cast<int>(Health::kFailed), std::memory_order_release);
    spdlog::critical("commit pipeline: resume failed: {}; refusing writes until restart", st.error().message);
  }
}

void CommitPipeline::run() {
  for (;;) {
    std::vector<Queued> round;
    {
      std::unique_lock lk(mu_);
      if (health() == Health::kDiskFull) {
        // Batches are refused meanwhile, so nothing is pending; look for
        // space again every resume_interval_.
        if (cv_.wait_for(lk, resume_interval_, [&] { return stopping_; })) return;
        lk.unlock();
        try_resume();
        continue;
      }
      cv_.wait(lk, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping and drained (or refusing)
      round.swap(pending_);
    }

    // The whole round becomes one batch: one WAL record, one fsync, applied
    // atomically in sequence order.
    rocksdb::WriteBatch merged;
    if (round.size() == 1) {
      merged = std::move(round.front().batch);
    } else {
      std::vector<const rocksdb::WriteBatch*> parts;
      parts.reserve(round.size());
      for (auto& q : round) parts.push_back(&q.batch);
      merged = Store::concat(parts);
    }
    const auto write_start = std::chrono::steady_clock::now();
    Status st = store_.write_synced(merged);
    const auto synced_at = std::chrono::steady_clock::now();
    if (st.ok()) {
      sync_seconds_.observe(std::chrono::duration<double>(synced_at - write_start).count());
      group_batches_.observe(static_cast<double>(round.size()));
      for (const auto& q : round) commit_seconds_.observe(std::chrono::duration<double>(synced_at - q.at).count());
    }

    std::vector<std::pair<Waiter, Status>> ready;
    {
      std::lock_guard lk(mu_);
      ++rounds_;
      if (!st.ok()) {
        // This round and everything queued behind it is lost: later batches
        // may build on this one (an actor's next turn), so none of them may
        // land without it. Nothing is written until resume (disk full) or
        // restart (any other error).
        const bool full = st.error().code == "disk_full";
        ++(full ? disk_full_errors_ : io_errors_);
        Error e = lost_error(st.error());
        mark_lost(round.front().seq, next_seq_ - 1, e);
        pending_.clear();
        failure_ = e;
        health_.store(static_cast<int>(full ? Health::kDiskFull : Health::kFailed), std::memory_order_release);
        for (auto& [_, w] : waiters_) ready.emplace_back(std::move(w), e);
        waiters_.clear();
      } else {
        synced_ = round.back().seq;
        synced_fast_.store(synced_, std::memory_order_release);
        auto end = waiters_.upper_bound(synced_);
        for (auto it = waiters_.begin(); it != end; ++it) ready.emplace_back(std::move(it->second), Ok{});
        waiters_.erase(waiters_.begin(), end);
      }
    }
    if (!st.ok())
      spdlog::critical("commit pipeline: {}; {}", st.error().message,
                       health() == Health::kDiskFull ? "refusing writes until the disk has room"
                                                     : "refusing writes until restart");
    for (auto& [w, r] : ready) w(std::move(r));
  }
}

}  // namespace anvil::storage
