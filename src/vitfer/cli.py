"""The `vitfer` command: thin verbs over the Python API."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand

from vitfer import api, checks
from vitfer.shipped import SHIPPED_MODELS

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(help="vitfer: facial expression recognition with Vision Transformers.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  context_settings=HELP_OPTIONS)
data_app = typer.Typer(help="Inspect, merge and cache data sets.", no_args_is_help=True, context_settings=HELP_OPTIONS)
app.add_typer(data_app, name="data")


def show_version(value: bool) -> None:
    if value:
        from vitfer.version import __version__

        typer.echo(f"vitfer {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(version: Annotated[Optional[bool], typer.Option("--version", callback=show_version, is_eager=True,
                                                                 help="print vitfer's version and exit")] = None,
                 ) -> None:
    """vitfer: facial expression recognition with Vision Transformers."""


#: The face-detection options, one definition for every verb that finds faces (predict, explain, serve).
DataDetectorOption = Annotated[Optional[str], typer.Option(
    "--detector", help="crop whole photos of --data to their largest face as predict does: yunet | ssd | haar | "
                       "mtcnn | none (the images are face crops); default: as the model was trained")]
DetectorOption = Annotated[str, typer.Option(help="face detector: yunet (shipped; the default) | haar | ssd | mtcnn "
                                                   "(pip install 'vitfer\\[mtcnn]') | none (each image is already one "
                                                   "face crop)")]
DetectorModelOption = Annotated[Optional[Path], typer.Option(help="a local YuNet .onnx or SSD .pb file instead of "
                                                                  "the shipped or downloaded one")]
NoDetectOption = Annotated[bool, typer.Option("--no-detect", hidden=True, help="the same as --detector none")]
ThresholdOption = Annotated[float, typer.Option(help="keep faces the detector scores at least this (0-1)")]
MinFaceOption = Annotated[int, typer.Option(help="smallest face side in pixels")]
DeviceOption = Annotated[str, typer.Option(help="cpu | cuda | cuda:N (ONNX Runtime's CUDA provider from "
                                                "onnxruntime-gpu; PyTorch on CUDA for .pt models)")]
#: One split option and one default (val) for every verb that reads a split.
SHIPPED = ", ".join(SHIPPED_MODELS)  # the names --model takes besides files
SPLIT_HELP = ("val | test | train | all. FER2013: val = PublicTest, test = PrivateTest (both live in its test/ "
              "folder, told apart by file name); other sets: their val/ and test/ folders")


def fail(message: str) -> None:
    """Print a one-line error and exit 2 (no traceback)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def user_errors() -> tuple[type[Exception], ...]:
    """The exception types that mean bad input rather than a bug (printed as one line, exit 2)."""
    from vitfer.errors import VitferError

    return (VitferError, FileNotFoundError)


@contextmanager
def checked() -> Iterator[None]:
    """Around argument checks that need no heavy import (``vitfer.checks``): a wrong path fails at once."""
    try:
        yield
    except checks.ArgumentError as err:
        fail(str(err))


