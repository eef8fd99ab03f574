#!/usr/bin/env node
// Runs the shared conformance suite (../shared/rivet-ref/conformance) with the
// real client against a fresh `anvil serve`, at the /api/rivet base path.
//   CONF_FILTER / RIVET_ENCODINGS pass through to the suite.
//   ANVIL_CONFORMANCE_TLS=1: the node serves HTTPS itself (--tls-self-signed)
//   and the client talks to it over TLS (its certificate unchecked).
import { spawn } from "node:child_process";
import path from "node:path";
import { SHARED_DIR, startAnvil, tempDir } from "./anvil_proc.mjs";

const logFile = path.join(tempDir("conformance-log"), "anvil.log");
const tls = process.env.ANVIL_CONFORMANCE_TLS === "1";
const anvil = await startAnvil({ logFile, tls });
console.log(`anvil pid ${anvil.pid} at ${anvil.endpoint}/api/rivet (log ${logFile})`);
const suite = spawn(process.execPath, [path.join(SHARED_DIR, "rivet-ref", "conformance", "run.mjs")], {
	stdio: "inherit",
	env: {
		...process.env,
		RIVET_ENDPOINT: `${anvil.endpoint}/api/rivet`,
		RIVET_LOG_LEVEL: process.env.RIVET_LOG_LEVEL ?? "error",
		...(tls ? { NODE_TLS_REJECT_UNAUTHORIZED: "0", NODE_NO_WARNINGS: "1" } : {}),
	},
});
const code = await new Promise((resolve) => suite.on("exit", (c) => resolve(c ?? 1)));
await anvil.kill("SIGTERM");
process.exit(code);
