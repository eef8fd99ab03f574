#include "actors/workbench/sandbox/local_sandbox.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "base/proc/bwrap.hpp"
#include "tests/fakes/github_fake.hpp"

namespace anvil::workbench {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string temp_dir(const std::string& tag) {
  auto dir = fs::temp_directory_path() / ("anvil-sbx-" + tag + "-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  return dir.string();
}

// A provider over a fresh root, and an io_context standing in for an
// actor's executor: exec is awaited on it like ctx.wait would.
struct Env {
  std::string root = temp_dir("root");
  std::shared_ptr<LocalSandboxProvider> provider;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread loop{[this] { io.run(); }};

  explicit Env(std::string bwrap = "auto", SandboxConfig base = {}) {
    base.root = root;
    base.bwrap = std::move(bwrap);
    auto p = LocalSandboxProvider::make(std::move(base));
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
    if (p.ok()) provider = *p;
  }
  ~Env() {
    work.reset();
    loop.join();
    fs::remove_all(root);
  }
  std::future<Result<ExecResult>> start(const std::string& id, ExecRequest req) {
    return asio::co_spawn(io, provider->exec(id, std::move(req)), asio::use_future);
  }
  Result<ExecResult> exec(const std::string& id, ExecRequest req) { return start(id, std::move(req)).get(); }
  Result<ExecResult> sh(const std::string& id, const std::string& script, std::string stdin_data = "") {
    ExecRequest req;
    req.argv = {"sh", "-c", script};
    req.stdin_data = std::move(stdin_data);
    return exec(id, std::move(req));
  }
};

// Skips (saying why) when bubblewrap cannot run here.
#define REQUIRE_BWRAP(env)                                                                                  \
  if (!(env).provider->uses_bwrap())                                                                        \
  GTEST_SKIP() << "bubblewrap is not usable here (bwrap missing, or no user namespaces): isolation untested"

TEST(LocalSandbox, ACommandRunsInTheSandboxDirectoryAndItsOutputComesBack) {
  Env env;
  auto dir = env.provider->create("sbx-1");
  ASSERT_TRUE(dir.ok());
  auto r = env.sh("sbx-1", "pwd; echo hi >&2");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data, *dir + "\n");
  EXPECT_EQ(r->stderr_data, "hi\n");
  EXPECT_FALSE(r->timed_out);
}

TEST(LocalSandbox, ANonZeroExitIsAResultNotAnError) {
  Env env;
  ASSERT_TRUE(env.provider->create("sbx").ok());
  auto r = env.sh("sbx", "exit 7");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 7);
}

TEST(LocalSandbox, StdinIsFedToTheCommand) {
  Env env;
  ASSERT_TRUE(env.provider->create("sbx").ok());
  auto r = env.sh("sbx", "tr a-z A-Z", "hello");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_data, "HELLO");
}

TEST(LocalSandbox, ACommandPastItsTimeoutIsKilledAndSaysTimedOut) {
  Env env;
  ASSERT_TRUE(env.provider->create("sbx").ok());
  ExecRequest req;
  req.argv = {"sh", "-c", "echo started; sleep 30"};
  req.timeout = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = env.exec("sbx", req);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->stdout_data, "started\n");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_EQ(env.provider->running("sbx"), 0);
}

TEST(LocalSandbox, OutputBeyondMaxOutputIsDroppedAndMarkedTruncated) {
  SandboxConfig cfg;
  cfg.max_output = 100;
  Env env("auto", cfg);
  ASSERT_TRUE(env.provider->create("sbx").ok());
  auto r = env.sh("sbx", "head -c 5000 /dev/zero | tr '\\0' x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_data, std::string(100, 'x'));
  EXPECT_TRUE(r->truncated);
}

TEST(LocalSandbox, TheEnvironmentHasNoNodeSecretsOnlyPathHomeTmpdirLangAndTheRequestsEnv) {
  ::setenv("ANVIL_SANDBOX_TEST_SECRET", "node-secret-value", 1);
  Env env;
  auto dir = env.provider->create("sbx");
  ASSERT_TRUE(dir.ok());
  ExecRequest req;
  req.argv = {"env"};
  req.env = {{"GIT_AUTHOR_NAME", "bot"}};
  auto r = env.exec("sbx", req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_data.find("node-secret-value"), std::string::npos);
  EXPECT_NE(r->stdout_data.find("HOME=" + *dir + "\n"), std::string::npos);
  EXPECT_NE(r->stdout_data.find("GIT_AUTHOR_NAME=bot\n"), std::string::npos);
  EXPECT_NE(r->stdout_data.find("PATH="), std::string::npos);
  EXPECT_NE(r->stdout_data.find("TMPDIR=/tmp\n"), std::string::npos);
}

TEST(LocalSandbox, CwdIsRelativeToTheSandboxAndMayNotLeaveIt) {
  Env env;
  auto dir = env.provider->create("sbx");
  ASSERT_TRUE(dir.ok());
  fs::create_directories(*dir + "/repo/src");
  ExecRequest req;
  req.argv = {"pwd"};
  req.cwd = "repo/src";
  auto r = env.exec("sbx", req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_data, *dir + "/repo/src\n");
  for (const char* bad : {"../", "/etc", "repo/../../x", "missing"}) {
    req.cwd = bad;
    auto refused = env.exec("sbx", req);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().qualified(), "sandbox.invalid_command") << bad;
  }
}

