#!/usr/bin/env node
// `anvil actors ls|get --json` (docs/operator-guide.md, "The anvil CLI"),
// the real binary against actors made by the real rivetkit client: online
// (--endpoint, admin token required since the node has one) and offline
// (--data-dir) against the data directory of the RUNNING node, then of the
// same node after a graceful stop and after a SIGKILL. Online and offline
// must print the same JSON.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test, after, before } from "node:test";
import { ANVIL_BIN, freePort, loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const { createClient } = loadClient();
const TOKEN = "cli-client-token";
const ADMIN = "cli-admin-token";
let anvil;
let client;
let dataDir;
const ids = {};

// Runs the anvil binary; returns {code, stdout, stderr}. ANVIL_* settings
// come only from `env` (never from this test's environment).
function cli(args, env = {}) {
	const base = { ...process.env };
	for (const name of ["ANVIL_ADMIN_TOKEN", "ANVIL_CA_FILE", "ANVIL_ENDPOINT", "ANVIL_TOKEN", "ANVIL_LISTEN", "ANVIL_DATA_DIR",
		"ANVIL_POSTGRES_URL", "ANVIL_REDIS_URL", "ANVIL_ALLOW_UNAUTHENTICATED"])
		delete base[name];
	const r = spawnSync(ANVIL_BIN, args, { env: { ...base, ...env }, encoding: "utf8", timeout: 60_000 });
	return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const online = (args) => cli(["actors", ...args, "--endpoint", anvil.endpoint, "--admin-token", ADMIN]);
const offline = (args) => cli(["actors", ...args, "--data-dir", dataDir]);
function json(r) {
	assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
	return JSON.parse(r.stdout);
}
const byId = (list) => [...list].sort((a, b) => (a.id < b.id ? -1 : 1));

before(async () => {
	dataDir = tempDir("cli-data");
	anvil = await startAnvil({
		dataDir,
		logFile: path.join(tempDir("cli-log"), "anvil.log"),
		extraArgs: ["--token", TOKEN, "--admin-token", ADMIN],
	});
	client = createClient({ endpoint: `${anvil.endpoint}/api/rivet`, token: TOKEN, encoding: "json" });
	const a = client.counter.getOrCreate(["cli", "a"]);
	assert.equal(await a.increment(3), 3);
	ids.a = await a.resolve();
	const b = client.counter.getOrCreate(["cli", "b"]);
	assert.equal(await b.increment(7), 7);
	ids.b = await b.resolve();
	await b.goToSleep();
	// Created through the manager API, never started: asleep, no start time.
	ids.room = await client.chatRoom.getOrCreate(["cli-room"]).resolve();
	// b's sleep is committed shortly after its reply: wait until the node says so.
	for (let i = 0; i < 200; i++) {
		const got = json(online(["get", ids.b, "--json"]));
		if (!got.awake && got.sleepTs) break;
		await new Promise((r) => setTimeout(r, 25));
	}
});
after(async () => {
	await client?.dispose();
	await anvil?.kill("SIGKILL");
});

test("ls --json online lists every actor as {id, name, key, awake}", () => {
	const list = json(online(["ls", "--json"]));
	assert.deepEqual(byId(list), byId([
		{ id: ids.a, name: "counter", key: ["cli", "a"], awake: true },
		{ id: ids.b, name: "counter", key: ["cli", "b"], awake: false },
		{ id: ids.room, name: "chatRoom", key: ["cli-room"], awake: false },
	]));
});

test("ls --json offline against the running node's data directory prints what online prints", () => {
	assert.equal(offline(["ls", "--json"]).stdout, online(["ls", "--json"]).stdout);
	assert.equal(offline(["ls", "--json", "--name", "counter"]).stdout, online(["ls", "--json", "--name", "counter"]).stdout);
});

test("get --json shows the actor's state, key and times, the same online and offline", () => {
	const on = json(online(["get", ids.a, "--json"]));
	assert.equal(on.id, ids.a);
	assert.equal(on.name, "counter");
	assert.deepEqual(on.key, ["cli", "a"]);
	assert.equal(on.awake, true);
	assert.deepEqual(on.state, { count: 3 });
	assert.match(on.inspectorToken, /^[0-9a-f]{64}$/);
	assert.ok(on.createdAt > 0 && on.startTs >= on.createdAt, JSON.stringify(on));
	assert.ok(on.stateBytes > 0);
	assert.deepEqual(json(offline(["get", ids.a, "--json"])), on);
	const b = json(offline(["get", ids.b, "--json"]));
	assert.equal(b.awake, false);
	assert.deepEqual(b.state, { count: 7 });
	assert.deepEqual(json(online(["get", ids.b, "--json"])), b);
	// By name and key instead of id.
	assert.deepEqual(json(offline(["get", "--name", "counter", "--key", "cli/b", "--json"])), b);
	assert.equal(json(online(["get", "--name", "counter", "--key", "cli/a", "--json"])).id, ids.a);
	assert.equal(online(["get", "--name", "counter", "--key", "cli", "--json"]).code, 1, "a prefix is not the key");
	assert.equal(online(["get", "--name", "counter", "--json"]).code, 2);
});

test("filters and pages give the same answers online and offline", () => {
	for (const args of [
		["--name", "chatRoom"],
		["--key-prefix", "cli/"],
		["--key-prefix", "cli"],
		["--awake"],
		["--asleep"],
	]) {
		const on = json(online(["ls", "--json", ...args]));
		assert.deepEqual(json(offline(["ls", "--json", ...args])), on, args.join(" "));
	}
	assert.deepEqual(json(online(["ls", "--json", "--name", "chatRoom"])).map((a) => a.id), [ids.room]);
	assert.equal(json(online(["ls", "--json", "--key-prefix", "cli/"])).length, 2);
	assert.equal(json(online(["ls", "--json", "--key-prefix", "cli"])).length, 3);
	assert.deepEqual(json(online(["ls", "--json", "--awake"])).map((a) => a.id), [ids.a]);
	assert.deepEqual(json(online(["ls", "--json", "--asleep"])).map((a) => a.id).sort(), [ids.b, ids.room].sort());
	// One page of 2, then the rest after the printed cursor.
	const page = online(["ls", "--json", "--limit", "2"]);
	const first = json(page);
	assert.equal(first.length, 2);
	const cursor = page.stderr.match(/next cursor: (\S+)/)?.[1];
	assert.ok(cursor, page.stderr);
	const rest = json(offline(["ls", "--json", "--limit", "2", "--cursor", cursor]));
	assert.deepEqual(byId([...first, ...rest]).map((a) => a.id), byId(json(online(["ls", "--json"]))).map((a) => a.id));
});

test("online needs the admin token: none, or the client token, is refused with exit 1", () => {
	for (const env of [{}, { ANVIL_ADMIN_TOKEN: TOKEN }]) {
		const r = cli(["actors", "ls", "--json", "--endpoint", anvil.endpoint], env);
		assert.equal(r.code, 1, r.stdout + r.stderr);
		assert.match(r.stderr, /api\.forbidden/);
	}
	const r = cli(["actors", "ls", "--json", "--endpoint", anvil.endpoint], { ANVIL_ADMIN_TOKEN: ADMIN });
	assert.equal(r.code, 0, r.stderr);
});

test("a table without --json; exit 1 for an unknown actor, 2 for bad usage, 0 for --help", () => {
	const table = online(["ls"]);
	assert.equal(table.code, 0, table.stderr);
	assert.match(table.stdout, /^ID\s+NAME\s+KEY\s+AWAKE\n/);
	assert.match(table.stdout, new RegExp(`${ids.a}\\s+counter\\s+cli/a\\s+yes`));
	const detail = offline(["get", ids.b]);
	assert.equal(detail.code, 0, detail.stderr);
	assert.match(detail.stdout, /state:\s+\{"count":7\}/);
	for (const run of [online, offline]) {
		const missing = run(["get", "0000000000000000000000000", "--json"]);
		assert.equal(missing.code, 1);
		assert.match(missing.stderr, /actor\.not_found/);
	}
	assert.equal(cli(["actors", "frobnicate"]).code, 2);
	assert.equal(cli(["actors", "ls", "--bogus", "--data-dir", dataDir]).code, 2);
	assert.equal(cli(["actors", "ls"]).code, 2, "no source");
	assert.equal(cli(["actors", "ls", "--endpoint", anvil.endpoint, "--data-dir", dataDir]).code, 2);
	assert.equal(cli(["actors", "ls", "--awake", "--asleep", "--data-dir", dataDir]).code, 2);
	assert.equal(cli(["actors", "get", "--data-dir", dataDir]).code, 2, "get without an id");
	for (const args of [["--help"], ["ls", "--help"], ["get", "--help"]]) {
		const r = cli(["actors", ...args]);
		assert.equal(r.code, 0);
		assert.match(r.stdout, /anvil actors ls/);
	}
	assert.equal(cli(["actors", "ls", "--data-dir", tempDir("cli-nothing")]).code, 1);
});

test("state, schedules, kv, workflow and sql print the same online and offline", async () => {
	const sched = client.scheduler.getOrCreate(["cli-sched"]);
	await sched.scheduleAfter(3_600_000, "later");
	const schedId = await sched.resolve();
	const db = client.dbCounter.getOrCreate(["cli-db"]);
	await db.add(2);
	await db.add(5);
	const dbId = await db.resolve();
	for (const args of [
		["state", ids.a],
		["schedules", schedId],
		["kv", ids.a],
		["workflow", ids.a],
		["sql", dbId, "SELECT n FROM adds ORDER BY id"],
	]) {
		const on = online([...args, "--json"]);
		assert.equal(on.code, 0, `${args.join(" ")}: ${on.stderr}`);
		assert.equal(offline([...args, "--json"]).stdout, on.stdout, args.join(" "));
	}
	assert.deepEqual(json(online(["state", ids.a, "--json"])), { count: 3 });
	const schedules = json(offline(["schedules", schedId, "--json"]));
	assert.equal(schedules.length, 1);
	assert.equal(schedules[0].action, "onFire");
	assert.equal(schedules[0].args[0], "later");
	assert.deepEqual(json(online(["sql", dbId, "SELECT SUM(n) AS total FROM adds", "--json"])), {
		columns: ["total"],
		rows: [[7]],
		truncated: false,
	});
	const write = offline(["sql", dbId, "DELETE FROM adds"]);
	assert.equal(write.code, 1);
	assert.match(write.stderr, /validation\.invalid_input/);
	assert.deepEqual(await db.check(), { count: 7, rows: 2, sum: 7 });
	const table = offline(["sql", dbId, "SELECT n FROM adds ORDER BY id"]);
	assert.match(table.stdout, /^n\n2\n5\n\(2 rows\)\n$/);
});

test("state --set replaces the state through the node, durably; refused offline", async () => {
	const h = client.counter.getOrCreate(["cli", "set"]);
	await h.increment(1);
	const id = await h.resolve();
	const set = online(["state", id, "--set", '{"count":41}']);
	assert.equal(set.code, 0, set.stderr);
	assert.deepEqual(JSON.parse(set.stdout), { count: 41 });
	assert.equal(await h.increment(1), 42);
	assert.deepEqual(json(offline(["state", id, "--json"])), { count: 42 });
	assert.equal(offline(["state", id, "--set", '{"count":0}']).code, 2);
	assert.equal(online(["state", id, "--set", "{not json"]).code, 2);
});

test("queue --send/--purge, conns and schedules --cancel change the actor through the node only", async () => {
	const h = client.counter.getOrCreate(["cli", "ops"]);
	await h.increment(1);
	const id = await h.resolve();
	// queue: send (any queue name), list online and offline, purge.
	const sent = online(["queue", id, "--send", "inbox", "--body", '{"n":1}', "--json"]);
	assert.equal(sent.code, 0, sent.stderr);
	assert.equal(JSON.parse(sent.stdout).name, "inbox");
	const listed = json(online(["queue", id, "--json"]));
	assert.equal(listed.size, 1);
	assert.deepEqual(listed.messages[0].body, { n: 1 });
	assert.equal(offline(["queue", id, "--json"]).stdout, online(["queue", id, "--json"]).stdout);
	assert.match(online(["queue", id]).stdout, /^ID\s+NAME\s+CREATED\s+BODY\n/);
	assert.equal(online(["queue", id, "--purge"]).code, 2, "--purge without --yes");
	assert.equal(offline(["queue", id, "--purge", "--yes"]).code, 2, "offline");
	assert.deepEqual(json(online(["queue", id, "--purge", "--yes", "--json"])), { purged: 1 });
	assert.equal(json(offline(["queue", id, "--json"])).size, 0);
	// conns: live, online only.
	const room = client.chatRoom.getOrCreate(["cli-ops-room"]);
	const conn = room.connect({ username: "carol" });
	await conn.whoAmI();
	const roomId = await room.resolve();
	const conns = json(online(["conns", roomId, "--json"]));
	assert.equal(conns.length, 1);
	assert.deepEqual(conns[0].params, { username: "carol" });
	assert.equal(offline(["conns", roomId]).code, 2);
	await conn.dispose();
	// schedules --cancel.
	const sched = client.scheduler.getOrCreate(["cli-ops-sched"]);
	await sched.scheduleAfter(3_600_000, "later");
	const schedId = await sched.resolve();
	const [pending] = json(online(["schedules", schedId, "--json"]));
	assert.equal(offline(["schedules", schedId, "--cancel", pending.id]).code, 2);
	assert.deepEqual(json(online(["schedules", schedId, "--cancel", pending.id, "--json"])), { cancelled: true });
	assert.deepEqual(json(offline(["schedules", schedId, "--json"])), []);
	assert.equal(online(["schedules", schedId, "--cancel", pending.id]).code, 1, "already cancelled");
	// workflow --replay: refused while the workflow runs (exit 1), offline (exit 2).
	const worker = client.worker.getOrCreate(["cli-ops-worker"]);
	await worker.getWakes();
	const workerId = await worker.resolve();
	const replay = online(["workflow", workerId, "--replay"]);
	assert.equal(replay.code, 1, replay.stdout);
	assert.match(replay.stderr, /actor\.workflow_in_flight/);
	assert.equal(offline(["workflow", workerId, "--replay"]).code, 2);
});

test("destroy needs --yes and the node; the actor is gone online and offline", async () => {
	const h = client.counter.getOrCreate(["cli", "doomed"]);
	await h.increment(1);
	const id = await h.resolve();
	assert.equal(online(["destroy", id]).code, 2, "without --yes");
	assert.equal(offline(["destroy", id, "--yes"]).code, 2, "offline");
	const r = online(["destroy", id, "--yes", "--json"]);
	assert.equal(r.code, 0, r.stderr);
	assert.deepEqual(JSON.parse(r.stdout), { id, destroyed: true });
	assert.equal(online(["get", id, "--json"]).code, 1);
	assert.equal(offline(["get", id, "--json"]).code, 1);
	assert.equal(online(["destroy", id, "--yes"]).code, 1, "already gone");
});

test("doctor checks the running node's data directory and port, and reports an unreachable Redis", async () => {
	const listen = `127.0.0.1:${anvil.port}`;
	const r = cli(["doctor", "--data-dir", dataDir, "--listen", listen, "--json"]);
	assert.equal(r.code, 0, r.stdout + r.stderr);
	const checks = Object.fromEntries(JSON.parse(r.stdout).map((c) => [c.check, c]));
	assert.deepEqual(Object.keys(checks).sort(), ["config", "data-dir", "disk", "port", "postgres", "redis"]);
	assert.equal(checks["data-dir"].status, "ok");
	assert.match(checks["data-dir"].detail, /a node is running on it/);
	assert.equal(checks.port.status, "ok");
	assert.match(checks.port.detail, /in use/);
	const free = await freePort();
	const bad = cli(["doctor", "--data-dir", dataDir, "--listen", listen, "--redis-url", `redis://127.0.0.1:${free}`]);
	assert.equal(bad.code, 1, bad.stdout);
	assert.match(bad.stdout, /^FAIL\s+redis\s+127\.0\.0\.1:\d+: Connection refused$/m);
	assert.match(bad.stdout, /^ok\s+data-dir/m);
	assert.equal(cli(["doctor", "--bogus"]).code, 2);
	assert.equal(cli(["doctor", "--listen", "0.0.0.0:1"], {}).code, 1, "a public listen without a token");
});

test("--ca-file (or ANVIL_CA_FILE) makes an https:// node with a private certificate trusted", async () => {
	const dir = tempDir("cli-tls");
	const cert = path.join(dir, "cert.pem");
	const key = path.join(dir, "key.pem");
	const made = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=anvil-cli-test",
		"-addext", "subjectAltName=IP:127.0.0.1"], { encoding: "utf8" });
	assert.equal(made.status, 0, `openssl: ${made.stderr}`);
	const node = await startAnvil({ tls: { cert, key }, extraArgs: ["--admin-token", ADMIN],
		logFile: path.join(tempDir("cli-tls-log"), "anvil.log") });
	try {
		const args = ["actors", "ls", "--json", "--endpoint", node.endpoint, "--admin-token", ADMIN];
		const untrusted = cli(args);
		assert.equal(untrusted.code, 1, untrusted.stderr);
		assert.match(untrusted.stderr, /certificate/i);
		assert.deepEqual(json(cli([...args, "--ca-file", cert])), []);
		assert.deepEqual(json(cli(args, { ANVIL_CA_FILE: cert })), []);
		const missing = cli([...args, "--ca-file", path.join(dir, "absent.pem")]);
		assert.equal(missing.code, 1);
		assert.match(missing.stderr, /absent\.pem/);
	} finally {
		await node.kill("SIGKILL");
	}
});

