"""``vitfer benchmark RECIPE ...``: train a list of recipes under one budget, evaluate each, write one table.

Every recipe trains on the same data under the same budget: a number of epochs, or minutes of this machine
(turned into whole epochs per recipe by timing a few training steps first, so each cosine schedule runs to its
end). Each is evaluated on the validation split (PublicTest for FER2013), which is what the table ranks by.
With ``final_test`` the test split (PrivateTest) is evaluated once, after every recipe has finished, and shown in
its own column; it never steers anything. The folder holds one run per recipe and a ``result.json`` per finished
recipe, so a stopped benchmark resumes where it stopped: finished recipes are kept, an interrupted training
resumes from its ``last.ckpt``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from vitfer.config import Config, load_config
from vitfer.errors import ConfigError
from vitfer.config import AugmentConfig
from vitfer.data.transforms import BatchAugment
from vitfer.evaluation.compare import forward_gflops, markdown_table
from vitfer.labels import EMOTIONS_8
from vitfer.models.checkpoint import count_parameters, load_model
from vitfer.models.factory import FERNet, build_model
from vitfer.preprocess import Preprocess
from vitfer.files import write_text
from vitfer.models.inputs import finish, to_float

log = logging.getLogger(__name__)

RESULT = "result.json"
PLAN = "plan.json"
TEST_COLUMN = "PrivateTest acc (final, once)"


@dataclass
class Budget:
    """Epochs per recipe, or minutes of this machine per recipe (exactly one of them)."""

    epochs: int | None = None
    minutes: float | None = None

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.minutes is None):
            raise ConfigError("give the benchmark one budget: epochs or minutes per recipe")
        if (self.epochs is not None and self.epochs < 1) or (self.minutes is not None and self.minutes <= 0):
            raise ConfigError(f"the budget must be positive, got {self.epochs or self.minutes}")

    def describe(self) -> str:
        return f"{self.epochs} epochs per recipe" if self.epochs else f"{self.minutes:g} minutes per recipe"


def train_step_seconds(model: FERNet, preprocess: Preprocess, augment: AugmentConfig, batch: int,
                       steps: int = 4, decode_size: int = 48) -> float:
    """Seconds of one training step (batched augmentation, forward, backward, AdamW) on random faces."""
    augmenter = BatchAugment(augment, decode_size)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    faces = torch.randint(0, 256, (batch, 1 if preprocess.grayscale else 3, decode_size, decode_size),
                          dtype=torch.uint8)
    labels = torch.randint(0, model.config.num_classes, (batch,))

    def step() -> None:
        x = finish(preprocess, augmenter(to_float(preprocess, faces)))
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    was_training = model.training
    model.train()
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    model.train(was_training)
    return (time.perf_counter() - start) / steps


@torch.no_grad()
def faces_per_second(model: torch.nn.Module, channels: int, size: int, batch: int = 64,
                     seconds: float = 2.0) -> float:
    """Inference throughput of a model on preprocessed inputs at one batch size (after a warm-up call)."""
    model.eval()
    x = torch.zeros(batch, channels, size, size)
    model(x)
    done, start = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - start < seconds:
        model(x)
        done += batch
    return done / (time.perf_counter() - start)


def epochs_for_minutes(config: Config, minutes: float, train_images: int, val_images: int) -> dict:
    """How many whole epochs of this recipe fit in ``minutes`` here (at least one), from timed training steps."""
    from vitfer.training.run import preprocess_for

    m = config.model
    model = build_model(m.name, config.data.num_classes, img_size=m.img_size, head=m.head,
                        drop_path_rate=m.drop_path_rate, kwargs=dict(m.kwargs))
    preprocess = preprocess_for(model, config)
    step = train_step_seconds(model, preprocess, config.augment, config.train.batch_size, decode_size=config.data.size)
    size = model.config.resolved_img_size()
    per_face = 1.0 / faces_per_second(model, model.config.in_chans, size, batch=128, seconds=1.0)
    teacher = 1.0 + (0.15 if config.train.teacher else 0.0)  # a frozen teacher's forward pass per step
    steps = max(1, train_images // config.train.batch_size)
    epoch = steps * step * teacher + val_images * per_face
    fit = minutes * 60.0 / epoch
    # a model too slow for one epoch in the budget trains one shortened epoch (the batches that fit)
    batches = None if fit >= 1 else max(1, math.floor(fit * steps))
    return {"epochs": max(1, math.floor(fit)), "train_batches": batches,
            "epoch_fraction": None if batches is None else batches / steps,
            "estimated_epoch_seconds": epoch, "step_seconds": step, "minutes": minutes}


def split_sizes(config: Config) -> tuple[int, int]:
    """Faces in the train and validation splits of the configured data."""
    from vitfer.data.readers import read_dataset

    manifest = read_dataset(config.data.path, kind=config.data.kind, on_error=config.data.on_error,
                            seed=config.seed)
    counts = manifest["split"].value_counts()
    return int(counts.get("train", 0)), int(counts.get("val", 0))


def recipe_config(recipe: Path, data: str, out: Path, overrides: list[str], run_names: dict[str, Path]) -> Config:
    """The recipe with the benchmark's data and folder; ``train.teacher: recipe:NAME`` names another recipe."""
    config = load_config(recipe, [f"data.path={data}", *overrides])
    config.name = recipe.stem
    config.runs_dir = str(out)
    teacher = config.train.teacher
    if teacher.startswith("recipe:"):
        wanted = teacher.removeprefix("recipe:")
        if wanted not in run_names:
            raise ConfigError(f"{recipe} distils from recipe {wanted!r}, which is not in this benchmark")
        config.train.teacher = str(run_names[wanted] / "model.pt")
    return config