TEST(LocalSandbox, BadIdsUnknownSandboxesAndEmptyCommandsAreTypedErrors) {
  Env env;
  for (const char* bad : {"", ".", "..", "a/b", "a b", "x\n"}) {
    auto c = env.provider->create(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.error().qualified(), "sandbox.invalid_id");
  }
  EXPECT_EQ(env.provider->create(std::string(129, 'a')).error().qualified(), "sandbox.invalid_id");
  EXPECT_EQ(env.sh("never-created", "true").error().qualified(), "sandbox.not_found");
  EXPECT_EQ(env.provider->destroy("never-created").error().qualified(), "sandbox.not_found");
  ASSERT_TRUE(env.provider->create("sbx").ok());
  EXPECT_EQ(env.exec("sbx", ExecRequest{}).error().qualified(), "sandbox.invalid_command");
}

TEST(LocalSandbox, CreateIsIdempotentAndKeepsTheFiles) {
  Env env;
  auto a = env.provider->create("sbx");
  ASSERT_TRUE(a.ok());
  std::ofstream(*a + "/f") << "x";
  auto b = env.provider->create("sbx");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_TRUE(fs::exists(*b + "/f"));
  EXPECT_TRUE(env.provider->exists("sbx"));
}

TEST(LocalSandbox, MakeRefusesAMissingRootAndAnUnknownBwrapMode) {
  EXPECT_EQ(LocalSandboxProvider::make(SandboxConfig{}).error().qualified(), "sandbox.not_configured");
  SandboxConfig cfg;
  cfg.root = temp_dir("cfg");
  cfg.bwrap = "sometimes";
  EXPECT_EQ(LocalSandboxProvider::make(cfg).error().qualified(), "sandbox.not_configured");
  fs::remove_all(cfg.root);
}

TEST(LocalSandbox, BwrapOnFailsToMakeOnlyWhereBubblewrapCannotRun) {
  SandboxConfig cfg;
  cfg.root = temp_dir("on");
  cfg.bwrap = "on";
  auto p = LocalSandboxProvider::make(cfg);
  EXPECT_EQ(p.ok(), proc::bwrap_works());
  if (p.ok()) {
    EXPECT_TRUE((*p)->uses_bwrap());
  }
  fs::remove_all(cfg.root);
}

TEST(LocalSandbox, WithBwrapOffACommandRunsUnwrappedInItsDirectoryWithTheSameEnvironment) {
  ::setenv("ANVIL_SANDBOX_TEST_SECRET", "node-secret-value", 1);
  Env env("off");
  EXPECT_FALSE(env.provider->uses_bwrap());
  auto dir = env.provider->create("sbx");
  ASSERT_TRUE(dir.ok());
  auto r = env.sh("sbx", "pwd; env");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->stdout_data.starts_with(*dir + "\n"));
  EXPECT_EQ(r->stdout_data.find("node-secret-value"), std::string::npos);
  EXPECT_NE(r->stdout_data.find("HOME=" + *dir + "\n"), std::string::npos);
}

TEST(LocalSandbox, ExecDoesNotBlockTheCallersThreadAndCommandsRunConcurrently) {
  Env env;
  ASSERT_TRUE(env.provider->create("sbx").ok());
  ExecRequest req;
  req.argv = {"sleep", "0.6"};
  const auto t0 = std::chrono::steady_clock::now();
  auto a = env.start("sbx", req);
  auto b = env.start("sbx", req);
  // The io_context's only thread stays free while both sleep.
  auto ping = asio::post(env.io, asio::use_future([] { return 1; }));
  EXPECT_EQ(ping.wait_for(300ms), std::future_status::ready);
  ASSERT_TRUE(a.get().ok());
  ASSERT_TRUE(b.get().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1100ms);
}

TEST(LocalSandbox, KillRunningKillsTheSandboxsCommandsAndCountsThem) {
  Env env;
  ASSERT_TRUE(env.provider->create("sbx").ok());
  ASSERT_TRUE(env.provider->create("other").ok());
  ExecRequest req;
  req.argv = {"sleep", "30"};
  auto running = env.start("sbx", req);
  auto other = env.start("other", ExecRequest{{"sleep", "0.5"}, {}, "", 0ms, ""});
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (env.provider->running("sbx") == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(env.provider->kill_running("sbx"), 1);
  ASSERT_EQ(running.wait_for(5s), std::future_status::ready);
  auto r = running.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 128 + 9);
  EXPECT_FALSE(r->timed_out);
  auto o = other.get();  // the other sandbox's command was not touched
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->exit_code, 0);
  EXPECT_EQ(env.provider->kill_running("sbx"), 0);
}

