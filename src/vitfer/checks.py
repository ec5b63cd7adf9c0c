"""Cheap checks of a command's arguments, run before any heavy import: a wrong path answers at once."""

from __future__ import annotations

from pathlib import Path

from vitfer.shipped import SHIPPED_MODELS
from vitfer.errors import ArgumentError


def existing(path: str | Path | None, what: str) -> None:
    """``path`` must exist (file or folder); ``what`` names the argument in the message."""
    if path is not None and not Path(path).expanduser().exists():
        raise ArgumentError(f"{what} not found: {path}")


def model_reference(model: str | Path | None, what: str = "--model") -> None:
    """A shipped model's name, or an existing file or run folder."""
    if model is None or str(model) in SHIPPED_MODELS:
        return
    if not Path(model).expanduser().exists():
        raise ArgumentError(f"{what} {model}: no such file or run folder, and not a shipped model "
                            f"({', '.join(SHIPPED_MODELS)})")
