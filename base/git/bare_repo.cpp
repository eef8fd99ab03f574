#include "base/git/bare_repo.hpp"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>

#include "base/proc/process.hpp"

extern char** environ;

namespace anvil::git {
namespace {

constexpr int kCasAttempts = 20;

Error failed(const std::string& what, const std::string& err) {
  return make_error("git", "failed", what + ": " + err.substr(0, 2000));
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// `git ls-tree -z` output: "<mode> <type> <sha>\t<path>\0" per entry.
struct TreeEntry {
  bool tree = false;
  std::string sha, path;
};
std::vector<TreeEntry> parse_ls_tree(const std::string& out) {
  std::vector<TreeEntry> entries;
  size_t pos = 0;
  while (pos < out.size()) {
    const auto end = out.find('\0', pos);
    std::string line = out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? out.size() : end + 1;
    const auto tab = line.find('\t');
    if (tab == std::string::npos || tab < 41) continue;
    const auto type = line.find(" tree ");
    entries.push_back({type != std::string::npos && type < tab, line.substr(tab - 40, 40), line.substr(tab + 1)});
  }
  return entries;
}

std::string unique_suffix() {
  static std::atomic<uint64_t> n{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(::getpid()) + "-" + std::to_string(++n) + "-" + std::to_string(rng() & 0xffffff);
}

}  // namespace

BareRepo::BareRepo(std::string git_dir, std::string branch) : dir_(std::move(git_dir)), branch_(std::move(branch)) {}

BareRepo::Out BareRepo::run(const std::vector<std::string>& args, const std::string& input,
                            const std::vector<std::string>& env) const {
  proc::RunSpec spec;
  spec.argv = {"git", "--git-dir=" + dir_};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.stdin_data = input;
  // The caller's environment without variables that would redirect git,
  // plus a fixed identity and no user/system configuration.
  for (char** p = environ; p && *p; ++p) {
    std::string_view kv(*p);
    if (kv.starts_with("GIT_")) continue;
    spec.env.emplace_back(kv);
  }
  spec.env.emplace_back("GIT_CONFIG_NOSYSTEM=1");
  spec.env.emplace_back("GIT_CONFIG_GLOBAL=/dev/null");
  spec.env.emplace_back("GIT_TERMINAL_PROMPT=0");
  for (const auto& kv : env) spec.env.push_back(kv);
  Out out;
  auto r = proc::run(spec);
  if (!r.ok()) {
    out.err = "cannot run git: " + r.error().message;
    return out;
  }
  out.code = r->signal ? -1 : r->exit_code;
  out.out = std::move(r->out);
  out.err = std::move(r->err);
  return out;
}

bool BareRepo::exists() const { return std::filesystem::exists(std::filesystem::path(dir_) / "HEAD"); }

Status BareRepo::init() const {
  if (exists()) return Ok{};
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return failed("create " + dir_, ec.message());
  auto r = run({"init", "--bare", "-q", "-b", branch_});
  if (r.code != 0 && !exists()) return failed("git init", r.err);
  return Ok{};
}

Result<std::string> BareRepo::head() const {
  auto r = run({"rev-parse", "-q", "--verify", "refs/heads/" + branch_});
  if (r.code != 0) return std::string();
  return trim(r.out);
}

Result<FileContent> BareRepo::read(const std::string& path) const {
  auto h = head();
  if (!h.ok()) return h.error();
  if (h->empty()) return make_error("git", "not_found", "No file `" + path + "`.");
  auto ls = run({"ls-tree", "-z", *h, "--", path});
  if (ls.code != 0) return failed("git ls-tree", ls.err);
  auto entries = parse_ls_tree(ls.out);
  if (entries.size() != 1 || entries[0].tree || entries[0].path != path)
    return make_error("git", "not_found", "No file `" + path + "`.");
  FileContent fc;
  fc.sha = entries[0].sha;
  auto cat = run({"cat-file", "blob", fc.sha});
  if (cat.code != 0) return failed("git cat-file", cat.err);
  fc.content = std::move(cat.out);
  return fc;
}

bool BareRepo::is_dir(const std::string& path) const {
  auto h = head();
  if (!h.ok() || h->empty()) return path.empty();
  if (path.empty()) return true;
  auto r = run({"cat-file", "-t", *h + ":" + path});
  return r.code == 0 && trim(r.out) == "tree";
}

Result<std::vector<FileEntry>> BareRepo::list(const std::string& prefix) const {
  std::vector<FileEntry> files;
  auto h = head();
  if (!h.ok()) return h.error();
  if (h->empty()) return files;
  auto r = run({"ls-tree", "-r", "-z", "--full-tree", *h});
  if (r.code != 0) return failed("git ls-tree", r.err);
  for (auto& e : parse_ls_tree(r.out))
    if (e.path.rfind(prefix, 0) == 0) files.push_back({std::move(e.path), std::move(e.sha)});
  return files;
}

Result<std::vector<FileEntry>> BareRepo::list_dir(const std::string& dir) const {
  std::vector<FileEntry> entries;
  auto h = head();
  if (!h.ok()) return h.error();
  if (h->empty()) return entries;
  auto r = run({"ls-tree", "-z", dir.empty() ? *h : *h + ":" + dir});
  if (r.code != 0) return make_error("git", "not_found", "No directory `" + dir + "`.");
  for (auto& e : parse_ls_tree(r.out))
    entries.push_back({(dir.empty() ? "" : dir + "/") + e.path + (e.tree ? "/" : ""), std::move(e.sha)});
  return entries;
}

Result<WriteResult> BareRepo::write(const std::string& path, const std::string& content, const WriteMode& mode,
                                    const std::string& message, const Author& author) const {
  return commit_change(path, content, mode, message, author);
}

Result<WriteResult> BareRepo::remove(const std::string& path, const std::string& expected_sha,
                                     const std::string& message, const Author& author) const {
  WriteMode mode = expected_sha.empty() ? WriteMode::upsert() : WriteMode::update(expected_sha);
  return commit_change(path, std::nullopt, mode, message, author);
}

Result<WriteResult> BareRepo::commit_change(const std::string& path, const std::optional<std::string>& content,
                                            const WriteMode& mode, const std::string& message,
                                            const Author& author) const {
  if (auto st = init(); !st.ok()) return st.error();
  WriteResult result;
  if (content) {
    auto blob = run({"hash-object", "-w", "--stdin"}, *content);
    if (blob.code != 0) return failed("git hash-object", blob.err);
    result.blob_sha = trim(blob.out);
  }
  const std::string index = dir_ + "/index-anvil-" + unique_suffix();
  const std::vector<std::string> env = {
      "GIT_INDEX_FILE=" + index,          "GIT_AUTHOR_NAME=" + author.name,   "GIT_AUTHOR_EMAIL=" + author.email,
      "GIT_COMMITTER_NAME=" + author.name, "GIT_COMMITTER_EMAIL=" + author.email};
  struct Cleanup {
    std::string f;
    ~Cleanup() { std::filesystem::remove(f); }
  } cleanup{index};

  for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
    auto h = head();
    if (!h.ok()) return h.error();
    // The file's current sha on this head.
    std::string current;
    if (!h->empty()) {
      auto ls = run({"ls-tree", "-z", *h, "--", path});
      if (ls.code != 0) return failed("git ls-tree", ls.err);
      auto entries = parse_ls_tree(ls.out);
      if (entries.size() == 1 && !entries[0].tree && entries[0].path == path) current = entries[0].sha;
    }
    if (!content && current.empty()) return make_error("git", "not_found", "No file `" + path + "`.");
    if (mode.kind == WriteMode::Kind::create && !current.empty())
      return make_error("git", "exists", "A file `" + path + "` already exists.", obj({{"sha", current}}));
    if (mode.kind == WriteMode::Kind::update) {
      if (current.empty()) return make_error("git", "not_found", "No file `" + path + "`.");
      if (current != mode.expected_sha)
        return make_error("git", "conflict", "sha does not match [given: " + mode.expected_sha + ", expected: " + current + "]",
                          obj({{"expected", mode.expected_sha}, {"actual", current}}));
    }
    std::filesystem::remove(index);
    if (!h->empty()) {
      auto rt = run({"read-tree", *h}, "", env);
      if (rt.code != 0) return failed("git read-tree", rt.err);
    }
    auto ui = content ? run({"update-index", "--add", "--cacheinfo", "100644," + result.blob_sha + "," + path}, "", env)
                      : run({"update-index", "--index-info"}, "0 " + std::string(40, '0') + "\t" + path + "\n", env);
    if (ui.code != 0) return failed("git update-index", ui.err);
    auto tree = run({"write-tree"}, "", env);
    if (tree.code != 0) return failed("git write-tree", tree.err);
    std::vector<std::string> ct = {"commit-tree", trim(tree.out), "-m", message};
    if (!h->empty()) ct.insert(ct.end(), {"-p", *h});
    auto commit = run(ct, "", env);
    if (commit.code != 0) return failed("git commit-tree", commit.err);
    result.commit_sha = trim(commit.out);
    const std::string old = h->empty() ? std::string(40, '0') : *h;
    auto ur = run({"update-ref", "refs/heads/" + branch_, result.commit_sha, old});
    if (ur.code == 0) return result;
    // Another writer moved the branch: re-check against its head.
  }
  return failed("git update-ref", "the branch kept moving; gave up after " + std::to_string(kCasAttempts) + " attempts");
}

Result<std::vector<Commit>> BareRepo::log() const {
  std::vector<Commit> commits;
  auto h = head();
  if (!h.ok()) return h.error();
  if (h->empty()) return commits;
  auto r = run({"log", "--format=%H%x09%s", "refs/heads/" + branch_});
  if (r.code != 0) return failed("git log", r.err);
  size_t pos = 0;
  while (pos < r.out.size()) {
    auto end = r.out.find('\n', pos);
    std::string line = r.out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? r.out.size() : end + 1;
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    commits.push_back({line.substr(0, tab), line.substr(tab + 1)});
  }
  return commits;
}

}  // namespace anvil::git
