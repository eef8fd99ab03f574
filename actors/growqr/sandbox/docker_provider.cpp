#include "actors/growqr/sandbox/docker_provider.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "base/proc/blocking.hpp"
#include "actors/growqr/memory/memory_store.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "base/value/json.hpp"

namespace anvil::growqr {
namespace {

constexpr int kOpenCodePort = 4096;

bool pinned(const std::string& image) {
  if (image.find("@sha256:") != std::string::npos) return true;
  const auto slash = image.rfind('/');
  const auto colon = image.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return false;
  const std::string tag = image.substr(colon + 1);
  return !tag.empty() && tag != "latest";
}

Error docker_error(const std::string& what, const DockerResponse& r) {
  return make_error("sandbox", "docker_failed", what + ": HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 300),
                    obj({{"status", r.status}}));
}

class DockerProvider final : public SandboxProvider {
 public:
  explicit DockerProvider(DockerConfig cfg) : cfg_(std::move(cfg)) {}
  std::string name() const override { return "docker"; }

  Task<Result<UserRuntime>> provision(ActorContext& c, std::string user_id) override {
    DockerConfig cfg = cfg_;
    std::function<Result<UserRuntime>()> fn = [cfg, user_id]() { return provision_blocking(cfg, user_id); };
    auto op = proc::run_blocking(std::move(fn));
    auto r = co_await c.wait(std::move(op));
    const std::string status = r.ok() ? "running" : "failed";
    std::string url = r.ok() ? r->opencode_url : "", why = r.ok() ? "" : r.error().message;
    auto st = co_await mirror_user_stack(c, user_id, status, url, why);
    if (!st.ok()) spdlog::warn("user_stacks not mirrored userId={}: {}", user_id, st.error().message);
    co_return r;
  }

  Task<Status> stop(ActorContext& c, std::string user_id) override {
    DockerConfig cfg = cfg_;
    std::function<Result<Ok>()> fn = [cfg, user_id]() -> Result<Ok> {
      auto r = docker_call(cfg.socket, docker_stop(cfg, docker_container_name(user_id)));
      if (!r.ok()) return r.error();
      if (r->status != 204 && r->status != 304 && r->status != 404) return docker_error("stop", *r);
      return Ok{};
    };
    auto op = proc::run_blocking(std::move(fn));
    auto r = co_await c.wait(std::move(op));
    if (!r.ok()) co_return r.error();
    std::string stopped = "stopped", none;
    co_return co_await mirror_user_stack(c, user_id, stopped, none, none);
  }

 private:
  static Result<UserRuntime> provision_blocking(const DockerConfig& cfg, const std::string& user_id) {
    const std::string name = docker_container_name(user_id);
    auto inspected = docker_call(cfg.socket, docker_inspect(cfg, name));
    if (!inspected.ok()) return inspected.error();
    if (inspected->status == 404) {
      Result<DockerResponse> created = make_error("sandbox", "docker_failed", "no attempt");
      for (int probe = 0; probe < 10; ++probe) {
        created = docker_call(cfg.socket, docker_create(cfg, user_id, docker_host_port(cfg, user_id, probe)));
        if (!created.ok()) return created.error();
        if (created->status == 201 || created->status == 409) break;  // 409: created meanwhile
        if (cfg.network.empty() && created->body.find("port is already allocated") != std::string::npos) continue;
        return docker_error("create", *created);
      }
    } else if (inspected->status != 200) {
      return docker_error("inspect", *inspected);
    }
    auto started = docker_call(cfg.socket, docker_start(cfg, name));
    if (!started.ok()) return started.error();
    if (started->status != 204 && started->status != 304) return docker_error("start", *started);
    auto again = docker_call(cfg.socket, docker_inspect(cfg, name));
    if (!again.ok()) return again.error();
    if (again->status != 200) return docker_error("inspect", *again);
    auto url = docker_runtime_url(cfg, again->body);
    if (!url.ok()) return url.error();
    return UserRuntime{*url, "docker", name};
  }

