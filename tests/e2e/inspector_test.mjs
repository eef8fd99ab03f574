#!/usr/bin/env node
// The inspector routes (/gateway/{id}/inspector/*) of a real node, driven by
// the scenario the reference answered (inspector_scenario.mjs), compared
// shape for shape with tests/e2e/inspector-ref/reference.json (rivetkit
// 2.3.19). The differences Anvil has on purpose are listed in KNOWN below
// and in docs/protocol-notes.md, "Inspector"; anything else fails.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test, after, before } from "node:test";
import { loadClient, startAnvil, tempDir } from "./anvil_proc.mjs";
import { run, shapeOf } from "./inspector_scenario.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const reference = JSON.parse(fs.readFileSync(path.join(HERE, "inspector-ref", "reference.json"), "utf8"));

// label => why Anvil's answer differs from the reference's (shape or status).
const KNOWN = {
	// rivetkit keeps its own tables (_rivet_actor, …) in every actor's SQLite
	// database; an Anvil actor without a database has no tables.
	"database.schema": "no internal tables",
};

// entryMetadata is keyed by entry id (UUIDs there, history paths here): its
// shape is that of one entry's metadata.
function keyless(v) {
	if (Array.isArray(v)) return v.map(keyless);
	if (v === null || typeof v !== "object") return v;
	const o = {};
	for (const [k, x] of Object.entries(v))
		o[k] = k === "entryMetadata" && x ? { "*": keyless(Object.values(x)[0] ?? null) } : keyless(x);
	return o;
}

const { createClient } = loadClient();
let anvil;
let client;
let results;

before(async () => {
	anvil = await startAnvil({ dataDir: tempDir("insp-data"), logFile: path.join(tempDir("insp-log"), "anvil.log") });
	client = createClient({ endpoint: `${anvil.endpoint}/api/rivet`, encoding: "json" });
	// The token of each actor from the admin view (this node has no admin
	// token, so local requests may read it).
	const tokenOf = async (id) => (await (await fetch(`${anvil.endpoint}/admin/actors/${id}`)).json()).inspectorToken;
	({ results } = await run({ endpoint: anvil.endpoint, client, tokenOf }));
});
after(async () => {
	await client?.dispose();
	await anvil?.kill("SIGKILL");
});

test("every inspector answer has the reference's status and shape", () => {
	const problems = [];
	for (const [label, ref] of Object.entries(reference)) {
		const got = results[label];
		if (!got) {
			problems.push(`${label}: not asked`);
			continue;
		}
		if (KNOWN[label]) continue;
		if (got.status !== ref.status) problems.push(`${label}: status ${got.status}, reference ${ref.status}`);
		const a = JSON.stringify(shapeOf(keyless(got.body)));
		const b = JSON.stringify(shapeOf(keyless(ref.body)));
		if (a !== b) problems.push(`${label}: shape\n  anvil     ${a}\n  reference ${b}`);
	}
	assert.deepEqual(problems, []);
});

test("errors carry rivetkit's group, code and message", () => {
	for (const label of ["auth.missing", "auth.wrong", "action.unknown", "queue.postNoName", "notFound", "workflow.replay"]) {
		const { group, code } = results[label].body;
		assert.deepEqual({ group, code }, { group: reference[label].body.group, code: reference[label].body.code }, label);
	}
	assert.equal(results["auth.missing"].body.message, reference["auth.missing"].body.message);
});

test("values that do not depend on ids or times match the reference", () => {
	for (const label of ["state.get", "state.patch", "state.afterPatch", "connections.none", "rpcs", "action",
		"queue.empty", "queue.afterDelete", "queue.delete", "traces", "workflow.none", "scheduler.state",
		"database.rowsNoTable", "database.executeNoSql"]) {
		assert.deepEqual(results[label].body, reference[label].body, label);
	}
	const conn = results["connections.one"].body.connections[0];
	assert.deepEqual(conn.details.params, { username: "alice" });
	assert.deepEqual(conn.details.state, { username: "alice", sent: 0 });
	assert.equal(results["workflow.history"].body.workflowState, "sleeping");
	assert.equal(results["summary.worker"].body.workflowState, "sleeping");
});
