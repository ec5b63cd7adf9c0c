"""``train(config)``: data -> cache -> model -> Lightning Trainer -> runs/<name>/ with checkpoints, metrics, curves."""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import pandas as pd
import torch
import yaml
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from vitfer.config import Config
from vitfer.errors import ConfigError, DataError, ModelError, OutputError
from vitfer.data.datamodule import FERDataModule, balance_modes
from vitfer.preprocess import Preprocess
from vitfer.models.checkpoint import describe, read_checkpoint, save_model
from vitfer.models.factory import FERNet, build_model
from vitfer.models.weights import pretrained_file
from vitfer.training.distill import load_teacher
from vitfer.training.module import FERModule
from vitfer.files import increment_path, write_text

log = logging.getLogger(__name__)


def preprocess_for(model: FERNet, config: Config, lowpass_sigma: float = 0.0) -> Preprocess:
    """Input size, channels and normalisation that match how the model's weights were made."""
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    if config.model.pretrained is True and not config.model.name.startswith("hf"):
        from timm.data import resolve_data_config

        resolved = resolve_data_config(model=model.backbone)
        mean, std = tuple(resolved["mean"]), tuple(resolved["std"])
    return Preprocess(img_size=model.config.resolved_img_size(), in_channels=model.config.in_chans,
                      mean=mean, std=std, grayscale=config.data.channels == 1, decode_size=config.data.size,
                      lowpass_sigma=lowpass_sigma, crop_margin=config.data.face_margin)


class DescribeCheckpoint(Callback):
    """Put the vitfer description into every Lightning checkpoint so it loads without a config."""

    def __init__(self, meta: dict) -> None:
        self.meta = meta

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["vitfer"] = self.meta.to_dict()


class EpochTimer(Callback):
    """Log wall-clock seconds per epoch, and training images per second (validation time left out)."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()
        self.validating = 0.0
        self.images = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.images += len(batch[0])

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.val_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self.validating += time.perf_counter() - self.val_start  # fit validates inside the training epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = time.perf_counter() - self.start
        pl_module.log("epoch_seconds", seconds)
        pl_module.log("train_images_per_second", self.images / max(seconds - self.validating, 1e-9))
        # over every process of a distributed run: the faces the epoch trained on
        pl_module.log("train_images", float(self.images), sync_dist=True, reduce_fx="sum")


EARLIER_METRICS = "metrics.before-resume.csv"


def check_resume(path: str | Path, model: FERNet) -> None:
    """Refuse to resume from a checkpoint of a different model."""
    meta = read_checkpoint(path)["vitfer"]
    theirs = meta.model_config
    ours = model.config.to_dict()
    for key in ("name", "num_classes", "img_size", "head"):
        if theirs.get(key) != ours.get(key):
            raise ModelError(f"cannot resume from {path}: it was trained with {key}={theirs.get(key)!r}, "
                                  f"this config has {key}={ours.get(key)!r}")


def set_aside_metrics(metrics_csv: Path) -> None:
    """Before a resume, move the epochs logged so far aside: the CSV logger starts its file afresh.

    The file set aside survives a resume that is itself interrupted; the next resume merges it first.
    """
    restore_metrics(metrics_csv)
    if metrics_csv.is_file():
        metrics_csv.replace(metrics_csv.with_name(EARLIER_METRICS))


def restore_metrics(metrics_csv: Path) -> None:
    """Put the epochs set aside back in front of the epochs logged since (a repeated epoch keeps its newer rows)."""
    earlier_csv = metrics_csv.with_name(EARLIER_METRICS)
    if not earlier_csv.is_file():
        return
    earlier = pd.read_csv(earlier_csv)
    if metrics_csv.is_file() and metrics_csv.stat().st_size > 0:
        latest = pd.read_csv(metrics_csv)
        first_new = latest["epoch"].min()
        kept = earlier if pd.isna(first_new) else earlier[earlier["epoch"] < first_new]
        earlier = pd.concat([kept, latest])
    write_text(metrics_csv, earlier.to_csv(index=False))
    earlier_csv.unlink()


def holds_results(folder: Path) -> bool:
    """A run folder with checkpoints or a model file; one made a moment ago by this run's first process (distributed
    training) holds none yet, so every process picks the same folder."""
    return (folder / "checkpoints").exists() or (folder / "model.pt").exists()


def one_row_per_epoch(metrics_csv: Path) -> None:
    """Merge Lightning's separate training and validation rows into one row per epoch."""
    if not metrics_csv.is_file() or metrics_csv.stat().st_size == 0:
        return
    table = pd.read_csv(metrics_csv)
    if "epoch" in table and len(table):
        write_text(metrics_csv, table.groupby("epoch", sort=True).first().reset_index().to_csv(index=False))