def run_recipe(recipe: Path, config: Config, budget: Budget, run_dir: Path, sizes: tuple[int, int]) -> dict:
    """Train (or resume) one recipe within the budget and evaluate it on the validation split."""
    from vitfer.evaluation.evaluate import evaluate
    from vitfer.training.run import train

    plan_file = run_dir / PLAN
    if plan_file.is_file():  # a resumed recipe keeps the epochs it was planned with
        plan = json.loads(plan_file.read_text())
    elif budget.epochs:
        plan = {"epochs": budget.epochs}
    else:
        plan = epochs_for_minutes(config, budget.minutes, *sizes)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(plan_file, json.dumps(plan, indent=2))
    config.train.epochs = int(plan["epochs"])
    if plan.get("train_batches"):
        config.train.limit_train_batches = int(plan["train_batches"])
    last = run_dir / "checkpoints" / "last.ckpt"
    start = time.perf_counter()
    train(config, resume=last if last.is_file() else None, progress=False)
    curve = learning_curve(run_dir)
    # a resumed recipe's timer saw only the part after the resume; its epochs' clocks saw all of it
    train_minutes = training_minutes(curve, fallback=(time.perf_counter() - start) / 60.0)
    # evaluate's own report folder (<run>/eval-<data>-val), so `vitfer compare` finds it
    val = evaluate(run_dir, config.data.path, split="val", exist_ok=True)["plain"]
    loaded = load_model(run_dir / "model.pt")
    size, channels = loaded.preprocess.img_size, loaded.preprocess.in_channels
    metrics = pd.read_csv(run_dir / "metrics.csv")
    rates = metrics["train_images_per_second"].dropna() if "train_images_per_second" in metrics else pd.Series()
    return {"recipe": recipe.stem, "model": loaded.name, "input": f"{size}px",
            "params (M)": count_parameters(loaded.model) / 1e6,
            "GFLOPs": forward_gflops(loaded.model, channels, size),
            "epochs": config.train.epochs * (plan.get("epoch_fraction") or 1.0),
            "train minutes": train_minutes, "train img/s": float(rates.mean()) if len(rates) else None,
            "infer faces/s": faces_per_second(loaded.model, channels, size),
            "val": {"accuracy": val["accuracy"], "macro_f1": val["macro"]["f1"],
                    "per_class_f1": {name: row["f1"] for name, row in val["per_class"].items()}},
            "curve": curve.to_dict(orient="list")}


