// Envoy mode with two rivet-engine 2.3.19 processes of one cluster: shared
// Postgres storage and NATS pubsub (2.3.19 refuses a second engine on one
// Postgres without NATS: "udb postgres single-node failed to acquire leader
// lease ... configure NATS"). A client talking to engine A reaches actors
// hosted by an Anvil node attached only to engine B, over HTTP and
// WebSockets. Needs ANVIL_POSTGRES_URL and nats-server (required in CI);
// skipped, saying which is missing, elsewhere.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { freePort, loadClient, startAnvil } from "./anvil_proc.mjs";
import { engineBinary, startEngine } from "./engine_proc.mjs";

const PG = process.env.ANVIL_POSTGRES_URL;
let natsBin = null;
for (const p of ["/usr/sbin/nats-server", "/usr/bin/nats-server"]) {
	try {
		execFileSync(p, ["--version"], { stdio: "ignore" });
		natsBin = p;
		break;
	} catch {}
}
const missing = [!engineBinary() && "the rivet-engine binary", !PG && "ANVIL_POSTGRES_URL", !natsBin && "nats-server"].filter(Boolean);
if (missing.length && process.env.CI) throw new Error(`envoy multi-engine test needs ${missing.join(", ")} in CI`);
const skip = missing.length ? `needs ${missing.join(", ")}` : false;

// A fresh database on the test Postgres (the engine creates its schema).
function freshDatabase() {
	const name = `rivet_multi_${process.pid}_${Date.now()}`;
	const admin = new URL(PG);
	admin.pathname = "/postgres";
	execFileSync("psql", [admin.toString(), "-q", "-c", `CREATE DATABASE ${name}`], { stdio: "inherit" });
	const url = new URL(PG);
	url.pathname = `/${name}`;
	return { url: url.toString(), drop: () => execFileSync("psql", [admin.toString(), "-q", "-c", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { stdio: "ignore" }) };
}

describe("envoy mode under two engine processes", { skip }, () => {
	let nats, db, engineA, engineB, node, clientA, clientB;

	before(async () => {
		const natsPort = await freePort();
		nats = spawn(natsBin, ["-a", "127.0.0.1", "-p", String(natsPort)], { stdio: "ignore" });
		process.on("exit", () => nats.kill("SIGKILL"));
		db = freshDatabase();
		const shared = { postgresUrl: db.url, natsAddress: `127.0.0.1:${natsPort}` };
		// One after the other: both initialising the schema at once races.
		engineA = await startEngine(shared);
		engineB = await startEngine({ ...shared, peerOf: engineA });
		node = await startAnvil({ extraArgs: ["--engine", engineB.endpoint, "--engine-token", engineB.token] });
		const { createClient } = loadClient();
		clientA = createClient({ endpoint: engineA.endpoint, namespace: "default", token: engineA.token });
		clientB = createClient({ endpoint: engineB.endpoint, namespace: "default", token: engineB.token });
	});

	after(async () => {
		await clientA?.dispose?.();
		await clientB?.dispose?.();
		await node?.kill("SIGKILL");
		await engineB?.stop();
		await engineA?.stop();
		nats?.kill("SIGTERM");
		db?.drop();
	});

	test("both engines list the node, which is attached to engine B only", async () => {
		for (const engine of [engineA, engineB]) {
			const deadline = Date.now() + 15_000;
			while ((await engine.envoys()).length !== 1) {
				assert.ok(Date.now() < deadline, `engine ${engine.endpoint} lists the envoy`);
				await new Promise((r) => setTimeout(r, 100));
			}
		}
	});

	test("a client of engine A reaches an actor hosted under engine B, and both see one actor", async () => {
		const key = ["multi", String(Date.now())];
		assert.equal(await clientA.counter.getOrCreate(key).increment(5), 5);
		assert.equal(await clientB.counter.getOrCreate(key).increment(1), 6);
		assert.equal(await clientA.counter.getOrCreate(key).getCount(), 6);
		assert.equal(await clientA.counter.getOrCreate(key).resolve(), await clientB.counter.getOrCreate(key).resolve());
	});

	test("a WebSocket connection through engine A reaches the node under engine B", async () => {
		const key = ["multi-ws", String(Date.now())];
		const conn = clientA.chatRoom.getOrCreate(key).connect({ username: "via-a" });
		const heard = [];
		conn.on("newMessage", (m) => heard.push(m));
		assert.equal((await conn.whoAmI()).username, "via-a");
		assert.equal((await conn.sendMessage("across engines")).text, "across engines");
		const deadline = Date.now() + 10_000;
		while (heard.length === 0) {
			assert.ok(Date.now() < deadline, "the broadcast arrives");
			await new Promise((r) => setTimeout(r, 50));
		}
		await conn.dispose();
	});
});
