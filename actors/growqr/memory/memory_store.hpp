// L3 long-term memory behind one small interface (MemoryStore), with two
// backends:
//   - GiteaMemoryStore: markdown files in the user's `growqr-memory`
//     repository through Gitea's contents API, every call through the node's
//     one outbound client (ctx.http);
//   - LocalGitMemoryStore: a local bare git repository per user under the
//     node's data directory, written with the git CLI (development without
//     Gitea; base/git/bare_repo.hpp), run off the actor's strand.
// Both speak sha semantics: a file's sha is its git blob sha; an update
// names the sha it replaces and fails with memory.conflict when the file
// moved on (the caller re-reads and retries, see memory_actor.cpp).
//
// Errors: memory.conflict (stale sha, or create of an existing file),
// memory.not_found (update/delete of a missing file), memory.unavailable
// (the backend failed; metadata.cause has the underlying error),
// memory.not_configured.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/actor_api.hpp"

namespace anvil::growqr {

struct MemoryFile {
  std::string path;
  std::string sha;
  std::string content;  // empty in listings
};

struct MemoryWrite {
  std::string sha;     // the new blob sha (empty after a delete)
  std::string commit;  // the commit that made the change
};

class MemoryStore {
 public:
  virtual ~MemoryStore() = default;
  // "gitea" or "local".
  virtual std::string backend() const = 0;
  // Where the repository is, for humans: "<url>/<owner>/<repo>" or a directory.
  virtual std::string location() const = 0;
  // Creates what the user's repository needs (Gitea user and repo, or the
  // bare repository); idempotent.
  virtual Task<Status> ensure_ready(ActorContext& c) = 0;
  // The file, or nullopt when it does not exist.
  virtual Task<Result<std::optional<MemoryFile>>> read(ActorContext& c, std::string path) = 0;
  // Every file (recursively), without content, in path order.
  virtual Task<Result<std::vector<MemoryFile>>> list(ActorContext& c) = 0;
  // Creates (expected_sha empty) or updates the file in one commit.
  virtual Task<Result<MemoryWrite>> write(ActorContext& c, std::string path, std::string content,
                                          std::string expected_sha, std::string message,
                                          std::string idempotency_key) = 0;
  virtual Task<Result<MemoryWrite>> remove(ActorContext& c, std::string path, std::string expected_sha,
                                           std::string message, std::string idempotency_key) = 0;
};

// The backend this actor's configuration selects (docs/growqr.md, "Memory"):
// Gitea when GITEA_URL is set (GITEA_TOKEN required), else the local bare
// repository in development, test or an unset environment; elsewhere
// memory.not_configured.
Result<std::unique_ptr<MemoryStore>> make_memory_store(const ActorContext& c, const std::string& user_id);

// The Gitea user that owns `user_id`'s memory repository: lowercase
// [a-z0-9-] of the id (at most 24) + "-" + 8 hex digits of SHA-256(user id),
// so distinct ids never share an owner and the name is a valid Gitea login.
std::string memory_owner(const std::string& user_id);

}  // namespace anvil::growqr
