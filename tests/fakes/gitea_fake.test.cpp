#include "tests/fakes/gitea_fake.hpp"

#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "tests/fakes/fake_client.hpp"

namespace anvil::fakes {
namespace {

using client::BlockingClient;
using client::Reply;

std::string b64(const std::string& s) {
  return json::base64_encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

std::string unb64(const Value& v) {
  auto d = json::base64_decode(v.as_string());
  return d.ok() ? std::string(d->begin(), d->end()) : "<bad base64>";
}

class GiteaFakeTest : public ::testing::Test {
 protected:
  GiteaFakeTest()
      : root_((std::filesystem::temp_directory_path() / ("gitea-fake-" + std::to_string(std::random_device{}()))).string()),
        gitea_(root_) {}
  ~GiteaFakeTest() override { std::filesystem::remove_all(root_); }

  net::Headers auth() const { return {{"Authorization", "token " + gitea_.admin_token()}, {"Content-Type", "application/json"}}; }
  Reply api(const std::string& method, const std::string& path, const Value& body = Value()) {
    return client_.send(method, gitea_.url() + "/api/v1" + path, body.is_null() ? "" : json::dump(body), auth());
  }
  void make_repo() {
    ASSERT_EQ(api("POST", "/admin/users", obj({{"username", "alice"}, {"email", "a@x"}, {"password", "pw"}})).status, 201);
    ASSERT_EQ(api("POST", "/admin/users/alice/repos", obj({{"name", "growqr-memory"}, {"private", true}})).status, 201);
  }

  std::string root_;
  GiteaFake gitea_;
  BlockingClient client_;
};

TEST_F(GiteaFakeTest, VersionAnswersWithoutAToken) {
  auto r = client_.send("GET", gitea_.url() + "/api/v1/version");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.json.find("version"));
}

TEST_F(GiteaFakeTest, RequestsWithoutAValidTokenAre401) {
  auto r = client_.send("POST", gitea_.url() + "/api/v1/admin/users", json::dump(obj({{"username", "x"}})));
  EXPECT_EQ(r.status, 401);
  r = client_.send("GET", gitea_.url() + "/api/v1/repos/a/b", "", {{"Authorization", "token nope"}});
  EXPECT_EQ(r.status, 401);
}

TEST_F(GiteaFakeTest, CreatingAUserTwiceIs422AndARepoTwiceIs409) {
  make_repo();
  EXPECT_EQ(api("POST", "/admin/users", obj({{"username", "alice"}})).status, 422);
  EXPECT_EQ(api("POST", "/admin/users/alice/repos", obj({{"name", "growqr-memory"}})).status, 409);
  EXPECT_TRUE(gitea_.has_repo("alice", "growqr-memory"));
}

TEST_F(GiteaFakeTest, AFileWrittenThroughTheContentsApiIsACommitInTheBareRepository) {
  make_repo();
  auto created = api("POST", "/repos/alice/growqr-memory/contents/notes/a.md",
                     obj({{"content", b64("hello\n")}, {"message", "add a"}}));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string sha = created.json["content"]["sha"].as_string();
  EXPECT_EQ(sha, "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(created.json["commit"]["message"].as_string(), "add a");

  auto got = api("GET", "/repos/alice/growqr-memory/contents/notes/a.md");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.json["sha"].as_string(), sha);
  EXPECT_EQ(got.json["encoding"].as_string(), "base64");
  EXPECT_EQ(unb64(got.json["content"]), "hello\n");

  auto log = gitea_.repo("alice", "growqr-memory").log();
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].sha, created.json["commit"]["sha"].as_string());
}

TEST_F(GiteaFakeTest, AnUpdateWithAStaleShaIsAConflictAndNeedsTheSha) {
  make_repo();
  auto created = api("POST", "/repos/alice/growqr-memory/contents/a.md", obj({{"content", b64("1")}}));
  const std::string sha1 = created.json["content"]["sha"].as_string();
  auto updated = api("PUT", "/repos/alice/growqr-memory/contents/a.md", obj({{"content", b64("2")}, {"sha", sha1}}));
  ASSERT_EQ(updated.status, 200) << updated.body;
  auto stale = api("PUT", "/repos/alice/growqr-memory/contents/a.md", obj({{"content", b64("3")}, {"sha", sha1}}));
  EXPECT_EQ(stale.status, 409);
  EXPECT_NE(stale.json["message"].as_string().find("sha does not match"), std::string::npos);
  EXPECT_EQ(api("PUT", "/repos/alice/growqr-memory/contents/a.md", obj({{"content", b64("3")}})).status, 422);
  EXPECT_EQ(api("POST", "/repos/alice/growqr-memory/contents/a.md", obj({{"content", b64("x")}})).status, 422);
  EXPECT_EQ(gitea_.repo("alice", "growqr-memory").log()->size(), 2u);
}

