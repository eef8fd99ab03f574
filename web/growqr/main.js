// GrowQR's web page on Anvil: the unchanged rivetkit browser client against
// the node's /api/rivet. Sign in (user id + session token, passed as the
// connection params every GrowQR actor checks), chat with the user's
// growAgent with streamed text, see memory files and active missions.
//   ?endpoint=https://host:port/api/rivet   (default: this origin's /api/rivet)
import { createClient } from "rivetkit/client";

const $ = (id) => document.getElementById(id);
const endpoint = new URLSearchParams(location.search).get("endpoint") ?? `${location.origin}/api/rivet`;
const client = createClient({ endpoint });

let session = null; // { user, params, agent, conn }
let streaming = null; // the element the current reply streams into

function line(cls, text) {
  const el = document.createElement("div");
  el.className = `msg ${cls}`;
  el.textContent = text;
  $("log").append(el);
  $("log").scrollTop = $("log").scrollHeight;
  return el;
}

function onRuntimeEvent(ev) {
  if (ev.type === "chat.started") streaming = line("agent", "");
  else if (ev.type === "text.delta" && streaming) streaming.textContent += ev.text;
  else if (ev.type === "tool.started") line("tool", `→ ${ev.name} ${JSON.stringify(ev.input)}`);
  else if (ev.type === "tool.finished") line("tool", `← ${ev.name} ${ev.ok ? "ok" : "failed"}`);
  else if (ev.type === "subAgent.progress") line("tool", `worker ${ev.subAgentId}: ${ev.event}`);
  else if (ev.type === "chat.finished") {
    if (streaming) streaming.dataset.done = "1";
    streaming = null;
    refreshMemory();
  }
}

async function refreshMemory() {
  if (!session) return;
  const memory = client.memoryActor.getOrCreate([session.user], { params: session.params });
  const paths = await memory.listMemory().catch((e) => [`(error: ${e.message})`]);
  $("memory").replaceChildren(
    ...paths.map((p) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "#";
      a.textContent = p;
      a.onclick = async (e) => {
        e.preventDefault();
        $("memory-file").textContent = await memory.readMemory(p).catch((err) => `(error: ${err.message})`);
      };
      li.append(a);
      return li;
    }),
  );
}

async function refreshMissions() {
  if (!session) return;
  const grow = client.growActor.getOrCreate([session.user], { params: session.params });
  const state = await grow.getActiveState().catch((e) => ({ error: e.message }));
  const missions = state.missions ?? state.active ?? [];
  const list = Array.isArray(missions) ? missions : Object.values(missions);
  $("missions").replaceChildren(
    ...(state.error ? [`(error: ${state.error})`] : list.map((m) => `${m.type ?? m.missionType ?? "?"} — ${m.status ?? ""} ${m.stage ?? ""}`)).map((t) => {
      const li = document.createElement("li");
      li.textContent = t;
      return li;
    }),
  );
}

$("signin").onclick = async () => {
  const user = $("user").value.trim();
  if (!user) return;
  const token = $("token").value.trim();
  const params = token ? { token } : { devUserId: user };
  session?.conn?.dispose();
  const agent = client.growAgent.getOrCreate([user], { params });
  const conn = agent.connect();
  conn.on("runtimeEvent", onRuntimeEvent);
  session = { user, params, agent, conn };
  $("status").textContent = `signed in as ${user}`;
  $("text").disabled = false;
  $("send").disabled = false;
  await Promise.all([refreshMemory(), refreshMissions()]);
};

$("chat").onsubmit = async (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !session) return;
  $("text").value = "";
  line("user", text);
  try {
    const out = await session.conn.chat(text);
    const last = [...document.querySelectorAll(".agent")].pop();
    if (!last || last.textContent !== out.reply) line("agent", out.reply);
    document.body.dataset.lastReply = out.reply;
  } catch (err) {
    line("tool", `error: ${err.message}`);
    document.body.dataset.lastError = err.message;
  }
  refreshMissions();
};