def run_guarded(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except user_errors() as err:
        fail(str(err))


@data_app.command("stats")
def data_stats(
    path: Annotated[Path, typer.Argument(help="FER2013 folder or CSV, or any class-folder data set")],
    kind: Annotated[str, typer.Option(help="auto (told apart by their files) | fer2013-csv | fer2013-folder | "
                                           "manifest | ferplus | affectnet | affectnet-folders | rafdb | ckplus | "
                                           "jaffe | folders")] = "auto",
    plot: Annotated[Optional[Path], typer.Option(help="write a class-distribution PNG here")] = None,
    duplicates: Annotated[bool, typer.Option(help="decode all images: count pixel-identical twins across splits "
                                                   "and compare sharpness between splits")] = True,
    on_error: Annotated[str, typer.Option(help="raise | skip (skips are counted and listed)")] = "raise",
) -> None:
    """Class counts per split, image sizes, duplicates across splits and sharpness per split."""
    with checked():
        checks.existing(path, "data set")
    typer.echo(str(run_guarded(api.data_stats, path, kind=kind, duplicates=duplicates, on_error=on_error,
                               plot=plot)))


@data_app.command("merge")
def data_merge(
    paths: Annotated[list[Path], typer.Argument(help="data sets to merge (FER2013, CK+48, AffectNet folders, ...)")],
    out: Annotated[Path, typer.Option(help="merged manifest CSV (item, label, source, split)")],
    num_classes: Annotated[int, typer.Option(help="7 or 8 (8 keeps contempt)")] = 7,
    seed: Annotated[int, typer.Option(help="seed of the split for sets without split folders")] = 0,
    on_error: Annotated[str, typer.Option(help="raise | skip")] = "raise",
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="replace an existing --out file")] = False,
) -> None:
    """Merge several data sets into one manifest over the 7- or 8-class label set."""
    with checked():
        for p in paths:
            checks.existing(p, "data set")
    merged = run_guarded(api.data_merge, paths, out, num_classes=num_classes, seed=seed, on_error=on_error,
                         exist_ok=exist_ok)
    typer.echo(merged.groupby(["source", "split"]).size().to_string())
    typer.echo(f"wrote {len(merged)} rows to {out}; skipped {len(merged.attrs.get('skipped', []))}")


@data_app.command("cache")
def data_cache(
    path: Annotated[Path, typer.Argument(help="data set to decode")],
    out: Annotated[Path, typer.Option(help="cache file to write (.pt)")],
    size: Annotated[int, typer.Option(help="side of the cached faces in pixels")] = 48,
    channels: Annotated[int, typer.Option(help="1 = grayscale, 3 = colour")] = 1,
    num_classes: Annotated[int, typer.Option(help="7 or 8")] = 7,
    on_error: Annotated[str, typer.Option(help="raise | skip")] = "raise",
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="replace an existing --out file")] = False,
) -> None:
    """Decode every face once into a uint8 tensor file that later runs load in seconds."""
    with checked():
        checks.existing(path, "data set")
    import time

    start = time.perf_counter()
    cache = run_guarded(api.data_cache, path, out, size=size, channels=channels, num_classes=num_classes,
                        on_error=on_error, exist_ok=exist_ok)
    typer.echo(f"cached {len(cache)} faces {tuple(cache.images.shape[1:])} in {time.perf_counter() - start:.1f}s "
               f"-> {out} (skipped {len(cache.skipped)})")


@app.command("models")
def models_list(pattern: Annotated[Optional[str], typer.Argument(help="wildcard filter of architectures, e.g. "
                                                                      "'deit*'")] = None,
                all_: Annotated[bool, typer.Option("--all", help="also list timm's ViT/DeiT architectures")] = False,
                ) -> None:
    """The shipped models with their figures; with --all or a pattern, the architectures `train` takes."""
    if pattern is None and not all_:
        from vitfer.runtime.backends import shipped_models

        typer.echo("shipped models (--model NAME):")
        for name, summary in run_guarded(shipped_models).items():
            typer.echo(f"  {name:10s} {summary}")
        typer.echo("architectures to train: vitfer models --all (or a pattern, e.g. vitfer models 'deit*')")
        return
    found = run_guarded(api.models, pattern)
    if found["shipped"]:
        typer.echo("shipped models (--model NAME):")
        for name, summary in found["shipped"].items():
            typer.echo(f"  {name:10s} {summary}")
    if "missing" in found:
        typer.echo(f"architectures: {found['missing']}")
        return
    if pattern is None:
        typer.echo("architectures (vitfer train --model NAME):")
    for name, description in found["architectures"].items():
        typer.echo(f"{name:40s} {description}".rstrip())


