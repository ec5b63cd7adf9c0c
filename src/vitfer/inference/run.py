"""The loop behind `vitfer predict`: any source -> results printed, annotated files and a CSV/JSON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2

from vitfer.inference.backends import EXAMPLE_IMAGE
from vitfer.inference.output import ResultWriter, annotate
from vitfer.inference.predictor import FPSMeter, Predictor
from vitfer.inference.sources import source_kind


def run_prediction(source: str, model: str | Path | None = "default", detector: str = "haar",
                   detector_model: str | Path | None = None, threshold: float = 0.5, min_face: int = 24,
                   backend: str = "torch", out_dir: Path | None = Path("runs/predict"), save: Path | None = None,
                   smoothing: str = "ema", bars: bool = False, show: bool = False, max_frames: int | None = None,
                   echo: Callable[[str], None] = print) -> str:
    """Run a Predictor over a source ('example' is the bundled photo); returns a one-line summary."""
    if source == "example":
        source = str(EXAMPLE_IMAGE)
    predictor = Predictor(model, detector, backend, detector_model, threshold, min_face)
    kind = source_kind(source)
    writer = ResultWriter(save, predictor.labels) if save else None
    video_out = None
    meter = FPSMeter()
    frames = faces = 0
    no_face = (f"no face found (faces under {min_face} px are ignored: lower --min-face, or pass --no-detect "
               "if the image is already a face crop)")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for result in predictor.stream(source, smoothing=smoothing, max_frames=max_frames):
            frames += 1
            faces += len(result.faces)
            fps = meter.tick()
            if writer:
                writer.write(result)
            if kind in ("image", "folder", "glob"):
                found = ", ".join(f"{f.label} {f.confidence:.0%}" for f in result.faces) or no_face
                echo(f"{result.source}: {found}")
            elif frames % 30 == 0:
                echo(f"frame {result.frame}: {len(result.faces)} face(s), {fps:.1f} FPS")
            if out_dir is None and not show:
                continue
            drawn = annotate(result.image, result, bars)
            if kind in ("video", "webcam"):
                cv2.putText(drawn, f"{fps:.1f} FPS", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2)
            if out_dir is not None:
                if kind in ("video", "webcam"):
                    if video_out is None:
                        name = f"webcam{source}.mp4" if kind == "webcam" else Path(source).stem + "_annotated.mp4"
                        height, width = drawn.shape[:2]
                        video_out = cv2.VideoWriter(str(out_dir / name), cv2.VideoWriter_fourcc(*"mp4v"),
                                                    25.0, (width, height))
                    video_out.write(drawn)
                else:
                    cv2.imwrite(str(out_dir / (Path(result.source).stem + "_annotated.jpg")), drawn)
            if show:
                cv2.imshow("vitfer", drawn)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
    finally:
        if writer:
            writer.close()
        if video_out is not None:
            video_out.release()
    where = f"; annotated output in {out_dir}" if out_dir is not None else ""
    saved = f"; rows in {save}" if save else ""
    return f"{frames} frame(s), {faces} face(s){where}{saved}"
