// githubData [orgId]: the organization's GitHub API cache (not a
// coordinator). Fed by API reads (syncRepository) and by webhooks, which it
// verifies (X-Hub-Signature-256, GITHUB_WEBHOOK_SECRET) and deduplicates
// (X-GitHub-Delivery); what matters to tasks (pull requests) is pushed up
// to the organization. The node keeps no git objects: only API metadata.
#include <openssl/hmac.h>

#include "actors/workbench/common.hpp"
#include "actors/workbench/workbench.hpp"
#include "base/value/json.hpp"

namespace anvil::workbench {
namespace {

const std::vector<std::string> kMigrations = {
    std::string(kOutboxTable) + ";" +
        "CREATE TABLE deliveries (id TEXT PRIMARY KEY, event TEXT NOT NULL, received_at INTEGER NOT NULL);"
        "CREATE TABLE repos (full_name TEXT PRIMARY KEY, default_branch TEXT, clone_url TEXT, fetched_at INTEGER NOT NULL);"
        "CREATE TABLE branches (full_name TEXT NOT NULL, name TEXT NOT NULL, sha TEXT NOT NULL, "
        "PRIMARY KEY (full_name, name));"
        "CREATE TABLE pulls (full_name TEXT NOT NULL, number INTEGER NOT NULL, state TEXT NOT NULL, title TEXT NOT NULL, "
        "head_ref TEXT NOT NULL, base_ref TEXT NOT NULL, merged INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
        "PRIMARY KEY (full_name, number));",
};

constexpr int64_t kMaxPages = 10;  // 1,000 branches or pulls per repository

std::string hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 0xf]);
  }
  return out;
}

// X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of the raw body; compared
// in constant time.
bool signature_valid(const std::string& secret, const std::string& body, const std::string& header) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len))
    return false;
  const std::string expected = "sha256=" + hex(mac, len);
  if (header.size() != expected.size()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < expected.size(); ++i) diff |= static_cast<unsigned>(header[i] ^ expected[i]);
  return diff == 0;
}

std::string full_name_of(const Value& payload) {
  const Value* repo = payload.find("repository");
  return repo ? str_or(*repo, "full_name") : "";
}

std::string branch_of_ref(const std::string& ref) {
  const std::string prefix = "refs/heads/";
  return ref.rfind(prefix, 0) == 0 ? ref.substr(prefix.size()) : "";
}

// A pull request (API or webhook shape) into the cache; returns the event
// pushed up to the organization.
Result<Value> store_pull(ActorContext& c, const std::string& full_name, const Value& pr) {
  const Value* head = pr.find("head");
  const Value* base = pr.find("base");
  const bool merged = pr.find("merged") && pr.find("merged")->is_bool() && pr.find("merged")->as_bool();
  const std::string state = merged ? "merged" : str_or(pr, "state");
  const std::string head_ref = head ? str_or(*head, "ref") : "";
  auto r = c.db().exec(
      "INSERT OR REPLACE INTO pulls (full_name, number, state, title, head_ref, base_ref, merged, updated_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      {Value(full_name), Value(int_or(pr, "number", 0)), Value(state), Value(str_or(pr, "title")), Value(head_ref),
       Value(base ? str_or(*base, "ref") : ""), Value(merged ? 1 : 0), Value(now_unix_ms())});
  if (!r.ok()) return r.error();
  return obj({{"kind", "pull_request"},
              {"repository", Value(full_name)},
              {"branch", Value(head_ref)},
              {"number", Value(int_or(pr, "number", 0))},
              {"state", Value(state)},
              {"title", Value(str_or(pr, "title"))}});
}

