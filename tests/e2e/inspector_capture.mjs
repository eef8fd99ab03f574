// Captures the reference's inspector answers (tests/e2e/inspector-ref/):
//   cd ../shared/rivet-ref && _RIVET_TEST_INSPECTOR_TOKEN=insptest reference/start.sh
//   node tests/e2e/inspector_capture.mjs http://127.0.0.1:6420 insptest
// (rivetkit 2.3.19 accepts the test token on every actor when it is set.)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadClient } from "./anvil_proc.mjs";
import { run } from "./inspector_scenario.mjs";

const [endpoint = "http://127.0.0.1:6420", token = "insptest"] = process.argv.slice(2);
const { createClient } = loadClient();
const client = createClient({ endpoint, namespace: "default", token: "dev", encoding: "json" });
const { results } = await run({ endpoint, client, tokenOf: async () => token });
const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "inspector-ref", "reference.json");
fs.writeFileSync(file, `${JSON.stringify(results, null, "\t")}\n`);
console.log(`wrote ${file}`);
process.exit(0);
