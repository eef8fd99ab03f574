// The workbench's coordinator tree under kill -9: tasks are created and
// their statuses changed through the real rivetkit client while the node is
// SIGKILLed at random moments; after every restart, once the outboxes have
// drained, the indexes agree with the children:
//   - every acknowledged createTask has its task actor, its repository index
//     row and its organization summary (and nothing else exists);
//   - each task's status is the same in the task, the repository index and
//     the organization's sidebar, and is at least the last acknowledged one.
//   node tests/e2e/workbench_crash_test.mjs [--cycles 5]
import assert from "node:assert/strict";

import { loadClient, startAnvil } from "./anvil_proc.mjs";

const arg = (name, dflt) => {
	const i = process.argv.indexOf(name);
	return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const CYCLES = arg("--cycles", 5);
const { createClient } = loadClient();

const created = new Set(); // acknowledged createTask
const acked = new Map(); // taskId -> highest acknowledged status number
let nextTask = 0;
let statusCounter = 0;

async function load(client, stop) {
	const org = client.organization.getOrCreate(["crash"]);
	const repo = client.repository.get(["crash", "r1"]);
	const worker = async (w) => {
		while (!stop.done) {
			try {
				if (w % 2 === 0 || created.size === 0) {
					const id = `t${nextTask++}`;
					await repo.createTask({ taskId: id, title: `Task ${id}` });
					created.add(id);
				} else {
					// Each task's statuses come from one worker only, so the
					// order of acknowledgements is the order of the turns.
					const slot = (w - 1) / 2;
					const ids = [...created].filter((id) => Number(id.slice(1)) % 4 === slot);
					if (ids.length === 0) {
						await new Promise((r) => setTimeout(r, 5));
						continue;
					}
					const id = ids[statusCounter % ids.length];
					const n = ++statusCounter;
					await client.task.get(["crash", "r1", id]).setStatus(`s${String(n).padStart(8, "0")}`);
					if (n > (acked.get(id) ?? 0)) acked.set(id, n);
				}
			} catch {
				// The node died under the call: not acknowledged.
				await new Promise((r) => setTimeout(r, 20));
			}
		}
	};
	await org.listTaskSummaries().catch(() => {});
	return Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
}

async function converged(client) {
	const org = client.organization.getOrCreate(["crash"]);
	const repo = client.repository.get(["crash", "r1"]);
	const deadline = Date.now() + 60_000;
	let why = "";
	for (;;) {
		why = "";
		const summaries = new Map((await org.listTaskSummaries()).map((s) => [s.taskId, s]));
		const index = new Map((await repo.listTasks()).map((t) => [t.taskId, t]));
		for (const id of created) if (!index.has(id) || !summaries.has(id)) why ||= `acknowledged ${id} missing`;
		for (const [id, t] of index) {
			if (t.status === "creating") why ||= `${id} still creating`;
			const s = summaries.get(id);
			if (!s) why ||= `${id} not on the sidebar`;
			else if (s.status !== t.status || s.branch !== t.branch) why ||= `${id}: sidebar ${s.status} != index ${t.status}`;
		}
		for (const id of summaries.keys()) if (!index.has(id)) why ||= `${id} on the sidebar but not in the index`;
		if (!why) {
			// The children themselves: every task with an acknowledged status
			// has it (or a later one), and its pushes have reached the index.
			for (const [id, n] of acked) {
				const snap = await client.task.get(["crash", "r1", id]).getSnapshot();
				const actual = Number((snap.status.match(/^s(\d+)$/) ?? [0, 0])[1]);
				assert.ok(actual >= n, `${id}: status ${snap.status} older than acknowledged s${n}`);
				if (index.get(id).status !== snap.status) why ||= `${id}: index ${index.get(id).status} != task ${snap.status}`;
			}
			if (!why) return index.size;
		}
		if (Date.now() > deadline) assert.fail(`indexes did not converge: ${why}`);
		await new Promise((r) => setTimeout(r, 200));
	}
}

let node = await startAnvil({ extraArgs: ["--app", "workbench"] });
let client = createClient({ endpoint: `${node.endpoint}/api/rivet`, encoding: "json" });
await client.organization.getOrCreate(["crash"]).addRepository({ repoId: "r1", name: "local/r1" });
try {
	for (let cycle = 1; cycle <= CYCLES; cycle++) {
		const stop = { done: false };
		const running = load(client, stop);
		await new Promise((r) => setTimeout(r, 300 + Math.random() * 1200));
		await node.kill("SIGKILL");
		stop.done = true;
		await running;
		await client.dispose?.();
		node = await startAnvil({ dataDir: node.dataDir, port: node.port, extraArgs: ["--app", "workbench"] });
		client = createClient({ endpoint: `${node.endpoint}/api/rivet`, encoding: "json" });
		const tasks = await converged(client);
		console.log(`cycle ${cycle}: ${tasks} tasks, ${created.size} acknowledged creates, ${acked.size} acknowledged statuses: consistent`);
	}
	console.log(`workbench crash test: ${CYCLES} SIGKILL cycles, indexes consistent with children after each`);
} finally {
	await client.dispose?.();
	await node.kill("SIGTERM");
}
