"""Boxes, labels and probability bars drawn on a frame.

Shapes are drawn with OpenCV; text with Pillow's built-in TrueType font (Aileron, which ships inside Pillow,
public domain), sized to the frame: OpenCV's Hershey fonts have no '%' or '#' ("happy 90% #0" read
"happy 90X $0") and do not scale legibly from a 320-px thumbnail to a 4000-px photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (40, 200, 240),
           "sad": (200, 120, 40), "surprise": (0, 160, 255), "neutral": (200, 200, 200), "contempt": (120, 80, 40),
           "uncertain": (150, 150, 150)}
BLACK, WHITE = (0, 0, 0), (255, 255, 255)


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in TrueType font at ``size`` px."""
    return ImageFont.load_default(size=size)


def text_size(image: np.ndarray) -> int:
    """Label text height for a frame: 3 % of its shorter side, 11 px at least (legible on a 320-px thumbnail)."""
    return int(np.clip(round(0.03 * min(image.shape[:2])), 11, 200))


@dataclass
class Text:
    """A line of text to draw: top-left corner, BGR colour, height in px."""

    x: int
    y: int
    text: str
    colour: tuple[int, int, int]
    size: int


def text_box(text: str, size: int) -> tuple[int, int]:
    """Width and height in px of ``text`` at ``size``."""
    left, top, right, bottom = font(size).getbbox(text)
    return right - left, bottom - top


def put_texts(image: np.ndarray, texts: list[Text]) -> np.ndarray:
    """Draw every text on the BGR ``image`` (in place, and returned) in one Pillow pass."""
    if not texts:
        return image
    canvas = Image.fromarray(np.ascontiguousarray(image[..., ::-1]))
    draw = ImageDraw.Draw(canvas)
    for item in texts:
        left, top, _, _ = font(item.size).getbbox(item.text)
        draw.text((item.x - left, item.y - top), item.text, fill=item.colour[::-1], font=font(item.size))
    image[...] = np.asarray(canvas)[..., ::-1]
    return image


def face_tag(face) -> str:
    """"happy 90% #3": the label, its confidence, the tracked face's id."""
    return f"{face.label} {face.confidence:.0%}" + (f" #{face.face_id}" if face.face_id is not None else "")


def annotate(image: np.ndarray, faces: list, bars: bool = False) -> np.ndarray:
    """A copy of the frame with a box, label and confidence per face (and probability bars if asked)."""
    out = image.copy()
    size = text_size(out)
    thickness = max(1, size // 8)
    pad = max(2, size // 5)
    texts: list[Text] = []
    for face in faces:
        x1, y1, x2, y2 = face.box
        colour = COLOURS.get(face.label, (0, 255, 0))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        tag = face_tag(face)
        width, height = text_box(tag, size)
        top = y1 - height - 2 * pad if y1 - height - 2 * pad >= 0 else y2  # above the box, else below it
        top = min(max(top, 0), max(out.shape[0] - height - 2 * pad, 0))
        left = min(max(x1, 0), max(out.shape[1] - width - 2 * pad, 0))
        cv2.rectangle(out, (left, top), (left + width + 2 * pad, top + height + 2 * pad), colour, -1)
        texts.append(Text(left + pad, top + pad, tag, BLACK, size))
        if bars:
            texts += draw_bars(out, face, size)
    return put_texts(out, texts)


def draw_bars(out: np.ndarray, face, size: int) -> list[Text]:
    """Probability bars on a dark panel beside the face: to its right where the frame has room, else to its
    left, else below; white text on the panel reads on any background. Returns the panel's texts to draw."""
    x1, y1, x2, y2 = face.box
    text = max(10, int(size * 0.8))
    row = int(text * 1.45)
    names_width = max(text_box(name, text)[0] for name in face.probabilities) + text // 2
    width = names_width + 5 * text
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
    texts = []
    for i, (name, p) in enumerate(face.probabilities.items()):
        y = top + 2 + i * row
        bar_left = left + names_width
        cv2.rectangle(out, (bar_left, y + 2), (bar_left + int(p * (width - names_width - 4)), y + row - 2),
                      COLOURS.get(name, (0, 255, 0)), -1)
        texts.append(Text(left + 3, y + (row - text) // 2, name, WHITE, text))
    return texts
