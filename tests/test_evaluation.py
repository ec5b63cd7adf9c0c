import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score
from torchmetrics.functional.classification import multiclass_calibration_error
from typer.testing import CliRunner

from vitfer.cli import app
from vitfer.errors import DataError, ModelError
from vitfer.preprocess import Preprocess
from vitfer.evaluation.compare import compare_runs
from vitfer.evaluation.evaluate import evaluate, tta_views
from vitfer.evaluation.metrics import classification_metrics
from vitfer.labels import EMOTIONS_7, EMOTIONS_8
from vitfer.models.checkpoint import describe, save_model
from vitfer.models.factory import build_model


@pytest.fixture
def fixed_predictions():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 7, 300)
    logits = rng.normal(size=(300, 7))
    logits[np.arange(300), y_true] += rng.uniform(0, 3, 300)  # better than chance, far from perfect
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y_true, probs


def test_metrics_match_scikit_learn(fixed_predictions):
    y_true, probs = fixed_predictions
    y_pred = probs.argmax(1)
    m = classification_metrics(y_true, probs, EMOTIONS_7)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        assert m[average]["f1"] == pytest.approx(f1_score(y_true, y_pred, average=average))
        assert m[average]["precision"] == pytest.approx(precision_score(y_true, y_pred, average=average))
        assert m[average]["recall"] == pytest.approx(recall_score(y_true, y_pred, average=average))
    per_class_f1 = f1_score(y_true, y_pred, average=None)
    assert [m["per_class"][n]["f1"] for n in EMOTIONS_7] == pytest.approx(per_class_f1.tolist())
    assert [m["per_class"][n]["support"] for n in EMOTIONS_7] == np.bincount(y_true, minlength=7).tolist()
    assert m["confusion"] == confusion_matrix(y_true, y_pred).tolist()
    top2 = np.mean([t in np.argsort(-p)[:2] for t, p in zip(y_true, probs)])
    assert m["top2_accuracy"] == pytest.approx(top2)
    happy = EMOTIONS_7.index("happy")
    assert m["per_class"]["happy"]["accuracy"] == pytest.approx(np.mean((y_true == happy) == (y_pred == happy)))
    ece = multiclass_calibration_error(torch.from_numpy(probs).float(), torch.from_numpy(y_true), 7, n_bins=15)
    assert m["calibration"]["ece"] == pytest.approx(ece.item(), abs=1e-5)
    assert m["worst_class"] == EMOTIONS_7[int(np.argmin(per_class_f1))]
    assert np.allclose(np.array(m["confusion_normalised"]).sum(1), 1.0, atol=1e-3)


def test_tta_views():
    x = torch.rand(2, 1, 20, 20)
    flip = tta_views(x, "flip")
    assert len(flip) == 2 and torch.equal(flip[1], x.flip(-1))
    crops = tta_views(x, "crops")
    assert len(crops) == 10 and all(v.shape == x.shape for v in crops)
    with pytest.raises(ValueError, match="unknown TTA"):
        tta_views(x, "rotate")


