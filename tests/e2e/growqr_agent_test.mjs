// GrowQR part 2 end to end: `anvil serve --app growqr` with the Anthropic
// fake (anvil-fakes), driven by the unchanged rivetkit client — a chat that
// commits memory and streams runtime events, a kill -9 in the middle of a
// tool loop, duplicate chat ids, and conversations over HTTP.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import test, { after } from "node:test";

import { loadClient, startAnvil, startFakes, tempDir } from "./anvil_proc.mjs";

const PG = process.env.ANVIL_POSTGRES_URL;
const missing = !PG;
if (missing && process.env.CI) throw new Error("ANVIL_POSTGRES_URL must be set in CI");
const { createClient } = loadClient();

const run = randomUUID().slice(0, 8);
const rulesFile = path.join(tempDir("agent-rules"), "rules.json");
fs.writeFileSync(
	rulesFile,
	JSON.stringify([
		{ match: "remember", reply: { content: [{ type: "text", text: "Noting that. " }, { type: "tool_use", name: "commit_memory", input: { path: "goals/2027.md", content: "# Goals\n- ship anvil\n" } }] } },
		{ match: "tool_result:commit_memory", reply: { content: [{ type: "text", text: "Saved your goals to memory." }] } },
		{ match: "slow plan", reply: { content: [{ type: "tool_use", name: "list_memory", input: {} }] } },
		{ match: "tool_result:list_memory", reply: { content: [{ type: "text", text: "Your plan is ready." }] } },
		{ match: "hello", reply: { content: [{ type: "text", text: "Hello from the fake model." }] } },
		{ match: "tool_result:spawn_sub_agent", reply: { content: [{ type: "text", text: "A worker is on it." }] } },
		{ match: "delegate", reply: { content: [{ type: "tool_use", name: "spawn_sub_agent", input: { task: "research salaries" } }] } },
	]),
);

let fakes;
const nodes = [];
after(() => {
	fakes?.stop();
	for (const n of nodes) n.kill("SIGKILL");
});

async function start(dataDir, extraEnv = {}) {
	fakes ??= await startFakes(["--anthropic-rules", rulesFile, "--anthropic-latency-ms", "1000", "--opencode"]);
	Object.assign(process.env, {
		GROWQR_ENV: "development",
		GROWQR_STREAM: `e2e:${run}:grow:events`,
		ANTHROPIC_BASE_URL: fakes.anthropic,
		ANTHROPIC_API_KEY: "e2e-key",
		SANDBOX_PROVIDER: "static",
		OPENCODE_URL: fakes.opencode,
		...extraEnv,
	});
	const node = await startAnvil({ dataDir, extraArgs: ["--app", "growqr"] });
	nodes.push(node);
	return node;
}

const llmRequests = async () => (await (await fetch(`${fakes.anthropic}_fake/stats`)).json()).requests;

async function eventually(fn, ms = 20_000) {
	const end = Date.now() + ms;
	let last;
	while (Date.now() < end) {
		last = await fn().catch(() => undefined);
		if (last) return last;
		await new Promise((r) => setTimeout(r, 100));
	}
	return last;
}

test("a chat commits memory and streams runtime events to a connected client", { skip: missing && "no Postgres" }, async () => {
	const node = await start(tempDir("agent"));
	const client = createClient({ endpoint: `${node.endpoint}/api/rivet` });
	const user = `agent-user-${run}`;
	const conn = client.growAgent.getOrCreate([user]).connect();
	const events = [];
	conn.on("runtimeEvent", (e) => events.push(e));
	const out = await conn.chat("please remember my goals", { chatId: "e2e-1" });
	assert.equal(out.reply, "Saved your goals to memory.");
	assert.deepEqual(out.toolCalls, [{ name: "commit_memory", input: { path: "goals/2027.md", content: "# Goals\n- ship anvil\n" } }]);
	await eventually(async () => events.some((e) => e.type === "chat.finished"));
	const types = events.map((e) => e.type);
	assert.ok(types.includes("text.delta"), types.join(","));
	assert.deepEqual(
		types.filter((t) => t !== "text.delta"),
		["chat.started", "tool.started", "tool.finished", "chat.finished"],
	);
	await conn.dispose();

	const memory = client.memoryActor.getOrCreate([user]);
	assert.ok((await memory.listMemory()).includes("goals/2027.md"));
	assert.equal(await memory.readMemory("goals/2027.md"), "# Goals\n- ship anvil\n");
	// In development without Gitea, long-term memory is a bare git repository
	// under the data directory: the commit is there.
	const memDir = path.join(node.dataDir, "growqr", "memory");
	const repos = fs.readdirSync(memDir).filter((d) => d.endsWith(".git"));
	assert.equal(repos.length, 1, `memory repositories: ${repos.join(",")}`);
	const log = execFileSync("git", ["--git-dir", path.join(memDir, repos[0]), "log", "--name-only", "--format=%s"], { encoding: "utf8" });
	assert.match(log, /goals\/2027\.md/);

	// The same chat id again: the recorded answer, no model call.
	const before = await llmRequests();
	const again = await client.growAgent.getOrCreate([user]).chat("please remember my goals", { chatId: "e2e-1" });
	assert.equal(again.reply, "Saved your goals to memory.");
	assert.equal(await llmRequests(), before);
	await node.kill("SIGTERM");
});

