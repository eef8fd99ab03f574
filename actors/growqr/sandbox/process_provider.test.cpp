// The local-process sandbox provider through the /actors/runtime routes: real
// child processes (the OpenCode fake, `anvil-fakes --opencode-port`), real
// bubblewrap when it works here, real Postgres for user_stacks.
#include "actors/growqr/sandbox/process_provider.hpp"

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "actors/growqr/memory/memory_store.hpp"
#include "actors/growqr/missions/growqr_test_env.hpp"
#include "tests/fakes/fake_client.hpp"

#ifndef ANVIL_FAKES_BIN
#error "ANVIL_FAKES_BIN (the anvil-fakes executable) must be defined for this test"
#endif

namespace anvil::growqr {
namespace {

namespace fs = std::filesystem;
using Headers = std::vector<std::pair<std::string, std::string>>;

std::string str(const Value& v, std::string_view k) {
  const Value* f = v.find(k);
  return f && f->is_string() ? f->as_string() : "";
}

bool pid_running(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ProcessSandbox : public testing::GrowqrTest {
 protected:
  void SetUp() override {
    sandbox_dir_ = anvil::testing::temp_dir("sandboxes");
    std::random_device rd;
    const int base = 42000 + static_cast<int>(rd() % 200) * 50;
    config_["SANDBOX_PROVIDER"] = "process";
    config_["OPENCODE_COMMAND"] = std::string(ANVIL_FAKES_BIN) + " --opencode-port {port} --until-signal";
    config_["SANDBOX_DIR"] = sandbox_dir_;
    config_["USER_PORT_RANGE_START"] = std::to_string(base);
    config_["USER_PORT_RANGE_END"] = std::to_string(base + 49);
    config_["OPENCODE_START_TIMEOUT_MS"] = "10000";
    GrowqrTest::SetUp();
  }
  void TearDown() override {
    for (const char* user : {"u_pa", "u_pb", "u_pc", "u_pd"})
      if (const pid_t pid = ProcessSupervisor::instance().terminate(user)) ProcessSupervisor::kill_now(pid);
    GrowqrTest::TearDown();
    fs::remove_all(sandbox_dir_);
  }
  Headers as(const std::string& user) { return {{"x-user-id", user}, {"content-type", "application/json"}}; }
  fakes::client::Reply health(const std::string& url) {
    return http_.send("GET", url + "/global/health", "", {}, std::chrono::milliseconds(1000));
  }

  std::string sandbox_dir_;
  fakes::client::BlockingClient http_;
};

TEST_F(ProcessSandbox, EachUserGetsTheirOwnRuntimeProcessAndAProvisionIsIdempotent) {
  auto a = request("POST", "/actors/runtime", "", as("u_pa"));
  ASSERT_EQ(a.status, 200) << a.raw;
  auto b = request("POST", "/actors/runtime", "", as("u_pb"));
  ASSERT_EQ(b.status, 200) << b.raw;
  EXPECT_EQ(str(a.body, "provider"), "process");
  EXPECT_NE(str(a.body, "opencodeUrl"), str(b.body, "opencodeUrl"));
  EXPECT_NE(str(a.body, "handle"), str(b.body, "handle"));
  EXPECT_EQ(health(str(a.body, "opencodeUrl")).status, 200);
  EXPECT_EQ(health(str(b.body, "opencodeUrl")).status, 200);
  EXPECT_TRUE(fs::is_directory(sandbox_dir_ + "/" + memory_owner("u_pa")));

  auto again = request("POST", "/actors/runtime", "", as("u_pa"));
  ASSERT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(str(again.body, "handle"), str(a.body, "handle")) << "the running process is reused";
  EXPECT_EQ(str(again.body, "opencodeUrl"), str(a.body, "opencodeUrl"));
  auto row = request("GET", "/actors/runtime", "", as("u_pa"));
  EXPECT_EQ(str(row.body, "status"), "running") << row.raw;
  EXPECT_EQ(str(row.body, "opencodeUrl"), str(a.body, "opencodeUrl"));
}

TEST_F(ProcessSandbox, StoppingTheRuntimeEndsItsProcessAndMarksItStopped) {
  auto up = request("POST", "/actors/runtime", "", as("u_pa"));
  ASSERT_EQ(up.status, 200) << up.raw;
  const pid_t pid = std::stoi(str(up.body, "handle"));
  ASSERT_TRUE(pid_running(pid));
  auto down = request("DELETE", "/actors/runtime", "", as("u_pa"));
  ASSERT_EQ(down.status, 200) << down.raw;
  EXPECT_FALSE(pid_running(pid)) << "stop waits for the process to end";
  EXPECT_EQ(health(str(up.body, "opencodeUrl")).status, 0) << "nothing listens any more";
  EXPECT_EQ(str(request("GET", "/actors/runtime", "", as("u_pa")).body, "status"), "stopped");
  EXPECT_EQ(request("DELETE", "/actors/runtime", "", as("u_pa")).status, 200) << "stopping twice is fine";
}

TEST_F(ProcessSandbox, ARuntimeThatDiedIsStartedAgainOnTheNextProvision) {
  auto up = request("POST", "/actors/runtime", "", as("u_pc"));
  ASSERT_EQ(up.status, 200) << up.raw;
  const pid_t pid = std::stoi(str(up.body, "handle"));
  ASSERT_EQ(::kill(-pid, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return health(str(up.body, "opencodeUrl")).status == 0; })) << "it is gone";
  auto again = request("POST", "/actors/runtime", "", as("u_pc"));
  ASSERT_EQ(again.status, 200) << again.raw;
  EXPECT_NE(str(again.body, "handle"), str(up.body, "handle"));
  EXPECT_EQ(health(str(again.body, "opencodeUrl")).status, 200);
}

TEST_F(ProcessSandbox, ARuntimeThatCannotStartFailsWithItsOutputAndIsRecordedFailed) {
  config_["OPENCODE_COMMAND"] = "/bin/sh -c exit";
  auto up = request("POST", "/actors/runtime", "", as("u_pd"));
  EXPECT_GE(up.status, 500) << up.raw;
  EXPECT_NE(up.raw.find("sandbox"), std::string::npos) << up.raw;
  auto row = request("GET", "/actors/runtime", "", as("u_pd"));
  EXPECT_EQ(str(row.body, "status"), "failed") << row.raw;
  EXPECT_FALSE(str(row.body, "lastError").empty());
}

TEST_F(ProcessSandbox, AMissingProgramOrPortRangeIsAClearConfigurationError) {
  config_["OPENCODE_COMMAND"] = "no-such-opencode-binary serve";
  auto missing = request("POST", "/actors/runtime", "", as("u_pd"));
  EXPECT_EQ(missing.status, 503) << missing.raw;
  EXPECT_NE(missing.raw.find("no-such-opencode-binary"), std::string::npos) << missing.raw;
  config_["OPENCODE_COMMAND"] = std::string(ANVIL_FAKES_BIN) + " --opencode-port {port} --until-signal";
  config_.erase("USER_PORT_RANGE_START");
  auto no_range = request("POST", "/actors/runtime", "", as("u_pd"));
  EXPECT_EQ(no_range.status, 503) << no_range.raw;
  EXPECT_NE(no_range.raw.find("USER_PORT_RANGE"), std::string::npos) << no_range.raw;
}

// A wrapper command that records what the runtime can see (its environment,
// the sandbox root, the node's data directory), then becomes the fake.
class ProcessSandboxProbe : public ProcessSandbox {
 protected:
  void SetUp() override {
    ProcessSandbox::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // In the users' own directories: the only writable place a sandbox sees.
    for (const char* user : {"u_pa", "u_pb"}) write_probe(sandbox_dir_ + "/" + memory_owner(user));
    config_["OPENCODE_COMMAND"] = "{dir}/probe.sh {port}";
    config_["ANVIL_DATA_DIR"] = dir_;
    config_["SANDBOX_ENV"] = "PROBE_ROOT=" + sandbox_dir_ + ",PROBE_DATA=" + dir_ + ",OPENCODE_MODEL=test-model";
  }
  static void write_probe(const std::string& dir) {
    fs::create_directories(dir);
    const std::string path = dir + "/probe.sh";
    std::ofstream sh(path);
    sh << "#!/bin/sh\n"
       << "env > \"$HOME/env.txt\"\n"
       << "ls -a \"$PROBE_ROOT\" > \"$HOME/root.txt\" 2>&1\n"
       << "ls -a \"$PROBE_DATA\" > \"$HOME/data.txt\" 2>&1\n"
       << "exec " << ANVIL_FAKES_BIN << " --opencode-port \"$1\" --until-signal\n";
    sh.close();
    fs::permissions(path, fs::perms::owner_all);
  }
  std::string seen(const std::string& user, const std::string& file) {
    return read_file(sandbox_dir_ + "/" + memory_owner(user) + "/" + file);
  }
};

TEST_F(ProcessSandboxProbe, TheRuntimeGetsOnlyPathLangHomeAndSandboxEnvNotTheNodesSecrets) {
  config_["SANDBOX_BWRAP"] = "off";
  ::setenv("ANVIL_TEST_NODE_SECRET", "s3cret", 1);
  auto up = request("POST", "/actors/runtime", "", as("u_pb"));
  ::unsetenv("ANVIL_TEST_NODE_SECRET");
  ASSERT_EQ(up.status, 200) << up.raw;
  const std::string env = seen("u_pb", "env.txt");
  EXPECT_EQ(env.find("ANVIL_TEST_NODE_SECRET"), std::string::npos) << env;
  EXPECT_NE(env.find("OPENCODE_MODEL=test-model"), std::string::npos) << env;
  const std::string home = fs::absolute(sandbox_dir_ + "/" + memory_owner("u_pb")).lexically_normal().string();
  EXPECT_NE(env.find("HOME=" + home), std::string::npos) << env;
}

TEST_F(ProcessSandboxProbe, UnderBubblewrapTheRuntimeSeesNeitherOtherUsersNorTheNodesData) {
  config_["SANDBOX_BWRAP"] = "on";
  auto a = request("POST", "/actors/runtime", "", as("u_pa"));
  if (a.status == 503) GTEST_SKIP() << "bubblewrap cannot run here: " << a.raw;
  ASSERT_EQ(a.status, 200) << a.raw;
  auto b = request("POST", "/actors/runtime", "", as("u_pb"));
  ASSERT_EQ(b.status, 200) << b.raw;
  EXPECT_EQ(health(str(b.body, "opencodeUrl")).status, 200) << "the node reaches it on 127.0.0.1";
  const std::string root_seen = seen("u_pb", "root.txt");
  EXPECT_EQ(root_seen.find(memory_owner("u_pa")), std::string::npos) << "B sees A's directory:\n" << root_seen;
  EXPECT_NE(root_seen.find(memory_owner("u_pb")), std::string::npos) << root_seen;
  EXPECT_EQ(seen("u_pb", "data.txt"), ".\n..\n") << "the node's data directory is hidden";
  const std::string env = seen("u_pb", "env.txt");
  EXPECT_EQ(env.find("ANVIL_"), std::string::npos) << env;
}

}  // namespace
}  // namespace anvil::growqr
