"""Output folders that never overwrite an earlier result: ``runs/predict``, then ``runs/predict2``, ...

The habit of Ultralytics' ``increment_path``: a verb's default output folder is taken afresh for each call
unless the caller passes ``exist_ok`` to reuse it.
"""

from __future__ import annotations

from pathlib import Path


def increment_path(path: str | Path, exist_ok: bool = False) -> Path:
    """``path`` itself when it is free (or ``exist_ok``), else the first free ``path2``, ``path3``, ..."""
    path = Path(path)
    if exist_ok or not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    for number in range(2, 10_000):
        candidate = path.with_name(f"{path.name}{number}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free output folder next to {path}; pass exist_ok to reuse it")
