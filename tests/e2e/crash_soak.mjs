#!/usr/bin/env node
// SIGKILL crash soak under mixed load (docs/testing.md, "Crash soak"). Per
// cycle: `anvil serve` starts on the same data directory, the previous
// cycle's writes are verified, then for a random 0.2–2 s the node takes
//   - HTTP actions and WebSocket (connection) actions: counter.increment
//   - queue sends into a workflow: worker.send("jobs") -> step "process-job"
//   - schedules: scheduler.scheduleAfter(0–3 s, label) -> onFire
//   - actor KV writes: ledger.put
//   - getOrCreate races: two clients resolve the same fresh keys at once
// across many actor keys (a new set of keys every --gen cycles), with every
// acknowledged write recorded, and is SIGKILLed at a random moment.
// Oracles, checked on every restart and once more after the last one:
//   counters   the recovered count >= every acknowledged count (0 lost),
//              <= base + attempted (nothing invented), acknowledged counts
//              distinct
//   KV         every acknowledged put reads back with its value (0 lost),
//              every key present was attempted (0 phantom)
//   jobs       no job processed twice (0 steps recorded twice), none that was
//              not sent, results right, FIFO per queue; once a key set
//              retires (and at the end) every acknowledged job is processed
//              (0 lost)
//   schedules  no label fires twice or unasked; once a key set retires (and
//              at the end) every acknowledged schedule has fired, counting
//              those that fired only after a restart
//   actors     an acknowledged getOrCreate id is the one actor listed for its
//              key (GET /actors?name&key), and no key has two actors in the
//              name's listing (GET /actors?name, every 10 cycles and at the end)
// Output: one line per cycle, a summary, then "N passed, N failed" (cycles).
//   node tests/e2e/crash_soak.mjs [--cycles N] [--gen G] [--keys K]
//        [--seed S] [--data-dir DIR] [--cycle-timeout-s T]
//   defaults: 20 cycles, a new key set every 25 cycles, 4 keys per kind.
//   ANVIL_BIN / ANVIL_SHARED_DIR as in anvil_proc.mjs.
import path from "node:path";
import { parseArgs } from "node:util";
import { loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const { values: opt } = parseArgs({
	options: {
		cycles: { type: "string", default: "20" },
		gen: { type: "string", default: "25" },
		keys: { type: "string", default: "4" },
		seed: { type: "string", default: String(Date.now() % 1_000_000) },
		"data-dir": { type: "string" },
		"cycle-timeout-s": { type: "string", default: "120" },
	},
});
const CYCLES = Number(opt.cycles);
const GEN = Number(opt.gen);
const KEYS = Number(opt.keys);
const SEED = Number(opt.seed);
const CYCLE_TIMEOUT_MS = Number(opt["cycle-timeout-s"]) * 1000;
const DRAIN_TIMEOUT_MS = 60_000;
const ENCODINGS = ["bare", "cbor", "json"];
// The client logs each action a disposed connection rejects: noise here.
process.env.RIVET_LOG_LEVEL ??= "error";
const { createClient } = loadClient();

// A seeded PRNG (mulberry32) for the choices: kill times, delays, encodings.
let rngState = SEED >>> 0;
function rand() {
	rngState = (rngState + 0x6d2b79f5) >>> 0;
	let t = rngState;
	t = Math.imul(t ^ (t >>> 15), t | 1);
	t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
	return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const within = (p, ms) => Promise.race([p, sleep(ms)]);

const dataDir = opt["data-dir"] ?? tempDir("soak-data");
const logFile = path.join(tempDir("soak-log"), "anvil.log");

// ---- records (per actor key; a key set retires after its drain check)
const counters = new Map(); // name -> { key, base, acked: [], attempted }
const ledgers = new Map(); // name -> { key, acked: Map(k -> v), attempted: Set }
const workers = new Map(); // name -> { key, acked: Set, attempted: Set }
const schedulers = new Map(); // name -> { key, acked: Map(label -> {due, cycle}), attempted: Set }
const created = []; // { name, key, serialized, ids: Set } from this cycle's getOrCreate races
const totals = {
	increments: 0, incrementsLost: 0, kvAcked: 0, kvLost: 0, kvPhantom: 0,
	jobsAcked: 0, jobsProcessed: 0, jobsLost: 0, jobsTwice: 0, jobsBad: 0,
	schedAcked: 0, schedFired: 0, schedFiredAfterRestart: 0, schedLost: 0, schedTwice: 0, schedPhantom: 0,
	actorsResolved: 0, actorsWrongId: 0, duplicateActors: 0, listings: 0, stepReexecutions: 0,
	keySetsDrained: 0, killMs: 0,
};
let passed = 0;
let failed = 0;
let killTimes = []; // wall-clock ms of each SIGKILL
let nextId = 0;

const keyOf = (kind, gen, i) => [`soak-${kind}`, `g${gen}`, String(i)];
function ensure(map, kind, gen, make) {
	for (let i = 0; i < KEYS; i++) {
		const key = keyOf(kind, gen, i);
		const name = key.join("/");
		if (!map.has(name)) map.set(name, { key, gen, ...make() });
	}
	return [...map.values()].filter((r) => r.gen === gen);
}

function problem(cycle, msg) {
	console.log(`FAIL cycle ${cycle}: ${msg}`);
	return false;
}

// ---- verification on a freshly restarted node
async function verify(client, root, cycle, { drainGen = null, listAll = false } = {}) {
	let ok = true;
	for (const r of counters.values()) {
		const got = await client.counter.getOrCreate(r.key).getCount();
		const max = r.acked.length ? Math.max(...r.acked) : r.base;
		const distinct = new Set(r.acked).size === r.acked.length && r.acked.every((v) => v > r.base);
		const lost = Math.max(0, max - got);
		totals.increments += r.acked.length;
		totals.incrementsLost += lost;
		if (lost > 0 || !distinct || got > r.base + r.attempted || r.acked.length > got - r.base)
			ok = problem(cycle, `counter ${r.key} base=${r.base} acked=${r.acked.length} max=${max} recovered=${got} attempted=${r.attempted} distinct=${distinct}`);
		r.base = got;
		r.acked = [];
		r.attempted = 0;
	}
	for (const r of ledgers.values()) {
		const present = await client.ledger.getOrCreate(r.key).list("");
		let lost = 0;
		let phantom = 0;
		for (const [k, v] of r.acked) if (present[k] !== v) lost++;
		for (const k of Object.keys(present)) if (!r.attempted.has(k)) phantom++;
		totals.kvLost += lost;
		totals.kvPhantom += phantom;
		if (lost || phantom) ok = problem(cycle, `ledger ${r.key} lost=${lost} phantom=${phantom}`);
		// A put that landed without its reply counts as acknowledged from now on.
		for (const [k, v] of Object.entries(present)) r.acked.set(k, v);
	}
	for (const r of workers.values()) {
		const drain = r.gen === drainGen;
		const h = client.worker.getOrCreate(r.key);
		let processed = await h.getProcessed();
		const deadline = Date.now() + DRAIN_TIMEOUT_MS;
		while (drain && Date.now() < deadline) {
			const ids = new Set(processed.map((p) => p.id));
			if ([...r.acked].every((id) => ids.has(id))) break;
			await sleep(100);
			processed = await h.getProcessed();
		}
		const seen = new Map();
		let bad = 0;
		for (const p of processed) {
			seen.set(p.id, (seen.get(p.id) ?? 0) + 1);
			if (p.result !== p.id * 2 || !r.attempted.has(p.id)) bad++;
		}
		let twice = 0;
		for (const n of seen.values()) if (n > 1) twice += n - 1;
		const order = processed.map((p) => p.id).filter((id) => r.acked.has(id));
		for (let i = 1; i < order.length; i++) if (order[i] < order[i - 1]) bad++;
		totals.jobsTwice += twice;
		totals.jobsBad += bad;
		if (twice || bad) ok = problem(cycle, `worker ${r.key} twice=${twice} bad/unsent/out-of-order=${bad}`);
		if (drain) {
			let lost = 0;
			for (const id of r.acked) if (!seen.has(id)) lost++;
			totals.jobsLost += lost;
			totals.jobsAcked += r.acked.size;
			totals.jobsProcessed += seen.size;
			if (lost) ok = problem(cycle, `worker ${r.key} lost=${lost} of ${r.acked.size} acknowledged jobs`);
		}
	}
	for (const r of schedulers.values()) {
		const drain = r.gen === drainGen;
		const h = client.scheduler.getOrCreate(r.key);
		let fired = await h.getFired();
		const deadline = Date.now() + DRAIN_TIMEOUT_MS;
		while (drain && Date.now() < deadline) {
			const labels = new Set(fired.map((f) => f.label));
			if ([...r.acked.keys()].every((l) => labels.has(l))) break;
			await sleep(100);
			fired = await h.getFired();
		}
		const seen = new Map();
		for (const f of fired) seen.set(f.label, (seen.get(f.label) ?? 0) + 1);
		let twice = 0;
		let phantom = 0;
		for (const [label, n] of seen) {
			if (n > 1) twice += n - 1;
			if (!r.attempted.has(label)) phantom++;
		}
		totals.schedTwice += twice;
		totals.schedPhantom += phantom;
		if (twice || phantom) ok = problem(cycle, `scheduler ${r.key} fired twice=${twice} phantom=${phantom}`);
		if (drain) {
			let lost = 0;
			for (const [label, a] of r.acked) {
				const f = fired.find((x) => x.label === label);
				if (!f) {
					lost++;
					continue;
				}
				// Fired only after a restart: the cycle that asked for it was killed first.
				if (f.firedAt > killTimes[a.cycle - 1]) totals.schedFiredAfterRestart++;
			}
			totals.schedLost += lost;
			totals.schedAcked += r.acked.size;
			totals.schedFired += seen.size;
			if (lost) ok = problem(cycle, `scheduler ${r.key} lost=${lost} of ${r.acked.size} acknowledged schedules`);
		}
	}
	// Actors: each acknowledged getOrCreate names the one actor listed for its key.
	for (const c of created.splice(0)) {
		const res = await fetch(`${root}/api/rivet/actors?name=${c.name}&key=${encodeURIComponent(c.serialized)}&namespace=default`);
		const body = await res.json();
		const ids = (body.actors ?? []).map((a) => a.actor_id);
		totals.actorsResolved++;
		if (c.ids.size > 1 || ids.length !== 1 || ![...c.ids].every((id) => id === ids[0])) {
			totals.actorsWrongId++;
			ok = problem(cycle, `getOrCreate ${c.name} ${c.serialized}: acknowledged ids ${[...c.ids]} but listed ${ids}`);
		}
	}
	if (listAll) {
		for (const name of ["counter", "ledger", "worker", "scheduler"]) {
			const res = await fetch(`${root}/api/rivet/actors?name=${name}&namespace=default`);
			const body = await res.json();
			totals.listings++;
			const byKey = new Map();
			for (const a of body.actors ?? []) byKey.set(a.key, (byKey.get(a.key) ?? 0) + 1);
			for (const [key, n] of byKey) {
				if (n > 1) {
					totals.duplicateActors += n - 1;
					ok = problem(cycle, `${n} ${name} actors for key ${key}`);
				}
			}
		}
	}
	const metrics = await (await fetch(`${root}/metrics`)).text();
	totals.stepReexecutions += Number(/anvil_workflow_step_reexecutions_total (\d+)/.exec(metrics)?.[1] ?? 0);
	return ok;
}

function retire(gen) {
	for (const map of [counters, ledgers, workers, schedulers])
		for (const [name, r] of map) if (r.gen === gen) map.delete(name);
	totals.keySetsDrained++;
}

// ---- load on a live node until `stop`
function drive(client, cycle, gen, state) {
	const loops = [];
	const conns = [];
	const loop = (fn) => loops.push((async () => { while (!state.stop) if ((await fn()) === false) return; })());
	for (const r of ensure(counters, "counter", gen, () => ({ base: 0, acked: [], attempted: 0 }))) {
		for (let w = 0; w < 2; w++) {
			const h = client.counter.getOrCreate(r.key);
			loop(async () => {
				r.attempted++;
				try { r.acked.push(await h.increment(1)); } catch { return false; }
			});
		}
		const conn = client.counter.getOrCreate(r.key).connect();
		conns.push(conn);
		for (let w = 0; w < 2; w++) {
			loop(async () => {
				r.attempted++;
				try { r.acked.push(await conn.increment(1)); } catch { return false; }
			});
		}
	}
	for (const r of ensure(ledgers, "ledger", gen, () => ({ acked: new Map(), attempted: new Set() }))) {
		const h = client.ledger.getOrCreate(r.key);
		for (let w = 0; w < 2; w++) {
			loop(async () => {
				const id = ++nextId;
				const k = `c${cycle}-${id}`;
				r.attempted.add(k);
				try { await h.put(k, `v${id}`); } catch { return false; }
				r.acked.set(k, `v${id}`);
				totals.kvAcked++;
			});
		}
	}
	for (const r of ensure(workers, "worker", gen, () => ({ acked: new Set(), attempted: new Set() }))) {
		// One sender per queue, so acknowledged jobs must be processed in order.
		const h = client.worker.getOrCreate(r.key);
		loop(async () => {
			const id = ++nextId;
			r.attempted.add(id);
			try { await h.send("jobs", { id, value: id }); } catch { return false; }
			r.acked.add(id);
			await sleep(randInt(0, 8)); // the processed list is the state: keep it small
		});
	}
	for (const r of ensure(schedulers, "scheduler", gen, () => ({ acked: new Map(), attempted: new Set() }))) {
		const h = client.scheduler.getOrCreate(r.key);
		loop(async () => {
			const label = `s${++nextId}`;
			const delay = randInt(0, 3000);
			r.attempted.add(label);
			try { await h.scheduleAfter(delay, label); } catch { return false; }
			r.acked.set(label, { due: Date.now() + delay, cycle });
			await sleep(randInt(20, 60));
		});
	}
	// getOrCreate races on fresh keys: two callers per key at once.
	for (let j = 0; j < 3; j++) {
		const key = ["soak-new", `c${cycle}`, String(j)];
		const rec = { name: "counter", key, serialized: key.join("/"), ids: new Set() };
		loops.push(
			(async () => {
				const got = await Promise.allSettled([0, 1].map(() => client.counter.getOrCreate(key).resolve()));
				for (const g of got) if (g.status === "fulfilled") rec.ids.add(g.value);
				if (rec.ids.size) created.push(rec);
			})(),
		);
	}
	return { loops, conns };
}

async function runCycle(cycle) {
	const gen = Math.floor((cycle - 1) / GEN);
	const encoding = ENCODINGS[randInt(0, ENCODINGS.length - 1)];
	const t0 = Date.now();
	const anvil = await startAnvil({ dataDir, logFile });
	const client = createClient({ endpoint: `${anvil.endpoint}/api/rivet`, encoding });
	const startMs = Date.now() - t0;
	let ok = true;
	if (cycle > 1) {
		const prevGen = Math.floor((cycle - 2) / GEN);
		const drainGen = prevGen !== gen ? prevGen : null;
		ok = await verify(client, anvil.endpoint, cycle, { drainGen, listAll: cycle % 10 === 0 });
		if (drainGen !== null) retire(drainGen);
	}
	const state = { stop: false };
	const { loops, conns } = drive(client, cycle, gen, state);
	const killAfter = randInt(200, 2000);
	await sleep(killAfter);
	await anvil.kill("SIGKILL");
	killTimes[cycle - 1] = Date.now();
	state.stop = true;
	// Connections must not reconnect and replay; nothing may hang the soak.
	await within(Promise.allSettled(conns.map((c) => c.dispose?.())), 3_000);
	await within(Promise.allSettled(loops), 10_000);
	client.dispose?.().catch?.(() => {});
	totals.killMs += killAfter;
	console.log(
		`cycle ${cycle}: ${encoding}, start ${startMs} ms, killed after ${killAfter} ms, ` +
			`${ok ? "previous cycle verified" : "VERIFY FAILED"}`,
	);
	return ok;
}

let fatal = null;
const t0 = Date.now();
console.log(`crash soak: ${CYCLES} cycles, seed ${SEED}, key set every ${GEN} cycles, ${KEYS} keys per kind, data ${dataDir}`);
try {
	for (let cycle = 1; cycle <= CYCLES; cycle++) {
		let timer;
		const timeout = new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`cycle ${cycle} took over ${CYCLE_TIMEOUT_MS} ms`)), CYCLE_TIMEOUT_MS)));
		const ok = await Promise.race([runCycle(cycle), timeout]);
		clearTimeout(timer);
		// The check of cycle N runs at the start of cycle N+1.
		if (cycle > 1) ok ? passed++ : failed++;
	}
	// The last restart: verify the last cycle and drain every live key set.
	const anvil = await startAnvil({ dataDir, logFile });
	const client = createClient({ endpoint: `${anvil.endpoint}/api/rivet`, encoding: "bare" });
	const gen = Math.floor((CYCLES - 1) / GEN);
	const ok = await within(verify(client, anvil.endpoint, CYCLES + 1, { drainGen: gen, listAll: true }), CYCLE_TIMEOUT_MS * 2);
	ok === true ? passed++ : failed++;
	retire(gen);
	await client.dispose?.().catch?.(() => {});
	await anvil.kill("SIGTERM");
} catch (err) {
	fatal = err;
	console.log(`FAIL: ${err.stack ?? err}`);
	failed++;
}

