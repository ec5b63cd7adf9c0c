"""``vitfer compare RUN ...``: one table over models, like the results table of a paper, plus a bar chart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from vitfer.evaluation.plots import plot_comparison_bars
from vitfer.evaluation.significance import paired_difference
from vitfer.models.checkpoint import count_parameters, load_model
from vitfer.shipped import resolve_model
from vitfer.errors import ModelError


def forward_gflops(model: torch.nn.Module, channels: int, size: int) -> float:
    """Forward GFLOPs of one image (multiply-add = 2 FLOPs), counted by torch's FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, channels, size, size))
    return counter.get_total_flops() / 1e9


def evaluation_folder(run: Path, split: str) -> Path | None:
    """The newest ``eval-*-<split>[N]/`` that ``vitfer evaluate`` wrote in a run folder."""
    own = re.compile(rf"eval-.+-{re.escape(split)}\d*")
    found = sorted((p for p in run.glob("eval-*/metrics.json") if own.fullmatch(p.parent.name)),
                   key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def find_evaluation(run: Path, split: str) -> dict | None:
    """The newest evaluation of a run folder on ``split`` (its metrics.json), or None."""
    folder = evaluation_folder(run, split)
    return json.loads((folder / "metrics.json").read_text()) if folder is not None else None


def pairwise_differences(runs: list[str | Path], split: str) -> pd.DataFrame:
    """For every pair of runs evaluated on the same faces of ``split``: the differences of accuracy and macro-F1
    with their paired bootstrap intervals, McNemar's exact test, and whether the difference is significant."""
    answers = {}
    for run in runs:
        run = Path(run)
        folder = evaluation_folder(run if run.is_dir() else resolve_model(run).parent, split)
        if folder is not None and (folder / "predictions.csv").is_file():
            answers[run.name] = pd.read_csv(folder / "predictions.csv", dtype=str, keep_default_na=False)
    rows, names = [], list(answers)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            left, right = answers[a], answers[b]
            both = left.merge(right, on="item", suffixes=("_a", "_b"))
            if len(both) != len(left) or len(both) != len(right) or (both["target_a"] != both["target_b"]).any():
                continue  # not the same faces with the same labels: nothing to pair
            # class names to codes over both models' answers (their label sets may differ, e.g. 7 and 8 classes)
            classes = sorted(set(both["target_a"]) | set(both["predicted_a"]) | set(both["predicted_b"]))
            code = {name: k for k, name in enumerate(classes)}
            d = paired_difference(both["target_a"].map(code).to_numpy(), both["predicted_a"].map(code).to_numpy(),
                                  both["predicted_b"].map(code).to_numpy(), len(classes))
            rows.append({"A": a, "B": b, "faces": len(both),
                         "accuracy A-B (95 % CI)": f"{d['accuracy']:+.4f} ({d['accuracy_interval'][0]:+.4f}, "
                                                   f"{d['accuracy_interval'][1]:+.4f})",
                         "macro-F1 A-B (95 % CI)": f"{d['macro_f1']:+.4f} ({d['macro_f1_interval'][0]:+.4f}, "
                                                   f"{d['macro_f1_interval'][1]:+.4f})",
                         "only A right": d["only_a"], "only B right": d["only_b"],
                         "McNemar p": f"{d['mcnemar_p']:.3g}", "significant": "yes" if d["significant"] else "no"})
    return pd.DataFrame(rows)


def run_row(run: str | Path, split: str = "val") -> dict:
    """One line of the comparison table for a run folder (or a checkpoint file)."""
    run = Path(run)
    checkpoint = resolve_model(run)
    folder = run if run.is_dir() else checkpoint.parent
    loaded = load_model(checkpoint)
    row = {"run": folder.name, "model": loaded.name,
           "params (M)": count_parameters(loaded.model) / 1e6,
           "GFLOPs": forward_gflops(loaded.model, loaded.preprocess.in_channels, loaded.preprocess.img_size),
           "input": f"{loaded.preprocess.img_size}px"}
    evaluation = find_evaluation(folder, split)
    if evaluation is not None:
        plain = evaluation["plain"]
        row.update({"accuracy": plain["accuracy"], "macro-F1": plain["macro"]["f1"],
                    "weighted-F1": plain["weighted"]["f1"],
                    "best class": f"{plain['best_class']} ({plain['per_class'][plain['best_class']]['f1']:.2f})",
                    "worst class": f"{plain['worst_class']} ({plain['per_class'][plain['worst_class']]['f1']:.2f})"})
        for key, value in evaluation.items():
            if key.startswith("tta_"):
                row[f"accuracy {key}"] = value["accuracy"]
        if evaluation.get("masked_outputs"):  # the model knows classes the data lacks: say which figure this is
            other = evaluation["other_outputs"]
            row["outputs counted"] = evaluation["outputs"]
            row["outputs the data lacks"] = ", ".join(evaluation["masked_outputs"])
            row[f"accuracy ({other['outputs']} outputs)"] = other["accuracy"]
    metrics_csv = folder / "metrics.csv"
    if metrics_csv.is_file():
        table = pd.read_csv(metrics_csv)
        if "epoch_seconds" in table:
            row["s/epoch"] = float(table["epoch_seconds"].dropna().mean())
            row["epochs"] = int(table["epoch_seconds"].notna().sum())
    return row


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table; floats to 4 significant digits, missing cells empty."""
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def compare_runs(runs: list[str | Path], out_dir: str | Path, split: str = "val") -> pd.DataFrame:
    """Write comparison.md (a Markdown table) and comparison.png (bars) for the given runs."""
    if not runs:
        raise ModelError("give at least one run folder or checkpoint to compare")
    table = pd.DataFrame([run_row(run, split) for run in runs])
    if "accuracy" not in table:
        raise ModelError(f"none of these runs was evaluated on the {split!r} split; run `vitfer evaluate RUN "
                              f"--data PATH --split {split}` first (or compare --split with a split they have)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    note = (f"Figures on the `{split}` split from each run's `vitfer evaluate` output; "
            "an empty cell means that run has not been evaluated on it.\n\n")
    text = note + markdown_table(table) + "\n"
    pairs = pairwise_differences(runs, split)
    if not pairs.empty:
        text += ("\nWhether each difference is real: paired bootstrap over the faces both models were tested on "
                 "(1,000 resamples, seeded) and McNemar's exact test; 'significant' when the accuracy interval "
                 "excludes 0.\n\n" + markdown_table(pairs) + "\n")
    table.attrs["pairs"] = pairs
    (out_dir / "comparison.md").write_text(text)
    scored = table.dropna(subset=["accuracy"]) if "accuracy" in table else table.iloc[0:0]
    if not scored.empty:
        plot_comparison_bars(scored["run"].tolist(), {k: scored[k].tolist() for k in ("accuracy", "macro-F1",
                                                                                       "weighted-F1")},
                             out_dir / "comparison.png")
    return table
