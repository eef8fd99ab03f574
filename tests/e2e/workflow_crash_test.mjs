#!/usr/bin/env node
// Jobs through durable queues into workflow steps while anvil is SIGKILLed at
// random moments. Each send carries a unique job id. Oracle after the last
// restart, once the workers drained their queues:
//   - every acknowledged job is in `processed` exactly once (0 lost, 0 twice);
//   - no job appears twice at all (a step recorded twice would show here);
//   - every processed job was sent (0 phantom).
//   WF_JOBS (default 1000 acknowledged jobs), WF_MIN_CYCLES (5), WF_WORKERS (4)
import path from "node:path";
import { loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const JOBS = Number(process.env.WF_JOBS ?? 1000);
const MIN_CYCLES = Number(process.env.WF_MIN_CYCLES ?? 5);
const WORKERS = Number(process.env.WF_WORKERS ?? 4);
const { createClient } = loadClient();
const dataDir = tempDir("wf-crash-data");
const logFile = path.join(tempDir("wf-crash-log"), "anvil.log");
const keys = Array.from({ length: WORKERS }, (_, i) => ["wf-crash", String(i)]);
const acked = new Map(keys.map((k) => [k.join("/"), new Set()]));
const attempted = new Map(keys.map((k) => [k.join("/"), new Set()]));
let nextId = 0;
let ackedTotal = 0;
let cycles = 0;

while (ackedTotal < JOBS || cycles < MIN_CYCLES) {
	cycles++;
	const anvil = await startAnvil({ dataDir, logFile });
	const client = createClient({ endpoint: `${anvil.endpoint}/api/rivet`, encoding: "bare" });
	let stop = false;
	// Spread the jobs over the cycles so kills land while jobs are flowing.
	const cycleCap = Math.min(JOBS, ackedTotal + Math.ceil(JOBS / MIN_CYCLES));
	const senders = keys.map(async (k) => {
		const h = client.worker.getOrCreate(k);
		const name = k.join("/");
		while (!stop && ackedTotal < cycleCap) {
			const id = ++nextId;
			attempted.get(name).add(id);
			try {
				await h.send("jobs", { id, value: id });
				acked.get(name).add(id);
				ackedTotal++;
			} catch {
				return;
			}
		}
	});
	const killAfter = 20 + Math.floor(Math.random() * 400);
	await new Promise((r) => setTimeout(r, killAfter));
	await anvil.kill("SIGKILL");
	stop = true;
	await Promise.race([Promise.allSettled(senders), new Promise((r) => setTimeout(r, 10_000))]);
	client.dispose().catch(() => {});
	console.log(`cycle ${cycles}: killed after ${killAfter} ms, ${ackedTotal} jobs acknowledged so far`);
}

// Final restart: the workflows resume by themselves and drain the queues.
const anvil = await startAnvil({ dataDir, logFile });
const client = createClient({ endpoint: `${anvil.endpoint}/api/rivet`, encoding: "bare" });
let lost = 0;
let twice = 0;
let phantom = 0;
for (const k of keys) {
	const name = k.join("/");
	const h = client.worker.getOrCreate(k);
	const deadline = Date.now() + 60_000;
	let processed = [];
	for (;;) {
		processed = await h.getProcessed();
		const ids = new Set(processed.map((p) => p.id));
		if ([...acked.get(name)].every((id) => ids.has(id)) || Date.now() > deadline) break;
		await new Promise((r) => setTimeout(r, 100));
	}
	await new Promise((r) => setTimeout(r, 300)); // anything unacknowledged still queued drains too
	processed = await h.getProcessed();
	const seen = new Map();
	for (const p of processed) {
		seen.set(p.id, (seen.get(p.id) ?? 0) + 1);
		if (p.result !== p.id * 2) phantom++;
	}
	for (const id of acked.get(name)) if (!seen.has(id)) lost++;
	for (const [id, n] of seen) {
		if (n > 1) twice += n - 1;
		if (!attempted.get(name).has(id)) phantom++;
	}
	// FIFO per queue: acknowledged jobs from one sender are processed in order.
	const order = processed.map((p) => p.id).filter((id) => acked.get(name).has(id));
	for (let i = 1; i < order.length; i++) if (order[i] < order[i - 1]) phantom++;
	console.log(`${name}: ${acked.get(name).size} acknowledged, ${processed.length} processed`);
}
const metrics = await (await fetch(`${anvil.endpoint}/metrics`)).text();
const reexec = /anvil_workflow_step_reexecutions_total (\d+)/.exec(metrics)?.[1] ?? "?";
await client.dispose();
await anvil.kill("SIGTERM");
console.log(
	`workflow crash test: ${cycles} SIGKILL cycles, ${ackedTotal} jobs acknowledged, ${lost} lost, ` +
		`${twice} applied twice, ${phantom} phantom/out of order, step re-executions (since last restart): ${reexec}`,
);
const ok = lost === 0 && twice === 0 && phantom === 0;
console.log(`${ok ? 1 : 0} passed, ${ok ? 0 : 1} failed`);
process.exit(ok ? 0 : 1);
