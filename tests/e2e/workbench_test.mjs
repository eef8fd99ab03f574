// The workbench (seed 004) end to end: the real `anvil serve --app
// workbench`, the unchanged rivetkit client (several clients at once, as
// different users), and the GitHub fake of anvil-fakes (REST + git smart
// HTTP over real bare repositories, signed webhooks to the node).
// Each rule of docs/workbench.md "The rules" is a test here.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import test from "node:test";

import { freePort, loadClient, startAnvil, startFakes, tempDir } from "./anvil_proc.mjs";

const SECRET = "webhook-secret-for-tests";
const SERVICE_TOKEN = "service-token-for-tests-0123456789";
const { createClient } = loadClient();

let node, fakes, client, anvilPort, sandboxDir;

const rejection = async (p) => {
	try {
		await p;
	} catch (e) {
		return e;
	}
	assert.fail("expected a rejection");
};

const until = async (what, fn, ms = 15_000) => {
	const deadline = Date.now() + ms;
	let last;
	for (;;) {
		last = await fn();
		if (last) return last;
		if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 50));
	}
};

async function metric(name, labels) {
	const text = await (await fetch(`${node.endpoint}/metrics`)).text();
	const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
	assert.ok(line, `${name}{${labels}} in /metrics`);
	return Number(line.split(" ").pop());
}

async function start() {
	node = await startAnvil({ port: anvilPort, dataDir: node?.dataDir, extraArgs: ["--app", "workbench"] });
	client = createClient({ endpoint: `${node.endpoint}/api/rivet`, encoding: "json" });
}

async function restart() {
	await client.dispose?.();
	await node.kill("SIGTERM");
	await start();
}

test.before(async () => {
	anvilPort = await freePort();
	const githubPort = await freePort();
	sandboxDir = tempDir("wb-sandboxes");
	fakes = await startFakes([
		"--github-port",
		String(githubPort),
		"--github-webhook",
		`http://127.0.0.1:${anvilPort}/webhooks/github/acme`,
		"--github-secret",
		SECRET,
		"--github-repo",
		"acme/widgets",
	]);
	Object.assign(process.env, {
		APP_ENV: "test",
		GITHUB_API_URL: fakes.github,
		GITHUB_GIT_URL: fakes.github,
		GITHUB_WEBHOOK_SECRET: SECRET,
		WORKBENCH_SERVICE_TOKEN: SERVICE_TOKEN,
		WORKBENCH_SANDBOX_DIR: sandboxDir,
	});
	await start();
});

test.after(async () => {
	await client?.dispose?.();
	await node?.kill("SIGTERM");
	fakes?.stop();
});

const org = (id) => client.organization.getOrCreate([id]);
const repo = (o, r) => client.repository.get([o, r]);
const task = (o, r, t) => client.task.get([o, r, t]);

test("a client that addresses a child key its coordinator never created gets workbench.not_found and no actor is left", async () => {
	const before = await metric("anvil_actor_wakes_total", 'name="task"');
	for (const [handle, what] of [
		[client.repository.getOrCreate(["ghost-org", "r1"]), "repository"],
		[client.task.getOrCreate(["ghost-org", "r1", "t1"]), "task"],
		[client.taskSession.getOrCreate(["ghost-org", "r1", "t1", "s1"]), "taskSession"],
		[client.authUser.getOrCreate(["ghost-org", "mallory"]), "authUser"],
		[client.sandboxInstance.getOrCreate(["ghost-org", "local", "x"]), "sandboxInstance"],
		[client.history.getOrCreate(["ghost-org"]), "history"],
	]) {
		const e = await rejection(handle.resolve());
		assert.equal(e.group, "workbench", what);
		assert.equal(e.code, "not_found", what);
	}
	// Nothing was created: the manager API lists none of them.
	for (const name of ["repository", "task", "taskSession", "authUser", "sandboxInstance", "history"]) {
		const res = await fetch(`${node.endpoint}/actors?namespace=default&name=${name}`);
		const body = await res.json();
		assert.equal(body.actors.filter((a) => a.key?.startsWith?.("ghost-org") || JSON.stringify(a.key).includes("ghost-org")).length, 0, name);
	}
	assert.equal(await metric("anvil_actor_wakes_total", 'name="task"'), before);
	// Internal actions are refused to clients too.
	await org("o-internal").listTaskSummaries();
	const e = await rejection(org("o-internal")._taskSummaryChanged({ taskId: "t", repoId: "r", version: 99 }));
	assert.equal(e.code, "forbidden");
});

