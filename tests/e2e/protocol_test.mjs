#!/usr/bin/env node
// Wire-level checks of client-protocol.md §9 that the shared suite does not
// reach through the client: raw HTTP and WebSocket against `anvil serve`.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";
import { test, after, before } from "node:test";
import { SHARED_DIR, loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const WebSocket = createRequire(path.join(SHARED_DIR, "rivet-ref", "package.json"))("ws");
let anvil;
let base;
const uniq = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;

before(async () => {
	anvil = await startAnvil({ logFile: path.join(tempDir("protocol-log"), "anvil.log") });
	base = `${anvil.endpoint}/api/rivet`;
});
after(async () => anvil?.kill("SIGTERM"));

const json = (method, url, body, headers = {}) =>
	fetch(url, {
		method,
		headers: { "content-type": "application/json", ...headers },
		body: body === undefined ? undefined : JSON.stringify(body),
	});

const putActor = async (name, key, extra = {}) =>
	(await json("PUT", `${base}/actors?namespace=default`, { name, key, runner_name_selector: "default", crash_policy: "sleep", ...extra })).json();

test("metadata answers JSON at / and at /api/rivet, with and without Authorization", async () => {
	for (const url of [`${anvil.endpoint}/metadata`, `${base}/metadata?namespace=default`]) {
		const res = await fetch(url, { headers: { authorization: "Bearer x" } });
		assert.equal(res.status, 200);
		const body = await res.json();
		assert.equal(typeof body, "object");
		assert.equal(body.clientEndpoint, undefined);
	}
});

test("PUT /actors creates once and then returns the same actor", async () => {
	const key = `k${uniq()}`;
	const a = await putActor("counter", key);
	const b = await putActor("counter", key);
	assert.equal(a.created, true);
	assert.equal(b.created, false);
	assert.equal(a.actor.actor_id, b.actor.actor_id);
	for (const f of ["actor_id", "name", "key", "namespace_id", "runner_name_selector"]) assert.equal(typeof a.actor[f], "string");
	assert.equal(typeof a.actor.create_ts, "number");
	assert.equal(a.actor.key, key);
});

test("POST /actors on a used key is actor.duplicate_key naming the existing actor", async () => {
	const key = `d${uniq()}`;
	const a = await (await json("POST", `${base}/actors`, { name: "counter", key, runner_name_selector: "default", crash_policy: "sleep" })).json();
	const res = await json("POST", `${base}/actors`, { name: "counter", key, runner_name_selector: "default", crash_policy: "sleep" });
	assert.ok(res.status >= 400);
	const err = await res.json();
	assert.equal(err.group, "actor");
	assert.equal(err.code, "duplicate_key");
	assert.equal(err.metadata.existing_actor_id, a.actor.actor_id);
});

test("input given to PUT reaches createState (base64 CBOR-compat)", async () => {
	// {hello:"world"} = b9 0001 65"hello" 65"world"
	const a = await putActor("lifecycle", `i${uniq()}`, { input: "uQABZWhlbGxvZXdvcmxk" });
	const res = await json("POST", `${base}/gateway/${a.actor.actor_id}/action/getInput`, { args: [] }, { "x-rivet-encoding": "json" });
	assert.deepEqual((await res.json()).output, { input: { hello: "world" }, createInput: { hello: "world" } });
});

test("GET /actors by ids and by name+key; empty list when absent; 400 without either", async () => {
	const key = `g${uniq()}`;
	const a = await putActor("counter", key);
	const byId = await (await fetch(`${base}/actors?actor_ids=${a.actor.actor_id}&namespace=default`)).json();
	assert.equal(byId.actors[0].actor_id, a.actor.actor_id);
	const byKey = await (await fetch(`${base}/actors?name=counter&key=${encodeURIComponent(key)}&namespace=default`)).json();
	assert.equal(byKey.actors[0].actor_id, a.actor.actor_id);
	const none = await (await fetch(`${base}/actors?name=counter&key=nope${uniq()}`)).json();
	assert.deepEqual(none.actors, []);
	const bad = await fetch(`${base}/actors`);
	assert.equal(bad.status, 400);
	assert.equal((await bad.json()).group, "validation");
});

test("keys with '/', '\\\\' and empty components are distinct and round-trip", async () => {
	const keys = ["/", "\\0", "a\\/b", "a/b", "c\\\\d"];
	const ids = new Set();
	for (const k of keys) {
		const a = await putActor("counter", `${k}`);
		assert.equal(a.actor.key, k);
		ids.add(a.actor.actor_id);
	}
	assert.equal(ids.size, keys.length);
});

test("unknown actor name is a prompt 400 actor.not_registered", async () => {
	const res = await json("PUT", `${base}/actors`, { name: "nope", key: "/", runner_name_selector: "default", crash_policy: "sleep" });
	assert.equal(res.status, 400);
	assert.equal((await res.json()).code, "not_registered");
	const gw = await json("POST", `${base}/gateway/nope/action/x?rvt-namespace=default&rvt-method=getOrCreate&rvt-key=a`, { args: [] });
	assert.equal(gw.status, 400);
});

test("unknown route is 404 api.not_found JSON with a ray id", async () => {
	const res = await fetch(`${base}/no/such/route`);
	assert.equal(res.status, 404);
	assert.match(res.headers.get("content-type"), /application\/json/);
	assert.ok(res.headers.get("x-rivet-ray-id"));
	const body = await res.json();
	assert.equal(body.group, "api");
	assert.equal(body.code, "not_found");
	assert.equal(typeof body.message, "string");
});

test("id, @token and header addressing reach the same actor", async () => {
	const a = await putActor("counter", `t${uniq()}`);
	const id = a.actor.actor_id;
	const call = (url, headers = {}) =>
		json("POST", url, { args: [1] }, { "x-rivet-encoding": "json", ...headers }).then((r) => r.json());
	assert.equal((await call(`${base}/gateway/${id}/action/increment`)).output, 1);
	assert.equal((await call(`${base}/gateway/${id}@${encodeURIComponent("s3cr/et")}/action/increment`)).output, 2);
	assert.equal(
		(await call(`${base}/gateway/${id}/action/increment`, { "x-rivet-target": "actor", "x-rivet-actor": id, "x-rivet-skip-ready-wait": "1" })).output,
		3,
	);
	// rvt-* query form with token and skip-ready-wait for the same key
	const q = `rvt-namespace=default&rvt-method=get&rvt-key=${encodeURIComponent(a.actor.key)}&rvt-token=x&rvt-skip-ready-wait=true`;
	assert.equal((await call(`${base}/gateway/counter/action/getCount?${q}`)).output, 3);
});

test("rvt-method=get on a missing key is 404 actor.not_found; bad rvt params are 400", async () => {
	const miss = await json("POST", `${base}/gateway/counter/action/getCount?rvt-namespace=default&rvt-method=get&rvt-key=missing${uniq()}`, { args: [] });
	assert.equal(miss.status, 404);
	assert.equal((await miss.json()).code, "not_found");
	const unknown = await json("POST", `${base}/gateway/counter/action/getCount?rvt-method=get&rvt-bogus=1`, { args: [] });
	assert.equal(unknown.status, 400);
	assert.equal((await unknown.json()).code, "query_unknown_param");
});

test("rvt-key splits on commas; PUT keys do not (the engine's quirk)", async () => {
	const k = `e${uniq()}`;
	const viaGateway = await json("POST", `${base}/gateway/counter/action/whoAmI?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=${k}%2Cf&rvt-crash-policy=sleep`, { args: [] }, { "x-rivet-encoding": "json" });
	assert.deepEqual((await viaGateway.json()).output.key, [k, "f"]);
});

test("header-routed raw request and rvt-stripped query reach onRequest", async () => {
	const a = await putActor("raw", `r${uniq()}`);
	const res = await fetch(`${base}/request/hello?x=1&y=2`, { headers: { "x-rivet-target": "actor", "x-rivet-actor": a.actor.actor_id, "x-test": "h" } });
	const j = await res.json();
	assert.equal(j.pathname, "/hello");
	assert.equal(j.search, "?x=1&y=2");
	assert.equal(j.xTest, "h");
	const q = await (await fetch(`${base}/gateway/raw/request/p?a=1&rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=r${uniq()}&rvt-crash-policy=sleep&b=2`)).json();
	assert.equal(q.search, "?a=1&b=2");
});

test("raw bodies of 1 MiB round-trip both ways, sent chunked", async () => {
	const a = await putActor("raw", `big${uniq()}`);
	const big = "x".repeat(1024 * 1024 + 7);
	const stream = new ReadableStream({
		start(c) {
			const enc = new TextEncoder();
			for (let i = 0; i < big.length; i += 65536) c.enqueue(enc.encode(big.slice(i, i + 65536)));
			c.close();
		},
	});
	const res = await fetch(`${base}/gateway/${a.actor.actor_id}/request/big`, { method: "PUT", body: stream, duplex: "half" });
	assert.equal(res.status, 200);
	const j = await res.json();
	assert.equal(j.body.length, big.length);
});

test("chunked action bodies work in every encoding; bare trailing bytes are 400", async () => {
	const a = await putActor("counter", `c${uniq()}`);
	const chunked = (bytes, enc) =>
		fetch(`${base}/gateway/${a.actor.actor_id}/action/increment`, {
			method: "POST",
			headers: { "x-rivet-encoding": enc, "content-type": "application/octet-stream" },
			body: new ReadableStream({ start(c) { c.enqueue(bytes); c.close(); } }),
			duplex: "half",
		});
	// bare: 04 00 + data(len 2, CBOR [5]) = 04 00 02 81 05
	let res = await chunked(new Uint8Array([4, 0, 2, 0x81, 5]), "bare");
	assert.equal(res.status, 200);
	assert.deepEqual([...new Uint8Array(await res.arrayBuffer())], [4, 0, 1, 5]);
	res = await chunked(new Uint8Array([4, 0, 2, 0x81, 5, 0]), "bare");
	assert.equal(res.status, 400);
	res = await chunked(new TextEncoder().encode("{not json"), "json");
	assert.equal(res.status, 400);
	assert.equal((await res.json()).code, "invalid_request");
});

test("CORS: preflight echoes origin and requested headers; responses expose headers", async () => {
	const pre = await fetch(`${base}/gateway/x/action/y`, {
		method: "OPTIONS",
		headers: { origin: "http://example.test", "access-control-request-method": "POST", "access-control-request-headers": "x-rivet-encoding,content-type" },
	});
	assert.equal(pre.status, 204);
	assert.equal(pre.headers.get("access-control-allow-origin"), "http://example.test");
	assert.equal(pre.headers.get("access-control-allow-credentials"), "true");
	assert.equal(pre.headers.get("access-control-allow-headers"), "x-rivet-encoding,content-type");
	assert.match(pre.headers.get("access-control-allow-methods"), /POST/);
	const api = await fetch(`${base}/metadata`, { method: "OPTIONS", headers: { origin: "http://example.test", "access-control-request-method": "GET" } });
	assert.equal(api.status, 200);
	const res = await fetch(`${base}/metadata`, { headers: { origin: "http://example.test" } });
	assert.equal(res.headers.get("access-control-allow-origin"), "http://example.test");
	assert.equal(res.headers.get("access-control-expose-headers"), "*");
});

const openWs = (url, protocols) =>
	new Promise((resolve, reject) => {
		const ws = new WebSocket(url, protocols);
		const frames = [];
		ws.on("message", (data, isBinary) => frames.push({ data, isBinary }));
		ws.once("open", () => resolve({ ws, frames }));
		ws.once("error", reject);
	});
const closed = (ws) => new Promise((r) => ws.once("close", (code, reason) => r({ code, reason: reason.toString() })));
const wsBase = () => base.replace("http", "ws");

test("connect selects subprotocol rivet, sends Init first, and text frames for json", async () => {
	const a = await putActor("counter", `w${uniq()}`);
	const { ws, frames } = await openWs(`${wsBase()}/gateway/${a.actor.actor_id}/connect`, ["rivet", "rivet_encoding.json"]);
	assert.equal(ws.protocol, "rivet");
	await new Promise((r) => setTimeout(r, 100));
	assert.equal(frames[0].isBinary, false);
	const init = JSON.parse(frames[0].data.toString());
	assert.equal(init.body.tag, "Init");
	assert.equal(init.body.val.actorId, a.actor.actor_id);
	ws.close(1000, "Disposed");
	assert.equal((await closed(ws)).code, 1000);
});

test("an undecodable frame closes 1011 actor.invalid_request and the actor lives on", async () => {
	const a = await putActor("counter", `m${uniq()}`);
	const { ws } = await openWs(`${wsBase()}/gateway/${a.actor.actor_id}/connect`, ["rivet", "rivet_encoding.bare"]);
	const c = closed(ws);
	ws.send(Buffer.from([4, 0, 9, 9, 9]));
	assert.deepEqual(await c, { code: 1011, reason: "actor.invalid_request" });
	const res = await json("POST", `${base}/gateway/${a.actor.actor_id}/action/getCount`, { args: [] }, { "x-rivet-encoding": "json" });
	assert.equal((await res.json()).output, 0);
});

test("an oversized frame closes 1011 message.incoming_too_long", async () => {
	const a = await putActor("counter", `o${uniq()}`);
	const { ws } = await openWs(`${wsBase()}/gateway/${a.actor.actor_id}/connect`, ["rivet", "rivet_encoding.json"]);
	const c = closed(ws);
	ws.send("x".repeat(5 * 1024 * 1024));
	assert.deepEqual(await c, { code: 1011, reason: "message.incoming_too_long" });
});

test("an unknown encoding closes 1003", async () => {
	const a = await putActor("counter", `u${uniq()}`);
	const { ws } = await openWs(`${wsBase()}/gateway/${a.actor.actor_id}/connect`, ["rivet", "rivet_encoding.xml"]);
	assert.equal((await closed(ws)).code, 1003);
});

test("header-routed WebSocket via subprotocols reaches the actor", async () => {
	const a = await putActor("counter", `h${uniq()}`);
	const { ws, frames } = await openWs(`${wsBase()}/connect`, ["rivet", "rivet_encoding.json", "rivet_target.actor", `rivet_actor.${a.actor.actor_id}`, "rivet_token.tok", "rivet_skip_ready_wait"]);
	await new Promise((r) => setTimeout(r, 100));
	assert.equal(JSON.parse(frames[0].data.toString()).body.val.actorId, a.actor.actor_id);
	ws.close();
});

test("a burst of 200 getOrCreate+increment on a new key makes one actor with count 200", async () => {
	const { createClient } = loadClient();
	const client = createClient({ endpoint: base, encoding: "bare" });
	const key = ["burst", uniq()];
	const results = await Promise.all(Array.from({ length: 200 }, () => client.counter.getOrCreate(key).increment(1)));
	assert.equal(new Set(results).size, 200);
	assert.equal(await client.counter.getOrCreate(key).getCount(), 200);
	const list = await (await fetch(`${base}/actors?name=counter&key=${encodeURIComponent(`burst/${key[1]}`)}`)).json();
	assert.equal(list.actors.length, 1);
	await client.dispose();
});
