#include "tests/fakes/github_fake.hpp"

#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <set>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "base/git/bare_repo.hpp"
#include "base/net/url.hpp"
#include "base/proc/process.hpp"
#include "base/value/asio.hpp"
#include "base/value/json.hpp"

namespace anvil::fakes {
namespace fs = std::filesystem;

namespace {

constexpr const char* kZeroSha = "0000000000000000000000000000000000000000";
constexpr const char* kDocs = "https://docs.github.com/rest";
constexpr int kRateLimit = 5000;

std::string hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) out += digits[p[i] >> 4], out += digits[p[i] & 15];
  return out;
}

std::string guid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  const std::string h = hex(b, sizeof b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::map<std::string, std::string> query_of(const std::string& target) {
  std::map<std::string, std::string> q;
  const auto qm = target.find('?');
  if (qm == std::string::npos) return q;
  std::string_view rest(target);
  rest.remove_prefix(qm + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    auto eq = kv.find('=');
    q[net::percent_decode(kv.substr(0, eq), true)] =
        eq == std::string_view::npos ? "" : net::percent_decode(kv.substr(eq + 1), true);
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return q;
}

std::string str(const Value& v, std::string_view key) {
  const Value* f = v.is_object() ? v.find(key) : nullptr;
  return f && f->is_string() ? f->as_string() : std::string();
}

bool has_string(const Value& v, std::string_view key) {
  const Value* f = v.is_object() ? v.find(key) : nullptr;
  return f && f->is_string();
}

// `git --git-dir=<dir> args...` with no user or system configuration.
proc::RunOutput git(const std::string& dir, std::vector<std::string> args) {
  proc::RunSpec spec;
  spec.argv = {"git", "--git-dir=" + dir};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {"PATH=" + proc::path_env(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
              "GIT_TERMINAL_PROMPT=0", "HOME=/nonexistent", "GIT_AUTHOR_NAME=GitHub", "GIT_AUTHOR_EMAIL=noreply@github.com",
              "GIT_COMMITTER_NAME=GitHub", "GIT_COMMITTER_EMAIL=noreply@github.com"};
  spec.timeout = std::chrono::seconds(30);
  auto r = proc::run(spec);
  if (!r.ok()) {
    proc::RunOutput failed;
    failed.err = r.error().message;
    return failed;
  }
  return std::move(*r);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// refs/heads/<name> -> sha, read from the bare repository.
std::map<std::string, std::string> heads_of(const std::string& dir) {
  std::map<std::string, std::string> refs;
  auto r = git(dir, {"for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/"});
  std::string_view out = r.out;
  while (!out.empty()) {
    auto nl = out.find('\n');
    std::string_view line = out.substr(0, nl);
    auto sp = line.rfind(' ');
    if (sp != std::string_view::npos) refs[std::string(line.substr(0, sp))] = std::string(line.substr(sp + 1));
    if (nl == std::string_view::npos) break;
    out.remove_prefix(nl + 1);
  }
  return refs;
}

struct PullRequest {
  int64_t number = 0, id = 0;
  std::string title, body, head, base, head_sha, state = "open";
  std::string created_at, updated_at, closed_at;
  bool merged = false;
  std::string merged_at, merge_commit_sha;
};

struct RepoMeta {
  int64_t id = 0;
  std::string owner, name, default_branch;
  std::vector<PullRequest> pulls;  // by number - 1
};

struct Outgoing {
  std::string id, event, body, url, secret;
  bool corrupt = false, redelivery = false;
};

}  // namespace

std::string github_signature(const std::string& secret, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &len);
  return "sha256=" + hex(mac, len);
}

struct GithubFake::State {
  std::string root;
  std::string token;
  std::atomic<uint16_t> port{0};

  mutable std::mutex mu;
  std::map<std::string, RepoMeta> repos;  // GUARDED_BY(mu)  "owner/name"
  int64_t next_id = 1000;                 // GUARDED_BY(mu)
  int fail_left = 0, fail_status = 500;   // GUARDED_BY(mu)
  int limited_left = 0;                   // GUARDED_BY(mu)
  std::time_t limit_reset = 0;            // GUARDED_BY(mu)
  int64_t requests_made = 0;              // GUARDED_BY(mu)
  std::string hook_url, hook_secret;      // GUARDED_BY(mu)
  bool corrupt_next = false;              // GUARDED_BY(mu)

  // One ref-changing operation at a time (a push, a rename): the refs it
  // compares before and after are its own.
  std::mutex ref_mu;

  // Deliveries: queued in event order, sent by `sender`.
  mutable std::mutex dmu;
  mutable std::condition_variable dcv;
  std::deque<Outgoing> queue;          // GUARDED_BY(dmu)
  std::vector<Delivery> delivered;     // GUARDED_BY(dmu)
  std::map<std::string, Outgoing> sent_by_id;  // GUARDED_BY(dmu)
  bool stopping = false;               // GUARDED_BY(dmu)
  std::thread sender;

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port.load()); }
  std::string bare(const std::string& owner, const std::string& name) const {
    return root + "/" + owner + "/" + name + ".git";
  }

  // ---- JSON shapes ---------------------------------------------------------

  Value user_json(const std::string& login) const {
    return obj({{"login", login},
                {"id", int64_t(1)},
                {"type", "User"},
                {"url", base() + "/users/" + login},
                {"html_url", base() + "/" + login}});
  }

  Value repo_json(const RepoMeta& m) const {
    const std::string full = m.owner + "/" + m.name;
    return obj({{"id", m.id},
                {"node_id", "R_" + std::to_string(m.id)},
                {"name", m.name},
                {"full_name", full},
                {"private", false},
                {"visibility", "public"},
                {"owner", user_json(m.owner)},
                {"html_url", base() + "/" + full},
                {"description", nullptr},
                {"fork", false},
                {"url", base() + "/repos/" + full},
                {"clone_url", base() + "/" + full + ".git"},
                {"git_url", base() + "/" + full + ".git"},
                {"default_branch", m.default_branch},
                {"archived", false},
                {"disabled", false}});
  }

  Value branch_json(const RepoMeta& m, const std::string& name, const std::string& sha) const {
    const std::string full = m.owner + "/" + m.name;
    std::string message;
    auto log = git(bare(m.owner, m.name), {"log", "-1", "--format=%s", sha});
    if (log.exit_code == 0) message = trim(log.out);
    return obj({{"name", name},
                {"commit", obj({{"sha", sha},
                                {"url", base() + "/repos/" + full + "/commits/" + sha},
                                {"commit", obj({{"message", message}})}})},
                {"protected", false},
                {"_links", obj({{"self", base() + "/repos/" + full + "/branches/" + name},
                                {"html", base() + "/" + full + "/tree/" + name}})}});
  }

  Value pull_json(const RepoMeta& m, const PullRequest& p) const {
    const std::string full = m.owner + "/" + m.name;
    const auto heads = heads_of(bare(m.owner, m.name));
    auto sha_of = [&](const std::string& branch, const std::string& fallback) {
      auto it = heads.find("refs/heads/" + branch);
      return it == heads.end() ? fallback : it->second;
    };
    auto side = [&](const std::string& ref, const std::string& sha) {
      return obj({{"label", m.owner + ":" + ref},
                  {"ref", ref},
                  {"sha", sha},
                  {"user", user_json(m.owner)},
                  {"repo", repo_json(m)}});
    };
    const std::string head_sha = p.state == "open" ? sha_of(p.head, p.head_sha) : p.head_sha;
    return obj({{"url", base() + "/repos/" + full + "/pulls/" + std::to_string(p.number)},
                {"id", p.id},
                {"node_id", "PR_" + std::to_string(p.id)},
                {"html_url", base() + "/" + full + "/pull/" + std::to_string(p.number)},
                {"number", p.number},
                {"state", p.state},
                {"locked", false},
                {"title", p.title},
                {"user", user_json(m.owner)},
                {"body", p.body.empty() ? Value(nullptr) : Value(p.body)},
                {"created_at", p.created_at},
                {"updated_at", p.updated_at},
                {"closed_at", p.closed_at.empty() ? Value(nullptr) : Value(p.closed_at)},
                {"merged_at", p.merged_at.empty() ? Value(nullptr) : Value(p.merged_at)},
                {"merge_commit_sha", p.merge_commit_sha.empty() ? Value(nullptr) : Value(p.merge_commit_sha)},
                {"draft", false},
                {"head", side(p.head, head_sha)},
                {"base", side(p.base, sha_of(p.base, ""))},
                {"merged", p.merged},
                {"mergeable", p.state == "open" ? Value(true) : Value(nullptr)},
                {"comments", int64_t(0)}});
  }

  // ---- webhooks -----------------------------------------------------------

  // Queues one delivery of `event` (nothing without a webhook URL).
  void emit(const std::string& event, Value payload) {
    Outgoing out;
    {
      std::lock_guard lock(mu);
      if (hook_url.empty()) return;
      out.url = hook_url;
      out.secret = hook_secret;
      out.corrupt = corrupt_next;
      corrupt_next = false;
    }
    out.id = guid();
    out.event = event;
    out.body = json::dump(payload);
    std::lock_guard lock(dmu);
    queue.push_back(std::move(out));
    dcv.notify_all();
  }

  // The webhooks of a set of branch changes in `m` (before/after: refs/heads/x -> sha).
  void emit_ref_changes(const RepoMeta& m, const std::map<std::string, std::string>& before,
                        const std::map<std::string, std::string>& after, const std::vector<PullRequest>& open_pulls) {
    std::set<std::string> refs;
    for (const auto& [r, s] : before) refs.insert(r);
    for (const auto& [r, s] : after) refs.insert(r);
    const std::string dir = bare(m.owner, m.name);
    const Value repo = repo_json(m);
    for (const auto& ref : refs) {
      auto b = before.find(ref);
      auto a = after.find(ref);
      const std::string old_sha = b == before.end() ? kZeroSha : b->second;
      const std::string new_sha = a == after.end() ? kZeroSha : a->second;
      if (old_sha == new_sha) continue;
      const bool created = b == before.end(), deleted = a == after.end();
      const std::string branch = ref.substr(std::string("refs/heads/").size());

      Array commits;
      Value head_commit = nullptr;
      if (!deleted) {
        // A new branch lists its head commit; an update what it added (at most 20).
        auto log = git(dir, {"log", "--reverse", "--format=%H%x00%s%x00%an%x00%ae%x00%cI", created ? "-n1" : "-n20",
                             created ? new_sha : old_sha + ".." + new_sha});
        std::string_view rest = log.out;
        while (!rest.empty()) {
          auto nl = rest.find('\n');
          std::string line(rest.substr(0, nl));
          std::vector<std::string> f;
          size_t pos = 0;
          for (auto z = line.find('\0'); ; z = line.find('\0', pos)) {
            f.push_back(line.substr(pos, z == std::string::npos ? std::string::npos : z - pos));
            if (z == std::string::npos) break;
            pos = z + 1;
          }
          if (f.size() == 5)
            commits.push_back(obj({{"id", f[0]},
                                   {"tree_id", ""},
                                   {"distinct", true},
                                   {"message", f[1]},
                                   {"timestamp", f[4]},
                                   {"url", base() + "/" + m.owner + "/" + m.name + "/commit/" + f[0]},
                                   {"author", obj({{"name", f[2]}, {"email", f[3]}})}}));
          if (nl == std::string_view::npos) break;
          rest.remove_prefix(nl + 1);
        }
        if (!commits.empty()) head_commit = commits.back();
      }
      const bool forced = !created && !deleted &&
                          git(dir, {"merge-base", "--is-ancestor", old_sha, new_sha}).exit_code != 0;
      emit("push", obj({{"ref", ref},
                        {"before", old_sha},
                        {"after", new_sha},
                        {"created", created},
                        {"deleted", deleted},
                        {"forced", forced},
                        {"base_ref", nullptr},
                        {"compare", base() + "/" + m.owner + "/" + m.name + "/compare/" + old_sha.substr(0, 12) +
                                        "..." + new_sha.substr(0, 12)},
                        {"commits", Value(std::move(commits))},
                        {"head_commit", head_commit},
                        {"repository", repo},
                        {"pusher", obj({{"name", m.owner}, {"email", nullptr}})},
                        {"sender", user_json(m.owner)}}));
      if (created || deleted)
        emit(created ? "create" : "delete", obj({{"ref", branch},
                                                  {"ref_type", "branch"},
                                                  {"master_branch", m.default_branch},
                                                  {"description", nullptr},
                                                  {"pusher_type", "user"},
                                                  {"repository", repo},
                                                  {"sender", user_json(m.owner)}}));
      if (!created && !deleted)
        for (const auto& p : open_pulls)
          if (p.head == branch) emit_pull("synchronize", m, p, Value());
    }
  }

  void emit_pull(const std::string& action, const RepoMeta& m, const PullRequest& p, Value changes) {
    Value payload = obj({{"action", action}, {"number", p.number}, {"pull_request", pull_json(m, p)}});
    if (!changes.is_null()) payload["changes"] = std::move(changes);
    payload["repository"] = repo_json(m);
    payload["sender"] = user_json(m.owner);
    emit("pull_request", std::move(payload));
  }

  // POSTs one delivery; the status the target answered, 0 with `error` set
  // when it could not be reached.
  static int post(const Outgoing& d, std::string& error) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    try {
      auto url = net::parse_url(d.url);
      if (!url.ok() || url->tls) {
        error = url.ok() ? "only http:// webhook URLs are supported" : url.error().message;
        return 0;
      }
      asio::io_context io;
      asio::ip::tcp::resolver resolver(io);
      beast::tcp_stream stream(io);
      stream.expires_after(std::chrono::seconds(10));
      stream.connect(resolver.resolve(url->host, std::to_string(url->port)));
      http::request<http::string_body> req{http::verb::post, url->target, 11};
      req.set(http::field::host, url->authority);
      req.set(http::field::user_agent, "GitHub-Hookshot/fake");
      req.set(http::field::content_type, "application/json");
      req.set("X-GitHub-Event", d.event);
      req.set("X-GitHub-Delivery", d.id);
      req.set("X-GitHub-Hook-ID", "1");
      req.set("X-GitHub-Hook-Installation-Target-Type", "repository");
      if (!d.secret.empty()) {
        std::string sig = github_signature(d.secret, d.body);
        if (d.corrupt) sig.back() = sig.back() == '0' ? '1' : '0';
        req.set("X-Hub-Signature-256", sig);
      }
      req.body() = d.body;
      req.prepare_payload();
      http::write(stream, req);
      beast::flat_buffer buf;
      http::response<http::string_body> res;
      http::read(stream, buf, res);
      beast::error_code ec;
      stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      return static_cast<int>(res.result_int());
    } catch (const std::exception& e) {
      error = e.what();
      return 0;
    }
  }

  void send_loop() {
    for (;;) {
      Outgoing d;
      {
        std::unique_lock lock(dmu);
        dcv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        d = std::move(queue.front());
        queue.pop_front();
      }
      Delivery rec{d.id, d.event, d.body, 0, "", d.redelivery};
      rec.status = post(d, rec.error);
      std::lock_guard lock(dmu);
      sent_by_id[d.id] = d;
      delivered.push_back(std::move(rec));
      dcv.notify_all();
    }
  }
};

