// Prints the golden envoy-protocol messages that gateway/codec/envoy.test.cpp
// embeds: each case encoded by the reference package
// `@rivetkit/engine-envoy-protocol` (the Rivet Engine's envoy protocol, v8).
//
// Needs the shared reference harness's node_modules (scripts/deps.sh installs
// them): $ANVIL_SHARED_DIR/rivet-ref, by default ../shared beside the repo.
//
//   node tests/support/envoy_golden.mjs
//
// and paste the output over the block between `BEGIN GENERATED` and
// `END GENERATED` in envoy.test.cpp. Each case is decoded again here too, so a
// case the package itself cannot read back fails this script.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const shared = process.env.ANVIL_SHARED_DIR ?? path.join(repo, "../shared");
const pkgDir = path.join(shared, "rivet-ref/node_modules/@rivetkit/engine-envoy-protocol");
const proto = await import(pathToFileURL(path.join(pkgDir, "dist/index.js")).href);
const { version } = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));

const bytes = (...b) => new Uint8Array(b).buffer;
const text = (s) => new TextEncoder().encode(s).buffer;
const gw = bytes(0xde, 0xad, 0xbe, 0xef);
const req = bytes(0x01, 0x02, 0x03, 0x04);
const msgId = { gatewayId: gw, requestId: req, messageIndex: 7 };
const cp = (actorId, generation, index) => ({ actorId, generation, index });
const meta = (version, updateTs) => ({ version, updateTs });

// ---- node → engine ----
const rivet = (tag, val) => ({ tag, val });
const kvReq = (tag, val) => rivet("ToRivetKvRequest", { actorId: "actor-1", requestId: 42, data: { tag, val } });
const listReq = (query, reverse, limit) => kvReq("KvListRequest", { query, reverse, limit });
const rTunnel = (tag, val) => rivet("ToRivetTunnelMessage", { messageId: msgId, messageKind: { tag, val } });