@app.command("train")
def train_cmd(
    config: Annotated[Optional[Path], typer.Option(help="YAML recipe (see configs/)")] = None,
    data: Annotated[Optional[str], typer.Option(help="data path (overrides data.path)")] = None,
    model: Annotated[Optional[str], typer.Option(help="model name (overrides model.name)")] = None,
    pretrained: Annotated[Optional[str], typer.Option(help="local weights file, or 'hub' to download by name")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="overrides train.epochs")] = None,
    name: Annotated[Optional[str], typer.Option(help="run name: results go to runs/<name>/")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Lightning checkpoint to resume from (e.g. runs/x/checkpoints/last.ckpt)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="any override, e.g. --set train.lr=3e-4")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="show Lightning's model summary, tips and library "
                                                             "warnings")] = False,
) -> None:
    """Train a model; writes runs/<name>/ (config, metrics.csv, curves.png, checkpoints, model.pt)."""
    with checked():
        checks.existing(config, "--config")
        checks.existing(data, "--data")
        checks.existing(resume, "--resume")
        if pretrained != "hub":
            checks.existing(pretrained, "--pretrained weights")
    try:
        run_dir = api.train(config, data=data, model=model, epochs=epochs, name=name,
                        pretrained=True if pretrained == "hub" else pretrained, resume=resume,
                        overrides=set_, verbose=verbose)
    except user_errors() as err:
        fail(str(err))
    if os.environ.get("LOCAL_RANK", "0") == "0":  # the other processes of a distributed run say nothing
        typer.echo(f"run folder: {run_dir.resolve()}")


