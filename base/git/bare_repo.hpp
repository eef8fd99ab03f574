// A bare git repository driven through the `git` CLI: one branch of plain
// files, read and written by path with blob-sha optimistic concurrency (the
// contract of Gitea's contents API). Used by GrowQR's development memory
// store and by the Gitea fake, so `git --git-dir=<dir> log` shows every
// commit either makes.
//
// Every call is synchronous and spawns git (tens of milliseconds): callers on
// an event loop run it on another thread. Writes commit onto the branch with
// a compare-and-swap of the branch ref (`git update-ref <new> <old>`), so two
// writers never lose each other's commit: the loser re-checks the blob sha
// against the new head and either retries or reports a conflict.
//
// Errors (group "git"): not_found (no such file), exists (create of an
// existing path), conflict (the expected blob sha is not the file's current
// one; metadata {expected, actual}), failed (git itself failed; message has
// its stderr).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/value/error.hpp"

namespace anvil::git {

struct FileEntry {
  std::string path;  // relative to the repository root, '/'-separated
  std::string sha;   // the blob sha (what Gitea calls a file's `sha`)
};

struct FileContent {
  std::string sha;
  std::string content;
};

struct Commit {
  std::string sha;
  std::string message;  // subject line
};

struct WriteResult {
  std::string blob_sha;    // empty for a removal
  std::string commit_sha;
};

struct Author {
  std::string name = "anvil";
  std::string email = "anvil@localhost";
};

// How a write treats the current file: create (must not exist), update
// (must exist with `expected_sha`), or upsert (whatever is there).
struct WriteMode {
  enum class Kind { create, update, upsert };
  Kind kind = Kind::upsert;
  std::string expected_sha;  // update only
  static WriteMode create() { return {Kind::create, {}}; }
  static WriteMode update(std::string sha) { return {Kind::update, std::move(sha)}; }
  static WriteMode upsert() { return {Kind::upsert, {}}; }
};

class BareRepo {
 public:
  explicit BareRepo(std::string git_dir, std::string branch = "main");

  const std::string& dir() const { return dir_; }
  // Creates the bare repository (and its parent directories) when missing.
  Status init() const;
  bool exists() const;

  // The file at `path` on the branch; git.not_found when absent (or a directory).
  Result<FileContent> read(const std::string& path) const;
  // Every file under `prefix` ("" = all), recursively, in path order. An
  // empty repository lists nothing.
  Result<std::vector<FileEntry>> list(const std::string& prefix = "") const;
  // The direct children of directory `dir` ("" = root): files with their
  // blob sha, directories with their tree sha and a trailing '/' in path.
  Result<std::vector<FileEntry>> list_dir(const std::string& dir) const;
  // True when `path` names a directory on the branch.
  bool is_dir(const std::string& path) const;

  // Commits `content` at `path` as one commit on the branch.
  Result<WriteResult> write(const std::string& path, const std::string& content, const WriteMode& mode,
                            const std::string& message, const Author& author = {}) const;
  // Commits the removal of `path`; `expected_sha` must be its current sha
  // (empty = any).
  Result<WriteResult> remove(const std::string& path, const std::string& expected_sha, const std::string& message,
                             const Author& author = {}) const;

  // The branch head (empty for a repository without commits).
  Result<std::string> head() const;
  // The branch's commits, newest first.
  Result<std::vector<Commit>> log() const;

 private:
  struct Out {
    int code = -1;
    std::string out, err;
  };
  Out run(const std::vector<std::string>& args, const std::string& input = "",
          const std::vector<std::string>& env = {}) const;
  Result<WriteResult> commit_change(const std::string& path, const std::optional<std::string>& content,
                                    const WriteMode& mode, const std::string& message, const Author& author) const;

  std::string dir_;
  std::string branch_;
};

}  // namespace anvil::git
