// L3 in development without Gitea: one local bare git repository per user
// (<data dir>/growqr/memory/<owner>.git), written with the git CLI on a small
// thread pool so the actor's strand never blocks on a process.
#include "base/proc/blocking.hpp"
#include "actors/growqr/memory/memory_store.hpp"
#include "base/git/bare_repo.hpp"

namespace anvil::growqr {
namespace {

Error mapped(const Error& e) {
  if (e.code == "conflict" || e.code == "exists")
    return make_error("memory", "conflict", e.message, e.metadata);
  if (e.code == "not_found") return make_error("memory", "not_found", e.message);
  return make_error("memory", "unavailable", e.message, obj({{"cause", e.qualified()}}));
}

class LocalGitMemoryStore final : public MemoryStore {
 public:
  explicit LocalGitMemoryStore(std::string dir) : repo_(std::move(dir)) {}

  std::string backend() const override { return "local"; }
  std::string location() const override { return repo_.dir(); }

  Task<Status> ensure_ready(ActorContext& c) override {
    git::BareRepo repo = repo_;
    std::function<Result<Ok>()> fn = [repo]() -> Result<Ok> {
      auto st = repo.init();
      if (!st.ok()) return mapped(st.error());
      return Ok{};
    };
    auto op = proc::run_blocking(std::move(fn));
    co_return co_await c.wait(std::move(op));
  }

  Task<Result<std::optional<MemoryFile>>> read(ActorContext& c, std::string path) override {
    git::BareRepo repo = repo_;
    std::function<Result<std::optional<MemoryFile>>()> fn = [repo, path]() -> Result<std::optional<MemoryFile>> {
      auto f = repo.read(path);
      if (!f.ok()) {
        if (f.error().code == "not_found") return std::optional<MemoryFile>();
        return mapped(f.error());
      }
      return std::optional<MemoryFile>(MemoryFile{path, f->sha, std::move(f->content)});
    };
    auto op = proc::run_blocking(std::move(fn));
    co_return co_await c.wait(std::move(op));
  }

  Task<Result<std::vector<MemoryFile>>> list(ActorContext& c) override {
    git::BareRepo repo = repo_;
    std::function<Result<std::vector<MemoryFile>>()> fn = [repo]() -> Result<std::vector<MemoryFile>> {
      if (!repo.exists()) return std::vector<MemoryFile>{};
      auto files = repo.list();
      if (!files.ok()) return mapped(files.error());
      std::vector<MemoryFile> out;
      for (auto& f : *files) out.push_back(MemoryFile{std::move(f.path), std::move(f.sha), ""});
      return out;
    };
    auto op = proc::run_blocking(std::move(fn));
    co_return co_await c.wait(std::move(op));
  }

  Task<Result<MemoryWrite>> write(ActorContext& c, std::string path, std::string content, std::string expected_sha,
                                  std::string message, std::string) override {
    git::BareRepo repo = repo_;
    std::function<Result<MemoryWrite>()> fn = [repo, path, content, expected_sha, message]() -> Result<MemoryWrite> {
      auto w = repo.write(path, content,
                          expected_sha.empty() ? git::WriteMode::create() : git::WriteMode::update(expected_sha), message,
                          git::Author{"growqr", "memory@growqr.local"});
      if (!w.ok()) return mapped(w.error());
      return MemoryWrite{w->blob_sha, w->commit_sha};
    };
    auto op = proc::run_blocking(std::move(fn));
    co_return co_await c.wait(std::move(op));
  }

  Task<Result<MemoryWrite>> remove(ActorContext& c, std::string path, std::string expected_sha, std::string message,
                                   std::string) override {
    git::BareRepo repo = repo_;
    std::function<Result<MemoryWrite>()> fn = [repo, path, expected_sha, message]() -> Result<MemoryWrite> {
      auto w = repo.remove(path, expected_sha, message, git::Author{"growqr", "memory@growqr.local"});
      if (!w.ok()) return mapped(w.error());
      return MemoryWrite{"", w->commit_sha};
    };
    auto op = proc::run_blocking(std::move(fn));
    co_return co_await c.wait(std::move(op));
  }

 private:
  git::BareRepo repo_;
};

}  // namespace

std::unique_ptr<MemoryStore> make_local_memory_store(std::string git_dir) {
  return std::make_unique<LocalGitMemoryStore>(std::move(git_dir));
}

}  // namespace anvil::growqr
