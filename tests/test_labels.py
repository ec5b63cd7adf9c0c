import pytest

from vitfer.labels import AFFECTNET_IDS, EMOTIONS_7, EMOTIONS_8, RAFDB_IDS, canonical_name, ferplus_majority, index_of, label_set, name_from_id
from vitfer.errors import LabelError


def test_canonical_order_follows_fer2013():
    assert EMOTIONS_7 == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert EMOTIONS_8[7] == "contempt" and label_set(8) == EMOTIONS_8 and label_set(7) == EMOTIONS_7


@pytest.mark.parametrize("name,expected", [("Anger", "angry"), ("sadness", "sad"), ("Happiness", "happy"),
                                           ("surprised", "surprise"), ("contempt", "contempt"), (" Fear ", "fear")])
def test_aliases_map_to_canonical(name, expected):
    assert canonical_name(name) == expected


def test_dataset_ids():
    assert name_from_id("fer2013", 6) == "neutral"
    assert name_from_id("affectnet", 0) == "neutral" and name_from_id("affectnet", 7) == "contempt"
    assert name_from_id("rafdb", 1) == "surprise" and name_from_id("rafdb", 7) == "neutral"
    assert set(AFFECTNET_IDS.values()) == set(EMOTIONS_8) and set(RAFDB_IDS.values()) == set(EMOTIONS_7)


def test_unknown_labels_are_named():
    with pytest.raises(LabelError, match="bored"):
        canonical_name("bored")
    with pytest.raises(LabelError, match="no label id 9"):
        name_from_id("affectnet", 9)
    with pytest.raises(LabelError, match="not in the 7-class set"):
        index_of("contempt", EMOTIONS_7)
    assert index_of("contempt", EMOTIONS_8) == 7


def test_ferplus_majority_drops_unknown_and_not_a_face():
    assert ferplus_majority({"neutral": 1, "happiness": 7, "unknown": 2}) == "happy"
    assert ferplus_majority({"neutral": 1, "NF": 9}) is None
    assert ferplus_majority({"contempt": 5, "anger": 3}) == "contempt"
