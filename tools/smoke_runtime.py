"""Smoke test of the runtime floor in an environment that has only ``pip install vitfer`` (and, for the server,
``vitfer[serve]``): predictions on the example photo, a folder and a generated video, the server's health, and
torch never imported. ``.ci/run`` runs it in a clean environment of its own.

    python tools/smoke_runtime.py            # base install: also checks that `vitfer serve` names its extra
    python tools/smoke_runtime.py --serve    # with vitfer[serve]: also starts the server and asks /health
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from vitfer import api
from vitfer.cli import app
from vitfer.shipped import EXAMPLE_IMAGE

RESEARCH = ("torch", "torchvision", "timm", "lightning", "kornia", "pandas", "matplotlib", "sklearn", "onnx")


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"smoke test failed: {what}")
    print(f"ok: {what}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="vitfer[serve] is installed: start the server too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vitfer-smoke-"))
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["predict", "example", "--out", str(work / "example")])
        check(result.exit_code == 0 and "happy" in result.output, "vitfer predict example (CLI)")

        folder = work / "photos"
        folder.mkdir()
        shutil.copy(EXAMPLE_IMAGE, folder / "a.jpg")
        cv2.imwrite(str(folder / "b.png"), cv2.resize(cv2.imread(str(EXAMPLE_IMAGE)), (256, 256)))
        (folder / "broken.jpg").write_bytes(b"not an image")
        summary = api.predict(str(folder), out=work / "folder", save=work / "faces.jsonl", echo=lambda line: None)
        rows = [json.loads(line) for line in (work / "faces.jsonl").read_text().splitlines()]
        named = [row for row in rows if row.get("error")]
        check(summary.frames == 2 and len(summary.errors) == 1 and len(rows) == 3 and len(named) == 1
              and named[0]["source"].endswith("broken.jpg"), "a folder: a row per image, the bad file named")

        video = work / "clip.mp4"
        frame = cv2.resize(cv2.imread(str(EXAMPLE_IMAGE)), (320, 320))
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 320))
        for shift in range(15):
            writer.write(np.roll(frame, shift * 2, axis=1))
        writer.release()
        summary = api.predict(str(video), out=work / "video", save=work / "video.csv", echo=lambda line: None)
        check(summary.frames == 15 and summary.faces >= 14 and summary.timelines, "a video, with timelines")

        if args.serve:
            import uvicorn

            from vitfer.serving.app import create_app

            port = free_port()
            server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            for _ in range(100):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                        health = json.loads(response.read())
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                health = {}
            server.should_exit = True
            thread.join(timeout=10)
            check(health.get("status") == "ok", f"vitfer serve answers /health ({health})")
        elif importlib.util.find_spec("fastapi") is None:
            result = runner.invoke(app, ["serve"])
            check(result.exit_code == 2 and "vitfer[serve]" in result.output, "vitfer serve names its extra")

        loaded = sorted(name for name in RESEARCH if name in sys.modules)
        check(not loaded, f"no research package imported (found: {loaded or 'none'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