test("after a graceful stop the data directory lists the same actors, all asleep, with their state", async () => {
	const before = byId(json(online(["ls", "--json"])));
	const stateBefore = json(online(["get", ids.a, "--json"])).state;
	await client.dispose();
	client = null;
	const { code } = await anvil.kill("SIGTERM");
	assert.equal(code, 0);
	const afterStop = byId(json(offline(["ls", "--json"])));
	assert.deepEqual(afterStop, before.map((a) => ({ ...a, awake: false })));
	const a = json(offline(["get", ids.a, "--json"]));
	assert.deepEqual(a.state, stateBefore);
	assert.ok(a.sleepTs >= a.startTs, JSON.stringify(a));

	// A node killed while an actor is awake: its record still says awake,
	// but nothing runs on the directory, so the CLI says asleep.
	anvil = await startAnvil({ dataDir, logFile: path.join(tempDir("cli-log2"), "anvil.log"), extraArgs: ["--admin-token", ADMIN] });
	const c = createClient({ endpoint: `${anvil.endpoint}/api/rivet`, encoding: "json" });
	assert.equal(await c.counter.getOrCreate(["cli", "a"]).increment(1), 4);
	assert.equal(json(online(["get", ids.a, "--json"])).awake, true);
	assert.equal(json(offline(["get", ids.a, "--json"])).awake, true);
	await c.dispose();
	await anvil.kill("SIGKILL");
	const killed = json(offline(["get", ids.a, "--json"]));
	assert.equal(killed.awake, false);
	assert.deepEqual(killed.state, { count: 4 });
	assert.ok(json(offline(["ls", "--json"])).every((x) => x.awake === false));
});