@app.command("predict")
def predict_cmd(
    source: Annotated[Optional[list[str]], typer.Argument(
        help="image(s), folder, glob, video file, webcam index (e.g. 0), or 'example' (a bundled photo)",
        show_default="example")] = None,
    model: Annotated[str, typer.Option(help=f"checkpoint (.pt/.ckpt), exported .onnx, or a shipped model: {SHIPPED}")] = "default",
    detector: DetectorOption = "yunet",
    detector_model: DetectorModelOption = None,
    no_detect: NoDetectOption = False,
    threshold: ThresholdOption = 0.5,
    min_face: MinFaceOption = 24,
    backend: Annotated[str, typer.Option(help="auto (ONNX Runtime: the shipped ONNX file, or a .pt exported once) "
                                              "| onnx | onnx-int8 | torch (research floor)")] = "auto",
    out: Annotated[Optional[str], typer.Option(help="folder for annotated images / video")] = "runs/predict",
    no_save: Annotated[bool, typer.Option("--no-save", help="write no annotated copies (rows, --save, only)")] = False,
    save: Annotated[Optional[Path], typer.Option(help="rows, one per face: a .csv, .json or .jsonl (JSON Lines) file")] = None,
    smoothing: Annotated[str, typer.Option(help="video smoothing: ema | window | none")] = "ema",
    bars: Annotated[bool, typer.Option(help="draw probability bars")] = False,
    show: Annotated[bool, typer.Option(help="show a live window (needs a display)")] = False,
    max_frames: Annotated[Optional[int], typer.Option(help="stop after this many frames")] = None,
    on_error: Annotated[str, typer.Option(help="skip (report each unreadable image, go on, exit 1 at the end) "
                                               "| raise (stop at the first)")] = "skip",
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="reuse --out and replace an existing --save file "
                                                               "(else runs/predict2, ... and a refusal)")] = False,
    workers: Annotated[Optional[int], typer.Option(help="processes for a folder, glob or list of images (one thread "
                                                        "each); default: one per core (4 at most) from 128 images "
                                                        "on, else 1", show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for the model (default: the library's)")] = None,
    device: DeviceOption = "cpu",
    min_confidence: Annotated[float, typer.Option(help="label a face 'uncertain' when its calibrated top probability "
                                                       "is below this (0-1)")] = 0.0,
    video_format: Annotated[str, typer.Option(help="annotated video: mp4 (H.264 where OpenCV has it, else MPEG-4, "
                                                   "which browsers do not play) | webm (VP8, plays in browsers)")] = "mp4",
    json_lines: Annotated[bool, typer.Option("--json", help="print one JSON object per face to stdout (JSON "
                                                             "Lines, for piping); everything else goes to stderr")] = False,
) -> None:
    """Find every face, classify its emotion, print it and save annotated output."""
    with checked():
        checks.model_reference(model)
        checks.existing(detector_model, "--detector-model")
    from vitfer.runtime.rows import face_rows
    from vitfer.runtime.sources import Source

    source = run_guarded(Source.of, source or ["example"])  # classified once, here, for the whole call

    def print_rows(result) -> None:
        for row in face_rows(result):
            typer.echo(json.dumps(row))

    def say(line: str) -> None:
        typer.echo(line, err=json_lines)

    try:
        summary = api.predict(source, model=model, detector="none" if no_detect else detector,
                              detector_model=detector_model, threshold=threshold, min_face=min_face,
                              backend=backend, out=None if no_save else out, save=save, smoothing=smoothing,
                              bars=bars, show=show, min_confidence=min_confidence, video_format=video_format,
                              max_frames=max_frames, echo=say, on_error=on_error, exist_ok=exist_ok,
                              progress=True, on_result=print_rows if json_lines else None, workers=workers,
                              threads=threads, device=device)
    except user_errors() as err:
        fail(str(err))
    say(str(summary))
    if summary.errors:
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    checkpoint: Annotated[Optional[str], typer.Argument(help=f"vitfer checkpoint (.pt or .ckpt), run folder, or a "
                                                             f"shipped model ({SHIPPED})")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output .onnx (default: beside the checkpoint; "
                                                     "./NAME.onnx for a shipped model")] = None,
    format: Annotated[str, typer.Option(help="onnx")] = "onnx",
    quantize: Annotated[bool, typer.Option(help="also write a dynamic int8 model (.int8.onnx)")] = False,
    check_data: Annotated[Optional[str], typer.Option(help="labelled data: report each file's accuracy there")] = None,
    check_split: Annotated[str, typer.Option(help=f"split of --check-data: {SPLIT_HELP}")] = "val",
    web: Annotated[Optional[Path], typer.Option(help="write a static folder that runs detection and classification "
                                                     "in the visitor's browser (serve it with any static server)")]
    = None,
    model: Annotated[str, typer.Option(help=f"with --web: a shipped model ({SHIPPED}) or an .onnx file")] = "default",
    ort_web: Annotated[Optional[Path], typer.Option(help="with --web: a local copy of the onnxruntime-web npm "
                                                         "package (else fetched by name once, checked, cached)")]
    = None,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="replace an earlier export (with --web: the files of "
                                                               "a folder that holds some)")] = False,
) -> None:
    """Export a checkpoint to ONNX with a dynamic batch axis (--check-data measures what int8 costs), or, with
    --web DIR, a static in-browser page of a shipped model."""
    with checked():
        if web is None:
            checks.model_reference(checkpoint, "checkpoint")
        checks.existing(check_data, "--check-data")
        checks.existing(ort_web, "--ort-web")
    if format != "onnx":
        fail(f"unknown export format {format!r}; vitfer exports onnx")
    result = run_guarded(api.export, checkpoint, out, quantize=quantize, check_data=check_data,
                         check_split=check_split, web=web, model=model, ort_web=ort_web, exist_ok=exist_ok)
    for written in result["files"]:
        typer.echo(f"wrote {written}")
    if web is not None:
        typer.echo(f"serve it with any static file server, e.g.: python -m http.server -d {web} 8080, then open "
                   "http://localhost:8080/")
    if result["check"]:
        rows = result["check"]
        typer.echo(f"| model | {check_split} faces | accuracy | same prediction as PyTorch |\n|---|---|---|---|")
        for row in rows:
            typer.echo(f"| {row['model']} | {row['faces']} | {100 * row['accuracy']:.2f} % | "
                       f"{100 * row['agrees_with_pytorch']:.2f} % |")


