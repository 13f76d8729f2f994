// yume-world play: the page. Plain JS, no build step. Protocol: yume_env/play/protocol.py.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_NAMES = ["w", "a", "s", "d", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"];

// Everything the page knows, also read by the browser test.
const state = (window.yumePlay = {
  ready: false, busy: false, world: null, kind: null, fps: 16,
  blocks: 0, blockIndex: 0, caption: "", event: "", pose: null, timing: {}, seed: null,
  snapshots: [], recording: false, saved: null, errors: [], lastError: null,
  queued: 0, drawn: 0, received: 0, rewinds: 0,
  lastKeys: [], history: [], // one entry per block shown: the keys sent, caption, pose
  // ?speed=N plays the frames N times faster than the world's frame rate (fast-forward)
  speed: Math.min(Math.max(Number(new URLSearchParams(location.search).get("speed")) || 1, 0.25), 16),
});

const canvas = $("screen");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const held = new Set();
const frameQueue = []; // decoded frames waiting for their turn, played at the world's frame rate
let pending = null; // the block whose frames are arriving: {meta, remaining}
let ws = null;

// ---------------------------------------------------------------------------------------- socket
function connect() {
  const id = sessionStorage.getItem("yume-world");
  const url = `ws://${location.host}/ws` + (id ? `?world=${encodeURIComponent(id)}` : "");
  ws = new WebSocket(url);
  ws.binaryType = "blob";
  ws.onopen = () => { $("conn").textContent = "connected"; $("conn").classList.add("on"); };
  ws.onclose = (ev) => {
    state.ready = false; state.busy = false; pending = null;
    $("conn").textContent = "offline"; $("conn").classList.remove("on");
    if (ev.code === 1009) showError("the server refused a message over 16 MiB (a start image that large?); the world is unchanged, reconnecting");
    // the world lives on in the server: come back to it (not after a refusal such as a taken world)
    if (!state.fatal) setTimeout(connect, 1000);
  };
  ws.onmessage = (ev) => (typeof ev.data === "string" ? onJson(JSON.parse(ev.data)) : onFrame(ev.data));
}

function send(obj) {
  if (!ws || ws.readyState !== WebSocket.OPEN) { showError("not connected to the server"); return false; }
  ws.send(JSON.stringify(obj));
  return true;
}
// For tests and power users: send any text as is (the server must refuse bad input politely).
state.sendRaw = (text) => { state.busy = true; ws.send(text); };
state.send = (obj) => { state.busy = true; return send(obj); };

function onJson(msg) {
  switch (msg.type) {
    case "hello":
      state.world = msg.world; state.kind = msg.kind; state.fps = msg.fps; state.out = msg.out;
      sessionStorage.setItem("yume-world", msg.world);
      canvas.height = msg.resolution[0]; canvas.width = msg.resolution[1];
      $("world-label").textContent = `${msg.kind} world ${msg.world} · ${msg.resolution[0]}x${msg.resolution[1]} · ${msg.fps} fps` + (msg.dataset ? ` · dataset ${msg.dataset}` : "");
      $("image-label").hidden = !msg.accepts_image;
      state.ready = true;
      frameQueue.length = 0;
      if (!msg.started) reset(); // a new world (or the server was restarted): start it
      break;
    case "block":
      pending = { meta: msg, remaining: msg.frames };
      break;
    case "forked":
      state.busy = false;
      state.snapshots.push({ id: msg.snapshot, blockIndex: msg.block_index });
      addSnapshotButton(msg.snapshot, msg.block_index);
      break;
    case "recording":
      state.busy = false;
      state.recording = msg.on;
      $("record").classList.toggle("on", msg.on);
      $("record").textContent = msg.on ? "■ Stop and save" : "● Record";
      if (!msg.on) {
        state.saved = { video: msg.video, script: msg.script };
        const name = (p) => p.split(/[\\/]/).pop();
        $("saved").textContent = `saved ${name(msg.video)} and ${name(msg.script)} in ${state.out}`;
      } else {
        $("saved").textContent = "recording…";
      }
      break;
    case "error":
      state.busy = false;
      showError(msg.message);
      if (msg.fatal) { state.ready = false; state.fatal = true; sessionStorage.removeItem("yume-world"); }
      break;
  }
}

