// Outbound HTTP measurement: cpprestsdk's http_client vs anvil::net::HttpClient
// (Beast + OpenSSL). Not a test; run bench/outbound/run.sh (see README.md).
//
//   outbound_bench serve [--delay-ms 100] [--threads 1]
//       a FakeHttpServer: GET /slow answers after the delay, GET /fast at once;
//       prints "port <n>" and serves until stdin closes.
//   outbound_bench client --client beast|cpprest --port <n>
//                  [--concurrency 10000] [--sequential 2000] [--threads 2]
//                  [--max-idle N]  (beast: pooled connections kept; default = concurrency)
//       N concurrent GET /slow, then a sequential keep-alive loop of GET /fast;
//       prints one line per phase: calls/s, p50/p99 ms, peak threads, RSS, CPU.
#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <future>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <cpprest/http_client.h>
#include <spdlog/spdlog.h>

#include "base/net/http_client.hpp"
#include "tests/fakes/fake_http.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using anvil::net::HttpClient;
using anvil::net::HttpRequest;
using anvil::net::HttpResponse;
namespace asio = anvil::asio;

struct Args {
  std::string mode, client = "beast";
  int port = 0, delay_ms = 100, threads = 2, concurrency = 10000, sequential = 2000, max_idle = -1;
};

Args parse(int argc, char** argv) {
  Args a;
  if (argc > 1) a.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--client") a.client = v;
    else if (k == "--port") a.port = std::stoi(v);
    else if (k == "--delay-ms") a.delay_ms = std::stoi(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--concurrency") a.concurrency = std::stoi(v);
    else if (k == "--sequential") a.sequential = std::stoi(v);
    else if (k == "--max-idle") a.max_idle = std::stoi(v);
  }
  return a;
}

int count_threads() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
  }
  return n;
}