namespace {

using State = GithubFake::State;

Headers rate_headers(int remaining, std::time_t reset) {
  return {{"X-RateLimit-Limit", std::to_string(kRateLimit)},
          {"X-RateLimit-Remaining", std::to_string(remaining)},
          {"X-RateLimit-Used", std::to_string(kRateLimit - remaining)},
          {"X-RateLimit-Reset", std::to_string(reset)},
          {"X-RateLimit-Resource", "core"},
          {"X-GitHub-Media-Type", "github.v3; format=json"},
          {"X-GitHub-Request-Id", guid().substr(0, 18)}};
}

FakeResponse gh_json(int status, const Value& v) { return FakeResponse::json(status, json::dump(v)); }

FakeResponse gh_error(int status, const std::string& message, const std::string& docs = kDocs) {
  return gh_json(status, obj({{"message", message}, {"documentation_url", docs}}));
}

FakeResponse validation_failed(const std::string& resource, const std::string& field, const std::string& code,
                               const std::string& message = "") {
  Value err = obj({{"resource", resource}, {"field", field}, {"code", code}});
  if (!message.empty()) err["message"] = message;
  return gh_json(422, obj({{"message", "Validation Failed"}, {"errors", arr({err})}, {"documentation_url", kDocs}}));
}

// The page of `items` the query asks for, and its Link header (GitHub's
// rel="next|last|first|prev" URLs).
std::pair<Array, std::string> paginate(const Array& items, const RecordedRequest& req, const std::string& base) {
  auto q = query_of(req.target);
  int per_page = 30, page = 1;
  try {
    if (q.count("per_page")) per_page = std::clamp(std::stoi(q["per_page"]), 1, 100);
    if (q.count("page")) page = std::max(1, std::stoi(q["page"]));
  } catch (const std::exception&) {
  }
  const int total = static_cast<int>(items.size());
  const int last = std::max(1, (total + per_page - 1) / per_page);
  Array out;
  for (int i = (page - 1) * per_page; i < std::min(total, page * per_page); ++i) out.push_back(items[i]);
  auto link_to = [&](int p, const char* rel) {
    auto params = q;
    params["per_page"] = std::to_string(per_page);
    params["page"] = std::to_string(p);
    std::string url = base + req.path + "?";
    bool first = true;
    for (const auto& [k, v] : params) url += (first ? "" : "&") + k + "=" + v, first = false;
    return "<" + url + ">; rel=\"" + rel + "\"";
  };
  std::vector<std::string> links;
  if (page > 1) links.push_back(link_to(page - 1, "prev"));
  if (page < last) links.push_back(link_to(page + 1, "next"));
  if (page < last) links.push_back(link_to(last, "last"));
  if (page > 1) links.push_back(link_to(1, "first"));
  std::string link;
  for (const auto& l : links) link += (link.empty() ? "" : ", ") + l;
  return {std::move(out), link};
}

bool valid_branch_name(const std::string& dir, const std::string& name) {
  if (name.empty()) return false;
  return git(dir, {"check-ref-format", "refs/heads/" + name}).exit_code == 0;
}

// `git http-backend` as a CGI for one request.
FakeResponse git_http(State& st, const RecordedRequest& req, const std::string& owner, const std::string& name) {
  if (!st.token.empty()) {
    auto auth = req.header("authorization");
    bool ok = false;
    if (auth && auth->starts_with("Basic ")) {
      auto decoded = json::base64_decode(auth->substr(6));
      if (decoded.ok()) {
        std::string creds(decoded->begin(), decoded->end());
        ok = creds.substr(creds.find(':') + 1) == st.token;
      }
    }
    if (!ok)
      return FakeResponse::text(401, "Invalid username or token.\n")
          .with_header("WWW-Authenticate", "Basic realm=\"GitHub\"");
  }
  {
    std::lock_guard lock(st.mu);
    if (!st.repos.count(owner + "/" + name)) return FakeResponse::text(404, "Repository not found.\n");
  }
  const bool push = req.method == "POST" && req.path.ends_with("/git-receive-pack");
  std::unique_lock<std::mutex> ref_lock(st.ref_mu, std::defer_lock);
  std::map<std::string, std::string> before;
  if (push) {
    ref_lock.lock();
    before = heads_of(st.bare(owner, name));
  }

  proc::RunSpec spec;
  spec.argv = {"git", "http-backend"};
  const auto qm = req.target.find('?');
  spec.env = {"PATH=" + proc::path_env(),
              "GIT_CONFIG_NOSYSTEM=1",
              "GIT_CONFIG_GLOBAL=/dev/null",
              "HOME=/nonexistent",
              "GIT_PROJECT_ROOT=" + st.root,
              "GIT_HTTP_EXPORT_ALL=1",
              "GIT_CONFIG_COUNT=1",
              "GIT_CONFIG_KEY_0=http.receivepack",
              "GIT_CONFIG_VALUE_0=true",
              "REMOTE_USER=" + owner,
              "REMOTE_ADDR=127.0.0.1",
              "GATEWAY_INTERFACE=CGI/1.1",
              "SERVER_PROTOCOL=HTTP/1.1",
              "REQUEST_METHOD=" + req.method,
              "PATH_INFO=" + req.path,
              "QUERY_STRING=" + (qm == std::string::npos ? std::string() : req.target.substr(qm + 1)),
              "CONTENT_LENGTH=" + std::to_string(req.body.size())};
  if (auto ct = req.header("content-type")) spec.env.push_back("CONTENT_TYPE=" + *ct);
  if (auto ce = req.header("content-encoding")) spec.env.push_back("HTTP_CONTENT_ENCODING=" + *ce);
  if (auto gp = req.header("git-protocol")) {
    spec.env.push_back("HTTP_GIT_PROTOCOL=" + *gp);
    spec.env.push_back("GIT_PROTOCOL=" + *gp);
  }
  spec.stdin_data = req.body;
  spec.timeout = std::chrono::seconds(120);
  auto r = proc::run(spec);
  if (!r.ok()) return FakeResponse::text(500, r.error().message);

  // CGI output: headers (Status: gives the status), a blank line, the body.
  FakeResponse res;
  res.status = 200;
  std::string& out = r->out;
  size_t head_end = out.find("\r\n\r\n");
  size_t body_at = head_end == std::string::npos ? std::string::npos : head_end + 4;
  if (head_end == std::string::npos) {
    head_end = out.find("\n\n");
    body_at = head_end == std::string::npos ? std::string::npos : head_end + 2;
  }
  if (head_end == std::string::npos) return FakeResponse::text(500, "git http-backend: " + r->err);
  std::string_view head(out.data(), head_end);
  while (!head.empty()) {
    auto nl = head.find('\n');
    std::string line(head.substr(0, nl));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string key = line.substr(0, colon), value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (key == "Status")
        res.status = std::atoi(value.c_str());
      else if (key != "Content-Length")  // the server frames the body itself
        res.headers.emplace_back(key, value);
    }
    if (nl == std::string_view::npos) break;
    head.remove_prefix(nl + 1);
  }
  res.body = out.substr(body_at);

