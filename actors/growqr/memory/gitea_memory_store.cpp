// L3 through Gitea's contents API (docs/growqr.md, "Memory"). One Gitea
// user per GrowQR user owns a private repository `growqr-memory`; the node
// acts with the admin token (GITEA_TOKEN), so no per-user token is stored.
#include <random>

#include "actors/growqr/memory/memory_store.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "base/value/json.hpp"

namespace anvil::growqr {
namespace {

Error unavailable(const std::string& what, const Error& cause) {
  return make_error("memory", "unavailable", what + ": " + cause.message,
                    obj({{"cause", cause.qualified()}, {"status", outbound_status(cause)}}));
}

std::string b64(const std::string& s) {
  return json::base64_encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

Result<std::string> unb64(std::string text) {
  std::erase_if(text, [](char ch) { return ch == '\n' || ch == '\r' || ch == ' '; });
  auto bytes = json::base64_decode(text);
  if (!bytes.ok()) return bytes.error();
  return std::string(bytes->begin(), bytes->end());
}

class GiteaMemoryStore final : public MemoryStore {
 public:
  GiteaMemoryStore(std::string url, std::string token, std::string owner, std::string repo, std::string email_domain)
      : url_(std::move(url)),
        token_(std::move(token)),
        owner_(std::move(owner)),
        repo_(std::move(repo)),
        email_domain_(std::move(email_domain)) {}

  std::string backend() const override { return "gitea"; }
  std::string location() const override { return url_ + "/" + owner_ + "/" + repo_; }

  Task<Status> ensure_ready(ActorContext& c) override {
    // Both creations are idempotent: "already exists" is success.
    std::string password(32, 'x');
    std::random_device rd;
    for (auto& ch : password) ch = "abcdefghijklmnopqrstuvwxyz0123456789"[rd() % 36];
    std::string post = "POST", users_path = "/admin/users", user_key = "mem-user-" + owner_;
    std::string user_body = json::dump(obj({{"username", owner_},
                                            {"email", owner_ + "@" + email_domain_},
                                            {"password", password},
                                            {"must_change_password", false},
                                            {"visibility", "private"}}));
    auto user = co_await call(c, post, users_path, user_body, user_key);
    if (!user.ok() && outbound_status(user.error()) != 422) co_return unavailable("creating Gitea user " + owner_, user.error());
    std::string repos_path = "/admin/users/" + owner_ + "/repos", repo_key = "mem-repo-" + owner_;
    std::string repo_body = json::dump(obj({{"name", repo_},
                                            {"private", true},
                                            {"auto_init", false},
                                            {"default_branch", "main"},
                                            {"description", "GrowQR long-term memory"}}));
    auto repo = co_await call(c, post, repos_path, repo_body, repo_key);
    if (!repo.ok() && outbound_status(repo.error()) != 409)
      co_return unavailable("creating repository " + owner_ + "/" + repo_, repo.error());
    co_return Ok{};
  }

  Task<Result<std::optional<MemoryFile>>> read(ActorContext& c, std::string path) override {
    std::string get = "GET", target = contents(path), none;
    auto r = co_await call(c, get, target, none, none);
    if (!r.ok()) {
      if (outbound_status(r.error()) == 404) co_return std::optional<MemoryFile>();
      co_return unavailable("reading " + path, r.error());
    }
    auto v = json::parse(r->body, false);
    if (!v.ok() || !v->is_object() || str_or(*v, "type") != "file")
      co_return std::optional<MemoryFile>();  // a directory (or not a file) at that path
    auto content = unb64(str_or(*v, "content"));
    if (!content.ok()) co_return make_error("memory", "unavailable", "Gitea sent content that is not base64.");
    co_return std::optional<MemoryFile>(MemoryFile{path, str_or(*v, "sha"), std::move(*content)});
  }

  Task<Result<std::vector<MemoryFile>>> list(ActorContext& c) override {
    std::vector<MemoryFile> out;
    std::vector<std::string> dirs = {""};
    while (!dirs.empty()) {
      std::string dir = dirs.back();
      dirs.pop_back();
      std::string get = "GET", none;
      std::string target = dir.empty() ? "/repos/" + owner_ + "/" + repo_ + "/contents" : contents(dir);
      auto r = co_await call(c, get, target, none, none);
      if (!r.ok()) {
        if (outbound_status(r.error()) == 404) continue;  // an empty repository has no root yet
        co_return unavailable("listing " + (dir.empty() ? "/" : dir), r.error());
      }
      auto v = json::parse(r->body, false);
      if (!v.ok() || !v->is_array()) continue;
      for (const auto& e : v->as_array()) {
        const std::string type = str_or(e, "type"), p = str_or(e, "path");
        if (type == "dir") dirs.push_back(p);
        else if (type == "file") out.push_back(MemoryFile{p, str_or(e, "sha"), ""});
      }
    }
    std::sort(out.begin(), out.end(), [](const MemoryFile& a, const MemoryFile& b) { return a.path < b.path; });
    co_return out;
  }

  Task<Result<MemoryWrite>> write(ActorContext& c, std::string path, std::string content, std::string expected_sha,
                                  std::string message, std::string key) override {
    Value body = obj({{"content", b64(content)}, {"message", message}, {"branch", "main"}});
    if (!expected_sha.empty()) body["sha"] = expected_sha;
    std::string method = expected_sha.empty() ? "POST" : "PUT", target = contents(path), text = json::dump(body);
    auto r = co_await call(c, method, target, text, key);
    if (!r.ok()) co_return mapped(r.error(), "writing " + path, !expected_sha.empty());
    auto v = json::parse(r->body, false);
    if (!v.ok()) co_return make_error("memory", "unavailable", "Gitea's answer to a write is not JSON.");
    co_return MemoryWrite{str_or(field_or_null(*v, "content"), "sha"), str_or(field_or_null(*v, "commit"), "sha")};
  }

  Task<Result<MemoryWrite>> remove(ActorContext& c, std::string path, std::string expected_sha, std::string message,
                                   std::string key) override {
    std::string method = "DELETE", target = contents(path);
    std::string text = json::dump(obj({{"sha", expected_sha}, {"message", message}, {"branch", "main"}}));
    auto r = co_await call(c, method, target, text, key);
    if (!r.ok()) co_return mapped(r.error(), "deleting " + path, true);
    auto v = json::parse(r->body, false);
    co_return MemoryWrite{"", v.ok() ? str_or(field_or_null(*v, "commit"), "sha") : ""};
  }

 private:
  std::string contents(const std::string& path) const {
    return "/repos/" + owner_ + "/" + repo_ + "/contents/" + path;
  }

  // 409, and 422 from an update (older Gitea answers a stale sha with 422)
  // or a create (the file exists), are conflicts the caller resolves by
  // re-reading; 404 on an update is a file that went away.
  static Error mapped(const Error& e, const std::string& what, bool update) {
    const int64_t st = outbound_status(e);
    if (st == 409 || st == 422)
      return make_error("memory", "conflict", what + ": the file changed meanwhile.", obj({{"status", st}}));
    if (st == 404 && update) return make_error("memory", "not_found", what + ": the file is gone.");
    return unavailable(what, e);
  }

  Task<Result<net::HttpResponse>> call(ActorContext& c, std::string method, std::string path, std::string body,
                                       std::string key) {
    net::HttpRequest req;
    req.method = std::move(method);
    req.url = url_ + "/api/v1" + path;
    req.headers = {{"Authorization", "token " + token_}, {"Accept", "application/json"}};
    if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
    req.body = std::move(body);
    req.idempotency_key = std::move(key);
    req.total_timeout = std::chrono::seconds(10);
    req.retry.max_attempts = 3;
    req.retry.retry_budget = std::chrono::seconds(25);
    co_return co_await c.http(std::move(req));
  }

  std::string url_, token_, owner_, repo_, email_domain_;
};

}  // namespace

std::unique_ptr<MemoryStore> make_gitea_memory_store(std::string url, std::string token, std::string owner,
                                                     std::string repo, std::string email_domain) {
  return std::make_unique<GiteaMemoryStore>(std::move(url), std::move(token), std::move(owner), std::move(repo),
                                            std::move(email_domain));
}

}  // namespace anvil::growqr