test("a task's status change travels task -> repository -> organization, and subscribers get sequence-numbered events", async () => {
	const o = `o-${randomUUID().slice(0, 8)}`;
	await org(o).addRepository({ repoId: "r1", name: "local/r1" });
	const conn = org(o).connect();
	const events = [];
	conn.on("taskSummaryUpdated", (e) => events.push(e));
	const snap = await conn.getSnapshot();
	assert.equal(snap.tasks.length, 0);

	const made = await repo(o, "r1").createTask({ taskId: "t1", title: "First" });
	assert.deepEqual(made, { taskId: "t1", branch: "task/t1" });
	await until("the summary", () => events.find((e) => e.summary.taskId === "t1"));
	await task(o, "r1", "t1").setStatus("running");
	const running = await until("the status", () => events.find((e) => e.summary.status === "running"));
	assert.equal(running.summary.repoId, "r1");

	// Sequence numbers are contiguous from the snapshot's.
	events.forEach((e, i) => assert.equal(e.seq, snap.seq + i + 1));
	// The sidebar: exactly the fixed fields, from the organization's own index.
	assert.deepEqual(await org(o).listTaskSummaries(), [
		{ taskId: "t1", repoId: "r1", title: "First", status: "running", branch: "task/t1" },
	]);
	assert.deepEqual((await repo(o, "r1").listTasks()).map((t) => [t.taskId, t.status]), [["t1", "running"]]);
	assert.equal((await task(o, "r1", "t1").getSnapshot()).status, "running");
	// History recorded it.
	const history = await client.history.get([o]).list({ limit: 100 });
	assert.ok(history.some((h) => h.kind === "task.updated" && h.data.status === "running"));
	await conn.dispose();
});

test("a client that sees a gap in the sequence refetches the snapshot and ends equal to the coordinator", async () => {
	const o = `o-${randomUUID().slice(0, 8)}`;
	await org(o).addRepository({ repoId: "r1", name: "local/r1" });
	for (const t of ["a", "b"]) await repo(o, "r1").createTask({ taskId: t, title: t });

	// A sidebar view as a UI keeps it: snapshot + events, refetch on a gap.
	const view = { seq: 0, tasks: new Map(), refetches: 0 };
	const load = async (c) => {
		const s = await c.getSnapshot();
		view.seq = s.seq;
		view.tasks = new Map(s.tasks.map((t) => [t.taskId, t]));
		view.refetches++;
	};
	let conn = org(o).connect();
	conn.on("taskSummaryUpdated", async (e) => {
		if (e.seq !== view.seq + 1) return load(conn);
		view.seq = e.seq;
		view.tasks.set(e.summary.taskId, e.summary);
	});
	await load(conn);
	await task(o, "r1", "a").setStatus("review");
	await until("the event", () => view.tasks.get("a")?.status === "review");
	// setStatus answers once the organization has the change (written through the outbox).
	assert.equal((await org(o).listTaskSummaries()).find((t) => t.taskId === "a").status, "review");
	assert.equal(view.refetches, 1);

	// Offline for a while: changes happen that this client never sees.
	await conn.dispose();
	await task(o, "r1", "b").setStatus("done");
	await repo(o, "r1").createTask({ taskId: "c", title: "c" });
	await until("the org to index c", async () => (await org(o).listTaskSummaries()).some((t) => t.taskId === "c"));
	conn = org(o).connect();
	conn.on("taskSummaryUpdated", async (e) => {
		if (e.seq !== view.seq + 1) return load(conn);
		view.seq = e.seq;
		view.tasks.set(e.summary.taskId, e.summary);
	});
	await conn.listRepositories(); // open and subscribed (without reading the snapshot)
	await task(o, "r1", "a").setStatus("done"); // the next event shows the gap
	await until("the refetch", () => view.refetches === 2 && view.tasks.get("a")?.status === "done");
	const truth = await org(o).getSnapshot();
	assert.deepEqual([...view.tasks.values()].sort((x, y) => x.taskId.localeCompare(y.taskId)).map((t) => [t.taskId, t.status]),
		truth.tasks.sort((x, y) => x.taskId.localeCompare(y.taskId)).map((t) => [t.taskId, t.status]));
	await conn.dispose();
});