@pytest.mark.slow
def test_evaluate_writes_report(tmp_path, tiny_checkpoint, fer_folder):
    results = evaluate(tiny_checkpoint, fer_folder, "test", tta="flip", out_dir=tmp_path / "ev")
    assert results["plain"]["samples"] == 14  # 2 PrivateTest faces x 7 classes
    assert "tta_flip" in results
    for name in ("metrics.json", "report.md", "confusion.png", "reliability.png", "samples.png", "mistakes.png"):
        assert (tmp_path / "ev" / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["plain"]["accuracy"] == pytest.approx(results["plain"]["accuracy"])
    assert "| happy |" in (tmp_path / "ev" / "report.md").read_text()
    assert evaluate(tiny_checkpoint, fer_folder, "val", out_dir=tmp_path / "v")["plain"]["samples"] == 14
    # a second report never replaces the first: it takes the next folder, unless exist_ok says to reuse it
    first = (tmp_path / "v" / "metrics.json").read_bytes()
    assert evaluate(tiny_checkpoint, fer_folder, "test", out_dir=tmp_path / "v")["out_dir"] == str(tmp_path / "v2")
    assert (tmp_path / "v" / "metrics.json").read_bytes() == first
    assert evaluate(tiny_checkpoint, fer_folder, "test", out_dir=tmp_path / "v", exist_ok=True)["out_dir"] == str(
        tmp_path / "v")


@pytest.mark.slow
def test_a_shipped_model_reports_into_runs_not_into_the_package(tmp_path, fer_folder, monkeypatch):
    from vitfer.shipped import ASSETS

    monkeypatch.chdir(tmp_path)
    before = sorted(ASSETS.iterdir())
    results = evaluate("default", fer_folder, "val")
    assert results["out_dir"] == str(tmp_path / "runs" / "eval-default-fer2013-val")
    assert (tmp_path / "runs" / "eval-default-fer2013-val" / "report.md").is_file()
    assert sorted(ASSETS.iterdir()) == before


@pytest.mark.slow
def test_evaluate_lowpass_override_changes_the_inputs(tmp_path, tiny_checkpoint, fer_folder):
    sharp = evaluate(tiny_checkpoint, fer_folder, "val", out_dir=tmp_path / "a")
    smooth = evaluate(tiny_checkpoint, fer_folder, "val", out_dir=tmp_path / "b", lowpass_sigma=3.0)
    assert sharp["lowpass_sigma"] == 0.0 and smooth["lowpass_sigma"] == 3.0
    assert "input low-pass sigma: 3.0" in (tmp_path / "b" / "report.md").read_text()
    assert smooth["plain"]["calibration"] != sharp["plain"]["calibration"]  # other inputs, other probabilities


def save_tiny(tmp_path, labels, name="m.pt"):
    torch.manual_seed(0)
    model = build_model("cnn3", len(labels), img_size=48).eval()
    return save_model(tmp_path / name, model,
                      describe(model, Preprocess(img_size=48, in_channels=3), tuple(labels)))


def test_both_figures_when_the_model_knows_classes_the_data_lacks():
    from vitfer.evaluation.evaluate import EvalData

    model_labels = ("angry", "contempt", "happy")
    data = EvalData(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), np.array([0, 0, 1, 1]), ("angry", "happy"), [0, 2],
                    np.array(["a", "b", "c", "d"]), {}, model_labels)
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.1, 0.6, 0.3]])
    assert data.masked == ["contempt"]
    targets, kept, labels = data.scored(probs, "data")  # contempt masked: faces 2 and 4 fall back to their runner-up
    assert labels == ("angry", "happy") and (kept.argmax(1) == targets).mean() == 0.75
    assert kept.sum(1) == pytest.approx(np.ones(4))
    targets, every, labels = data.scored(probs, "all")  # as predict answers: two faces are called contempt
    assert labels == model_labels and targets.tolist() == [0, 0, 2, 2] and (every.argmax(1) == targets).mean() == 0.5


@pytest.mark.slow
def test_eight_class_model_on_seven_class_data_reports_both_figures(tmp_path, fer_folder, ck_folder):
    eight = save_tiny(tmp_path, EMOTIONS_8)
    every = evaluate(eight, fer_folder, "test", out_dir=tmp_path / "e8")
    assert every["plain"]["labels"] == list(EMOTIONS_8) and every["masked_outputs"] == ["contempt"]
    answers = pd.read_csv(tmp_path / "e8" / "predictions.csv")
    assert (answers["target"] == answers["predicted"]).mean() == pytest.approx(every["plain"]["accuracy"])
    assert "contempt" not in set(answers["target"])
    masked = evaluate(eight, fer_folder, "test", out_dir=tmp_path / "e7", outputs="data")
    assert masked["plain"]["labels"] == list(EMOTIONS_7) and masked["outputs"] == "data"
    assert masked["plain"]["accuracy"] == pytest.approx(every["other_outputs"]["accuracy"])
    assert every["plain"]["accuracy"] == pytest.approx(masked["other_outputs"]["accuracy"])
    assert masked["plain"]["accuracy"] >= every["plain"]["accuracy"]  # masking can only turn mistakes right
    report = (tmp_path / "e8" / "report.md").read_text()
    assert "model outputs for classes this data lacks: contempt" in report and "renormalised" in report
    with pytest.raises(Exception, match="unknown outputs 'some'"):
        evaluate(eight, fer_folder, "test", out_dir=tmp_path / "bad", outputs="some")
    run = tmp_path / "run8"
    run.mkdir()
    (run / "model.pt").write_bytes(eight.read_bytes())
    evaluate(run, fer_folder, "test")
    row = compare_runs([run], tmp_path / "cmp", split="test").iloc[0]  # the table names the masked output
    assert row["outputs the data lacks"] == "contempt" and row["outputs counted"] == "all"
    assert row["accuracy (data outputs)"] == pytest.approx(masked["plain"]["accuracy"])
    seven = save_tiny(tmp_path, EMOTIONS_7, "seven.pt")
    cross = evaluate(seven, ck_folder, "all", out_dir=tmp_path / "ck")
    assert cross["labels_dropped_from_data"] == {"contempt": 10}
    assert cross["plain"]["samples"] == 60