  if (push) {
    const auto after = heads_of(st.bare(owner, name));
    ref_lock.unlock();
    if (after != before) {
      RepoMeta m;
      std::vector<PullRequest> open;
      {
        std::lock_guard lock(st.mu);
        m = st.repos[owner + "/" + name];
        for (const auto& p : m.pulls)
          if (p.state == "open") open.push_back(p);
      }
      st.emit_ref_changes(m, before, after, open);
    }
  }
  return res;
}

std::string auth_failure(const State& st, const RecordedRequest& req) {
  if (st.token.empty()) return "";
  auto auth = req.header("authorization");
  if (!auth) return "Requires authentication";
  for (const char* scheme : {"Bearer ", "token ", "bearer "})
    if (auth->starts_with(scheme) && auth->substr(std::string(scheme).size()) == st.token) return "";
  return "Bad credentials";
}

// PUT /repos/{o}/{r}/pulls/{n}/merge {commit_title?, commit_message?, merge_method? (merge|squash), sha?}:
// a real merge commit (or a squash commit) on the base branch, computed
// with `git merge-tree --write-tree`; 405 when closed or conflicting, 409
// when `sha` is not the head.
FakeResponse merge(State& st, const RecordedRequest& req, const Value& body, RepoMeta meta, const std::string& n_text) {
  (void)req;
  const std::string key = meta.owner + "/" + meta.name, dir = st.bare(meta.owner, meta.name);
  int64_t n = 0;
  try {
    n = std::stoll(n_text);
  } catch (const std::exception&) {
  }
  if (n < 1 || n > static_cast<int64_t>(meta.pulls.size())) return gh_error(404, "Not Found");
  const std::string method = has_string(body, "merge_method") ? str(body, "merge_method") : "merge";
  if (method != "merge" && method != "squash") return validation_failed("PullRequest", "merge_method", "invalid");
  std::map<std::string, std::string> before, after;
  PullRequest p;
  std::vector<PullRequest> open;
  {
    std::lock_guard ref_lock(st.ref_mu);
    {
      std::lock_guard lock(st.mu);
      p = st.repos[key].pulls[n - 1];
    }
    if (p.state != "open") return gh_error(405, "Pull Request is not mergeable");
    before = heads_of(dir);
    auto h = before.find("refs/heads/" + p.head);
    auto b = before.find("refs/heads/" + p.base);
    if (h == before.end() || b == before.end()) return gh_error(405, "Pull Request is not mergeable");
    if (has_string(body, "sha") && str(body, "sha") != h->second)
      return gh_error(409, "Head branch was modified. Review and try the merge again.");
    auto tree = git(dir, {"merge-tree", "--write-tree", b->second, h->second});
    if (tree.exit_code != 0) return gh_error(405, "Pull Request is not mergeable");
    const std::string tree_sha = trim(tree.out).substr(0, 40);
    std::string title = has_string(body, "commit_title") ? str(body, "commit_title")
                        : method == "squash"             ? p.title + " (#" + std::to_string(p.number) + ")"
                                             : "Merge pull request #" + std::to_string(p.number) + " from " +
                                                   meta.owner + "/" + p.head;
    const std::string message = title + (has_string(body, "commit_message") ? "\n\n" + str(body, "commit_message") : "");
    std::vector<std::string> args = {"commit-tree", tree_sha, "-p", b->second};
    if (method == "merge") args.insert(args.end(), {"-p", h->second});
    args.insert(args.end(), {"-m", message});
    auto commit = git(dir, args);
    if (commit.exit_code != 0) return gh_error(500, "git commit-tree failed: " + commit.err);
    const std::string sha = trim(commit.out);
    auto moved = git(dir, {"update-ref", "refs/heads/" + p.base, sha, b->second});
    if (moved.exit_code != 0) return gh_error(409, "Base branch was modified. Review and try the merge again.");
    after = heads_of(dir);
    std::lock_guard lock(st.mu);
    RepoMeta& m = st.repos[key];
    PullRequest& cur = m.pulls[n - 1];
    cur.state = "closed";
    cur.merged = true;
    cur.merged_at = cur.closed_at = cur.updated_at = utc_now_iso();
    cur.merge_commit_sha = sha;
    cur.head_sha = h->second;
    p = cur;
    for (const auto& o : m.pulls)
      if (o.state == "open") open.push_back(o);
    meta = m;
  }
  st.emit_ref_changes(meta, before, after, open);
  st.emit_pull("closed", meta, p, Value());
  return gh_json(200, obj({{"sha", p.merge_commit_sha}, {"merged", true}, {"message", "Pull Request successfully merged"}}));
}

