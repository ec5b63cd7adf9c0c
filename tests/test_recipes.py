"""Every reference recipe (configs/recipes/) end to end for two steps: data -> train -> evaluate -> the recipe's
explanation, with tiny models of the same families in place of the published weights (a Hugging Face encoder is
saved to a local folder and loaded from it, as a user without the hub would), so a recipe that breaks fails here.
docs/recipes.md states each setting and whether its report does; the table is checked against the files."""

import re
from pathlib import Path

import pytest
import yaml

from vitfer.config import load_config

RECIPES = sorted((Path(__file__).resolve().parents[1] / "configs" / "recipes").glob("*.yaml"))
DOC = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"
CNNS = ("cnn3", "resnet18", "vgg16", "mobilenetv2")


def tiny_model(model: dict, tmp_path: Path) -> dict:
    """The recipe's model section with a tiny member of the same family."""
    name = model["name"]
    if name.startswith(("hf:", "hf-mae:")):
        transformers = pytest.importorskip("transformers")
        from vitfer.models.huggingface import TINY

        mae = name.startswith("hf-mae:")
        config_cls, model_cls = ((transformers.ViTMAEConfig, transformers.ViTMAEModel) if mae else
                                 (transformers.ViTConfig, transformers.ViTModel))
        folder = tmp_path / "local-encoder"
        # five blocks: R1 freezes the first four
        model_cls(config_cls(image_size=32, **{**TINY, "num_hidden_layers": 5})).save_pretrained(folder)
        return {**model, "name": f"{name.split(':')[0]}:{folder}", "img_size": 32}
    if name.startswith("vit_"):
        return {**model, "img_size": 32, "pretrained": False, "kwargs": {"depth": 1, "embed_dim": 32, "num_heads": 2}}
    return {**model, "img_size": 32, "pretrained": None}  # the CNNs: random weights (no download in a test)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_runs_end_to_end(recipe, tmp_path, fer_folder, ck_folder):
    import vitfer

    values = yaml.safe_load(recipe.read_text())
    values["model"] = tiny_model(values["model"], tmp_path)
    data = values.setdefault("data", {})
    data.update(path=str(fer_folder), cache_dir=None)
    if data.get("extra_paths") is not None and data.get("num_classes") == 8:
        data["extra_paths"] = [str(ck_folder)]  # a merge with contempt, as FER2013 + CK+48 (+ AffectNet)
    if data.get("detector"):
        data["detector"] = "yunet"  # MTCNN and SSD are downloads; the bundled detector runs the same path
    if data.get("expand_per_class"):
        data["expand_per_class"] = 12
    values["train"] = {**(values.get("train") or {}), "epochs": 1, "batch_size": 8, "limit_train_batches": 2,
                       "limit_val_batches": 2, "threads": 1}
    values["runs_dir"] = str(tmp_path / "runs")
    config = tmp_path / recipe.name
    config.write_text(yaml.safe_dump(values))
    run = vitfer.train(config, progress=False)
    results = vitfer.evaluate(run, fer_folder, split="test", out_dir=tmp_path / "eval")
    assert results["plain"]["samples"] == 14
    method = "gradcam" if values["model"]["name"] in CNNS else "rollout"
    maps = vitfer.explain(run, data=fer_folder, split="test", method=method, out=tmp_path / "maps", per_class=2)
    assert Path(maps).is_file()


def test_the_recipes_table_says_what_the_files_say():
    """Every row of docs/recipes.md (recipe, config key, value, source) matches its config file."""
    rows = [line.strip("|").split("|") for line in DOC.read_text().splitlines()
            if re.match(r"\| r\d_", line)]
    assert rows, "docs/recipes.md has no table rows"
    checked = set()
    for recipe, key, value, source in ([c.strip() for c in row[:4]] for row in rows):
        config = load_config(DOC.parent.parent / "configs" / "recipes" / f"{recipe}.yaml").to_dict()
        section, name = key.strip("`").split(".", 1)
        actual = config[section][name]
        assert str(actual) == value.strip("`"), f"{recipe} {key}: table {value}, file {actual}"
        assert source in ("report", "not stated"), source
        checked.add(recipe)
    assert checked == {p.stem for p in RECIPES}