const toRivet = {
  metadata: rivet("ToRivetMetadata", {
    prepopulateActorNames: new Map([
      ["counter", { metadata: '{"icon":"c"}' }],
      ["chat", { metadata: "{}" }],
    ]),
    metadata: '{"version":"1.0"}',
  }),
  metadata_nulls: rivet("ToRivetMetadata", { prepopulateActorNames: null, metadata: null }),
  events: rivet("ToRivetEvents", [
    { checkpoint: cp("a1", 1, 0n), inner: { tag: "EventActorIntent", val: { intent: { tag: "ActorIntentSleep", val: null } } } },
    { checkpoint: cp("a1", 1, 1n), inner: { tag: "EventActorIntent", val: { intent: { tag: "ActorIntentStop", val: null } } } },
    { checkpoint: cp("a2", 3, 2n), inner: { tag: "EventActorStateUpdate", val: { state: { tag: "ActorStateRunning", val: null } } } },
    {
      checkpoint: cp("a2", 3, 3n),
      inner: { tag: "EventActorStateUpdate", val: { state: { tag: "ActorStateStopped", val: { code: "Ok", message: null } } } },
    },
    {
      checkpoint: cp("a2", 3, 4n),
      inner: {
        tag: "EventActorStateUpdate",
        val: { state: { tag: "ActorStateStopped", val: { code: "Error", message: "crashed: ü" } } },
      },
    },
    { checkpoint: cp("a3", 0xffffffff, 5n), inner: { tag: "EventActorSetAlarm", val: { alarmTs: null } } },
    { checkpoint: cp("a3", 0, 1n << 40n), inner: { tag: "EventActorSetAlarm", val: { alarmTs: 1700000000123n } } },
  ]),
  events_empty: rivet("ToRivetEvents", []),
  ack_commands: rivet("ToRivetAckCommands", { lastCommandCheckpoints: [cp("a1", 2, 9n), cp("a2", 0x01020304, -1n)] }),
  stopping: rivet("ToRivetStopping", null),
  pong_negative: rivet("ToRivetPong", { ts: -1234567890123n }),
  pong_large: rivet("ToRivetPong", { ts: 9223372036854775807n }),
  kv_get: kvReq("KvGetRequest", { keys: [bytes(1, 2), bytes()] }),
  kv_list_all: listReq({ tag: "KvListAllQuery", val: null }, null, null),
  kv_list_range: listReq(
    { tag: "KvListRangeQuery", val: { start: bytes(0x00), end: bytes(0xff, 0xff), exclusive: true } },
    true,
    100n,
  ),
  kv_list_range_inclusive: listReq(
    { tag: "KvListRangeQuery", val: { start: bytes(), end: bytes(0x10), exclusive: false } },
    null,
    18446744073709551615n,
  ),
  kv_list_prefix: listReq({ tag: "KvListPrefixQuery", val: { key: text("user:") } }, false, null),
  kv_put: kvReq("KvPutRequest", { keys: [text("k1"), text("k2")], values: [text("v1"), bytes()] }),
  kv_delete: kvReq("KvDeleteRequest", { keys: [text("k1")] }),
  kv_delete_range: kvReq("KvDeleteRangeRequest", { start: text("a"), end: text("b") }),
  kv_drop: kvReq("KvDropRequest", null),
  tunnel_response_start: rTunnel("ToRivetResponseStart", {
    status: 201,
    headers: new Map([
      ["content-type", "text/plain"],
      ["x-a", "1"],
    ]),
    body: text("hi"),
    stream: false,
  }),
  tunnel_response_start_stream: rTunnel("ToRivetResponseStart", { status: 200, headers: new Map(), body: null, stream: true }),
  tunnel_response_chunk: rTunnel("ToRivetResponseChunk", { body: bytes(1, 2, 3), finish: true }),
  tunnel_response_abort: rTunnel("ToRivetResponseAbort", { reason: { kind: "HandlerError", detail: "boom" } }),
  tunnel_response_abort_bare: rTunnel("ToRivetResponseAbort", { reason: { kind: "InternalError", detail: null } }),
  tunnel_request_body_window_update: rTunnel("ToRivetRequestBodyWindowUpdate", { consumedBytes: 8589934592n }),
  tunnel_request_body_cancel: rTunnel("ToRivetRequestBodyCancel", null),
  tunnel_ws_open: rTunnel("ToRivetWebSocketOpen", { canHibernate: true }),
  tunnel_ws_message: rTunnel("ToRivetWebSocketMessage", { data: bytes(0x00, 0x80), binary: true }),
  tunnel_ws_message_ack: rTunnel("ToRivetWebSocketMessageAck", { index: 65535 }),
  tunnel_ws_close: rTunnel("ToRivetWebSocketClose", { code: 1000, reason: "bye", hibernate: true }),
  tunnel_ws_close_bare: rTunnel("ToRivetWebSocketClose", { code: null, reason: null, hibernate: false }),
};

// ---- engine → node ----
const envoy = (tag, val) => ({ tag, val });
const kvRes = (tag, val) => envoy("ToEnvoyKvResponse", { requestId: 0xfffffffe, data: { tag, val } });
const eTunnel = (tag, val) => envoy("ToEnvoyTunnelMessage", { messageId: msgId, messageKind: { tag, val } });
const stop = (reason, i) => ({ checkpoint: cp("a9", 1, BigInt(i)), inner: { tag: "CommandStopActor", val: { reason } } });

