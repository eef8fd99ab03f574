// anvil-workbench-bench: the workbench's two rules as figures (docs/workbench.md).
//
//  1. Sidebar: organization.listTaskSummaries() over N tasks (default
//     10,000), every task asleep (the node restarted), against the fan-out
//     read the rules forbid (each task's getSnapshot, 64 at a time) in the
//     same run: latency p50/p99 and the task actors each woke.
//  2. A status change reaching a subscriber: task.setStatus() until the
//     organization's subscriber has taskSummaryUpdated (task -> repository
//     -> organization, each hop a durable commit), against the task's own
//     subscriber getting taskUpdated (no hop) in the same run.
//
// In-process node (real RocksDB, group commit, fsync before every reply; no
// HTTP). Prints one JSON object.
//   anvil-workbench-bench [--tasks 10000] [--lists 200] [--changes 1000] [--dir /tmp/...]
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "actors/workbench/workbench.hpp"
#include "base/value/json.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

Value pct(std::vector<double> v) {
  if (v.empty()) return Value();
  std::sort(v.begin(), v.end());
  auto at = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))]; };
  return obj({{"n", Value(int64_t(v.size()))}, {"p50_ms", Value(at(0.50))}, {"p99_ms", Value(at(0.99))},
              {"max_ms", Value(v.back())}});
}

// Records the events a connection receives; wait() for one that matches.
class Sink : public ConnSink {
 public:
  void send_event(const std::string& name, const Array& args) override {
    std::lock_guard lk(mu_);
    events_.emplace_back(name, args.empty() ? Value() : args[0]);
    cv_.notify_all();
  }
  void close(uint16_t, const std::string&) override {}
  bool wait(const std::function<bool(const std::string&, const Value&)>& match, std::chrono::milliseconds limit) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, limit, [&] {
      for (auto it = events_.begin(); it != events_.end(); ++it)
        if (match(it->first, it->second)) {
          events_.erase(events_.begin(), it + 1);
          return true;
        }
      return false;
    });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, Value>> events_;
};

struct Subscription {
  std::shared_ptr<Sink> sink;
  std::string conn_id;
};

Subscription subscribe(testing::Node& n, const std::string& id, const std::string& event) {
  auto sink = std::make_shared<Sink>();
  auto conn = n.run(n.rt().connect(id, Value(), sink));
  if (!conn.output.ok()) throw std::runtime_error(conn.output.error().message);
  std::vector<ConnCall> calls{ConnCall{true, true, event, {}}};
  auto turns = n.run(n.rt().conn_calls(id, conn.output->as_string(), std::move(calls)));
  (void)n.run(n.rt().finish(std::move(turns)));
  return {sink, conn.output->as_string()};
}

Value must(Result<Value> r, const char* what) {
  if (!r.ok()) throw std::runtime_error(std::string(what) + ": " + r.error().qualified() + " " + r.error().message);
  return std::move(*r);
}

Registry registry() {
  Registry reg;
  AppDefinition app = workbench::app();
  for (auto& def : app.actors()) reg.add(def);
  return reg;
}

}  // namespace

