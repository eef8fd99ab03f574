// `anvil`: the node binary and its operator subcommands.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "actors/examples/examples.hpp"
#include "actors/growqr/app.hpp"
#include "base/net/http_client.hpp"
#include "actors/fixtures/fixtures.hpp"
#include "engine-api/manager_api.hpp"
#include "gateway/actor_routes.hpp"
#include "gateway/http_server.hpp"
#include "gateway/router.hpp"
#include "gateway/ws_session.hpp"
#include "runtime/app_host.hpp"
#include "runtime/runtime.hpp"
#include "storage/commit_pipeline.hpp"
#include "storage/pg/migrations.hpp"
#include "storage/pg/pool.hpp"
#include "storage/redis/client.hpp"
#include "storage/store.hpp"
#include "tools/events_cli.hpp"

namespace {

constexpr const char* kUsage = R"(anvil — a native actor engine that speaks Rivet's client protocol

Usage:
  anvil serve [options]     run a node (serves the Rivet protocol at / and /api/rivet/)
  anvil events ...          GrowQR: replay failed/unresolved events, list and re-drive dead letters
                            (`anvil events --help`)
  anvil version             print the version
  anvil --help              show this help

Options for `serve` (each also read from the environment variable shown):
  --listen HOST:PORT        address to listen on            [ANVIL_LISTEN, default 127.0.0.1:6420]
  --data-dir DIR            RocksDB data directory          [ANVIL_DATA_DIR, default ./data]
  --threads N               I/O + actor threads             [ANVIL_THREADS, default: CPU count]
  --log-level LEVEL         trace|debug|info|warn|error     [ANVIL_LOG_LEVEL, default info]
  --postgres-url URL        Postgres for shared tables; the node applies its
                            embedded migrations at start and refuses to start
                            if an applied one changed   [ANVIL_POSTGRES_URL, default: none]
  --postgres-pool N         Postgres connections        [ANVIL_POSTGRES_POOL, default 4]
  --redis-url URL           Redis (streams)             [ANVIL_REDIS_URL, default: none]
  --app NAME                enable an application (repeatable; known: growqr)
                                                        [ANVIL_APPS, comma-separated]
Without a Postgres or Redis URL the node serves every actor type that needs
neither; one that does answers db.not_configured / redis.not_configured.

Durability: every successful reply is sent only after the writes it depends
on are fsynced to the RocksDB write-ahead log.
)";

struct ServeConfig {
  std::string listen = "127.0.0.1:6420";
  std::string data_dir = "./data";
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::string log_level = "info";
  std::string postgres_url;
  size_t postgres_pool = 4;
  std::string redis_url;
  std::vector<std::string> apps;
};

extern "C" char** environ;

// Applications a node can enable, by name.
std::optional<anvil::AppDefinition> make_app(const std::string& name) {
  if (name == "growqr") return anvil::growqr::app();
  return std::nullopt;
}

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

int usage_error(const std::string& msg) {
  std::cerr << "anvil: " << msg << "\n\nRun `anvil --help` for usage.\n";
  return 2;
}

