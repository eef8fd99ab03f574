// `anvil doctor`: checks what a node needs before (or while) it runs:
// configuration, disk space, the data directory, the listen port, and
// Postgres/Redis reachability. Reads only; never writes to the data
// directory (it is opened like `anvil actors --data-dir`).
#include "tools/doctor_cli.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "base/value/json.hpp"
#include "storage/redis/client.hpp"
#include "tools/actors_cli.hpp"

namespace anvil::tools {
namespace {

constexpr const char* kUsage = R"(Usage:
  anvil doctor [--data-dir DIR] [--listen HOST:PORT] [--postgres-url URL]
               [--redis-url URL] [--json]
Checks the configuration (the same flags and ANVIL_* variables as `anvil
serve`), free disk space, the data directory (readable, which node holds it,
every actor record decodes), the listen address (free, or a node answering
/health there) and whether Postgres and Redis accept connections.
Prints one line per check (ok / warn / FAIL), or a JSON array of
{"check","status","detail"} with --json. Exit 0 when nothing failed, 1 when
a check failed, 2 on usage errors.
)";

struct Check {
  std::string name, status, detail;  // status: ok | warn | fail
};

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  return buf;
}

bool split_host_port(const std::string& s, std::string& host, std::string& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return false;
  host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  port = s.substr(colon + 1);
  return true;
}

// Connects to host:port within `timeout_ms`; "" on success, else why not.
std::string tcp_connect(const std::string& host, const std::string& port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) return gai_strerror(rc);
  std::string why = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        err = errno;
      } else {
        pollfd p{fd, POLLOUT, 0};
        const int n = ::poll(&p, 1, timeout_ms);
        socklen_t len = sizeof err;
        if (n == 0)
          err = ETIMEDOUT;
        else if (n < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
          err = errno;
      }
    }
    why = err == 0 ? "" : std::strerror(err);
    ::close(fd);
    if (err == 0) break;
  }
  ::freeaddrinfo(res);
  return why;
}

// "" when host:port can be bound now, else why not.
std::string try_bind(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) return gai_strerror(rc);
  std::string why;
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  int one = 1;
  if (fd < 0) {
    why = std::strerror(errno);
  } else {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0) why = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return why;
}

// host and port of a postgres:// URL (libpq's URI form), default port 5432.
bool postgres_host_port(const std::string& url, std::string& host, std::string& port) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return false;
  std::string rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  if (rest.empty()) return false;
  if (!split_host_port(rest, host, port)) {
    host = rest;
    port = "5432";
  }
  return !host.empty();
}

}  // namespace

