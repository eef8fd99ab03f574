#include "storage/commit_pipeline.hpp"

#include <future>

#include <spdlog/spdlog.h>

namespace anvil::storage {

CommitPipeline::CommitPipeline(Store& store, asio::any_io_executor fallback)
    : store_(store), fallback_(std::move(fallback)), thread_([this] { run(); }) {}

CommitPipeline::~CommitPipeline() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t CommitPipeline::submit(rocksdb::WriteBatch batch) {
  std::lock_guard lk(mu_);
  uint64_t seq = next_seq_++;
  pending_.emplace_back(seq, std::move(batch));
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

uint64_t CommitPipeline::rounds() const {
  std::lock_guard lk(mu_);
  return rounds_;
}

void CommitPipeline::wait_impl(uint64_t seq, Waiter w) {
  std::unique_lock lk(mu_);
  if (!failure_.empty()) {
    std::string err = failure_;
    lk.unlock();
    w(std::move(err));
    return;
  }
  if (seq <= synced_) {
    lk.unlock();
    w("");
    return;
  }
  waiters_.emplace(seq, std::move(w));
}

std::string CommitPipeline::wait_blocking(uint64_t seq) {
  std::promise<std::string> p;
  auto f = p.get_future();
  wait_impl(seq, [&p](std::string err) { p.set_value(std::move(err)); });
  return f.get();
}

void CommitPipeline::run() {
  for (;;) {
    std::vector<std::pair<uint64_t, rocksdb::WriteBatch>> round;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping and drained
      round.swap(pending_);
    }

    // The whole round becomes one batch: one WAL record, one fsync, applied
    // atomically in sequence order.
    std::string err;
    rocksdb::WriteBatch merged;
    if (round.size() == 1) {
      merged = std::move(round.front().second);
    } else {
      std::vector<const rocksdb::WriteBatch*> parts;
      parts.reserve(round.size());
      for (auto& [_, batch] : round) parts.push_back(&batch);
      merged = Store::concat(parts);
    }
    {
      auto st = store_.write_synced(merged);
      if (!st.ok()) err = st.error().message;
    }

    std::vector<Waiter> ready;
    {
      std::lock_guard lk(mu_);
      ++rounds_;
      if (!err.empty()) {
        failure_ = "storage write failed: " + err;
        for (auto& [_, w] : waiters_) ready.push_back(std::move(w));
        waiters_.clear();
      } else {
        synced_ = round.back().first;
        synced_fast_.store(synced_, std::memory_order_release);
        auto end = waiters_.upper_bound(synced_);
        for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
        waiters_.erase(waiters_.begin(), end);
      }
    }
    if (!err.empty()) spdlog::critical("commit pipeline: {}; refusing further writes", err);
    std::string result = err.empty() ? std::string() : "storage write failed: " + err;
    for (auto& w : ready) w(result);
  }
}

}  // namespace anvil::storage