long status_kib(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (f && std::fgets(line, sizeof line, f))
    if (std::strncmp(line, field, std::strlen(field)) == 0) v = std::atol(line + std::strlen(field) + 1);
  if (f) std::fclose(f);
  return v;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Peak thread count of this process while a phase runs (the sampler excluded).
class ThreadSampler {
 public:
  ThreadSampler() : t_([this] {
      while (!stop_) {
        peak_ = std::max(peak_.load(), count_threads() - 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }) {}
  int finish() {
    stop_ = true;
    t_.join();
    return peak_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> peak_{0};
  std::thread t_;
};

struct Phase {
  std::vector<double> ms;  // per-call latency
  int errors = 0;
  double wall = 0, cpu = 0;
  int peak_threads = 0;
};

void report(const Args& a, const char* phase, Phase& p) {
  std::sort(p.ms.begin(), p.ms.end());
  auto pct = [&](double q) { return p.ms.empty() ? 0.0 : p.ms[std::min(p.ms.size() - 1, size_t(q * p.ms.size()))]; };
  const size_t calls = p.ms.size() + size_t(p.errors);
  std::printf(
      "%-8s %-11s calls=%zu errors=%d wall=%.2fs calls/s=%.0f p50=%.1fms p99=%.1fms max=%.1fms "
      "peak_threads=%d rss=%ldKiB hwm=%ldKiB cpu=%.2fs (%.1fus/call)\n",
      a.client.c_str(), phase, calls, p.errors, p.wall, double(calls) / p.wall, pct(0.50), pct(0.99), pct(1.0),
      p.peak_threads, status_kib("VmRSS:"), status_kib("VmHWM:"), p.cpu, p.cpu * 1e6 / double(calls));
  std::fflush(stdout);
}

// ---- anvil::net::HttpClient (Beast) ----

asio::awaitable<void> beast_sequential(HttpClient& client, std::string url, int n, Phase* p) {
  for (int i = 0; i < n; ++i) {
    HttpRequest req;
    req.url = url;
    const auto t0 = Clock::now();
    auto r = co_await client.request(std::move(req));
    if (r.ok() && r->status == 200)
      p->ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    else
      p->errors++;
  }
}

void run_beast(const Args& a) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < a.threads; ++i) threads.emplace_back([&io] { io.run(); });
  anvil::net::ClientOptions opts;
  opts.max_idle_per_host = size_t(a.max_idle >= 0 ? a.max_idle : a.concurrency);
  HttpClient client(io, opts);
  const std::string base = "http://127.0.0.1:" + std::to_string(a.port);

  for (const char* phase : {"concurrent", "sequential"}) {
    const bool concurrent = std::strcmp(phase, "concurrent") == 0;
    Phase p;
    p.ms.reserve(size_t(std::max(a.concurrency, a.sequential)));
    ThreadSampler sampler;
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    if (concurrent) {
      std::mutex mu;
      std::atomic<int> left{a.concurrency};
      std::promise<void> done;
      for (int i = 0; i < a.concurrency; ++i) {
        HttpRequest req;
        req.url = base + "/slow";
        req.total_timeout = std::chrono::seconds(60);
        req.retry.max_attempts = 1;
        const auto start = Clock::now();
        asio::co_spawn(asio::make_strand(io), client.request(std::move(req)),
                       [&, start](std::exception_ptr, anvil::Result<HttpResponse> r) {
                         {
                           std::lock_guard lock(mu);
                           if (r.ok() && r->status == 200)
                             p.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
                           else
                             p.errors++;
                         }
                         if (--left == 0) done.set_value();
                       });
      }
      done.get_future().get();
    } else {
      Phase warm;
      asio::co_spawn(asio::make_strand(io), beast_sequential(client, base + "/fast", 200, &warm), asio::use_future)
          .get();
      p.ms.clear();
      const auto t1 = Clock::now();
      asio::co_spawn(asio::make_strand(io), beast_sequential(client, base + "/fast", a.sequential, &p),
                     asio::use_future)
          .get();
      p.wall = std::chrono::duration<double>(Clock::now() - t1).count();
    }
    if (concurrent) p.wall = std::chrono::duration<double>(Clock::now() - t0).count();
    p.cpu = cpu_seconds() - cpu0;
    p.peak_threads = sampler.finish();
    report(a, phase, p);
  }
  work.reset();
  io.stop();
  for (auto& t : threads) t.join();
}

// ---- cpprestsdk ----

void run_cpprest(const Args& a) {
  using namespace web::http;
  client::http_client_config cfg;
  cfg.set_timeout(std::chrono::seconds(60));
  client::http_client client("http://127.0.0.1:" + std::to_string(a.port), cfg);

  for (const char* phase : {"concurrent", "sequential"}) {
    const bool concurrent = std::strcmp(phase, "concurrent") == 0;
    Phase p;
    p.ms.reserve(size_t(std::max(a.concurrency, a.sequential)));
    ThreadSampler sampler;
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    if (concurrent) {
      std::mutex mu;
      std::atomic<int> left{a.concurrency};
      std::promise<void> done;
      for (int i = 0; i < a.concurrency; ++i) {
        const auto start = Clock::now();
        client.request(methods::GET, "/slow")
            .then([](http_response resp) {
              if (resp.status_code() != 200) throw std::runtime_error("status");
              return resp.extract_string();
            })
            .then([&, start](pplx::task<std::string> t) {
              bool ok = true;
              try {
                t.get();
              } catch (...) {
                ok = false;
              }
              {
                std::lock_guard lock(mu);
                if (ok)
                  p.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
                else
                  p.errors++;
              }
              if (--left == 0) done.set_value();
            });
      }
      done.get_future().get();
      p.wall = std::chrono::duration<double>(Clock::now() - t0).count();
    } else {
      auto one = [&](Phase& into) {
        const auto start = Clock::now();
        try {
          http_response resp = client.request(methods::GET, "/fast").get();
          resp.extract_string().get();
          if (resp.status_code() == 200) {
            into.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
            return;
          }
        } catch (...) {
        }
        into.errors++;
      };
      Phase warm;
      for (int i = 0; i < 200; ++i) one(warm);
      const auto t1 = Clock::now();
      for (int i = 0; i < a.sequential; ++i) one(p);
      p.wall = std::chrono::duration<double>(Clock::now() - t1).count();
    }
    p.cpu = cpu_seconds() - cpu0;
    p.peak_threads = sampler.finish();
    report(a, phase, p);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // 10,000 sockets on each side: lift the soft descriptor limit to the hard one.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  spdlog::set_level(spdlog::level::err);

  Args a = parse(argc, argv);
  if (a.mode == "serve") {
    anvil::fakes::FakeHttpServer::Options opts;
    opts.threads = a.threads;
    opts.record = false;
    anvil::fakes::FakeHttpServer server(opts);
    server.route("GET", "/slow",
                 anvil::fakes::FakeResponse::text(200, "slow").after(std::chrono::milliseconds(a.delay_ms)));
    server.route("GET", "/fast", anvil::fakes::FakeResponse::text(200, "fast"));
    std::printf("port %u\n", server.port());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    return 0;
  }
  if (a.mode == "client" && a.port > 0) {
    if (a.client == "beast")
      run_beast(a);
    else if (a.client == "cpprest")
      run_cpprest(a);
    else
      return 2;
    return 0;
  }
  std::fprintf(stderr, "usage: outbound_bench serve|client ... (see the comment at the top of outbound_bench.cpp)\n");
  return 2;
}
