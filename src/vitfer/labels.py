"""Canonical emotion labels and per-data-set mappings (the one place label names live).

The canonical order follows FER2013: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad,
5 surprise, 6 neutral, and 7 contempt in the 8-class set.
"""

from __future__ import annotations

from collections.abc import Mapping
from vitfer.errors import LabelError

EMOTIONS_7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EMOTIONS_8: tuple[str, ...] = EMOTIONS_7 + ("contempt",)

#: Synonyms seen in public releases, mapped to canonical names (lower-case keys).
NAME_ALIASES: dict[str, str] = {
    "angry": "angry", "anger": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral",
    "contempt": "contempt",
}

# Numeric ids of public data sets, mapped to canonical names.
FER2013_IDS: dict[int, str] = dict(enumerate(EMOTIONS_7))
AFFECTNET_IDS: dict[int, str] = {
    0: "neutral", 1: "happy", 2: "sad", 3: "surprise",
    4: "fear", 5: "disgust", 6: "angry", 7: "contempt",
}
RAFDB_IDS: dict[int, str] = {
    1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral",
}
#: FER+ vote columns in file order; "unknown" and "NF" (not a face) are dropped.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF",
)
FERPLUS_DROPPED: frozenset[str] = frozenset({"unknown", "nf"})
CKPLUS_NAMES: tuple[str, ...] = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
#: CK+ numeric codes from the original release's Emotion/ files.
CKPLUS_IDS: dict[int, str] = {
    0: "neutral", 1: "angry", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sad", 7: "surprise",
}

DATASET_IDS: dict[str, Mapping[int, str]] = {
    "fer2013": FER2013_IDS,
    "affectnet": AFFECTNET_IDS,
    "rafdb": RAFDB_IDS,
    "ckplus": CKPLUS_IDS,
}


def label_set(num_classes: int) -> tuple[str, ...]:
    """The canonical label names for a 7- or 8-class model."""
    if num_classes == 7:
        return EMOTIONS_7
    if num_classes == 8:
        return EMOTIONS_8
    raise LabelError(f"vitfer has 7- and 8-class label sets, not {num_classes}")


def canonical_name(name: str) -> str:
    """Map a class name from any known data set (e.g. 'Sadness', 'anger') to its canonical name."""
    key = name.strip().lower()
    if key in NAME_ALIASES:
        return NAME_ALIASES[key]
    known = ", ".join(sorted(NAME_ALIASES))
    raise LabelError(f"unknown emotion label {name!r}; known names: {known}")


def name_from_id(dataset: str, label_id: int) -> str:
    """Canonical name for a numeric label id of a named data set (fer2013, affectnet, rafdb, ckplus)."""
    mapping = DATASET_IDS.get(dataset.lower())
    if mapping is None:
        raise LabelError(f"no numeric label mapping for data set {dataset!r}; have {sorted(DATASET_IDS)}")
    if label_id not in mapping:
        raise LabelError(f"{dataset} has no label id {label_id}; ids are {sorted(mapping)}")
    return mapping[label_id]


def index_of(name: str, labels: tuple[str, ...] = EMOTIONS_8) -> int:
    """Canonical index of a label name within a label set."""
    canon = canonical_name(name)
    if canon not in labels:
        raise LabelError(f"label {canon!r} is not in the {len(labels)}-class set {labels}")
    return labels.index(canon)


def ferplus_majority(votes: Mapping[str, float]) -> str | None:
    """Majority label of one FER+ vote row, or None when the winner is unknown / not-a-face."""
    best = max(votes, key=lambda k: votes[k])
    if best.lower() in FERPLUS_DROPPED or votes[best] <= 0:
        return None
    return canonical_name(best)