def test_bad_evaluations_are_clear_errors(tmp_path, fer_folder):
    odd = save_tiny(tmp_path, ("contempt", "happy"))
    with pytest.raises(ModelError, match="share fewer than two classes"):
        evaluate(odd, fer_folder, "test", out_dir=tmp_path / "x")
    only_train = tmp_path / "only_train"
    (only_train / "train").mkdir(parents=True)
    for cls in ("happy", "sad"):
        (fer_folder / "train" / cls).rename(only_train / "train" / cls)
    seven = save_tiny(tmp_path, EMOTIONS_7, "seven.pt")
    with pytest.raises(DataError, match="no faces in split 'test'"):
        evaluate(seven, only_train, "test", out_dir=tmp_path / "y")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "missing.pt"), "--data", str(fer_folder)])
    assert result.exit_code == 2 and "missing.pt: no such file or run folder" in result.output


@pytest.mark.slow
def test_compare_tabulates_evaluated_runs(tmp_path, fer_folder):
    runs = []
    for name in ("a", "b"):
        run = tmp_path / name
        run.mkdir()
        save_tiny(run, EMOTIONS_7, "model.pt")
        (run / "metrics.csv").write_text("epoch,epoch_seconds\n0,10.0\n1,12.0\n")
        evaluate(run, fer_folder)  # the default split, val, as compare's
        runs.append(run)
    evaluate(runs[1], fer_folder, "val", tta="flip")  # a second report, in eval-fer2013-val2: the newest counts
    assert (runs[1] / "eval-fer2013-val2" / "metrics.json").is_file()
    with pytest.raises(ModelError, match="none of these runs was evaluated on the 'test' split"):
        compare_runs(runs, tmp_path / "cmp", split="test")
    table = compare_runs(runs, tmp_path / "cmp")
    assert list(table["run"]) == ["a", "b"]
    assert table["s/epoch"].tolist() == [11.0, 11.0]
    assert table["GFLOPs"].gt(0).all() and table["params (M)"].gt(0).all()
    assert table["accuracy tta_flip"].isna().tolist() == [True, False]
    text = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| run | model |" in text and (tmp_path / "cmp" / "comparison.png").is_file()
    pairs = table.attrs["pairs"]  # the two runs on the same faces: their difference, tested
    assert pairs[["A", "B"]].values.tolist() == [["a", "b"]] and "McNemar p" in text
    assert pairs["faces"].iloc[0] == len(pd.read_csv(runs[0] / "eval-fer2013-val" / "predictions.csv")) > 0
    assert pairs["significant"].iloc[0] in ("yes", "no")


@pytest.mark.slow
def test_every_verb_takes_a_run_folder_a_model_file_and_an_onnx_file(tmp_path, fer_folder, tiny_checkpoint,
                                                                      astronaut):
    from vitfer.errors import ExplainError
    from vitfer.explanations.run import explain_images
    from vitfer.models.export import export_onnx
    from vitfer.runtime.predictor import Predictor
    from vitfer.shipped import resolve_model

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(tiny_checkpoint.read_bytes())
    onnx = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx")
    assert resolve_model(run) == run / "model.pt" and resolve_model(onnx) == onnx
    assert resolve_model("default").name == "default.pt" and resolve_model(None) == resolve_model("default")
    with pytest.raises(ModelError, match="model not found: nope"):
        resolve_model("nope")

    by_file, by_run, by_onnx = (Predictor(m).predict(astronaut) for m in (tiny_checkpoint, run, onnx))
    assert by_file[0].probabilities == pytest.approx(by_run[0].probabilities)
    assert by_onnx[0].probabilities == pytest.approx(by_file[0].probabilities, abs=1e-4)

    torch_eval = evaluate(run, fer_folder, out_dir=tmp_path / "e1")
    onnx_eval = evaluate(onnx, fer_folder, out_dir=tmp_path / "e2")
    assert onnx_eval["backend"] == "onnx" and onnx_eval["plain"]["accuracy"] == torch_eval["plain"]["accuracy"]
    with pytest.raises(ModelError, match="test-time augmentation needs the PyTorch model"):
        evaluate(onnx, fer_folder, tta="flip", out_dir=tmp_path / "e3")

    rows = explain_images(run, astronaut, tmp_path / "x", method="gradcam")
    assert len(rows) == 1 and Path(rows[0]["overlay"]).is_file()
    with pytest.raises(ExplainError, match="need the PyTorch model"):
        explain_images(onnx, astronaut, tmp_path / "y", method="gradcam")


