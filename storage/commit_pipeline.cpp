#include "storage/commit_pipeline.hpp"

#include <algorithm>
#include <future>

#include <pthread.h>

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

Error replication_aborted() {
  return make_error("storage", "replication_aborted",
                    "The node stopped before the remote store acknowledged the write; it may not have been saved.");
}

Error replication_threw() {
  return make_error("storage", "internal_error",
                    "Replicating the write to the remote store failed unexpectedly; it was not saved.");
}

bool same_error(const Error& a, const Error& b) {
  return a.group == b.group && a.code == b.code && a.message == b.message && !a.metadata && !b.metadata;
}

}  // namespace

CommitPipeline::CommitPipeline(Store& store, asio::any_io_executor fallback, std::chrono::milliseconds resume_interval)
    : store_(store),
      fallback_(std::move(fallback)),
      resume_interval_(resume_interval),
      link_(std::make_shared<Link>(this)),
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
      replication_seconds_(metrics_
                               .histogram("anvil_replication_seconds",
                                          "One round's replication to the remote store: from the replicate() call "
                                          "until its done.",
                                          {}, metrics::latency_buckets())
                               .with({})),
      thread_([this] { run(); }) {}

CommitPipeline::~CommitPipeline() {
  std::unique_lock lk(mu_);
  stopping_ = true;
  cv_.notify_all();
  const bool replicating = replicator_ != nullptr;
  if (replicating) {
    // The committer drains the queue, then the rounds still replicating get
    // until the deadline; after that nothing more is written.
    const auto deadline = std::chrono::steady_clock::now() + limits_.stop_timeout;
    if (!idle_cv_.wait_until(lk, deadline, [&] { return committer_done_ && in_flight_.empty(); })) {
      aborting_ = true;
      cv_.notify_all();
    }
  }
  lk.unlock();
  thread_.join();
  {
    // From here a `done` finds no pipeline; one running has finished.
    std::lock_guard l(link_->mu);
    link_->pipe = nullptr;
  }
  if (!replicating) return;
  // Whatever is not durable now never will be: queued, written but not
  // replicated, or replicated behind a round that is not.
  Ready ready;
  size_t rounds_left = 0;
  {
    std::lock_guard l(mu_);
    rounds_left = in_flight_.size();
    if (synced_ + 1 < next_seq_) mark_lost_unless_lost(synced_ + 1, next_seq_ - 1, replication_aborted());
    pending_.clear();
    in_flight_.clear();
    for (auto& [seq, w] : waiters_) {
      const Lost* lost = find_lost(seq);
      ready.emplace_back(std::move(w), lost ? Status(lost->error) : Status(Ok{}));
    }
    waiters_.clear();
  }
  if (rounds_left > 0)
    spdlog::warn("commit pipeline: stopped with {} round(s) not acknowledged by the replicator; their writes fail",
                 rounds_left);
  for (auto& [w, r] : ready) w(std::move(r));
}

void CommitPipeline::set_replicator(Replicator* r, ReplicationLimits limits) {
  std::lock_guard lk(mu_);
  replicator_ = r;
  if (limits.max_rounds_in_flight == 0) limits.max_rounds_in_flight = 1;
  limits_ = limits;
}

uint64_t CommitPipeline::submit(rocksdb::WriteBatch batch, uint64_t after, bool replicate) {
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
  pending_.push_back(Queued{seq, std::move(batch), std::chrono::steady_clock::now(), after, replicate});
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
  // Replication failures arrive out of round order, so the newest range is
  // not always the one being added.
  if (last > lost_max_.load(std::memory_order_relaxed)) lost_max_.store(last, std::memory_order_release);
  if (!lost_.empty()) {
    auto& [prev_first, prev] = *lost_.rbegin();
    if (prev.last + 1 == first && same_error(prev.error, error)) {
      prev.last = last;
      return;
    }
  }
  lost_.emplace(first, Lost{last, error});
}

void CommitPipeline::mark_lost_unless_lost(uint64_t first, uint64_t last, const Error& error) {
  uint64_t seq = first;
  while (seq <= last) {
    if (const Lost* l = find_lost(seq)) {
      if (l->last >= last) return;
      seq = l->last + 1;
      continue;
    }
    auto next = lost_.upper_bound(seq);  // the next lost range, if any
    const uint64_t gap_last = next == lost_.end() ? last : std::min(last, next->first - 1);
    mark_lost(seq, gap_last, error);
    seq = gap_last + 1;
  }
}