// GET /orgs/{org}/repos, /users/{user}/repos: the owner's repositories, oldest first.
FakeResponse owner_repos(State& st, const RecordedRequest& req, const std::string& owner) {
  Array items;
  {
    std::lock_guard lock(st.mu);
    std::vector<const RepoMeta*> mine;
    for (const auto& [k, m] : st.repos)
      if (m.owner == owner) mine.push_back(&m);
    std::sort(mine.begin(), mine.end(), [](const RepoMeta* a, const RepoMeta* b) { return a->id < b->id; });
    for (const RepoMeta* m : mine) items.push_back(st.repo_json(*m));
  }
  auto [page, link] = paginate(items, req, st.base());
  FakeResponse res = gh_json(200, Value(std::move(page)));
  if (!link.empty()) res.headers.emplace_back("Link", link);
  return res;
}

FakeResponse api(State& st, const RecordedRequest& req, const std::vector<std::string>& seg) {
  const std::string owner = seg[1], name = seg[2], key = owner + "/" + name;
  const std::string dir = st.bare(owner, name);
  RepoMeta meta;
  {
    std::lock_guard lock(st.mu);
    auto it = st.repos.find(key);
    if (it == st.repos.end()) return gh_error(404, "Not Found");
    meta = it->second;
  }
  Value body;
  if (req.method == "POST" || req.method == "PATCH" || req.method == "PUT") {
    auto parsed = json::parse(req.body.empty() ? "{}" : req.body, false);
    if (!parsed.ok() || !parsed->is_object()) return gh_error(400, "Problems parsing JSON");
    body = std::move(*parsed);
  }

  // /repos/{o}/{r}
  if (seg.size() == 3) {
    if (req.method != "GET") return gh_error(404, "Not Found");
    return gh_json(200, st.repo_json(meta));
  }

  // /repos/{o}/{r}/branches[/{branch}[/rename]]
  if (seg[3] == "branches") {
    if (seg.size() == 4) {
      if (req.method != "GET") return gh_error(404, "Not Found");
      Array items;
      for (const auto& [ref, sha] : heads_of(dir)) items.push_back(st.branch_json(meta, ref.substr(11), sha));
      auto [page, link] = paginate(items, req, st.base());
      FakeResponse res = gh_json(200, Value(std::move(page)));
      if (!link.empty()) res.headers.emplace_back("Link", link);
      return res;
    }
    const bool rename = req.method == "POST" && seg.back() == "rename" && seg.size() >= 6;
    std::string branch;
    for (size_t i = 4; i < seg.size() - (rename ? 1 : 0); ++i) branch += (branch.empty() ? "" : "/") + seg[i];
    if (!rename) {
      if (req.method != "GET") return gh_error(404, "Not Found");
      const auto heads = heads_of(dir);
      auto it = heads.find("refs/heads/" + branch);
      if (it == heads.end()) return gh_error(404, "Branch not found");
      return gh_json(200, st.branch_json(meta, branch, it->second));
    }
    if (!has_string(body, "new_name")) return validation_failed("Branch", "new_name", "missing_field");
    const std::string new_name = str(body, "new_name");
    std::map<std::string, std::string> before, after;
    std::vector<PullRequest> open;
    {
      std::lock_guard ref_lock(st.ref_mu);
      before = heads_of(dir);
      if (!before.count("refs/heads/" + branch)) return gh_error(404, "Branch not found");
      if (!valid_branch_name(dir, new_name)) return validation_failed("Branch", "new_name", "invalid");
      if (before.count("refs/heads/" + new_name))
        return validation_failed("Branch", "new_name", "already_exists", "Branch " + new_name + " already exists");
      auto mv = git(dir, {"branch", "-m", branch, new_name});
      if (mv.exit_code != 0) return gh_error(500, "git branch -m failed: " + mv.err);
      after = heads_of(dir);
      // The default branch and the pull requests on the branch follow it.
      std::lock_guard lock(st.mu);
      RepoMeta& m = st.repos[key];
      if (m.default_branch == branch) m.default_branch = new_name;
      for (auto& p : m.pulls) {
        if (p.head == branch) p.head = new_name;
        if (p.base == branch) p.base = new_name;
        if (p.state == "open") open.push_back(p);
      }
      meta = m;
    }
    st.emit_ref_changes(meta, before, after, open);
    return gh_json(201, st.branch_json(meta, new_name, after["refs/heads/" + new_name]));
  }

  // /repos/{o}/{r}/pulls[/{n}]
  if (seg[3] == "pulls") {
    if (seg.size() == 4 && req.method == "GET") {
      auto q = query_of(req.target);
      const std::string state = q.count("state") ? q["state"] : "open";
      if (state != "open" && state != "closed" && state != "all")
        return validation_failed("PullRequest", "state", "invalid");
      std::string head = q.count("head") ? q["head"] : "";
      if (auto c = head.find(':'); c != std::string::npos) head = head.substr(c + 1);
      Array items;
      for (auto it = meta.pulls.rbegin(); it != meta.pulls.rend(); ++it) {
        if (state != "all" && it->state != state) continue;
        if (!head.empty() && it->head != head) continue;
        if (q.count("base") && it->base != q["base"]) continue;
        items.push_back(st.pull_json(meta, *it));
      }
      auto [page, link] = paginate(items, req, st.base());
      FakeResponse res = gh_json(200, Value(std::move(page)));
      if (!link.empty()) res.headers.emplace_back("Link", link);
      return res;
    }
    if (seg.size() == 4 && req.method == "POST") {
      for (const char* f : {"title", "head", "base"})
        if (!has_string(body, f)) return validation_failed("PullRequest", f, "missing_field");
      std::string head = str(body, "head");
      if (auto c = head.find(':'); c != std::string::npos) head = head.substr(c + 1);
      const std::string base = str(body, "base");
      const auto heads = heads_of(dir);
      if (!heads.count("refs/heads/" + base)) return validation_failed("PullRequest", "base", "invalid");
      if (!heads.count("refs/heads/" + head)) return validation_failed("PullRequest", "head", "invalid");
      if (head == base)
        return validation_failed("PullRequest", "head", "custom", "No commits between " + base + " and " + head);
      PullRequest p;
      {
        std::lock_guard lock(st.mu);
        RepoMeta& m = st.repos[key];
        for (const auto& o : m.pulls)
          if (o.state == "open" && o.head == head && o.base == base)
            return validation_failed("PullRequest", "", "custom",
                                     "A pull request already exists for " + owner + ":" + head + ".");
        p.number = static_cast<int64_t>(m.pulls.size()) + 1;
        p.id = st.next_id++;
        p.title = str(body, "title");
        p.body = str(body, "body");
        p.head = head;
        p.base = base;
        p.head_sha = heads.at("refs/heads/" + head);
        p.created_at = p.updated_at = utc_now_iso();
        m.pulls.push_back(p);
        meta = m;
      }
      st.emit_pull("opened", meta, p, Value());
      return gh_json(201, st.pull_json(meta, p));
    }
    if (seg.size() == 5) {
      int64_t n = 0;
      try {
        n = std::stoll(seg[4]);
      } catch (const std::exception&) {
      }
      if (n < 1 || n > static_cast<int64_t>(meta.pulls.size())) return gh_error(404, "Not Found");
      if (req.method == "GET") return gh_json(200, st.pull_json(meta, meta.pulls[n - 1]));
      if (req.method == "PATCH") {
        if (const Value* s = body.find("state"); s && (!s->is_string() || (s->as_string() != "open" &&
                                                                          s->as_string() != "closed")))
          return validation_failed("PullRequest", "state", "invalid");
        if (has_string(body, "base") && !heads_of(dir).count("refs/heads/" + str(body, "base")))
          return validation_failed("PullRequest", "base", "invalid");
        std::vector<std::pair<std::string, Value>> actions;  // action, changes
        PullRequest p;
        {
          std::lock_guard lock(st.mu);
          RepoMeta& m = st.repos[key];
          PullRequest& cur = m.pulls[n - 1];
          Object changes;
          if (has_string(body, "title") && str(body, "title") != cur.title) {
            changes.emplace_back("title", obj({{"from", cur.title}}));
            cur.title = str(body, "title");
          }
          if (has_string(body, "body") && str(body, "body") != cur.body) {
            changes.emplace_back("body", obj({{"from", cur.body}}));
            cur.body = str(body, "body");
          }
          if (has_string(body, "base") && str(body, "base") != cur.base) {
            changes.emplace_back("base", obj({{"ref", obj({{"from", cur.base}})}}));
            cur.base = str(body, "base");
          }
          if (!changes.empty()) actions.emplace_back("edited", Value(std::move(changes)));
          const std::string state = str(body, "state");
          if (!state.empty() && state != cur.state) {
            cur.state = state;
            if (state == "closed") {
              cur.closed_at = utc_now_iso();
              // A closed pull request keeps the head it had.
              auto heads = heads_of(dir);
              if (auto h = heads.find("refs/heads/" + cur.head); h != heads.end()) cur.head_sha = h->second;
            } else {
              cur.closed_at.clear();
            }
            actions.emplace_back(state == "closed" ? "closed" : "reopened", Value());
          }
          if (!actions.empty()) cur.updated_at = utc_now_iso();
          p = cur;
          meta = m;
        }
        for (auto& [action, changes] : actions) st.emit_pull(action, meta, p, std::move(changes));
        return gh_json(200, st.pull_json(meta, p));
      }
    }
    if (seg.size() == 6 && seg[5] == "merge" && req.method == "PUT") return merge(st, req, body, meta, seg[4]);
  }

  // DELETE /repos/{o}/{r}/git/refs/heads/{branch}
  if (seg[3] == "git" && seg.size() >= 7 && seg[4] == "refs" && seg[5] == "heads" && req.method == "DELETE") {
    std::string branch;
    for (size_t i = 6; i < seg.size(); ++i) branch += (branch.empty() ? "" : "/") + seg[i];
    std::map<std::string, std::string> before, after;
    {
      std::lock_guard ref_lock(st.ref_mu);
      before = heads_of(dir);
      if (!before.count("refs/heads/" + branch)) return gh_error(422, "Reference does not exist");
      auto del = git(dir, {"update-ref", "-d", "refs/heads/" + branch, before["refs/heads/" + branch]});
      if (del.exit_code != 0) return gh_error(500, "git update-ref -d failed: " + del.err);
      after = heads_of(dir);
    }
    st.emit_ref_changes(meta, before, after, {});
    FakeResponse res;
    res.status = 204;
    return res;
  }
  return gh_error(404, "Not Found");
}

