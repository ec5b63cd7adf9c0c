"""The dispatcher: which layout a path is (``detect_kind``) and the reader of each kind (``read_dataset``).
The readers themselves live beside the manifest, one file per family, and import nothing from here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vitfer.data import releases
from vitfer.data.fer2013 import is_fer2013_folder, read_fer2013_csv, read_fer2013_folder
from vitfer.data.ferplus import is_ferplus_folder, read_ferplus
from vitfer.data.folders import read_class_folders
from vitfer.data.manifest import OnError, is_manifest_csv, read_manifest_csv
from vitfer.data.splits import grouped_split, kfold
from vitfer.errors import DataError
from vitfer.labels import AFFECTNET_IDS


#: data set kinds ``read_dataset`` knows, each with its reader (taking path, on_error, seed)
def _readers() -> dict:
    return {
        "fer2013-csv": lambda p, on_error, seed, **kw: read_fer2013_csv(p, on_error, seed),
        "fer2013-folder": lambda p, on_error, seed, **kw: read_fer2013_folder(p, on_error),
        "manifest": lambda p, on_error, seed, **kw: read_manifest_csv(p, on_error),
        "ferplus": lambda p, on_error, seed, ferplus_protocol="majority", **kw: read_ferplus(p, ferplus_protocol,
                                                                                             on_error),
        "affectnet": lambda p, on_error, seed, **kw: releases.read_affectnet(p, on_error, seed),
        "affectnet-folders": lambda p, on_error, seed, source=None, **kw: read_class_folders(
            p, source=source or "affectnet", seed=seed, on_error=on_error, ids=AFFECTNET_IDS),
        "rafdb": lambda p, on_error, seed, **kw: releases.read_rafdb(p, on_error, seed),
        "ckplus": lambda p, on_error, seed, **kw: releases.read_ckplus(p, on_error, seed),
        "jaffe": lambda p, on_error, seed, **kw: releases.read_jaffe(p, on_error, seed),
        "folders": lambda p, on_error, seed, source=None, **kw: read_class_folders(p, source=source, seed=seed,
                                                                                   on_error=on_error),
    }


def dataset_kinds() -> tuple[str, ...]:
    """Every ``kind`` ``read_dataset`` takes: auto, and the reader registry's keys."""
    return ("auto", *_readers())


def detect_kind(path: Path) -> str:
    """Which release a path is, from its files."""
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"{path} is a file but not a CSV; give a data set folder or a FER2013/manifest CSV")
        return "manifest" if is_manifest_csv(path) else "fer2013-csv"
    for kind, test in (("fer2013-folder", is_fer2013_folder), ("ferplus", is_ferplus_folder),
                       ("affectnet", releases.is_affectnet), ("ckplus", releases.is_ckplus),
                       ("rafdb", lambda p: releases.find_rafdb_list(p) is not None), ("jaffe", releases.is_jaffe)):
        if test(path):
            return kind
    return "folders"


def read_dataset(path: str | Path, kind: str = "auto", on_error: OnError = "raise", seed: int = 0,
                 source: str | None = None, ferplus_protocol: str = "majority", folds: int = 0, fold: int = 0,
                 group_by: str | None = None) -> pd.DataFrame:
    """Read any supported data set (``dataset_kinds()``; ``auto`` tells them apart by their files).

    ``folds`` > 1: the split of fold ``fold`` of a seeded k-fold cross-validation replaces the data set's own;
    ``group_by`` (e.g. 'subject', which CK+ and JAFFE carry) keeps each group inside one split.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data path does not exist: {path}")
    readers = _readers()
    if kind != "auto" and kind not in readers:
        raise DataError(f"unknown data set kind {kind!r}; use {', '.join(dataset_kinds())}")
    if kind == "auto":
        kind = detect_kind(path)
    manifest = readers[kind](path, on_error, seed, source=source, ferplus_protocol=ferplus_protocol)
    if folds:
        attrs = dict(manifest.attrs)
        manifest = kfold(manifest, folds, fold, seed, group_by)
        manifest.attrs.update(attrs)
    elif group_by:
        if group_by not in manifest.columns:
            raise DataError(f"cannot group {path} by {group_by!r}: its reader gives no such column")
        manifest["split"] = grouped_split(manifest[group_by].to_numpy(), 0.1, 0.1, seed)
    return manifest