  DockerConfig cfg_;
};

}  // namespace

Result<DockerConfig> docker_config_from(const ActorContext& c) {
  DockerConfig cfg;
  cfg.socket = c.config("DOCKER_SOCKET").value_or(cfg.socket);
  cfg.api_version = c.config("DOCKER_API_VERSION").value_or(cfg.api_version);
  cfg.image = c.config("OPENCODE_IMAGE").value_or("");
  cfg.network = c.config("DOCKER_NETWORK").value_or("");
  cfg.env = c.config("DOCKER_OPENCODE_ENV").value_or("");
  try {
    cfg.port_start = std::stoi(c.config("USER_PORT_RANGE_START").value_or("0"));
    cfg.port_end = std::stoi(c.config("USER_PORT_RANGE_END").value_or("0"));
    if (auto m = c.config("DOCKER_MEMORY_BYTES")) cfg.memory_bytes = std::stoll(*m);
    if (auto n = c.config("DOCKER_NANO_CPUS")) cfg.nano_cpus = std::stoll(*n);
  } catch (const std::exception&) {
    return make_error("sandbox", "not_configured", "A numeric Docker setting is not a number.");
  }
  if (!pinned(cfg.image))
    return make_error("sandbox", "not_configured",
                      "OPENCODE_IMAGE must name a pinned image (name:tag other than latest, or name@sha256:...).");
  if (cfg.network.empty() && (cfg.port_start <= 0 || cfg.port_end < cfg.port_start || cfg.port_end > 65535))
    return make_error("sandbox", "not_configured",
                      "Without DOCKER_NETWORK the Docker provider needs USER_PORT_RANGE_START..USER_PORT_RANGE_END.");
  return cfg;
}

std::unique_ptr<SandboxProvider> make_docker_provider(DockerConfig cfg) {
  return std::make_unique<DockerProvider>(std::move(cfg));
}

std::string docker_container_name(const std::string& user_id) { return "growqr-opencode-" + memory_owner(user_id); }

int docker_host_port(const DockerConfig& cfg, const std::string& user_id, int probe) {
  return stable_port(user_id, cfg.port_start, cfg.port_end, probe);
}

DockerRequest docker_inspect(const DockerConfig& cfg, const std::string& name) {
  return {"GET", "/" + cfg.api_version + "/containers/" + name + "/json", ""};
}

DockerRequest docker_create(const DockerConfig& cfg, const std::string& user_id, int host_port) {
  const std::string name = docker_container_name(user_id);
  Array env;
  for (auto& e : env_list(cfg.env)) env.push_back(Value(std::move(e)));
  const std::string port_key = std::to_string(kOpenCodePort) + "/tcp";
  Value host = obj({{"RestartPolicy", obj({{"Name", "unless-stopped"}})},
                    {"Memory", cfg.memory_bytes},
                    {"NanoCpus", cfg.nano_cpus},
                    {"SecurityOpt", Array{Value("no-new-privileges")}}});
  if (!cfg.network.empty()) {
    host["NetworkMode"] = cfg.network;
  } else {
    Value bindings = Object{};
    bindings[port_key] = Array{obj({{"HostIp", "127.0.0.1"}, {"HostPort", std::to_string(host_port)}})};
    host["PortBindings"] = bindings;
  }
  Value exposed = Object{};
  exposed[port_key] = Object{};
  Value body = obj({{"Image", cfg.image},
                    {"Cmd", Array{Value("opencode"), Value("serve"), Value("--hostname"), Value("0.0.0.0"), Value("--port"),
                                  Value(std::to_string(kOpenCodePort))}},
                    {"Env", Value(std::move(env))},
                    {"Labels", obj({{"growqr.user", user_id}, {"growqr.role", "opencode"}})},
                    {"ExposedPorts", exposed},
                    {"HostConfig", host}});
  return {"POST", "/" + cfg.api_version + "/containers/create?name=" + name, json::dump(body)};
}

DockerRequest docker_start(const DockerConfig& cfg, const std::string& name) {
  return {"POST", "/" + cfg.api_version + "/containers/" + name + "/start", ""};
}

DockerRequest docker_stop(const DockerConfig& cfg, const std::string& name) {
  return {"POST", "/" + cfg.api_version + "/containers/" + name + "/stop?t=10", ""};
}

Result<DockerResponse> docker_call(const std::string& socket_path, const DockerRequest& req) {
  namespace http = boost::beast::http;
  try {
    asio::io_context io;
    asio::local::stream_protocol::socket sock(io);
    boost::system::error_code ec;
    sock.connect(asio::local::stream_protocol::endpoint(socket_path), ec);
    if (ec)
      return make_error("sandbox", "docker_unreachable", "Cannot reach Docker at " + socket_path + ": " + ec.message());
    http::request<http::string_body> msg;
    msg.method(http::string_to_verb(req.method));
    msg.target(req.target);
    msg.version(11);
    msg.set(http::field::host, "docker");
    msg.set(http::field::connection, "close");
    if (!req.body.empty()) msg.set(http::field::content_type, "application/json");
    msg.body() = req.body;
    msg.prepare_payload();
    http::write(sock, msg, ec);
    if (ec) return make_error("sandbox", "docker_unreachable", "Writing to Docker failed: " + ec.message());
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(sock, buf, res, ec);
    if (ec) return make_error("sandbox", "docker_unreachable", "Reading from Docker failed: " + ec.message());
    return DockerResponse{static_cast<int>(res.result_int()), res.body()};
  } catch (const std::exception& e) {
    return make_error("sandbox", "docker_unreachable", std::string("Docker call failed: ") + e.what());
  }
}

Result<std::string> docker_runtime_url(const DockerConfig& cfg, const std::string& inspect_json) {
  auto v = json::parse(inspect_json, false);
  if (!v.ok() || !v->is_object()) return make_error("sandbox", "docker_failed", "Docker's inspect answer is not JSON.");
  std::string name = str_or(*v, "Name");
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  if (!cfg.network.empty()) return "http://" + name + ":" + std::to_string(kOpenCodePort);
  const Value& ports = field_or_null(field_or_null(*v, "NetworkSettings"), "Ports");
  const Value& binding = field_or_null(ports, std::to_string(kOpenCodePort) + "/tcp");
  if (binding.is_array() && !binding.as_array().empty()) {
    const std::string port = str_or(binding.as_array()[0], "HostPort");
    if (!port.empty()) return "http://127.0.0.1:" + port;
  }
  return make_error("sandbox", "docker_failed", "The container publishes no OpenCode port.");
}

}  // namespace anvil::growqr
