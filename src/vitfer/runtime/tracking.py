"""Per-face identity across video frames (greedy IoU matching) and temporal smoothing of probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vitfer.runtime.detectors import FaceBox
from vitfer.errors import SourceError


def iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    track_id: int
    box: FaceBox
    probabilities: np.ndarray
    history: list[np.ndarray] = field(default_factory=list)
    missed: int = 0


class FaceTracker:
    """Keeps face ids across frames and smooths each face's probabilities (``ema`` or ``window``)."""

    def __init__(self, smoothing: str = "ema", alpha: float = 0.5, window: int = 5, iou_threshold: float = 0.3,
                 max_missed: int = 10) -> None:
        if smoothing not in ("ema", "window", "none"):
            raise SourceError(f"unknown smoothing {smoothing!r}; use ema, window or none")
        self.smoothing, self.alpha, self.window = smoothing, alpha, window
        self.iou_threshold, self.max_missed = iou_threshold, max_missed
        self.tracks: list[Track] = []
        self.next_id = 0

    def update(self, boxes: list[FaceBox], probabilities: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Match this frame's boxes to tracks; return (track id, smoothed probabilities) per box."""
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)),
                       reverse=True)
        used_tracks, assigned = set(), {}
        for overlap, ti, bi in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in used_tracks or bi in assigned:
                continue
            used_tracks.add(ti)
            assigned[bi] = ti
        results = []
        for bi, (box, probs) in enumerate(zip(boxes, probabilities)):
            if bi in assigned:
                track = self.tracks[assigned[bi]]
                track.box, track.missed = box, 0
                if self.smoothing == "ema":
                    track.probabilities = self.alpha * probs + (1 - self.alpha) * track.probabilities
                else:
                    track.history = (track.history + [probs])[-self.window:]
                    track.probabilities = np.mean(track.history, axis=0) if self.smoothing == "window" else probs
            else:
                track = Track(self.next_id, box, probs.copy(), [probs])
                self.next_id += 1
                self.tracks.append(track)
                used_tracks.add(len(self.tracks) - 1)
            results.append((track.track_id, track.probabilities))
        for i, track in enumerate(self.tracks):
            if i not in used_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return results