def benchmark(recipes: list[str | Path], data: str | Path, out: str | Path, budget: Budget,
              overrides: list[str] | None = None, final_test: bool = True) -> pd.DataFrame:
    """Train and evaluate every recipe (resuming a stopped benchmark in ``out``); writes the table and chart."""
    recipes = [Path(r) for r in recipes]
    if not recipes:
        raise ConfigError("give at least one recipe (a YAML file, e.g. configs/compare/*.yaml)")
    stems = [r.stem for r in recipes]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"two recipes share a file name; each names its run folder: {stems}")
    for recipe in recipes:
        if not recipe.is_file():
            raise ConfigError(f"recipe not found: {recipe}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_names = {r.stem: out / r.stem for r in recipes}
    raw_teachers = {r.stem: load_config(r).train.teacher for r in recipes}
    configs = {r.stem: recipe_config(r, str(data), out, list(overrides or []), run_names) for r in recipes}
    # students train after every other recipe, so a teacher named by recipe is ready whatever the order given
    order = sorted(recipes, key=lambda r: raw_teachers[r.stem].startswith("recipe:"))
    sizes: tuple[int, int] | None = None
    finished: dict[str, dict] = {}
    for recipe in order:
        run_dir, config = run_names[recipe.stem], configs[recipe.stem]
        result_file = run_dir / RESULT
        if result_file.is_file():
            log.info("%s: finished earlier, kept", recipe.stem)
            finished[recipe.stem] = json.loads(result_file.read_text())
            continue
        if sizes is None:
            sizes = split_sizes(config)
        log.info("%s: training (%s)", recipe.stem, budget.describe())
        finished[recipe.stem] = run_recipe(recipe, config, budget, run_dir, sizes)
        write_text(result_file, json.dumps(finished[recipe.stem], indent=2))
    results = [finished[r.stem] for r in recipes]
    if final_test:
        results = [final_test_result(out / r["recipe"], r, data) for r in results]
    table = results_table(results)
    write_outputs(table, out, budget, str(data))
    return table


def final_test_result(run_dir: Path, result: dict, data: str | Path) -> dict:
    """The test split, once per recipe after all have trained: stored, and never evaluated again."""
    if "test" in result:
        return result
    from vitfer.evaluation.evaluate import evaluate

    test = evaluate(run_dir, data, split="test", exist_ok=True)["plain"]
    result = {**result, "test": {"accuracy": test["accuracy"], "macro_f1": test["macro"]["f1"]}}
    write_text(run_dir / RESULT, json.dumps(result, indent=2))
    return result


def learning_curve(run_dir: Path) -> pd.DataFrame:
    """Validation accuracy after each epoch against the training minutes spent so far (``minutes``, ``val_acc``),
    from the run's metrics.csv (and the part before a resume, when there was one)."""
    parts = [run_dir / "metrics.before-resume.csv", run_dir / "metrics.csv"]
    metrics = pd.concat([pd.read_csv(part) for part in parts if part.is_file()], ignore_index=True)
    if metrics.empty or "val_acc" not in metrics or "epoch_seconds" not in metrics:
        return pd.DataFrame({"minutes": [], "val_acc": []})
    seconds = metrics.dropna(subset=["epoch_seconds"]).groupby("epoch")["epoch_seconds"].last()
    accuracy = metrics.dropna(subset=["val_acc"]).groupby("epoch")["val_acc"].last()
    both = pd.concat([seconds, accuracy], axis=1, join="inner").sort_index()
    return pd.DataFrame({"minutes": both["epoch_seconds"].cumsum().to_numpy() / 60.0,
                         "val_acc": both["val_acc"].to_numpy()})


def training_minutes(curve: pd.DataFrame, fallback: float) -> float:
    """Minutes of training a learning curve records (every epoch's wall clock, across resumes), else ``fallback``."""
    return float(curve["minutes"].iloc[-1]) if len(curve) else fallback


def still_climbing(curve: pd.DataFrame) -> bool:
    """Whether the last epoch gave the best validation accuracy so far (so more budget would likely help)."""
    return len(curve) >= 2 and curve["val_acc"].iloc[-1] >= curve["val_acc"].iloc[:-1].max()


def results_table(results: list[dict]) -> pd.DataFrame:
    """One row per recipe, best validation accuracy first: validation scores, per-class F1, cost, speed; the
    final test column last."""
    rows = []
    for r in results:
        curve = pd.DataFrame(r.get("curve", {"minutes": [], "val_acc": []}))
        row = {k: r[k] for k in ("recipe", "model", "input", "params (M)", "GFLOPs", "epochs", "train minutes",
                                 "train img/s", "infer faces/s")}
        row["train minutes"] = training_minutes(curve, fallback=r["train minutes"])
        row["val acc"] = r["val"]["accuracy"]
        row["val macro-F1"] = r["val"]["macro_f1"]
        for name in EMOTIONS_8:
            if name in r["val"]["per_class_f1"]:
                row[f"F1 {name}"] = r["val"]["per_class_f1"][name]
        row["still climbing"] = ("yes" if still_climbing(curve) else "no") if len(curve) >= 2 else None
        if "test" in r:
            row[TEST_COLUMN] = r["test"]["accuracy"]
        rows.append(row)
    return pd.DataFrame(rows).sort_values("val acc", ascending=False, kind="stable", ignore_index=True)


def write_outputs(table: pd.DataFrame, out: Path, budget: Budget, data: str) -> None:
    """benchmark.md (the table with its budget), benchmark.csv, benchmark.png (accuracy and macro-F1 bars) and
    curves.png (each recipe's validation accuracy against its training minutes: what it did with equal compute,
    and whether it was still climbing when the budget ended)."""
    from vitfer.evaluation.plots import plot_comparison_bars, plot_learning_curves

    note = (f"Budget: {budget.describe()}; data: `{data}`; ranked by the validation split (`val`).\n"
            f"`{TEST_COLUMN}` is the test split, evaluated once after every recipe finished; it chose nothing.\n\n")
    write_text(out / "benchmark.md", note + markdown_table(table) + "\n")
    write_text(out / "benchmark.csv", table.to_csv(index=False))
    bars = {"val acc": table["val acc"].tolist(), "val macro-F1": table["val macro-F1"].tolist()}
    plot_comparison_bars(table["recipe"].tolist(), bars, out / "benchmark.png")
    curves = {recipe: learning_curve(out / recipe) for recipe in table["recipe"]}
    plot_learning_curves({name: (c["minutes"].tolist(), c["val_acc"].tolist()) for name, c in curves.items()
                          if len(c)}, out / "curves.png")