const lossFree =
	totals.incrementsLost + totals.kvLost + totals.kvPhantom + totals.jobsLost + totals.jobsTwice + totals.jobsBad +
	totals.schedLost + totals.schedTwice + totals.schedPhantom + totals.actorsWrongId + totals.duplicateActors === 0;
console.log(
	`crash soak summary: ${CYCLES} SIGKILL cycles in ${Math.round((Date.now() - t0) / 1000)} s (seed ${SEED}, mean load ${Math.round(totals.killMs / CYCLES)} ms/cycle)\n` +
		`  increments (HTTP + WebSocket actions) acknowledged ${totals.increments}, lost ${totals.incrementsLost}\n` +
		`  KV puts acknowledged ${totals.kvAcked} (all re-read on every restart), lost ${totals.kvLost}, phantom ${totals.kvPhantom}\n` +
		`  queue jobs acknowledged ${totals.jobsAcked}, processed ${totals.jobsProcessed}, lost ${totals.jobsLost}, steps recorded twice ${totals.jobsTwice}, bad/out of order ${totals.jobsBad}, step re-executions after restarts (sampled at each check) ${totals.stepReexecutions}\n` +
		`  schedules acknowledged ${totals.schedAcked}, fired ${totals.schedFired} (${totals.schedFiredAfterRestart} only after a restart), lost ${totals.schedLost}, twice ${totals.schedTwice}, phantom ${totals.schedPhantom}\n` +
		`  getOrCreate races checked ${totals.actorsResolved} (wrong/duplicate id ${totals.actorsWrongId}), full listings ${totals.listings}, duplicate actors ${totals.duplicateActors}\n` +
		`  key sets drained ${totals.keySetsDrained}; ${lossFree && !fatal ? "no loss" : "LOSS OR FAILURE"}`,
);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
