#!/usr/bin/env node
// "No acknowledged write is lost after SIGKILL": concurrent increments on
// several counter actors through the real client while anvil is killed with
// SIGKILL at a random moment, then restarted on the same data directory.
// Oracle per actor: every acknowledged increment returned a distinct count,
// the recovered count is >= the highest acknowledged one (nothing lost) and
// <= base + attempted increments (nothing invented).
//   CRASH_CYCLES (default 5), CRASH_ACTORS (8), CRASH_WORKERS (4 per actor),
//   CRASH_ENCODING (bare)
import path from "node:path";
import { loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const CYCLES = Number(process.env.CRASH_CYCLES ?? 5);
const ACTORS = Number(process.env.CRASH_ACTORS ?? 8);
const WORKERS = Number(process.env.CRASH_WORKERS ?? 4);
const ENCODING = process.env.CRASH_ENCODING ?? "bare";
const { createClient } = loadClient();

const dataDir = tempDir("crash-data");
const logFile = path.join(tempDir("crash-log"), "anvil.log");
const keys = Array.from({ length: ACTORS }, (_, i) => ["crash", String(i)]);
const base = new Map(keys.map((k) => [k.join("/"), 0])); // durable count before the cycle
let passed = 0;
let failed = 0;
let totalAcked = 0;
let totalLost = 0;

for (let cycle = 1; cycle <= CYCLES; cycle++) {
	const anvil = await startAnvil({ dataDir, logFile });
	const client = createClient({ endpoint: `${anvil.endpoint}/api/rivet`, encoding: ENCODING });
	const stats = new Map(keys.map((k) => [k.join("/"), { acked: [], attempted: 0 }]));

	// Recovery check for the previous cycle happens first, on the restarted node.
	for (const k of keys) {
		const name = k.join("/");
		const got = await client.counter.getOrCreate(k).getCount();
		if (got !== base.get(name)) {
			// base holds the previous cycle's recovered count; it must not move by itself.
			console.log(`FAIL cycle ${cycle}: ${name} count ${got} != ${base.get(name)} after restart`);
			failed++;
		}
	}

	let stop = false;
	const loops = [];
	for (const k of keys) {
		const s = stats.get(k.join("/"));
		for (let w = 0; w < WORKERS; w++) {
			loops.push(
				(async () => {
					const h = client.counter.getOrCreate(k);
					while (!stop) {
						s.attempted++;
						try {
							s.acked.push(await h.increment(1));
						} catch {
							return; // the node is gone
						}
					}
				})(),
			);
		}
	}
	const killAfter = 300 + Math.floor(Math.random() * 1200);
	await new Promise((r) => setTimeout(r, killAfter));
	await anvil.kill("SIGKILL");
	stop = true;
	await Promise.race([Promise.allSettled(loops), new Promise((r) => setTimeout(r, 10_000))]);
	client.dispose?.().catch?.(() => {});

	// Restart and check the oracle.
	const again = await startAnvil({ dataDir, logFile });
	const client2 = createClient({ endpoint: `${again.endpoint}/api/rivet`, encoding: ENCODING });
	let cycleOk = true;
	let acked = 0;
	for (const k of keys) {
		const name = k.join("/");
		const s = stats.get(name);
		const got = await client2.counter.getOrCreate(k).getCount();
		const max = s.acked.length ? Math.max(...s.acked) : base.get(name);
		const distinct = new Set(s.acked).size === s.acked.length;
		const lost = Math.max(0, max - got);
		const phantom = got > base.get(name) + s.attempted;
		acked += s.acked.length;
		totalLost += lost;
		const grew = got - base.get(name);
		if (!distinct || lost > 0 || phantom || s.acked.length > grew) {
			cycleOk = false;
			console.log(
				`FAIL cycle ${cycle}: ${name} base=${base.get(name)} acked=${s.acked.length} max=${max} recovered=${got} attempted=${s.attempted} distinct=${distinct}`,
			);
		}
		base.set(name, got);
	}
	totalAcked += acked;
	await client2.dispose?.().catch?.(() => {});
	await again.kill("SIGTERM");
	if (cycleOk) passed++;
	else failed++;
	console.log(`cycle ${cycle}: killed after ${killAfter} ms, ${acked} increments acknowledged, ${cycleOk ? "none lost" : "LOSS"}`);
}

console.log(`crash test: ${CYCLES} SIGKILL cycles, ${totalAcked} acknowledged increments, ${totalLost} lost (data ${dataDir})`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