int main(int argc, char** argv) {
  int tasks = 10'000, lists = 200, changes = 1'000;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--tasks") tasks = std::atoi(argv[i + 1]);
    else if (a == "--lists") lists = std::atoi(argv[i + 1]);
    else if (a == "--changes") changes = std::atoi(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
  }
  spdlog::set_level(spdlog::level::warn);
  if (dir.empty()) dir = anvil::testing::temp_dir("workbench-bench");
  const Registry reg = registry();
  Object out;
  out.emplace_back("tasks", Value(int64_t(tasks)));
  try {
    std::string org_id, repo_id;
    {
      testing::Node n(dir, reg);
      org_id = n.get_or_create("organization", {"bench"});
      must(n.call(org_id, "addRepository", {obj({{"repoId", "r"}, {"name", "bench/r"}})}), "addRepository");
      repo_id = n.rt().find_by_key("default", "repository", {"bench", "r"})->actor_id;
      const auto t0 = Clock::now();
      std::vector<std::future<CallResult>> inflight;
      for (int i = 0; i < tasks; ++i) {
        Array args{obj({{"taskId", Value("t" + std::to_string(i))}, {"title", Value("Task " + std::to_string(i))}})};
        inflight.push_back(asio::co_spawn(n.io(), n.rt().call_action(repo_id, "createTask", std::move(args), Value()),
                                          asio::use_future));
        if (inflight.size() == 64 || i + 1 == tasks) {
          for (auto& f : inflight) must(f.get().output, "createTask");
          inflight.clear();
        }
      }
      out.emplace_back("create_seconds", Value(ms_since(t0) / 1000));
      // The summaries reach the organization through the outboxes.
      for (int i = 0; i < 6000; ++i) {
        auto list = must(n.call(org_id, "listTaskSummaries"), "list");
        if (static_cast<int>(list.as_array().size()) == tasks) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    // A restart: every task asleep.
    testing::Node n(dir, reg);
    const uint64_t task_wakes0 = n.actor_wakes("task");
    std::vector<double> lat;
    size_t rows = 0;
    for (int i = 0; i < lists; ++i) {
      const auto t0 = Clock::now();
      auto list = must(n.call(org_id, "listTaskSummaries"), "list");
      lat.push_back(ms_since(t0));
      rows = list.as_array().size();
    }
    out.emplace_back("sidebar", obj({{"rows", Value(int64_t(rows))}, {"latency", pct(lat)},
                                     {"task_wakes", Value(int64_t(n.actor_wakes("task") - task_wakes0))}}));

    // The fan-out the rules forbid: every task's own snapshot, 64 at a time.
    {
      // The ids outlive the calls (call_action keeps a reference to its id).
      std::vector<std::string> ids;
      for (int i = 0; i < tasks; ++i)
        ids.push_back(n.rt().find_by_key("default", "task", {"bench", "r", "t" + std::to_string(i)})->actor_id);
      const uint64_t w0 = n.actor_wakes("task");
      const auto t0 = Clock::now();
      std::vector<std::future<CallResult>> inflight;
      for (int i = 0; i < tasks; ++i) {
        inflight.push_back(asio::co_spawn(n.io(), n.rt().call_action(ids[i], "getSnapshot", Array{}, Value()),
                                          asio::use_future));
        if (inflight.size() == 64 || i + 1 == tasks) {
          for (auto& f : inflight) must(f.get().output, "getSnapshot");
          inflight.clear();
        }
      }
      out.emplace_back("fanout_read", obj({{"ms", Value(ms_since(t0))},
                                           {"task_wakes", Value(int64_t(n.actor_wakes("task") - w0))}}));
    }

    // A status change reaching subscribers: three hops vs none.
    auto org_sub = subscribe(n, org_id, "taskSummaryUpdated");
    std::vector<double> via_org, direct;
    for (int i = 0; i < changes; ++i) {
      const std::string tid = "t" + std::to_string(i % std::max(1, tasks));
      const std::string task_id = n.rt().find_by_key("default", "task", {"bench", "r", tid})->actor_id;
      auto task_sub = subscribe(n, task_id, "taskUpdated");
      const std::string status = "s" + std::to_string(i);
      const auto t0 = Clock::now();
      must(n.call(task_id, "setStatus", {Value(status)}), "setStatus");
      auto is_status = [&](const std::string&, const Value& e) {
        const Value* s = e.find("task") ? e.find("task") : e.find("summary");
        return s && s->find("status") && s->find("status")->is_string() && s->find("status")->as_string() == status;
      };
      if (task_sub.sink->wait(is_status, std::chrono::seconds(10))) direct.push_back(ms_since(t0));
      if (org_sub.sink->wait(is_status, std::chrono::seconds(10))) via_org.push_back(ms_since(t0));
      n.run(n.rt().disconnect(task_id, task_sub.conn_id));
    }
    out.emplace_back("status_change", obj({{"task_subscriber", pct(direct)}, {"organization_subscriber", pct(via_org)}}));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "anvil-workbench-bench: %s\n", e.what());
    return 1;
  }
  std::printf("%s\n", json::dump(Value(std::move(out))).c_str());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