FakeResponse handle(State& st, const RecordedRequest& req) {
  const auto seg = path_segments(req.path, true);
  // git smart HTTP: /{owner}/{name}.git/...
  if (seg.size() >= 3 && seg[1].ends_with(".git") && seg[0] != "repos")
    return git_http(st, req, seg[0], seg[1].substr(0, seg[1].size() - 4));

  int remaining = kRateLimit;
  std::time_t reset = std::time(nullptr) + 3600;
  FakeResponse fault;
  bool faulted = false;
  {
    std::lock_guard lock(st.mu);
    ++st.requests_made;
    remaining = static_cast<int>(std::max<int64_t>(0, kRateLimit - st.requests_made));
    if (st.limited_left > 0) {
      --st.limited_left;
      remaining = 0;
      reset = st.limit_reset;
      fault = gh_error(403, "API rate limit exceeded for user ID 1.",
                       "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting");
      faulted = true;
    } else if (st.fail_left > 0) {
      --st.fail_left;
      fault = gh_error(st.fail_status, st.fail_status >= 500 ? "Server Error" : "Request failed");
      faulted = true;
    }
  }
  FakeResponse res;
  if (faulted) {
    res = std::move(fault);
  } else if (auto why = auth_failure(st, req); !why.empty()) {
    res = gh_error(401, why);
  } else if (seg.size() >= 3 && seg[0] == "repos") {
    res = api(st, req, seg);
  } else if (seg.size() == 3 && (seg[0] == "orgs" || seg[0] == "users") && seg[2] == "repos" && req.method == "GET") {
    res = owner_repos(st, req, seg[1]);
  } else {
    res = gh_error(404, "Not Found");
  }
  for (auto& h : rate_headers(remaining, reset)) res.headers.push_back(std::move(h));
  return res;
}

}  // namespace

