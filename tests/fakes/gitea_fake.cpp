#include "tests/fakes/gitea_fake.hpp"

#include <ctime>
#include <filesystem>
#include <thread>

#include "base/value/json.hpp"

namespace anvil::fakes {
namespace {

constexpr std::string_view kApi = "/api/v1";

FakeResponse json_response(int status, const Value& v) { return FakeResponse::json(status, json::dump(v)); }

FakeResponse api_error(int status, const std::string& message) {
  return json_response(status, obj({{"message", message}, {"url", "http://127.0.0.1/api/swagger"}}));
}

std::string b64(const std::string& s) {
  return json::base64_encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

std::string str(const Value& v, std::string_view key) {
  const Value* f = v.is_object() ? v.find(std::string(key)) : nullptr;
  return f && f->is_string() ? f->as_string() : std::string();
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 40) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

FakeHttpServer::Options server_options(int threads) {
  FakeHttpServer::Options o;
  o.threads = threads;
  return o;
}

std::string head_of(const git::BareRepo& r) {
  auto h = r.head();
  return h.ok() ? *h : std::string();
}

}  // namespace

GiteaFake::GiteaFake(std::string root_dir) : GiteaFake(std::move(root_dir), Options{}) {}

GiteaFake::GiteaFake(std::string root_dir, Options options)
    : root_(std::move(root_dir)), options_(std::move(options)), server_(server_options(options_.threads)) {
  std::filesystem::create_directories(root_);
  server_.fallback([this](const RecordedRequest& req) { return handle(req); });
}

GiteaFake::~GiteaFake() { server_.stop(); }

std::string GiteaFake::url() const {
  std::string u = server_.url("");
  return u;
}

std::string GiteaFake::repo_dir(const std::string& owner, const std::string& repo) const {
  return root_ + "/" + owner + "/" + repo + ".git";
}

git::BareRepo GiteaFake::repo(const std::string& owner, const std::string& repo) const {
  return git::BareRepo(repo_dir(owner, repo));
}

bool GiteaFake::has_user(const std::string& name) const {
  std::lock_guard lk(mu_);
  return users_.count(name) > 0;
}

bool GiteaFake::has_repo(const std::string& owner, const std::string& repo) const {
  std::lock_guard lk(mu_);
  return repos_.count(owner + "/" + repo) > 0;
}

void GiteaFake::fail_next(int n, int status) {
  std::lock_guard lk(mu_);
  fail_left_ = n;
  fail_status_ = status;
}

void GiteaFake::hang_next(int n) {
  std::lock_guard lk(mu_);
  hang_left_ = n;
}

void GiteaFake::change_before_next_write(std::string owner, std::string repo, std::string path, std::string content) {
  std::lock_guard lk(mu_);
  change_ = Change{std::move(owner), std::move(repo), std::move(path), std::move(content)};
}

void GiteaFake::delay_write_answers(std::chrono::milliseconds d) {
  std::lock_guard lk(mu_);
  write_delay_ = d;
}

int GiteaFake::commits_made() const {
  std::lock_guard lk(mu_);
  return commits_;
}

std::optional<std::string> GiteaFake::caller(const RecordedRequest& req) const {
  auto auth = req.header("authorization");
  if (!auth) return std::nullopt;
  std::string token;
  if (auth->rfind("token ", 0) == 0) token = auth->substr(6);
  else if (auth->rfind("Bearer ", 0) == 0) token = auth->substr(7);
  else return std::nullopt;
  if (token == options_.admin_token) return std::string();
  std::lock_guard lk(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

Value GiteaFake::repo_json(const std::string& owner, const std::string& repo) const {
  const std::string full = owner + "/" + repo;
  return obj({{"id", static_cast<int64_t>(std::hash<std::string>{}(full) & 0xffffff)},
              {"name", repo},
              {"full_name", full},
              {"owner", obj({{"login", owner}, {"username", owner}})},
              {"private", true},
              {"empty", head_of(git::BareRepo(repo_dir(owner, repo))).empty()},
              {"default_branch", "main"},
              {"html_url", url() + "/" + full},
              {"clone_url", url() + "/" + full + ".git"},
              {"ssh_url", "git@127.0.0.1:" + full + ".git"}});
}

FakeResponse GiteaFake::handle(const RecordedRequest& req) {
  {
    std::unique_lock lk(mu_);
    if (hang_left_ > 0) {
      --hang_left_;
      return FakeResponse::hang();
    }
    if (fail_left_ > 0) {
      --fail_left_;
      return api_error(fail_status_, "injected failure");
    }
  }
  if (req.path.rfind(kApi, 0) != 0) return api_error(404, "not found");
  const auto seg = path_segments(std::string_view(req.path).substr(kApi.size()), false);
  if (seg.size() == 1 && seg[0] == "version" && req.method == "GET")
    return json_response(200, obj({{"version", "1.22.6+anvil-fake"}}));

  auto who = caller(req);
  if (!who) return api_error(401, "token is required");
  const bool admin = who->empty();
  Value body = Object{};
  if (!req.body.empty()) {
    auto parsed = json::parse(req.body, false);
    if (!parsed.ok() || !parsed->is_object()) return api_error(400, "invalid JSON body");
    body = *parsed;
  }

  // POST /admin/users
  if (seg.size() == 2 && seg[0] == "admin" && seg[1] == "users" && req.method == "POST") {
    if (!admin) return api_error(403, "must be an admin");
    const std::string name = str(body, "username");
    if (!valid_name(name)) return api_error(422, "invalid username");
    std::lock_guard lk(mu_);
    if (users_.count(name)) return api_error(422, "user already exists [name: " + name + "]");
    users_.insert(name);
    const int64_t id = next_id_++;
    return json_response(201, obj({{"id", id}, {"login", name}, {"username", name}, {"full_name", ""},
                                    {"email", str(body, "email")}, {"is_admin", false}, {"created", utc_now_iso()}}));
  }
  // POST /users/{u}/tokens
  if (seg.size() == 3 && seg[0] == "users" && seg[2] == "tokens" && req.method == "POST") {
    const std::string user = seg[1];
    if (!admin && *who != user) return api_error(403, "not your user");
    std::lock_guard lk(mu_);
    if (!users_.count(user)) return api_error(404, "user does not exist [name: " + user + "]");
    const int64_t id = next_id_++;
    std::string token = "tok" + std::to_string(id) + std::string(37 - std::to_string(id).size(), 'a');
    tokens_[token] = user;
    return json_response(201, obj({{"id", id}, {"name", str(body, "name")}, {"sha1", token},
                                   {"token_last_eight", token.substr(token.size() - 8)},
                                   {"scopes", body.find("scopes") ? *body.find("scopes") : Value(Array{})}}));
  }
  // POST /orgs
  if (seg.size() == 1 && seg[0] == "orgs" && req.method == "POST") {
    const std::string name = str(body, "username");
    if (!valid_name(name)) return api_error(422, "invalid org name");
    std::lock_guard lk(mu_);
    if (users_.count(name)) return api_error(422, "user already exists [name: " + name + "]");
    users_.insert(name);
    orgs_.insert(name);
    const int64_t id = next_id_++;
    return json_response(201, obj({{"id", id}, {"name", name}, {"username", name}, {"full_name", str(body, "full_name")},
                                   {"visibility", str(body, "visibility").empty() ? "private" : str(body, "visibility")}}));
  }
  // POST /admin/users/{u}/repos, POST /orgs/{org}/repos
  const bool admin_repo = seg.size() == 4 && seg[0] == "admin" && seg[1] == "users" && seg[3] == "repos";
  const bool org_repo = seg.size() == 3 && seg[0] == "orgs" && seg[2] == "repos";
  if ((admin_repo || org_repo) && req.method == "POST") {
    const std::string owner = admin_repo ? seg[2] : seg[1];
    if (admin_repo && !admin) return api_error(403, "must be an admin");
    const std::string name = str(body, "name");
    if (!valid_name(name)) return api_error(422, "invalid repository name");
    {
      std::lock_guard lk(mu_);
      if (!users_.count(owner)) return api_error(404, "user does not exist [name: " + owner + "]");
      if (org_repo && !orgs_.count(owner)) return api_error(404, "organization does not exist");
      if (repos_.count(owner + "/" + name)) return api_error(409, "The repository with the same name already exists.");
      repos_.insert(owner + "/" + name);
    }
    auto r = repo(owner, name);
    if (auto st = r.init(); !st.ok()) return api_error(500, st.error().message);
    const Value* auto_init = body.find("auto_init");
    if (auto_init && auto_init->is_bool() && auto_init->as_bool()) {
      auto w = r.write("README.md", "# " + name + "\n", git::WriteMode::create(), "Initial commit");
      if (!w.ok()) return api_error(500, w.error().message);
    }
    return json_response(201, repo_json(owner, name));
  }
  // /repos/{o}/{r}[/contents[/path...]]
  if (seg.size() >= 3 && seg[0] == "repos") {
    const std::string owner = seg[1], name = seg[2];
    {
      std::lock_guard lk(mu_);
      if (!repos_.count(owner + "/" + name)) return api_error(404, "repository does not exist");
    }
    if (!admin && *who != owner) return api_error(404, "repository does not exist");
    if (seg.size() == 3 && req.method == "GET") return json_response(200, repo_json(owner, name));
    if (seg.size() >= 4 && seg[3] == "contents") {
      std::string path;
      for (size_t i = 4; i < seg.size(); ++i) path += (path.empty() ? "" : "/") + seg[i];
      return contents(req, body, owner, name, path);
    }
  }
  return api_error(404, "not found");
}

Value GiteaFake::content_json(const std::string& owner, const std::string& repo, const std::string& path,
                              const std::string& sha, const std::string& type, const std::string* content,
                              int64_t size, const std::string& last_commit) const {
  const std::string base = url() + "/api/v1/repos/" + owner + "/" + repo;
  const std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  return obj({{"name", name},
              {"path", path},
              {"sha", sha},
              {"last_commit_sha", last_commit},
              {"type", type},
              {"size", size},
              {"encoding", content ? Value("base64") : Value()},
              {"content", content ? Value(b64(*content)) : Value()},
              {"target", Value()},
              {"url", base + "/contents/" + path + "?ref=main"},
              {"html_url", url() + "/" + owner + "/" + repo + "/src/branch/main/" + path},
              {"git_url", base + "/git/" + (type == "dir" ? "trees/" : "blobs/") + sha},
              {"download_url", type == "file" ? Value(url() + "/" + owner + "/" + repo + "/raw/branch/main/" + path) : Value()},
              {"submodule_git_url", Value()},
              {"_links", obj({{"self", base + "/contents/" + path + "?ref=main"},
                              {"git", base + "/git/blobs/" + sha},
                              {"html", url() + "/" + owner + "/" + repo + "/src/branch/main/" + path}})}});
}

Value GiteaFake::commit_json(const std::string& owner, const std::string& repo, const std::string& sha,
                             const std::string& message) const {
  const std::string base = url() + "/api/v1/repos/" + owner + "/" + repo;
  const Value who = obj({{"name", "anvil"}, {"email", "anvil@localhost"}, {"date", utc_now_iso()}});
  return obj({{"url", base + "/git/commits/" + sha},
              {"sha", sha},
              {"html_url", url() + "/" + owner + "/" + repo + "/commit/" + sha},
              {"author", who},
              {"committer", who},
              {"parents", Array{}},
              {"message", message},
              {"tree", obj({{"url", base + "/git/trees/" + sha}, {"sha", sha}})}});
}

FakeResponse GiteaFake::contents(const RecordedRequest& req, const Value& body, const std::string& owner,
                                 const std::string& name, const std::string& path) {
  git::BareRepo r = repo(owner, name);
  if (req.method == "GET") {
    if (r.is_dir(path)) {
      auto entries = r.list_dir(path);
      if (!entries.ok()) return api_error(404, "object does not exist [rel_path: " + path + "]");
      Array out;
      for (const auto& e : *entries) {
        const bool dir = !e.path.empty() && e.path.back() == '/';
        const std::string p = dir ? e.path.substr(0, e.path.size() - 1) : e.path;
        out.push_back(content_json(owner, name, p, e.sha, dir ? "dir" : "file", nullptr, 0, ""));
      }
      return json_response(200, Value(std::move(out)));
    }
    auto file = r.read(path);
    if (!file.ok()) return api_error(404, "object does not exist [id: , rel_path: " + path + "]");
    const std::string head = head_of(r);
    return json_response(200, content_json(owner, name, path, file->sha, "file", &file->content,
                                           static_cast<int64_t>(file->content.size()), head));
  }
  if (path.empty()) return api_error(422, "a file path is required");
  std::string message = str(body, "message");
  std::lock_guard write_lock(write_mu_);
  if (req.method == "PUT" || req.method == "DELETE") {
    std::optional<Change> change;
    {
      std::lock_guard lk(mu_);
      if (change_ && change_->owner == owner && change_->repo == name && change_->path == path) {
        change = std::move(change_);
        change_.reset();
      }
    }
    if (change) (void)r.write(path, change->content, git::WriteMode::upsert(), "concurrent writer");  // best effort
  }
  Result<git::WriteResult> w = make_error("git", "failed", "unsupported");
  std::string content;
  if (req.method == "POST" || req.method == "PUT") {
    auto decoded = json::base64_decode(str(body, "content"));
    if (!decoded.ok()) return api_error(422, "content is not valid base64");
    content.assign(decoded->begin(), decoded->end());
  }
  if (req.method == "POST") {
    if (message.empty()) message = "Add " + path;
    w = r.write(path, content, git::WriteMode::create(), message);
  } else if (req.method == "PUT") {
    const std::string sha = str(body, "sha");
    if (sha.empty()) return api_error(422, "[SHA]: Required");
    if (message.empty()) message = "Update " + path;
    w = r.write(path, content, git::WriteMode::update(sha), message);
  } else if (req.method == "DELETE") {
    const std::string sha = str(body, "sha");
    if (sha.empty()) return api_error(422, "[SHA]: Required");
    if (message.empty()) message = "Delete " + path;
    w = r.remove(path, sha, message);
  } else {
    return api_error(405, "method not allowed");
  }
  if (!w.ok()) {
    const std::string code = w.error().code;
    if (code == "exists") return api_error(422, "repository file already exists [path: " + path + "]");
    if (code == "conflict") return api_error(options_.stale_sha_status, w.error().message);
    if (code == "not_found") return api_error(404, "repository file does not exist [path: " + path + "]");
    return api_error(500, w.error().message);
  }
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lk(mu_);
    ++commits_;
    delay = write_delay_;
  }
  const Value commit = commit_json(owner, name, w->commit_sha, message);
  const Value verification =
      obj({{"verified", false}, {"reason", "gpg.error.not_signed_commit"}, {"signature", ""}, {"payload", ""}});
  if (req.method == "DELETE")
    return json_response(200, obj({{"content", Value()}, {"commit", commit}, {"verification", verification}})).after(delay);
  return json_response(req.method == "POST" ? 201 : 200,
                       obj({{"content", content_json(owner, name, path, w->blob_sha, "file", nullptr,
                                                     static_cast<int64_t>(content.size()), w->commit_sha)},
                            {"commit", commit},
                            {"verification", verification}}))
      .after(delay);
}

}  // namespace anvil::fakes