test("listing the sidebar of an organization whose tasks are all asleep wakes zero task actors", async () => {
	const o = `o-${randomUUID().slice(0, 8)}`;
	await org(o).addRepository({ repoId: "big", name: "local/big" });
	const N = 300;
	for (let i = 0; i < N; i += 25)
		await Promise.all(Array.from({ length: Math.min(25, N - i) }, (_, j) => repo(o, "big").createTask({ taskId: `t${i + j}`, title: `Task ${i + j}` })));
	await until("every summary", async () => (await org(o).listTaskSummaries()).length === N);
	await restart(); // every actor asleep
	const before = await metric("anvil_actor_wakes_total", 'name="task"');
	const list = await org(o).listTaskSummaries();
	assert.equal(list.length, N);
	assert.deepEqual(Object.keys(list[0]).sort(), ["branch", "repoId", "status", "taskId", "title"]);
	await org(o).getSnapshot();
	await repo(o, "big").listTasks();
	assert.equal(await metric("anvil_actor_wakes_total", 'name="task"'), before, "no task woke");
});

test("a branch rename is a git operation in the task's sandbox; GitHub, both indexes and the webhook cache follow", async () => {
	const o = "acme";
	await org(o).addRepository({ repoId: "widgets", name: "acme/widgets" });
	await repo(o, "widgets").createTask({ taskId: "w1", title: "Widget work" });
	const t = task(o, "widgets", "w1");
	const box = await t.provisionSandbox();
	assert.equal(box.status, "ready");
	// Work on the branch and push it (as an agent in the sandbox would).
	const push = await t.executeInSandbox({
		argv: ["sh", "-c", "cd repo && git commit --quiet --allow-empty -m work && git push --quiet origin task/w1"],
	});
	assert.equal(push.exitCode, 0, push.stderr);
	const branches = async () => (await (await fetch(`${fakes.github}/repos/acme/widgets/branches`)).json()).map((b) => b.name);
	assert.ok((await branches()).includes("task/w1"));

	const renamed = await t.renameBranch("feature/widgets");
	assert.equal(renamed.branch, "feature/widgets");
	const after = await branches();
	assert.ok(after.includes("feature/widgets"), after.join());
	assert.ok(!after.includes("task/w1"), after.join());
	await until("the repository index", async () => (await repo(o, "widgets").listTasks())[0].branch === "feature/widgets");
	await until("the sidebar", async () => (await org(o).listTaskSummaries()).find((s) => s.taskId === "w1")?.branch === "feature/widgets");
	// The signed webhooks reached the GitHub cache.
	await until("the webhook cache", async () => {
		const cached = (await client.githubData.get([o]).getBranches("acme/widgets")).map((b) => b.name);
		return cached.includes("feature/widgets") && !cached.includes("task/w1");
	});
	// Bad names are refused before anything runs.
	const e = await rejection(t.renameBranch("../evil"));
	assert.equal(e.code, "invalid_argument");
});

test("a pull request opened on GitHub reaches the task and the sidebar through a signed webhook; repeats and forgeries change nothing", async () => {
	const o = "acme";
	const conn = org(o).connect();
	const events = [];
	conn.on("taskSummaryUpdated", (e) => events.push(e));
	await conn.getSnapshot();
	const res = await fetch(`${fakes.github}/repos/acme/widgets/pulls`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ title: "Widgets", head: "feature/widgets", base: "main" }),
	});
	assert.equal(res.status, 201);
	const pr = await res.json();
	const seen = await until("the PR on the sidebar", () => events.find((e) => e.summary.pr?.number === pr.number));
	assert.equal(seen.summary.pr.state, "open");
	assert.equal((await task(o, "widgets", "w1").getSnapshot()).pr.number, pr.number);

	// A delivery is applied once (X-GitHub-Delivery), and only when signed.
	const deliveries = await client.githubData.get([o]).deliveryCount();
	const body = JSON.stringify({ ref: "refs/heads/extra", before: "0".repeat(40), after: "1".repeat(40), created: true, deleted: false, repository: { name: "widgets", full_name: "acme/widgets", owner: { login: "acme" } } });
	const sig = `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`;
	const send = (signature, id) =>
		fetch(`${node.endpoint}/webhooks/github/acme`, {
			method: "POST",
			headers: { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": id, "x-hub-signature-256": signature },
			body,
		});
	const id = randomUUID();
	let r = await send(sig, id);
	assert.equal(r.status, 200);
	assert.equal((await r.json()).duplicate, false);
	r = await send(sig, id);
	assert.equal((await r.json()).duplicate, true);
	r = await send(`sha256=${"0".repeat(64)}`, randomUUID());
	assert.equal(r.status, 401);
	r = await send(sig, randomUUID());
	assert.equal(r.status, 200);
	assert.equal(await client.githubData.get([o]).deliveryCount(), deliveries + 2);
	// An organization that never existed has no webhook receiver.
	r = await fetch(`${node.endpoint}/webhooks/github/nobody`, { method: "POST", headers: { "x-github-event": "push", "x-github-delivery": id, "x-hub-signature-256": sig }, body });
	assert.equal(r.status, 404);
	await conn.dispose();
});

