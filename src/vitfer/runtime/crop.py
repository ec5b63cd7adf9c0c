"""Square face crops with a margin, kept inside the frame."""

from __future__ import annotations

import numpy as np

from vitfer.runtime.detectors import DEFAULT_DETECTOR, FaceBox, create_search


def square_box(box: FaceBox, image_width: int, image_height: int, margin: float = 0.2) -> tuple[int, int, int, int]:
    """A square around the box's centre, side = longest box side x (1 + margin), shifted to fit the frame,
    and clipped only where it is larger than the frame."""
    side = int(round(max(box.width, box.height) * (1 + margin)))
    side = max(side, 1)
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1 = min(max(x1, 0), max(image_width - side, 0))
    y1 = min(max(y1, 0), max(image_height - side, 0))
    return x1, y1, min(x1 + side, image_width), min(y1 + side, image_height)


def crop_face(image: np.ndarray, box: FaceBox, margin: float = 0.2) -> np.ndarray:
    """The square crop of one face (a view into ``image``)."""
    x1, y1, x2, y2 = square_box(box, image.shape[1], image.shape[0], margin)
    return image[y1:y2, x1:x2]


class LargestFace:
    """The largest face of a photo, found and cropped as ``predict`` finds and crops faces (the same detector
    search, margin and square), for data sets of whole photos. Not thread-safe (OpenCV detectors keep state)."""

    def __init__(self, detector: str = DEFAULT_DETECTOR, margin: float = 0.2,
                 detector_model: str | None = None) -> None:
        self.search = create_search(detector, detector_model)
        self.margin = margin

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray | None:
        """The square crop of the largest face, or None when the photo shows none."""
        boxes = self.search.detect(image_bgr, small_faces=True)
        if not boxes:
            return None
        return crop_face(image_bgr, max(boxes, key=lambda b: b.width * b.height), self.margin)
