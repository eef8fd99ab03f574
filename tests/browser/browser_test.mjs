#!/usr/bin/env node
// Browser test: bundles page/ with vite, serves it from one origin, starts
// anvil on another — over HTTPS served by anvil itself (--tls-self-signed;
// no proxy in between) — and drives headless Debian Chromium (playwright-core,
// /usr/bin/chromium) through actions, a connection with an event, a user
// error, a raw fetch with a 1 MiB body and CORS preflight — in every
// encoding. Requests go over HTTP/2 (ALPN h2; Chromium streams rivetkit's
// request bodies only over HTTP/2) and WebSockets over HTTP/1.1.
import { build } from "vite";
import { chromium } from "playwright-core";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { startAnvil, tempDir } from "../e2e/anvil_proc.mjs";

const here = import.meta.dirname;
const outDir = tempDir("browser-dist");
process.env.BROWSER_OUT_DIR = outDir;
await build({ configFile: path.join(here, "vite.config.mjs") });

// The page's origin: a static server for the bundle.
const types = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" };
const pageServer = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const file = path.join(outDir, url.pathname === "/" ? "index.html" : path.normalize(url.pathname));
  if (!file.startsWith(outDir) || !fs.existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => pageServer.listen(0, "127.0.0.1", r));
const pageOrigin = `http://127.0.0.1:${pageServer.address().port}`;

const logFile = path.join(tempDir("browser-log"), "anvil.log");
const anvil = await startAnvil({ logFile, tls: true });
const endpoint = `https://localhost:${anvil.port}/api/rivet`; // a different origin from the page

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  headless: true,
  args: ["--ignore-certificate-errors", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

let passed = 0;
let failed = 0;
const check = (name, cond, detail) => {
  if (cond) passed++;
  else {
    failed++;
    console.log(`FAIL ${name}: ${detail}`);
  }
};

try {
  for (const encoding of ["json", "cbor", "bare"]) {
    const page = await browser.newPage();
    // What the network saw, from Chromium's DevTools protocol: preflights
    // and the protocol of each response from anvil.
    const preflights = [];
    const protocols = {};
    const cdp = await page.context().newCDPSession(page);
    cdp.on("Network.requestWillBeSent", (e) => {
      if (e.request.method === "OPTIONS" || e.type === "Preflight") preflights.push(e.request.url);
    });
    cdp.on("Network.responseReceived", (e) => {
      if (e.response.url.startsWith(endpoint)) protocols[e.response.protocol] = (protocols[e.response.protocol] ?? 0) + 1;
    });
    const sockets = [];
    cdp.on("Network.webSocketCreated", (e) => sockets.push(e.url));
    await cdp.send("Network.enable");
    page.on("console", (m) => process.env.BROWSER_VERBOSE && console.log(`[page] ${m.text()}`));
    await page.goto(`${pageOrigin}/?endpoint=${encodeURIComponent(endpoint)}&encoding=${encoding}`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 30_000 });
    const result = await page.evaluate(() => window.__result);
    const s = result.steps ?? {};
    check(`[${encoding}] page ran`, result.ok, result.error);
    check(`[${encoding}] increment`, s.increment === 3, JSON.stringify(s));
    check(`[${encoding}] getCount`, s.getCount === 3, JSON.stringify(s));
    check(`[${encoding}] connection action`, s.connIncrement === 5, JSON.stringify(s));
    check(`[${encoding}] event over the connection`, s.event === 5, JSON.stringify(s));
    check(`[${encoding}] user error`, s.userError?.code === "custom_code" && s.userError?.metadata?.n === 42,
      JSON.stringify(s.userError));
    check(`[${encoding}] actor id`, typeof s.actorId === "string" && s.actorId.length > 0, JSON.stringify(s));
    check(`[${encoding}] raw fetch with a 1 MiB body`,
      s.rawFetch?.status === 200 && s.rawFetch?.bodyLength === 1 << 20 && s.rawFetch?.intact, JSON.stringify(s.rawFetch));
    check(`[${encoding}] CORS preflight was needed and answered`, preflights.length > 0, "no OPTIONS request seen");
    check(`[${encoding}] requests went over HTTP/2 served by anvil`, (protocols.h2 ?? 0) > 0, JSON.stringify(protocols));
    check(`[${encoding}] the WebSocket went to anvil over wss`, sockets.some((u) => u.startsWith("wss://")), JSON.stringify(sockets));
    console.log(`[${encoding}] ${JSON.stringify({ ...s, rawFetch: s.rawFetch })} (preflights: ${preflights.length}, ` +
      `protocols: ${JSON.stringify(protocols)}, websockets: ${sockets.length})`);
    await page.close();
  }
} finally {
  await browser.close();
  await anvil.kill("SIGTERM");
  pageServer.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
