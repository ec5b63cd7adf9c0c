"""What a new user pays for one prediction: vitfer's base install (the runtime floor) beside ``pip install fer``.

    python benchmarks/install.py [--fer-version 25.10.3] [--out benchmarks/results/install.md]

For each package, in a fresh virtual environment made here: the time ``pip install`` takes (wheels from the
registry, pip's cache cleared for the run), the environment's size on disk, ``import`` time, and one prediction
on the bundled example photo from the command line: cold (first call after the install, empty model caches) and
warm (the second call), with the peak memory of that process. For vitfer it also records whether ``torch``
was imported. Figures are medians of ``--repeats`` runs where a run can repeat (imports, warm calls).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import publish  # benchmarks/timing.py

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "src" / "vitfer" / "assets" / "example.jpg"
#: run in the environment under test: seconds and peak RSS of one call, JSON on the last line
FER_PREDICT = """
import json, resource, sys, time
start = time.perf_counter()
import cv2
from fer.fer import FER  # fer 25.x exports it from its submodule
faces = FER().detect_emotions(cv2.imread(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - start, "faces": len(faces),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
VITFER_PREDICT = """
import json, resource, sys, time
start = time.perf_counter()
from vitfer import api
summary = api.predict(sys.argv[1], out=None, echo=lambda line: None)
print(json.dumps({"seconds": time.perf_counter() - start, "faces": summary.faces,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch": "torch" in sys.modules}))
"""


def du(path: Path) -> float:
    """Size on disk in MB (what ``du -s`` reports)."""
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
               .stdout.split()[0]) / 1024


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def child(python: Path, code: str, env: dict, *args: str) -> dict:
    done = subprocess.run([str(python), "-c", code, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{python} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(name: str, requirement: str, module: str, predict: str, cli: list[str] | None, repeats: int,
            work: Path) -> dict:
    """Install ``requirement`` into a fresh environment and time what a user does first."""
    venv = work / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "HOME": str(work / f"{name}-home"),
           "VITFER_CACHE": str(work / f"{name}-cache"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    row: dict = {"package": name}
    row["install_s"] = timed([str(python), "-m", "pip", "install", "-q", requirement], env)
    row["size_mb"] = du(venv)
    cold = child(python, predict, env, str(EXAMPLE))
    warm = [child(python, predict, env, str(EXAMPLE)) for _ in range(repeats)]
    row["predict_cold_s"], row["predict_warm_s"] = cold["seconds"], statistics.median(w["seconds"] for w in warm)
    row["peak_mib"] = max(w["rss_mib"] for w in [cold, *warm])
    row["faces"] = cold["faces"]
    row["torch_imported"] = cold.get("torch")
    row["import_s"] = statistics.median(timed([str(python), "-c", f"import {module}"], env) for _ in range(repeats))
    if cli:
        out = work / f"{name}-cli"
        command = [str(venv / "bin" / cli[0]), *cli[1:], "--out", str(out), "--exist-ok"]
        row["cli_warm_s"] = statistics.median(timed(command, env) for _ in range(repeats))
    return row


def table(rows: list[dict]) -> str:
    fer = rows[1] if len(rows) > 1 else None
    lines = ["| | " + " | ".join(r["package"] for r in rows) + (" | vitfer / fer |" if fer else " |"),
             "|---|" + "---|" * (len(rows) + (1 if fer else 0))]
    for key, label in (("size_mb", "environment on disk (MB)"), ("install_s", "pip install (s)"),
                       ("import_s", "import (s)"), ("predict_cold_s", "first prediction, fresh install (s)"),
                       ("predict_warm_s", "a later prediction, new process (s)"),
                       ("cli_warm_s", "`vitfer predict example` warm CLI call (s)"), ("peak_mib", "peak memory (MiB)"),
                       ("faces", "faces found on the example"), ("torch_imported", "torch imported")):
        values = [r.get(key) for r in rows]
        cells = ["—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v)) for v in values]
        ratio = ""
        if fer and isinstance(values[0], float) and isinstance(values[1], float) and values[1]:
            ratio = f" {values[0] / values[1]:.2f}x |"
        elif fer:
            ratio = " |"
        lines.append(f"| {label} | " + " | ".join(cells) + " |" + ratio)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fer-version", default="25.10.3", help="the fer release to compare with ('' to skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="append the table to this Markdown file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vitfer-install-"))
    try:
        rows = [measure("vitfer", str(ROOT), "vitfer", VITFER_PREDICT, ["vitfer", "predict", "example"],
                        args.repeats, work)]
        if args.fer_version:
            rows.append(measure("fer", f"fer=={args.fer_version}", "fer", FER_PREDICT, None, args.repeats, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = (f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; "
            f"`python benchmarks/install.py --fer-version {args.fer_version}`\n\n{table(rows)}\n")
    publish(text, args.out)


if __name__ == "__main__":
    main()
