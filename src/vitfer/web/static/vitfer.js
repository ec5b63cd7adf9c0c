// vitfer in the browser: detection (YuNet) -> square crop -> the input contract -> classification -> smoothing,
// all in this page with ONNX Runtime Web. No frame, photo or result leaves the page.
"use strict";

const vitfer = (() => {
  let detector = null, classifier = null, card = null;

  // --- the models ------------------------------------------------------------------------------------------
  async function load(base = ".") {
    card = await (await fetch(`${base}/model.json`)).json();
    ort.env.wasm.wasmPaths = new URL(`${base}/ort/`, document.baseURI).href;  // relative to the page, not ort.js
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    const options = { executionProviders: ["wasm"] };
    [detector, classifier] = await Promise.all([
      ort.InferenceSession.create(`${base}/yunet.onnx`, options),
      ort.InferenceSession.create(`${base}/model.onnx`, options)]);
    return card;
  }

  // --- detection: YuNet on the whole frame at the size it was made for (as vitfer.runtime.FrameSearch) -------
  function detect(canvas) {
    const { width: W, height: H } = canvas;
    const settings = card.detector;
    const scale = Math.min(1, settings.whole_side / Math.max(W, H));
    const sw = Math.max(1, Math.round(W * scale)), sh = Math.max(1, Math.round(H * scale));
    const small = document.createElement("canvas");
    small.width = sw; small.height = sh;
    const sctx = small.getContext("2d", { willReadFrequently: true });
    sctx.imageSmoothingQuality = "high";
    sctx.drawImage(canvas, 0, 0, sw, sh);
    const rgba = sctx.getImageData(0, 0, sw, sh).data;
    const pw = Math.floor((sw - 1) / 32 + 1) * 32, ph = Math.floor((sh - 1) / 32 + 1) * 32;
    const input = new Float32Array(3 * pw * ph);  // BGR planes, 0-255, zero padding right and below
    for (let y = 0; y < sh; y++) {
      for (let x = 0; x < sw; x++) {
        const i = 4 * (y * sw + x), o = y * pw + x;
        input[o] = rgba[i + 2]; input[pw * ph + o] = rgba[i + 1]; input[2 * pw * ph + o] = rgba[i];
      }
    }
    return detector.run({ input: new ort.Tensor("float32", input, [1, 3, ph, pw]) }).then(out => {
      const boxes = [];
      for (const stride of [8, 16, 32]) {
        const cols = pw / stride;
        const cls = out[`cls_${stride}`].data, obj = out[`obj_${stride}`].data, box = out[`bbox_${stride}`].data;
        for (let i = 0; i < cls.length; i++) {
          const score = Math.sqrt(Math.min(Math.max(cls[i], 0), 1) * Math.min(Math.max(obj[i], 0), 1));
          if (score < settings.threshold) continue;
          const r = Math.floor(i / cols), c = i % cols;
          const cx = (c + box[4 * i]) * stride, cy = (r + box[4 * i + 1]) * stride;
          const w = Math.exp(box[4 * i + 2]) * stride, h = Math.exp(box[4 * i + 3]) * stride;
          boxes.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score });
        }
      }
      return nms(boxes, 0.3).map(b => ({  // frame pixels, inside the frame, integers as vitfer's FaceBox
        x1: Math.trunc(Math.max(b.x1, 0) / scale), y1: Math.trunc(Math.max(b.y1, 0) / scale),
        x2: Math.trunc(Math.min(b.x2, sw) / scale), y2: Math.trunc(Math.min(b.y2, sh) / scale), score: b.score }))
        .filter(b => Math.min(b.x2 - b.x1, b.y2 - b.y1) >= settings.min_face);
    });
  }

  function iou(a, b) {
    const w = Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1));
    const h = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));
    const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - w * h;
    return union > 0 ? (w * h) / union : 0;
  }

  function nms(boxes, threshold) {
    const kept = [];
    for (const box of boxes.sort((a, b) => b.score - a.score)) {
      if (kept.every(other => iou(box, other) <= threshold)) kept.push(box);
    }
    return kept;
  }

  // --- the input contract (vitfer.preprocess): square crop with a margin -> grey -> decode size, area ------
  function squareBox(box, W, H, margin) {  // vitfer.runtime.crop.square_box
    const side = Math.max(Math.round(Math.max(box.x2 - box.x1, box.y2 - box.y1) * (1 + margin)), 1);
    const cx = (box.x1 + box.x2) / 2, cy = (box.y1 + box.y2) / 2;
    let x1 = Math.round(cx - side / 2), y1 = Math.round(cy - side / 2);
    x1 = Math.min(Math.max(x1, 0), Math.max(W - side, 0));
    y1 = Math.min(Math.max(y1, 0), Math.max(H - side, 0));
    return [x1, y1, Math.min(x1 + side, W), Math.min(y1 + side, H)];
  }

  function grey(rgba, count) {  // OpenCV's BGR2GRAY in fixed point: the same integers Python gets
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = (rgba[4 * i] * 4899 + rgba[4 * i + 1] * 9617 + rgba[4 * i + 2] * 1868 + 8192) >> 14;
    }
    return out;
  }

  function areaWeights(source, target) {  // OpenCV's INTER_AREA: each output pixel averages the input it covers
    const scale = source / target, rows = [];
    for (let j = 0; j < target; j++) {
      const start = j * scale, end = (j + 1) * scale, taps = [];
      for (let i = Math.floor(start); i < Math.min(Math.ceil(end), source); i++) {
        const cover = Math.min(end, i + 1) - Math.max(start, i);
        if (cover > 1e-9) taps.push([i, cover / scale]);
      }
      rows.push(taps);
    }
    return rows;
  }

  function linearWeights(source, target) {  // OpenCV's INTER_LINEAR (half-pixel centres) for growing
    const scale = source / target, rows = [];
    for (let j = 0; j < target; j++) {
      let x = (j + 0.5) * scale - 0.5;
      const i0 = Math.floor(x), f = x - i0;
      const a = Math.min(Math.max(i0, 0), source - 1), b = Math.min(Math.max(i0 + 1, 0), source - 1);
      rows.push([[a, 1 - f], [b, f]]);
    }
    return rows;
  }

  function resize(pixels, width, height, size) {  // vitfer.preprocess.resize_face
    if (width === size && height === size) return pixels;
    const shrink = Math.max(width, height) > size;
    const wx = shrink ? areaWeights(width, size) : linearWeights(width, size);
    const wy = shrink ? areaWeights(height, size) : linearWeights(height, size);
    const rows = new Float64Array(height * size);
    for (let y = 0; y < height; y++) {
      for (let j = 0; j < size; j++) {
        let sum = 0;
        for (const [i, w] of wx[j]) sum += pixels[y * width + i] * w;
        rows[y * size + j] = sum;
      }
    }
    const out = new Uint8Array(size * size);
    for (let k = 0; k < size; k++) {
      for (let j = 0; j < size; j++) {
        let sum = 0;
        for (const [i, w] of wy[k]) sum += rows[i * size + j] * w;
        out[k * size + j] = Math.min(255, Math.max(0, Math.round(sum)));
      }
    }
    return out;
  }

  function decodeFaces(canvas, boxes) {
    const p = card.preprocess, d = p.decode_size;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const input = new Uint8Array(boxes.length * d * d);
    boxes.forEach((box, n) => {
      const [x1, y1, x2, y2] = squareBox(box, canvas.width, canvas.height, p.crop_margin);
      const w = Math.max(x2 - x1, 1), h = Math.max(y2 - y1, 1);
      const face = grey(ctx.getImageData(x1, y1, w, h).data, w * h);
      input.set(resize(face, w, h, d), n * d * d);
    });
    return new ort.Tensor("uint8", input, [boxes.length, 1, d, d]);
  }

  function softmax(logits) {
    const top = Math.max(...logits), exp = logits.map(v => Math.exp(v - top)), sum = exp.reduce((a, b) => a + b);
    return exp.map(v => v / sum);
  }

  // --- one frame: faces with labels ------------------------------------------------------------------------
  async function predict(canvas) {
    const boxes = await detect(canvas);
    if (!boxes.length) return [];
    const out = await classifier.run({ [classifier.inputNames[0]]: decodeFaces(canvas, boxes) });
    const logits = out[classifier.outputNames[0]].data, n = card.labels.length;
    return boxes.map((box, i) => {
      const probs = softmax(Array.from(logits.slice(i * n, (i + 1) * n)));
      const best = probs.indexOf(Math.max(...probs));
      return { box: [box.x1, box.y1, box.x2, box.y2], detection_score: box.score, label: card.labels[best],
               confidence: probs[best], probabilities: Object.fromEntries(card.labels.map((l, k) => [l, probs[k]])),
               face_id: null };
    });
  }

  // --- live: ids and smoothing across frames (vitfer.runtime.tracking, IoU part) ---------------------------
  function tracker(alpha = 0.5, maxMissed = 10) {
    let tracks = [], nextId = 0;
    return faces => {
      const free = new Set(tracks.keys()), out = [];
      for (const face of faces) {
        const box = { x1: face.box[0], y1: face.box[1], x2: face.box[2], y2: face.box[3] };
        let best = -1, overlap = 0.3;
        for (const t of free) { const o = iou(tracks[t].box, box); if (o >= overlap) { overlap = o; best = t; } }
        const probs = card.labels.map(l => face.probabilities[l]);
        let track;
        if (best >= 0) {
          free.delete(best); track = tracks[best];
          track.probs = track.probs.map((p, k) => alpha * probs[k] + (1 - alpha) * p);
          track.box = box; track.missed = 0;
        } else {
          track = { id: nextId++, box, probs, missed: 0 }; tracks.push(track);
        }
        const top = track.probs.indexOf(Math.max(...track.probs));
        out.push({ ...face, face_id: track.id, label: card.labels[top], confidence: track.probs[top],
                   probabilities: Object.fromEntries(card.labels.map((l, k) => [l, track.probs[k]])) });
      }
      for (const t of free) tracks[t].missed += 1;
      tracks = tracks.filter(t => t.missed <= maxMissed);
      return out;
    };
  }

  // For tests and other pages: the faces of an image at a URL (this folder's own files).
  async function predictUrl(url) {
    const image = new Image();
    image.src = url;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
    canvas.getContext("2d").drawImage(image, 0, 0);
    return predict(canvas);
  }

  return { load, detect, predict, predictUrl, tracker, card: () => card };
})();
