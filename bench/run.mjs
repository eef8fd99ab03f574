#!/usr/bin/env node
// Side-by-side benchmark: the same workloads, driven by the native
// anvil-loadgen (bare encoding, closed loop), against the reference Rivet
// stack (rivetkit 2.3.19 + rivet-engine, ../shared/rivet-ref) and against
// Anvil, in one run on this machine. Writes bench/RESULTS.md and
// bench/results.json.
//   BENCH_SECONDS (default 8)    measured seconds per throughput cell
//   BENCH_SKIP_REFERENCE=1       Anvil only (the table then has no ratios)
//   BENCH_SLEEPING (default 1000000) sleeping actors for the directory cell
//   BENCH_ONLY=tls               only the TLS section (plain HTTP/1.1, HTTPS
//                                HTTP/1.1 and HTTP/2 action cells): writes
//                                bench/results-tls.json and prints its table
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { cell, procStat, sh, sum, waitHttp } from "./lib.mjs";
import { tlsTable } from "./tls_table.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const SHARED = process.env.ANVIL_SHARED_DIR ?? path.resolve(ROOT, "../shared");
const REF = path.join(SHARED, "rivet-ref");
const OUTBOUND_BENCH = path.join(ROOT, "build/tools/bench/anvil-outbound-bench");
const EVENTS_BENCH = path.join(ROOT, "build/tools/bench/anvil-events-bench");
const AGENT_BENCH = path.join(ROOT, "build/tools/bench/anvil-agent-bench");
const DB_BENCH = path.join(ROOT, "build/tools/bench/anvil-db-bench");
const ANVIL = path.join(ROOT, "build/tools/anvil");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const SLEEPING = Number(process.env.BENCH_SLEEPING ?? 1_000_000);

async function waitHttps(url, ms = 60_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      https.get(url, { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      }).on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready`);
}

// `tls`: HTTPS served by the node itself (--tls-self-signed; ALPN h2, http/1.1).
async function startAnvil(dataDir, { tls = false } = {}) {
  const args = ["serve", "--listen", "127.0.0.1:6450", "--data-dir", dataDir, "--log-level", "warn"];
  if (tls) args.push("--tls-self-signed");
  const child = spawn(ANVIL, args, { stdio: "ignore" });
  const scheme = tls ? "https" : "http";
  await (tls ? waitHttps : waitHttp)(`${scheme}://127.0.0.1:6450/metadata`);
  return { name: tls ? "anvil-tls" : "anvil", base: `${scheme}://127.0.0.1:6450/api/rivet`, pids: () => [child.pid], child };
}
async function stopAnvil(a) {
  a.child.kill("SIGTERM");
  await new Promise((r) => a.child.on("exit", r));
}

