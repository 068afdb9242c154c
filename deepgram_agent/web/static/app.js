// The browser side of `deepgram-agent serve`: microphone -> our server -> the agent, and the
// agent's audio and events back. The page only talks to our server (never to Deepgram, never
// with an API key). Plain JavaScript, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const SPEECH_LEVEL = 0.02;   // mic RMS (0..1) counted as speech, for the per-turn latency
const PREBUFFER = 0.06;      // seconds of agent audio queued before a reply starts playing

const stats = {              // read by the tests; shown in the footer
  micChunks: 0, micDropped: 0, audioChunks: 0, chunksPlayed: 0, flushes: 0, drained: 0,
  bargeIns: 0, userLines: 0, agentLines: 0, functionLines: 0, latencies: [],
};
window.dgAgent = { stats };

let ws = null, ctx = null, micStream = null, micNode = null;
let inRate = 16000, outRate = 24000;
let playHead = 0, replyDone = true, sources = new Set();
let lastSpeech = 0, speaking = false, replyStartedAt = 0;

function line(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = text;
  $("transcript").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
}

function status(text) { $("status").textContent = text; }

function showCounters() {
  $("counters").textContent =
    `mic chunks ${stats.micChunks} (dropped ${stats.micDropped}) · agent chunks ` +
    `${stats.audioChunks} · played ${stats.chunksPlayed} · barge-ins ${stats.bargeIns}`;
}

// ------------------------------------------------------------------ agent audio playback

function play(buffer) {
  const pcm = new Int16Array(buffer);
  const samples = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
  const audio = ctx.createBuffer(1, samples.length, outRate);
  audio.copyToChannel(samples, 0);
  const source = ctx.createBufferSource();
  source.buffer = audio;
  source.connect(ctx.destination);
  const now = ctx.currentTime;
  if (playHead < now) playHead = now + PREBUFFER;   // a new reply, or an underrun
  source.start(playHead);
  playHead += audio.duration;
  sources.add(source);
  source.onended = () => {
    sources.delete(source);
    stats.chunksPlayed++;
    if (sources.size === 0 && replyDone) drained();
  };
}

function flush() {                         // barge-in: stop what plays, drop what is queued
  for (const source of sources) { source.onended = null; source.stop(); }
  sources.clear();
  playHead = 0;
  stats.flushes++;
}

function drained() {                       // the reply has played to its end
  stats.drained++;
  send({ type: "drained" });
  status("Listening.");
}

// ------------------------------------------------------------------ events from the server

function onEvent(msg) {
  switch (msg.type) {
    case "bridge.ready":
      inRate = msg.input.sample_rate;
      outRate = msg.output.sample_rate;
      startMicrophone().catch((err) => fail(`microphone: ${err.message}`));
      break;
    case "ConversationText":
      if (msg.role === "user") { stats.userLines++; line("user", `you: ${msg.content}`); }
      else { stats.agentLines++; line("agent", `agent: ${msg.content}`); }
      break;
    case "UserStartedSpeaking":
      if (sources.size > 0) { stats.bargeIns++; line("event", "(barge-in: agent audio stopped)"); }
      status("You are speaking…");
      break;
    case "bridge.flush":
      flush();
      break;
    case "bridge.reply_start":
      replyDone = false;
      replyStartedAt = performance.now();
      if (lastSpeech > 0 && replyStartedAt - lastSpeech < 10000) {
        const ms = Math.round(replyStartedAt - lastSpeech);
        stats.latencies.push(ms);
        $("latency").textContent = `turn ${stats.latencies.length}: ${ms} ms` +
          " (end of your speech → agent audio)";
        lastSpeech = 0;
      }
      status("Agent speaking…");
      break;
    case "bridge.reply_done":
      replyDone = true;
      if (sources.size === 0) drained();
      break;
    case "FunctionCallRequest":
      for (const f of msg.functions) {
        stats.functionLines++;
        line("function", `function call ${f.name}(${f.arguments})`);
      }
      break;
    case "History":
      for (const f of msg.function_calls || []) line("function", `${f.name} → ${f.response}`);
      break;
    case "LatencyReport":                 // the server's own figure for the same turn
      if (msg.total_latency != null && $("latency").textContent) {
        $("latency").textContent += `, server ${Math.round(msg.total_latency * 1000)} ms`;
      }
      break;
    case "Error":
    case "bridge.error":
      line("error", `error: ${msg.description || msg.message}`);
      break;
  }
  showCounters();
}

// ------------------------------------------------------------------ microphone

async function startMicrophone() {
  await ctx.audioWorklet.addModule("/static/worklet.js");
  micStream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const source = ctx.createMediaStreamSource(micStream);
  micNode = new AudioWorkletNode(ctx, "mic-processor", { processorOptions: { targetRate: inRate } });
  micNode.port.onmessage = (e) => {
    const { pcm, level } = e.data;
    $("level").value = Math.min(1, level * 4);
    if (level >= SPEECH_LEVEL) { speaking = true; }
    else if (speaking) { speaking = false; lastSpeech = performance.now(); }
    if (ws && ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 64000) {
      ws.send(pcm);
      stats.micChunks++;
    } else {
      stats.micDropped++;
    }
  };
  const mute = ctx.createGain();           // keep the worklet pulled without hearing yourself
  mute.gain.value = 0;
  source.connect(micNode).connect(mute).connect(ctx.destination);
  status("Listening. Say something.");
}

// ------------------------------------------------------------------ start / stop

function send(obj) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj)); }

function fail(text) { line("error", text); stop(); }

async function start() {
  $("start").disabled = true;
  $("stop").disabled = false;
  ctx = new AudioContext();
  await ctx.resume();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${scheme}//${location.host}/agent${location.search}`);
  ws.binaryType = "arraybuffer";
  status("Connecting…");
  ws.onmessage = (e) => {
    if (typeof e.data === "string") onEvent(JSON.parse(e.data));
    else { stats.audioChunks++; play(e.data); }
  };
  ws.onclose = (e) => {
    if (e.code !== 1000 && e.code !== 1005) line("error", `connection closed (${e.code} ${e.reason})`);
    stop();
  };
}

function stop() {
  send({ type: "stop" });
  if (ws) { ws.onclose = null; ws.close(); ws = null; }
  if (micStream) for (const track of micStream.getTracks()) track.stop();
  micStream = null;
  if (ctx) { ctx.close(); ctx = null; }
  sources.clear();
  $("start").disabled = false;
  $("stop").disabled = true;
  status("Stopped.");
}

$("start").addEventListener("click", () => start().catch((err) => fail(err.message)));
$("stop").addEventListener("click", stop);
