// `anvil serve --app growqr` end to end: the real binary with the real
// Postgres and Redis (scripts/services.sh), its routes over HTTP, its stream
// consumer fed with redis-cli, a kill -9 in between, and the Rivet protocol
// still served at /api/rivet beside it.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import test from "node:test";

import { startAnvil, tempDir } from "./anvil_proc.mjs";

const PG = process.env.ANVIL_POSTGRES_URL;
const REDIS = process.env.ANVIL_REDIS_URL;
const missing = !PG || !REDIS;
if (missing && process.env.CI) throw new Error("ANVIL_POSTGRES_URL and ANVIL_REDIS_URL must be set in CI");

// Names unique to this run: the database and Redis are shared.
const run = randomUUID().slice(0, 8);
process.env.GROWQR_STREAM = `e2e:${run}:grow:events`;
process.env.GROWQR_DLQ_STREAM = `e2e:${run}:grow:events:dlq`;
process.env.GROWQR_ENV = "development";
const user = `e2e-user-${run}`;

const redis = (...args) => execFileSync("redis-cli", ["-u", REDIS, ...args], { encoding: "utf8" }).trim();

async function call(node, method, path, body, headers = {}) {
	const res = await fetch(`${node.endpoint}${path}`, {
		method,
		headers: { "content-type": "application/json", ...headers },
		body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
	});
	const text = await res.text();
	let json = null;
	try {
		json = JSON.parse(text);
	} catch {}
	return { status: res.status, json, text };
}

async function eventually(fn, ms = 15_000) {
	const end = Date.now() + ms;
	let last;
	while (Date.now() < end) {
		last = await fn();
		if (last) return last;
		await new Promise((r) => setTimeout(r, 100));
	}
	return last;
}

const event = (id, extra = {}) => ({
	id,
	type: "service.session",
	userId: user,
	occurredAt: "2026-12-01T10:00:00Z",
	payload: { note: id },
	...extra,
});

test("the application refuses to start without Postgres", { skip: missing && "no Postgres/Redis" }, async () => {
	const saved = process.env.ANVIL_POSTGRES_URL;
	delete process.env.ANVIL_POSTGRES_URL;
	try {
		await assert.rejects(startAnvil({ extraArgs: ["--app", "growqr"] }), /needs Postgres/);
	} finally {
		process.env.ANVIL_POSTGRES_URL = saved;
	}
});

test("an unknown application is a usage error", async () => {
	await assert.rejects(startAnvil({ extraArgs: ["--app", "nope"] }), /unknown application/);
});

test("events, dead letters and missions over HTTP and the stream, across a kill -9", { skip: missing && "no Postgres/Redis" }, async () => {
	const dataDir = tempDir("growqr");
	let node = await startAnvil({ dataDir, extraArgs: ["--app", "growqr"] });

	// The Rivet protocol is still there, with the application's actor types.
	const meta = await call(node, "GET", "/api/rivet/metadata");
	assert.equal(meta.status, 200);
	assert.ok(meta.json.actorNames.userEventActor, "userEventActor is registered");

	// HTTP ingest: recorded once, a duplicate says so, a malformed one is refused.
	const first = await call(node, "POST", "/events", event(`http-${run}`));
	assert.equal(first.status, 202, first.text);
	assert.equal(first.json.duplicate, false);
	const again = await call(node, "POST", "/events", event(`http-${run}`));
	assert.equal(again.status, 202, again.text);
	assert.equal(again.json.duplicate, true);
	const bad = await call(node, "POST", "/events", { type: "x", userId: user, payload: {} });
	assert.equal(bad.status, 400, bad.text);
	assert.equal(bad.json.group, "event");

	// The stream: a valid entry is recorded, a poison one is dead-lettered.
	redis("XADD", process.env.GROWQR_STREAM, "*", "event", JSON.stringify(event(`stream-${run}`)));
	redis("XADD", process.env.GROWQR_STREAM, "*", "event", "{not json");
	const listed = await eventually(async () => {
		const r = await call(node, "GET", `/events?userId=${encodeURIComponent(user)}&limit=50`);
		return r.json?.events?.some((e) => e.dedupeKey === `stream-${run}`) && r;
	});
	assert.ok(listed, "the stream event was recorded");
	const dlq = await eventually(async () => {
		const r = await call(node, "GET", "/events/dlq?limit=500");
		return r.json?.deadLetters?.some((d) => d.stream === process.env.GROWQR_STREAM && d.raw === "{not json") && r;
	});
	assert.ok(dlq, "the poison entry is in the DLQ table");
	assert.equal(Number(redis("XLEN", process.env.GROWQR_DLQ_STREAM)), 1, "and in the DLQ stream");
	const pending = redis("XPENDING", process.env.GROWQR_STREAM, "anvil");
	assert.match(pending, /^0/, `nothing left unacknowledged: ${pending}`);

	// Missions: start one through growActor.
	const headers = { "x-user-id": user };
	const catalog = await call(node, "GET", "/missions");
	assert.equal(catalog.status, 200);
	const started = await call(node, "POST", "/missions/interview-to-offer/start", {}, headers);
	assert.equal(started.status, 202, started.text);
	const mission = started.json.missionInstanceId;
	const active = await eventually(async () => {
		const g = await call(node, "GET", "/grow", undefined, headers);
		return g.json?.missions?.some((m) => m.missionInstanceId === mission && m.status === "active");
	});
	assert.ok(active, "the mission became active");

	// kill -9, restart: everything recorded is still there, duplicates still detected.
	await node.kill("SIGKILL");
	node = await startAnvil({ dataDir, extraArgs: ["--app", "growqr"] });
	const after = await call(node, "POST", "/events", event(`stream-${run}`));
	assert.equal(after.status, 202, after.text);
	assert.equal(after.json.duplicate, true, "the stream event survived the restart");
	const grow = await call(node, "GET", "/grow", undefined, headers);
	assert.ok(grow.json.missions.some((m) => m.missionInstanceId === mission), "the mission survived the restart");
	await node.kill("SIGTERM");
	redis("DEL", process.env.GROWQR_STREAM, process.env.GROWQR_DLQ_STREAM);
});
