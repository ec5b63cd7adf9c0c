"""The timing loop and the report of the benchmarks (no vitfer import: fer's own environment runs it too)."""

from __future__ import annotations

import time
from pathlib import Path


def timed(fn, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def publish(text: str, out: Path | None) -> None:
    """Print a benchmark's report and, with ``out``, append it under a dated heading to that Markdown file."""
    print(text)
    if out:
        with open(out, "a") as handle:
            handle.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')}\n\n{text}")