void CommitPipeline::lose(uint64_t seq, const Error& error, Ready& ready) {
  mark_lost(seq, seq, error);
  auto [begin, end] = waiters_.equal_range(seq);
  for (auto it = begin; it != end; ++it) ready.emplace_back(std::move(it->second), error);
  waiters_.erase(begin, end);
}

const CommitPipeline::Lost* CommitPipeline::find_lost(uint64_t seq) const {
  if (seq == 0 || seq > lost_max_.load(std::memory_order_relaxed)) return nullptr;
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
  // Named for top -H / perf: the thread every durable reply waits on.
  ::pthread_setname_np(::pthread_self(), "anvil-commit");
  for (;;) {
    std::vector<Queued> round;
    Replicator* replicator = nullptr;
    {
      std::unique_lock lk(mu_);
      if (health() == Health::kDiskFull) {
        // Batches are refused meanwhile, so nothing is pending; look for
        // space again every resume_interval_.
        if (cv_.wait_for(lk, resume_interval_, [&] { return stopping_; })) break;
        lk.unlock();
        try_resume();
        continue;
      }
      cv_.wait(lk, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) break;  // stopping and drained (or refusing)
      // Rounds pipeline, but only so many wait for their replication; more
      // batches gather for the next round meanwhile.
      cv_.wait(lk, [&] { return aborting_ || in_flight_.size() < limits_.max_rounds_in_flight; });
      if (aborting_) break;  // the destructor fails what is left
      round.swap(pending_);
      replicator = replicator_;
    }

    // The whole round becomes one batch: one WAL record, one fsync, applied
    // atomically in sequence order. The round's own batches stay intact:
    // the replicator gets them.
    rocksdb::WriteBatch merged;
    rocksdb::WriteBatch* write = &round.front().batch;
    if (round.size() > 1) {
      std::vector<const rocksdb::WriteBatch*> parts;
      parts.reserve(round.size());
      for (auto& q : round) parts.push_back(&q.batch);
      merged = Store::concat(parts);
      write = &merged;
    }
    const auto write_start = std::chrono::steady_clock::now();
    Status st = store_.write_synced(*write);
    if (st.ok()) {
      sync_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - write_start).count());
      group_batches_.observe(static_cast<double>(round.size()));
      replicate_round(replicator, std::move(round));
      continue;
    }

    std::vector<std::pair<Waiter, Status>> ready;
    {
      std::lock_guard lk(mu_);
      ++rounds_;
      // This round and everything queued behind it is lost: later batches
      // may build on this one (an actor's next turn), so none of them may
      // land without it. Nothing is written until resume (disk full) or
      // restart (any other error). Earlier rounds still replicating go on.
      const bool full = st.error().code == "disk_full";
      ++(full ? disk_full_errors_ : io_errors_);
      Error e = lost_error(st.error());
      const uint64_t first = round.front().seq;
      mark_lost_unless_lost(first, next_seq_ - 1, e);
      pending_.clear();
      failure_ = e;
      health_.store(static_cast<int>(full ? Health::kDiskFull : Health::kFailed), std::memory_order_release);
      const auto from = waiters_.lower_bound(first);
      for (auto it = from; it != waiters_.end(); ++it) ready.emplace_back(std::move(it->second), e);
      waiters_.erase(from, waiters_.end());
    }
    spdlog::critical("commit pipeline: {}; {}", st.error().message,
                     health() == Health::kDiskFull ? "refusing writes until the disk has room"
                                                   : "refusing writes until restart");
    for (auto& [w, r] : ready) w(std::move(r));
  }
  {
    std::lock_guard lk(mu_);
    committer_done_ = true;
  }
  idle_cv_.notify_all();
}

