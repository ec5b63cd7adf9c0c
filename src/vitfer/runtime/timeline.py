"""For videos: each tracked face's emotions over time (one PNG per face) and a summary table per face."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import csv
import io

import cv2
import numpy as np

from vitfer.files import atomic_write, write_text
from vitfer.runtime.draw import COLOURS, Text, put_texts
from vitfer.runtime.results import FrameResult


class FaceTimeline:
    """Collects the smoothed probabilities of every tracked face, frame by frame."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self.times: dict[int, list[float]] = defaultdict(list)
        self.probabilities: dict[int, list[list[float]]] = defaultdict(list)

    def add(self, result: FrameResult) -> None:
        for face in result.faces:
            if face.face_id is not None:
                self.times[face.face_id].append(result.time)
                self.probabilities[face.face_id].append([face.probabilities[n] for n in self.labels])

    def summary(self) -> list[dict]:
        """One row per face: first and last time seen, duration, frames, dominant emotion, share of frames per
        emotion (the frames where it was the face's label)."""
        rows = []
        for face_id in sorted(self.times):
            times, probs = np.array(self.times[face_id]), np.array(self.probabilities[face_id])
            shares = np.bincount(probs.argmax(axis=1), minlength=len(self.labels)) / len(probs)
            row = {"face_id": face_id, "first_s": round(float(times.min()), 3), "last_s": round(float(times.max()), 3),
                   "duration_s": round(float(times.max() - times.min()), 3), "frames": len(times),
                   "dominant": self.labels[int(shares.argmax())]}
            row.update({f"share_{name}": round(float(share), 4) for name, share in zip(self.labels, shares)})
            rows.append(row)
        return rows

    def summary_csv(self) -> str:
        rows = self.summary()
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["face_id"])
        writer.writeheader()
        writer.writerows(rows)
        return text.getvalue()

    def plot(self, face_id: int, out: str | Path) -> Path:
        """The face's probability per emotion over time, stacked to 1, drawn with OpenCV (a PNG, 900 x 300)."""
        times, probs = np.array(self.times[face_id]), np.array(self.probabilities[face_id])
        width, height, left, right, top, bottom = 900, 300, 50, 110, 30, 40
        image = np.full((height, width, 3), 255, np.uint8)
        texts = [Text(left, 8, f"face {face_id}: emotions over time", (0, 0, 0), 14)]
        span = max(float(times.max() - times.min()), 1e-3)
        xs = left + (times - times.min()) / span * (width - left - right)
        if len(xs) == 1:  # one frame: a bar as wide as the plot
            xs, probs = np.array([left, width - right], float), np.repeat(probs, 2, axis=0)
        cumulative = np.concatenate([np.zeros((len(probs), 1)), np.cumsum(probs, axis=1)], axis=1)
        ys = height - bottom - cumulative * (height - top - bottom)
        for k, name in enumerate(self.labels):
            upper = np.stack([xs, ys[:, k + 1]], axis=1)
            lower = np.stack([xs, ys[:, k]], axis=1)[::-1]
            polygon = np.round(np.concatenate([upper, lower])).astype(np.int32)
            cv2.fillPoly(image, [polygon], COLOURS.get(name, (128, 128, 128)), cv2.LINE_AA)
            cv2.rectangle(image, (width - right + 12, top + 16 * k), (width - right + 24, top + 16 * k + 10),
                          COLOURS.get(name, (128, 128, 128)), -1)
            texts.append(Text(width - right + 30, top + 16 * k, name, (0, 0, 0), 12))
        cv2.rectangle(image, (left, top), (width - right, height - bottom), (0, 0, 0), 1)
        for value in (0.0, 0.5, 1.0):
            y = int(round(height - bottom - value * (height - top - bottom)))
            texts.append(Text(left - 30, y - 6, f"{value:.1f}", (0, 0, 0), 12))
        for value in np.linspace(times.min(), times.min() + span, 5):
            x = int(round(left + (value - times.min()) / span * (width - left - right)))
            texts.append(Text(x - 12, height - bottom + 8, f"{value:.1f} s", (0, 0, 0), 12))
        put_texts(image, texts)
        out = Path(out)
        _, encoded = cv2.imencode(".png", image)
        with atomic_write(out) as partial:
            partial.write_bytes(encoded.tobytes())
        return out

    def write(self, folder: str | Path, stem: str) -> list[Path]:
        """``<stem>_summary.csv`` and ``<stem>_face<id>_timeline.png`` per face in ``folder``; none without faces."""
        if not self.times:
            return []
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [write_text(folder / f"{stem}_summary.csv", self.summary_csv())]
        paths += [self.plot(face_id, folder / f"{stem}_face{face_id}_timeline.png") for face_id in sorted(self.times)]
        return paths
