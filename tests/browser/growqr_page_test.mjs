#!/usr/bin/env node
// GrowQR's web page (web/growqr) in headless Chromium against `anvil serve
// --app growqr` with the Anthropic fake: sign in, a chat whose text streams
// in, the memory file it committed, the active missions list.
import { chromium } from "playwright-core";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { startAnvil, startFakes, tempDir } from "../e2e/anvil_proc.mjs";
import { buildGrowqrWeb } from "./growqr_web.mjs";

if (!process.env.ANVIL_POSTGRES_URL) {
  if (process.env.CI) throw new Error("ANVIL_POSTGRES_URL must be set in CI");
  console.log("skipped: no Postgres (ANVIL_POSTGRES_URL)");
  process.exit(0);
}

const outDir = await buildGrowqrWeb(tempDir("growqr-web"));
const types = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" };
const pageServer = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const file = path.join(outDir, url.pathname === "/" ? "index.html" : path.normalize(url.pathname));
  if (!file.startsWith(outDir) || !fs.existsSync(file)) return res.writeHead(404).end();
  res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => pageServer.listen(0, "127.0.0.1", r));
const pageOrigin = `http://127.0.0.1:${pageServer.address().port}`;

const rules = path.join(tempDir("growqr-web-rules"), "rules.json");
fs.writeFileSync(rules, JSON.stringify([
  { match: "remember", reply: { content: [{ type: "text", text: "Noting it. " }, { type: "tool_use", name: "commit_memory", input: { path: "web/notes.md", content: "from the browser" } }] } },
  { match: "tool_result:commit_memory", reply: { content: [{ type: "text", text: "Saved it to your memory, streamed to the page." }] } },
]));
const fakes = await startFakes(["--anthropic-rules", rules, "--anthropic-latency-ms", "50"]);
Object.assign(process.env, { GROWQR_ENV: "development", ANTHROPIC_BASE_URL: fakes.anthropic, ANTHROPIC_API_KEY: "browser" });
// HTTPS (HTTP/2) served by anvil itself, with its development certificate.
const anvil = await startAnvil({ extraArgs: ["--app", "growqr"], logFile: path.join(tempDir("growqr-web-log"), "anvil.log"), tls: true });
const endpoint = `https://localhost:${anvil.port}/api/rivet`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  headless: true,
  args: ["--ignore-certificate-errors", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = 0;
const check = (name, cond, detail = "") => {
  if (!cond) failed++;
  console.log(`${cond ? "ok  " : "FAIL"} ${name}${cond ? "" : `: ${detail}`}`);
};
try {
  const page = await browser.newPage();
  page.on("console", (m) => process.env.BROWSER_VERBOSE && console.log(`[page] ${m.text()}`));
  await page.goto(`${pageOrigin}/?endpoint=${encodeURIComponent(endpoint)}`);
  const user = `web-${Date.now().toString(36)}`;
  await page.fill("#user", user);
  await page.click("#signin");
  await page.waitForFunction(() => !document.getElementById("text").disabled, null, { timeout: 20_000 });
  check("signed in", (await page.textContent("#status")).includes(user));
  await page.fill("#text", "please remember this");
  await page.click("#send");
  await page.waitForFunction(() => document.body.dataset.lastReply || document.body.dataset.lastError, null, { timeout: 30_000 });
  const reply = await page.evaluate(() => document.body.dataset.lastReply);
  check("the agent's reply arrived", reply === "Saved it to your memory, streamed to the page.", reply ?? (await page.evaluate(() => document.body.dataset.lastError)));
  const streamed = await page.evaluate(() => [...document.querySelectorAll(".agent")].map((e) => e.textContent));
  check("the reply streamed into the page as text deltas", streamed.some((t) => t.includes("Saved it to your memory")), JSON.stringify(streamed));
  const tools = await page.evaluate(() => [...document.querySelectorAll(".tool")].map((e) => e.textContent));
  check("the tool call was shown while it ran", tools.some((t) => t.includes("commit_memory")), JSON.stringify(tools));
  await page.waitForFunction(() => document.getElementById("memory").textContent.includes("web/notes.md"), null, { timeout: 10_000 }).catch(() => {});
  check("the memory list shows the committed file", (await page.textContent("#memory")).includes("web/notes.md"), await page.textContent("#memory"));
  await page.click("#memory a");
  await page.waitForFunction(() => document.getElementById("memory-file").textContent.length > 0, null, { timeout: 10_000 }).catch(() => {});
  check("the memory file reads back", (await page.textContent("#memory-file")) === "from the browser", await page.textContent("#memory-file"));
  check("the missions panel answered", !(await page.textContent("#missions")).includes("error"), await page.textContent("#missions"));
} finally {
  await browser.close();
  await anvil.kill("SIGTERM");
  pageServer.close();
  fakes.stop();
}
process.exit(failed === 0 ? 0 : 1);
