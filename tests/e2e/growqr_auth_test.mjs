// GrowQR authentication and environments end to end: the real `anvil serve`
// binary, the unchanged rivetkit client, and Clerk played by a JWKS server
// in this process (RS256 keys from node:crypto).
//   - APP_ENV=production with settings missing exits non-zero before it
//     opens anything or listens, naming every missing setting on stderr;
//   - user A cannot read or drive user B's growActor through the rivetkit
//     client (HTTP actions and WebSocket connections), nor through routes;
//   - expired, unknown-kid and badly signed tokens are refused; a key
//     rotation is picked up; a WebSocket whose token expires is closed.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSign, generateKeyPairSync, randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import test from "node:test";

import { ANVIL_BIN, freePort, loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const PG = process.env.ANVIL_POSTGRES_URL;
const REDIS = process.env.ANVIL_REDIS_URL;
const missing = !PG || !REDIS;
if (missing && process.env.CI) throw new Error("ANVIL_POSTGRES_URL and ANVIL_REDIS_URL must be set in CI");

/** Runs `anvil serve` expecting it to exit by itself; its exit code, stdout, stderr. */
async function serveUntilExit(env, extraArgs = []) {
	const port = await freePort();
	const dataDir = path.join(tempDir("auth-failfast"), "data");
	const child = spawn(ANVIL_BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--app", "growqr", ...extraArgs], {
		env: { PATH: process.env.PATH, ...env },
		stdio: ["ignore", "pipe", "pipe"],
	});
	let stdout = "";
	let stderr = "";
	child.stdout.on("data", (d) => (stdout += d));
	child.stderr.on("data", (d) => (stderr += d));
	const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
	const code = await new Promise((resolve) => child.on("close", (c) => resolve(c)));
	clearTimeout(timer);
	return { code, stdout, stderr, dataDirCreated: fs.existsSync(dataDir) };
}

test("APP_ENV=production with settings missing exits non-zero before listening and names each one", async () => {
	const r = await serveUntilExit({ APP_ENV: "production" });
	assert.notEqual(r.code, 0);
	assert.doesNotMatch(r.stdout, /listening/);
	assert.equal(r.dataDirCreated, false, "nothing was opened");
	for (const setting of [
		"ANVIL_POSTGRES_URL",
		"CLERK_SECRET_KEY",
		"SERVICE_TOKEN",
		"FRONTEND_ORIGIN",
		"GITEA_TOKEN",
		"INTERVIEW_SERVICE_URL",
		"ROLEPLAY_SERVICE_URL",
		"RESUME_SERVICE_URL",
	])
		assert.match(r.stderr, new RegExp(`${setting}[^\\n]*required in production`), setting);
});

test("staging refuses URLs pointing at this host and dev fallbacks, naming each", async () => {
	const r = await serveUntilExit(
		{
			APP_ENV: "staging",
			CLERK_SECRET_KEY: "sk_live_x",
			SERVICE_TOKEN: "dev-a2a-key",
			FRONTEND_ORIGIN: "http://localhost:3000",
			GITEA_TOKEN: "t",
			GROWQR_SERVICES: "interview",
			INTERVIEW_SERVICE_URL: "http://host.docker.internal:8001",
		},
		["--postgres-url", "postgresql://growqr@127.0.0.1:5432/growqr"],
	);
	assert.notEqual(r.code, 0);
	assert.doesNotMatch(r.stdout, /listening/);
	assert.match(r.stderr, /SERVICE_TOKEN is the development fallback `dev-a2a-key`/);
	for (const key of ["FRONTEND_ORIGIN", "INTERVIEW_SERVICE_URL", "ANVIL_POSTGRES_URL"])
		assert.match(r.stderr, new RegExp(`${key} points at this host`), key);
});

test("an unknown APP_ENV is a startup error; NODE_ENV changes nothing", async () => {
	const r = await serveUntilExit({ APP_ENV: "prod" });
	assert.notEqual(r.code, 0);
	assert.match(r.stderr, /APP_ENV\/GROWQR_ENV is `prod`/);
	const node = await serveUntilExit({ NODE_ENV: "production" });
	assert.match(node.stderr + node.stdout, /needs Postgres/, "development rules: only the missing Postgres stops it");
	assert.doesNotMatch(node.stderr, /required in/);
});

// ---- Clerk, played here ----

function rsaKey(kid) {
	const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
	return { kid, privateKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, use: "sig", alg: "RS256" } };
}
const b64url = (s) => Buffer.from(s).toString("base64url");

class Clerk {
	constructor() {
		this.keys = [rsaKey("k1")];
		this.fetches = 0;
	}
	async start() {
		this.server = http.createServer((req, res) => {
			if (req.url !== "/.well-known/jwks.json") return res.writeHead(404).end();
			this.fetches += 1;
			res.writeHead(200, { "content-type": "application/json" });
			res.end(JSON.stringify({ keys: this.keys.map((k) => k.jwk) }));
		});
		await new Promise((r) => this.server.listen(0, "127.0.0.1", r));
		this.issuer = `http://127.0.0.1:${this.server.address().port}`;
		return this;
	}
	rotate(kid) {
		this.keys = [rsaKey(kid)];
	}
	mint(sub, { ttl = 60, kid, key } = {}) {
		const signer = key ?? this.keys[0];
		const now = Math.floor(Date.now() / 1000);
		const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: kid ?? signer.kid }));
		const body = b64url(JSON.stringify({ sub, iss: this.issuer, iat: now, nbf: now, exp: now + ttl }));
		const sig = createSign("RSA-SHA256").update(`${head}.${body}`).sign(signer.privateKey).toString("base64url");
		return `${head}.${body}.${sig}`;
	}
}

