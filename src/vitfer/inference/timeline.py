"""For videos: each tracked face's emotions over time (one PNG per face) and a summary table per face."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from vitfer.inference.results import FrameResult


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

    def summary(self) -> pd.DataFrame:
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
        return pd.DataFrame(rows)

    def plot(self, face_id: int, out: str | Path) -> Path:
        """The face's probability per emotion over time, stacked to 1."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from vitfer.inference.output import COLOURS
        from vitfer.runs import save_figure

        times, probs = np.array(self.times[face_id]), np.array(self.probabilities[face_id])
        fig, ax = plt.subplots(figsize=(9, 3))
        colours = [tuple(c / 255 for c in reversed(COLOURS.get(n, (128, 128, 128)))) for n in self.labels]
        ax.stackplot(times, probs.T, labels=self.labels, colors=colours, alpha=0.9)
        ax.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1), xlim=(times.min(), max(times.max(), 1e-3)),
               title=f"face {face_id}: emotions over time")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
        return save_figure(fig, out, dpi=100)

    def write(self, folder: str | Path, stem: str) -> list[Path]:
        """``<stem>_summary.csv`` and ``<stem>_face<id>_timeline.png`` per face in ``folder``; none without faces."""
        if not self.times:
            return []
        from vitfer.runs import write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [write_text(folder / f"{stem}_summary.csv", self.summary().to_csv(index=False))]
        paths += [self.plot(face_id, folder / f"{stem}_face{face_id}_timeline.png") for face_id in sorted(self.times)]
        return paths
