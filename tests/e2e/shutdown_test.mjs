// Graceful shutdown of `anvil serve` (issue 11): SIGTERM with an open
// connection and an awaiting call in flight ends the process with code 0
// within a bounded time, the awaiting call is aborted rather than waited
// for, and every acknowledged write is there after the restart.
import assert from "node:assert/strict";
import test from "node:test";

import { loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";

const { createClient } = loadClient();

test("SIGTERM stops the node promptly with code 0 and keeps every acknowledged write", async () => {
	const dataDir = tempDir("shutdown");
	let node = await startAnvil({ dataDir, extraArgs: ["--shutdown-timeout", "10"] });
	let client = createClient({ endpoint: `${node.endpoint}/api/rivet` });
	const conn = client.counter.getOrCreate(["graceful"]).connect();
	for (let i = 0; i < 5; i++) await conn.increment(1);
	// An awaiting action that would take a minute.
	const slow = client.outbound.getOrCreate(["graceful"]).sleepThen(60_000, "late").then(
		() => "answered",
		(e) => e.code ?? e.message,
	);
	await new Promise((r) => setTimeout(r, 300));
	const t0 = Date.now();
	const { code, signal } = await node.kill("SIGTERM", 20_000);
	const took = Date.now() - t0;
	assert.equal(signal, null, "the node was killed instead of stopping");
	assert.equal(code, 0);
	assert.ok(took < 10_000, `shutdown took ${took} ms`);
	assert.notEqual(await slow, "answered");
	await conn.dispose().catch(() => {});

	node = await startAnvil({ dataDir });
	client = createClient({ endpoint: `${node.endpoint}/api/rivet` });
	assert.equal(await client.counter.getOrCreate(["graceful"]).getCount(), 5);
	await node.kill("SIGTERM");
});

test("--shutdown-timeout must be a positive number of seconds", async () => {
	await assert.rejects(startAnvil({ extraArgs: ["--shutdown-timeout", "0"] }), /shutdown-timeout must be at least 1/);
});