async function rejection(promise) {
	try {
		await promise;
	} catch (e) {
		return e;
	}
	assert.fail("expected a rejection");
}

test("user A cannot read or drive user B's growActor through rivetkit or routes", { skip: missing && "no Postgres/Redis" }, async () => {
	const clerk = await new Clerk().start();
	const run = randomUUID().slice(0, 8);
	Object.assign(process.env, {
		APP_ENV: "test",
		CLERK_JWKS_URL: `${clerk.issuer}/.well-known/jwks.json`,
		CLERK_ISSUER: clerk.issuer,
		CLERK_JWKS_MIN_REFRESH_MS: "0",
		CLERK_CLOCK_SKEW_MS: "1000",
		GROWQR_STREAM: `e2e:${run}:grow:events`,
		GROWQR_DLQ_STREAM: `e2e:${run}:grow:events:dlq`,
	});
	const node = await startAnvil({ extraArgs: ["--app", "growqr"] });
	const { createClient } = loadClient();
	const client = createClient({ endpoint: `${node.endpoint}/api/rivet`, encoding: "json" });
	const a = `user_a_${run}`;
	const b = `user_b_${run}`;
	try {
		const asA = { params: { token: clerk.mint(a) } };
		const asB = { params: { token: clerk.mint(b) } };

		// HTTP actions: B reads B's actor, A is refused (read and drive).
		const own = await client.growActor.getOrCreate([b], asB).getActiveState();
		assert.equal(own.userId, b);
		let e = await rejection(client.growActor.getOrCreate([b], asA).getActiveState());
		assert.equal(e.group, "auth");
		assert.equal(e.code, "forbidden");
		e = await rejection(client.growActor.getOrCreate([b], asA).startMission("interview-to-offer", null));
		assert.equal(e.code, "forbidden");
		e = await rejection(client.interviewToOfferMission.getOrCreate([b, "m-1"], asA).getState());
		assert.equal(e.code, "forbidden");

		// A WebSocket connection as A to B's actor is rejected.
		const conn = client.growActor.getOrCreate([b]).connect({ token: clerk.mint(a) });
		e = await rejection(conn.getActiveState());
		assert.equal(e.code, "forbidden");
		await conn.dispose();
		// ... and B's own connection works.
		const ownConn = client.growActor.getOrCreate([b]).connect({ token: clerk.mint(b) });
		assert.equal((await ownConn.getActiveState()).userId, b);
		await ownConn.dispose();

		// A connection whose token expires is closed by the node then
		// (auth.token_expired), not kept open on the old token.
		const short = client.growActor.getOrCreate([b]).connect({ token: clerk.mint(b, { ttl: 2 }) });
		const errors = [];
		short.onError((err) => errors.push(err));
		const closed = new Promise((resolve) => short.onClose(() => resolve(true)));
		assert.equal((await short.getActiveState()).userId, b);
		const openedAt = Date.now();
		const outcome = await Promise.race([closed, new Promise((r) => setTimeout(() => r(false), 15_000))]);
		assert.equal(outcome, true, "the node closed the connection");
		assert.ok(Date.now() - openedAt >= 1000, "not before the token expired");
		await new Promise((r) => setTimeout(r, 300));
		assert.ok(errors.some((err) => err.code === "token_expired"), JSON.stringify(errors.map((x) => x.code)));
		await short.dispose();

		// Bad tokens: 401 codes.
		const codeOf = async (params) => (await rejection(client.growActor.getOrCreate([a], { params }).getActiveState())).code;
		assert.equal(await codeOf(undefined), "unauthenticated");
		assert.equal(await codeOf({ token: clerk.mint(a, { ttl: -60 }) }), "token_expired");
		assert.equal(await codeOf({ token: clerk.mint(a, { kid: "nobody" }) }), "unknown_key");
		assert.equal(await codeOf({ token: clerk.mint(a, { key: rsaKey("k1") }) }), "invalid_signature");
		assert.equal(await codeOf({ devUserId: a }), "unauthenticated", "no development identity outside development");

		// Key rotation: the first token under the new kid refreshes the keys.
		clerk.rotate("k2");
		assert.equal((await client.growActor.getOrCreate([a], { params: { token: clerk.mint(a) } }).getActiveState()).userId, a);

		// Routes act for the verified caller only.
		const grow = await fetch(`${node.endpoint}/grow`, { headers: { authorization: `Bearer ${clerk.mint(a)}`, "x-user-id": b } });
		assert.equal(grow.status, 200);
		assert.equal((await grow.json()).userId, a);
		const spoof = await fetch(`${node.endpoint}/grow`, { headers: { "x-user-id": b } });
		assert.equal(spoof.status, 401);
	} finally {
		await client.dispose?.();
		await node.kill("SIGTERM");
		clerk.server.close();
	}
});
