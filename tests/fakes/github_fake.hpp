// GithubFake: the GitHub REST subset the workbench uses (SEEDS-INVENTORY
// F.6), served on 127.0.0.1 over REAL BARE GIT REPOSITORIES
// (<root>/<owner>/<name>.git), with git's smart HTTP protocol served by
// `git http-backend` so `git clone` / `git push` to a repository's
// clone_url work, and webhooks sent after every ref change.
//
// REST (JSON as api.github.com; errors {"message", "documentation_url"}):
//   GET   /repos/{o}/{r}                           Repository (clone_url = this fake's git URL)
//   GET   /repos/{o}/{r}/branches                  [Branch] by name; per_page (30, max 100), page, Link
//   GET   /repos/{o}/{r}/branches/{branch}         Branch {name, commit{sha, commit{message}}, protected}
//   POST  /repos/{o}/{r}/branches/{b}/rename       {new_name} -> 201 Branch (a real `git branch -m`);
//                                                  404 no branch; 422 new_name exists or invalid
//   GET   /repos/{o}/{r}/pulls                     ?state=open|closed|all, head=owner:branch, base;
//                                                  newest first; per_page, page, Link
//   POST  /repos/{o}/{r}/pulls                     {title, head, base, body?} -> 201 PullRequest; 422 when
//                                                  a branch is missing, head == base, or one is open already
//   GET   /repos/{o}/{r}/pulls/{n}                 PullRequest; 404
//   PATCH /repos/{o}/{r}/pulls/{n}                 {title?, body?, state? (open|closed), base?}
//   PUT   /repos/{o}/{r}/pulls/{n}/merge           {merge_method? (merge|squash), commit_title?, sha?} ->
//                                                  {sha, merged, message}: a real merge commit on base
//                                                  (git merge-tree); 405 closed/conflicting; 409 stale sha
//   DELETE /repos/{o}/{r}/git/refs/heads/{branch}  204; 422 "Reference does not exist"
//   GET   /orgs/{org}/repos, /users/{u}/repos      [Repository], oldest first; paginated
// Every API answer carries X-RateLimit-{Limit,Remaining,Used,Reset,Resource}.
// Auth: with Options::token set, `Authorization: Bearer <t>` or `token <t>`
// is required (401 "Requires authentication" / "Bad credentials"); git over
// HTTP then needs Basic auth whose password is the token (as an
// installation token: http://x-access-token:<t>@127.0.0.1:P/o/r.git).
//
// git: /{o}/{r}.git/... is `git http-backend` run as a CGI (upload-pack and
// receive-pack enabled). A push's ref changes (refs before vs after) become
// webhooks, like those of the rename API and of pull requests.
//
// Webhooks (Options::webhook_url, empty = none): `push` (ref, before, after,
// created, deleted, forced, commits, head_commit, repository, pusher,
// sender) for every branch changed, then `create` or `delete` (ref,
// ref_type "branch") for one created or deleted, and `pull_request`
// (action opened | edited | closed (merged true after a merge) | reopened |
// synchronize, number,
// pull_request, repository, sender). Headers: X-GitHub-Event,
// X-GitHub-Delivery (a GUID), X-GitHub-Hook-ID, X-Hub-Signature-256
// (sha256=<hex HMAC-SHA256 of the body keyed with the secret>, only with a
// secret), Content-Type: application/json, User-Agent: GitHub-Hookshot/fake.
// Sent in order from one thread; each recorded with the status the target
// answered (0 when it could not be reached: it is not retried).
//
// Faults: fail_next(n, status) answers the next n API requests with status;
// rate_limit_next(n) answers them 403 "API rate limit exceeded" with
// X-RateLimit-Remaining: 0 and a reset time; corrupt_next_signature() signs
// the next delivery wrongly; redeliver(id) sends a recorded delivery again
// with the same GUID and body (as GitHub's "Redeliver").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/value/error.hpp"
#include "base/value/value.hpp"
#include "tests/fakes/fake_http.hpp"

namespace anvil::fakes {

// "sha256=" + hex HMAC-SHA256 of body keyed with secret (X-Hub-Signature-256).
std::string github_signature(const std::string& secret, const std::string& body);

class GithubFake {
 public:
  struct Options {
    std::string root_dir;        // repositories live here (created; the caller removes it)
    std::string token;           // "" = no auth
    std::string webhook_url;     // "" = no webhooks
    std::string webhook_secret;  // "" = unsigned
    int threads = 4;             // a git clone holds one while http-backend runs
  };

  struct Delivery {
    std::string id;     // X-GitHub-Delivery
    std::string event;  // X-GitHub-Event
    std::string body;
    int status = 0;     // the target's answer; 0 = not reached (error says why)
    std::string error;
    bool redelivery = false;
  };

  explicit GithubFake(Options options);
  ~GithubFake();  // stop()
  GithubFake(const GithubFake&) = delete;
  GithubFake& operator=(const GithubFake&) = delete;

  // Listens on 127.0.0.1:port (0 = ephemeral). Once.
  void start(uint16_t port = 0);
  uint16_t port() const;
  // "http://127.0.0.1:<port>": the API base (routes at /repos/...).
  std::string base_url() const;
  // Stops serving, then sends the queued deliveries' remainder no more.
  void stop();
  FakeHttpServer& http() { return *server_; }

  // Test setup (no webhooks): a bare repository with one commit (README.md)
  // on default_branch; an existing one is kept.
  Status create_repo(const std::string& owner, const std::string& name, const std::string& default_branch = "main");
  // A branch at `from`'s head. git.not_found when `from` is missing.
  Status create_branch(const std::string& owner, const std::string& name, const std::string& branch,
                       const std::string& from);
  // Branch names, sorted, read from the bare repository.
  std::vector<std::string> branches(const std::string& owner, const std::string& name) const;
  // The branch's head sha, "" when it does not exist.
  std::string branch_sha(const std::string& owner, const std::string& name, const std::string& branch) const;
  std::string bare_path(const std::string& owner, const std::string& name) const;
  // http://127.0.0.1:<port>/<owner>/<name>.git (with the token as Basic
  // credentials when one is set and with_credentials).
  std::string clone_url(const std::string& owner, const std::string& name, bool with_credentials = false) const;
  void set_webhook(std::string url, std::string secret);

  // Faults.
  void fail_next(int n, int status = 500);
  void rate_limit_next(int n, std::chrono::seconds reset_in = std::chrono::seconds(60));
  void corrupt_next_signature();
  // Sends a recorded delivery again (same id, event and body); false when
  // no delivery has that id.
  bool redeliver(const std::string& delivery_id);

  std::vector<Delivery> deliveries() const;
  // Waits until at least n deliveries were attempted; false at the timeout.
  bool wait_for_deliveries(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  struct State;

 private:
  Options options_;
  std::shared_ptr<State> state_;
  std::unique_ptr<FakeHttpServer> server_;
};

}  // namespace anvil::fakes