async function onFrame(blob) {
  if (!pending) return;
  state.received += 1;
  const slot = { bitmap: null };
  frameQueue.push(slot);
  state.queued = frameQueue.length;
  pending.remaining -= 1;
  const done = pending.remaining === 0 ? pending.meta : null;
  if (done) { pending = null; finishBlock(done); }
  slot.bitmap = await createImageBitmap(blob);
}

function finishBlock(meta) {
  state.busy = false;
  state.caption = meta.caption; state.event = meta.event; state.blockIndex = meta.block_index;
  state.pose = meta.pose; state.timing = meta.timing; state.seed = meta.seed;
  if (meta.cause === "reset") { state.snapshots = []; $("snapshots").textContent = ""; }
  if (meta.cause === "rewind") state.rewinds += 1;
  state.blocks += 1;
  state.history.push({
    cause: meta.cause, keys: meta.cause === "step" ? state.lastKeys : [], caption: meta.caption,
    blockIndex: meta.block_index, pose: meta.pose,
  });
  clearError();
  $("caption").textContent = meta.caption;
  const rows = [["block", meta.block_index], ["frames", meta.frames], ["seed", meta.seed]];
  for (const [k, v] of Object.entries(meta.timing || {})) rows.push([k.replace("_ms", ""), `${v} ms`]);
  if (meta.pose) rows.push(["yaw / pitch", `${meta.pose.yaw.toFixed(1)}° / ${meta.pose.pitch.toFixed(1)}°`]);
  $("stats").tBodies[0].innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("");
}

// Frames play at the world's frame rate, whenever they arrive.
function drawNext() {
  if (frameQueue.length && frameQueue[0].bitmap) {
    const { bitmap } = frameQueue.shift();
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    state.drawn += 1;
    state.queued = frameQueue.length;
  }
  setTimeout(drawNext, 1000 / (state.fps * state.speed));
}

// ---------------------------------------------------------------------------------------- actions
function step(keys) {
  if (!state.ready || state.busy) return;
  const event = $("event").value;
  if (send({ type: "step", keys, event })) { state.busy = true; state.lastKeys = keys; $("event").value = ""; }
}

function reset() {
  if (!state.ready || state.busy) return;
  const seed = Number($("seed").value || 0);
  const file = $("image").files[0];
  const go = (image) => { if (send({ type: "reset", seed, image })) state.busy = true; };
  if (!file || $("image-label").hidden) return go(null);
  const reader = new FileReader();
  reader.onload = () => go(reader.result);
  reader.readAsDataURL(file);
}

function addSnapshotButton(id, blockIndex) {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.type = "button"; b.dataset.snapshot = id;
  b.textContent = `Rewind to #${id} (block ${blockIndex})`;
  b.onclick = () => { if (!state.busy && send({ type: "rewind", snapshot: id })) state.busy = true; };
  li.appendChild(b);
  $("snapshots").appendChild(li);
}

function showError(text) {
  state.lastError = text; state.errors.push(text);
  $("error").textContent = text; $("error").hidden = false;
}
function clearError() { $("error").hidden = true; }

// ---------------------------------------------------------------------------------------- keys
function keyName(e) {
  const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  return KEY_NAMES.includes(k) ? k : null;
}
function showHeld() {
  for (const el of document.querySelectorAll("kbd[data-key]")) el.classList.toggle("held", held.has(el.dataset.key));
}
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement) return; // typing an event
  const k = keyName(e);
  if (!k) return;
  e.preventDefault();
  held.add(k); showHeld();
});
document.addEventListener("keyup", (e) => {
  const k = keyName(e);
  if (k) { held.delete(k); showHeld(); }
});
window.addEventListener("blur", () => { held.clear(); showHeld(); });

// While keys are held, ask for the next block as soon as the last one arrived (and the player is
// not too far behind the frames already queued).
setInterval(() => {
  if (held.size && state.ready && !state.busy && frameQueue.length <= state.fps) step([...held]);
}, 20);

$("event-form").addEventListener("submit", (e) => { e.preventDefault(); step([...held]); });
$("step").onclick = () => step([]);
$("fork").onclick = () => { if (!state.busy && send({ type: "fork" })) state.busy = true; };
$("record").onclick = () => { if (!state.busy && send({ type: "record", on: !state.recording })) state.busy = true; };
$("reset").onclick = reset;

// For the tests: the pixels on screen now.
state.pixels = () => Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data);

connect();
drawNext();
canvas.focus();
