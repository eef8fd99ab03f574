// `anvil`: the node binary and its operator subcommands.
#include <sys/resource.h>

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
#include "actors/workbench/workbench.hpp"
#include "base/log/log.hpp"
#include "base/net/http_client.hpp"
#include "actors/fixtures/fixtures.hpp"
#include "engine-api/manager_api.hpp"
#include "gateway/access.hpp"
#include "gateway/actor_routes.hpp"
#include "gateway/envoy.hpp"
#include "gateway/http_server.hpp"
#include "gateway/router.hpp"
#include "gateway/traffic.hpp"
#include "gateway/ws_session.hpp"
#include "runtime/actor_id.hpp"
#include "runtime/app_host.hpp"
#include "runtime/runtime.hpp"
#include "storage/commit_pipeline.hpp"
#include "storage/pg/migrations.hpp"
#include "storage/pg/pool.hpp"
#include "storage/redis/client.hpp"
#include "storage/store.hpp"
#include "tools/actors_cli.hpp"
#include "tools/data_cli.hpp"
#include "tools/doctor_cli.hpp"
#include "tools/events_cli.hpp"

namespace {

constexpr const char* kUsage = R"(anvil — a native actor engine that speaks Rivet's client protocol

Usage:
  anvil serve [options]     run a node (serves the Rivet protocol at / and /api/rivet/)
  anvil actors ls|get ...   list actors / show one (state, key, times, sizes), from a
                            running node (--endpoint) or a data directory (--data-dir)
                            (`anvil actors --help`)
  anvil doctor ...          check config, disk space, data directory, port, Postgres/Redis
                            (`anvil doctor --help`)
  anvil events ...          GrowQR: replay failed/unresolved events, list and re-drive dead letters
                            (`anvil events --help`)
  anvil data export|import|compact ...
                            move actors between data directories (an archive), compact
                            one (`anvil data --help`)
  anvil version             print the version
  anvil --help              show this help

Options for `serve` (each also read from the environment variable shown):
  --listen HOST:PORT        address to listen on            [ANVIL_LISTEN, default 127.0.0.1:6420]
  --data-dir DIR            RocksDB data directory          [ANVIL_DATA_DIR, default ./data]
  --threads N               I/O + actor threads             [ANVIL_THREADS, default: CPU count]
  --wal-preallocate on|off  give the write-ahead log its disk space ahead of
                            the writes (a commit's fsync then writes data
                            only)                  [ANVIL_WAL_PREALLOCATE, default on]
  --log-level LEVEL         trace|debug|info|warn|error     [ANVIL_LOG_LEVEL, default info]
  --log-format FORMAT       text|json (one object per line: ts, level, msg,
                            actorId, actorName, rayId, traceId, app fields)
                                                        [ANVIL_LOG_FORMAT, default text]
  --postgres-url URL        Postgres for shared tables; the node applies its
                            embedded migrations at start and refuses to start
                            if an applied one changed   [ANVIL_POSTGRES_URL, default: none]
  --postgres-pool N         Postgres connections        [ANVIL_POSTGRES_POOL, default 4]
  --redis-url URL           Redis (streams)             [ANVIL_REDIS_URL, default: none]
  --app NAME                enable an application (repeatable; known: growqr, workbench)
                                                        [ANVIL_APPS, comma-separated]
  --shutdown-timeout SECS   bound on a graceful stop (SIGTERM/SIGINT); past it
                            the process exits with code 1 [ANVIL_SHUTDOWN_TIMEOUT, default 30]
Without a Postgres or Redis URL the node serves every actor type that needs
neither; one that does answers db.not_configured / redis.not_configured.

Envoy mode (docs/envoy.md): run as a runner under a Rivet Engine, which places
actors on its runners and routes clients to them (clients then use the engine's URL):
  --engine URL              the engine's base URL, http:// or https://, e.g.
                            http://127.0.0.1:6420       [ANVIL_ENGINE]
  --engine-token TOKEN      the engine's admin token     [ANVIL_ENGINE_TOKEN]
  --engine-ca-file FILE     https engine: PEM CAs trusted besides the system's
                                                        [ANVIL_ENGINE_CA_FILE]
  --namespace NS            the engine namespace         [ANVIL_NAMESPACE, default default]
  --pool NAME               the runner config (pool) to serve [ANVIL_POOL, default default]
  --envoy-version N         deployment version; the engine prefers the highest
                            and drains older runners     [ANVIL_ENVOY_VERSION, default 1]
The data directory of an envoy-mode node keeps the engine's 30-character actor
ids: a node's data directory serves one mode only.

Security (docs/operator-guide.md, "Security"):
  --token TOKEN             clients must present it on the manager API and the
                            actor gateway (rivetkit's `token` option)  [ANVIL_TOKEN]
  --admin-token TOKEN       Bearer token for /metrics, GET /actors/{id}/workflow, /admin/*;
                            without it those answer local clients only  [ANVIL_ADMIN_TOKEN]
  --allow-unauthenticated   allow a non-loopback --listen without --token
                                                        [ANVIL_ALLOW_UNAUTHENTICATED=1]
TLS (docs/operator-guide.md, "TLS and HTTP/2"): with a certificate the port serves HTTPS
only, HTTP/2 and HTTP/1.1 (ALPN; WebSockets over HTTP/1.1):
  --tls-cert FILE           PEM certificate (chain)     [ANVIL_TLS_CERT]
  --tls-key FILE            PEM private key             [ANVIL_TLS_KEY]
  --tls-self-signed         development: HTTPS with a certificate made at start
                            for localhost/127.0.0.1/::1 (no client trusts it)
                                                        [ANVIL_TLS_SELF_SIGNED=1]
  --no-http2                offer only HTTP/1.1 over TLS [ANVIL_HTTP2=0]
Limits (sizes in bytes, k/m suffixes = KiB/MiB; durations 500ms, 10s, 2m):
  --max-incoming-message-size N  action/queue/connection message in [default 64k]
  --max-outgoing-message-size N  action/queue/connection message out [default 1m]
  --max-request-body-size N      any request body, raw /request too  [default 32m]
  --max-connections N            open connections, WebSockets included [default 4096]
  --max-header-size N            request headers                     [default 64k]
  --header-timeout D             to receive a request's headers      [default 10s]
  --idle-timeout D               keep-alive connection with no request [default 60s]
  --tls-handshake-timeout D      TLS handshake, from accept          [default 10s]
  --max-concurrent-streams N     HTTP/2 requests in flight per connection [default 100]
  --max-websocket-backlog N      unread bytes queued for a WebSocket [default 4m]
  --directory-cache N            directory entries of idle sleeping actors kept in
                                 memory (e.g. 200k) [default: 1% of RAM at 1 KiB each]
Each limit also reads ANVIL_<NAME> (e.g. ANVIL_MAX_CONNECTIONS, ANVIL_IDLE_TIMEOUT).

Durability: every successful reply is sent only after the writes it depends
on are fsynced to the RocksDB write-ahead log.
)";

struct ServeConfig {
  std::string listen = "127.0.0.1:6420";
  std::string data_dir = "./data";
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::string log_level = "info";
  std::string log_format = "text";
  std::string postgres_url;
  size_t postgres_pool = 4;
  std::string redis_url;
  std::vector<std::string> apps;
  int shutdown_timeout_s = 30;
  size_t directory_cache = 0;  // 0: sized for the machine (RuntimeCore)
  bool wal_preallocate = true;
  anvil::gateway::AccessOptions access;
  bool allow_unauthenticated = false;
  anvil::gateway::MessageLimits messages;
  anvil::gateway::ServerOptions server;  // limits only; host/port come from `listen`
  anvil::gateway::WsOptions ws;
  anvil::gateway::TlsOptions tls;
  anvil::gateway::EnvoyOptions envoy;  // envoy mode when engine_url is set
  bool tls_enabled() const { return tls.self_signed || !tls.cert_file.empty() || !tls.key_file.empty(); }
};

// "64k" => {64, "k"} (the unit lowercased); nullopt without a leading number.
std::optional<std::pair<unsigned long long, std::string>> number_and_unit(const std::string& s) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return std::nullopt;
  size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::pair{n, unit};
}

// "64k", "1m", "1048576" => bytes (k/m are KiB/MiB).
std::optional<size_t> parse_size(const std::string& s) {
  auto nu = number_and_unit(s);
  if (!nu) return std::nullopt;
  const auto& [n, unit] = *nu;
  if (unit.empty() || unit == "b") return n;
  if (unit == "k" || unit == "kb" || unit == "kib") return n * 1024;
  if (unit == "m" || unit == "mb" || unit == "mib") return n * 1024 * 1024;
  return std::nullopt;
}

// "500ms", "10s", "2m", "10" (seconds) => milliseconds.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& s) {
  auto nu = number_and_unit(s);
  if (!nu) return std::nullopt;
  const auto& [n, unit] = *nu;
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit.empty() || unit == "s") return std::chrono::milliseconds(n * 1000);
  if (unit == "m") return std::chrono::milliseconds(n * 60'000);
  return std::nullopt;
}

bool loopback_host(const std::string& host) {
  boost::system::error_code ec;
  auto addr = anvil::asio::ip::make_address(host, ec);
  return !ec && anvil::gateway::is_loopback(addr);
}

// Lets the node use every descriptor the hard limit allows (connections
// are bounded by --max-connections, not by a low soft limit).
void raise_fd_limit(size_t max_connections) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max_connections + 256)
    spdlog::warn("open-file limit {} is below --max-connections {} + 256 for storage: accept will back off when "
                 "descriptors run out",
                 rl.rlim_cur, max_connections);
}

extern "C" char** environ;

// Applications a node can enable, by name.
std::optional<anvil::AppDefinition> make_app(const std::string& name) {
  if (name == "growqr") return anvil::growqr::app();
  if (name == "workbench") return anvil::workbench::app();
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

// The graceful stop's last part (a plain function: a capturing lambda
// coroutine would outlive its closure).
anvil::asio::awaitable<void> stop_runtime(anvil::Runtime& runtime, std::shared_ptr<anvil::gateway::Envoy> envoy,
                                          anvil::asio::io_context& io, anvil::asio::steady_timer& deadline,
                                          int timeout_s) {
  // In envoy mode the engine first moves this node's actors elsewhere
  // (each is put to sleep here as the engine stops it), within half the
  // shutdown bound.
  if (envoy) {
    const auto bound = std::chrono::milliseconds(timeout_s * 500);
    co_await envoy->drain(bound);
  }
  co_await runtime.shutdown();
  deadline.cancel();
  io.stop();
}

int serve(const ServeConfig& cfg) {
  auto level = spdlog::level::from_str(cfg.log_level);
  if (level == spdlog::level::off && cfg.log_level != "off") return usage_error("unknown log level `" + cfg.log_level + "`");
  spdlog::set_level(level);
  if (!anvil::log::set_format(cfg.log_format))
    return usage_error("unknown log format `" + cfg.log_format + "` (text or json)");

  std::string host;
  uint16_t port = 0;
  if (!split_host_port(cfg.listen, host, port)) return usage_error("--listen expects HOST:PORT, got `" + cfg.listen + "`");
  if (cfg.access.token.empty() && !cfg.allow_unauthenticated && !loopback_host(host))
    return usage_error("refusing to listen on " + cfg.listen +
                       " without a token: anyone who can reach it could call every actor. Set --token (ANVIL_TOKEN) "
                       "so that clients must present it, or pass --allow-unauthenticated "
                       "(ANVIL_ALLOW_UNAUTHENTICATED=1) to serve them without one.");
  if (!cfg.access.token.empty() && cfg.access.token == cfg.access.admin_token)
    return usage_error("--admin-token must differ from --token");
  raise_fd_limit(cfg.server.max_connections);
  std::shared_ptr<anvil::asio::ssl::context> tls_ctx;
  if (cfg.tls_enabled()) {
    auto ctx = anvil::gateway::make_tls_context(cfg.tls);
    if (!ctx.ok()) return usage_error(ctx.error().message);
    tls_ctx = std::move(*ctx);
  }

  // Applications read their configuration (e.g. SERVICE_TOKEN, GITEA_URL)
  // from the node's environment, plus the node's own URLs and data
  // directory in use; their startup
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
  app_config["ANVIL_DATA_DIR"] = cfg.data_dir;  // the data directory in use (also from --data-dir)
  std::vector<anvil::AppDefinition> apps;
  std::vector<std::string> problems;
  for (const auto& name : cfg.apps) {
    auto app = make_app(name);
    if (!app) return usage_error("unknown application `" + name + "` (known: growqr, workbench)");
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
  anvil::storage::StoreOptions store_options;
  store_options.path = cfg.data_dir + "/rocksdb";
  store_options.preallocate_wal = cfg.wal_preallocate;
  auto store = anvil::storage::Store::open(store_options);
  if (!store.ok()) {
    spdlog::critical("cannot open RocksDB in {}: {}", cfg.data_dir, store.error().message);
    return 1;
  }
  // One actor-id width per data directory (runtime/actor_id.hpp): the
  // engine's in envoy mode, the node's own otherwise.
  {
    const bool envoy_mode = !cfg.envoy.engine_url.empty();
    const size_t want = envoy_mode ? anvil::kEngineActorIdLength : anvil::kActorIdLength;
    auto stored = (*store)->get_meta("actor_id_length");
    if (!stored.ok()) {
      spdlog::critical("cannot read the data directory's settings: {}", stored.error().message);
      return 1;
    }
    if (stored->has_value() && **stored != std::to_string(want)) {
      spdlog::critical("the data directory {} holds actors with {}-character ids ({}); it cannot serve {}. Use "
                       "another --data-dir.",
                       cfg.data_dir, **stored, **stored == "30" ? "made in envoy mode" : "made by a single node",
                       envoy_mode ? "envoy mode" : "as a single node");
      return 1;
    }
    if (!stored->has_value()) {
      bool has_actors = false;
      (void)(*store)->scan(anvil::storage::Family::kActors, [&](std::string_view, std::string_view) {
        has_actors = true;
        return false;
      });
      if (envoy_mode && has_actors) {
        spdlog::critical("the data directory {} holds actors made by a single node; envoy mode needs a data "
                         "directory of its own. Use another --data-dir.",
                         cfg.data_dir);
        return 1;
      }
      if (auto st = (*store)->put_meta("actor_id_length", std::to_string(want)); !st.ok()) {
        spdlog::critical("cannot write the data directory's settings: {}", st.error().message);
        return 1;
      }
    }
    anvil::set_actor_id_length(want);
  }
  // Envoy mode: every batch's actor rows also go to the engine's actor KV
  // before the batch is durable (the replicator outlives the pipeline).
  std::unique_ptr<anvil::gateway::EnvoyReplicator> replicator;
  if (!cfg.envoy.engine_url.empty()) replicator = std::make_unique<anvil::gateway::EnvoyReplicator>(**store);
  anvil::storage::CommitPipeline pipeline(**store, io.get_executor());
  if (replicator) pipeline.set_replicator(replicator.get());
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
  if (cfg.directory_cache) runtime.set_directory_cache(cfg.directory_cache);
  // Envoy mode: only actors the engine runs here may wake (not this data
  // directory's others, not before the engine says so).
  std::shared_ptr<anvil::gateway::HostedActors> hosted;
  if (!cfg.envoy.engine_url.empty()) {
    hosted = anvil::gateway::HostedActors::make();
    runtime.set_host_hooks(hosted->hooks());
  }

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
  // Actors read the same configuration (ctx.config); set before load(), so
  // actors woken while loading (schedules, workflows) read it too.
  services.config = std::make_shared<const anvil::ConfigMap>(app_config.begin(), app_config.end());
  runtime.set_services(services);

  if (auto st = runtime.load(); !st.ok()) {
    spdlog::critical("cannot load the actor directory: {}", st.error().message);
    return 1;
  }

  anvil::ManagerApi api(runtime);
  anvil::gateway::ActorRoutes actor_routes(runtime, cfg.messages);
  anvil::gateway::AccessGuard access(cfg.access);
  anvil::AppHost app_host(runtime, app_config);  // the same map actors read (services.config)
  for (const auto& app : apps) app_host.add(app);
  anvil::gateway::Router router(runtime, api, actor_routes, &app_host, &access);
  anvil::gateway::ServerOptions sopts = cfg.server;
  sopts.host = host;
  sopts.port = port;
  anvil::gateway::WsOptions wopts = cfg.ws;
  wopts.max_raw_message_bytes = sopts.max_body_bytes;
  anvil::gateway::WsGateway ws_gateway(runtime, actor_routes, &access, wopts);
  anvil::gateway::HttpServer server(
      io, sopts, [&router](anvil::http::Request req) { return router.handle(std::move(req)); },
      [&ws_gateway](anvil::gateway::BeastRequest req, boost::beast::tcp_stream stream) {
        return ws_gateway.handle(std::move(req), std::move(stream));
      });
  if (tls_ctx)
    server.enable_tls(tls_ctx, [&ws_gateway](anvil::gateway::BeastRequest req, anvil::gateway::TlsStream stream) {
      return ws_gateway.handle(std::move(req), std::move(stream));
    });
  auto bound = server.start();
  if (!bound.ok()) {
    spdlog::critical("{}", bound.error().message);
    return 1;
  }
  std::shared_ptr<anvil::gateway::Envoy> envoy;
  // Envoy mode: the tunnel's WebSockets are relayed to a plain listener of
  // this node on 127.0.0.1 (an ephemeral port), served by the same gateway.
  std::unique_ptr<anvil::gateway::HttpServer> relay_server;
  if (!cfg.envoy.engine_url.empty()) {
    anvil::gateway::ServerOptions ropts = sopts;
    ropts.host = "127.0.0.1";
    ropts.port = 0;
    relay_server = std::make_unique<anvil::gateway::HttpServer>(
        io, ropts, [&router](anvil::http::Request req) { return router.handle(std::move(req)); },
        [&ws_gateway](anvil::gateway::BeastRequest req, boost::beast::tcp_stream stream) {
          return ws_gateway.handle(std::move(req), std::move(stream));
        });
    auto relay_port = relay_server->start();
    if (!relay_port.ok()) {
      spdlog::critical("envoy mode: cannot open the local WebSocket relay listener: {}", relay_port.error().message);
      return 1;
    }
    anvil::gateway::EnvoyOptions eopts = cfg.envoy;
    eopts.local_port = *relay_port;
    auto made = anvil::gateway::Envoy::make(io, runtime, router, hosted, eopts);
    if (!made.ok()) return usage_error(made.error().message);
    envoy = std::move(*made);
    replicator->attach(envoy);
    runtime.add_metrics_source([envoy] { return envoy->metrics_text(); });
  }
  runtime.add_metrics_source([&server] {
    return anvil::gateway::connection_metrics(server.open_connections(), server.refused_connections(),
                                              server.accept_failures()) +
           anvil::gateway::traffic().registry.text();
  });

  // Graceful stop: refuse new connections, close the gate (no turn starts
  // any more, so no open socket or alarm wakes an actor again), put awake
  // actors to sleep (their state is persisted), wait for the last commit,
  // then stop the threads — within --shutdown-timeout, else exit 1 (every
  // acknowledged write is durable already; only the tidy-up is cut short).
  anvil::asio::signal_set signals(io, SIGINT, SIGTERM);
  anvil::asio::steady_timer shutdown_deadline(io);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down (at most {} s)", sig, cfg.shutdown_timeout_s);
    shutdown_deadline.expires_after(std::chrono::seconds(cfg.shutdown_timeout_s));
    shutdown_deadline.async_wait([&](const boost::system::error_code& tec) {
      if (tec) return;
      spdlog::critical("graceful shutdown did not finish within {} s; exiting", cfg.shutdown_timeout_s);
      spdlog::shutdown();
      std::_Exit(1);
    });
    server.stop();
    app_host.stop();
    anvil::asio::co_spawn(io, stop_runtime(runtime, envoy, io, shutdown_deadline, cfg.shutdown_timeout_s),
                          anvil::asio::detached);
  });

  const char* scheme = tls_ctx ? "https" : "http";
  spdlog::info("anvil {} listening on {}://{}:{} (also /api/rivet), data dir {}, {} threads, postgres {}, redis {}",
               "0.1.0", scheme, host, *bound, cfg.data_dir, cfg.threads, pg ? "on" : "off", redis ? "on" : "off");
  spdlog::info("client token {}, admin endpoints {}; messages in {} / out {} bytes, {} connections max",
               access.client_token_required() ? "required" : "not required",
               access.admin_token_configured() ? "need the admin token" : "local clients only",
               cfg.messages.max_incoming, cfg.messages.max_outgoing, sopts.max_connections);
  // A plain line on stdout for scripts waiting for readiness.
  if (tls_ctx)
    spdlog::info("TLS: ALPN {}; certificate {}", cfg.tls.http2 ? "h2, http/1.1" : "http/1.1",
                 cfg.tls.self_signed ? std::string("self-signed (development)") : cfg.tls.cert_file);
  std::cout << "anvil listening on " << scheme << "://" << host << ":" << *bound << std::endl;

  app_host.start();
  if (envoy) {
    spdlog::info("envoy mode: joining the engine at {} (namespace {}, pool {}, key {})", cfg.envoy.engine_url,
                 cfg.envoy.namespace_name, cfg.envoy.pool, envoy->envoy_key());
    envoy->start();
  }
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
  if (args[0] == "doctor") return anvil::tools::doctor_command({args.begin() + 1, args.end()});
  if (args[0] == "actors") return anvil::tools::actors_command({args.begin() + 1, args.end()});
  if (args[0] == "events") return anvil::tools::events_command({args.begin() + 1, args.end()});
  if (args[0] == "data") return anvil::tools::data_command({args.begin() + 1, args.end()});
  if (args[0] != "serve") return usage_error("unknown command `" + args[0] + "`");

  ServeConfig cfg;
  cfg.listen = env_or("ANVIL_LISTEN", cfg.listen);
  cfg.data_dir = env_or("ANVIL_DATA_DIR", cfg.data_dir);
  cfg.log_level = env_or("ANVIL_LOG_LEVEL", cfg.log_level);
  cfg.log_format = env_or("ANVIL_LOG_FORMAT", cfg.log_format);
  if (auto t = env_or("ANVIL_THREADS", ""); !t.empty()) cfg.threads = std::max(1, std::atoi(t.c_str()));
  std::string wal_preallocate = env_or("ANVIL_WAL_PREALLOCATE", "on");
  cfg.postgres_url = env_or("ANVIL_POSTGRES_URL", "");
  cfg.redis_url = env_or("ANVIL_REDIS_URL", "");
  for (std::string apps = env_or("ANVIL_APPS", ""); !apps.empty();) {
    auto comma = apps.find(',');
    if (auto name = apps.substr(0, comma); !name.empty()) cfg.apps.push_back(name);
    apps = comma == std::string::npos ? "" : apps.substr(comma + 1);
  }
  if (auto p = env_or("ANVIL_POSTGRES_POOL", ""); !p.empty()) cfg.postgres_pool = std::max(1, std::atoi(p.c_str()));
  if (auto t = env_or("ANVIL_SHUTDOWN_TIMEOUT", ""); !t.empty()) cfg.shutdown_timeout_s = std::max(1, std::atoi(t.c_str()));
  cfg.access.token = env_or("ANVIL_TOKEN", "");
  cfg.access.admin_token = env_or("ANVIL_ADMIN_TOKEN", "");
  if (auto a = env_or("ANVIL_ALLOW_UNAUTHENTICATED", ""); !a.empty()) cfg.allow_unauthenticated = a != "0" && a != "false";
  cfg.tls.cert_file = env_or("ANVIL_TLS_CERT", "");
  cfg.tls.key_file = env_or("ANVIL_TLS_KEY", "");
  if (auto a = env_or("ANVIL_TLS_SELF_SIGNED", ""); !a.empty()) cfg.tls.self_signed = a != "0" && a != "false";
  if (auto a = env_or("ANVIL_HTTP2", ""); !a.empty()) cfg.tls.http2 = a != "0" && a != "false";
  cfg.envoy.engine_url = env_or("ANVIL_ENGINE", "");
  cfg.envoy.token = env_or("ANVIL_ENGINE_TOKEN", "");
  cfg.envoy.ca_file = env_or("ANVIL_ENGINE_CA_FILE", "");
  cfg.envoy.namespace_name = env_or("ANVIL_NAMESPACE", cfg.envoy.namespace_name);
  cfg.envoy.pool = env_or("ANVIL_POOL", cfg.envoy.pool);
  if (auto n = env_or("ANVIL_ENVOY_VERSION", ""); !n.empty()) cfg.envoy.version = static_cast<uint32_t>(std::atoll(n.c_str()));

  // The limits: flag name, env name, where it goes.
  struct SizeLimit {
    const char* flag;
    const char* env;
    size_t* value;
  };
  struct TimeLimit {
    const char* flag;
    const char* env;
    std::chrono::milliseconds* value;
  };
  const SizeLimit size_limits[] = {
      {"--max-incoming-message-size", "ANVIL_MAX_INCOMING_MESSAGE_SIZE", &cfg.messages.max_incoming},
      {"--max-outgoing-message-size", "ANVIL_MAX_OUTGOING_MESSAGE_SIZE", &cfg.messages.max_outgoing},
      {"--max-request-body-size", "ANVIL_MAX_REQUEST_BODY_SIZE", &cfg.server.max_body_bytes},
      {"--max-connections", "ANVIL_MAX_CONNECTIONS", &cfg.server.max_connections},
      {"--max-header-size", "ANVIL_MAX_HEADER_SIZE", &cfg.server.max_header_bytes},
      {"--max-websocket-backlog", "ANVIL_MAX_WEBSOCKET_BACKLOG", &cfg.ws.max_pending_write_bytes},
      {"--max-concurrent-streams", "ANVIL_MAX_CONCURRENT_STREAMS", &cfg.server.h2_max_concurrent_streams},
      {"--directory-cache", "ANVIL_DIRECTORY_CACHE", &cfg.directory_cache},
  };
  const TimeLimit time_limits[] = {
      {"--header-timeout", "ANVIL_HEADER_TIMEOUT", &cfg.server.header_timeout},
      {"--idle-timeout", "ANVIL_IDLE_TIMEOUT", &cfg.server.idle_timeout},
      {"--tls-handshake-timeout", "ANVIL_TLS_HANDSHAKE_TIMEOUT", &cfg.server.tls_handshake_timeout},
  };
  auto set_size = [](const SizeLimit& l, const std::string& v) {
    auto n = parse_size(v);
    if (!n || *n == 0) return false;
    *l.value = *n;
    return true;
  };
  auto set_time = [](const TimeLimit& l, const std::string& v) {
    auto d = parse_duration(v);
    if (!d || d->count() == 0) return false;
    *l.value = *d;
    return true;
  };
  for (const auto& l : size_limits)
    if (auto v = env_or(l.env, ""); !v.empty() && !set_size(l, v))
      return usage_error(std::string(l.env) + " expects a number (sizes in bytes, e.g. 65536, 64k, 1m), got `" + v + "`");
  for (const auto& l : time_limits)
    if (auto v = env_or(l.env, ""); !v.empty() && !set_time(l, v))
      return usage_error(std::string(l.env) + " expects a duration (e.g. 500ms, 10s, 2m), got `" + v + "`");

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
    } else if (a == "--wal-preallocate") {
      if (!(v = value("--wal-preallocate"))) return usage_error("--wal-preallocate needs on or off");
      wal_preallocate = *v;
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
    } else if (a == "--shutdown-timeout") {
      if (!(v = value("--shutdown-timeout"))) return usage_error("--shutdown-timeout needs a number of seconds");
      int n = std::atoi(v->c_str());
      if (n < 1) return usage_error("--shutdown-timeout must be at least 1");
      cfg.shutdown_timeout_s = n;
    } else if (a == "--log-level") {
      if (!(v = value("--log-level"))) return usage_error("--log-level needs a level");
      cfg.log_level = *v;
    } else if (a == "--log-format") {
      if (!(v = value("--log-format"))) return usage_error("--log-format needs text or json");
      cfg.log_format = *v;
    } else if (a == "--token") {
      if (!(v = value("--token")) || v->empty()) return usage_error("--token needs a value");
      cfg.access.token = *v;
    } else if (a == "--admin-token") {
      if (!(v = value("--admin-token")) || v->empty()) return usage_error("--admin-token needs a value");
      cfg.access.admin_token = *v;
    } else if (a == "--allow-unauthenticated") {
      cfg.allow_unauthenticated = true;
    } else if (a == "--tls-cert") {
      if (!(v = value("--tls-cert")) || v->empty()) return usage_error("--tls-cert needs a PEM file");
      cfg.tls.cert_file = *v;
    } else if (a == "--tls-key") {
      if (!(v = value("--tls-key")) || v->empty()) return usage_error("--tls-key needs a PEM file");
      cfg.tls.key_file = *v;
    } else if (a == "--tls-self-signed") {
      cfg.tls.self_signed = true;
    } else if (a == "--no-http2") {
      cfg.tls.http2 = false;
    } else if (a == "--engine") {
      if (!(v = value("--engine")) || v->empty()) return usage_error("--engine needs the engine's URL");
      cfg.envoy.engine_url = *v;
    } else if (a == "--engine-token") {
      if (!(v = value("--engine-token")) || v->empty()) return usage_error("--engine-token needs a value");
      cfg.envoy.token = *v;
    } else if (a == "--engine-ca-file") {
      if (!(v = value("--engine-ca-file")) || v->empty()) return usage_error("--engine-ca-file needs a PEM file");
      cfg.envoy.ca_file = *v;
    } else if (a == "--namespace") {
      if (!(v = value("--namespace")) || v->empty()) return usage_error("--namespace needs a name");
      cfg.envoy.namespace_name = *v;
    } else if (a == "--pool") {
      if (!(v = value("--pool")) || v->empty()) return usage_error("--pool needs a name");
      cfg.envoy.pool = *v;
    } else if (a == "--envoy-version") {
      if (!(v = value("--envoy-version"))) return usage_error("--envoy-version needs a number");
      long long n = std::atoll(v->c_str());
      if (n < 1 || n > 4294967295LL) return usage_error("--envoy-version must be 1 to 4294967295");
      cfg.envoy.version = static_cast<uint32_t>(n);
    } else if (auto sl = std::find_if(std::begin(size_limits), std::end(size_limits),
                                      [&](const SizeLimit& l) { return a == l.flag; });
               sl != std::end(size_limits)) {
      if (!(v = value(sl->flag)) || !set_size(*sl, *v))
        return usage_error(a + " expects a number (sizes in bytes, e.g. 65536, 64k, 1m)");
    } else if (auto tl = std::find_if(std::begin(time_limits), std::end(time_limits),
                                      [&](const TimeLimit& l) { return a == l.flag; });
               tl != std::end(time_limits)) {
      if (!(v = value(tl->flag)) || !set_time(*tl, *v))
        return usage_error(a + " expects a duration (e.g. 500ms, 10s, 2m)");
    } else {
      return usage_error("unknown option `" + a + "`");
    }
  }
  if (wal_preallocate == "on") {
    cfg.wal_preallocate = true;
  } else if (wal_preallocate == "off") {
    cfg.wal_preallocate = false;
  } else {
    return usage_error("--wal-preallocate must be on or off, not `" + wal_preallocate + "`");
  }
  if (cfg.tls.self_signed && (!cfg.tls.cert_file.empty() || !cfg.tls.key_file.empty()))
    return usage_error("--tls-self-signed cannot be combined with --tls-cert/--tls-key");
  if (!cfg.tls.self_signed && cfg.tls.cert_file.empty() != cfg.tls.key_file.empty())
    return usage_error("TLS needs both --tls-cert and --tls-key");
  return serve(cfg);
}