// HTTP actions (1 hot actor) over plain HTTP/1.1, HTTPS HTTP/1.1 (ALPN
// http/1.1, one request in flight per connection, `conc` connections) and
// HTTP/2 (ALPN h2, `conc` streams on one connection), node restarted per
// transport on a fresh data directory, in one run.
async function tlsSection() {
  const out = {};
  for (const [transport, tls, mode] of [["http", false, "http"], ["https", true, "http"], ["h2", true, "h2"]]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "anvil-bench-tls-"));
    const node = await startAnvil(dir, { tls });
    try {
      for (const conc of [1, 16, 64])
        out[`${transport}_c${conc}`] = cell(node, mode, [["conc", conc], ["seconds", SECONDS], ["actors", 1]]);
    } finally {
      await stopAnvil(node);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

// The workloads; `size` picks the reference's bounded sizes.
function workloads(target, ref) {
  const r = {};
  for (const actors of [1, ref ? 50 : 1000])
    for (const conc of [1, 16, 64])
      r[`http_a${actors === 1 ? 1 : "many"}_c${conc}`] = cell(target, "http", [["conc", conc], ["seconds", SECONDS], ["actors", actors]]);
  r.ws_1x1 = cell(target, "ws", [["conns", 1], ["inflight", 1], ["seconds", SECONDS]]);
  r.ws_1x16 = cell(target, "ws", [["conns", 1], ["inflight", 16], ["seconds", SECONDS]]);
  r.ws_16x1 = cell(target, "ws", [["conns", 16], ["inflight", 1], ["seconds", SECONDS]]);
  r.ws_16x16 = cell(target, "ws", [["conns", 16], ["inflight", 16], ["seconds", SECONDS]]);
  // A read (no write to wait for): what the WebSocket path costs by itself.
  r.ws_1x16_read = cell(target, "ws", [["conns", 1], ["inflight", 16], ["seconds", SECONDS], ["action", "getCount"]]);
  r.ws_16x16_read = cell(target, "ws", [["conns", 16], ["inflight", 16], ["seconds", SECONDS], ["action", "getCount"]]);
  r.cold = cell(target, "cold", [["conc", 32], ["count", ref ? 200 : 10000], ["seconds", ref ? 60 : 100]]);
  // Open loop at a fixed offered rate (the target's 5,000/s for Anvil; what
  // the reference can take for it): latency under that load, not at saturation.
  r.cold_open = ref
    ? cell(target, "cold", [["conc", 32], ["count", 40], ["rate", 4], ["seconds", 60]])
    : cell(target, "cold", [["conc", 32], ["count", 25000], ["rate", 5000], ["seconds", 60]]);
  r.fanout = cell(target, "fanout", [["subscribers", 100], ["events", ref ? 20 : 200]]);
  const idleN = ref ? 300 : 100000;
  const before = sum(target.pids()).rssKiB;
  r.idle = cell(target, "idle", [["conc", 32], ["count", idleN], ["seconds", ref ? 120 : 100]]);
  r.idle.rss_before_mib = Math.round(before / 1024);
  r.idle.rss_per_actor_kib = r.idle.done ? Math.round(((sum(target.pids()).rssKiB - before) / r.idle.done) * 100) / 100 : null;
  return r;
}

const results = {
  machine: {
    cpu: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    commit: sh("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]),
    date: new Date().toISOString(),
  },
};
if (process.env.BENCH_ONLY === "tls") {
  results.tls = await tlsSection();
  fs.writeFileSync(path.join(ROOT, "bench/results-tls.json"), JSON.stringify(results, null, 2));
  console.log(tlsTable(results.tls));
  process.exit(0);
}
const dd = execFileSync("sh", ["-c", `dd if=/dev/zero of=${ROOT}/bench/.fsync-probe bs=4k count=500 oflag=dsync 2>&1; rm -f ${ROOT}/bench/.fsync-probe`], { encoding: "utf8" });
const ddSecs = Number(/([\d.]+) s,/.exec(dd)?.[1] ?? NaN);
results.fsync_ms = Math.round((ddSecs / 500) * 1000 * 1000) / 1000;

const saved = path.join(ROOT, "bench/results.json");
if (process.env.BENCH_REUSE_REFERENCE) {
  // Reuse the reference section of an earlier run (the reference takes ~5 min).
  results.reference = JSON.parse(fs.readFileSync(process.env.BENCH_REUSE_REFERENCE, "utf8"));
  results.reference_reused_from = process.env.BENCH_REUSE_REFERENCE;
} else if (process.env.BENCH_SKIP_REFERENCE !== "1") {
  sh(path.join(REF, "reference/start.sh"), [], { stdio: ["ignore", "pipe", "inherit"] });
  const runDir = path.join(REF, ".run");
  const pidOf = (f) => (fs.existsSync(path.join(runDir, f)) ? Number(fs.readFileSync(path.join(runDir, f), "utf8")) : 0);
  const ref = { name: "reference", base: "http://127.0.0.1:6420", pids: () => [pidOf("runner.pid"), pidOf("engine.pid")].filter(Boolean) };
  await waitHttp("http://127.0.0.1:6420/metadata");
  try {
    results.reference = workloads(ref, true);
  } finally {
    sh(path.join(REF, "reference/stop.sh"), [], { stdio: "ignore" });
  }
  fs.writeFileSync(saved, JSON.stringify(results, null, 2));
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "anvil-bench-"));
let anvil = await startAnvil(dataDir);
results.anvil = workloads(anvil, false);
// Sleeping actors: create them, restart the node (every actor asleep, only
// its directory entry in memory), compare RSS with an empty node.
await stopAnvil(anvil);
const emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), "anvil-bench-empty-"));
anvil = await startAnvil(emptyDir);
const emptyRss = procStat(anvil.child.pid).rssKiB;
await stopAnvil(anvil);
anvil = await startAnvil(emptyDir);
const created = cell(anvil, "cold", [["conc", 32], ["count", SLEEPING], ["seconds", 300]]);
await stopAnvil(anvil);
const t0 = Date.now();
anvil = await startAnvil(emptyDir);
const loadSecs = (Date.now() - t0) / 1000;
const sleepingRss = procStat(anvil.child.pid).rssKiB;
results.anvil.sleeping = {
  actors: created.done,
  create_per_second: created.per_second,
  restart_load_seconds: loadSecs,
  rss_empty_mib: Math.round(emptyRss / 1024),
  rss_mib: Math.round(sleepingRss / 1024),
  rss_per_actor_bytes: created.done ? Math.round(((sleepingRss - emptyRss) * 1024) / created.done) : null,
};
await stopAnvil(anvil);
fs.rmSync(dataDir, { recursive: true, force: true });
fs.rmSync(emptyDir, { recursive: true, force: true });