TEST_F(GiteaFakeTest, DeleteNeedsTheCurrentShaAndADirectoryListsItsEntries) {
  make_repo();
  auto a = api("POST", "/repos/alice/growqr-memory/contents/d/a.md", obj({{"content", b64("a")}}));
  ASSERT_EQ(api("POST", "/repos/alice/growqr-memory/contents/d/e/b.md", obj({{"content", b64("b")}})).status, 201);
  auto dir = api("GET", "/repos/alice/growqr-memory/contents/d");
  ASSERT_EQ(dir.status, 200);
  ASSERT_TRUE(dir.json.is_array());
  ASSERT_EQ(dir.json.as_array().size(), 2u);
  EXPECT_EQ(dir.json.as_array()[0]["type"].as_string(), "file");
  EXPECT_EQ(dir.json.as_array()[1]["type"].as_string(), "dir");
  EXPECT_EQ(dir.json.as_array()[1]["path"].as_string(), "d/e");
  EXPECT_EQ(api("DELETE", "/repos/alice/growqr-memory/contents/d/a.md", obj({{"sha", std::string(40, '0')}})).status, 409);
  auto del = api("DELETE", "/repos/alice/growqr-memory/contents/d/a.md", obj({{"sha", a.json["content"]["sha"]}}));
  EXPECT_EQ(del.status, 200);
  EXPECT_TRUE(del.json["content"].is_null());
  EXPECT_EQ(api("GET", "/repos/alice/growqr-memory/contents/d/a.md").status, 404);
}

TEST_F(GiteaFakeTest, AConcurrentWriterMakesTheNextUpdateStale) {
  make_repo();
  auto a = api("POST", "/repos/alice/growqr-memory/contents/a.md", obj({{"content", b64("mine")}}));
  gitea_.change_before_next_write("alice", "growqr-memory", "a.md", "theirs");
  auto put = api("PUT", "/repos/alice/growqr-memory/contents/a.md",
                 obj({{"content", b64("mine 2")}, {"sha", a.json["content"]["sha"]}}));
  EXPECT_EQ(put.status, 409);
  EXPECT_EQ(gitea_.repo("alice", "growqr-memory").read("a.md")->content, "theirs");
}

TEST_F(GiteaFakeTest, InjectedFailuresAnswerTheGivenStatusThenRecover) {
  make_repo();
  gitea_.fail_next(2, 503);
  EXPECT_EQ(api("GET", "/repos/alice/growqr-memory").status, 503);
  EXPECT_EQ(api("GET", "/repos/alice/growqr-memory").status, 503);
  EXPECT_EQ(api("GET", "/repos/alice/growqr-memory").status, 200);
  gitea_.hang_next(1);
  auto hung = client_.send("GET", gitea_.url() + "/api/v1/version", "", {}, std::chrono::milliseconds(200));
  EXPECT_EQ(hung.status, 0);
  EXPECT_NE(hung.error.find("timeout"), std::string::npos);
}

TEST_F(GiteaFakeTest, AUserTokenReachesOnlyItsOwnRepositories) {
  make_repo();
  ASSERT_EQ(api("POST", "/admin/users", obj({{"username", "bob"}})).status, 201);
  auto tok = api("POST", "/users/alice/tokens", obj({{"name", "t"}}));
  ASSERT_EQ(tok.status, 201);
  const std::string token = tok.json["sha1"].as_string();
  EXPECT_EQ(client_.send("GET", gitea_.url() + "/api/v1/repos/alice/growqr-memory", "", {{"Authorization", "token " + token}}).status, 200);
  ASSERT_EQ(api("POST", "/admin/users/bob/repos", obj({{"name", "r"}})).status, 201);
  EXPECT_EQ(client_.send("GET", gitea_.url() + "/api/v1/repos/bob/r", "", {{"Authorization", "token " + token}}).status, 404);
}

}  // namespace
}  // namespace anvil::fakes