GithubFake::GithubFake(Options options) : options_(std::move(options)), state_(std::make_shared<State>()) {
  fs::create_directories(options_.root_dir);
  state_->root = fs::absolute(options_.root_dir).lexically_normal().string();
  state_->token = options_.token;
  state_->hook_url = options_.webhook_url;
  state_->hook_secret = options_.webhook_secret;
  state_->sender = std::thread([s = state_.get()] { s->send_loop(); });
}

GithubFake::~GithubFake() { stop(); }

void GithubFake::start(uint16_t port) {
  if (server_) return;
  FakeHttpServer::Options o;
  o.threads = std::max(1, options_.threads);
  o.port = port;
  server_ = std::make_unique<FakeHttpServer>(o);
  state_->port = server_->port();
  auto st = state_;
  server_->fallback([st](const RecordedRequest& req) { return handle(*st, req); });
}

uint16_t GithubFake::port() const { return state_->port; }
std::string GithubFake::base_url() const { return state_->base(); }

void GithubFake::stop() {
  if (server_) server_->stop();
  {
    std::lock_guard lock(state_->dmu);
    state_->stopping = true;
    state_->dcv.notify_all();
  }
  if (state_->sender.joinable()) state_->sender.join();
}

Status GithubFake::create_repo(const std::string& owner, const std::string& name,
                               const std::string& default_branch) {
  const std::string dir = state_->bare(owner, name);
  git::BareRepo repo(dir, default_branch);
  if (auto st = repo.init(); !st.ok()) return st;
  auto h = repo.head();
  if (h.ok() && h->empty()) {
    auto w = repo.write("README.md", "# " + name + "\n", git::WriteMode::upsert(), "Initial commit");
    if (!w.ok()) return w.error();
  }
  std::lock_guard lock(state_->mu);
  auto& m = state_->repos[owner + "/" + name];
  if (m.id == 0) m = RepoMeta{state_->next_id++, owner, name, default_branch, {}};
  return Ok{};
}