TEST(LocalSandbox, DestroyKillsRunningCommandsAndRemovesTheDirectory) {
  Env env;
  auto dir = env.provider->create("sbx");
  ASSERT_TRUE(dir.ok());
  auto running = env.start("sbx", ExecRequest{{"sleep", "30"}, {}, "", 0ms, ""});
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (env.provider->running("sbx") == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(env.provider->destroy("sbx").ok());
  ASSERT_EQ(running.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(running.get()->exit_code, 137);
  EXPECT_FALSE(fs::exists(*dir));
  EXPECT_FALSE(env.provider->exists("sbx"));
  EXPECT_EQ(env.sh("sbx", "true").error().qualified(), "sandbox.not_found");
}

TEST(LocalSandbox, UnderBubblewrapOtherSandboxesAndHiddenPathsAreInvisibleAndTheHostReadOnly) {
  const std::string secret_dir = temp_dir("hidden");
  std::ofstream(secret_dir + "/data") << "node data";
  SandboxConfig cfg;
  cfg.hidden = {secret_dir};
  Env env("auto", cfg);
  REQUIRE_BWRAP(env);
  auto a = env.provider->create("a");
  auto b = env.provider->create("b");
  ASSERT_TRUE(a.ok() && b.ok());
  std::ofstream(*a + "/mine") << "a's file";

  auto own = env.sh("a", "cat mine && echo new > made && cat made");
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->stdout_data, "a's filenew\n");

  auto peek = env.sh("b", "cat " + *a + "/mine");
  ASSERT_TRUE(peek.ok());
  EXPECT_NE(peek->exit_code, 0);
  EXPECT_EQ(peek->stdout_data, "");
  (void)env.sh("b", "echo x > " + *a + "/evil");
  EXPECT_FALSE(fs::exists(*a + "/evil"));
  auto hidden = env.sh("b", "ls " + secret_dir);
  ASSERT_TRUE(hidden.ok());
  EXPECT_EQ(hidden->stdout_data, "");  // an empty tmpfs
  auto host = env.sh("b", "touch /usr/anvil-sandbox-probe");
  ASSERT_TRUE(host.ok());
  EXPECT_NE(host->exit_code, 0);
  EXPECT_FALSE(fs::exists("/usr/anvil-sandbox-probe"));
  const std::string probe = "/tmp/anvil-sbx-probe-" + std::to_string(std::random_device{}());
  auto tmp = env.sh("b", "echo t > " + probe + " && cat " + probe);
  EXPECT_EQ(tmp->stdout_data, "t\n");
  EXPECT_FALSE(fs::exists(probe));  // its /tmp is its own
  auto pids = env.sh("b", "ls /proc | grep -c '^[0-9]'");
  ASSERT_TRUE(pids.ok());
  EXPECT_LE(std::atoi(pids->stdout_data.c_str()), 4);  // a PID namespace of its own
  fs::remove_all(secret_dir);
}

TEST(LocalSandbox, AGitCloneAndPushFromInsideASandboxReachesTheGithubFake) {
  const std::string gh_root = temp_dir("gh");
  fakes::GithubFake gh(fakes::GithubFake::Options{gh_root, "ghs_token", "", ""});
  gh.start();
  ASSERT_TRUE(gh.create_repo("acme", "app").ok());
  Env env;
  ASSERT_TRUE(env.provider->create("task-1").ok());
  ExecRequest clone;
  clone.argv = {"git", "clone", "-q", gh.clone_url("acme", "app", true), "repo"};
  clone.env = {{"GIT_TERMINAL_PROMPT", "0"}};
  auto c = env.exec("task-1", clone);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->exit_code, 0) << c->stderr_data;

  ExecRequest work;
  work.argv = {"sh", "-c",
               "git checkout -q -b feature/rename-me && echo x > x.txt && git add x.txt && "
               "git -c user.name=bot -c user.email=bot@example.com commit -q -m x && "
               "git push -q origin feature/rename-me && git push -q origin feature/rename-me:feature/final "
               ":feature/rename-me"};
  work.cwd = "repo";
  auto w = env.exec("task-1", work);
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->exit_code, 0) << w->stderr_data;
  // The rename as a real git operation (E7): the old ref is gone, the new one there.
  EXPECT_EQ(gh.branches("acme", "app"), (std::vector<std::string>{"feature/final", "main"}));
  gh.stop();
  fs::remove_all(gh_root);
}

}  // namespace
}  // namespace anvil::workbench