Status apply_webhook(ActorContext& c, const std::string& event, const Value& payload) {
  const std::string full_name = full_name_of(payload);
  if (full_name.empty()) return Ok{};  // ping and org-level events: nothing cached
  if (event == "push") {
    const std::string branch = branch_of_ref(str_or(payload, "ref"));
    if (branch.empty()) return Ok{};
    const bool deleted = payload.find("deleted") && payload.find("deleted")->is_bool() && payload.find("deleted")->as_bool();
    auto r = deleted ? c.db().exec("DELETE FROM branches WHERE full_name = ? AND name = ?", {Value(full_name), Value(branch)})
                     : c.db().exec("INSERT OR REPLACE INTO branches (full_name, name, sha) VALUES (?, ?, ?)",
                                   {Value(full_name), Value(branch), Value(str_or(payload, "after"))});
    if (!r.ok()) return r.error();
    return Ok{};
  }
  if (event == "create" || event == "delete") {
    if (str_or(payload, "ref_type") != "branch") return Ok{};
    const std::string branch = str_or(payload, "ref");
    auto r = event == "delete"
                 ? c.db().exec("DELETE FROM branches WHERE full_name = ? AND name = ?", {Value(full_name), Value(branch)})
                 : c.db().exec("INSERT OR IGNORE INTO branches (full_name, name, sha) VALUES (?, ?, '')",
                               {Value(full_name), Value(branch)});
    if (!r.ok()) return r.error();
    return Ok{};
  }
  if (event == "pull_request") {
    const Value* pr = payload.find("pull_request");
    if (!pr || !pr->is_object()) return invalid_argument("A pull_request event without `pull_request`.");
    auto up = store_pull(c, full_name, *pr);
    if (!up.ok()) return up.error();
    return outbox_call(c, "organization", {c.key().at(0)}, "_githubEvent", std::move(*up));
  }
  return Ok{};
}

// _handleWebhook({deliveryId, event, body, signature}) — from the webhook
// route, with the raw body: verified here, so a client calling this action
// directly gains nothing.
Result<Value> handle_webhook(ActionContext& c, const Array& args) {
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  auto secret = c.config("GITHUB_WEBHOOK_SECRET");
  if (!secret || secret->empty()) return not_configured("GITHUB_WEBHOOK_SECRET is not set; webhooks are refused.");
  const std::string body = str_or(*o, "body");
  if (!signature_valid(*secret, body, str_or(*o, "signature")))
    return make_error("auth", "invalid_signature", "X-Hub-Signature-256 does not match the body.");
  const std::string delivery = str_or(*o, "deliveryId");
  const std::string event = str_or(*o, "event");
  if (delivery.empty() || delivery.size() > 128 || event.empty())
    return invalid_argument("X-GitHub-Delivery and X-GitHub-Event are required.");
  auto seen = c.db().exec("INSERT OR IGNORE INTO deliveries (id, event, received_at) VALUES (?, ?, ?)",
                          {Value(delivery), Value(event), Value(now_unix_ms())});
  if (!seen.ok()) return seen.error();
  if (seen->changes == 0) return obj({{"duplicate", true}});
  auto payload = json::parse(body, false);
  if (!payload.ok() || !payload->is_object()) return invalid_argument("The webhook body is not a JSON object.");
  if (auto st = apply_webhook(c, event, *payload); !st.ok()) return st.error();
  return obj({{"duplicate", false}});
}

// ---- API reads

struct Api {
  std::string base, token;
};

Result<Api> api_of(const ActorContext& c) {
  auto base = c.config("GITHUB_API_URL");
  if (!base || base->empty()) return not_configured("GITHUB_API_URL is not set.");
  Api api{*base, c.config("GITHUB_TOKEN").value_or("")};
  while (!api.base.empty() && api.base.back() == '/') api.base.pop_back();
  return api;
}

net::HttpRequest get_request(const Api& api, const std::string& path) {
  net::HttpRequest req;
  req.url = api.base + path;
  req.headers.emplace_back("Accept", "application/vnd.github+json");
  req.headers.emplace_back("X-GitHub-Api-Version", "2022-11-28");
  if (!api.token.empty()) req.headers.emplace_back("Authorization", "Bearer " + api.token);
  return req;
}

// GET of every page of a list (per_page=100, up to kMaxPages).
Task<Result<Array>> get_all(ActionContext& c, Api api, std::string path) {
  Array all;
  for (int64_t page = 1; page <= kMaxPages; ++page) {
    const char sep = path.find('?') == std::string::npos ? '?' : '&';
    auto resp = co_await c.http(get_request(api, path + sep + "per_page=100&page=" + std::to_string(page)));
    if (!resp.ok()) co_return resp.error();
    auto items = json::parse(resp->body, false);
    if (!items.ok() || !items->is_array()) co_return make_error("workbench", "github_bad_response", "Expected a JSON array from " + path + ".");
    for (auto& item : items->as_array()) all.push_back(item);
    const auto link = resp->header("link").value_or("");
    if (items->as_array().size() < 100 || link.find("rel=\"next\"") == std::string::npos) break;
  }
  co_return all;
}

