// The Docker provider's requests, built and sent over a unix socket to a
// tiny fake Docker daemon (no real daemon runs here).
#include "actors/growqr/sandbox/docker_provider.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "base/value/json.hpp"

namespace anvil::growqr {
namespace {

DockerConfig config() {
  DockerConfig cfg;
  cfg.image = "ghcr.io/anomalyco/opencode:1.0.0";
  cfg.port_start = 41000;
  cfg.port_end = 41099;
  cfg.env = "OPENAI_BASE_URL=http://llm:8080,MODEL=kimi";
  return cfg;
}

TEST(DockerProvider, CreateNamesThePinnedImageLabelsEnvAndALoopbackPort) {
  const DockerConfig cfg = config();
  const int port = docker_host_port(cfg, "user_1", 0);
  EXPECT_GE(port, 41000);
  EXPECT_LE(port, 41099);
  EXPECT_EQ(port, docker_host_port(cfg, "user_1", 0)) << "stable per user";
  auto req = docker_create(cfg, "user_1", port);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/v1.43/containers/create?name=" + docker_container_name("user_1"));
  auto body = json::parse(req.body, false);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->find("Image")->as_string(), "ghcr.io/anomalyco/opencode:1.0.0");
  EXPECT_EQ(body->find("Labels")->find("growqr.user")->as_string(), "user_1");
  EXPECT_EQ(body->find("Env")->as_array().size(), 2u);
  const Value& binding = body->find("HostConfig")->find("PortBindings")->find("4096/tcp")->as_array()[0];
  EXPECT_EQ(binding.find("HostIp")->as_string(), "127.0.0.1");
  EXPECT_EQ(binding.find("HostPort")->as_string(), std::to_string(port));
  EXPECT_EQ(docker_start(cfg, "c").target, "/v1.43/containers/c/start");
  EXPECT_EQ(docker_stop(cfg, "c").target, "/v1.43/containers/c/stop?t=10");
}

TEST(DockerProvider, OnANetworkTheRuntimeIsReachedByContainerName) {
  DockerConfig cfg = config();
  cfg.network = "growqr";
  auto body = json::parse(docker_create(cfg, "u", 0).body, false);
  EXPECT_EQ(body->find("HostConfig")->find("NetworkMode")->as_string(), "growqr");
  EXPECT_EQ(*docker_runtime_url(cfg, R"({"Name":"/growqr-opencode-u-1"})"), "http://growqr-opencode-u-1:4096");
  EXPECT_EQ(*docker_runtime_url(config(), R"({"Name":"/x","NetworkSettings":{"Ports":{"4096/tcp":[{"HostIp":"127.0.0.1","HostPort":"41007"}]}}})"),
            "http://127.0.0.1:41007");
}

TEST(DockerProvider, RequestsTravelOverTheUnixSocket) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("docker-" + std::to_string(std::random_device{}()) + ".sock")).string();
  int srv = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(srv, 1), 0);
  std::string received;
  std::thread daemon([&] {
    int conn = ::accept(srv, nullptr, nullptr);
    char buf[4096];
    for (;;) {  // the head, then Content-Length bytes of body
      const auto head = received.find("\r\n\r\n");
      if (head != std::string::npos) {
        const auto cl = received.find("Content-Length: ");
        const size_t len = cl == std::string::npos ? 0 : std::stoul(received.substr(cl + 16));
        if (received.size() >= head + 4 + len) break;
      }
      ssize_t n = ::read(conn, buf, sizeof buf);
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
    }
    const std::string answer = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"Id\":\"abc\",\"Warn\":[]}";
    (void)::write(conn, answer.data(), answer.size());
    ::close(conn);
  });
  auto r = docker_call(path, docker_create(config(), "user_1", 41001));
  daemon.join();
  ::close(srv);
  std::filesystem::remove(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 201);
  EXPECT_NE(received.find("POST /v1.43/containers/create?name=growqr-opencode-"), std::string::npos);
  EXPECT_NE(received.find("\"Image\":\"ghcr.io/anomalyco/opencode:1.0.0\""), std::string::npos);
}

TEST(DockerProvider, AMissingSocketIsAnUnreachableError) {
  auto r = docker_call("/nonexistent/docker.sock", docker_inspect(config(), "x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "sandbox.docker_unreachable");
}

}  // namespace
}  // namespace anvil::growqr