test("a task has at most one active sandbox and one active session; older ones stay in its history", async () => {
	const t = task("acme", "widgets", "w1");
	const first = (await t.getSnapshot()).activeSandbox;
	const next = await t.provisionSandbox({ replace: true });
	assert.notEqual(next.sandboxId, first.sandboxId);
	const snap = await t.getSnapshot();
	assert.equal(snap.sandboxes.filter((s) => s.active).length, 1);
	const old = snap.sandboxes.find((s) => s.sandboxId === first.sandboxId);
	assert.equal(old.status, "released");
	assert.equal(old.active, false);
	await until("the old directory gone", () => !fs.existsSync(path.join(sandboxDir, first.sandboxId)));

	await t.startSession({ sessionId: "s1", title: "One" });
	await t.startSession({ sessionId: "s2", title: "Two" });
	const sessions = await t.listSessions();
	assert.deepEqual(sessions.map((s) => [s.sessionId, s.active]), [["s1", false], ["s2", true]]);
	assert.equal((await t.getSnapshot()).activeSessionId, "s2");
});

test("a session's runtime status follows its runtime in the task's sandbox (sessionStatusSync), up to the task's session index", async () => {
	const t = task("acme", "widgets", "w1");
	const session = client.taskSession.get(["acme", "widgets", "w1", "s2"]);
	await until("the sync to start", async () => (await session.getSnapshot()).runtimeStatus === "unknown", 20_000);
	// The session's runtime (an agent in the sandbox) writes its status file.
	const wrote = await t.executeInSandbox({ argv: ["sh", "-c", "mkdir -p .workbench/sessions/s2 && echo running > .workbench/sessions/s2/status"] });
	assert.equal(wrote.exitCode, 0, wrote.stderr);
	await until("the session", async () => (await session.getSnapshot()).runtimeStatus === "running", 20_000);
	await until("the task's index", async () => (await t.listSessions()).find((s) => s.sessionId === "s2").runtimeStatus === "running");
	// Only its coordinator could have created the sync: a client cannot make one for another session.
	const e = await rejection(client.sessionStatusSync.getOrCreate(["acme", "widgets", "w1", "s9"]).getState());
	assert.equal(e.code, "not_found");
});

