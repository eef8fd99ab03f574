// Runs in headless Chromium on a different origin than anvil: stateless
// actions (CORS preflight for the x-rivet-* headers), a WebSocket connection
// with an event, an action error, a raw fetch (onRequest) with a 1 MiB body.
// Publishes the outcome on window.__result.
import { createClient } from "rivetkit/client";

const params = new URLSearchParams(location.search);
const endpoint = params.get("endpoint");
const encoding = params.get("encoding") ?? "json";
const log = (line) => (document.getElementById("log").textContent += `${line}\n`);

async function run() {
  const client = createClient({ endpoint, encoding });
  const key = ["browser", String(Date.now()), encoding];
  const counter = client.counter.getOrCreate(key);
  const steps = {};

  steps.increment = await counter.increment(3);
  steps.getCount = await counter.getCount();

  const conn = counter.connect();
  const event = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no newCount event")), 5000);
    conn.on("newCount", (n) => {
      clearTimeout(t);
      resolve(n);
    });
  });
  await conn.getCount(); // subscription registered before the broadcast
  steps.connIncrement = await conn.increment(2);
  steps.event = await event;
  await conn.dispose();

  try {
    await client.errors.getOrCreate(key).throwUserError();
    steps.userError = "not thrown";
  } catch (e) {
    steps.userError = { group: e.group, code: e.code, message: e.message, metadata: e.metadata };
  }
  steps.actorId = await counter.resolve();

  // Raw HTTP with a 1 MiB body: the raw fixture echoes it in JSON.
  const big = "r".repeat(1 << 20);
  const res = await client.raw.getOrCreate(key).fetch("/big", { method: "PUT", body: big });
  const echoed = await res.json();
  steps.rawFetch = { status: res.status, bodyLength: echoed.body?.length, intact: echoed.body === big };
  return steps;
}

run().then(
  (steps) => {
    log(JSON.stringify(steps));
    window.__result = { ok: true, steps };
  },
  (err) => {
    log(`error: ${err?.stack ?? err}`);
    window.__result = { ok: false, error: String(err?.message ?? err) };
  },
);
