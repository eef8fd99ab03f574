// Envoy mode against the real Rivet Engine 2.3.19: an Anvil node joins the
// engine as a runner, and the unchanged rivetkit client, pointed at the
// ENGINE, reaches actors the engine placed on Anvil (docs/envoy.md).
// Skipped, saying why, when the engine binary is missing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { SHARED_DIR, loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";
import { engineBinary, startEngine } from "./engine_proc.mjs";

const WebSocket = createRequire(path.join(SHARED_DIR, "rivet-ref", "package.json"))("ws");

const skip = engineBinary() ? false : "rivet-engine binary not found (set RIVET_ENGINE_BIN or install rivet-ref's node_modules)";

async function until(what, fn, ms = 15_000) {
	const deadline = Date.now() + ms;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 50));
	}
}

async function metric(node, name) {
	const text = await (await fetch(`${node.endpoint}/metrics`)).text();
	const line = text.split("\n").find((l) => l.startsWith(`${name} `));
	return line ? Number(line.split(" ")[1]) : undefined;
}

function envoyArgs(engine) {
	return ["--engine", engine.endpoint, "--engine-token", engine.token, "--namespace", engine.namespace, "--pool", engine.pool];
}

describe("envoy mode", { skip }, () => {
	let engine;
	let node;
	let client;

	before(async () => {
		engine = await startEngine();
		node = await startAnvil({ extraArgs: envoyArgs(engine) });
		await until("the node to join the engine", async () => (await metric(node, "anvil_envoy_connected")) === 1);
		const { createClient } = loadClient();
		client = createClient({ endpoint: engine.endpoint, namespace: engine.namespace, token: engine.token });
	});

	after(async () => {
		await client?.dispose?.();
		await node?.kill("SIGKILL");
		await engine?.stop();
	});

	test("the engine lists the node as an envoy of the pool, with its actor types", async () => {
		const envoys = await until("the envoy listing", async () => {
			const list = await engine.envoys();
			return list.length ? list : null;
		});
		assert.equal(envoys.length, 1);
		assert.equal(envoys[0].pool_name ?? engine.pool, engine.pool);
		assert.match(JSON.stringify(envoys[0].metadata ?? {}), /anvil/);
		const names = await engine.api("GET", "/actors/names");
		assert.equal(names.status, 200);
		const listed = JSON.stringify(names.body);
		for (const n of ["counter", "raw", "chatRoom"]) assert.match(listed, new RegExp(`"${n}"`));
	});

	test("actions through the engine reach an actor hosted by Anvil, with the engine's actor id", async () => {
		const handle = client.counter.getOrCreate(["envoy-a"]);
		assert.equal(await handle.increment(5), 5);
		assert.equal(await handle.increment(2), 7);
		assert.equal(await handle.getCount(), 7);
		const who = await handle.whoAmI();
		assert.equal(who.name, "counter");
		assert.deepEqual(who.key, ["envoy-a"]);
		const id = await handle.resolve();
		assert.equal(who.actorId, id, "the actor sees the id the engine gave it");
		assert.equal(id.length, 30);
		// Another key is another actor; the same key is the same one.
		assert.equal(await client.counter.getOrCreate(["envoy-b"]).increment(1), 1);
		assert.equal(await client.counter.getOrCreate(["envoy-a"]).getCount(), 7);
		assert.ok((await metric(node, "anvil_envoy_actors")) >= 2);
	});

	test("an action error keeps its group, code and message across the tunnel", async () => {
		const handle = client.errors.getOrCreate(["envoy-err"]);
		await assert.rejects(handle.throwUserError(), (err) => {
			assert.equal(err.group, "user");
			assert.equal(err.code, "custom_code");
			assert.equal(err.message, "Something went wrong for the user");
			return true;
		});
		assert.equal(await handle.ok(), "ok");
	});

	test("raw HTTP through the engine: method, path, query, headers and body reach onRequest", async () => {
		const id = await client.raw.getOrCreate(["envoy-raw"]).resolve();
		const res = await fetch(`${engine.endpoint}/gateway/${id}/request/some/path?x=1`, {
			method: "POST",
			headers: { "x-test": "through-the-engine", "content-type": "text/plain" },
			body: "hello",
		});
		assert.equal(res.status, 200);
		assert.equal(res.headers.get("x-raw"), "1");
		const body = await res.json();
		assert.equal(body.method, "POST");
		assert.match(body.pathname, /\/some\/path$/);
		assert.equal(body.search, "?x=1".slice(body.search.startsWith("?") ? 0 : 1));
		assert.equal(body.xTest, "through-the-engine");
		assert.equal(body.body, "hello");
		const teapot = await fetch(`${engine.endpoint}/gateway/${id}/request/status/418`);
		assert.equal(teapot.status, 418);
		assert.equal(await teapot.text(), "teapot");
	});

	test("a large request body (streamed by the engine in chunks) arrives whole", async () => {
		const id = await client.raw.getOrCreate(["envoy-big"]).resolve();
		const big = "0123456789abcdef".repeat(256 * 1024); // 4 MiB
		const res = await fetch(`${engine.endpoint}/gateway/${id}/request/big`, { method: "PUT", body: big });
		assert.equal(res.status, 200);
		const body = await res.json();
		assert.equal(body.body.length, big.length);
		assert.equal(body.body, big);
	});

	test("a connection through the engine: actions and broadcast events over the tunnel's WebSocket", async () => {
		const alice = client.chatRoom.getOrCreate(["envoy-room"]).connect({ username: "alice" });
		const bob = client.chatRoom.getOrCreate(["envoy-room"]).connect({ username: "bob" });
		const heard = [];
		bob.on("newMessage", (m) => heard.push(m));
		// An action on bob's connection: its socket is open and subscribed.
		assert.equal((await bob.whoAmI()).username, "bob");
		const sent = await alice.sendMessage("hello through the engine");
		assert.equal(sent.from, "alice");
		await until("bob to hear alice", async () => heard.length > 0);
		assert.match(JSON.stringify(heard[0]), /hello through the engine/);
		await alice.dispose();
		await bob.dispose();
	});

	test("a raw WebSocket through the engine reaches onWebSocket and echoes both ways", async () => {
		const id = await client.raw.getOrCreate(["envoy-rawws"]).resolve();
		const ws = new WebSocket(`${engine.endpoint.replace("http", "ws")}/gateway/${id}/websocket/echo`, ["rivet"]);
		const frames = [];
		ws.on("message", (data, isBinary) => frames.push({ data: Buffer.from(data), isBinary }));
		await new Promise((resolve, reject) => {
			ws.once("open", resolve);
			ws.once("error", reject);
		});
		await until("the welcome", async () => frames.length >= 1);
		assert.equal(frames[0].data.toString(), '{"type":"welcome"}');
		ws.send("ping-text");
		ws.send(Buffer.from([1, 2, 3, 250]));
		await until("two echoes", async () => frames.length >= 3);
		assert.equal(frames[1].data.toString(), "echo:ping-text");
		assert.equal(frames[1].isBinary, false);
		assert.deepEqual([...frames[2].data], [1, 2, 3, 250]);
		assert.equal(frames[2].isBinary, true);
		const closed = new Promise((r) => ws.once("close", (code) => r(code)));
		ws.close(1000, "done");
		assert.equal(await closed, 1000);
	});

	test("destroying through the engine destroys the actor on the node", async () => {
		const handle = client.counter.getOrCreate(["envoy-doomed"]);
		assert.equal(await handle.increment(3), 3);
		const id = await handle.resolve();
		const del = await engine.api("DELETE", `/actors/${id}`);
		assert.equal(del.status, 200, JSON.stringify(del.body));
		// The node's own directory no longer has it (its manager API lists by id).
		await until("the node to destroy the actor", async () => {
			const r = await fetch(`${node.endpoint}/actors?actor_ids=${id}`);
			const j = await r.json();
			return (j.actors ?? []).length === 0;
		});
		// A fresh actor under the same key starts from scratch.
		assert.equal(await client.counter.getOrCreate(["envoy-doomed"]).increment(1), 1);
	});

	test("requests for an actor the node does not host get a clear refusal", async () => {
		// Straight to the engine's gateway with an id it does not know.
		const res = await fetch(`${engine.endpoint}/gateway/${"0".repeat(30)}/action/increment`, {
			method: "POST",
			headers: { "content-type": "application/json", "x-rivet-encoding": "json" },
			body: JSON.stringify({ args: [] }),
		});
		assert.ok(res.status >= 400, `status ${res.status}`);
	});

	test("an https:// engine: the node checks its certificate and joins through TLS", async () => {
		// A TLS front for the engine (its own port is plain), with a certificate for localhost.
		const dir = tempDir("envoy-tls");
		const key = path.join(dir, "key.pem");
		const cert = path.join(dir, "cert.pem");
		execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
			"-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"], { stdio: "ignore" });
		const enginePort = Number(new URL(engine.endpoint).port);
		const front = tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (sock) => {
			const up = net.connect(enginePort, "127.0.0.1");
			sock.pipe(up).pipe(sock);
			sock.on("error", () => up.destroy());
			up.on("error", () => sock.destroy());
		});
		await new Promise((r) => front.listen(0, "127.0.0.1", r));
		const url = `https://localhost:${front.address().port}`;
		const trusting = await startAnvil({ extraArgs: ["--engine", url, "--engine-token", engine.token, "--engine-ca-file", cert] });
		const untrusting = await startAnvil({ extraArgs: ["--engine", url, "--engine-token", engine.token] });
		try {
			await until("the node trusting the certificate to join", async () => (await metric(trusting, "anvil_envoy_connected")) === 1);
			await until("the engine to list it", async () => (await engine.envoys()).length >= 2);
			// The other does not trust it: no connection, and its log says why.
			await new Promise((r) => setTimeout(r, 1000));
			assert.equal(await metric(untrusting, "anvil_envoy_connected"), 0);
			assert.match(fs.readFileSync(untrusting.logFile, "utf8"), /TLS handshake with the engine .* failed/);
		} finally {
			await trusting.kill("SIGKILL");
			await untrusting.kill("SIGKILL");
			front.close();
		}
	});

	test("SIGTERM drains: the node tells the engine, which stops its actors, and the node exits 0", async () => {
		const other = await startAnvil({ extraArgs: envoyArgs(engine) });
		await until("the second node to join", async () => (await metric(other, "anvil_envoy_connected")) === 1);
		const handle = client.counter.getOrCreate(["envoy-drain"]);
		await handle.increment(1);
		const started = Date.now();
		const { code } = await node.kill("SIGTERM", 20_000);
		assert.equal(code, 0);
		assert.ok(Date.now() - started < 15_000, "drained within the shutdown bound");
		node = other;
		// The engine moved every actor to the node still there; it answers.
		const moved = client.counter.getOrCreate(["envoy-drain"]);
		assert.equal(typeof (await moved.getCount()), "number");
	});
});
