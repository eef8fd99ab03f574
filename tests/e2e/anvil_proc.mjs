// Starts and stops `anvil serve` for end-to-end tests, and loads the real
// rivetkit client from the shared reference harness.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const SHARED_DIR =
	process.env.ANVIL_SHARED_DIR ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../../shared");
export const ANVIL_BIN =
	process.env.ANVIL_BIN ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../build/tools/anvil");

/** The unchanged rivetkit@2.3.19 client, as installed in the reference harness. */
export function loadClient() {
	const require = createRequire(path.join(SHARED_DIR, "rivet-ref", "package.json"));
	return require("rivetkit/client");
}

export function tempDir(label) {
	return fs.mkdtempSync(path.join(os.tmpdir(), `anvil-${label}-`));
}

export function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.on("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

/** Starts anvil and resolves once GET /metadata answers 200. */
export async function startAnvil({ dataDir, port, logFile, extraArgs = [] } = {}) {
	port ??= await freePort();
	dataDir ??= tempDir("data");
	const out = logFile ? fs.openSync(logFile, "a") : "ignore";
	const child = spawn(ANVIL_BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, ...extraArgs], {
		stdio: ["ignore", out, out],
	});
	const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
	const endpoint = `http://127.0.0.1:${port}`;
	const deadline = Date.now() + 15_000;
	for (;;) {
		if (child.exitCode !== null) throw new Error(`anvil exited early (code ${child.exitCode}), see ${logFile}`);
		try {
			const res = await fetch(`${endpoint}/metadata`);
			if (res.ok) break;
		} catch {}
		if (Date.now() > deadline) {
			child.kill("SIGKILL");
			throw new Error("anvil did not become ready within 15 s");
		}
		await new Promise((r) => setTimeout(r, 50));
	}
	return {
		child,
		pid: child.pid,
		port,
		dataDir,
		endpoint,
		exited,
		async kill(signal = "SIGKILL") {
			if (child.exitCode === null && child.signalCode === null) child.kill(signal);
			return exited;
		},
	};
}
