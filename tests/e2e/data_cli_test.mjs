// `anvil data export|import|compact` with the real binary: actors exported
// from a running node's data directory, imported into a new node's, are the
// same actors there (ids, keys, state, KV); a damaged archive imports
// nothing; import and compact refuse a directory a node is using.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ANVIL_BIN, startAnvil, tempDir } from "./anvil_proc.mjs";

const anvil = (...args) => spawnSync(ANVIL_BIN, args, { encoding: "utf8" });

async function action(node, id, name, args = []) {
	const res = await fetch(`${node.endpoint}/gateway/${id}/action/${name}`, {
		method: "POST",
		headers: { "content-type": "application/json", "x-rivet-encoding": "json" },
		body: JSON.stringify({ args }),
	});
	assert.equal(res.status, 200, await res.clone().text());
	return (await res.json()).output;
}

async function getOrCreate(node, name, key) {
	const res = await fetch(`${node.endpoint}/actors?namespace=default`, {
		method: "PUT",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ name, key, runner_name_selector: "default", crash_policy: "sleep" }),
	});
	return (await res.json()).actor.actor_id;
}

test("actors exported from a running node come back whole on a new node; a damaged archive imports nothing", async () => {
	const a = await startAnvil();
	const ids = {};
	for (const key of ["move-1", "move-2", "move-3"]) {
		ids[key] = await getOrCreate(a, "counter", key);
		for (let i = 0; i < (key === "move-2" ? 5 : 2); i++) await action(a, ids[key], "increment", [1]);
	}
	const stay = await getOrCreate(a, "chatRoom", "stays");

	const archive = path.join(tempDir("archive"), "counters.anvil");
	const exp = anvil("data", "export", "--data-dir", a.dataDir, "--name", "counter", "-o", archive);
	assert.equal(exp.status, 0, exp.stderr);
	assert.match(exp.stderr, /exported 3 actors/);
	assert.match(exp.stderr, /export: 3\/3/, "plain progress lines when stderr is not a terminal");

	const busy = anvil("data", "import", "--data-dir", a.dataDir, archive);
	assert.equal(busy.status, 1);
	assert.match(busy.stderr, /in use|stop the node/);
	await a.kill("SIGTERM");

	const bDir = tempDir("data-b");
	const damaged = path.join(tempDir("archive-bad"), "bad.anvil");
	const bytes = fs.readFileSync(archive);
	bytes[Math.floor(bytes.length / 2)] ^= 0x40;
	fs.writeFileSync(damaged, bytes);
	const bad = anvil("data", "import", "--data-dir", bDir, damaged);
	assert.equal(bad.status, 1);
	assert.match(bad.stderr, /archive\.invalid/);

	const imp = anvil("data", "import", "--data-dir", bDir, archive);
	assert.equal(imp.status, 0, imp.stderr);
	assert.match(imp.stderr, /imported 3 actors/);
	const again = anvil("data", "import", "--data-dir", bDir, archive);
	assert.equal(again.status, 1, "the same actors again are a conflict");
	assert.match(again.stderr, /archive\.conflict/);

	const b = await startAnvil({ dataDir: bDir });
	try {
		for (const [key, want] of [["move-1", 2], ["move-2", 5], ["move-3", 2]]) {
			assert.equal(await getOrCreate(b, "counter", key), ids[key], "the same actor id for the key");
			assert.equal(await action(b, ids[key], "getCount"), want);
		}
		assert.notEqual(await getOrCreate(b, "chatRoom", "stays"), stay, "only counters moved");
		const compactBusy = anvil("data", "compact", "--data-dir", bDir);
		assert.equal(compactBusy.status, 1);
	} finally {
		await b.kill("SIGTERM");
	}
	const compact = anvil("data", "compact", "--data-dir", bDir);
	assert.equal(compact.status, 0, compact.stderr);
	assert.match(compact.stderr, /compacted: table files/);
	assert.equal(anvil("data", "export", "--data-dir", path.join(bDir, "nope")).status, 1);
	assert.equal(anvil("data", "frobnicate").status, 2);
});
