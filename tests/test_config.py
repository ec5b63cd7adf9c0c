"""Recipes: every value checked against its field's type and range before a run starts, in one line."""

import pytest

from vitfer.config import load_config
from vitfer.errors import ConfigError


@pytest.mark.parametrize("override,message", [
    ("train.lr=[", "train.lr=\\[': its value is not valid YAML"),
    ("train.lr.x=1", "train.lr needs float"),
    ("train.lr=1\ntrain.lr.x=1", None),
    ("train.epochs=abc", "train.epochs needs a number"),
    ("train.epochs=0", "train.epochs must be 1 to 100000"),
    ("augment.hflip=2", "augment.hflip must be 0 to 1"),
    ("train.sam=maybe", "train.sam needs bool"),
    ("augment.scale=[1, 2, 3]", "augment.scale needs tuple"),
    ("model.kwargs=5", "model.kwargs needs dict"),
    ("train.optimizer=3", None),  # a number where a name is wanted: kept as text, the optimizer check names it
])
def test_every_override_is_checked(override, message):
    if message is None and "\n" in override:  # a key under a value that is already set
        with pytest.raises(ConfigError, match="train.lr is a value, not a section"):
            load_config(None, override.split("\n"))
        return
    if message is None:
        assert load_config(None, [override]).train.optimizer == "3"
        return
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_yaml_that_would_build_python_objects_is_refused_in_one_line(tmp_path):
    recipe = tmp_path / "evil.yaml"
    recipe.write_text("train:\n  lr: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="safe loader") as refused:
        load_config(recipe)
    assert "\n" not in str(refused.value)


def test_a_wrong_value_leaves_no_run_folder(tmp_path, fer_folder):
    from typer.testing import CliRunner

    from vitfer.cli import app

    result = CliRunner().invoke(app, ["train", "--data", str(fer_folder), "--set", "train.epochs=zero",
                                      "--set", f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 2 and "train.epochs needs a number" in result.output
    assert not (tmp_path / "runs").exists()