const toEnvoy = {
  init: envoy("ToEnvoyInit", {
    metadata: { envoyLostThreshold: 15000n, actorStopThreshold: -1n, maxResponsePayloadSize: 18446744073709551615n },
  }),
  commands_start_minimal: envoy("ToEnvoyCommands", [
    {
      checkpoint: cp("a1", 1, 0n),
      inner: {
        tag: "CommandStartActor",
        val: {
          config: { name: "counter", key: null, createTs: 1700000000000n, input: null },
          hibernatingRequests: [],
          preloadedKv: null,
        },
      },
    },
  ]),
  commands_start_full: envoy("ToEnvoyCommands", [
    {
      checkpoint: cp("a2", 7, 12n),
      inner: {
        tag: "CommandStartActor",
        val: {
          config: { name: "chat", key: '["room","1"]', createTs: -5n, input: bytes(0xa1, 0x01) },
          hibernatingRequests: [
            { gatewayId: gw, requestId: req },
            { gatewayId: bytes(0, 0, 0, 1), requestId: bytes(0xff, 0xfe, 0xfd, 0xfc) },
          ],
          preloadedKv: {
            entries: [{ key: text("k"), value: text("v"), metadata: meta(bytes(3), 1700000000001n) }],
            requestedGetKeys: [text("k"), text("missing")],
            requestedPrefixes: [text("p/")],
          },
        },
      },
    },
  ]),
  commands_stop: envoy(
    "ToEnvoyCommands",
    ["SleepIntent", "StopIntent", "Destroy", "GoingAway", "Lost"].map((r, i) => stop(r, i)),
  ),
  ack_events: envoy("ToEnvoyAckEvents", { lastEventCheckpoints: [cp("a1", 1, 3n), cp("a2", 2, 1n << 33n)] }),
  kv_error: kvRes("KvErrorResponse", { message: "too large" }),
  kv_get: kvRes("KvGetResponse", {
    keys: [text("a"), text("b")],
    values: [text("1"), bytes()],
    metadata: [meta(bytes(1), 10n), meta(bytes(), -10n)],
  }),
  kv_list: kvRes("KvListResponse", { keys: [text("x")], values: [text("y")], metadata: [meta(bytes(9, 9), 0n)] }),
  kv_put: kvRes("KvPutResponse", null),
  kv_delete: kvRes("KvDeleteResponse", null),
  kv_drop: kvRes("KvDropResponse", null),
  tunnel_request_start: eTunnel("ToEnvoyRequestStart", {
    actorId: "actor-1",
    actorGeneration: null,
    method: "GET",
    path: "/counter?x=1",
    headers: new Map([
      ["host", "example"],
      ["accept", "*/*"],
    ]),
    body: null,
    stream: false,
    responseStream: false,
  }),
  tunnel_request_start_body: eTunnel("ToEnvoyRequestStart", {
    actorId: "actor-2",
    actorGeneration: 3,
    method: "POST",
    path: "/action/increment",
    headers: new Map([["content-type", "application/octet-stream"]]),
    body: bytes(0x82, 0x01, 0x02),
    stream: true,
    responseStream: true,
  }),
  tunnel_request_chunk: eTunnel("ToEnvoyRequestChunk", { body: text("part"), finish: false }),
  tunnel_request_abort: eTunnel("ToEnvoyRequestAbort", {
    actorId: "actor-1",
    actorGeneration: 0xffffffff,
    reason: { kind: "Cancelled", detail: "client went away" },
  }),
  tunnel_request_abort_bare: eTunnel("ToEnvoyRequestAbort", {
    actorId: null,
    actorGeneration: null,
    reason: { kind: "Unknown", detail: null },
  }),
  tunnel_request_body_cancel: eTunnel("ToEnvoyRequestBodyCancel", null),
  tunnel_response_body_window_update: eTunnel("ToEnvoyResponseBodyWindowUpdate", { consumedBytes: 65536n }),
  tunnel_ws_open: eTunnel("ToEnvoyWebSocketOpen", {
    actorId: "actor-3",
    actorGeneration: 2,
    path: "/connect",
    headers: new Map([["sec-websocket-protocol", "rivet"]]),
  }),
  tunnel_ws_message: eTunnel("ToEnvoyWebSocketMessage", { data: text("héllo"), binary: false }),
  tunnel_ws_close: eTunnel("ToEnvoyWebSocketClose", { code: 1001, reason: "going away" }),
  tunnel_ws_close_bare: eTunnel("ToEnvoyWebSocketClose", { code: null, reason: null }),
  ping: envoy("ToEnvoyPing", { ts: 1700000000999n }),
};

const hex = (u8) => Buffer.from(u8).toString("hex");
const lines = [];
const emit = (prefix, cases, encode, decode) => {
  for (const [name, msg] of Object.entries(cases)) {
    const b = encode(msg);
    const again = encode(decode(b));
    if (hex(again) !== hex(b)) throw new Error(`${prefix}.${name} does not round-trip in the package`);
    lines.push(`  {"${prefix}.${name}", "${hex(b)}"},`);
  }
};
emit("to_rivet", toRivet, proto.encodeToRivet, proto.decodeToRivet);
emit("to_envoy", toEnvoy, proto.encodeToEnvoy, proto.decodeToEnvoy);

console.log(`// BEGIN GENERATED by tests/support/envoy_golden.mjs from @rivetkit/engine-envoy-protocol ${version}`);
console.log(`// (protocol VERSION ${proto.VERSION}). Do not edit by hand: change the script and run it again.`);
console.log("const std::map<std::string, std::string, std::less<>> kGolden = {");
for (const l of lines) console.log(l);
console.log("};");
console.log("// END GENERATED");