@app.command("evaluate")
def evaluate_cmd(
    checkpoint: Annotated[str, typer.Argument(help=f"run folder (uses its model.pt), checkpoint file, or a shipped model ({SHIPPED})")],
    data: Annotated[str, typer.Option(help="data set to test on (FER2013 folder/CSV or class folders)")],
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "val",
    tta: Annotated[str, typer.Option(help="none | flip | crops (reported beside the plain figure)")] = "none",
    out: Annotated[Optional[Path], typer.Option(help="report folder (default: <run>/eval-<data>-<split>, "
                                                        "runs/eval-<model>-<data>-<split> for a shipped model; a new "
                                                        "one, ...-val2, when it holds a report)")] = None,
    on_error: Annotated[str, typer.Option(help="raise | skip unreadable images")] = "raise",
    lowpass: Annotated[Optional[float], typer.Option(help="override the model's input low-pass sigma (48-px face "
                                                          "pixels; 0 = off) to measure its effect")] = None,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="write into --out even when it holds a report")] = False,
    device: DeviceOption = "cpu",
    outputs: Annotated[str, typer.Option(help="when the model knows classes the data lacks: all = count every "
                                              "output, as predict answers; data = only the data's classes, "
                                              "renormalised (both are reported; this one is primary)")] = "all",
    groups: Annotated[Optional[Path], typer.Option(help="CSV of attributes per face (column file, then one "
                                                        "column per attribute): accuracy and macro-F1 per group "
                                                        "and the largest gap")] = None,
    detector: DataDetectorOption = None,
) -> None:
    """Accuracy, per-class P/R/F1, confusion matrix, top-2, calibration, sample grids and a Markdown report."""
    with checked():
        checks.model_reference(checkpoint, "checkpoint")
        checks.existing(data, "--data")
        if groups is not None:
            checks.existing(groups, "--groups")
    results = run_guarded(api.evaluate, checkpoint, data, split=split, tta=tta, out_dir=out, on_error=on_error,
                          lowpass_sigma=lowpass, exist_ok=exist_ok, device=device, outputs=outputs, groups=groups,
                          detector=detector)
    for key, value in results.items():
        if key == "plain" or key.startswith("tta_"):
            ci = value["intervals"]
            accuracy, f1 = ci["accuracy"], ci["macro_f1"]
            typer.echo(f"{key:>10}: accuracy {value['accuracy']:.4f} [{accuracy[0]:.4f}, {accuracy[1]:.4f}]  "
                       f"macro-F1 {value['macro']['f1']:.4f} [{f1[0]:.4f}, {f1[1]:.4f}]  "
                       f"top-2 {value['top2_accuracy']:.4f}  ECE {value['calibration']['ece']:.4f}  "
                       f"({value['samples']} faces; [95 % bootstrap interval])")
    if results["labels_dropped_from_data"]:
        typer.echo(f"left out (labels the model does not know): {results['labels_dropped_from_data']}")
    if results["face_crops"] != "none":
        typer.echo(f"photos cropped to their largest face ({results['face_crops']}); no face found in "
                   f"{results['photos_without_a_face']} (kept whole)")
    if results["masked_outputs"]:
        other = results["other_outputs"]
        typer.echo(f"model outputs this data lacks: {', '.join(results['masked_outputs'])}; figures above count "
                   f"{results['outputs']} outputs; with {other['outputs']}: accuracy {other['accuracy']:.4f}  "
                   f"macro-F1 {other['macro_f1']:.4f}")
    for attribute, entry in results.get("groups", {}).items():
        gap = entry.get("largest_gap")
        summary = ", ".join(f"{g['group']} {g['accuracy']:.4f} ({g['faces']})" for g in entry["groups"])
        typer.echo(f"{attribute}: {summary}" + (f"; largest gap {gap['accuracy']:+.4f} [{gap['accuracy_interval'][0]:+.4f}, "
                                                f"{gap['accuracy_interval'][1]:+.4f}]" if gap else ""))
    typer.echo(f"report: {Path(results['out_dir']) / 'report.md'}")


@app.command("teacher-targets")
def teacher_targets_cmd(
    teachers: Annotated[list[str], typer.Argument(help="trained models (run folders, model files, shipped names)")],
    data: Annotated[str, typer.Option(help="the data set whose training faces the students will learn")],
    out: Annotated[Path, typer.Option(help=".npz file to write (never over an existing one)")],
    num_classes: Annotated[int, typer.Option(help="the students' classes: 7, or 8 with contempt")] = 7,
) -> None:
    """Store the teachers' mean probabilities for every training face, for a student's data.teacher_targets."""
    with checked():
        checks.existing(data, "--data")
        for teacher in teachers:
            checks.model_reference(teacher, "teacher")
    written = run_guarded(api.teacher_targets, teachers, data, out, num_classes=num_classes)
    typer.echo(f"wrote {written}; train with --set data.teacher_targets={written}")


