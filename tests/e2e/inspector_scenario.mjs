// The inspector scenario shared by the reference capture and the Anvil e2e
// test: the same fixture actors brought into the same situation, then every
// inspector route asked once. `run()` returns {name: {status, body}}; the
// shape comparison (shapeOf) ignores values, keeping types and keys.
//   tokenOf(actorId) => the inspector token to present for that actor.
//   client: a rivetkit client aimed at the endpoint.

export async function run({ endpoint, client, tokenOf }) {
	const out = {};
	const ask = async (label, actorId, method, path, body) => {
		const headers = { authorization: `Bearer ${await tokenOf(actorId)}` };
		if (body !== undefined) headers["content-type"] = "application/json";
		const res = await fetch(`${endpoint}/gateway/${actorId}/inspector${path}`, {
			method,
			headers,
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await res.text();
		let parsed;
		try {
			parsed = JSON.parse(text);
		} catch {
			parsed = text;
		}
		out[label] = { status: res.status, body: parsed };
		return parsed;
	};

	const key = `insp-${Date.now()}`;
	// counter: a plain state.
	const counter = client.counter.getOrCreate([key]);
	await counter.increment(5);
	const counterId = await counter.resolve();
	// chatRoom: one open connection with params and conn state.
	const room = client.chatRoom.getOrCreate([key]);
	const conn = room.connect({ username: "alice" });
	await conn.whoAmI();
	const roomId = await room.resolve();
	// worker: a workflow that processed two queue messages.
	const worker = client.worker.getOrCreate([key]);
	await worker.send("jobs", { id: 1, value: 21 });
	await worker.send("jobs", { id: 2, value: 4 });
	for (let i = 0; i < 100; i++) {
		if ((await worker.getProcessed()).length === 2) break;
		await new Promise((r) => setTimeout(r, 100));
	}
	const workerId = await worker.resolve();
	// scheduler: one pending schedule.
	const scheduler = client.scheduler.getOrCreate([key]);
	await scheduler.scheduleAfter(600_000, "later");
	const schedulerId = await scheduler.resolve();

	// Refusals.
	{
		const res = await fetch(`${endpoint}/gateway/${counterId}/inspector/state`);
		out["auth.missing"] = { status: res.status, body: await res.json() };
		const bad = await fetch(`${endpoint}/gateway/${counterId}/inspector/state`, {
			headers: { authorization: "Bearer not-the-token" },
		});
		out["auth.wrong"] = { status: bad.status, body: await bad.json() };
	}

	await ask("state.get", counterId, "GET", "/state");
	await ask("state.patch", counterId, "PATCH", "/state", { state: { count: 42 } });
	await ask("state.afterPatch", counterId, "GET", "/state");
	await ask("connections.none", counterId, "GET", "/connections");
	await ask("connections.one", roomId, "GET", "/connections");
	await ask("rpcs", counterId, "GET", "/rpcs");
	await ask("action", counterId, "POST", "/action/increment", { args: [1] });
	await ask("action.unknown", counterId, "POST", "/action/nope", { args: [] });
	await ask("queue.empty", workerId, "GET", "/queue");
	await ask("queue.post", counterId, "POST", "/queue", { name: "inbox", body: { hello: "world" } });
	await ask("queue.postNoName", counterId, "POST", "/queue", { body: 1 });
	await ask("queue.afterPost", counterId, "GET", "/queue?limit=10");
	await ask("queue.delete", counterId, "DELETE", "/queue");
	await ask("queue.afterDelete", counterId, "GET", "/queue");
	await ask("traces", counterId, "GET", "/traces");
	await ask("workflow.none", counterId, "GET", "/workflow-history");
	await ask("workflow.history", workerId, "GET", "/workflow-history");
	await ask("summary", roomId, "GET", "/summary");
	await ask("summary.worker", workerId, "GET", "/summary");
	await ask("database.schema", counterId, "GET", "/database/schema");
	await ask("database.rowsNoTable", counterId, "GET", "/database/rows");
	await ask("database.executeNoSql", counterId, "POST", "/database/execute", {});
	await ask("notFound", counterId, "GET", "/nope");
	await ask("workflow.replay", workerId, "POST", "/workflow/replay", {});
	await ask("scheduler.state", schedulerId, "GET", "/state");

	await conn.dispose();
	return { results: out, ids: { counterId, roomId, workerId, schedulerId } };
}

// The type skeleton of a JSON value: objects keep their keys (sorted),
// arrays their first element's shape, scalars their type name.
export function shapeOf(v) {
	if (v === null) return "null";
	if (Array.isArray(v)) return v.length ? [shapeOf(v[0])] : [];
	if (typeof v === "object") {
		const o = {};
		for (const k of Object.keys(v).sort()) o[k] = shapeOf(v[k]);
		return o;
	}
	return typeof v;
}