test("spawn_sub_agent starts a worker in the OpenCode runtime and its progress streams to the client", { skip: missing && "no Postgres" }, async () => {
	const node = await start(tempDir("agent-sub"));
	const client = createClient({ endpoint: `${node.endpoint}/api/rivet` });
	const user = `sub-user-${run}`;
	const conn = client.growAgent.getOrCreate([user]).connect();
	const events = [];
	conn.on("runtimeEvent", (e) => events.push(e));
	const out = await conn.chat("please delegate this");
	assert.equal(out.reply, "A worker is on it.");
	assert.deepEqual(out.toolCalls, [{ name: "spawn_sub_agent", input: { task: "research salaries" } }]);
	const progress = await eventually(async () => events.find((e) => e.type === "subAgent.progress"));
	assert.ok(progress, `no sub-agent progress among ${events.map((e) => e.type).join(",")}`);
	assert.match(progress.subAgentId, /^sa-/);
	await conn.dispose();
	await node.kill("SIGTERM");
});

test("a kill -9 in the middle of the tool loop resumes without repeating finished model calls", { skip: missing && "no Postgres" }, async () => {
	const dataDir = tempDir("agent-crash");
	let node = await start(dataDir);
	const user = `crash-user-${run}`;
	let client = createClient({ endpoint: `${node.endpoint}/api/rivet` });
	const before = await llmRequests();
	// Not awaited: the node dies under it.
	client.growAgent.getOrCreate([user]).chat("slow plan please", { chatId: "crash-1" }).catch(() => {});
	// The first model call (1 s) is done and recorded once the second started.
	assert.ok(await eventually(async () => (await llmRequests()) >= before + 2), "the loop did not reach its second model call");
	await node.kill("SIGKILL");
	node = await start(dataDir);
	client = createClient({ endpoint: `${node.endpoint}/api/rivet` });
	const agent = client.growAgent.getOrCreate([user]);
	const chat = await eventually(async () => {
		const c = await agent.getChat("crash-1");
		return c.status === "done" ? c : undefined;
	});
	assert.ok(chat, "the chat did not finish after the restart");
	assert.equal(chat.result.reply, "Your plan is ready.");
	// Model calls: the first one once; the second was interrupted and made again.
	assert.equal(await llmRequests(), before + 3);
	assert.deepEqual(chat.result.toolCalls, [{ name: "list_memory", input: {} }]);
	await node.kill("SIGTERM");
});

test("conversations over HTTP answer each message id once", { skip: missing && "no Postgres" }, async () => {
	const node = await start(tempDir("conv"));
	const user = `conv-user-${run}`;
	const headers = { "content-type": "application/json", "x-user-id": user };
	const created = await fetch(`${node.endpoint}/conversations`, { method: "POST", headers, body: JSON.stringify({ title: "e2e" }) });
	assert.equal(created.status, 201);
	const { conversationId } = await created.json();
	const send = () =>
		fetch(`${node.endpoint}/conversations/${conversationId}/messages`, {
			method: "POST",
			headers,
			body: JSON.stringify({ messageId: "m-1", text: "hello there" }),
		}).then((r) => r.json());
	const [a, b] = await Promise.all([send(), send()]);
	assert.equal(a.reply, "Hello from the fake model.");
	assert.equal(b.reply, a.reply);
	assert.equal(b.seq, a.seq);
	const msgs = await (await fetch(`${node.endpoint}/conversations/${conversationId}/messages`, { headers })).json();
	assert.equal(msgs.messages.length, 2);
	await node.kill("SIGTERM");
});
