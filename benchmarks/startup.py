"""Start-up cost of prediction: importing vitfer, building a Predictor, and one whole `vitfer predict` call.

    python benchmarks/startup.py [--repeats 3]

Each figure is the median of fresh interpreters (so nothing is cached in the process), with peak memory
(max RSS) of the same processes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

STEPS = {
    "import vitfer; vitfer.Predictor": "import vitfer; vitfer.Predictor",
    "Predictor() (the default backend: ONNX Runtime int8)": "import vitfer; vitfer.Predictor()",
    "Predictor(backend='torch')": "import vitfer; vitfer.Predictor(backend='torch')",
    "Predictor().predict(example photo)": ("import vitfer; from vitfer.shipped import EXAMPLE_IMAGE; "
                                           "vitfer.Predictor().predict(EXAMPLE_IMAGE)"),
}
#: appended to each step: the child reports its own peak memory
REPORT_RSS = "; import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def run(code: str) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one fresh interpreter running ``code``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code + REPORT_RSS], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run("import vitfer; vitfer.Predictor()")  # the ONNX export cache is filled once, not timed
    print(f"python {sys.version.split()[0]}, median of {args.repeats} fresh interpreters\n")
    print("| step | seconds | peak RSS (MiB) |\n|---|---|---|")
    for name, code in STEPS.items():
        figures = [run(code) for _ in range(args.repeats)]
        print(f"| {name} | {statistics.median(f[0] for f in figures):.2f} | {max(f[1] for f in figures):.0f} |")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(["vitfer", "predict", "example", "--out", tmp, "--exist-ok"], check=True, capture_output=True)
        print(f"| `vitfer predict example` (whole command) | {time.perf_counter() - start:.2f} | |")


if __name__ == "__main__":
    main()
