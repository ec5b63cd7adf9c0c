// vitfer webcam page: capture frames, send them over a WebSocket, draw the returned faces over the picture.
"use strict";
const video = document.getElementById("video");
const photo = document.getElementById("photo");
const overlay = document.getElementById("overlay");
const placeholder = document.getElementById("placeholder");
const statusBox = document.getElementById("status");
const faceList = document.getElementById("faces");
const stats = document.getElementById("stats");
const grab = document.createElement("canvas");
let socket = null, stream = null, sentAt = 0, frames = [], running = false, last = null;
let local = false, localTrack = null;  // "run in this browser": vitfer.js and ONNX Runtime Web, no frame sent
const inBrowser = document.getElementById("inbrowser"), modeNote = document.getElementById("mode");

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src; script.onload = resolve; script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.appendChild(script);
  });
}

// The in-browser engine, where this browser and this server offer it; the switch starts on when they do.
async function offerInBrowser() {
  try {
    if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
    await loadScript("/browser/ort/ort.wasm.min.js");
    await loadScript("/browser/vitfer.js");
    await vitfer.load("/browser");
    inBrowser.disabled = false; inBrowser.checked = true; local = true;
    modeNote.textContent = "";
  } catch (err) {
    inBrowser.checked = false; local = false;
    modeNote.textContent = `(not available here: ${err.message}; frames go to this server)`;
  }
  document.body.dataset.mode = local ? "browser" : "server";
}

inBrowser.onchange = () => {
  stop();
  local = inBrowser.checked;
  document.body.dataset.mode = local ? "browser" : "server";
};

async function localLoop() {
  if (!running || !local) return;
  if (video.videoWidth) {
    sentAt = performance.now();
    grab.width = video.videoWidth; grab.height = video.videoHeight;
    grab.getContext("2d").drawImage(video, 0, 0);
    const faces = localTrack(await vitfer.predict(grab));
    if (running) { showFaces({ faces }, video.videoWidth, video.videoHeight); updateStats(true); }
  }
  requestAnimationFrame(localLoop);
}

// Where the picture's pixels are shown inside the stage: media elements keep their aspect ratio (a video is
// letterboxed inside its box), so the overlay is sized and placed on the picture itself, not on the element.
function pictureRect(element, width, height) {
  const scale = Math.min(element.clientWidth / width, element.clientHeight / height);
  const shown = { width: width * scale, height: height * scale };
  return { left: element.offsetLeft + (element.clientWidth - shown.width) / 2,
           top: element.offsetTop + (element.clientHeight - shown.height) / 2, ...shown };
}

function showFaces(result, width, height) {
  last = { result, width, height };
  const element = photo.hidden ? video : photo;
  const rect = pictureRect(element, width, height);
  Object.assign(overlay.style, { left: `${rect.left}px`, top: `${rect.top}px`,
                                 width: `${rect.width}px`, height: `${rect.height}px` });
  overlay.width = width; overlay.height = height;  // drawn in picture pixels, shown at the picture's size
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const px = width / rect.width;  // picture pixels per screen pixel: lines and text keep their screen size
  ctx.lineWidth = 3 * px; ctx.font = `bold ${16 * px}px sans-serif`;
  const boxes = [];
  result.faces.forEach((face, i) => {
    const [x1, y1, x2, y2] = face.box;
    ctx.strokeStyle = "#3f3"; ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `#${faceNumber(face, i)} ${face.label} ${(100 * face.confidence).toFixed(0)}%`;
    const tag = 22 * px, top = y1 >= tag ? y1 - tag : y1;  // above the box, or inside it at the top edge
    const tagWidth = ctx.measureText(text).width + 8 * px;
    const left = Math.max(0, Math.min(x1, width - tagWidth));  // the whole tag inside the picture, phones too
    ctx.fillStyle = "#3f3"; ctx.fillRect(left, top, tagWidth, tag);
    ctx.fillStyle = "#000"; ctx.fillText(text, left + 4 * px, top + tag - 6 * px);
    boxes.push([x1, y1, x2, y2].map((v, k) => Math.round(k % 2 ? rect.top + v / px : rect.left + v / px)));
  });
  listFaces(result.faces);
  document.body.dataset.faces = String(result.faces.length);
  document.body.dataset.labels = result.faces.map(f => f.label).join(",");
  document.body.dataset.boxes = JSON.stringify(boxes);  // in page pixels of the stage, for tests
}

// A face's number: its tracked id in live mode (it stays with the face), its place in the list for a photo.
function faceNumber(face, i) {
  return face.face_id === null || face.face_id === undefined ? i + 1 : face.face_id + 1;
}

