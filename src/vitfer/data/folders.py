"""Any class-folder data set: ``root/<class>/*`` or ``root/{train,val,test}/<class>/*``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from vitfer.data.manifest import (SPLIT_DIR_NAMES, OnError, check_dir, class_name, images_in, new_manifest,
                                  record_problem)
from vitfer.data.splits import stratified_split
from vitfer.errors import DataError


def read_class_folders(
    root: str | Path,
    source: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    on_error: OnError = "raise",
    ids: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """Read any ``root/<class>/*`` set (CK+48, AffectNet folders, ...): class folders named by emotion, or by
    number with ``ids`` (e.g. ``AFFECTNET_IDS`` for AffectNet's 0-7 folders).

    Split sub-folders (``train/``, ``val/``, ``test/``) are used where present; otherwise a
    seeded stratified split is made, so the same seed always gives the same split.
    """
    root = check_dir(root)
    source = source or root.name.lower()
    children = [p for p in sorted(root.iterdir()) if p.is_dir()]
    if not children:
        raise DataError(f"no class sub-folders in {root}")
    split_dirs = {SPLIT_DIR_NAMES[p.name.lower()]: p for p in children if p.name.lower() in SPLIT_DIR_NAMES}
    rows, skipped = [], []
    groups = split_dirs.items() if split_dirs else [("unsplit", root)]
    for split, folder in groups:
        class_dirs = [p for p in sorted(folder.iterdir()) if p.is_dir()]
        for class_dir in class_dirs:
            label = class_name(class_dir, on_error, skipped, ids)
            if label is None:
                continue
            images = images_in(class_dir)
            if not images:
                record_problem(f"empty class folder: {class_dir}", on_error, skipped)
            rows += [{"item": str(p), "label": label, "source": source, "split": split} for p in images]
    if not rows:
        raise DataError(f"no images found under {root}")
    manifest = new_manifest(rows, skipped)
    if not split_dirs:
        manifest["split"] = stratified_split(manifest["label"].to_numpy(), val_fraction, test_fraction, seed)
    return manifest
