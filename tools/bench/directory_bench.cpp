// anvil-directory-bench: the directory on disk (issue 17) as figures.
//
//   anvil-directory-bench create --dir D --count N [--threads 2]
//       N `counter` actors (keys a0 … aN-1) through Runtime::get_or_create,
//       each create durable (fsynced) before the run ends; never started, so
//       each is a directory record and a key-index row only.
//   anvil-directory-bench probe --dir D --count N [--samples 10000] [--cache C]
//       In a fresh process: RSS before opening the data directory, the time
//       from opening it to the first answered call (a random actor's
//       getCount), RSS then (every actor asleep: the node loaded nothing),
//       then `samples` calls on random sleeping actors (increment: resolve by
//       key, wake, durable write), latency p50/p99, RSS after, and the data
//       directory's size per actor.
//
// In-process node (real RocksDB, group commit; no HTTP). Prints one JSON
// object per run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "actors/fixtures/fixtures.hpp"
#include "base/value/json.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

uint64_t rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

uint64_t dir_bytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

int create(const std::string& dir, size_t count, unsigned threads) {
  testing::Node n(dir, actors::fixture_registry());
  std::atomic<size_t> next{0}, failed{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      uint64_t last = 0;
      for (size_t i; (i = next.fetch_add(1)) < count;) {
        CreateRequest cr;
        cr.name = "counter";
        cr.key = {"a" + std::to_string(i)};
        auto r = n.rt().get_or_create(cr);
        if (!r.ok()) {
          ++failed;
          continue;
        }
        last = std::max(last, r->seq);
        // Wait for durability now and then (the commits are grouped).
        if (i % 4096 == 0 && last) {
          (void)n.run(n.rt().durable(last));
          last = 0;
        }
      }
      if (last) (void)n.run(n.rt().durable(last));
    });
  for (auto& th : pool) th.join();
  const double secs = ms_since(t0) / 1000;
  std::printf("{\"mode\":\"create\",\"count\":%zu,\"failed\":%zu,\"seconds\":%.2f,\"per_second\":%.0f,\"rss_mib\":%.0f}\n",
              count, failed.load(), secs, double(count) / secs, double(rss_kib()) / 1024);
  return failed ? 1 : 0;
}

int probe(const std::string& dir, size_t count, size_t samples, size_t cache) {
  const uint64_t rss_empty = rss_kib();
  std::mt19937_64 rng(42);
  auto random_key = [&] { return "a" + std::to_string(rng() % count); };
  const auto t0 = Clock::now();
  testing::Node n(dir, actors::fixture_registry());
  if (cache) n.rt().set_directory_cache(cache);
  const double open_ms = ms_since(t0);
  {
    const std::string id = n.get_or_create("counter", {random_key()});
    auto r = n.call(id, "getCount");
    if (!r.ok()) {
      std::fprintf(stderr, "first call failed: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  const double first_ms = ms_since(t0);
  const uint64_t rss_first = rss_kib();
  std::vector<double> lat, resolve_lat;
  lat.reserve(samples);
  resolve_lat.reserve(samples);
  size_t errors = 0;
  for (size_t i = 0; i < samples; ++i) {
    const std::string key = random_key();
    const auto c0 = Clock::now();
    CreateRequest cr;
    cr.name = "counter";
    cr.key = {key};
    auto r = n.rt().get_or_create(cr);
    if (!r.ok() || r->created) {
      ++errors;
      continue;
    }
    resolve_lat.push_back(ms_since(c0));
    auto out = n.call(r->info.actor_id, "increment", {Value(1)});
    if (!out.ok()) ++errors;
    lat.push_back(ms_since(c0));
  }
  std::sort(lat.begin(), lat.end());
  std::sort(resolve_lat.begin(), resolve_lat.end());
  auto at = [&](double q) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, size_t(q * lat.size()))]; };
  auto rat = [&](double q) {
    return resolve_lat.empty() ? 0.0 : resolve_lat[std::min(resolve_lat.size() - 1, size_t(q * resolve_lat.size()))];
  };
  // Baseline in the same run: the same call on one awake actor (no
  // directory read, no wake), so what remains is the turn and its fsync.
  std::vector<double> hot;
  hot.reserve(samples);
  {
    const std::string id = n.get_or_create("counter", {random_key()});
    for (size_t i = 0; i < samples; ++i) {
      const auto c0 = Clock::now();
      if (!n.call(id, "increment", {Value(1)}).ok()) ++errors;
      hot.push_back(ms_since(c0));
    }
    std::sort(hot.begin(), hot.end());
  }
  auto hat = [&](double q) { return hot.empty() ? 0.0 : hot[std::min(hot.size() - 1, size_t(q * hot.size()))]; };
  const uint64_t rss_after = rss_kib();
  const std::string metrics = n.rt().metrics_text();
  auto metric = [&](const std::string& name) -> double {
    auto at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(metrics.substr(at + name.size() + 2));
  };
  const uint64_t disk = dir_bytes(dir);
  std::printf(
      "{\"mode\":\"probe\",\"count\":%zu,\"open_ms\":%.1f,\"first_request_ms\":%.1f,\"rss_empty_mib\":%.1f,"
      "\"rss_first_mib\":%.1f,\"rss_per_sleeping_actor_bytes\":%.2f,\"wake_samples\":%zu,\"wake_errors\":%zu,"
      "\"wake_p50_ms\":%.3f,\"wake_p99_ms\":%.3f,\"wake_max_ms\":%.3f,"
      "\"resolve_p50_ms\":%.3f,\"resolve_p99_ms\":%.3f,\"awake_p50_ms\":%.3f,\"awake_p99_ms\":%.3f,"
      "\"awake_max_ms\":%.3f,\"rss_after_wakes_mib\":%.1f,"
      "\"directory_cache_entries\":%.0f,\"directory_cache_capacity\":%.0f,\"disk_bytes\":%llu,"
      "\"disk_bytes_per_actor\":%.1f}\n",
      count, open_ms, first_ms, double(rss_empty) / 1024, double(rss_first) / 1024,
      double(rss_first - rss_empty) * 1024 / double(count), samples, errors, at(0.5), at(0.99),
      lat.empty() ? 0.0 : lat.back(), rat(0.5), rat(0.99), hat(0.5), hat(0.99),
      hot.empty() ? 0.0 : hot.back(), double(rss_after) / 1024, metric("anvil_directory_cache_entries"),
      metric("anvil_directory_cache_capacity"), static_cast<unsigned long long>(disk), double(disk) / double(count));
  return errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: anvil-directory-bench create|probe --dir D --count N [options]\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  const std::string mode = argv[1];
  const std::string dir = arg(argc, argv, "dir", "");
  const size_t count = std::stoull(arg(argc, argv, "count", "0"));
  if (dir.empty() || count == 0) {
    std::fprintf(stderr, "--dir and --count are required\n");
    return 2;
  }
  if (mode == "create") return create(dir, count, unsigned(std::stoul(arg(argc, argv, "threads", "2"))));
  if (mode == "probe")
    return probe(dir, count, std::stoull(arg(argc, argv, "samples", "10000")),
                 std::stoull(arg(argc, argv, "cache", "0")));
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