test("multiplayer: A's draft, attachments, unread count and active tab are invisible to B; transcript and status are shared; both survive a reconnect", async () => {
	const o = "acme";
	const tokenA = `token-a-${randomUUID()}`;
	const tokenB = `token-b-${randomUUID()}`;
	const e0 = await rejection(org(o).signIn({ userId: "alice", sessionToken: tokenA }));
	assert.equal(e0.code, "unauthorized", "sign-in needs the service token");
	await org(o).signIn({ userId: "alice", sessionToken: tokenA, email: "alice@example.com", serviceToken: SERVICE_TOKEN });
	await org(o).signIn({ userId: "bob", sessionToken: tokenB, email: "bob@example.com", serviceToken: SERVICE_TOKEN });
	assert.equal((await org(o).resolveSession(tokenA)).userId, "alice");
	assert.equal((await org(o).findUser({ email: "BOB@example.com" })).userId, "bob");

	// Two clients, as two browsers would be.
	const clientA = createClient({ endpoint: `${node.endpoint}/api/rivet`, encoding: "json" });
	const clientB = createClient({ endpoint: `${node.endpoint}/api/rivet`, encoding: "cbor" });
	const key = { taskId: "w1", sessionId: "s2" };
	try {
		let meA = clientA.authUser.get([o, "alice"], { params: { sessionToken: tokenA } }).connect();
		const meB = clientB.authUser.get([o, "bob"], { params: { sessionToken: tokenB } }).connect();
		await meA.setActiveTab(key);
		await meA.setDraft({ ...key, text: "half a thought" });
		await meA.addDraftAttachment({ ...key, attachmentId: "a1", name: "notes.txt", contentType: "text/plain", data: new TextEncoder().encode("hello") });
		await meA.noteActivity({ ...key, latestSeq: 3 });
		const a = await meA.getSessionState(key);
		assert.equal(a.draftText, "half a thought");
		assert.equal(a.attachments.length, 1);
		assert.equal(a.unread, 3);
		const b = await meB.getSessionState(key);
		assert.equal(b.draftText, "");
		assert.equal(b.attachments.length, 0);
		assert.equal(b.unread, 0);
		assert.deepEqual((await meB.getSnapshot()).activeTabs, {});
		// B cannot open A's state, with B's token or none.
		let e = await rejection(clientB.authUser.get([o, "alice"], { params: { sessionToken: tokenB } }).getSnapshot());
		assert.equal(e.code, "unauthorized");
		e = await rejection(clientB.authUser.get([o, "alice"]).getSnapshot());
		assert.equal(e.code, "unauthorized");

		// The transcript and status are the task's: identical for both.
		const sessA = clientA.taskSession.get([o, "widgets", "w1", "s2"]).connect();
		const sessB = clientB.taskSession.get([o, "widgets", "w1", "s2"]).connect();
		const gotA = [], gotB = [];
		sessA.on("transcriptAppended", (ev) => gotA.push(ev.message.text));
		sessB.on("transcriptAppended", (ev) => gotB.push(ev.message.text));
		await sessA.getSnapshot();
		await sessB.getSnapshot();
		await sessA.sendMessage({ text: "from alice", author: "alice", clientMessageId: "m1" });
		await sessB.sendMessage({ text: "from bob", author: "bob", clientMessageId: "m2" });
		await sessA.sendMessage({ text: "from alice", author: "alice", clientMessageId: "m1" }); // a retry: once
		await until("both transcripts", () => gotA.length === 2 && gotB.length === 2);
		assert.deepEqual(gotA, gotB);
		assert.deepEqual((await sessA.getTranscript()).map((m) => m.text), (await sessB.getTranscript()).map((m) => m.text));
		await clientA.task.get([o, "widgets", "w1"]).setStatus("reviewing");
		assert.equal((await clientB.task.get([o, "widgets", "w1"]).getSnapshot()).status, "reviewing");
		await sessA.dispose();
		await sessB.dispose();

		// A reconnects (and the node restarts): A's state is still A's.
		await meA.dispose();
		await meB.dispose();
		await restart();
		const clientA2 = createClient({ endpoint: `${node.endpoint}/api/rivet`, encoding: "json" });
		meA = clientA2.authUser.get([o, "alice"], { params: { sessionToken: tokenA } }).connect();
		const again = await meA.getSessionState(key);
		assert.equal(again.draftText, "half a thought");
		assert.equal(again.unread, 3);
		assert.equal(new TextDecoder().decode((await meA.getDraftAttachment({ ...key, attachmentId: "a1" })).data), "hello");
		assert.deepEqual((await meA.getSnapshot()).activeTabs, { w1: "s2" });
		await meA.markRead(key);
		assert.equal((await meA.getSessionState(key)).unread, 0);
		await meA.dispose();
		await clientA2.dispose?.();
	} finally {
		await clientA.dispose?.();
		await clientB.dispose?.();
	}
});

test("only the coordinator destroys a child: the manager API refuses, destroyTask removes it from both indexes", async () => {
	const o = `o-${randomUUID().slice(0, 8)}`;
	await org(o).addRepository({ repoId: "r1", name: "local/r1" });
	await repo(o, "r1").createTask({ taskId: "gone", title: "Gone" });
	const id = await task(o, "r1", "gone").resolve();
	const del = await fetch(`${node.endpoint}/actors/${id}?namespace=default`, { method: "DELETE" });
	assert.equal(del.status, 403);
	await repo(o, "r1").destroyTask("gone");
	const e = await rejection(task(o, "r1", "gone").getSnapshot());
	assert.equal(e.code, "not_found");
	assert.deepEqual(await repo(o, "r1").listTasks(), []);
	await until("the sidebar", async () => (await org(o).listTaskSummaries()).length === 0);
});

test("the node's data directory holds no git objects (working trees live in sandboxes only)", async () => {
	const found = [];
	const walk = (dir) => {
		for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
			const p = path.join(dir, e.name);
			if (e.isDirectory()) {
				if (e.name === ".git" || e.name === "objects" || e.name.endsWith(".git")) found.push(p);
				walk(p);
			} else if (e.name.endsWith(".pack") || e.name === "HEAD") found.push(p);
		}
	};
	walk(node.dataDir);
	assert.deepEqual(found, []);
	assert.ok(fs.readdirSync(sandboxDir).length > 0, "the sandboxes are elsewhere");
});