@app.command("calibrate")
def calibrate_cmd(
    checkpoint: Annotated[str, typer.Argument(help="run folder (uses its model.pt), checkpoint file, or a shipped model")],
    data: Annotated[str, typer.Option(help="labelled data set whose validation split fits the temperature")],
    out: Annotated[Path, typer.Option(help="calibrated model file to write")],
    split: Annotated[str, typer.Option(help="split to fit on: val (never the test split)")] = "val",
    detector: DataDetectorOption = None,
) -> None:
    """Fit a temperature on a validation split (confidences become probabilities) and write the calibrated model."""
    with checked():
        checks.model_reference(checkpoint, "checkpoint")
        checks.existing(data, "--data")
    record = run_guarded(api.calibrate, checkpoint, data, out, split=split, detector=detector)
    typer.echo(f"temperature {record['temperature']:.3f} fitted on {record['fitted_on']} ({record['faces']} faces): "
               f"ECE {record['ece_before']:.4f} -> {record['ece_after']:.4f}, "
               f"NLL {record['nll_before']:.4f} -> {record['nll_after']:.4f}")
    typer.echo(f"wrote {out}")


@app.command("explain")
def explain_cmd(
    checkpoint: Annotated[str, typer.Argument(help="checkpoint, run folder, or 'default'")],
    source: Annotated[Optional[str], typer.Argument(help="image, folder or glob (omit with --data)")] = None,
    method: Annotated[str, typer.Option(help="rollout (ViTs) | gradcam | gradcam++ | xgradcam | layercam | "
                                             "eigencam | scorecam (CNNs and ViTs, pytorch-grad-cam)")] = "rollout",
    out: Annotated[Path, typer.Option(help="output folder (runs/explain2, ... when taken)")] = Path("runs/explain"),
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="write into --out even when it holds results")] = False,
    detector: Annotated[Optional[str], typer.Option(help="face detector: yunet (the default for images) | haar | "
                                                          "ssd | mtcnn | none; with --data, crops its whole photos "
                                                          "(default there: as the model was trained)")] = None,
    detector_model: DetectorModelOption = None,
    no_detect: NoDetectOption = False,
    threshold: ThresholdOption = 0.5,
    min_face: MinFaceOption = 24,
    data: Annotated[Optional[str], typer.Option(help="data set for per-class mean maps")] = None,
    split: Annotated[str, typer.Option(help=f"split for per-class mean maps: {SPLIT_HELP}")] = "val",
    per_class: Annotated[int, typer.Option(help="faces per class for the mean maps")] = 64,
) -> None:
    """Overlays of where the model looks, per face; or per-class mean maps over a data split (--data)."""
    with checked():
        checks.model_reference(checkpoint, "checkpoint")
        checks.existing(data, "--data")
        checks.existing(detector_model, "--detector-model")
    if source is not None:
        from vitfer.runtime.sources import Source

        run_guarded(Source.of, source)
    rows = run_guarded(api.explain, checkpoint, source, data=data, out=out, exist_ok=exist_ok, method=method, split=split,
                       per_class=per_class, detector="none" if no_detect else detector, threshold=threshold,
                       detector_model=detector_model, min_face=min_face)
    if data is not None:
        typer.echo(f"wrote {rows}")
        return
    for row in rows:
        typer.echo(f"{row['image']}: " + (row["note"] if row.get("faces") == 0 else
                                          f"face {row['face']} {row['label']} {row['confidence']:.0%} -> {row['overlay']}"))


@app.command("compare")
def compare_cmd(
    runs: Annotated[list[Path], typer.Argument(help="run folders (evaluated with `vitfer evaluate`)")],
    split: Annotated[str, typer.Option(help=f"which evaluation to tabulate: {SPLIT_HELP}")] = "val",
    out: Annotated[Path, typer.Option(help="folder for comparison.md and comparison.png (runs/compare2, ... when "
                                           "taken)")] = Path("runs/compare"),
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="write into --out even when it holds results")] = False,
) -> None:
    """One Markdown table over models (params, FLOPs, accuracy, F1, best/worst class, time/epoch) + bar chart."""
    with checked():
        for run in runs:
            checks.existing(run, "run folder")
    table = run_guarded(api.compare, runs, split=split, out=out, exist_ok=exist_ok)
    typer.echo((Path(table.attrs["out"]) / "comparison.md").read_text())


