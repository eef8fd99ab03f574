#include "tests/fakes/github_fake.hpp"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "base/proc/process.hpp"
#include "base/value/json.hpp"
#include "tests/fakes/fake_client.hpp"
#include "tests/fakes/fake_http.hpp"

namespace anvil::fakes {
namespace {

namespace fs = std::filesystem;
using client::BlockingClient;

std::string temp_dir(const std::string& tag) {
  auto dir = fs::temp_directory_path() / ("anvil-gh-" + tag + "-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  return dir.string();
}

// Runs git (outside any sandbox) with no user configuration.
proc::RunOutput run_git(const std::string& cwd, std::vector<std::string> args) {
  proc::RunSpec spec;
  spec.argv = {"git"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {"PATH=" + proc::path_env(), "HOME=" + cwd, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
              "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
              "GIT_COMMITTER_EMAIL=t@example.com"};
  spec.cwd = cwd;
  spec.timeout = std::chrono::seconds(60);
  auto r = proc::run(spec);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : proc::RunOutput{};
}

// A webhook receiver that records every delivery it is sent.
struct Receiver {
  FakeHttpServer server;
  Receiver() { server.route("POST", "/hook", FakeResponse::text(200, "ok")); }
  std::string url() const { return server.url("/hook"); }
};

struct Env {
  std::string root = temp_dir("root");
  std::string work = temp_dir("work");
  Receiver hooks;
  GithubFake gh;
  BlockingClient http;

  explicit Env(std::string token = "", std::string secret = "s3cret")
      : gh(GithubFake::Options{root, std::move(token), hooks.url(), std::move(secret)}) {
    gh.start();
    EXPECT_TRUE(gh.create_repo("acme", "app").ok());
  }
  ~Env() {
    gh.stop();
    fs::remove_all(root);
    fs::remove_all(work);
  }
  client::Reply get(const std::string& path, net::Headers h = {}) { return http.send("GET", gh.base_url() + path, "", h); }
  client::Reply send(const std::string& method, const std::string& path, const Value& body) {
    return http.send(method, gh.base_url() + path, json::dump(body), {{"Content-Type", "application/json"}});
  }
  std::vector<std::string> events() const {
    std::vector<std::string> out;
    for (const auto& d : gh.deliveries()) out.push_back(d.event);
    return out;
  }
};

// One GET with its headers (the blocking client keeps no headers of a
// non-2xx answer).
boost::beast::http::response<boost::beast::http::string_body> raw_get(uint16_t port, const std::string& target) {
  namespace http = boost::beast::http;
  asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(stream, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  return res;
}

std::string s(const Value& v, std::string_view key) {
  const Value* f = v.find(key);
  return f && f->is_string() ? f->as_string() : "";
}

TEST(GithubFake, ACloneAndPushThroughTheFakeCreatesTheBranchAndSendsSignedPushAndCreateWebhooks) {
  Env env;
  auto clone = run_git(env.work, {"clone", "-q", env.gh.clone_url("acme", "app"), "app"});
  ASSERT_EQ(clone.exit_code, 0) << clone.err;
  const std::string repo = env.work + "/app";
  ASSERT_TRUE(fs::exists(repo + "/README.md"));
  ASSERT_EQ(run_git(repo, {"checkout", "-q", "-b", "feature/x"}).exit_code, 0);
  std::ofstream(repo + "/a.txt") << "hello\n";
  ASSERT_EQ(run_git(repo, {"add", "a.txt"}).exit_code, 0);
  ASSERT_EQ(run_git(repo, {"commit", "-q", "-m", "Add a"}).exit_code, 0);
  auto push = run_git(repo, {"push", "-q", "origin", "feature/x"});
  ASSERT_EQ(push.exit_code, 0) << push.err;

  EXPECT_EQ(env.gh.branches("acme", "app"), (std::vector<std::string>{"feature/x", "main"}));
  ASSERT_TRUE(env.gh.wait_for_deliveries(2));
  auto deliveries = env.gh.deliveries();
  ASSERT_EQ(deliveries.size(), 2u);
  EXPECT_EQ(deliveries[0].event, "push");
  EXPECT_EQ(deliveries[1].event, "create");
  EXPECT_EQ(deliveries[0].status, 200);

  auto received = env.hooks.server.requests("POST", "/hook");
  ASSERT_EQ(received.size(), 2u);
  for (const auto& r : received) {
    // The receiver checks the signature itself: HMAC-SHA256 of the raw body.
    EXPECT_EQ(r.header("x-hub-signature-256"), github_signature("s3cret", r.body));
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_TRUE(r.header("user-agent")->starts_with("GitHub-Hookshot/"));
    EXPECT_EQ(r.header("x-github-delivery")->size(), 36u);
  }
  EXPECT_NE(received[0].header("x-github-delivery"), received[1].header("x-github-delivery"));
  auto push_body = json::parse(received[0].body, false);
  ASSERT_TRUE(push_body.ok());
  EXPECT_EQ(s(*push_body, "ref"), "refs/heads/feature/x");
  EXPECT_EQ(s(*push_body, "before"), std::string(40, '0'));
  EXPECT_EQ(s(*push_body, "after"), env.gh.branch_sha("acme", "app", "feature/x"));
  EXPECT_TRUE(push_body->find("created")->as_bool());
  EXPECT_FALSE(push_body->find("deleted")->as_bool());
  EXPECT_EQ(s(*push_body->find("repository"), "full_name"), "acme/app");
  EXPECT_EQ(s(*push_body->find("repository")->find("owner"), "login"), "acme");
  auto create_body = json::parse(received[1].body, false);
  EXPECT_EQ(s(*create_body, "ref"), "feature/x");
  EXPECT_EQ(s(*create_body, "ref_type"), "branch");
}

TEST(GithubFake, DeletingABranchByPushSendsPushDeletedAndDelete) {
  Env env;
  ASSERT_TRUE(env.gh.create_branch("acme", "app", "old", "main").ok());
  ASSERT_EQ(run_git(env.work, {"clone", "-q", env.gh.clone_url("acme", "app"), "app"}).exit_code, 0);
  ASSERT_EQ(run_git(env.work + "/app", {"push", "-q", "origin", ":old"}).exit_code, 0);
  ASSERT_TRUE(env.gh.wait_for_deliveries(2));
  EXPECT_EQ(env.events(), (std::vector<std::string>{"push", "delete"}));
  auto body = json::parse(env.gh.deliveries()[0].body, false);
  EXPECT_TRUE(body->find("deleted")->as_bool());
  EXPECT_EQ(s(*body, "after"), std::string(40, '0'));
  EXPECT_EQ(env.gh.branches("acme", "app"), (std::vector<std::string>{"main"}));
}

TEST(GithubFake, TheRepositoryAnswersInGithubsShapeWithACloneUrlOfTheFake) {
  Env env;
  auto r = env.get("/repos/acme/app");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(s(r.json, "name"), "app");
  EXPECT_EQ(s(r.json, "full_name"), "acme/app");
  EXPECT_EQ(s(*r.json.find("owner"), "login"), "acme");
  EXPECT_EQ(s(r.json, "default_branch"), "main");
  EXPECT_EQ(s(r.json, "clone_url"), env.gh.clone_url("acme", "app"));
  EXPECT_TRUE(r.json.find("id")->is_int());
  EXPECT_FALSE(r.json.find("private")->as_bool());
  auto missing = env.get("/repos/acme/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(s(missing.json, "message"), "Not Found");
  EXPECT_FALSE(s(missing.json, "documentation_url").empty());
}

TEST(GithubFake, RenameMovesTheRefInTheBareRepoAndSendsWebhooks) {
  Env env;
  ASSERT_TRUE(env.gh.create_branch("acme", "app", "task-1", "main").ok());
  const std::string sha = env.gh.branch_sha("acme", "app", "task-1");
  auto r = env.send("POST", "/repos/acme/app/branches/task-1/rename", obj({{"new_name", "feature/login"}}));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(s(r.json, "name"), "feature/login");
  EXPECT_EQ(s(*r.json.find("commit"), "sha"), sha);
  EXPECT_EQ(env.gh.branches("acme", "app"), (std::vector<std::string>{"feature/login", "main"}));
  EXPECT_EQ(env.get("/repos/acme/app/branches/task-1").status, 404);
  EXPECT_EQ(env.get("/repos/acme/app/branches/feature/login").status, 200);

  ASSERT_TRUE(env.gh.wait_for_deliveries(4));
  // Refs in name order: the new branch appears, the old one goes.
  EXPECT_EQ(env.events(), (std::vector<std::string>{"push", "create", "push", "delete"}));
}

TEST(GithubFake, RenameRefusesAMissingBranchAndATakenName) {
  Env env;
  ASSERT_TRUE(env.gh.create_branch("acme", "app", "a", "main").ok());
  auto missing = env.send("POST", "/repos/acme/app/branches/nope/rename", obj({{"new_name", "x"}}));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(s(missing.json, "message"), "Branch not found");
  auto taken = env.send("POST", "/repos/acme/app/branches/a/rename", obj({{"new_name", "main"}}));
  EXPECT_EQ(taken.status, 422);
  EXPECT_EQ(s(taken.json, "message"), "Validation Failed");
  auto invalid = env.send("POST", "/repos/acme/app/branches/a/rename", obj({{"new_name", "bad..name"}}));
  EXPECT_EQ(invalid.status, 422);
  EXPECT_EQ(env.gh.branches("acme", "app"), (std::vector<std::string>{"a", "main"}));
}

TEST(GithubFake, RenamingTheDefaultBranchMakesTheNewNameTheDefault) {
  Env env;
  auto r = env.send("POST", "/repos/acme/app/branches/main/rename", obj({{"new_name", "trunk"}}));
  ASSERT_EQ(r.status, 201);
  EXPECT_EQ(s(env.get("/repos/acme/app").json, "default_branch"), "trunk");
}

TEST(GithubFake, BranchesArePaginatedWithALinkHeader) {
  Env env;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(env.gh.create_branch("acme", "app", "b" + std::to_string(i), "main").ok());
  auto page1 = env.get("/repos/acme/app/branches?per_page=2");
  ASSERT_EQ(page1.status, 200);
  ASSERT_EQ(page1.json.as_array().size(), 2u);
  EXPECT_EQ(s(page1.json.as_array()[0], "name"), "b0");
  auto page3 = env.get("/repos/acme/app/branches?per_page=2&page=3");
  ASSERT_EQ(page3.json.as_array().size(), 1u);
  EXPECT_EQ(s(page3.json.as_array()[0], "name"), "main");
}

TEST(GithubFake, TheLinkHeaderNamesTheNextPrevAndLastPages) {
  Env env;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(env.gh.create_branch("acme", "app", "b" + std::to_string(i), "main").ok());
  auto res = raw_get(env.gh.port(), "/repos/acme/app/branches?per_page=2&page=2");
  EXPECT_EQ(res.result_int(), 200u);
  const std::string link(res["Link"]);
  EXPECT_NE(link.find("page=3&per_page=2>; rel=\"next\""), std::string::npos) << link;
  EXPECT_NE(link.find("rel=\"last\""), std::string::npos) << link;
  EXPECT_NE(link.find("page=1&per_page=2>; rel=\"prev\""), std::string::npos) << link;
}

TEST(GithubFake, APullRequestOpensListsEditsClosesAndReopensWithWebhooks) {
  Env env;
  ASSERT_TRUE(env.gh.create_branch("acme", "app", "feature", "main").ok());
  auto opened = env.send("POST", "/repos/acme/app/pulls",
                         obj({{"title", "Add feature"}, {"head", "acme:feature"}, {"base", "main"}, {"body", "b"}}));
  ASSERT_EQ(opened.status, 201) << opened.body;
  EXPECT_EQ(opened.json.find("number")->as_int(), 1);
  EXPECT_EQ(s(opened.json, "state"), "open");
  EXPECT_EQ(s(*opened.json.find("head"), "ref"), "feature");
  EXPECT_EQ(s(*opened.json.find("head"), "sha"), env.gh.branch_sha("acme", "app", "feature"));
  EXPECT_EQ(s(*opened.json.find("base"), "ref"), "main");
  EXPECT_FALSE(opened.json.find("merged")->as_bool());
  EXPECT_FALSE(s(opened.json, "html_url").empty());

  EXPECT_EQ(env.send("POST", "/repos/acme/app/pulls", obj({{"title", "again"}, {"head", "feature"}, {"base", "main"}}))
                .status,
            422);
  EXPECT_EQ(env.get("/repos/acme/app/pulls").json.as_array().size(), 1u);

  auto edited = env.send("PATCH", "/repos/acme/app/pulls/1", obj({{"title", "Better title"}}));
  EXPECT_EQ(s(edited.json, "title"), "Better title");
  auto closed = env.send("PATCH", "/repos/acme/app/pulls/1", obj({{"state", "closed"}}));
  EXPECT_EQ(s(closed.json, "state"), "closed");
  EXPECT_TRUE(env.get("/repos/acme/app/pulls").json.as_array().empty());
  EXPECT_EQ(env.get("/repos/acme/app/pulls?state=closed").json.as_array().size(), 1u);
  EXPECT_EQ(s(env.get("/repos/acme/app/pulls/1").json, "state"), "closed");
  auto reopened = env.send("PATCH", "/repos/acme/app/pulls/1", obj({{"state", "open"}}));
  EXPECT_EQ(s(reopened.json, "state"), "open");
  EXPECT_EQ(env.get("/repos/acme/app/pulls/2").status, 404);

  ASSERT_TRUE(env.gh.wait_for_deliveries(4));
  std::vector<std::string> actions;
  for (const auto& d : env.gh.deliveries()) {
    EXPECT_EQ(d.event, "pull_request");
    auto body = json::parse(d.body, false);
    actions.push_back(s(*body, "action"));
    EXPECT_EQ(body->find("number")->as_int(), 1);
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"opened", "edited", "closed", "reopened"}));
  auto edit = json::parse(env.gh.deliveries()[1].body, false);
  EXPECT_EQ(s(*edit->find("changes")->find("title"), "from"), "Add feature");
}

// A commit of `path` = `content` on `branch` of the bare repo, made through a clone.
void commit_on(Env& env, const std::string& branch, const std::string& path, const std::string& content) {
  const std::string dir = env.work + "/c-" + std::to_string(std::random_device{}());
  ASSERT_EQ(run_git(env.work, {"clone", "-q", "-b", branch, env.gh.clone_url("acme", "app"), dir}).exit_code, 0);
  std::ofstream(dir + "/" + path) << content;
  ASSERT_EQ(run_git(dir, {"add", path}).exit_code, 0);
  ASSERT_EQ(run_git(dir, {"commit", "-q", "-m", "change " + path}).exit_code, 0);
  ASSERT_EQ(run_git(dir, {"push", "-q", "origin", branch}).exit_code, 0);
}

TEST(GithubFake, MergingAPullRequestMakesAMergeCommitOnTheBaseAndClosesItMerged) {
  Env env;
  ASSERT_TRUE(env.gh.create_branch("acme", "app", "feature", "main").ok());
  commit_on(env, "feature", "f.txt", "feature\n");
  commit_on(env, "main", "m.txt", "main\n");
  const std::string head = env.gh.branch_sha("acme", "app", "feature");
  ASSERT_EQ(env.send("POST", "/repos/acme/app/pulls", obj({{"title", "F"}, {"head", "feature"}, {"base", "main"}})).status,
            201);
  ASSERT_TRUE(env.gh.wait_for_deliveries(3));  // the two pushes, then opened
  const size_t before = env.gh.deliveries().size();

  auto merged = env.send("PUT", "/repos/acme/app/pulls/1/merge", obj({{"sha", head}}));
  ASSERT_EQ(merged.status, 200) << merged.body;
  EXPECT_TRUE(merged.json.find("merged")->as_bool());
  const std::string sha = s(merged.json, "sha");
  EXPECT_EQ(env.gh.branch_sha("acme", "app", "main"), sha);
  auto parents = run_git(env.work, {"--git-dir=" + env.gh.bare_path("acme", "app"), "rev-list", "--parents", "-n1", sha});
  EXPECT_NE(parents.out.find(head), std::string::npos);  // the head is a parent: a real merge commit
  auto pr = env.get("/repos/acme/app/pulls/1").json;
  EXPECT_EQ(s(pr, "state"), "closed");
  EXPECT_TRUE(pr.find("merged")->as_bool());
  EXPECT_EQ(s(pr, "merge_commit_sha"), sha);
  EXPECT_EQ(env.send("PUT", "/repos/acme/app/pulls/1/merge", obj({})).status, 405);

  ASSERT_TRUE(env.gh.wait_for_deliveries(before + 2));
  auto ds = env.gh.deliveries();
  EXPECT_EQ(ds[before].event, "push");
  EXPECT_EQ(ds[before + 1].event, "pull_request");
  auto closed = json::parse(ds[before + 1].body, false);
  EXPECT_EQ(s(*closed, "action"), "closed");
  EXPECT_TRUE(closed->find("pull_request")->find("merged")->as_bool());
}

TEST(GithubFake, AConflictingPullRequestIsNotMergeable) {
  Env env;
  ASSERT_TRUE(env.gh.create_branch("acme", "app", "feature", "main").ok());
  commit_on(env, "feature", "README.md", "theirs\n");
  commit_on(env, "main", "README.md", "ours\n");
  ASSERT_EQ(env.send("POST", "/repos/acme/app/pulls", obj({{"title", "F"}, {"head", "feature"}, {"base", "main"}})).status,
            201);
  const std::string main_before = env.gh.branch_sha("acme", "app", "main");
  EXPECT_EQ(env.send("PUT", "/repos/acme/app/pulls/1/merge", obj({})).status, 405);
  EXPECT_EQ(env.gh.branch_sha("acme", "app", "main"), main_before);
}

TEST(GithubFake, DeletingABranchRefThroughTheApiRemovesItAndSendsPushAndDelete) {
  Env env;
  ASSERT_TRUE(env.gh.create_branch("acme", "app", "feature/x", "main").ok());
  auto del = env.http.send("DELETE", env.gh.base_url() + "/repos/acme/app/git/refs/heads/feature/x");
  EXPECT_EQ(del.status, 204);
  EXPECT_EQ(env.gh.branches("acme", "app"), (std::vector<std::string>{"main"}));
  ASSERT_TRUE(env.gh.wait_for_deliveries(2));
  EXPECT_EQ(env.events(), (std::vector<std::string>{"push", "delete"}));
  auto again = env.http.send("DELETE", env.gh.base_url() + "/repos/acme/app/git/refs/heads/feature/x");
  EXPECT_EQ(again.status, 422);
}

TEST(GithubFake, AnOwnersRepositoriesAreListed) {
  Env env;
  ASSERT_TRUE(env.gh.create_repo("acme", "lib").ok());
  ASSERT_TRUE(env.gh.create_repo("other", "x").ok());
  auto r = env.get("/orgs/acme/repos");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.json.as_array().size(), 2u);
  EXPECT_EQ(s(r.json.as_array()[0], "full_name"), "acme/app");
  EXPECT_EQ(s(r.json.as_array()[1], "full_name"), "acme/lib");
  EXPECT_EQ(env.get("/users/other/repos").json.as_array().size(), 1u);
}

TEST(GithubFake, APullRequestNeedsExistingDistinctBranches) {
  Env env;
  auto missing = env.send("POST", "/repos/acme/app/pulls", obj({{"title", "t"}, {"head", "nope"}, {"base", "main"}}));
  EXPECT_EQ(missing.status, 422);
  auto same = env.send("POST", "/repos/acme/app/pulls", obj({{"title", "t"}, {"head", "main"}, {"base", "main"}}));
  EXPECT_EQ(same.status, 422);
  auto no_title = env.send("POST", "/repos/acme/app/pulls", obj({{"head", "main"}, {"base", "main"}}));
  EXPECT_EQ(no_title.status, 422);
}

TEST(GithubFake, WithATokenTheApiAnswers401WithoutItOrWithAWrongOne) {
  Env env("ghs_secret");
  auto none = env.get("/repos/acme/app");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(s(none.json, "message"), "Requires authentication");
  auto wrong = env.get("/repos/acme/app", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(s(wrong.json, "message"), "Bad credentials");
  EXPECT_EQ(env.get("/repos/acme/app", {{"Authorization", "Bearer ghs_secret"}}).status, 200);
  EXPECT_EQ(env.get("/repos/acme/app", {{"Authorization", "token ghs_secret"}}).status, 200);
}

TEST(GithubFake, WithATokenGitNeedsItAsBasicCredentials) {
  Env env("ghs_secret");
  EXPECT_NE(run_git(env.work, {"clone", "-q", env.gh.clone_url("acme", "app"), "a"}).exit_code, 0);
  auto ok = run_git(env.work, {"clone", "-q", env.gh.clone_url("acme", "app", true), "b"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(GithubFake, FailNextAnswersTheNextRequestsWithTheStatusThenRecovers) {
  Env env;
  env.gh.fail_next(2, 502);
  EXPECT_EQ(env.get("/repos/acme/app").status, 502);
  EXPECT_EQ(env.get("/repos/acme/app").status, 502);
  EXPECT_EQ(env.get("/repos/acme/app").status, 200);
}

TEST(GithubFake, RateLimitAnswers403WithRemainingZeroAndAReset) {
  Env env;
  env.gh.rate_limit_next(1, std::chrono::seconds(30));
  auto limited = raw_get(env.gh.port(), "/repos/acme/app");
  EXPECT_EQ(limited.result_int(), 403u);
  EXPECT_NE(limited.body().find("API rate limit exceeded"), std::string::npos);
  EXPECT_EQ(limited["X-RateLimit-Remaining"], "0");
  const long reset = std::stol(std::string(limited["X-RateLimit-Reset"]));
  EXPECT_GE(reset, std::time(nullptr) + 25);
  auto after = raw_get(env.gh.port(), "/repos/acme/app");
  EXPECT_EQ(after.result_int(), 200u);
  EXPECT_NE(after["X-RateLimit-Remaining"], "0");
}

TEST(GithubFake, RedeliverSendsTheSameIdAndBodyAgain) {
  Env env;
  ASSERT_TRUE(env.send("POST", "/repos/acme/app/branches/main/rename", obj({{"new_name", "trunk"}})).status == 201);
  ASSERT_TRUE(env.gh.wait_for_deliveries(4));
  const auto first = env.gh.deliveries()[0];
  ASSERT_TRUE(env.gh.redeliver(first.id));
  ASSERT_TRUE(env.gh.wait_for_deliveries(5));
  const auto again = env.gh.deliveries().back();
  EXPECT_EQ(again.id, first.id);
  EXPECT_EQ(again.body, first.body);
  EXPECT_TRUE(again.redelivery);
  auto received = env.hooks.server.requests("POST", "/hook");
  ASSERT_EQ(received.size(), 5u);
  EXPECT_EQ(received[4].header("x-github-delivery"), received[0].header("x-github-delivery"));
  EXPECT_EQ(received[4].header("x-hub-signature-256"), received[0].header("x-hub-signature-256"));
  EXPECT_FALSE(env.gh.redeliver("no-such-id"));
}

TEST(GithubFake, CorruptNextSignatureSignsOneDeliveryWrongly) {
  Env env;
  env.gh.corrupt_next_signature();
  ASSERT_EQ(env.send("POST", "/repos/acme/app/pulls", obj({{"title", "t"}, {"head", "main"}, {"base", "main"}})).status,
            422);  // no event: the corruption waits for the next delivery
  ASSERT_TRUE(env.gh.create_branch("acme", "app", "f", "main").ok());
  ASSERT_EQ(env.send("POST", "/repos/acme/app/pulls", obj({{"title", "t"}, {"head", "f"}, {"base", "main"}})).status,
            201);
  ASSERT_EQ(env.send("PATCH", "/repos/acme/app/pulls/1", obj({{"title", "u"}})).status, 200);
  ASSERT_TRUE(env.gh.wait_for_deliveries(2));
  auto received = env.hooks.server.requests("POST", "/hook");
  ASSERT_EQ(received.size(), 2u);
  EXPECT_NE(received[0].header("x-hub-signature-256"), github_signature("s3cret", received[0].body));
  EXPECT_EQ(received[1].header("x-hub-signature-256"), github_signature("s3cret", received[1].body));
}

TEST(GithubFake, AWebhookTargetThatIsDownIsRecordedAsFailed) {
  Env env;
  env.gh.set_webhook("http://127.0.0.1:1/hook", "s3cret");
  ASSERT_EQ(env.send("POST", "/repos/acme/app/branches/main/rename", obj({{"new_name", "trunk"}})).status, 201);
  ASSERT_TRUE(env.gh.wait_for_deliveries(4));
  for (const auto& d : env.gh.deliveries()) {
    EXPECT_EQ(d.status, 0);
    EXPECT_FALSE(d.error.empty());
  }
}

}  // namespace
}  // namespace anvil::fakes
