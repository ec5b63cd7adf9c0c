"""Outputs that never overwrite or half-write a result.

``increment_path``: a verb's default output folder is taken afresh for each call (``runs/predict``, then
``runs/predict2``, ..., Ultralytics' habit) unless the caller passes ``exist_ok`` to reuse it.
``atomic_write``: files (caches, exports, model files) appear whole or not at all.
``safe_load``: PyTorch files read as tensors and plain data only, never code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vitfer.errors import OutputError


def increment_path(path: str | Path, exist_ok: bool = False, sep: str = "",
                   taken: Callable[[Path], bool] | None = None) -> Path:
    """``path`` itself when it is free (or ``exist_ok``), else the first free ``path2``, ``path3``, ...
    (``path-2``, ... with ``sep='-'``). ``taken`` says what makes a path not free; by default, existing and
    not being an empty folder."""
    path = Path(path)
    if not path.name:  # "." or "/": its own name, so that a sibling can be named after it
        path = path.resolve()
    for folder in (path, *path.parents):
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"cannot use {path} as an output folder: {folder} is a file")
    taken = taken or (lambda p: p.exists() and not (p.is_dir() and not any(p.iterdir())))
    if exist_ok or not taken(path):
        return path
    for number in range(2, 10_000):
        candidate = path.with_name(f"{path.name}{sep}{number}")
        if not taken(candidate):
            return candidate
    raise OutputError(f"no free output folder next to {path}; pass exist_ok to reuse it")


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step, on failure it goes.

    A run killed midway leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file whole or not at all (see ``atomic_write``)."""
    with atomic_write(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Lay out a matplotlib figure, write it whole (see ``atomic_write``; the format follows the suffix) and
    release it; returns ``path``."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    try:
        with atomic_write(path) as temporary:
            fig.savefig(temporary, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    return path


#: what a PyTorch file may unpack to (vitfer's largest model files are far smaller; a ViT-L checkpoint fits)
MAX_UNPACKED_BYTES = 8 * 1024 ** 3


def check_declared_sizes(path: Path, error: type[Exception]) -> None:
    """Refuse a PyTorch file (a zip) by the sizes its entries declare, before any tensor is made: over
    ``MAX_UNPACKED_BYTES`` in all, or a compressed entry (torch never writes them; a small file that would unpack
    to gigabytes does)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # not a zip (an old pickle format): torch.load's own checks apply
    total = sum(entry.file_size for entry in entries)
    packed = [entry for entry in entries if entry.compress_type != zipfile.ZIP_STORED
              and entry.file_size > 100 * max(entry.compress_size, 1) and entry.file_size > 1024 ** 2]
    if total > MAX_UNPACKED_BYTES or packed:
        raise error(f"refusing to load {path}: it declares {total / 1024 ** 2:,.0f} MB of contents"
                    + (f", {packed[0].filename} compressed {packed[0].file_size // max(packed[0].compress_size, 1)}"
                       " times" if packed else "") + "; vitfer files are stored uncompressed and far smaller")


def safe_load(path: Path, error: type[Exception]) -> object:
    """The one loader of PyTorch files (model files, checkpoints, weights, face caches): ``torch.load`` that never
    runs code from the file: tensors and plain data only (``weights_only``).

    A file that needs more (a pickled class, a ``__reduce__`` payload) is refused with ``error``, naming it.
    """
    import pickle

    import torch  # the research floor's files; the runtime never calls this

    check_declared_sizes(Path(path), error)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise error(f"refusing to load {path}: it holds Python objects beyond tensors and plain data, which could "
                    "run code when loaded; vitfer files never do. Re-save its state_dict if you trust it") from None
    except Exception as err:  # noqa: BLE001 - any unreadable file gets one clear message
        raise error(f"cannot read {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