@app.command("benchmark")
def benchmark_cmd(
    recipes: Annotated[list[Path], typer.Argument(help="YAML recipes, e.g. configs/compare/*.yaml (run in order)")],
    data: Annotated[str, typer.Option(help="the data set every recipe trains and is evaluated on")],
    budget_minutes: Annotated[Optional[float], typer.Option(help="minutes of this machine per recipe "
                                                                 "(turned into whole epochs per recipe)")] = None,
    budget_epochs: Annotated[Optional[int], typer.Option(help="epochs per recipe")] = None,
    out: Annotated[Path, typer.Option(help="benchmark folder; run the same command again to resume")] = Path(
        "runs/benchmark"),
    final_test: Annotated[bool, typer.Option(help="evaluate the test split once, after all recipes")] = True,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override for every recipe")] = None,
) -> None:
    """Train recipes under one budget, evaluate each, write benchmark.md/.csv/.png (resumes when run again)."""
    with checked():
        for r in recipes:
            checks.existing(r, "recipe")
        checks.existing(data, "--data")
    run_guarded(api.benchmark, recipes, data, budget_minutes=budget_minutes, budget_epochs=budget_epochs, out=out,
                final_test=final_test, overrides=list(set_ or []))
    typer.echo((out / "benchmark.md").read_text())


@app.command("serve")
def serve_cmd(
    model: Annotated[str, typer.Option(help=f"checkpoint, .onnx, or a shipped model: {SHIPPED}")] = "default",
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    detector: DetectorOption = "yunet",
    detector_model: DetectorModelOption = None,
    threshold: ThresholdOption = 0.5,
    min_face: MinFaceOption = 24,
    backend: Annotated[str, typer.Option(help="auto (ONNX Runtime: the shipped ONNX file, or a .pt exported once) "
                                              "| onnx | onnx-int8 | torch (research floor)")] = "auto",
    max_upload_mb: Annotated[float, typer.Option(help="largest accepted upload")] = 8.0,
    max_concurrent: Annotated[int, typer.Option(help="inferences at once; more requests queue")] = 2,
    max_queue: Annotated[int, typer.Option(help="waiting requests before answering 503")] = 32,
    max_pixels: Annotated[int, typer.Option(help="largest image (width x height) accepted; checked from the "
                                                 "header, before decoding")] = 4096 * 4096,
    read_timeout: Annotated[float, typer.Option(help="seconds a client may take to send an upload (then 408)")] = 15.0,
    cors: Annotated[Optional[list[str]], typer.Option("--cors-origin", "--cors",
                                                      help="a web page origin allowed to call this server, e.g. "
                                                           "http://localhost:3000 (repeatable); by default only "
                                                           "the server's own page")] = None,
    workers: Annotated[int, typer.Option(help="server processes sharing the port, each with its own model")] = 1,
    device: DeviceOption = "cpu",
) -> None:
    """HTTP API (POST /predict, GET /health, GET /model, WebSocket /ws, docs at /docs) and a webcam page at /."""
    with checked():
        checks.model_reference(model)
        checks.existing(detector_model, "--detector-model")
    from vitfer.serving.limits import ServeLimits

    limits = ServeLimits(max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_concurrent=max_concurrent,
                         max_queue=max_queue, max_pixels=max_pixels, read_timeout=read_timeout)
    run_guarded(api.serve, None if model == "default" else model, host, port, detector, backend, limits, cors,
                detector_model, workers, device, threshold, min_face)


class HelpWithoutTypeTags(TyperCommand):
    """Help that names each option and says what it does, without ``<str>``/``<float>`` type tags."""

    def format_help(self, ctx, formatter) -> None:
        for param in self.params:
            param.display_type_rich = lambda ctx: None  # the help text says what a value is
        super().format_help(ctx, formatter)


for _typer_app in (app, data_app):
    for _command in _typer_app.registered_commands:
        _command.cls = HelpWithoutTypeTags


def main() -> None:
    app()


if __name__ == "__main__":
    main()
