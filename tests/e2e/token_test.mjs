#!/usr/bin/env node
// Gateway and admin tokens (operator-guide.md, "Security") with the real,
// unchanged rivetkit client: its `token` option opens every route of a node
// started with --token; no token or a wrong one is refused 403 api.forbidden;
// /metrics wants the admin token; a public --listen wants a token.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { test, after, before } from "node:test";
import { ANVIL_BIN, freePort, loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const { createClient } = loadClient();
const TOKEN = "s3cr.et-token";
const ADMIN = "adm1n-token";
let anvil;
let base;
const uniq = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;

before(async () => {
	anvil = await startAnvil({
		logFile: path.join(tempDir("token-log"), "anvil.log"),
		extraArgs: ["--token", TOKEN, "--admin-token", ADMIN],
	});
	base = `${anvil.endpoint}/api/rivet`;
});
after(async () => anvil?.kill("SIGTERM"));

const isForbidden = (err) => err?.group === "api" && err?.code === "forbidden";

test("the rivetkit client with the node's token calls actions over HTTP and over a connection", async () => {
	for (const encoding of ["json", "cbor", "bare"]) {
		const client = createClient({ endpoint: base, token: TOKEN, encoding });
		const key = [`tok-${encoding}-${uniq()}`];
		const h = client.counter.getOrCreate(key);
		assert.equal(await h.increment(2), 2);
		const id = await h.resolve();
		assert.equal(await client.counter.getForId(id).getCount(), 2);
		const conn = h.connect();
		try {
			assert.equal(await conn.increment(3), 5);
		} finally {
			await conn.dispose();
		}
		// The manager API (Authorization: Bearer) lists it.
		const res = await fetch(`${base}/actors?name=counter&key=${encodeURIComponent(key[0])}&namespace=default`, {
			headers: { authorization: `Bearer ${TOKEN}` },
		});
		assert.equal(res.status, 200);
		assert.equal((await res.json()).actors[0].actor_id, id);
		await client.dispose();
	}
});

test("the rivetkit client without a token or with a wrong one is refused with api.forbidden", async () => {
	for (const token of [undefined, "wrong-token"]) {
		const client = createClient({ endpoint: base, token, encoding: "json" });
		await assert.rejects(client.counter.getOrCreate([`denied-${uniq()}`]).increment(1), isForbidden);
		// A connection is closed 1011 api.forbidden, which the client reports as such.
		const conn = client.counter.getOrCreate([`denied-${uniq()}`]).connect();
		conn.onError?.(() => {});
		await assert.rejects(conn.increment(1), isForbidden);
		await conn.dispose().catch(() => {});
		await client.dispose();
	}
	// Nothing was created by the refused requests.
	const listed = await fetch(`${base}/actors?name=counter&namespace=default`, { headers: { authorization: `Bearer ${TOKEN}` } });
	for (const a of (await listed.json()).actors) assert.doesNotMatch(a.key, /denied-/);
	const res = await fetch(`${base}/actors?name=counter&namespace=default`);
	assert.equal(res.status, 403);
	assert.equal(res.headers.get("x-rivet-error"), "api.forbidden");
	assert.deepEqual(await res.json(), { group: "api", code: "forbidden", message: "Access denied" });
});

test("metadata stays open, as on the engine", async () => {
	assert.equal((await fetch(`${base}/metadata`)).status, 200);
});

test("metrics answer the admin token only, not the client token", async () => {
	assert.equal((await fetch(`${anvil.endpoint}/metrics`)).status, 403);
	assert.equal((await fetch(`${anvil.endpoint}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 403);
	const res = await fetch(`${anvil.endpoint}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
	assert.equal(res.status, 200);
	assert.match(await res.text(), /anvil_/);
});

function runAnvil(args) {
	return new Promise((resolve) => {
		const child = spawn(ANVIL_BIN, ["serve", ...args], { stdio: ["ignore", "pipe", "pipe"] });
		let out = "";
		child.stdout.on("data", (d) => (out += d));
		child.stderr.on("data", (d) => (out += d));
		const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
		child.on("close", (code) => {
			clearTimeout(timer);
			resolve({ code, out });
		});
	});
}

test("a non-loopback listen address without a token is refused unless --allow-unauthenticated", async () => {
	const port = await freePort();
	const dataDir = tempDir("token-listen");
	const refused = await runAnvil(["--listen", `0.0.0.0:${port}`, "--data-dir", dataDir]);
	assert.equal(refused.code, 2, refused.out);
	assert.match(refused.out, /refusing to listen on 0\.0\.0\.0:\d+ without a token/);
	assert.match(refused.out, /--allow-unauthenticated/);
});
