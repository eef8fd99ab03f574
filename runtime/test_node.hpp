// Test support: one in-process node (real RocksDB in a temp dir, commit
// pipeline, runtime on 2 io threads) and helpers to drive it synchronously.
// Storage stays in test_node.cpp (library anvil_test_node), so a test of a
// layer above the runtime sees no storage header either.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <future>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "runtime/runtime.hpp"
#include "storage/test_dir.hpp"

namespace rocksdb {
class FileSystem;
}

namespace anvil::testing {

class Node {
 public:
  // `fs`: the file system RocksDB writes through (storage/fault_fs.hpp in
  // failure tests); null = the real one. A test node retries writes after a
  // full disk every 50 ms (a real node: every second).
  // `http`: actors get the outbound HTTP client (ctx.http) before load(), as
  // a real node sets its services first: workflows resuming on load call out
  // at once, and enable_http() after construction would race them
  // (`outbound.not_configured`).
  Node(const std::string& dir, const Registry& registry, std::shared_ptr<rocksdb::FileSystem> fs = nullptr,
       std::optional<net::ClientOptions> http = std::nullopt);
  // No graceful shutdown: like a process that just stops (halt(), then
  // everything is destroyed; the io_context last, which abandons the waits
  // still pending: base/async.hpp).
  ~Node();

  // Stops the io threads, as a crash stops the process's threads first; the
  // io_context and what is bound to it stay until destruction. Whatever the
  // test owns that holds completions for this node's executors (a pg::Pool
  // with statements in flight) must be destroyed after halt() and before
  // the node, as a killed process's pool dies with it: a completion posted
  // later would reach a destroyed io_context. Idempotent.
  void halt();

  Runtime& rt() { return *rt_; }
  asio::io_context& io() { return io_; }

  // Gives actors the outbound HTTP client (ctx.http); call before using them
  // (or pass `http` to the constructor when workflows resume on load).
  void enable_http(net::ClientOptions opts = {}) {
    http_ = std::make_unique<net::HttpClient>(io_, std::move(opts));
    Services s = rt_->services();
    s.http = http_.get();
    rt_->set_services(s);
  }

  template <typename T>
  T run(asio::awaitable<T> aw) {
    return asio::co_spawn(io_, std::move(aw), asio::use_future).get();
  }

  Result<Value> call(const std::string& id, const std::string& action, Array args = {}) {
    return run(rt_->call_action(id, action, std::move(args), Value())).output;
  }

  std::string get_or_create(const std::string& name, ActorKey key = {}, std::optional<Value> input = {}) {
    CreateRequest cr;
    cr.name = name;
    cr.key = std::move(key);
    cr.input = std::move(input);
    auto r = rt_->get_or_create(cr);
    if (!r.ok()) throw std::runtime_error(r.error().message);
    if (auto st = run(rt_->durable(r->seq)); !st.ok()) throw std::runtime_error(st.error().message);
    return r->info.actor_id;
  }

  // The value of one /metrics sample, e.g. `anvil_actions_total{name="counter",action="increment",outcome="ok"}`;
  // nullopt when /metrics has no such line.
  std::optional<double> metric(const std::string& sample) {
    const std::string text = rt_->metrics_text();
    const std::string prefix = sample + " ";
    size_t at = 0;
    while ((at = text.find(prefix, at)) != std::string::npos) {
      if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + prefix.size()));
      at += prefix.size();
    }
    return std::nullopt;
  }

  // anvil_actor_wakes_total{name=...} as /metrics reports it.
  uint64_t actor_wakes(const std::string& name) {
    auto v = metric("anvil_actor_wakes_total{name=\"" + name + "\"}");
    if (!v) throw std::runtime_error("no anvil_actor_wakes_total line for " + name);
    return static_cast<uint64_t>(*v);
  }

  void send(const std::string& id, const std::string& queue, Value body) {
    auto r = run(rt_->queue_send(id, queue, std::move(body), false, 0));
    if (!r.ok()) throw std::runtime_error(r.error().message);
  }

  // Polls `action` until `pred` holds (work that runs asynchronously); returns the last value.
  Value wait_for(const std::string& id, const std::string& action, const std::function<bool(const Value&)>& pred) {
    Value last;
    for (int i = 0; i < 300; ++i) {
      auto r = call(id, action);
      if (r.ok()) {
        last = *r;
        if (pred(last)) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return last;
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::CommitPipeline> pipeline_;
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<net::HttpClient> http_;
  std::vector<std::thread> threads_;
};

}  // namespace anvil::testing
