// memoryActor (key [userId]): the user's three-layer memory (seed 001).
//   L1  actor storage: an index path -> {sha, commit, size, updatedAt} in the
//       state and each file's content in KV `f/<path>` (read cache).
//   L2  session memory in Postgres (`session_memory`, per session and key).
//   L3  long-term memory: markdown files in the user's git repository, via
//       Gitea's contents API or, in development without Gitea, a local bare
//       repository (memory_store.hpp).
//
// Actions (fixed names; growAgent's memory tools call them):
//   listMemory(prefix?)            -> ["a.md", "notes/b.md", ...]  (L3, sorted)
//   readMemory(path)               -> content string; memory.not_found
//   commitMemory(path, content)    -> {path, sha, commit, unchanged}
//   deleteMemory(path)             -> {path, deleted, commit}
//   commitSessionMemory(sessionId, key, content) -> {sessionId, key}
//   readSessionMemory(sessionId, key?) -> content string (with key; memory.not_found)
//                                         or {key: content} (without)
//   clearSessionMemory(sessionId)  -> {sessionId, deleted}
//   getMemoryStatus()              -> {userId, backend, location, files, pendingOps}
//   recoverMemoryOps()             scheduled: completes writes a crash interrupted
// commitMemory and deleteMemory also accept one object argument {path, content}.
//
// Durability: a write is acknowledged only after L3 committed it. It is
// registered (state + KV) before the first L3 call; if the node dies
// mid-write, a durable schedule completes it after restart — the file is
// re-read first, so a write that already landed adds no second commit.
// A write that fails (L3 down) is not kept: the caller gets memory.unavailable
// and may retry. Stale shas (someone else wrote) are re-read and retried.
#pragma once

#include "runtime/actor_api.hpp"
#include "runtime/app_api.hpp"

namespace anvil::growqr {

ActorDefinition memory_actor();

}  // namespace anvil::growqr
