// Timing of one bench phase: N calls issued at once on an io_context, each
// timed from issue to answer; throughput and latency percentiles as JSON.
// Shared by the bench tools that compare an actor path with the bare loop
// it replaces (anvil-outbound-bench, anvil-agent-bench).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio.hpp>

namespace anvil::bench {

using Clock = std::chrono::steady_clock;

struct Phase {
  std::string name;
  size_t calls = 0, ok = 0;
  double seconds = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::string first_error;
};

inline void finish(Phase& p, std::vector<double>& lat, Clock::time_point t0) {
  p.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::sort(lat.begin(), lat.end());
  auto at = [&](double q) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, size_t(q * lat.size()))]; };
  p.p50_ms = at(0.50);
  p.p99_ms = at(0.99);
  p.max_ms = lat.empty() ? 0 : lat.back();
}

// make(i, ok*, err*) returns an awaitable<double>: call i's latency in ms.
template <typename MakeCall>
Phase run_phase(const std::string& name, boost::asio::io_context& io, size_t n, MakeCall make) {
  Phase p;
  p.name = name;
  p.calls = n;
  std::vector<std::unique_ptr<bool>> oks;
  std::vector<std::string> errs(n);
  std::vector<std::future<double>> futures;
  futures.reserve(n);
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    oks.push_back(std::make_unique<bool>(false));
    futures.push_back(boost::asio::co_spawn(io, make(i, oks.back().get(), &errs[i]), boost::asio::use_future));
  }
  std::vector<double> lat;
  lat.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    lat.push_back(futures[i].get());
    if (*oks[i])
      ++p.ok;
    else if (p.first_error.empty())
      p.first_error = errs[i];
  }
  finish(p, lat, t0);
  return p;
}

inline std::string json(const Phase& p) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"phase\":\"%s\",\"calls\":%zu,\"ok\":%zu,\"seconds\":%.3f,\"per_second\":%.1f,"
                "\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,\"first_error\":\"%s\"}",
                p.name.c_str(), p.calls, p.ok, p.seconds, p.seconds > 0 ? p.ok / p.seconds : 0.0, p.p50_ms,
                p.p99_ms, p.max_ms, p.first_error.substr(0, 120).c_str());
  return buf;
}

}  // namespace anvil::bench
