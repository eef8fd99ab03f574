// GiteaFake: the Gitea v1 API subset GrowQR uses (SEEDS-INVENTORY F.2),
// served on 127.0.0.1 over ONE REAL BARE GIT REPOSITORY PER REPO
// (<root>/<owner>/<repo>.git, written with the git CLI through
// base/git/bare_repo.hpp), so a test can check `git --git-dir=... log`.
//
//   GET    /api/v1/version                              {version}
//   POST   /api/v1/admin/users                          {username, email?, password?} -> 201 User; 422 exists
//   POST   /api/v1/users/{u}/tokens                     {name, scopes?} -> 201 {id, name, sha1, token_last_eight, scopes}
//   POST   /api/v1/admin/users/{u}/repos                {name, private?, auto_init?} -> 201 Repository; 409 exists
//   POST   /api/v1/orgs                                 {username} -> 201 Organization; 422 exists
//   POST   /api/v1/orgs/{org}/repos                     {name} -> 201 Repository; 409 exists
//   GET    /api/v1/repos/{o}/{r}                        Repository
//   GET    /api/v1/repos/{o}/{r}/contents[/{path}]      a file: ContentsResponse (base64 `content`,
//                                                       `sha` = blob sha); a directory: [ContentsResponse]
//   POST   /api/v1/repos/{o}/{r}/contents/{path}        {content, message?} -> 201 FileResponse; 422 exists
//   PUT    /api/v1/repos/{o}/{r}/contents/{path}        {content, sha, message?} -> 200 FileResponse;
//                                                       stale sha -> 409 (Options::stale_sha_status);
//                                                       no sha -> 422; no file -> 404
//   DELETE /api/v1/repos/{o}/{r}/contents/{path}        {sha, message?} -> 200 {content: null, commit}
//
// Shapes follow Gitea's swagger (User, Repository, ContentsResponse,
// FileResponse {content, commit, verification}, FileDeleteResponse, APIError
// {message, url}). Gitea answers 422 for a stale sha in older releases; the
// fake answers Options::stale_sha_status (409 by default) so a client can
// be tested against either. Auth: `Authorization: token <t>` (or Bearer):
// the admin token reaches everything, a user token its owner's repos;
// missing or unknown -> 401. /version needs none.
//
// Faults: fail_next(n, status) answers the next n API requests with status
// (500/503, Retry-After-less); hang_next(n) never answers them;
// change_before_next_write(...) is a concurrent writer: right before the next
// PUT/DELETE of that file is applied, the fake commits other content to it,
// so the client's sha is stale and it must re-read and retry.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/git/bare_repo.hpp"
#include "base/value/value.hpp"
#include "tests/fakes/fake_http.hpp"

namespace anvil::fakes {

class GiteaFake {
 public:
  struct Options {
    std::string admin_token = "gitea-admin-token";
    int stale_sha_status = 409;
    int threads = 2;
  };

  // Repositories live under `root_dir` (created; the caller removes it).
  explicit GiteaFake(std::string root_dir);
  GiteaFake(std::string root_dir, Options options);
  ~GiteaFake();

  // "http://127.0.0.1:<port>" (the API is under /api/v1).
  std::string url() const;
  const std::string& admin_token() const { return options_.admin_token; }
  FakeHttpServer& http() { return server_; }

  // Direct access for tests (no HTTP).
  std::string repo_dir(const std::string& owner, const std::string& repo) const;
  git::BareRepo repo(const std::string& owner, const std::string& repo) const;
  bool has_user(const std::string& name) const;
  bool has_repo(const std::string& owner, const std::string& repo) const;

  // Faults.
  void fail_next(int n, int status = 500);
  void hang_next(int n);
  void change_before_next_write(std::string owner, std::string repo, std::string path, std::string content);
  // Content writes are committed at once but answered only after `d` (a
  // client killed meanwhile never learns that its write landed).
  void delay_write_answers(std::chrono::milliseconds d);

  // Content writes (create/update/delete) that committed, over HTTP.
  int commits_made() const;

 private:
  FakeResponse handle(const RecordedRequest& req);
  FakeResponse contents(const RecordedRequest& req, const Value& body, const std::string& owner,
                        const std::string& repo, const std::string& path);
  Value content_json(const std::string& owner, const std::string& repo, const std::string& path,
                     const std::string& sha, const std::string& type, const std::string* content, int64_t size,
                     const std::string& last_commit) const;
  Value commit_json(const std::string& owner, const std::string& repo, const std::string& sha,
                    const std::string& message) const;
  std::optional<std::string> caller(const RecordedRequest& req) const;  // "" = admin; a user name; nullopt = none
  Value repo_json(const std::string& owner, const std::string& repo) const;

  std::string root_;
  Options options_;
  mutable std::mutex mu_;
  std::set<std::string> users_;                   // GUARDED_BY(mu_)  (users and orgs share a namespace)
  std::set<std::string> orgs_;                    // GUARDED_BY(mu_)
  std::set<std::string> repos_;                   // GUARDED_BY(mu_)  "owner/repo"
  std::map<std::string, std::string> tokens_;     // GUARDED_BY(mu_)  token -> user
  int fail_left_ = 0, fail_status_ = 500;         // GUARDED_BY(mu_)
  int hang_left_ = 0;                             // GUARDED_BY(mu_)
  struct Change {
    std::string owner, repo, path, content;
  };
  std::optional<Change> change_;                  // GUARDED_BY(mu_)
  int commits_ = 0;                               // GUARDED_BY(mu_)
  std::chrono::milliseconds write_delay_{0};      // GUARDED_BY(mu_)
  int next_id_ = 1;                               // GUARDED_BY(mu_)
  std::mutex write_mu_;  // one content write at a time (Gitea serialises per repo)
  FakeHttpServer server_;  // last: stops before the state it uses goes away
};

}  // namespace anvil::fakes
