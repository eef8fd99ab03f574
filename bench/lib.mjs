// What the bench scripts share: running one anvil-loadgen cell against a
// target and reading its processes' CPU and RSS from /proc.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "..");
export const LOADGEN = path.join(ROOT, "build/tools/bench/anvil-loadgen");
export const sh = (cmd, args, opts = {}) => (execFileSync(cmd, args, { encoding: "utf8", ...opts }) ?? "").trim();
export const TICKS = Number(sh("getconf", ["CLK_TCK"]));

export function procStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
    return { cpuTicks: Number(stat[11]) + Number(stat[12]), rssKiB: rss };
  } catch {
    return { cpuTicks: 0, rssKiB: 0 };
  }
}
export const sum = (pids) =>
  pids.map(procStat).reduce((a, b) => ({ cpuTicks: a.cpuTicks + b.cpuTicks, rssKiB: a.rssKiB + b.rssKiB }), { cpuTicks: 0, rssKiB: 0 });

// Runs one loadgen cell against `target` ({name, base, pids()}) and
// attaches the server's CPU% and RSS.
export function cell(target, mode, args) {
  const before = sum(target.pids());
  const t0 = Date.now();
  let out;
  try {
    out = JSON.parse(sh(LOADGEN, [mode, "--base", target.base, ...args.flatMap(([k, v]) => [`--${k}`, String(v)])], { timeout: 400_000 }));
  } catch (e) {
    out = { error: String(e.message).slice(0, 200) };
  }
  const wall = (Date.now() - t0) / 1000;
  const after = sum(target.pids());
  out.server_cpu_pct = Math.round(((after.cpuTicks - before.cpuTicks) / TICKS / wall) * 100);
  out.server_rss_mib = Math.round(after.rssKiB / 1024);
  console.log(`${target.name} ${mode} ${JSON.stringify(args)} -> ${JSON.stringify(out)}`);
  return out;
}

export async function waitHttp(url, ms = 60_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready`);
}