def test_evaluation_calibration_and_class_maps_read_the_fold_the_model_trained_on(tmp_path, fer_folder):
    from vitfer.data.readers import read_dataset
    from vitfer.evaluation.evaluate import split_for
    from vitfer.models.checkpoint import load_model

    torch.manual_seed(0)
    model = build_model("cnn3", 7, img_size=48).eval()
    description = describe(model, Preprocess(img_size=48, in_channels=3), EMOTIONS_7,
                           config={"seed": 3, "data": {"folds": 5, "fold": 2, "size": 48, "channels": 1}})
    path = save_model(tmp_path / "fold2.pt", model, description)
    fold = read_dataset(fer_folder, seed=3, folds=5, fold=2)
    expected = sorted(fold.loc[fold["split"] == "test", "item"])
    assert sorted(split_for(load_model(path), fer_folder, "test").items) == expected  # not PrivateTest's 14 faces
    assert expected != sorted(read_dataset(fer_folder).query("split == 'test'")["item"])


def test_evaluate_reports_intervals_and_keeps_each_faces_answer(tmp_path, fer_folder, tiny_checkpoint):
    import pandas as pd

    import vitfer

    results = vitfer.evaluate(tiny_checkpoint, fer_folder, out_dir=tmp_path / "eval")
    plain = results["plain"]
    low, high = plain["intervals"]["accuracy"]
    assert low <= plain["accuracy"] <= high and plain["intervals"]["resamples"] == 1000
    answers = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert len(answers) == plain["samples"]
    assert (answers["target"] == answers["predicted"]).mean() == pytest.approx(plain["accuracy"])
    assert "95 % CI" in (tmp_path / "eval" / "report.md").read_text()


def test_group_audit_known_answers():
    from vitfer.evaluation.groups import group_audit

    targets = np.zeros(400, int)
    predicted = targets.copy()
    predicted[200:300] = 1  # group b: half right; group a: all right
    attributes = pd.DataFrame({"group": ["a"] * 200 + ["b"] * 200, "site": ["x", "y"] * 200})
    attributes.loc[0, "site"] = None
    audit = group_audit(targets, predicted, 2, attributes)
    a, b = audit["group"]["groups"]
    assert (a["group"], a["faces"], a["accuracy"], b["accuracy"]) == ("a", 200, 1.0, 0.5)
    gap = audit["group"]["largest_gap"]
    assert gap["between"] == ["a", "b"] and gap["accuracy"] == pytest.approx(0.5) and gap["significant"]
    assert gap["accuracy_interval"][0] < 0.5 < gap["accuracy_interval"][1]
    assert audit["site"]["faces_without_a_group"] == 1
    assert not audit["site"]["largest_gap"]["significant"]  # x and y hold the same mix of faces


def test_evaluate_audits_groups_joined_by_file_name(tmp_path, fer_folder, tiny_checkpoint):
    faces = sorted(fer_folder.glob("test/*/PublicTest_*.png"))
    rows = ["file,gender"] + [f"photos/{face.name},{'f' if i % 2 else 'm'}" for i, face in enumerate(faces[:-1])]
    (tmp_path / "groups.csv").write_text("\n".join(rows) + "\n")
    results = evaluate(tiny_checkpoint, fer_folder, "val", out_dir=tmp_path / "eval", groups=tmp_path / "groups.csv")
    answers = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    answers["name"] = answers["item"].map(lambda item: Path(item).name)
    gender = dict(row.split(",") for row in rows[1:])
    answers["gender"] = answers["name"].map({Path(k).name: v for k, v in gender.items()})
    audit = results["groups"]["gender"]
    assert audit["faces_without_a_group"] == 1
    for group in audit["groups"]:
        mine = answers[answers["gender"] == group["group"]]
        assert group["faces"] == len(mine)
        assert group["accuracy"] == pytest.approx((mine["target"] == mine["predicted"]).mean())
    assert "## Per-group audit" in (tmp_path / "eval" / "report.md").read_text()
    (tmp_path / "other.csv").write_text("file,gender\nnobody.png,f\n")
    with pytest.raises(DataError, match="names none of the 14 evaluated faces"):
        evaluate(tiny_checkpoint, fer_folder, "val", out_dir=tmp_path / "e2", groups=tmp_path / "other.csv")
    result = CliRunner().invoke(app, ["evaluate", str(tiny_checkpoint), "--data", str(fer_folder),
                                      "--groups", str(tmp_path / "groups.csv"), "--out", str(tmp_path / "e3")])
    assert result.exit_code == 0 and "gender: f " in result.output and "largest gap" in result.output
