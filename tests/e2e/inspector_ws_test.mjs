#!/usr/bin/env node
// Rivet's inspector live WebSocket (/gateway/{id}/inspector/connect,
// protocol v6) against a real node, spoken with rivetkit 2.3.19's own
// inspector codec (rivetkit/inspector/client) and cbor-x, over the `ws`
// client, as Rivet's dashboard speaks it: Init first, answers by request id,
// pushes on change, and rivetkit's refusals (1002 bad version, 1008 bad token).
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { test, after, before } from "node:test";
import { SHARED_DIR, loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const require = createRequire(path.join(SHARED_DIR, "rivet-ref", "package.json"));
const WebSocket = require("ws");
const cbor = require("cbor-x");
const codec = await import(
	pathToFileURL(path.join(SHARED_DIR, "rivet-ref", "node_modules", "rivetkit", "dist", "browser", "inspector", "client.js")).href
);

const { createClient } = loadClient();
let anvil;
let client;
let id;
let token;

before(async () => {
	anvil = await startAnvil({ dataDir: tempDir("insp-ws-data"), logFile: path.join(tempDir("insp-ws-log"), "anvil.log") });
	client = createClient({ endpoint: `${anvil.endpoint}/api/rivet`, encoding: "json" });
	const counter = client.counter.getOrCreate(["insp-ws"]);
	assert.equal(await counter.increment(1), 1);
	id = await counter.resolve();
	token = (await (await fetch(`${anvil.endpoint}/admin/actors/${id}`)).json()).inspectorToken;
	assert.match(token, /^[0-9a-f]{64}$/);
});
after(async () => {
	await client?.dispose();
	await anvil?.kill("SIGKILL");
});

// An inspector socket: decoded messages in arrival order, and the close.
function open({ version = "6", tokenValue = token, protocols, actor = id } = {}) {
	const q = version === null ? "" : `?protocol_version=${version}`;
	const url = `${anvil.endpoint.replace(/^http/, "ws")}/gateway/${actor}/inspector/connect${q}`;
	const ws = new WebSocket(url, protocols ?? ["rivet", `rivet_inspector_token.${tokenValue}`]);
	ws.binaryType = "arraybuffer";
	const inbox = [];
	let wake = null;
	ws.on("message", (data) => {
		inbox.push(codec.decodeToClient(new Uint8Array(data)).body);
		wake?.();
	});
	const closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
	const opened = new Promise((resolve, reject) => {
		ws.on("open", () => resolve(ws.protocol));
		ws.on("error", reject);
	});
	// The oldest message with `tag`, taken out of the inbox, within 5 s.
	// Messages of other kinds stay: a push and an answer may arrive in either
	// order (each goes out once its commit is durable).
	async function next(tag) {
		const deadline = Date.now() + 5000;
		for (;;) {
			const i = inbox.findIndex((m) => m.tag === tag);
			if (i >= 0) return inbox.splice(i, 1)[0].val;
			if (Date.now() > deadline) throw new Error(`no ${tag}; got ${inbox.map((m) => m.tag).join(", ")}`);
			await new Promise((r) => {
				wake = r;
				setTimeout(r, 50);
			});
		}
	}
	const send = (tag, val) => ws.send(codec.encodeToServer({ body: { tag, val } }));
	return { ws, next, send, closed, opened, inbox };
}
const decode = (buf) => cbor.decode(new Uint8Array(buf));
const tokenOf = async (actorId) => (await (await fetch(`${anvil.endpoint}/admin/actors/${actorId}`)).json()).inspectorToken;

test("the actor's /metadata announces a rivetkit version that selects protocol v6", async () => {
	const res = await fetch(`${anvil.endpoint}/gateway/${id}/metadata`);
	assert.equal(res.status, 200);
	const body = await res.json();
	assert.equal(body.version, "2.3.19");
	assert.equal(body.type, "local");
});

test("Init comes first with the state, actions and counts; the subprotocol `rivet` is echoed", async () => {
	const s = open();
	assert.equal(await s.opened, "rivet");
	const init = await s.next("Init");
	assert.equal(s.inbox.length, 0);
	assert.deepEqual(decode(init.state), { count: 1 });
	assert.equal(init.isStateEnabled, true);
	assert.ok(init.rpcs.includes("increment") && init.rpcs.includes("getCount"), init.rpcs.join());
	assert.equal(init.queueSize, 0n);
	assert.equal(init.isWorkflowEnabled, false);
	assert.deepEqual(init.connections, []);
	assert.deepEqual(init.schedules, []);
	s.ws.close();
	await s.closed;
});

test("a sleeping actor is woken by the socket and Init is still the first message", async () => {
	const counter = client.counter.getOrCreate(["insp-ws-sleeper"]);
	await counter.increment(5);
	const sleeperId = await counter.resolve();
	await counter.goToSleep();
	for (let i = 0; i < 200; i++) {
		const a = await (await fetch(`${anvil.endpoint}/admin/actors/${sleeperId}`)).json();
		if (!a.awake) break;
		await new Promise((r) => setTimeout(r, 25));
	}
	const s = open({ actor: sleeperId, tokenValue: await tokenOf(sleeperId) });
	await s.opened;
	for (let i = 0; i < 100 && s.inbox.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
	assert.equal(s.inbox[0]?.tag, "Init", s.inbox.map((m) => m.tag).join());
	assert.deepEqual(decode(s.inbox[0].val.state), { count: 5 });
	// The wake's own writes may follow as pushes, never before.
	await new Promise((r) => setTimeout(r, 300));
	assert.equal(s.inbox.filter((m) => m.tag === "Init").length, 1);
	s.ws.close();
	await s.closed;
});

test("requests are answered by id; an action's change is pushed as StateUpdated", async () => {
	const s = open();
	await s.next("Init");
	s.send("ActionRequest", { id: 7n, name: "increment", args: cbor.encode([2]) });
	const res = await s.next("ActionResponse");
	assert.equal(res.rid, 7n);
	assert.equal(decode(res.output), 3);
	assert.deepEqual(decode((await s.next("StateUpdated")).state), { count: 3 });

	// A change made by another client is pushed too.
	assert.equal(await client.counter.getOrCreate(["insp-ws"]).increment(4), 7);
	assert.deepEqual(decode((await s.next("StateUpdated")).state), { count: 7 });

	s.send("StateRequest", { id: 8n });
	const st = await s.next("StateResponse");
	assert.equal(st.rid, 8n);
	assert.deepEqual(decode(st.state), { count: 7 });
	s.send("RpcsListRequest", { id: 9n });
	assert.ok((await s.next("RpcsListResponse")).rpcs.includes("increment"));
	s.send("QueueRequest", { id: 10n, limit: 50n });
	const q = await s.next("QueueResponse");
	assert.equal(q.rid, 10n);
	assert.equal(q.status.size, 0n);
	assert.equal(q.status.truncated, false);
	s.send("SchedulesRequest", { id: 11n });
	assert.deepEqual((await s.next("SchedulesResponse")).schedules, []);
	s.send("DatabaseSchemaRequest", { id: 12n });
	assert.deepEqual(decode((await s.next("DatabaseSchemaResponse")).schema), { tables: [] });
	s.ws.close();
	await s.closed;
});

test("PatchState replaces the state durably and answers StateUpdated", async () => {
	const s = open();
	await s.next("Init");
	s.send("PatchStateRequest", { state: cbor.encode({ count: 42 }) });
	assert.deepEqual(decode((await s.next("StateUpdated")).state), { count: 42 });
	assert.equal(await client.counter.getOrCreate(["insp-ws"]).getCount(), 42);
	s.ws.close();
	await s.closed;
});

test("a client's connection is pushed as ConnectionsUpdated, and its end too", async () => {
	const s = open();
	await s.next("Init");
	const conn = client.counter.getOrCreate(["insp-ws"]).connect();
	await conn.getCount();
	const added = await s.next("ConnectionsUpdated");
	assert.equal(added.connections.length, 1);
	assert.equal(decode(added.connections[0].details).stateEnabled, true);
	await conn.dispose();
	assert.equal((await s.next("ConnectionsUpdated")).connections.length, 0);
	s.ws.close();
	await s.closed;
});

test("a bad frame or a failing action answers Error and the socket stays open", async () => {
	const s = open();
	await s.next("Init");
	s.ws.send(new Uint8Array([0xee, 0x01]));
	assert.match((await s.next("Error")).message, /inspector message/);
	s.send("ActionRequest", { id: 1n, name: "noSuchAction", args: cbor.encode([]) });
	assert.match((await s.next("Error")).message, /noSuchAction/);
	s.send("StateRequest", { id: 2n });
	assert.equal((await s.next("StateResponse")).rid, 2n);
	s.ws.close();
	await s.closed;
});

test("a wrong token closes 1008 inspector.unauthorized; a missing or unknown version 1002", async () => {
	const bad = open({ tokenValue: "0".repeat(64) });
	assert.deepEqual(await bad.closed, { code: 1008, reason: "inspector.unauthorized" });
	const none = open({ protocols: ["rivet"] });
	assert.deepEqual(await none.closed, { code: 1008, reason: "inspector.unauthorized" });
	for (const version of [null, "7", "wat"]) {
		const s = open({ version });
		assert.deepEqual(await s.closed, { code: 1002, reason: "inspector.invalid_protocol_version" }, `version ${version}`);
	}
});

test("a workflow actor's history arrives as rivetkit's transport bytes, in Init and on request", async () => {
	const worker = client.worker.getOrCreate(["insp-ws"]);
	await worker.send("jobs", { id: 1, value: 21 });
	for (let i = 0; i < 200 && (await worker.getProcessed()).length < 1; i++) await new Promise((r) => setTimeout(r, 25));
	const workerId = await worker.resolve();
	const s = open({ actor: workerId, tokenValue: await tokenOf(workerId) });
	const init = await s.next("Init");
	assert.equal(init.isWorkflowEnabled, true);
	assert.ok(init.workflowHistory, "Init carries the history");
	const history = codec.decodeWorkflowHistoryTransport(new Uint8Array(init.workflowHistory));
	assert.ok(history.entries.length > 0);
	assert.ok(history.nameRegistry.length > 0);
	for (const e of history.entries) assert.ok(history.entryMetadata.has(e.id), `metadata for ${e.id}`);
	const step = history.entries.find((e) => e.kind.tag === "WorkflowStepEntry");
	assert.ok(step, "a step entry");

	s.send("WorkflowHistoryRequest", { id: 3n });
	const res = await s.next("WorkflowHistoryResponse");
	assert.equal(res.rid, 3n);
	assert.equal(res.isWorkflowEnabled, true);
	assert.deepEqual(
		codec.decodeWorkflowHistoryTransport(new Uint8Array(res.history)).entries.map((e) => e.id),
		history.entries.map((e) => e.id),
	);
	s.ws.close();
	await s.closed;
});

test("a counter's WorkflowHistoryResponse says no workflow; schedules are listed and deleted", async () => {
	const s = open();
	await s.next("Init");
	s.send("WorkflowHistoryRequest", { id: 1n });
	const w = await s.next("WorkflowHistoryResponse");
	assert.equal(w.isWorkflowEnabled, false);
	assert.equal(w.history, null);
	s.ws.close();
	await s.closed;

	const scheduler = client.scheduler.getOrCreate(["insp-ws"]);
	await scheduler.scheduleAfter(600_000, "later");
	const schedulerId = await scheduler.resolve();
	const t = open({ actor: schedulerId, tokenValue: await tokenOf(schedulerId) });
	const init = await t.next("Init");
	assert.equal(init.schedules.length, 1);
	const [sc] = init.schedules;
	assert.equal(sc.kind, "at");
	assert.ok(sc.nextRunAt > BigInt(Date.now()));
	t.send("ScheduleDeleteRequest", { id: 2n, scheduleId: sc.id, kind: "at" });
	const del = await t.next("ScheduleDeleteResponse");
	assert.equal(del.deleted, true);
	assert.deepEqual((await t.next("SchedulesUpdated")).schedules, []);
	t.send("ScheduleDeleteRequest", { id: 3n, scheduleId: sc.id, kind: "at" });
	assert.equal((await t.next("ScheduleDeleteResponse")).deleted, false);
	t.send("ScheduleDeleteRequest", { id: 4n, scheduleId: sc.id, kind: "weekly" });
	assert.match((await t.next("Error")).message, /invalid inspector schedule kind/);
	t.ws.close();
	await t.closed;
});
