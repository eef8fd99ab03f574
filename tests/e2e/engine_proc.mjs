// Starts and stops a real `rivet-engine` (2.3.19, from the shared reference
// harness) for envoy-mode tests: file-system storage in a temp dir, private
// ports, an admin token, telemetry off.
//   RIVET_ENGINE_BIN  the binary (default: rivet-ref's @rivetkit/engine-cli-linux-x64-musl)
// engineBinary() is null when it is missing: the tests then skip, saying so.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { SHARED_DIR, freePort, tempDir } from "./anvil_proc.mjs";

export function engineBinary() {
	const bin =
		process.env.RIVET_ENGINE_BIN ||
		path.join(SHARED_DIR, "rivet-ref/node_modules/@rivetkit/engine-cli-linux-x64-musl/rivet-engine");
	try {
		fs.accessSync(bin, fs.constants.X_OK);
		return bin;
	} catch {
		return null;
	}
}

const live = new Set();
process.on("exit", () => {
	for (const child of live) {
		try {
			process.kill(child.pid, "SIGKILL");
		} catch {}
	}
});

/** Starts the engine; resolves once GET /health answers ok. */
/**
 * `pegboard`: engine settings (config `pegboard`), e.g. { envoy_lost_threshold: 5000 }
 * so a test of a lost envoy does not wait the default 15 s.
 * Several engine processes of one cluster: `postgresUrl` (shared storage,
 * an empty database), `natsAddress` (shared pubsub; 2.3.19 refuses a second
 * engine on one Postgres without NATS) and `peerOf` (the first engine: its
 * api_peer and public URL are the datacenter's). `token: null`: no admin
 * token (the engine then asks for none, as the reference's dev engine).
 */
export async function startEngine({
	token = "envoy-test-token",
	namespace = "default",
	pool = "default",
	pegboard,
	postgresUrl,
	natsAddress,
	peerOf,
} = {}) {
	const bin = engineBinary();
	if (!bin) throw new Error("rivet-engine binary not found");
	const [guard, peer, metrics] = [await freePort(), await freePort(), await freePort()];
	const dir = tempDir("engine");
	const config = {
		...(token ? { auth: { admin_token: token } } : {}),
		guard: { host: "127.0.0.1", port: guard },
		api_peer: { host: "127.0.0.1", port: peer },
		metrics: { host: "127.0.0.1", port: metrics },
		telemetry: { enabled: false },
		topology: {
			datacenter_label: 1,
			datacenters: {
				default: {
					datacenter_label: 1,
					is_leader: true,
					peer_url: peerOf ? peerOf.peerUrl : `http://127.0.0.1:${peer}`,
					public_url: peerOf ? peerOf.endpoint : `http://127.0.0.1:${guard}`,
				},
			},
		},
		...(postgresUrl ? { postgres: { url: postgresUrl } } : { file_system: { path: path.join(dir, "db") } }),
		...(natsAddress ? { nats: { addresses: [natsAddress] } } : { memory: {} }),
		cache: { enabled: true, driver: "in_memory" },
		...(pegboard ? { pegboard } : {}),
	};
	const configFile = path.join(dir, "config.json");
	fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
	const logFile = path.join(dir, "engine.log");
	const logFd = fs.openSync(logFile, "a");
	const child = spawn(bin, ["--config", configFile, "start"], { stdio: ["ignore", logFd, logFd] });
	fs.closeSync(logFd);
	live.add(child);
	const exited = new Promise((resolve) =>
		child.on("close", (code, signal) => {
			live.delete(child);
			resolve({ code, signal });
		}),
	);
	const endpoint = `http://127.0.0.1:${guard}`;
	const deadline = Date.now() + 30_000;
	for (;;) {
		if (child.exitCode !== null) throw new Error(`rivet-engine exited early; log ${logFile}`);
		try {
			const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
			if (res.ok) break;
		} catch {}
		if (Date.now() > deadline) throw new Error(`rivet-engine did not become healthy; log ${logFile}`);
		await new Promise((r) => setTimeout(r, 100));
	}
	const api = async (method, route, body) => {
		const sep = route.includes("?") ? "&" : "?";
		const res = await fetch(`${endpoint}${route}${sep}namespace=${namespace}`, {
			method,
			headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await res.text();
		let json;
		try {
			json = JSON.parse(text);
		} catch {
			json = text;
		}
		return { status: res.status, body: json };
	};
	// The pool the envoys serve: a serverful ("normal") runner config.
	// (The engine creates the default namespace just after it is healthy.)
	for (;;) {
		const made = await api("PUT", `/runner-configs/${pool}`, { datacenters: { default: { normal: {} } } });
		if (made.status === 200) break;
		if (Date.now() > deadline)
			throw new Error(`cannot create runner config: ${made.status} ${JSON.stringify(made.body)}`);
		await new Promise((r) => setTimeout(r, 100));
	}
	return {
		endpoint,
		pid: child.pid,
		peerUrl: `http://127.0.0.1:${peer}`,
		token,
		namespace,
		pool,
		logFile,
		api,
		/** Envoys the engine lists for the namespace. */
		async envoys() {
			const r = await api("GET", "/envoys");
			return r.body?.envoys ?? [];
		},
		async stop() {
			if (child.exitCode !== null || child.signalCode !== null) return exited;
			child.kill("SIGTERM");
			const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
			const r = await exited;
			clearTimeout(t);
			return r;
		},
	};
}