function listFaces(faces) {
  faceList.replaceChildren(...faces.map((face, i) => {
    const item = document.createElement("li");
    const others = Object.entries(face.probabilities).filter(([name]) => name !== face.label)
      .sort((a, b) => b[1] - a[1]).slice(0, 2).map(([name, p]) => `${name} ${(100 * p).toFixed(0)}%`).join(", ");
    item.innerHTML = `face #${faceNumber(face, i)}: <span class="label"></span> <span class="others"></span>`;
    item.querySelector(".label").textContent = `${face.label} ${(100 * face.confidence).toFixed(0)}%`;
    item.querySelector(".others").textContent = `(then ${others})`;
    return item;
  }));
  statusBox.textContent = faces.length ? "" : "no face found";
}

function clearFaces() {
  last = null;
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  faceList.replaceChildren();
  statusBox.textContent = "";
  stats.textContent = "";
  document.body.dataset.faces = "0";
}

function updateStats(live) {
  const now = performance.now(), latency = `latency ${(now - sentAt).toFixed(0)} ms`;
  if (!live) { stats.textContent = latency; return; }  // one photo has a latency, not a frame rate
  frames.push(now);
  frames = frames.filter(t => now - t < 2000);
  stats.textContent = frames.length > 1 ? `FPS ${(frames.length / 2).toFixed(1)} · ${latency}` : latency;
}

function sendFrame() {
  if (!running || socket.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  grab.width = video.videoWidth; grab.height = video.videoHeight;
  grab.getContext("2d").drawImage(video, 0, 0);
  grab.toBlob(blob => { sentAt = performance.now(); blob.arrayBuffer().then(b => socket.send(b)); },
              "image/jpeg", 0.85);
}

async function start() {
  clearFaces();
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (err) {
    statusBox.textContent = `camera unavailable: ${err.message}`; return;
  }
  photo.hidden = true; placeholder.hidden = true; video.hidden = false; video.srcObject = stream;
  frames = [];
  document.getElementById("start").disabled = true;
  document.getElementById("stop").disabled = false;
  if (local) {  // nothing leaves the page: frames are classified here
    localTrack = vitfer.tracker(); running = true;
    video.onplaying = localLoop;
    return;
  }
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.onmessage = event => {
    const result = JSON.parse(event.data);
    if (result.error) statusBox.textContent = `error: ${result.error}`;
    else if (running) { showFaces(result, video.videoWidth, video.videoHeight); updateStats(true); }
    sendFrame();  // one frame in flight: the page never floods the server
  };
  socket.onopen = () => { running = true; video.onplaying = sendFrame; sendFrame(); };
  socket.onclose = () => { running = false; };
}

function stop() {
  running = false;
  if (socket) socket.close();
  if (stream) stream.getTracks().forEach(t => t.stop());
  stream = null;
  if (!video.hidden) { video.hidden = true; placeholder.hidden = false; clearFaces(); }
  document.getElementById("start").disabled = false;
  document.getElementById("stop").disabled = true;
}

async function uploadPhoto(file) {
  stop();
  clearFaces();
  sentAt = performance.now();
  let response, result;
  if (local) {  // the photo stays in this page
    [response, result] = await classifyHere(file);
  } else {
    const body = new FormData();
    body.append("file", file);
    try {
      response = await fetch("/predict", { method: "POST", body });
      result = await response.json();
    } catch (err) {
      response = { ok: false }; result = { error: `the server did not answer (${err.message})` };
    }
  }
  if (!response.ok) {  // nothing of an earlier photo stays on the page beside this error
    photo.hidden = true; photo.removeAttribute("src"); video.hidden = true; placeholder.hidden = false;
    statusBox.textContent = `error: ${result.error}`;
    return;
  }
  updateStats(false);
  photo.onload = () => showFaces(result, result.width, result.height);
  placeholder.hidden = true; video.hidden = true; photo.hidden = false; photo.src = URL.createObjectURL(file);
}

async function classifyHere(file) {
  const image = new Image();
  image.src = URL.createObjectURL(file);
  try { await image.decode(); } catch {
    return [{ ok: false }, { error: `${file.name} is not an image this browser can read` }];
  }
  grab.width = image.naturalWidth; grab.height = image.naturalHeight;
  grab.getContext("2d").drawImage(image, 0, 0);
  const faces = await vitfer.predict(grab);
  return [{ ok: true }, { faces, width: grab.width, height: grab.height }];
}

offerInBrowser();
window.addEventListener("resize", () => last && showFaces(last.result, last.width, last.height));
document.getElementById("start").onclick = start;
document.getElementById("stop").onclick = stop;
document.getElementById("file").onchange = e => e.target.files[0] && uploadPhoto(e.target.files[0]);
const drop = document.getElementById("drop");
drop.ondragover = e => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = e => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) uploadPhoto(e.dataTransfer.files[0]); };