@contextmanager
def quiet_lightning(verbose: bool) -> Iterator[None]:
    """Unless ``verbose``: no Lightning banners, tips or seed notices, and no library warnings, while training."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def train(config: Config, resume: str | Path | None = None, progress: bool = True, verbose: bool = False) -> Path:
    """Train one model as configured; returns the run folder.

    ``verbose`` shows what Lightning says (model summary, tips, library warnings); vitfer's own warnings always show.
    """
    with quiet_lightning(verbose):
        return _train(config, resume, progress, verbose)


def _train(config: Config, resume: str | Path | None, progress: bool, verbose: bool) -> Path:
    m = config.model
    if isinstance(m.pretrained, str) and m.pretrained:  # a missing file fails now, before any run folder is made
        m.pretrained = str(pretrained_file(m.pretrained))
    L.seed_everything(config.seed, workers=True, verbose=verbose)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    run_dir = Path(config.runs_dir) / config.name
    if not resume:  # a finished or running run is never overwritten: runs/<name>-2, -3, ... instead
        run_dir = increment_path(run_dir, sep="-", taken=holds_results)
        config.name = run_dir.name
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))

    datamodule = FERDataModule.from_config(config)
    datamodule.prepare_data()  # decode into the face cache: once per machine (a lock), every process then loads it
    datamodule.setup("fit")  # read, merge, cache, balance: the model's auxiliary head depends on the data
    cache = datamodule.cache
    if m.name.startswith("hybrid_vit") and not m.pretrained:
        log.warning("%s starts from a random convolutional stem; the shipped recipe starts it from ImageNet: "
                    "--set model.pretrained=PATH/mobilenet_v2_1.0_224_quant.tflite", m.name)
    if m.name == "mobilenetv2" and m.pretrained and config.train.optimizer == "adamw" and config.train.lr > 3e-4:
        # benchmarks/mobilenetv2_lr_probe.py: the folded, frozen batch norm leaves nothing to absorb Adam's steps
        log.warning("an ImageNet MobileNetV2 collapsed to one class at AdamW lr 1e-3 and learnt at 3e-4 in a probe "
                    "(benchmarks/mobilenetv2_lr_probe.py); this recipe's lr is %g", config.train.lr)
    model = build_model(m.name, config.data.num_classes, pretrained=m.pretrained, img_size=m.img_size,
                        head=m.head, freeze=m.freeze, head_dropout=m.head_dropout,
                        drop_path_rate=m.drop_path_rate, kwargs=m.kwargs,
                        aux_classes=len(cache.aux_names) if cache.aux is not None else 0)
    if resume:
        check_resume(resume, model)
    preprocess = preprocess_for(model, config, datamodule.lowpass_sigma(config.data.match_sharpness))
    datamodule.preprocess = preprocess
    weights = (datamodule.class_weights(config.data.balance_power)
               if "weights" in balance_modes(config.data.balance) else None)
    steps = len(datamodule.train_rows) // config.train.batch_size
    if steps == 0:  # every batch is full (drop_last): fewer faces than one batch would train nothing
        raise DataError(f"the train split has {len(datamodule.train_rows)} faces, fewer than one batch of "
                        f"{config.train.batch_size}; lower train.batch_size")
    limit = config.train.limit_train_batches
    if limit is not None:  # a count of batches, or a fraction of the epoch (the schedule follows either)
        steps = min(steps, int(limit)) if limit >= 1 else max(1, int(steps * limit))
    teacher = None
    if config.train.teacher:
        if not 0 <= config.train.distill_alpha <= 1 or config.train.distill_temperature <= 0:
            raise ConfigError(f"train.distill_alpha must lie in [0, 1] and train.distill_temperature be positive, "
                              f"got {config.train.distill_alpha} and {config.train.distill_temperature}")
        teacher = load_teacher(config.train.teacher, preprocess, cache.class_names)
    module = FERModule(model, config.train, weights, config.augment.mixup, config.augment.cutmix,
                       m.freeze, m.gradual_unfreeze_every, steps_per_epoch=steps,
                       soft_protocol=config.data.ferplus_protocol, teacher=teacher)
    meta = describe(model, preprocess, cache.class_names, config=config.to_dict())
    mode = "min" if config.train.monitor == "val_loss" else "max"
    best = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=config.train.monitor,
                           mode=mode, enable_version_counter=False)
    last = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
                           enable_version_counter=False)  # every epoch, improved or not: what --resume takes
    callbacks: list[Callback] = [best, last, DescribeCheckpoint(meta), EpochTimer()]
    best_aux = None
    if cache.aux is not None:  # the auxiliary head is selected on its own validation labels
        best_aux = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best-aux", monitor="val_aux_acc",
                                   mode="max", enable_version_counter=False)
        callbacks.append(best_aux)
    if config.train.early_stop_patience > 0:
        callbacks.append(EarlyStopping(config.train.monitor, patience=config.train.early_stop_patience, mode=mode))
    trainer = L.Trainer(
        max_epochs=config.train.epochs, accelerator=config.train.accelerator, devices=config.train.devices,
        strategy=config.train.strategy, num_nodes=config.train.num_nodes, precision=config.train.precision,
        callbacks=callbacks,
        logger=CSVLogger(run_dir, name="", version=""), default_root_dir=run_dir, deterministic=False,
        enable_progress_bar=progress, enable_model_summary=verbose, log_every_n_steps=50, num_sanity_val_steps=0,
        limit_train_batches=config.train.limit_train_batches, limit_val_batches=config.train.limit_val_batches,
    )
    metrics_csv = run_dir / "metrics.csv"
    if resume:
        set_aside_metrics(metrics_csv)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None, weights_only=True)
    except OSError as err:  # a full disk, a folder gone read-only: every run file is written whole, so say where
        last = run_dir / "checkpoints" / "last.ckpt"
        keep = f"; resume with --resume {last}" if last.is_file() else ""
        raise OutputError(f"training stopped: cannot write to {run_dir}: {err.strerror or err}{keep}") from None
    if not trainer.is_global_zero:  # in a distributed run, one process writes the results
        return run_dir
    restore_metrics(metrics_csv)
    one_row_per_epoch(metrics_csv)
    export_best(run_dir, best.best_model_path or last.last_model_path, preprocess, cache.class_names, config)
    if best_aux is not None and best_aux.best_model_path:
        export_best(run_dir, best_aux.best_model_path, preprocess, cache.aux_names, config, aux=True)
    from vitfer.training.curves import plot_curves

    plot_curves(run_dir / "metrics.csv", run_dir / "curves.png")
    return run_dir


def export_best(run_dir: Path, ckpt_path: str, preprocess: Preprocess, labels: tuple[str, ...],
                config: Config, aux: bool = False) -> Path:
    """Write runs/<name>/model.pt (the best weights, self-describing) and best_metrics.json.

    ``aux``: the auxiliary head's best checkpoint instead, as a plain model: model-aux.pt, best_metrics-aux.json.
    """
    from vitfer.models.checkpoint import load_model

    loaded = load_model(ckpt_path)
    model = loaded.model.split_aux() if aux else loaded.model.drop_aux()
    suffix = "-aux" if aux else ""
    data = read_checkpoint(ckpt_path)
    monitor = "val_aux_acc" if aux else config.train.monitor
    score = None
    for key, cb_state in data.get("callbacks", {}).items():  # the checkpoint callback that watched this metric
        if (f"'monitor': '{monitor}'" in str(key) and isinstance(cb_state, dict)
                and cb_state.get("best_model_score") is not None):
            score = float(cb_state["best_model_score"])
    summary = {"monitor": monitor, "best_score": score,
               "epoch": data.get("epoch"), "checkpoint": str(ckpt_path)}
    write_text(run_dir / f"best_metrics{suffix}.json", json.dumps(summary, indent=2))
    return save_model(run_dir / f"model{suffix}.pt", model,
                      describe(model, preprocess, labels, config=config.to_dict(), metrics=summary))