bool split_host_port(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    size_t used = 0;
    unsigned long p = std::stoul(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return true;
}

int serve(const ServeConfig& cfg) {
  auto level = spdlog::level::from_str(cfg.log_level);
  if (level == spdlog::level::off && cfg.log_level != "off") return usage_error("unknown log level `" + cfg.log_level + "`");
  spdlog::set_level(level);

  std::string host;
  uint16_t port = 0;
  if (!split_host_port(cfg.listen, host, port)) return usage_error("--listen expects HOST:PORT, got `" + cfg.listen + "`");

  // Applications read their configuration (e.g. SERVICE_TOKEN) from the
  // node's environment, plus the node's own URLs in use; their startup
  // checks run before anything is opened, so a misconfigured node exits
  // naming every problem at once.
  anvil::AppConfig app_config;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) app_config[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  app_config.erase("ANVIL_POSTGRES_URL");
  app_config.erase("ANVIL_REDIS_URL");
  if (!cfg.postgres_url.empty()) app_config["ANVIL_POSTGRES_URL"] = cfg.postgres_url;
  if (!cfg.redis_url.empty()) app_config["ANVIL_REDIS_URL"] = cfg.redis_url;
  std::vector<anvil::AppDefinition> apps;
  std::vector<std::string> problems;
  for (const auto& name : cfg.apps) {
    auto app = make_app(name);
    if (!app) return usage_error("unknown application `" + name + "` (known: growqr)");
    for (auto& p : app->check_config(app_config)) problems.push_back(name + ": " + p);
    apps.push_back(std::move(*app));
  }
  if (!problems.empty()) {
    std::cerr << "anvil: refusing to start, " << problems.size() << " configuration problem(s):\n";
    for (const auto& p : problems) std::cerr << "  - " << p << "\n";
    return 1;
  }

  std::error_code fs_ec;
  std::filesystem::create_directories(cfg.data_dir, fs_ec);
  if (fs_ec) {
    spdlog::critical("cannot create data dir {}: {}", cfg.data_dir, fs_ec.message());
    return 1;
  }

  anvil::asio::io_context io(static_cast<int>(cfg.threads));
  auto store = anvil::storage::Store::open({cfg.data_dir + "/rocksdb"});
  if (!store.ok()) {
    spdlog::critical("cannot open RocksDB in {}: {}", cfg.data_dir, store.error().message);
    return 1;
  }
  anvil::storage::CommitPipeline pipeline(**store, io.get_executor());
  anvil::Registry registry;
  anvil::actors::register_fixtures(registry);
  anvil::actors::register_examples(registry);
  for (auto& app : apps) {
    if (app.requires_postgres() && cfg.postgres_url.empty()) {
      spdlog::critical("application {} needs Postgres: start with --postgres-url or ANVIL_POSTGRES_URL", app.name());
      return 1;
    }
    if (app.requires_redis() && cfg.redis_url.empty()) {
      spdlog::critical("application {} needs Redis: start with --redis-url or ANVIL_REDIS_URL", app.name());
      return 1;
    }
    for (auto& def : app.actors()) registry.add(std::move(def));
  }
  anvil::Runtime runtime(io, **store, pipeline, registry);

  // The node's connections to the outside world, shared by every actor.
  anvil::net::HttpClient http(io);
  anvil::Services services;
  services.http = &http;
  std::unique_ptr<anvil::pg::Pool> pg;
  if (!cfg.postgres_url.empty()) {
    pg = std::make_unique<anvil::pg::Pool>(anvil::pg::PoolOptions{cfg.postgres_url, cfg.postgres_pool});
    for (const auto& app : apps) {
      if (!app.migration_list()) continue;
      if (auto st = anvil::pg::apply_migrations(*pg, app.migration_set(), *app.migration_list()); !st.ok()) {
        spdlog::critical("Postgres migrations (set {}): {} ({})", app.migration_set(), st.error().message,
                         st.error().qualified());
        return 1;
      }
    }
    services.pg = pg.get();
  }
  std::unique_ptr<anvil::redis::Client> redis;
  if (!cfg.redis_url.empty()) {
    if (auto ep = anvil::redis::parse_url(cfg.redis_url); !ep.ok()) {
      spdlog::critical("--redis-url: {}", ep.error().message);
      return 1;
    }
    redis = std::make_unique<anvil::redis::Client>(io, anvil::redis::Options{cfg.redis_url});
    services.redis = redis.get();
  }
  runtime.set_services(services);

  if (auto st = runtime.load(); !st.ok()) {
    spdlog::critical("cannot load the actor directory: {}", st.error().message);
    return 1;
  }

  anvil::ManagerApi api(runtime);
  anvil::gateway::ActorRoutes actor_routes(runtime);
  anvil::AppHost app_host(runtime, std::move(app_config));
  for (const auto& app : apps) app_host.add(app);
  anvil::gateway::Router router(runtime, api, actor_routes, &app_host);
  anvil::gateway::ServerOptions sopts;
  sopts.host = host;
  sopts.port = port;
  anvil::gateway::WsGateway ws_gateway(runtime, actor_routes);
  anvil::gateway::HttpServer server(
      io, sopts, [&router](anvil::http::Request req) { return router.handle(std::move(req)); },
      [&ws_gateway](anvil::gateway::BeastRequest req, boost::beast::tcp_stream stream) {
        return ws_gateway.handle(std::move(req), std::move(stream));
      });
  auto bound = server.start();
  if (!bound.ok()) {
    spdlog::critical("{}", bound.error().message);
    return 1;
  }

  // Graceful stop: refuse new connections, put awake actors to sleep (their
  // state is persisted), wait for the last commit, then stop the threads.
  anvil::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    server.stop();
    app_host.stop();
    anvil::asio::co_spawn(
        io,
        [&]() -> anvil::asio::awaitable<void> {
          co_await runtime.shutdown();
          io.stop();
        },
        anvil::asio::detached);
  });

  spdlog::info("anvil {} listening on http://{}:{} (also /api/rivet), data dir {}, {} threads, postgres {}, redis {}",
               "0.1.0", host, *bound, cfg.data_dir, cfg.threads, pg ? "on" : "off", redis ? "on" : "off");
  // A plain line on stdout for scripts waiting for readiness.
  std::cout << "anvil listening on http://" << host << ":" << *bound << std::endl;

  app_host.start();
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < cfg.threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  spdlog::info("anvil stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "version" || args[0] == "--version") {
    std::cout << "anvil 0.1.0 (rivetkit client protocol 2.3.19)\n";
    return 0;
  }
  if (args[0] == "events") return anvil::tools::events_command({args.begin() + 1, args.end()});
  if (args[0] != "serve") return usage_error("unknown command `" + args[0] + "`");

  ServeConfig cfg;
  cfg.listen = env_or("ANVIL_LISTEN", cfg.listen);
  cfg.data_dir = env_or("ANVIL_DATA_DIR", cfg.data_dir);
  cfg.log_level = env_or("ANVIL_LOG_LEVEL", cfg.log_level);
  if (auto t = env_or("ANVIL_THREADS", ""); !t.empty()) cfg.threads = std::max(1, std::atoi(t.c_str()));
  cfg.postgres_url = env_or("ANVIL_POSTGRES_URL", "");
  cfg.redis_url = env_or("ANVIL_REDIS_URL", "");
  for (std::string apps = env_or("ANVIL_APPS", ""); !apps.empty();) {
    auto comma = apps.find(',');
    if (auto name = apps.substr(0, comma); !name.empty()) cfg.apps.push_back(name);
    apps = comma == std::string::npos ? "" : apps.substr(comma + 1);
  }
  if (auto p = env_or("ANVIL_POSTGRES_POOL", ""); !p.empty()) cfg.postgres_pool = std::max(1, std::atoi(p.c_str()));

  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* flag) -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      (void)flag;
      return args[++i];
    };
    std::optional<std::string> v;
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--listen") {
      if (!(v = value("--listen"))) return usage_error("--listen needs HOST:PORT");
      cfg.listen = *v;
    } else if (a == "--data-dir") {
      if (!(v = value("--data-dir"))) return usage_error("--data-dir needs a directory");
      cfg.data_dir = *v;
    } else if (a == "--threads") {
      if (!(v = value("--threads"))) return usage_error("--threads needs a number");
      int n = std::atoi(v->c_str());
      if (n < 1) return usage_error("--threads must be at least 1");
      cfg.threads = static_cast<unsigned>(n);
    } else if (a == "--postgres-url") {
      if (!(v = value("--postgres-url"))) return usage_error("--postgres-url needs a URL");
      cfg.postgres_url = *v;
    } else if (a == "--postgres-pool") {
      if (!(v = value("--postgres-pool"))) return usage_error("--postgres-pool needs a number");
      int n = std::atoi(v->c_str());
      if (n < 1) return usage_error("--postgres-pool must be at least 1");
      cfg.postgres_pool = static_cast<size_t>(n);
    } else if (a == "--app") {
      if (!(v = value("--app"))) return usage_error("--app needs an application name");
      if (std::find(cfg.apps.begin(), cfg.apps.end(), *v) == cfg.apps.end()) cfg.apps.push_back(*v);
    } else if (a == "--redis-url") {
      if (!(v = value("--redis-url"))) return usage_error("--redis-url needs a URL");
      cfg.redis_url = *v;
    } else if (a == "--log-level") {
      if (!(v = value("--log-level"))) return usage_error("--log-level needs a level");
      cfg.log_level = *v;
    } else {
      return usage_error("unknown option `" + a + "`");
    }
  }
  return serve(cfg);
}