// Awaiting actions: 10,000 concurrent `outbound.fetchText` calls against a
// local server answering in 100 ms, side by side with the bare outbound
// client making the same calls, in one process and one run.
try {
  results.anvil.outbound = JSON.parse(sh(OUTBOUND_BENCH, ["--calls", "10000", "--delay-ms", "100", "--actors", "1000"], { timeout: 600_000 }));
} catch (e) {
  results.anvil.outbound = { error: String(e.message).slice(0, 200) };
}

// GrowQR agent: 1,000 users' growAgent.chat at once against the Anthropic
// fake answering in 200 ms, side by side with the same 1,000 streamed model
// calls made by the bare outbound client.
try {
  results.anvil.agent = JSON.parse(sh(AGENT_BENCH, ["--users", "1000", "--latency-ms", "200"], { timeout: 600_000 }));
} catch (e) {
  results.anvil.agent = { error: String(e.message).slice(0, 200) };
}

// Per-actor SQLite: durable dbCounter.add vs counter.increment (plain state
// write) on one actor and on 1,000, alternating, in one process and run.
try {
  const out = sh(DB_BENCH, ["--seconds", "5", "--conc", "64", "--actors", "1000", "--rounds", "3"], { timeout: 600_000 });
  results.anvil.db = JSON.parse(out.split("\n").pop());
} catch (e) {
  results.anvil.db = { error: String(e.message).slice(0, 200) };
}

// GrowQR events: 20,000 stream entries (10 % duplicates) to recorded rows and
// mission actors through the app's consumer, side by side with a plain
// XREADGROUP -> INSERT ... ON CONFLICT DO NOTHING -> XACK loop (needs the
// services: eval "$(scripts/services.sh env)").
if (process.env.ANVIL_POSTGRES_URL && process.env.ANVIL_REDIS_URL) {
  try {
    results.anvil.events = JSON.parse(sh(EVENTS_BENCH, ["--events", String(process.env.BENCH_EVENTS ?? 20000)], { timeout: 900_000 }));
  } catch (e) {
    // A non-zero exit (not every event processed) still prints its JSON line.
    const line = String(e.stdout ?? "").trim().split("\n").pop();
    try {
      results.anvil.events = { ...JSON.parse(line), exit_status: e.status };
    } catch {
      results.anvil.events = { error: String(e.message).slice(0, 200) };
    }
  }
} else {
  results.anvil.events = { skipped: "no ANVIL_POSTGRES_URL/ANVIL_REDIS_URL" };
}

// HTTP actions over TLS (node-served HTTPS, h2 and http/1.1) beside plain HTTP.
results.anvil.tls = await tlsSection();

fs.writeFileSync(saved, JSON.stringify(results, null, 2));
execFileSync(process.execPath, [path.join(ROOT, "bench/report.mjs")], { stdio: "inherit" });
