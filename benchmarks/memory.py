"""Peak memory of `vitfer predict` on a long 720p video: it must not grow with the video's length.

    python benchmarks/memory.py [--minutes 2 10] [--fps 10]

Writes a 1280x720 video of each length (the example face moving over a grey frame), runs
`vitfer predict VIDEO --save rows.csv` (default model, detector and backend; annotated video written too) in a
fresh process, and reports its peak RSS (the kernel's VmHWM) and the frames per second it kept.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from vitfer.shipped import EXAMPLE_IMAGE


def make_video(path: Path, minutes: float, fps: int) -> int:
    photo = cv2.resize(cv2.imread(str(EXAMPLE_IMAGE)), (360, 360))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (1280, 720))
    frames = int(minutes * 60 * fps)
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    for i in range(frames):
        canvas[:] = 90
        x = 40 + (i * 3) % 860
        canvas[180:540, x:x + 360] = photo
        writer.write(canvas)
    writer.release()
    return frames


def peak_rss_of(command: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of a command, sampled from /proc while it runs."""
    start = time.perf_counter()
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the command
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True)
    peak = 0
    while process.poll() is None:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            break
        time.sleep(0.5)
    if process.returncode:
        log.seek(0)
        raise SystemExit(f"{' '.join(command)} failed: {log.read()[-1000:]}")
    return time.perf_counter() - start, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[2, 10])
    parser.add_argument("--fps", type=int, default=10)
    args = parser.parse_args()
    print(f"1280x720 video at {args.fps} fps; `vitfer predict VIDEO --save rows.csv` with its defaults\n")
    print("| video minutes | frames | seconds | FPS kept | peak RSS (MiB) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            video = Path(tmp) / f"clip{minutes:g}.avi"
            frames = make_video(video, minutes, args.fps)
            seconds, peak = peak_rss_of(["vitfer", "predict", str(video), "--save", str(Path(tmp) / f"{minutes}.csv"),
                                         "--out", str(Path(tmp) / f"out{minutes}")])
            video.unlink()
            print(f"| {minutes:g} | {frames} | {seconds:.0f} | {frames / seconds:.1f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