// syncRepository(fullName): the repository, its branches and pull requests
// from the API into the cache; pull requests go up to the organization.
Task<Result<Value>> sync_repository(ActionContext& c, Array args) {
  auto full_name = string_arg(args, 0, "fullName", 200);
  if (!full_name.ok()) co_return full_name.error();
  if (full_name->find('/') == std::string::npos || full_name->find("..") != std::string::npos)
    co_return invalid_argument("`fullName` must be owner/name.");
  auto api = api_of(c);
  if (!api.ok()) co_return api.error();
  auto repo = co_await c.http(get_request(*api, "/repos/" + *full_name));
  if (!repo.ok()) co_return repo.error();
  auto meta = json::parse(repo->body, false);
  if (!meta.ok() || !meta->is_object()) co_return make_error("workbench", "github_bad_response", "Expected a repository object.");
  auto branches = co_await get_all(c, *api, "/repos/" + *full_name + "/branches");
  if (!branches.ok()) co_return branches.error();
  auto pulls = co_await get_all(c, *api, "/repos/" + *full_name + "/pulls?state=all");
  if (!pulls.ok()) co_return pulls.error();

  auto r = c.db().exec("INSERT OR REPLACE INTO repos (full_name, default_branch, clone_url, fetched_at) VALUES (?, ?, ?, ?)",
                       {Value(*full_name), Value(str_or(*meta, "default_branch")), Value(str_or(*meta, "clone_url")),
                        Value(now_unix_ms())});
  if (!r.ok()) co_return r.error();
  if (auto d = c.db().exec("DELETE FROM branches WHERE full_name = ?", {Value(*full_name)}); !d.ok()) co_return d.error();
  for (const auto& b : *branches) {
    const Value* commit = b.find("commit");
    auto ins = c.db().exec("INSERT OR REPLACE INTO branches (full_name, name, sha) VALUES (?, ?, ?)",
                           {Value(*full_name), Value(str_or(b, "name")), Value(commit ? str_or(*commit, "sha") : "")});
    if (!ins.ok()) co_return ins.error();
  }
  for (const auto& p : *pulls) {
    auto up = store_pull(c, *full_name, p);
    if (!up.ok()) co_return up.error();
    if (auto st = outbox_call(c, "organization", {c.key().at(0)}, "_githubEvent", std::move(*up)); !st.ok())
      co_return st.error();
  }
  co_return obj({{"fullName", Value(*full_name)},
                 {"branches", Value(int64_t(branches->size()))},
                 {"pulls", Value(int64_t(pulls->size()))}});
}

// ---- reads from the cache

Result<Value> get_branches(ActionContext& c, const Array& args) {
  auto full_name = string_arg(args, 0, "fullName", 200);
  if (!full_name.ok()) return full_name.error();
  auto rows = c.db().query("SELECT name, sha FROM branches WHERE full_name = ? ORDER BY name", {Value(*full_name)});
  if (!rows.ok()) return rows.error();
  return Value(std::move(*rows));
}

Result<Value> get_pull_requests(ActionContext& c, const Array& args) {
  auto full_name = string_arg(args, 0, "fullName", 200);
  if (!full_name.ok()) return full_name.error();
  auto rows = c.db().query(
      "SELECT number, state, title, head_ref AS headRef, base_ref AS baseRef FROM pulls WHERE full_name = ? "
      "ORDER BY number",
      {Value(*full_name)});
  if (!rows.ok()) return rows.error();
  return Value(std::move(*rows));
}

Result<Value> delivery_count(ActionContext& c, const Array&) {
  auto rows = c.db().query("SELECT COUNT(*) AS n FROM deliveries");
  if (!rows.ok()) return rows.error();
  return *(*rows)[0].find("n");
}

}  // namespace

ActorDefinition github_data_actor() {
  ActorDefinition def("githubData");
  def.initial_state(Object{})
      .database(database(kMigrations))
      .created_only_by({"organization"}, child_refusal("githubData", "organization"))
      .async_action("_handleWebhook", delivered(handle_webhook))
      .async_action("syncRepository", sync_repository)
      .action("getBranches", get_branches)
      .action("getPullRequests", get_pull_requests)
      .action("deliveryCount", delivery_count)
      .action("_touch", [](ActionContext&, const Array&) -> Result<Value> { return Value(true); });
  with_outbox(def);
  guard_internal(def);
  return def;
}

}  // namespace anvil::workbench
