// The page around vitfer.js: camera or photo in, boxes, labels, the face list and the frame rate out.
"use strict";
const $ = id => document.getElementById(id);
const video = $("video"), picture = $("picture"), overlay = $("overlay"), statusBox = $("status");
let stream = null, running = false, track = null, times = [];

function faceNumber(face, i) { return face.face_id === null ? i + 1 : face.face_id + 1; }

function show(faces, element, width, height) {
  const scale = Math.min(element.clientWidth / width, element.clientHeight / height);
  Object.assign(overlay.style, { left: `${element.offsetLeft}px`, top: `${element.offsetTop}px`,
                                 width: `${width * scale}px`, height: `${height * scale}px` });
  overlay.width = width; overlay.height = height;
  const ctx = overlay.getContext("2d"), px = 1 / scale;
  ctx.clearRect(0, 0, width, height);
  ctx.lineWidth = 3 * px; ctx.font = `bold ${16 * px}px sans-serif`;
  faces.forEach((face, i) => {
    const [x1, y1, x2, y2] = face.box;
    ctx.strokeStyle = "#3f3"; ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `#${faceNumber(face, i)} ${face.label} ${(100 * face.confidence).toFixed(0)}%`;
    const tag = 22 * px, top = y1 >= tag ? y1 - tag : y1, tagWidth = ctx.measureText(text).width + 8 * px;
    const left = Math.max(0, Math.min(x1, width - tagWidth));
    ctx.fillStyle = "#3f3"; ctx.fillRect(left, top, tagWidth, tag);
    ctx.fillStyle = "#000"; ctx.fillText(text, left + 4 * px, top + tag - 6 * px);
  });
  $("faces").replaceChildren(...faces.map((face, i) => {
    const item = document.createElement("li");
    const others = Object.entries(face.probabilities).filter(([name]) => name !== face.label)
      .sort((a, b) => b[1] - a[1]).slice(0, 2).map(([name, p]) => `${name} ${(100 * p).toFixed(0)}%`).join(", ");
    item.textContent = `face #${faceNumber(face, i)}: `;
    const label = document.createElement("span");
    label.className = "label"; label.textContent = `${face.label} ${(100 * face.confidence).toFixed(0)}%`;
    const rest = document.createElement("span");
    rest.className = "others"; rest.textContent = ` (then ${others})`;
    item.append(label, rest);
    return item;
  }));
  statusBox.textContent = faces.length ? "" : "no face found";
  document.body.dataset.faces = String(faces.length);
  document.body.dataset.result = JSON.stringify(faces);
}

function tick(started) {
  const now = performance.now();
  times = [...times.filter(t => now - t < 2000), now];
  const ms = (now - started).toFixed(0);
  $("stats").textContent = times.length > 1 ? `FPS ${(times.length / 2).toFixed(1)} · ${ms} ms a frame` : `${ms} ms`;
}

async function loop() {
  if (!running) return;
  if (video.videoWidth) {
    const started = performance.now();
    picture.width = video.videoWidth; picture.height = video.videoHeight;
    picture.getContext("2d").drawImage(video, 0, 0);
    const faces = track(await vitfer.predict(picture));
    if (running) { show(faces, video, video.videoWidth, video.videoHeight); tick(started); }
  }
  requestAnimationFrame(loop);
}

async function start() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (err) { statusBox.textContent = `camera unavailable: ${err.message}`; return; }
  picture.hidden = true; $("placeholder").hidden = true; video.hidden = false; video.srcObject = stream;
  track = vitfer.tracker(); times = []; running = true;
  $("start").disabled = true; $("stop").disabled = false;
  video.onplaying = () => loop();
}

function stop() {
  running = false;
  if (stream) stream.getTracks().forEach(t => t.stop());
  stream = null;
  video.hidden = true; $("placeholder").hidden = false;
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  $("faces").replaceChildren(); document.body.dataset.faces = "0";
  $("start").disabled = false; $("stop").disabled = true;
}

async function openPhoto(file) {
  if (running) stop();
  const image = new Image();
  image.src = URL.createObjectURL(file);
  try { await image.decode(); } catch {
    picture.hidden = true; $("placeholder").hidden = false;
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    $("faces").replaceChildren(); document.body.dataset.faces = "0";
    statusBox.textContent = `error: ${file.name} is not an image this browser can read`; return;
  }
  picture.width = image.naturalWidth; picture.height = image.naturalHeight;
  picture.getContext("2d").drawImage(image, 0, 0);
  video.hidden = true; $("placeholder").hidden = true; picture.hidden = false;
  const started = performance.now();
  show(await vitfer.predict(picture), picture, picture.width, picture.height);
  $("stats").textContent = `${(performance.now() - started).toFixed(0)} ms`;
}

vitfer.load(".").then(card => {
  $("placeholder").textContent = "Start the camera or choose a photo.";
  $("start").disabled = false; $("file").disabled = false;
  document.body.dataset.ready = card.name;
}, err => { statusBox.textContent = `could not load the models: ${err.message}`; });
$("start").onclick = start;
$("stop").onclick = stop;
$("file").onchange = e => e.target.files[0] && openPhoto(e.target.files[0]);
const drop = $("drop");
drop.ondragover = e => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = e => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) openPhoto(e.dataTransfer.files[0]); };
