"""`vitfer benchmark`: recipes trained under one budget, one table, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from vitfer.cli import app
from vitfer.errors import ConfigError
from vitfer.evaluation.benchmark import TEST_COLUMN, Budget, benchmark
from vitfer.evaluation.compare import find_evaluation

TINY = {"data": {"num_classes": 7, "cache_dir": None}, "augment": {"hflip": 0.5},
        "train": {"epochs": 30, "batch_size": 8, "lr": 0.001, "threads": 1}}


def recipe(folder: Path, name: str, model: dict, **train) -> Path:
    values = {**TINY, "model": model, "train": {**TINY["train"], **train}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.mark.slow
def test_two_recipes_make_one_table_and_resume(fer_folder: Path, tmp_path: Path) -> None:
    recipes = [recipe(tmp_path, "small_cnn", {"name": "cnn3", "img_size": 48}),
               recipe(tmp_path, "hybrid", {"name": "hybrid_vit_tiny", "img_size": 64})]
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["benchmark", *map(str, recipes), "--data", str(fer_folder),
                                      "--budget-epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "benchmark.csv")
    assert sorted(table["recipe"]) == ["hybrid", "small_cnn"]
    assert table["val acc"].is_monotonic_decreasing  # ranked by the validation split
    table = table.set_index("recipe", drop=False).loc[["small_cnn", "hybrid"]].reset_index(drop=True)
    assert table["model"].tolist() == ["cnn3", "hybrid_vit_tiny"]
    assert table["epochs"].tolist() == [1, 1]  # the budget, not the recipes' own 30
    for column in ("val acc", "val macro-F1", "F1 angry", "F1 neutral", "params (M)", "GFLOPs", "train img/s",
                   "infer faces/s", TEST_COLUMN):
        assert table[column].notna().all(), column
    assert table["params (M)"][0] < table["params (M)"][1]
    assert (out / "benchmark.png").stat().st_size > 0
    assert "| small_cnn | cnn3 |" in (out / "benchmark.md").read_text()
    assert len(pd.read_csv(out / "hybrid" / "metrics.csv").dropna(subset=["epoch_seconds"])) == 1
    assert (out / "curves.png").stat().st_size > 0 and table["still climbing"].isna().all()  # one epoch: no trend
    # the runs' evaluations are where `vitfer compare` looks for them
    assert find_evaluation(out / "hybrid", "val") is not None and find_evaluation(out / "hybrid", "test") is not None

    # run again: both recipes are finished, so nothing trains and the stored figures come back unchanged
    stored = json.loads((out / "small_cnn" / "result.json").read_text())
    model_time = (out / "small_cnn" / "model.pt").stat().st_mtime
    again = benchmark(recipes, fer_folder, out, Budget(epochs=1))
    assert (out / "small_cnn" / "model.pt").stat().st_mtime == model_time
    again = again.set_index("recipe")
    assert again.loc["small_cnn", "val acc"] == pytest.approx(stored["val"]["accuracy"])


@pytest.mark.slow
def test_minutes_budget_plans_whole_or_partial_epochs(fer_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    benchmark([recipe(tmp_path, "small_cnn", {"name": "cnn3"})], fer_folder, out, Budget(minutes=0.0001),
              final_test=False)
    plan = json.loads((out / "small_cnn" / "plan.json").read_text())
    assert plan["epochs"] == 1 and 0 < plan["epoch_fraction"] < 1  # far too little time for a whole epoch
    assert TEST_COLUMN not in pd.read_csv(out / "benchmark.csv")


def test_bad_benchmark_input_is_refused_by_name(fer_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="one budget"):
        Budget(epochs=1, minutes=2)
    with pytest.raises(ConfigError, match="recipe not found: .*nope.yaml"):
        benchmark([tmp_path / "nope.yaml"], fer_folder, tmp_path / "b", Budget(epochs=1))
    student = recipe(tmp_path, "student", {"name": "cnn3"}, teacher="recipe:absent")
    with pytest.raises(ConfigError, match="absent"):
        benchmark([student], fer_folder, tmp_path / "b", Budget(epochs=1))
    result = CliRunner().invoke(app, ["benchmark", str(student), "--data", str(fer_folder)])
    assert result.exit_code == 2 and "one budget" in result.output


def test_learning_curves_count_training_minutes_across_a_resume(tmp_path: Path) -> None:
    from vitfer.evaluation.benchmark import learning_curve, still_climbing

    (tmp_path / "metrics.before-resume.csv").write_text(
        "epoch,epoch_seconds,val_acc\n0,,0.30\n0,60.0,\n1,,0.40\n1,120.0,\n")
    (tmp_path / "metrics.csv").write_text("epoch,epoch_seconds,val_acc\n2,,0.45\n2,60.0,\n")
    curve = learning_curve(tmp_path)
    assert curve["minutes"].tolist() == [1.0, 3.0, 4.0] and curve["val_acc"].tolist() == [0.30, 0.40, 0.45]
    assert still_climbing(curve) and not still_climbing(curve.iloc[[0, 2, 1]].reset_index(drop=True))


def test_table_counts_training_minutes_from_the_epochs_clocks() -> None:
    from vitfer.evaluation.benchmark import results_table

    base = {"recipe": "r", "model": "cnn3", "input": "48px", "params (M)": 0.3, "GFLOPs": 0.1, "epochs": 3,
            "train img/s": 100.0, "infer faces/s": 500.0,
            "val": {"accuracy": 0.5, "macro_f1": 0.4, "per_class_f1": {"happy": 0.8}}}
    # resumed after two epochs: this invocation's timer saw 1.5 minutes, the three epochs took 4.0
    resumed = {**base, "train minutes": 1.5, "curve": {"minutes": [1.0, 3.0, 4.0], "val_acc": [0.3, 0.4, 0.5]}}
    no_curve = {**base, "recipe": "s", "train minutes": 2.5, "val": {**base["val"], "accuracy": 0.4}}
    table = results_table([no_curve, resumed])
    assert table["recipe"].tolist() == ["r", "s"]  # ranked by validation accuracy, whatever the order given
    assert table["train minutes"].tolist() == [4.0, 2.5]
    assert table["still climbing"].tolist()[0] == "yes" and pd.isna(table["still climbing"].tolist()[1])
