// Starts and stops `anvil serve` for end-to-end tests, and loads the real
// rivetkit client from the shared reference harness.
//   ANVIL_BIN         the binary (ctest passes $<TARGET_FILE:anvil>; default build/tools/anvil).
//                     Anything that accepts `serve --listen H:P --data-dir D` and
//                     answers GET /metadata works (e.g. a wrapper script).
//   ANVIL_SHARED_DIR  the shared dir beside the repository (default ../shared)
//   ANVIL_START_TIMEOUT_MS  readiness deadline per start (default 30000)
//   ANVIL_KEEP_TMP=1  keep temp dirs (data, logs) even when the test passes
// Every anvil started here is SIGKILLed by PID if this process exits without
// stopping it, and temp dirs are removed when the process exits with code 0.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SHARED_DIR = path.resolve(process.env.ANVIL_SHARED_DIR ?? path.join(HERE, "../../../shared"));
export const ANVIL_BIN = process.env.ANVIL_BIN || path.join(HERE, "../../build/tools/anvil");
const START_TIMEOUT_MS = Number(process.env.ANVIL_START_TIMEOUT_MS ?? 30_000);

/**
 * The unchanged rivetkit@2.3.19 client, as installed in the reference harness.
 * Resolved like `require("rivetkit/client")` from inside ../shared/rivet-ref
 * (rivetkit's "exports" map gives CommonJS builds under "require"), so it
 * works whatever the cwd and needs no node_modules in this repository.
 */
export function loadClient() {
	const require = createRequire(path.join(SHARED_DIR, "rivet-ref", "package.json"));
	try {
		return require("rivetkit/client");
	} catch (err) {
		throw new Error(
			`cannot load rivetkit/client from ${SHARED_DIR}/rivet-ref/node_modules (run scripts/deps.sh or set ANVIL_SHARED_DIR): ${err.message}`,
		);
	}
}

const tempDirs = [];
export function tempDir(label) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), `anvil-${label}-`));
	tempDirs.push(dir);
	return dir;
}

const live = new Set(); // anvil children not yet seen exiting
process.on("exit", (code) => {
	for (const child of live) {
		try {
			process.kill(child.pid, "SIGKILL");
		} catch {}
	}
	if (code === 0 && process.env.ANVIL_KEEP_TMP !== "1") {
		for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
	} else if (tempDirs.length) {
		console.error(`kept temp dirs: ${tempDirs.join(" ")}`);
	}
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
	process.once(sig, () => process.exit(128 + os.constants.signals[sig]));
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

function tail(file, lines = 30) {
	try {
		return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
	} catch {
		return "";
	}
}

/** Starts anvil and resolves once GET /metadata answers 200 (it prints `listening on` just before). */
// GET `url`: resolves to the status; a TLS server's certificate is not checked.
function getInsecure(url) {
	return new Promise((resolve, reject) => {
		const req = https.get(url, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
			res.resume();
			resolve(res.statusCode);
		});
		req.on("timeout", () => req.destroy(new Error("timeout")));
		req.on("error", reject);
	});
}

/**
 * `tls`: serve HTTPS, the endpoint is then https://. `true`: anvil's development
 * certificate (--tls-self-signed); `{ cert, key }`: these PEM files.
 */
export async function startAnvil({ dataDir, port, logFile, extraArgs = [], tls = false } = {}) {
	port ??= await freePort();
	dataDir ??= tempDir("data");
	logFile ??= path.join(tempDir("log"), "anvil.log");
	const logFd = fs.openSync(logFile, "a");
	const tlsArgs = tls === true ? ["--tls-self-signed"] : tls ? ["--tls-cert", tls.cert, "--tls-key", tls.key] : [];
	const child = spawn(ANVIL_BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, ...tlsArgs, ...extraArgs], {
		stdio: ["ignore", logFd, logFd],
	});
	fs.closeSync(logFd);
	let spawnError = null;
	child.on("error", (err) => (spawnError = err));
	live.add(child);
	const exited = new Promise((resolve) =>
		child.on("close", (code, signal) => {
			live.delete(child);
			resolve({ code, signal });
		}),
	);
	const endpoint = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
	const fail = (why) => {
		if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
		throw new Error(`${why}; ${ANVIL_BIN} log ${logFile}:\n${tail(logFile)}`);
	};
	const deadline = Date.now() + START_TIMEOUT_MS;
	for (;;) {
		if (spawnError) fail(`cannot start anvil: ${spawnError.message}`);
		if (child.exitCode !== null || child.signalCode !== null)
			fail(`anvil exited early (code ${child.exitCode}, signal ${child.signalCode})`);
		let ready = false;
		try {
			if (tls) ready = (await getInsecure(`${endpoint}/metadata`)) === 200;
			else ready = (await fetch(`${endpoint}/metadata`, { signal: AbortSignal.timeout(2000) })).ok;
		} catch {}
		if (ready) break;
		if (Date.now() > deadline) fail(`anvil did not become ready within ${START_TIMEOUT_MS} ms`);
		await new Promise((r) => setTimeout(r, 50));
	}
	return {
		child,
		pid: child.pid,
		port,
		dataDir,
		logFile,
		endpoint,
		exited,
		/** Signals this anvil (by its PID) and resolves once it exited. SIGTERM falls back to SIGKILL after `graceMs`. */
		async kill(signal = "SIGKILL", graceMs = 15_000) {
			if (child.exitCode !== null || child.signalCode !== null) return exited;
			child.kill(signal);
			if (signal === "SIGKILL") return exited;
			const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
			const result = await exited;
			clearTimeout(timer);
			return result;
		},
	};
}

export const FAKES_BIN = process.env.ANVIL_FAKES_BIN || path.join(HERE, "../../build/tests/fakes/anvil-fakes");

/**
 * Starts `anvil-fakes` (the C++ fakes of external APIs) and resolves with
 * the base URLs it prints, e.g. { anthropic: "http://127.0.0.1:1234/" }, plus
 * stop(). It exits by itself when this process ends (its stdin closes).
 */
export async function startFakes(args = []) {
	const child = spawn(FAKES_BIN, args, { stdio: ["pipe", "pipe", "inherit"] });
	const line = await new Promise((resolve, reject) => {
		let buf = "";
		child.on("error", reject);
		child.on("exit", (code) => reject(new Error(`anvil-fakes exited (code ${code}) before it was ready`)));
		child.stdout.on("data", (d) => {
			buf += d;
			const nl = buf.indexOf("\n");
			if (nl >= 0) resolve(buf.slice(0, nl));
		});
	});
	const urls = JSON.parse(line);
	return {
		...urls,
		stop() {
			child.stdin.end();
			child.kill("SIGTERM");
		},
	};
}
