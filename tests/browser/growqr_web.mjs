#!/usr/bin/env node
// Builds GrowQR's web page (web/growqr) with vite and the unchanged rivetkit
// browser client from the shared reference harness.
//   node tests/browser/growqr_web.mjs [OUT_DIR]     (default web/growqr/dist)
// Serve OUT_DIR from any static server and open it with
// ?endpoint=https://<node>/api/rivet.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";

const here = import.meta.dirname;
const shared = process.env.ANVIL_SHARED_DIR ?? path.resolve(here, "../../../shared");
export const WEB_ROOT = path.resolve(here, "../../web/growqr");

export async function buildGrowqrWeb(outDir = path.join(WEB_ROOT, "dist")) {
  await build({
    configFile: false,
    root: WEB_ROOT,
    logLevel: "error",
    resolve: { alias: { "rivetkit/client": path.join(shared, "rivet-ref/node_modules/rivetkit/dist/browser/client.js") } },
    build: { outDir, emptyOutDir: true, minify: false },
  });
  return outDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildGrowqrWeb(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  console.log(`built ${out}`);
}
