#!/usr/bin/env node
// "No acknowledged write is lost after SIGKILL": concurrent increments on
// several counter actors through the real client (stateless HTTP actions and,
// on one WebSocket connection per actor, pipelined connection actions, which
// Anvil batches) while anvil is killed with
// SIGKILL at a random moment, then restarted on the same data directory.
// Oracle per counter actor: every acknowledged increment returned a distinct
// count, the recovered count is >= the highest acknowledged one (nothing
// lost) and <= base + attempted increments (nothing invented).
// Oracle per ledger actor (actor KV): every acknowledged put is readable with
// its value after restart (nothing lost), and every key present was at least
// attempted (no phantom writes).
// Oracle per dbCounter actor (per-actor SQLite, rows committed with the state):
// after every restart the state count equals the sum of the rows, every
// acknowledged add(n) (n unique) has its row, and every row was attempted.
//   CRASH_CYCLES (default 5; 1000 for a long manual run), CRASH_ACTORS (8),
//   CRASH_WORKERS (4 per actor), CRASH_WS_INFLIGHT (4 per actor's connection), CRASH_ENCODING (bare),
//   CRASH_TIMEOUT_S (default 120 + 20 per cycle: fail instead of hanging),
//   ANVIL_BIN (what to launch; see anvil_proc.mjs)
import path from "node:path";
import { loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const CYCLES = Number(process.env.CRASH_CYCLES ?? 5);
const ACTORS = Number(process.env.CRASH_ACTORS ?? 8);
const WORKERS = Number(process.env.CRASH_WORKERS ?? 4);
const WS_INFLIGHT = Number(process.env.CRASH_WS_INFLIGHT ?? 4);
const ENCODING = process.env.CRASH_ENCODING ?? "bare";
const TIMEOUT_S = Number(process.env.CRASH_TIMEOUT_S ?? 120 + 20 * CYCLES);
const { createClient } = loadClient();
// Bounded in time: a hung node or client fails the test (anvil_proc kills anvil on exit).
setTimeout(() => {
	console.log(`FAIL: crash test did not finish within ${TIMEOUT_S} s`);
	console.log(`${passed} passed, ${failed + 1} failed`);
	process.exit(1);
}, TIMEOUT_S * 1000).unref();

const dataDir = tempDir("crash-data");
const logFile = path.join(tempDir("crash-log"), "anvil.log");
const keys = Array.from({ length: ACTORS }, (_, i) => ["crash", String(i)]);
const base = new Map(keys.map((k) => [k.join("/"), 0])); // durable count before the cycle
let passed = 0;
let failed = 0;
let totalAcked = 0;
let totalLost = 0;
const ledgers = Array.from({ length: Math.max(1, ACTORS / 2) }, (_, i) => ["crash-ledger", String(i)]);
const kvAcked = new Map(ledgers.map((k) => [k.join("/"), new Map()])); // key -> value, acknowledged
const kvAttempted = new Map(ledgers.map((k) => [k.join("/"), new Set()]));
let kvSeq = 0;
let totalKvAcked = 0;
let totalKvLost = 0;
let totalPhantom = 0;
const dbKeys = Array.from({ length: Math.max(1, ACTORS / 2) }, (_, i) => ["crash-db", String(i)]);
const dbAcked = new Map(dbKeys.map((k) => [k.join("/"), new Set()])); // n of acknowledged adds
const dbAttempted = new Map(dbKeys.map((k) => [k.join("/"), new Set()]));
let dbSeq = 0;
let totalDbLost = 0;
let totalDbPhantom = 0;
let totalDbMismatch = 0;

// dbCounter after a restart: count == sum == sum of the listed rows, no
// acknowledged add missing, no row that was never attempted.
async function checkDbCounters(client, cycle) {
	let ok = true;
	for (const k of dbKeys) {
		const name = k.join("/");
		const h = client.dbCounter.getOrCreate(k);
		const c = await h.check();
		const present = (await h.values()).map(Number);
		const set = new Set(present);
		const sum = present.reduce((a, b) => a + b, 0);
		let lost = 0;
		let phantom = 0;
		for (const n of dbAcked.get(name)) if (!set.has(n)) lost++;
		for (const n of present) if (!dbAttempted.get(name).has(n)) phantom++;
		const consistent = Number(c.count) === Number(c.sum) && Number(c.sum) === sum && Number(c.rows) === present.length;
		totalDbLost += lost;
		totalDbPhantom += phantom;
		if (!consistent) totalDbMismatch++;
		if (lost || phantom || !consistent) {
			ok = false;
			console.log(
				`FAIL cycle ${cycle}: dbCounter ${name} count=${c.count} rows=${c.rows} sum=${c.sum} listed=${present.length}/${sum} lost=${lost} phantom=${phantom}`,
			);
		}
		// Unacknowledged adds that did land count as acknowledged from now on.
		for (const n of present) dbAcked.get(name).add(n);
	}
	return ok;
}

try {
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
		// Connection actions share the counters' oracle.
		const conns = [];
		for (const k of keys) {
			const s = stats.get(k.join("/"));
			const conn = client.counter.getOrCreate(k).connect();
			conns.push(conn);
			for (let w = 0; w < WS_INFLIGHT; w++) {
				loops.push(
					(async () => {
						while (!stop) {
							s.attempted++;
							try {
								s.acked.push(await conn.increment(1));
							} catch {
								return; // the node is gone
							}
						}
					})(),
				);
			}
		}
		for (const k of ledgers) {
			const name = k.join("/");
			for (let w = 0; w < WORKERS; w++) {
				loops.push(
					(async () => {
						const h = client.ledger.getOrCreate(k);
						while (!stop) {
							const key = `c${cycle}-w${w}-${++kvSeq}`;
							const value = `v${kvSeq}`;
							kvAttempted.get(name).add(key);
							try {
								await h.put(key, value);
								kvAcked.get(name).set(key, value);
							} catch {
								return;
							}
						}
					})(),
				);
			}
		}
		for (const k of dbKeys) {
			const name = k.join("/");
			for (let w = 0; w < WORKERS; w++) {
				loops.push(
					(async () => {
						const h = client.dbCounter.getOrCreate(k);
						while (!stop) {
							const n = ++dbSeq;
							dbAttempted.get(name).add(n);
							try {
								await h.add(n);
								dbAcked.get(name).add(n);
							} catch {
								return;
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
		// Connections must not reconnect to the restarted node and replay.
		await Promise.race([
			Promise.allSettled(conns.map((c) => c.dispose?.())),
			new Promise((r) => setTimeout(r, 5_000)),
		]);
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
			// Acknowledged values are distinct and all above the count the cycle started from.
			const distinct = new Set(s.acked).size === s.acked.length && s.acked.every((v) => v > base.get(name));
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
		for (const k of ledgers) {
			const name = k.join("/");
			const present = await client2.ledger.getOrCreate(k).list("");
			let lost = 0;
			let phantom = 0;
			for (const [key, value] of kvAcked.get(name)) if (present[key] !== value) lost++;
			for (const key of Object.keys(present)) if (!kvAttempted.get(name).has(key)) phantom++;
			totalKvLost += lost;
			totalPhantom += phantom;
			if (lost || phantom) {
				cycleOk = false;
				console.log(`FAIL cycle ${cycle}: ledger ${name} lost=${lost} phantom=${phantom}`);
			}
			// Unacknowledged puts that did land count as acknowledged from now on.
			for (const [key, value] of Object.entries(present)) kvAcked.get(name).set(key, value);
		}
		if (!(await checkDbCounters(client2, cycle))) cycleOk = false;
		totalKvAcked = [...kvAcked.values()].reduce((n, m) => n + m.size, 0);
		totalAcked += acked;
		await client2.dispose?.().catch?.(() => {});
		await again.kill("SIGTERM");
		if (cycleOk) passed++;
		else failed++;
		console.log(`cycle ${cycle}: killed after ${killAfter} ms, ${acked} increments acknowledged, ${cycleOk ? "none lost" : "LOSS"}`);
	}
} catch (err) {
	// A node that does not come back, or a check that cannot run, is a failure too.
	console.log(`FAIL: ${err.stack ?? err}`);
	failed++;
}

console.log(
	`crash test: ${CYCLES} SIGKILL cycles, ${totalAcked} acknowledged increments (${totalLost} lost), ` +
		`${totalKvAcked} KV keys written (${totalKvLost} lost, ${totalPhantom} phantom), ` +
		`${[...dbAcked.values()].reduce((n, s) => n + s.size, 0)} SQLite rows (${totalDbLost} lost, ${totalDbPhantom} phantom, ` +
		`${totalDbMismatch} count != sum) (data ${dataDir})`,
);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
