#include "base/proc/process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "base/proc/bwrap.hpp"

namespace anvil::proc {
namespace {

Result<pid_t> spawn_failed_for_test() { return make_error("test", "unset", "not spawned"); }

RunSpec sh(const std::string& script) {
  RunSpec s;
  s.argv = {"sh", "-c", script};
  s.env = {"PATH=" + path_env()};
  return s;
}

TEST(ProcRun, CapturesStdoutStderrAndTheExitCode) {
  auto r = run(sh("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
}

TEST(ProcRun, FeedsStdinLargerThanAPipeBuffer) {
  auto spec = sh("wc -c");
  spec.stdin_data = std::string(1 << 20, 'x');
  auto r = run(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.substr(0, r->out.find('\n')), std::to_string(1 << 20));
}

TEST(ProcRun, SurvivesAChildThatNeverReadsItsStdin) {
  auto spec = sh("exit 0");
  spec.stdin_data = std::string(4 << 20, 'x');
  auto r = run(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
}

TEST(ProcRun, KillsTheWholeProcessGroupAtTheTimeout) {
  auto spec = sh("sleep 30 & sleep 30; echo never");
  spec.timeout = std::chrono::milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  auto r = run(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_EQ(r->out, "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ProcRun, CapsOutputAtMaxOutputAndSaysSo) {
  auto spec = sh("head -c 100000 /dev/zero");
  spec.max_output = 1000;
  auto r = run(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.size(), 1000u);
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(r->exit_code, 0);
}

TEST(ProcRun, GivesTheChildOnlyTheEnvironmentItIsGiven) {
  ::setenv("ANVIL_PROC_TEST_SECRET", "s3cret", 1);
  auto r = run(sh("env"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.find("s3cret"), std::string::npos);
  EXPECT_NE(r->out.find("PATH="), std::string::npos);
}

TEST(ProcRun, ReportsTheStartAndTheEndOfTheProcessGroup) {
  std::vector<pid_t> seen;
  auto spec = sh("true");
  spec.on_pid = [&](pid_t p) { seen.push_back(p); };
  auto r = run(spec);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_GT(seen[0], 0);
  EXPECT_EQ(seen[1], 0);
}

TEST(ProcRun, AnUnknownProgramIsASpawnError) {
  RunSpec spec;
  spec.argv = {"anvil-no-such-program"};
  auto r = run(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "proc.spawn_failed");
}

TEST(ProcSpawnDetached, AChildOutlivesTheShortLivedThreadThatStartedIt) {
  const std::string sleep_exe = resolve_program("sleep");
  ASSERT_FALSE(sleep_exe.empty());
  Result<pid_t> pid = spawn_failed_for_test();
  std::thread([&] {
    pid = spawn_detached(sleep_exe, {"sleep", "30"}, {}, "/tmp", "/dev/null");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the child is surely set up
  }).join();
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  // The thread is gone; a child tied to it by PR_SET_PDEATHSIG would be
  // signalled now.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(alive(*pid)) << "the child was ended with the thread that forked it";
  kill_group_now(*pid);
  EXPECT_FALSE(alive(*pid));
}

TEST(Bwrap, TheArgvHidesPathsBeforeBindingTheWritableDirectory) {
  BwrapSpec spec{"/tmp/a/b", {"/tmp", "/nonexistent-anvil"}, ""};
  auto argv = bwrap_argv(spec, {"ls"});
  auto pos = [&](const std::string& s) { return std::find(argv.begin(), argv.end(), s) - argv.begin(); };
  EXPECT_LT(pos("--die-with-parent"), pos("--"));
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "/nonexistent-anvil"), 0);
  EXPECT_LT(pos("--bind"), pos("--"));
  EXPECT_EQ(argv.back(), "ls");
}

}  // namespace
}  // namespace anvil::proc

// Right after fork() the child has not made its process group yet (it calls
// setsid() first): a signal to the group alone finds nothing, and the
// command would run on (LocalSandbox.KillRunning… failed so under load).
TEST(ProcSignalGroup, ReachesAChildThatHasNotMadeItsGroupYet) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the window, widened
    ::setsid();
    ::execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  anvil::proc::signal_group(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}