Status GithubFake::create_branch(const std::string& owner, const std::string& name, const std::string& branch,
                                 const std::string& from) {
  const std::string dir = state_->bare(owner, name);
  const std::string sha = branch_sha(owner, name, from);
  if (sha.empty()) return make_error("git", "not_found", "No branch `" + from + "` in " + owner + "/" + name + ".");
  auto r = git(dir, {"update-ref", "refs/heads/" + branch, sha});
  if (r.exit_code != 0) return make_error("git", "failed", "git update-ref: " + r.err);
  return Ok{};
}

std::vector<std::string> GithubFake::branches(const std::string& owner, const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [ref, sha] : heads_of(state_->bare(owner, name))) out.push_back(ref.substr(11));
  return out;
}

std::string GithubFake::branch_sha(const std::string& owner, const std::string& name,
                                   const std::string& branch) const {
  const auto heads = heads_of(state_->bare(owner, name));
  auto it = heads.find("refs/heads/" + branch);
  return it == heads.end() ? "" : it->second;
}

std::string GithubFake::bare_path(const std::string& owner, const std::string& name) const {
  return state_->bare(owner, name);
}

std::string GithubFake::clone_url(const std::string& owner, const std::string& name, bool with_credentials) const {
  const std::string creds = with_credentials && !state_->token.empty() ? "x-access-token:" + state_->token + "@" : "";
  return "http://" + creds + "127.0.0.1:" + std::to_string(port()) + "/" + owner + "/" + name + ".git";
}

