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

#include <csignal>
#include <cstdint>

#include <boost/asio.hpp>
#include <sys/wait.h>
#include <unistd.h>

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

// A local server in a child process, forked before any thread exists: its
// sockets and CPU are not the measured process's (N client plus N server
// sockets would not fit one descriptor limit either). `serve` runs in the
// child, starts the server (keeping it alive, e.g. in a static) and returns
// its port; the child then waits for stop().
struct ChildServer {
  pid_t pid = -1;
  uint16_t port = 0;
  void stop() {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

template <typename Serve>
ChildServer fork_server(Serve serve) {
  ChildServer out;
  int port_pipe[2];
  if (pipe(port_pipe) != 0) return out;
  out.pid = fork();
  if (out.pid == 0) {
    const uint16_t port = serve();
    if (write(port_pipe[1], &port, sizeof port) != sizeof port) _exit(1);
    pause();  // until the parent's SIGTERM
    _exit(0);
  }
  if (read(port_pipe[0], &out.port, sizeof out.port) != sizeof out.port) out.port = 0;
  return out;
}

}  // namespace anvil::bench
