"""Boxes, labels and probability bars drawn on a frame."""

from __future__ import annotations

import cv2
import numpy as np

COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (40, 200, 240),
           "sad": (200, 120, 40), "surprise": (0, 160, 255), "neutral": (200, 200, 200), "contempt": (120, 80, 40)}


def annotate(image: np.ndarray, faces: list, bars: bool = False) -> np.ndarray:
    """A copy of the frame with a box, label and confidence per face (and probability bars if asked)."""
    out = image.copy()
    scale = max(out.shape[0], out.shape[1]) / 800
    thickness = max(1, int(round(2 * scale)))
    for face in faces:
        x1, y1, x2, y2 = face.box
        colour = COLOURS.get(face.label, (0, 255, 0))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        tag = f"{face.label} {face.confidence:.0%}" + (f" #{face.face_id}" if face.face_id is not None else "")
        font = 0.5 * max(scale, 0.6)
        (tw, th), _ = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, font, thickness)
        top = max(y1 - th - 6, 0)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + 6), colour, -1)
        cv2.putText(out, tag, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thickness,
                    cv2.LINE_AA)
        if bars:
            draw_bars(out, face, scale)
    return out


def draw_bars(out: np.ndarray, face, scale: float) -> None:
    """Probability bars on a dark panel beside the face: to its right where the frame has room, else to its
    left, else below; white text on the panel reads on any background."""
    x1, y1, x2, y2 = face.box
    row = max(12, int(round(14 * scale)))
    width = max(110, int(round(130 * scale)))
    height = row * len(face.probabilities) + 4
    frame_h, frame_w = out.shape[:2]
    if x2 + 4 + width <= frame_w:
        left, top = x2 + 4, y1
    elif x1 - 4 - width >= 0:
        left, top = x1 - 4 - width, y1
    else:
        left, top = x1, y2 + 4
    left, top = max(0, min(left, frame_w - width)), max(0, min(top, frame_h - height))
    panel = out[top:top + height, left:left + width]
    panel[:] = (panel * 0.25).astype(out.dtype)  # darken what lies under the panel
    font = 0.38 * max(scale, 0.8)
    for i, (name, p) in enumerate(face.probabilities.items()):
        y = top + 2 + i * row
        bar_left = left + int(width * 0.45)
        cv2.rectangle(out, (bar_left, y + 2), (bar_left + int(p * (width * 0.53)), y + row - 2),
                      COLOURS.get(name, (0, 255, 0)), -1)
        cv2.putText(out, name, (left + 3, y + row - 3), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 1,
                    cv2.LINE_AA)
