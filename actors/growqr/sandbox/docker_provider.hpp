// The production sandbox provider: one OpenCode container per user through
// the Docker Engine API (HTTP/1.1 over the unix socket, API version pinned),
// with a pinned image. It cannot run in this repository's test environment
// (no daemon, no images offline); its requests are unit-tested against a
// fake socket server (docker_provider.test.cpp).
//
// Per user: container `growqr-opencode-<owner>` (owner = memory_owner(user)),
// labels {growqr.user, growqr.role=opencode}, command `opencode serve
// --hostname 0.0.0.0 --port 4096`, env from DOCKER_OPENCODE_ENV (a
// comma-separated list of NAME=VALUE), restart policy unless-stopped,
// memory/CPU limits. Reached either on a Docker network (DOCKER_NETWORK set:
// http://<container>:4096, the node runs on that network) or on a host port
// from USER_PORT_RANGE_START..USER_PORT_RANGE_END published on 127.0.0.1.
//
// provision: inspect by name -> (404) create -> start (204; 304 = already
// running); the URL comes from the inspect data. stop: POST .../stop (304 =
// already stopped). Both mirror `user_stacks`.
#pragma once

#include <memory>
#include <string>

#include "actors/growqr/sandbox/sandbox_provider.hpp"

namespace anvil::growqr {

struct DockerConfig {
  std::string socket = "/var/run/docker.sock";  // DOCKER_SOCKET
  std::string api_version = "v1.43";            // DOCKER_API_VERSION
  std::string image;                            // OPENCODE_IMAGE, pinned: name:tag (not latest) or name@sha256:...
  std::string network;                          // DOCKER_NETWORK (optional)
  int port_start = 0, port_end = 0;             // USER_PORT_RANGE_START / _END (when no network)
  std::string env;                              // DOCKER_OPENCODE_ENV
  int64_t memory_bytes = int64_t{2} << 30;      // DOCKER_MEMORY_BYTES
  int64_t nano_cpus = 1'000'000'000;            // DOCKER_NANO_CPUS
};

struct DockerRequest {
  std::string method;
  std::string target;  // "/v1.43/containers/create?name=..."
  std::string body;    // JSON or empty
};

struct DockerResponse {
  int status = 0;
  std::string body;
};

// sandbox.not_configured naming what is missing or unsafe (an unpinned image).
Result<DockerConfig> docker_config_from(const ActorContext& c);
std::unique_ptr<SandboxProvider> make_docker_provider(DockerConfig cfg);

std::string docker_container_name(const std::string& user_id);
// The container's host port when no network is configured: a stable pick in
// the range from the user id, moved by `probe` on a conflict.
int docker_host_port(const DockerConfig& cfg, const std::string& user_id, int probe);

DockerRequest docker_inspect(const DockerConfig& cfg, const std::string& name);
DockerRequest docker_create(const DockerConfig& cfg, const std::string& user_id, int host_port);
DockerRequest docker_start(const DockerConfig& cfg, const std::string& name);
DockerRequest docker_stop(const DockerConfig& cfg, const std::string& name);

// One blocking HTTP/1.1 exchange over the unix socket (Connection: close).
Result<DockerResponse> docker_call(const std::string& socket_path, const DockerRequest& req);

// The OpenCode URL from an inspect answer (network alias or published port).
Result<std::string> docker_runtime_url(const DockerConfig& cfg, const std::string& inspect_json);

}  // namespace anvil::growqr