void GithubFake::set_webhook(std::string url, std::string secret) {
  std::lock_guard lock(state_->mu);
  state_->hook_url = std::move(url);
  state_->hook_secret = std::move(secret);
}

void GithubFake::fail_next(int n, int status) {
  std::lock_guard lock(state_->mu);
  state_->fail_left = n;
  state_->fail_status = status;
}

void GithubFake::rate_limit_next(int n, std::chrono::seconds reset_in) {
  std::lock_guard lock(state_->mu);
  state_->limited_left = n;
  state_->limit_reset = std::time(nullptr) + reset_in.count();
}

void GithubFake::corrupt_next_signature() {
  std::lock_guard lock(state_->mu);
  state_->corrupt_next = true;
}

bool GithubFake::redeliver(const std::string& delivery_id) {
  std::lock_guard lock(state_->dmu);
  auto it = state_->sent_by_id.find(delivery_id);
  if (it == state_->sent_by_id.end()) return false;
  Outgoing again = it->second;
  again.corrupt = false;
  again.redelivery = true;
  state_->queue.push_back(std::move(again));
  state_->dcv.notify_all();
  return true;
}

std::vector<GithubFake::Delivery> GithubFake::deliveries() const {
  std::lock_guard lock(state_->dmu);
  return state_->delivered;
}

bool GithubFake::wait_for_deliveries(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->dmu);
  return state_->dcv.wait_for(lock, timeout, [&] { return state_->delivered.size() >= n; });
}

}  // namespace anvil::fakes
