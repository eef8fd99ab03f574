#!/usr/bin/env node
// Envoy mode side by side (issue 16), in one run on this machine, every
// client request through a rivet-engine 2.3.19:
//   anvil-envoy   engine (file system storage) + one Anvil node in envoy mode
//   rivetkit      the reference stack: engine + the rivetkit 2.3.19 runner
//                 (../shared/rivet-ref/reference/start.sh)
// plus Anvil as a single node (no engine) for reference. The same
// anvil-loadgen cells (bare encoding) against each. Writes
// bench/results-envoy.json and prints a table.
//   BENCH_SECONDS (default 8)   measured seconds per throughput cell
//   BENCH_TARGETS (default anvil_envoy,rivetkit,anvil_single): which to run;
//                 the others are kept from the previous bench/results-envoy.json
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../tests/e2e/anvil_proc.mjs";
import { startEngine } from "../tests/e2e/engine_proc.mjs";
import { cell, procStat, sh, sum, waitHttp } from "./lib.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const SHARED = process.env.ANVIL_SHARED_DIR ?? path.resolve(ROOT, "../shared");
const REF = path.join(SHARED, "rivet-ref");
const ANVIL = path.join(ROOT, "build/tools/anvil");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
// The same cells for every target (the reference's bounded sizes).
function workloads(target) {
  const r = {};
  for (const conc of [1, 16, 64]) r[`http_c${conc}`] = cell(target, "http", [["conc", conc], ["seconds", SECONDS], ["actors", 1]]);
  r.ws_1x1 = cell(target, "ws", [["conns", 1], ["inflight", 1], ["seconds", SECONDS]]);
  r.ws_16x16 = cell(target, "ws", [["conns", 16], ["inflight", 16], ["seconds", SECONDS]]);
  r.cold = cell(target, "cold", [["conc", 32], ["count", 200], ["seconds", 60]]);
  const before = sum(target.pids()).rssKiB;
  r.idle = cell(target, "idle", [["conc", 32], ["count", 300], ["seconds", 120]]);
  r.idle.rss_per_actor_kib = r.idle.done ? Math.round(((sum(target.pids()).rssKiB - before) / r.idle.done) * 100) / 100 : null;
  return r;
}

const TARGETS = (process.env.BENCH_TARGETS ?? "anvil_envoy,rivetkit,anvil_single").split(",");
const previous = (() => {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, "bench/results-envoy.json"), "utf8"));
  } catch {
    return {};
  }
})();
const results = {
  ...previous,
  machine: {
    cpu: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    commit: sh("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]),
    date: new Date().toISOString(),
  },
};

// 1. Anvil in envoy mode under its own engine (no admin token, like the reference's dev engine).
if (TARGETS.includes("anvil_envoy")) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "anvil-bench-envoy-"));
  const node = await freePort();
  const eng = await startEngine({ token: null });
  const endpoint = eng.endpoint;
  const anvil = spawn(ANVIL, ["serve", "--listen", `127.0.0.1:${node}`, "--data-dir", path.join(dir, "node"), "--log-level", "warn", "--engine", endpoint], {
    stdio: "ignore",
  });
  await waitHttp(`http://127.0.0.1:${node}/metadata`);
  for (;;) {
    const envoys = await (await fetch(`${endpoint}/envoys?namespace=default`)).json();
    if (envoys.envoys?.length) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  const target = { name: "anvil-envoy", base: endpoint, pids: () => [eng.pid, anvil.pid] };
  try {
    results.anvil_envoy = workloads(target);
    results.anvil_envoy.engine_rss_mib = Math.round(procStat(eng.pid).rssKiB / 1024);
    results.anvil_envoy.node_rss_mib = Math.round(procStat(anvil.pid).rssKiB / 1024);
    results.anvil_envoy.commit = results.machine.commit;
  } finally {
    anvil.kill("SIGKILL");
    await eng.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// 2. The rivetkit runner under the reference's engine.
if (TARGETS.includes("rivetkit")) {
  sh(path.join(REF, "reference/start.sh"), [], { stdio: ["ignore", "pipe", "inherit"] });
  const runDir = path.join(REF, ".run");
  const pidOf = (f) => (fs.existsSync(path.join(runDir, f)) ? Number(fs.readFileSync(path.join(runDir, f), "utf8")) : 0);
  await waitHttp("http://127.0.0.1:6420/metadata");
  try {
    results.rivetkit = workloads({ name: "rivetkit", base: "http://127.0.0.1:6420", pids: () => [pidOf("runner.pid"), pidOf("engine.pid")].filter(Boolean) });
  } finally {
    sh(path.join(REF, "reference/stop.sh"), [], { stdio: "ignore" });
  }
}

// 3. Anvil as a single node.
if (TARGETS.includes("anvil_single")) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "anvil-bench-single-"));
  const port = await freePort();
  const anvil = spawn(ANVIL, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dir, "--log-level", "warn"], { stdio: "ignore" });
  await waitHttp(`http://127.0.0.1:${port}/metadata`);
  try {
    results.anvil_single = workloads({ name: "anvil-single", base: `http://127.0.0.1:${port}/api/rivet`, pids: () => [anvil.pid] });
  } finally {
    anvil.kill("SIGTERM");
    await new Promise((r) => anvil.on("exit", r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

fs.writeFileSync(path.join(ROOT, "bench/results-envoy.json"), JSON.stringify(results, null, 2));
const row = (label, pick) =>
  `| ${label} | ${["anvil_envoy", "rivetkit", "anvil_single"].map((k) => pick(results[k]) ?? "–").join(" | ")} |`;
const ops = (c) => (c?.per_second != null ? `${Math.round(c.per_second)}/s, p50 ${c.p50_ms} p99 ${c.p99_ms} ms` : c?.error ? "error" : null);
console.log(
  [
    "| cell | Anvil envoy (engine + node) | rivetkit runner (engine + runner) | Anvil single node |",
    "|---|---|---|---|",
    row("HTTP action, conc 1", (r) => ops(r.http_c1)),
    row("HTTP action, conc 16", (r) => ops(r.http_c16)),
    row("HTTP action, conc 64", (r) => ops(r.http_c64)),
    row("WebSocket 1 conn x 1", (r) => ops(r.ws_1x1)),
    row("WebSocket 16 conns x 16", (r) => ops(r.ws_16x16)),
    row("cold start (200 new actors, conc 32)", (r) => (r.cold?.p50_ms != null ? `p50 ${r.cold.p50_ms} p99 ${r.cold.p99_ms} ms` : null)),
    row("memory per idle actor (300)", (r) => (r.idle?.rss_per_actor_kib != null ? `${r.idle.rss_per_actor_kib} KiB` : null)),
  ].join("\n"),
);
