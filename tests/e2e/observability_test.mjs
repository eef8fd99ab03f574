// Metrics, JSON logs and trace propagation of `anvil serve`, end to end:
// the exposition parses, every family has HELP and TYPE, actions and
// commits are counted, every metric the example Grafana dashboard
// (docker/grafana-dashboard.json) queries exists, and with
// --log-format json every log line is one JSON object with the stable fields.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test, after, before } from "node:test";
import { startAnvil, tempDir } from "./anvil_proc.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DASHBOARD = path.join(HERE, "../../docker/grafana-dashboard.json");
const TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
let anvil;
let base;

before(async () => {
	anvil = await startAnvil({
		logFile: path.join(tempDir("observability-log"), "anvil.log"),
		extraArgs: ["--log-format", "json", "--log-level", "debug"],
	});
	base = `${anvil.endpoint}/api/rivet`;
});
after(async () => anvil?.kill("SIGTERM"));

const post = (url, body, headers = {}) =>
	fetch(url, {
		method: "POST",
		headers: { "content-type": "application/json", "x-rivet-encoding": "json", ...headers },
		body: JSON.stringify(body),
	});

async function counterActor() {
	const res = await fetch(`${base}/actors?namespace=default`, {
		method: "PUT",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ name: "counter", key: `obs-${Date.now()}`, runner_name_selector: "default", crash_policy: "sleep" }),
	});
	return (await res.json()).actor.actor_id;
}

// { family: {help, type, samples: [{name, labels, value}]} }
function parseExposition(text) {
	const families = {};
	const family = (name) => (families[name] ??= { samples: [] });
	for (const line of text.split("\n")) {
		if (line === "") continue;
		let m;
		if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line))) {
			family(m[1]).help = m[2];
			continue;
		}
		if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
			family(m[1]).type = m[2];
			continue;
		}
		m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/.exec(line);
		assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
		const labels = {};
		if (m[3]) {
			for (const part of m[3].match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
				const eq = part.indexOf("=");
				labels[part.slice(0, eq)] = part.slice(eq + 2, -1);
			}
		}
		const name = m[1];
		const fam = families[name] ? name : name.replace(/_(bucket|sum|count)$/, "");
		family(fam).samples.push({ name, labels, value: Number(m[4]) });
	}
	return families;
}

const metrics = async () => parseExposition(await (await fetch(`${anvil.endpoint}/metrics`)).text());
const value = (fams, fam, name, labels = {}) =>
	fams[fam]?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

test("every /metrics family has HELP and TYPE, and actions, errors and commits are counted", async () => {
	const id = await counterActor();
	for (let i = 0; i < 5; i++) assert.equal((await post(`${base}/gateway/${id}/action/increment`, { args: [1] }, { traceparent: TRACE })).status, 200);
	assert.equal((await post(`${base}/gateway/${id}/action/noSuchAction`, { args: [] })).status, 404);
	const fams = await metrics();
	for (const [name, fam] of Object.entries(fams)) {
		assert.ok(fam.help, `${name} has HELP`);
		assert.ok(fam.type, `${name} has TYPE`);
	}
	assert.ok(value(fams, "anvil_actions_total", "anvil_actions_total", { name: "counter", action: "increment", outcome: "ok" }) >= 5);
	assert.ok(value(fams, "anvil_errors_total", "anvil_errors_total", { group: "actor", code: "action_not_found" }) >= 1);
	assert.ok(value(fams, "anvil_action_seconds", "anvil_action_seconds_count", { name: "counter" }) >= 5);
	assert.ok(value(fams, "anvil_commit_seconds", "anvil_commit_seconds_count") >= 5);
	assert.ok(value(fams, "anvil_http_connections_open", "anvil_http_connections_open") >= 1);
	assert.ok(value(fams, "anvil_gateway_bytes_total", "anvil_gateway_bytes_total", { direction: "in" }) > 0);
	assert.ok(value(fams, "anvil_gateway_bytes_total", "anvil_gateway_bytes_total", { direction: "out" }) > 0);
	// Histograms: cumulative buckets ending in +Inf = _count.
	const buckets = fams.anvil_action_seconds.samples.filter((s) => s.name === "anvil_action_seconds_bucket" && s.labels.name === "counter");
	for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, "cumulative");
	assert.equal(buckets.at(-1).labels.le, "+Inf");
	assert.equal(buckets.at(-1).value, value(fams, "anvil_action_seconds", "anvil_action_seconds_count", { name: "counter" }));
});

test("every metric the example Grafana dashboard queries is exported", async () => {
	const dash = JSON.parse(fs.readFileSync(DASHBOARD, "utf8"));
	const fams = await metrics();
	const known = new Set(Object.values(fams).flatMap((f) => f.samples.map((s) => s.name)).concat(Object.keys(fams)));
	const skip = (n) => (!process.env.ANVIL_POSTGRES_URL && n.startsWith("anvil_pg_")) || (!process.env.ANVIL_REDIS_URL && n.startsWith("anvil_redis_"));
	let checked = 0;
	for (const panel of dash.panels) {
		for (const t of panel.targets) {
			for (const name of t.expr.match(/anvil_[a-z_]+/g) ?? []) {
				if (skip(name)) continue;
				// A labelled family may have no samples yet (no schedule fired): its HELP line counts.
				const family = name.replace(/_(bucket|sum|count)$/, "");
				assert.ok(known.has(name) || fams[family]?.help, `panel "${panel.title}" queries ${name}, which /metrics does not export`);
				checked++;
			}
		}
	}
	assert.ok(checked > 20);
});

test("with --log-format json every log line is one object with the stable fields", async () => {
	const id = await counterActor();
	assert.equal((await post(`${base}/gateway/${id}/action/increment`, { args: [1] }, { "x-rivet-ray-id": "ray-obs-1" })).status, 200);
	await new Promise((r) => setTimeout(r, 200));
	// The file has stdout too: its one readiness line is not a log line.
	const lines = fs
		.readFileSync(anvil.logFile, "utf8")
		.split("\n")
		.filter((l) => l && !l.startsWith("anvil listening on "));
	assert.ok(lines.length > 3);
	const records = lines.map((l) => {
		try {
			return JSON.parse(l);
		} catch {
			assert.fail(`not JSON: ${l}`);
		}
	});
	for (const r of records) {
		assert.match(r.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
		assert.ok(["trace", "debug", "info", "warning", "error", "critical"].includes(r.level), r.level);
		assert.equal(typeof r.msg, "string");
	}
	const req = records.find((r) => r.rayId === "ray-obs-1");
	assert.ok(req, "the request line carries its ray id as rayId");
	const created = records.find((r) => r.actorId === id);
	assert.ok(created, "a line logged in the actor's turn names it");
	assert.equal(created.actorName, "counter");
});