int doctor_command(const std::vector<std::string>& args) {
  std::string data_dir = env_or("ANVIL_DATA_DIR", "./data");
  std::string listen = env_or("ANVIL_LISTEN", "127.0.0.1:6420");
  std::string pg_url = env_or("ANVIL_POSTGRES_URL", "");
  std::string redis_url = env_or("ANVIL_REDIS_URL", "");
  const std::string token = env_or("ANVIL_TOKEN", ""), admin_token = env_or("ANVIL_ADMIN_TOKEN", "");
  const std::string allow = env_or("ANVIL_ALLOW_UNAUTHENTICATED", "");
  bool as_json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--json") {
      as_json = true;
    } else if (!((a == "--data-dir" && value(data_dir)) || (a == "--listen" && value(listen)) ||
                 (a == "--postgres-url" && value(pg_url)) || (a == "--redis-url" && value(redis_url)))) {
      std::cerr << "anvil doctor: unknown option or missing value `" << a << "`\n\n" << kUsage;
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::err);
  std::vector<Check> checks;
  auto add = [&](std::string name, std::string status, std::string detail) {
    checks.push_back({std::move(name), std::move(status), std::move(detail)});
  };

  // Configuration: what `anvil serve` would refuse.
  std::string host, port;
  if (!split_host_port(listen, host, port)) {
    add("config", "fail", "listen address `" + listen + "` is not HOST:PORT");
  } else {
    std::vector<std::string> notes;
    const bool loopback = host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
    const bool allowed = !allow.empty() && allow != "0" && allow != "false";
    if (!loopback && token.empty() && !allowed)
      add("config", "fail", "listening on " + listen + " without ANVIL_TOKEN: `anvil serve` refuses to start");
    else if (!token.empty() && token == admin_token)
      add("config", "fail", "ANVIL_ADMIN_TOKEN must differ from ANVIL_TOKEN");
    else
      add("config", admin_token.empty() && !loopback ? "warn" : "ok",
          "listen " + listen + ", client token " + (token.empty() ? "off" : "on") + ", admin token " +
              (admin_token.empty() ? "off (admin routes: local clients only)" : "on"));
  }

  // Disk space where the data lives (or would be created).
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path probe = fs::absolute(data_dir, ec);
  while (!probe.empty() && !fs::exists(probe, ec) && probe != probe.parent_path()) probe = probe.parent_path();
  struct statvfs sv {};
  if (::statvfs(probe.c_str(), &sv) != 0) {
    add("disk", "fail", "cannot stat " + probe.string() + ": " + std::strerror(errno));
  } else {
    const double total = double(sv.f_blocks) * double(sv.f_frsize), avail = double(sv.f_bavail) * double(sv.f_frsize);
    const double pct = total > 0 ? 100.0 * avail / total : 0;
    char detail[160];
    std::snprintf(detail, sizeof detail, "%s free of %s (%.0f%%) on %s", gib(avail).c_str(), gib(total).c_str(), pct,
                  probe.c_str());
    add("disk", avail < 256.0 * 1024 * 1024 ? "fail" : (pct < 10 || avail < 1024.0 * 1024 * 1024 ? "warn" : "ok"),
        detail);
  }

  // The data directory.
  bool node_running = false;
  if (!fs::exists(data_dir + "/rocksdb/CURRENT", ec)) {
    add("data-dir", fs::exists(data_dir, ec) ? "warn" : "ok",
        data_dir + ": no database yet (a node creates " + data_dir + "/rocksdb on first start)");
  } else {
    auto reader = DataDirReader::open(data_dir);
    if (!reader.ok()) {
      add("data-dir", "fail", data_dir + ": cannot read the database: " + reader.error().message);
    } else {
      node_running = (*reader)->node_running();
      size_t actors = 0;
      inspect::ActorFilter f;
      f.limit = 1000;
      std::string failure;
      for (;;) {
        auto page = (*reader)->list(f);
        if (!page.ok()) {
          failure = page.error().message;
          break;
        }
        actors += page->find("actors")->as_array().size();
        const Value* c = page->find("cursor");
        if (!c->is_string()) break;
        f.cursor = c->as_string();
      }
      if (!failure.empty())
        add("data-dir", "fail", data_dir + ": an actor record does not decode: " + failure);
      else
        add("data-dir", "ok",
            data_dir + ": " + std::to_string(actors) + " actors, " +
                (node_running ? "a node is running on it" : "no node running on it"));
    }
  }

  // The listen port.
  if (!host.empty()) {
    std::string why = try_bind(host, port);
    if (why.empty()) {
      add("port", "ok", listen + " is free");
    } else if (tcp_connect(host == "0.0.0.0" ? "127.0.0.1" : host, port, 1000).empty()) {
      add("port", node_running ? "ok" : "warn",
          listen + " is in use (" + why + ")" + (node_running ? ", by the node on the data directory presumably" : ""));
    } else {
      add("port", "fail", "cannot listen on " + listen + ": " + why);
    }
  }

  // Postgres and Redis.
  if (pg_url.empty()) {
    add("postgres", "ok", "not configured");
  } else if (std::string h, p; !postgres_host_port(pg_url, h, p)) {
    add("postgres", "fail", "the URL is not postgres://[user[:password]@]host[:port]/db");
  } else {
    std::string why = tcp_connect(h, p, 2000);
    add("postgres", why.empty() ? "ok" : "fail", h + ":" + p + (why.empty() ? " accepts connections" : ": " + why));
  }
  if (redis_url.empty()) {
    add("redis", "ok", "not configured");
  } else if (auto ep = redis::parse_url(redis_url); !ep.ok()) {
    add("redis", "fail", ep.error().message);
  } else {
    std::string why = tcp_connect(ep->host, std::to_string(ep->port), 2000);
    add("redis", why.empty() ? "ok" : "fail",
        ep->host + ":" + std::to_string(ep->port) + (why.empty() ? " accepts connections" : ": " + why));
  }

  bool failed = false;
  Array out;
  for (const auto& c : checks) {
    failed |= c.status == "fail";
    if (as_json) {
      out.push_back(obj({{"check", c.name}, {"status", c.status}, {"detail", c.detail}}));
    } else {
      const char* tag = c.status == "ok" ? "ok  " : c.status == "warn" ? "warn" : "FAIL";
      std::cout << tag << "  " << c.name << std::string(10 - std::min<size_t>(9, c.name.size()), ' ') << c.detail
                << "\n";
    }
  }
  if (as_json) std::cout << json::dump(Value(std::move(out))) << "\n";
  return failed ? 1 : 0;
}

}  // namespace anvil::tools
