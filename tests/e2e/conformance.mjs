#!/usr/bin/env node
// Runs the shared conformance suite (../shared/rivet-ref/conformance) with the
// real client against a fresh `anvil serve`, at the /api/rivet base path.
//   CONF_FILTER / RIVET_ENCODINGS pass through to the suite.
//   ANVIL_CONFORMANCE_TLS=1: the node serves HTTPS itself (--tls-self-signed)
//   and the client talks to it over TLS (its certificate unchecked).
//   ANVIL_CONFORMANCE_ENVOY=1: envoy mode. A real rivet-engine 2.3.19 is
//   started (engine_proc.mjs), the node joins it, and the client talks to
//   the ENGINE; exits 77 (skipped) when the engine binary is missing.
import { spawn } from "node:child_process";
import path from "node:path";
import { SHARED_DIR, startAnvil, tempDir } from "./anvil_proc.mjs";
import { engineBinary, startEngine } from "./engine_proc.mjs";

const logFile = path.join(tempDir("conformance-log"), "anvil.log");
const tls = process.env.ANVIL_CONFORMANCE_TLS === "1";
const envoy = process.env.ANVIL_CONFORMANCE_ENVOY === "1";
if (envoy && !engineBinary()) {
	console.log("SKIPPED: rivet-engine binary not found (set RIVET_ENGINE_BIN or install rivet-ref's node_modules)");
	process.exit(77);
}
const engine = envoy ? await startEngine() : null;
const engineArgs = engine ? ["--engine", engine.endpoint, "--engine-token", engine.token] : [];
const anvil = await startAnvil({ logFile, tls, extraArgs: engineArgs });
if (engine) {
	// Joined once the engine lists the node as an envoy.
	const deadline = Date.now() + 15_000;
	while ((await engine.envoys()).length === 0) {
		if (Date.now() > deadline) throw new Error(`the node did not join the engine (log ${logFile})`);
		await new Promise((r) => setTimeout(r, 50));
	}
	console.log(`engine at ${engine.endpoint} (log ${engine.logFile}); anvil pid ${anvil.pid} joined it (log ${logFile})`);
} else {
	console.log(`anvil pid ${anvil.pid} at ${anvil.endpoint}/api/rivet (log ${logFile})`);
}
const suite = spawn(process.execPath, [path.join(SHARED_DIR, "rivet-ref", "conformance", "run.mjs")], {
	stdio: "inherit",
	env: {
		...process.env,
		RIVET_ENDPOINT: engine ? engine.endpoint : `${anvil.endpoint}/api/rivet`,
		...(engine ? { RIVET_NAMESPACE: engine.namespace, RIVET_TOKEN: engine.token } : {}),
		RIVET_LOG_LEVEL: process.env.RIVET_LOG_LEVEL ?? "error",
		...(tls ? { NODE_TLS_REJECT_UNAUTHORIZED: "0", NODE_NO_WARNINGS: "1" } : {}),
	},
});
const code = await new Promise((resolve) => suite.on("exit", (c) => resolve(c ?? 1)));
await anvil.kill("SIGTERM");
await engine?.stop();
process.exit(code);
