// anvil-db-bench: durable `dbCounter.add(1)` (a SQLite INSERT + a state
// change, committed in one RocksDB batch) against the plain state write
// `counter.increment(1)`, side by side in one process and run, on one actor
// and on many. In-process node (real RocksDB, group commit, fsync per round),
// closed loop: `--conc` callers each issue the next call when the previous
// durable reply arrived. Cells alternate baseline/SQLite `--rounds` times
// so both see the same machine load. Prints one JSON object: {cells, check}.
//
//   anvil-db-bench [--seconds 3] [--conc 64] [--actors 1000] [--rounds 2] [--dir /tmp/...]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/fixtures/fixtures.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using Clock = std::chrono::steady_clock;

namespace {

struct Cell {
  size_t ok = 0, failed = 0;
  double seconds = 0;
  std::vector<double> lat_ms;
};

struct Shared {
  Runtime* rt;
  const std::vector<std::string>* ids;
  std::string action;
  Clock::time_point until;
  std::atomic<size_t> next{0};
};

// One caller; `cell` is its own (merged after every caller ended).
asio::awaitable<void> worker(Shared* s, Cell* cell) {
  while (Clock::now() < s->until) {
    const std::string& id = (*s->ids)[s->next.fetch_add(1) % s->ids->size()];
    const auto t0 = Clock::now();
    Array args{Value(1)};
    Value params;
    CallResult r = co_await s->rt->call_action(id, s->action, std::move(args), std::move(params));
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (r.output.ok()) {
      cell->lat_ms.push_back(ms);
      ++cell->ok;
    } else {
      ++cell->failed;
    }
  }
}

Cell run_cell(testing::Node& node, const std::vector<std::string>& ids, const std::string& action, int conc,
              double seconds) {
  Shared s{&node.rt(), &ids, action,
           Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds))};
  // Each caller on a strand of its own, like a gateway connection.
  std::vector<Cell> parts(static_cast<size_t>(conc));
  const auto t0 = Clock::now();
  std::vector<std::future<void>> done;
  for (auto& part : parts)
    done.push_back(asio::co_spawn(asio::make_strand(node.io()), worker(&s, &part), asio::use_future));
  for (auto& d : done) d.get();
  Cell cell;
  cell.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& part : parts) {
    cell.ok += part.ok;
    cell.failed += part.failed;
    cell.lat_ms.insert(cell.lat_ms.end(), part.lat_ms.begin(), part.lat_ms.end());
  }
  return cell;
}

double pct(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  auto get = [&](const std::string& k, const std::string& d) { return args.count(k) ? args[k] : d; };
  const double seconds = std::stod(get("--seconds", "3"));
  const int conc = std::stoi(get("--conc", "64"));
  const int many = std::stoi(get("--actors", "1000"));
  const int rounds = std::stoi(get("--rounds", "2"));
  const std::string dir = get("--dir", (std::filesystem::temp_directory_path() / "anvil-db-bench").string());
  // stdout carries only the result (bench/run.mjs parses it).
  spdlog::set_default_logger(spdlog::stderr_color_mt("db-bench"));
  spdlog::set_level(spdlog::level::warn);
  std::filesystem::remove_all(dir);

  Registry registry;
  actors::register_fixtures(registry);
  {
    testing::Node node(dir, registry);
    std::map<std::string, std::vector<std::string>> one, all;
    for (const std::string type : {"counter", "dbCounter"}) {
      for (int i = 0; i < many; ++i) {
        ActorKey key{"bench", std::to_string(i)};
        all[type].push_back(node.get_or_create(type, key));
        // Wakes the actor (and opens its database) before timing.
        (void)node.call(all[type].back(), type == "counter" ? "getCount" : "check");
      }
      one[type] = {all[type][0]};
    }
    struct Kind {
      const char* label;
      const char* type;
      const char* action;
    };
    const Kind kinds[] = {{"state write (counter.increment)", "counter", "increment"},
                          {"SQLite insert + state (dbCounter.add)", "dbCounter", "add"}};
    std::string cells;
    for (int round = 1; round <= rounds; ++round) {
      for (const auto* actors : {&one, &all}) {
        for (const Kind& k : kinds) {
          const auto& ids = actors->at(k.type);
          Cell c = run_cell(node, ids, k.action, conc, seconds);
          char line[512];
          std::snprintf(line, sizeof line,
                        "%s{\"round\":%d,\"actors\":%zu,\"conc\":%d,\"type\":\"%s\",\"cell\":\"%s\",\"ok\":%zu,"
                        "\"failed\":%zu,\"seconds\":%.2f,\"opsPerSec\":%.1f,\"p50Ms\":%.3f,\"p99Ms\":%.3f}",
                        cells.empty() ? "" : ",", round, ids.size(), conc, k.type, k.label, c.ok, c.failed, c.seconds,
                        double(c.ok) / c.seconds, pct(c.lat_ms, 0.50), pct(c.lat_ms, 0.99));
          cells += line;
          std::fprintf(stderr, "%s\n", line);
        }
      }
    }
    // Consistency after the run: every dbCounter's state count equals its rows' sum.
    size_t mismatched = 0;
    for (const auto& id : all["dbCounter"]) {
      auto r = node.call(id, "check");
      if (!r.ok() || *r->find("count") != *r->find("sum")) ++mismatched;
    }
    std::printf("{\"seconds\":%.1f,\"cells\":[%s],\"check\":{\"dbCounters\":%zu,\"countNotEqualSum\":%zu}}\n",
                seconds, cells.c_str(), all["dbCounter"].size(), mismatched);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
