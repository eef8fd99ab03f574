#!/usr/bin/env node
// Seeds for the fuzz targets, cut from the shared conformance capture
// (../shared/rivet-ref/captures/conformance-run: http.txt and ws.txt, the
// traffic of rivetkit's client against the reference engine) plus the
// hand-made seeds committed in tests/fuzz/seeds/<target>/.
//   node tests/fuzz/make_corpus.mjs <captures dir> <out dir>
// writes <out dir>/<target>/<sha1> files (deduplicated, capped per target).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [capturesDir, outDir] = process.argv.slice(2);
if (!capturesDir || !outDir) {
  console.error("usage: make_corpus.mjs <captures dir> <out dir>");
  process.exit(2);
}
const MAX_PER_TARGET = 2000;
const ENC_BYTE = { json: 0, cbor: 1, bare: 2 };  // fuzz_wire's first byte
const seeds = new Map();  // target -> Map(sha1 -> Buffer)

function add(target, buf) {
  if (!seeds.has(target)) seeds.set(target, new Map());
  const m = seeds.get(target);
  if (m.size >= MAX_PER_TARGET) return;
  m.set(createHash("sha1").update(buf).digest("hex"), buf);
}

// "    7b 22 61" lines following a "len=N" line; null when truncated.
function readHex(lines, i) {
  const m = /^\s+len=(\d+)/.exec(lines[i] ?? "");
  if (!m) return [null, i];
  const want = Number(m[1]);
  const bytes = [];
  let j = i + 1;
  while (j < lines.length && /^\s+([0-9a-f]{2} )*[0-9a-f]{2}\s*$/.test(lines[j])) {
    for (const h of lines[j].trim().split(" ")) bytes.push(parseInt(h, 16));
    j++;
  }
  return [bytes.length === want ? Buffer.from(bytes) : null, j];
}

function addBody(enc, buf, fromClient) {
  if (!buf || !enc) return;
  add(enc, buf);  // the value codecs: fuzz_json / fuzz_cbor / fuzz_bare
  if (fromClient) add("wire", Buffer.concat([Buffer.from([ENC_BYTE[enc]]), buf]));
}

// A masked client frame, as rivetkit's client sends it.
function clientFrame(opcode, payload, fin = true) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | n])
    : n <= 0xffff ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, n >> 8, n & 0xff])
    : Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([head, key, body]);
}

// ---- http.txt: request targets and bodies
const http = readFileSync(join(capturesDir, "http.txt"), "utf8").split("\n");
let enc = null, section = null;
for (let i = 0; i < http.length; i++) {
  const line = http[i];
  const ex = /^=== #\d+ \S+ (\S+) (\S+)/.exec(line);
  if (ex) {
    enc = null;
    section = null;
    if (ex[2].startsWith("/gateway")) add("http_addressing", Buffer.from(ex[2]));
    continue;
  }
  const h = /^\s+x-rivet-encoding: (json|cbor|bare)\s*$/.exec(line);
  if (h) enc = h[1];
  const cp = /^\s+x-rivet-conn-params: (.*)$/.exec(line);
  if (cp) add("json", Buffer.from(cp[1]));
  if (/^\s+request body:/.test(line)) section = "request";
  if (/^\s+response body:/.test(line)) section = "response";
  if (/^\s+len=\d+/.test(line) && section) {
    const [buf, j] = readHex(http, i);
    // Only request bodies are client messages; responses still seed the codecs.
    addBody(enc, buf, section === "request");
    i = j - 1;
  }
}

// ---- ws.txt: upgrade targets, frames per connection
const ws = readFileSync(join(capturesDir, "ws.txt"), "utf8").split("\n");
const conns = new Map();  // ws#id -> { enc, frames: [Buffer] }
let cur = null;
for (let i = 0; i < ws.length; i++) {
  const line = ws[i];
  const up = /^=== (ws#\d+) \S+ UPGRADE GET (\S+)/.exec(line);
  if (up) {
    cur = { enc: "json", frames: [] };
    conns.set(up[1], cur);
    add("http_addressing", Buffer.from(up[2]));
    continue;
  }
  const proto = /^\s+Sec-WebSocket-Protocol: (.*)$/i.exec(line);
  if (proto && cur) {
    add("http_addressing", Buffer.from(`/gateway/x/connect?${proto[1]}`));
    add("ws_protocol", Buffer.from(proto[1]));
    const e = /rivet_encoding\.(json|cbor|bare)/.exec(proto[1]);
    if (e) cur.enc = e[1];
  }
  const fr = /^--- (ws#\d+) \S+ (client->server|server->client) frame \d+ (\w+) fin=(\w+)/.exec(line);
  if (fr) {
    const c = conns.get(fr[1]);
    const [buf, j] = readHex(ws, i + 1);
    i = j - 1;
    if (!c || !buf) continue;
    const fromClient = fr[2] === "client->server";
    const op = { text: 1, binary: 2, close: 8, ping: 9, pong: 10 }[fr[3]];
    if (op === 1 || op === 2) addBody(c.enc, buf, fromClient);
    if (fromClient && op !== undefined) c.frames.push(clientFrame(op, [...buf], fr[4] === "true"));
  }
}
// fuzz_ws_frame: [limit selector 20 => 1 MiB][chunk byte] + a connection's client stream.
for (const c of conns.values()) {
  if (c.frames.length === 0) continue;
  const stream = Buffer.concat(c.frames.slice(0, 32));
  add("ws_frame", Buffer.concat([Buffer.from([20, 7]), stream]));
  add("ws_frame", Buffer.concat([Buffer.from([20, 0]), c.frames[0]]));
}

// ---- hand-made seeds
const here = dirname(fileURLToPath(import.meta.url));
const seedDir = join(here, "seeds");
if (existsSync(seedDir)) {
  for (const target of readdirSync(seedDir))
    for (const f of readdirSync(join(seedDir, target))) add(target, readFileSync(join(seedDir, target, f)));
}

for (const [target, m] of seeds) {
  const dir = join(outDir, target);
  mkdirSync(dir, { recursive: true });
  for (const [name, buf] of m) writeFileSync(join(dir, name), buf);
  console.log(`${target}: ${m.size} seeds`);
}
