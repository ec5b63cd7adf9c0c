// vitfer webcam page: capture frames, send them over a WebSocket, draw the returned faces.
"use strict";
const video = document.getElementById("video");
const photo = document.getElementById("photo");
const overlay = document.getElementById("overlay");
const statusBox = document.getElementById("status");
const stats = document.getElementById("stats");
const grab = document.createElement("canvas");
let socket = null, stream = null, sentAt = 0, frames = [], running = false;

function drawFaces(result, width, height) {
  overlay.width = width; overlay.height = height;
  overlay.style.width = `${(photo.hidden ? video : photo).clientWidth}px`;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  ctx.lineWidth = 3; ctx.font = "bold 18px sans-serif";
  for (const face of result.faces || []) {
    const [x1, y1, x2, y2] = face.box;
    ctx.strokeStyle = "#3f3"; ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `${face.label} ${(100 * face.confidence).toFixed(0)}%`;
    ctx.fillStyle = "#3f3"; ctx.fillRect(x1, Math.max(0, y1 - 24), ctx.measureText(text).width + 8, 24);
    ctx.fillStyle = "#000"; ctx.fillText(text, x1 + 4, Math.max(18, y1 - 6));
  }
  statusBox.textContent = JSON.stringify(result.faces || result, null, 1).slice(0, 2000);
  document.body.dataset.faces = String((result.faces || []).length);
  document.body.dataset.labels = (result.faces || []).map(f => f.label).join(",");
}

function updateStats() {
  const now = performance.now();
  frames.push(now);
  frames = frames.filter(t => now - t < 2000);
  stats.textContent = `FPS ${(frames.length / 2).toFixed(1)} · latency ${(now - sentAt).toFixed(0)} ms`;
}

function sendFrame() {
  if (!running || socket.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  grab.width = video.videoWidth; grab.height = video.videoHeight;
  grab.getContext("2d").drawImage(video, 0, 0);
  grab.toBlob(blob => { sentAt = performance.now(); blob.arrayBuffer().then(b => socket.send(b)); },
              "image/jpeg", 0.85);
}

async function start() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (err) {
    statusBox.textContent = `camera unavailable: ${err.message}`; return;
  }
  photo.hidden = true; video.hidden = false; video.srcObject = stream;
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.onmessage = event => {
    const result = JSON.parse(event.data);
    if (result.error) statusBox.textContent = `error: ${result.error}`;
    else { drawFaces(result, video.videoWidth, video.videoHeight); updateStats(); }
    sendFrame();  // one frame in flight: the page never floods the server
  };
  socket.onopen = () => { running = true; video.onplaying = sendFrame; sendFrame(); };
  socket.onclose = () => { running = false; };
  document.getElementById("start").disabled = true;
  document.getElementById("stop").disabled = false;
}

function stop() {
  running = false;
  if (socket) socket.close();
  if (stream) stream.getTracks().forEach(t => t.stop());
  document.getElementById("start").disabled = false;
  document.getElementById("stop").disabled = true;
}

async function uploadPhoto(file) {
  stop();
  const body = new FormData();
  body.append("file", file);
  sentAt = performance.now();
  const response = await fetch("/predict", { method: "POST", body });
  const result = await response.json();
  if (!response.ok) { statusBox.textContent = `error: ${result.error}`; return; }
  photo.onload = () => { drawFaces(result, photo.naturalWidth, photo.naturalHeight); updateStats(); };
  video.hidden = true; photo.hidden = false; photo.src = URL.createObjectURL(file);
}

document.getElementById("start").onclick = start;
document.getElementById("stop").onclick = stop;
document.getElementById("file").onchange = e => e.target.files[0] && uploadPhoto(e.target.files[0]);
const drop = document.getElementById("drop");
drop.ondragover = e => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = e => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) uploadPhoto(e.dataTransfer.files[0]); };