void CommitPipeline::replicate_round(Replicator* replicator, std::vector<Queued> round) {
  // Shared with `done`, which may outlive the pipeline: the replicator may
  // read the batches until it calls `done`.
  auto batches = std::make_shared<std::vector<Queued>>(std::move(round));
  std::vector<Replicator::Item> items;
  std::vector<uint64_t> seqs;
  if (replicator) {
    for (auto& q : *batches)
      if (q.replicate) {
        items.push_back({q.seq, &q.batch});
        seqs.push_back(q.seq);
      }
  }
  uint64_t id = 0;
  Ready ready;
  {
    std::lock_guard lk(mu_);
    ++rounds_;
    if (aborting_) return;  // the destructor gave up: it fails this round
    id = next_round_id_++;
    in_flight_.push_back(Round{id, batches, seqs, items.empty(), std::chrono::steady_clock::now()});
    if (items.empty()) advance(ready);
  }
  for (auto& [w, r] : ready) w(std::move(r));
  if (items.empty()) return;

  auto done = [link = link_, id, batches](std::vector<std::pair<uint64_t, Error>> failed) {
    Ready ready;
    {
      std::lock_guard lk(link->mu);
      if (!link->pipe) return;  // destroyed: it failed this round already
      ready = link->pipe->on_replicated(id, std::move(failed));
    }
    for (auto& [w, r] : ready) w(std::move(r));
  };
  try {
    replicator->replicate(std::move(items), std::move(done));
  } catch (const std::exception& e) {
    spdlog::error("commit pipeline: replicate() threw: {}", e.what());
    std::vector<std::pair<uint64_t, Error>> failed;
    for (uint64_t seq : seqs) failed.emplace_back(seq, replication_threw());
    ready = on_replicated(id, std::move(failed));
  } catch (...) {
    spdlog::error("commit pipeline: replicate() threw a non-exception");
    std::vector<std::pair<uint64_t, Error>> failed;
    for (uint64_t seq : seqs) failed.emplace_back(seq, replication_threw());
    ready = on_replicated(id, std::move(failed));
  }
  for (auto& [w, r] : ready) w(std::move(r));
}

CommitPipeline::Ready CommitPipeline::on_replicated(uint64_t round_id, std::vector<std::pair<uint64_t, Error>> failed) {
  Ready ready;
  std::lock_guard lk(mu_);
  // Rounds leave in_flight_ only from the front, so ids there are consecutive.
  const uint64_t front = in_flight_.empty() ? 0 : in_flight_.front().id;
  if (in_flight_.empty() || round_id < front || round_id - front >= in_flight_.size()) {
    spdlog::warn("commit pipeline: replication done for round {}, which is not replicating; ignored", round_id);
    return ready;
  }
  Round& r = in_flight_[round_id - front];
  if (r.done) {
    spdlog::warn("commit pipeline: replication done called twice for round {}; ignored", round_id);
    return ready;
  }
  r.done = true;
  const auto now = std::chrono::steady_clock::now();
  replication_seconds_.observe(std::chrono::duration<double>(now - r.replicate_at).count());
  for (auto& [seq, error] : failed) {
    if (!std::binary_search(r.replicated.begin(), r.replicated.end(), seq)) {
      spdlog::warn("commit pipeline: replication failed for {}, which round {} did not replicate; ignored", seq,
                   round_id);
      continue;
    }
    if (find_lost(seq)) continue;  // listed twice
    lose(seq, error, ready);
  }
  advance(ready);
  cv_.notify_one();  // a committer waiting for fewer rounds in flight
  if (in_flight_.empty()) idle_cv_.notify_all();
  return ready;
}

void CommitPipeline::advance(Ready& ready) {
  if (in_flight_.empty() || !in_flight_.front().done) return;
  const auto now = std::chrono::steady_clock::now();
  while (!in_flight_.empty() && in_flight_.front().done) {
    const Round& r = in_flight_.front();
    for (const auto& q : *r.batches) {
      // Built on a batch whose replication failed after this one was
      // submitted: it must not become durable without it.
      if (q.after != 0 && !find_lost(q.seq)) {
        if (const Lost* l = find_lost(q.after)) {
          const Error e = l->error;
          lose(q.seq, e, ready);
        }
      }
      if (!find_lost(q.seq)) commit_seconds_.observe(std::chrono::duration<double>(now - q.at).count());
    }
    synced_ = r.batches->back().seq;
    in_flight_.pop_front();
  }
  synced_fast_.store(synced_, std::memory_order_release);
  auto end = waiters_.upper_bound(synced_);
  for (auto it = waiters_.begin(); it != end; ++it) {
    const Lost* l = find_lost(it->first);  // lose() took those already; kept for safety
    ready.emplace_back(std::move(it->second), l ? Status(l->error) : Status(Ok{}));
  }
  waiters_.erase(waiters_.begin(), end);
}

}  // namespace anvil::storage
