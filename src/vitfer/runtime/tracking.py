"""Per-face identity across video frames and temporal smoothing of probabilities.

How ids behave: a face keeps its id while its box overlaps its last one (IoU matching, frame to frame). A face
that is lost (turned away, covered, out of frame, a cut to another shot) is remembered for ``max_gap_s`` seconds
with its appearance (a colour histogram of the face and its surroundings, and its grey-level pattern); a face that
appears anywhere in that time and looks the same gets its old id back. After the gap, or looking different, it
gets a new id. Ids are never reused for another face in one stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vitfer.runtime.detectors import FaceBox, iou
from vitfer.errors import SourceError


@dataclass
class Track:
    track_id: int
    box: FaceBox
    probabilities: np.ndarray
    history: list[np.ndarray] = field(default_factory=list)
    missed: int = 0
    last_seen: float = 0.0
    looks: np.ndarray | None = None  # appearance (see ``appearance``), averaged over the frames seen


def appearance(image: np.ndarray, box: FaceBox) -> np.ndarray:
    """A unit vector that says what a face looks like: a hue-saturation histogram of the face with a margin
    (hair, skin, collar) and its grey-level pattern at 12 x 12. Cheap, and enough to tell the faces of one video
    apart after a cut or a gap; not an identity model."""
    import cv2

    side = max(box.width, box.height)
    x1, y1 = max(box.x1 - side // 4, 0), max(box.y1 - side // 4, 0)
    crop = image[y1:box.y2 + side // 4, x1:box.x2 + side // 4]
    if crop.size == 0:
        return np.zeros(16 * 8 + 144, np.float32)
    colour = crop if crop.ndim == 3 else cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    hsv = cv2.cvtColor(colour, cv2.COLOR_BGR2HSV)
    histogram = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
    histogram /= max(np.linalg.norm(histogram), 1e-9)
    face = image[box.y1:box.y2, box.x1:box.x2]
    grey = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY) if face.ndim == 3 else face
    pattern = cv2.resize(grey, (12, 12), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    pattern -= pattern.mean()
    pattern /= max(np.linalg.norm(pattern), 1e-9)
    vector = np.concatenate([histogram, 0.7 * pattern])
    return vector / max(np.linalg.norm(vector), 1e-9)


class FaceTracker:
    """Keeps face ids across frames and smooths each face's probabilities (``ema`` or ``window``)."""

    def __init__(self, smoothing: str = "ema", alpha: float = 0.5, window: int = 5, iou_threshold: float = 0.3,
                 max_missed: int = 10, max_gap_s: float = 3.0, same_look: float = 0.8) -> None:
        if smoothing not in ("ema", "window", "none"):
            raise SourceError(f"unknown smoothing {smoothing!r}; use ema, window or none")
        self.smoothing, self.alpha, self.window = smoothing, alpha, window
        self.iou_threshold, self.max_missed = iou_threshold, max_missed
        self.max_gap_s, self.same_look = max_gap_s, same_look
        self.tracks: list[Track] = []
        self.next_id = 0

    def update(self, boxes: list[FaceBox], probabilities: np.ndarray, looks: list[np.ndarray] | None = None,
               time: float | None = None) -> list[tuple[int, np.ndarray]]:
        """Match this frame's boxes to tracks; return (track id, smoothed probabilities) per box. ``looks`` (the
        ``appearance`` of each box) and ``time`` (seconds) let a face lost for up to ``max_gap_s`` keep its id."""
        now = float(time) if time is not None else 0.0
        used_tracks: set[int] = set()
        assigned: dict[int, int] = {}
        _match(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) if t.missed <= self.max_missed
                for bi, b in enumerate(boxes)), self.iou_threshold, used_tracks, assigned)
        if looks is not None:  # faces no box overlaps: the same look as a face lost a moment ago?
            _match(((float(looks[bi] @ t.looks), ti, bi) for ti, t in enumerate(self.tracks)
                    if ti not in used_tracks and t.looks is not None for bi in range(len(boxes)) if bi not in assigned),
                   self.same_look, used_tracks, assigned)
        results = []
        for bi, (box, probs) in enumerate(zip(boxes, probabilities)):
            look = looks[bi] if looks is not None else None
            if bi in assigned:
                track = self.tracks[assigned[bi]]
                track.box, track.missed, track.last_seen = box, 0, now
                if look is not None:
                    mixed = look if track.looks is None else 0.8 * track.looks + 0.2 * look
                    track.looks = mixed / max(np.linalg.norm(mixed), 1e-9)
                if self.smoothing == "ema":
                    track.probabilities = self.alpha * probs + (1 - self.alpha) * track.probabilities
                else:
                    track.history = (track.history + [probs])[-self.window:]
                    track.probabilities = np.mean(track.history, axis=0) if self.smoothing == "window" else probs
            else:
                track = Track(self.next_id, box, probs.copy(), [probs], last_seen=now, looks=look)
                self.next_id += 1
                self.tracks.append(track)
                used_tracks.add(len(self.tracks) - 1)
            results.append((track.track_id, track.probabilities))
        for i, track in enumerate(self.tracks):
            if i not in used_tracks:
                track.missed += 1
        # a lost face is kept while it may come back: by its look for max_gap_s, else for max_missed frames
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed
                       or (t.looks is not None and time is not None and now - t.last_seen <= self.max_gap_s)]
        return results


def _match(pairs, threshold: float, used_tracks: set[int], assigned: dict[int, int]) -> None:
    """Greedy matching: the best-scored (score, track, box) pairs first, each track and box once, down to
    ``threshold``; fills ``used_tracks`` and ``assigned`` (box -> track)."""
    for score, ti, bi in sorted(pairs, reverse=True):
        if score < threshold:
            break
        if ti in used_tracks or bi in assigned:
            continue
        used_tracks.add(ti)
        assigned[bi] = ti
