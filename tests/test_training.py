import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from vitfer.errors import ConfigError, DataError, ModelError
from vitfer.config import TrainSection, config_from_dict, load_config
from vitfer.models.checkpoint import load_model
from vitfer.models.factory import build_model
from vitfer.training.losses import FERLoss
from vitfer.training.module import build_scheduler
from vitfer.training.run import set_aside_metrics, train
from vitfer.training.sam import SAM
from vitfer.models.inputs import finish


def tiny_config(tmp_path, data_path, **sections):
    values = {"name": "t", "runs_dir": str(tmp_path / "runs"), "seed": 1,
              "data": {"path": str(data_path), "cache_dir": None},
              "model": {"name": "cnn3", "img_size": 24},
              "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "threads": 1}}
    for key, value in sections.items():
        values.setdefault(key, {}).update(value) if isinstance(value, dict) else values.update({key: value})
    return config_from_dict(values)


def test_losses_against_torch():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 7), torch.randint(0, 7, (16,))
    weight = torch.rand(7) + 0.5
    assert torch.allclose(FERLoss(7)(logits, target), F.cross_entropy(logits, target))
    assert torch.allclose(FERLoss(7, weight=weight)(logits, target), F.cross_entropy(logits, target, weight=weight))
    assert torch.allclose(FERLoss(7, label_smoothing=0.1)(logits, target),
                          F.cross_entropy(logits, target, label_smoothing=0.1))
    assert torch.allclose(FERLoss(7, "focal", gamma=0.0)(logits, target), F.cross_entropy(logits, target))
    p = logits.softmax(-1)[torch.arange(16), target]
    expected = (-(1 - p) ** 2 * p.log()).mean()
    assert torch.allclose(FERLoss(7, "focal", gamma=2.0)(logits, target), expected)
    soft = F.one_hot(target, 7).float()
    assert torch.allclose(FERLoss(7)(logits, soft), F.cross_entropy(logits, target))
    with pytest.raises(ValueError, match="unknown loss"):
        FERLoss(7, "hinge")


def test_sam_step_lowers_a_quadratic():
    w = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    optimizer = SAM([w], torch.optim.SGD, rho=0.05, lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    before = (w ** 2).sum().item()
    for _ in range(5):
        closure()
        optimizer.step(closure)
    assert (w ** 2).sum().item() < before * 0.5


@pytest.mark.parametrize("kind,expected", [("cosine", [0.5, 1.0, 0.75, 0.25]), ("step", [0.5, 1.0, 0.1, 0.1]),
                                           ("none", [0.5, 1.0, 1.0, 1.0])])
def test_schedulers_with_warmup(kind, expected):
    cfg = TrainSection(lr=1.0, min_lr=0.0, epochs=4, warmup_epochs=1, scheduler=kind, step_size=2, step_gamma=0.1)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=2)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[::2] == pytest.approx(expected, abs=1e-6)


def test_plateau_scheduler_halves_lr():
    cfg = TrainSection(lr=1.0, scheduler="plateau", plateau_patience=1, plateau_factor=0.5)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, cfg, 10)
    for metric in (0.5, 0.5, 0.5):
        scheduler.step(metric)
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_unknown_config_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="'train.epoch'; did you mean epochs"):
        config_from_dict({"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    cfg = load_config(None, ["train.lr=3e-4", "augment.scale=[0.8, 1.2]"])
    assert cfg.train.lr == 3e-4 and cfg.augment.scale == (0.8, 1.2)


def test_every_recipe_in_configs_loads():
    from pathlib import Path

    recipes = sorted((Path(__file__).parents[1] / "configs").glob("**/*.yaml"))
    assert len(recipes) >= 5
    for recipe in recipes:
        load_config(recipe)


@pytest.mark.parametrize("train_options,other", [
    ({"optimizer": "adamw", "loss": "focal", "scheduler": "cosine", "warmup_epochs": 1, "ema_decay": 0.9}, {}),
    ({"optimizer": "sgd", "lr": 0.01, "sam": True, "scheduler": "step", "step_size": 1, "label_smoothing": 0.1},
     {"data": {"balance": "weights"}}),
    ({"scheduler": "plateau", "early_stop_patience": 1, "layer_decay": 0.7},
     {"augment": {"mixup": 0.2, "cutmix": 0.2}, "data": {"balance": "oversample"}}),
])
def test_training_writes_a_complete_run(tmp_path, fer_folder, train_options, other):
    cfg = tiny_config(tmp_path, fer_folder, train=train_options, **other)
    run = train(cfg, progress=False)
    for name in ("config.yaml", "metrics.csv", "curves.png", "model.pt", "checkpoints/best.ckpt",
                 "checkpoints/last.ckpt", "best_metrics.json"):
        assert (run / name).is_file(), name
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["epoch"].tolist() == [0, 1]  # one row per epoch: training and validation figures side by side
    assert metrics["val_acc"].notna().all() and metrics["train_loss"].notna().all()
    assert (metrics["train_images_per_second"] > 0).all() and (metrics["epoch_seconds"] > 0).all()
    loaded = load_model(run / "model.pt")
    assert loaded.labels[0] == "angry" and loaded.preprocess.img_size == 24
    again = load_model(run / "checkpoints" / "last.ckpt")
    assert again.name == "cnn3"


def test_resume_continues_and_refuses_another_model(tmp_path, fer_folder):
    first = train(tiny_config(tmp_path, fer_folder, train={"epochs": 1}), progress=False)
    last = first / "checkpoints" / "last.ckpt"
    resumed = train(tiny_config(tmp_path, fer_folder, train={"epochs": 2}), resume=last, progress=False)
    metrics = pd.read_csv(resumed / "metrics.csv")
    assert metrics["epoch"].dropna().unique().tolist() == [0, 1]  # epoch 0 kept from the first run, 1 is new
    assert metrics["val_acc"].notna().sum() == 2
    with pytest.raises(ModelError, match="name='cnn3'"):
        train(tiny_config(tmp_path, fer_folder, name="t3", model={"name": "resnet18"}), resume=last, progress=False)


def test_a_resume_that_is_itself_interrupted_keeps_the_earlier_epochs(tmp_path, fer_folder):
    first = train(tiny_config(tmp_path, fer_folder, train={"epochs": 1}), progress=False)
    set_aside_metrics(first / "metrics.csv")  # what a resume killed during its first epoch leaves behind
    (first / "metrics.csv").write_text("epoch,step,train_loss\n")
    resumed = train(tiny_config(tmp_path, fer_folder, train={"epochs": 2}), resume=first / "checkpoints" / "last.ckpt",
                    progress=False)
    metrics = pd.read_csv(resumed / "metrics.csv")
    assert metrics["epoch"].dropna().unique().tolist() == [0, 1]
    assert not (resumed / "metrics.before-resume.csv").exists()


@pytest.mark.slow
def test_training_learns_the_synthetic_task(tmp_path, fer_folder):
    cfg = tiny_config(tmp_path, fer_folder, train={"epochs": 12, "lr": 3e-3, "batch_size": 6},
                      augment={"rotation": 0, "translate": 0, "scale": [1.0, 1.0], "hflip": 0})
    run = train(cfg, progress=False)
    best = pd.read_csv(run / "metrics.csv")["val_acc"].max()
    assert best > 3 / 7, f"validation accuracy {best:.2f} is no better than chance"
    assert not math.isnan(best)


def test_hugging_face_mae_trains_partly_frozen_and_reloads(tmp_path, fer_folder):
    pytest.importorskip("transformers")
    start = build_model("hf-mae:tiny", 7, img_size=24).backbone
    start.encoder.save_pretrained(tmp_path / "mae")  # local "pretrained" weights: the starting point is known
    cfg = tiny_config(tmp_path, fer_folder, train={"epochs": 1, "layer_decay": 0.8},
                      model={"name": f"hf-mae:{tmp_path / 'mae'}", "img_size": 24, "pretrained": True,
                             "freeze": "blocks:1"})
    trained = load_model(train(cfg, progress=False) / "model.pt").model.backbone
    before, after = start.state_dict(), trained.state_dict()
    frozen = [k for k in before if k.startswith(("encoder.embeddings.", "blocks.0."))]
    learnt = [k for k in before if k.startswith("blocks.1.") and k.endswith("weight")]
    assert frozen and learnt
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert not any(torch.equal(before[k], after[k]) for k in learnt)


def test_soft_targets_and_multi_target_loss():
    torch.manual_seed(0)
    logits = torch.randn(4, 8)
    soft = torch.zeros(4, 8)
    soft[0, 3] = 1.0
    soft[1, [6, 0]] = torch.tensor([4 / 7, 3 / 7])
    log_p = logits.log_softmax(-1)
    expected = -(log_p[:2] * soft[:2]).sum(-1).mean()
    assert torch.allclose(FERLoss(8)(logits[:2], soft[:2]), expected)
    assert torch.allclose(FERLoss(8)(logits, soft), expected)  # zero rows (no label) add nothing
    multi = FERLoss(8, multi_target=True)(logits[:2], soft[:2])
    best = torch.stack([log_p[0, 3], torch.maximum(log_p[1, 6], log_p[1, 0])])
    assert torch.allclose(multi, -best.mean())


@pytest.mark.parametrize("protocol, augment", [
    ("crossentropy", {"mixup": 0.4, "cutmix": 0.4}),
    ("probability", {}),
    ("multi_target", {}),
])
def test_ferplus_trains_an_eight_class_model_on_its_votes(tmp_path, ferplus_folder, protocol, augment):
    cfg = tiny_config(tmp_path, ferplus_folder, data={"num_classes": 8, "ferplus_protocol": protocol,
                                                      "balance": "weights"},
                      train={"epochs": 1, "batch_size": 4}, augment=augment)
    run = train(cfg, progress=False)
    loaded = load_model(run / "model.pt")
    assert loaded.labels[-1] == "contempt" and loaded.model.config.num_classes == 8
    assert pd.read_csv(run / "metrics.csv")["train_loss"].notna().sum() == 1


def test_an_auxiliary_ferplus_head_trains_beside_fer2013_and_ships_apart(tmp_path, fer_folder, ferplus_folder):
    from vitfer.data.readers import read_dataset

    manifest = read_dataset(fer_folder)
    train_item, val_item = (manifest[manifest["split"] == s]["item"].iloc[0] for s in ("train", "val"))
    names = tmp_path / "names.csv"
    names.write_text("ferplus_file,fer2013_file\n"
                     f"FER2013Train/fer0000000.png,{'/'.join(Path(train_item).parts[-3:])}\n"
                     f"FER2013Valid/fer0000006.png,{'/'.join(Path(val_item).parts[-3:])}\n")
    cfg = tiny_config(tmp_path, fer_folder, data={"aux_ferplus": str(ferplus_folder),
                                                  "aux_ferplus_names": str(names)},
                      train={"epochs": 1})
    run = train(cfg, progress=False)
    assert pd.read_csv(run / "metrics.csv")["val_aux_acc"].notna().sum() == 1
    main, aux = load_model(run / "model.pt"), load_model(run / "model-aux.pt")
    assert main.model.aux_head is None and len(main.labels) == 7 and main.model.config.aux_classes == 0
    assert aux.model.config.num_classes == 8 and aux.labels[-1] == "contempt"
    shared = {k: v for k, v in main.model.state_dict().items() if k.startswith("backbone.")}
    assert shared and all(torch.equal(v, aux.model.state_dict()[k]) for k, v in shared.items())  # one epoch, one trunk


def test_a_distilled_deit_learns_from_a_cnn_teacher(tmp_path, fer_folder):
    from vitfer.models.distilled import TwoTokenHead
    from vitfer.preprocess import Preprocess
    from vitfer.training.distill import load_teacher
    from vitfer.training.module import FERModule

    teacher_run = train(tiny_config(tmp_path, fer_folder, name="teacher", train={"epochs": 1}), progress=False)
    student = tiny_config(tmp_path, fer_folder, name="student", train={"epochs": 1, "teacher": str(teacher_run)},
                          model={"name": "deit_tiny_distilled_patch16_224", "img_size": 32})
    run = train(student, progress=False)
    loaded = load_model(run / "model.pt")
    assert isinstance(loaded.model.head, TwoTokenHead)
    assert not any("teacher" in key for key in torch.load(run / "model.pt", weights_only=True)["state_dict"])

    # the teacher sees each student input as its own preprocessing would have made it
    faces = torch.rand(4, 1, 48, 48)
    other = Preprocess(img_size=24, in_channels=3, mean=(0.2, 0.3, 0.4), std=(0.9, 0.8, 0.7))
    teacher = load_teacher(str(teacher_run), other, loaded.labels)
    own = teacher.loaded
    expected = own.model(finish(own.preprocess, F.interpolate(faces, size=24, mode="bilinear", antialias=True)))
    assert torch.equal(teacher.labels(finish(other, faces)), expected.argmax(-1))

    # the loss: half cross-entropy of the class token on the labels, half of the distillation token on the teacher's
    teacher = load_teacher(str(teacher_run), loaded.preprocess, loaded.labels)
    module = FERModule(loaded.model, TrainSection(), teacher=teacher)
    x, y = finish(loaded.preprocess, faces), torch.tensor([0, 1, 2, 3])
    cls, dist = loaded.model.head.both(loaded.model.backbone(x))
    manual = 0.5 * F.cross_entropy(cls, y) + 0.5 * F.cross_entropy(dist, teacher.labels(x))
    assert torch.allclose(module._loss(x, y), manual)


def test_a_plain_student_learns_the_teachers_softened_probabilities(tmp_path, fer_folder, ferplus_folder):
    from vitfer.training.distill import load_teacher, soft_distillation_loss
    from vitfer.training.module import FERModule

    teacher_run = train(tiny_config(tmp_path, fer_folder, name="teacher", train={"epochs": 1}), progress=False)
    run = train(tiny_config(tmp_path, fer_folder, name="s", train={"epochs": 1, "teacher": str(teacher_run)}),
                progress=False)
    loaded = load_model(run / "model.pt")
    assert loaded.meta.config["train"]["teacher"] == str(teacher_run)

    # (1 - alpha) cross-entropy on the labels + alpha T^2 KL(teacher || student) at temperature T
    teacher = load_teacher(str(teacher_run), loaded.preprocess, loaded.labels)
    module = FERModule(loaded.model, TrainSection(distill_alpha=0.3, distill_temperature=4.0), teacher=teacher)
    x, y = finish(loaded.preprocess, torch.rand(4, 1, 48, 48)), torch.tensor([0, 1, 2, 3])
    student, taught = loaded.model(x), teacher.logits(x)
    kl = (F.softmax(taught / 4, -1) * (F.log_softmax(taught / 4, -1) - F.log_softmax(student / 4, -1))).sum(-1)
    assert torch.allclose(module._loss(x, y), 0.7 * F.cross_entropy(student, y) + 0.3 * 16 * kl.mean(), atol=1e-6)
    assert soft_distillation_loss(taught, taught, 4.0).abs() < 1e-6  # nothing to learn from itself
    with pytest.raises(ConfigError, match="distill_alpha must be 0 to 1"):
        train(tiny_config(tmp_path, fer_folder, name="s3", train={"teacher": str(teacher_run), "distill_alpha": 2}),
              progress=False)
    eight = train(tiny_config(tmp_path, ferplus_folder, name="eight", train={"epochs": 1, "batch_size": 4},
                              data={"num_classes": 8}), progress=False)
    with pytest.raises(ModelError, match="must share the student's classes"):
        train(tiny_config(tmp_path, fer_folder, name="s2", train={"teacher": str(eight)},
                          model={"name": "deit_tiny_distilled_patch16_224", "img_size": 32}), progress=False)


def test_a_train_split_smaller_than_one_batch_is_refused(tmp_path, fer_folder):
    with pytest.raises(DataError, match="42 faces.*batch of 64"):
        train(tiny_config(tmp_path, fer_folder, train={"batch_size": 64}), progress=False)


def test_training_is_quiet_unless_verbose(tmp_path, fer_folder, capfd):
    train(tiny_config(tmp_path, fer_folder, train={"epochs": 1}), progress=False)
    quiet = "".join(capfd.readouterr())
    for noise in ("Tip", "Total FLOPs", "GPU available", "Seed set", "Modules in eval mode"):
        assert noise not in quiet, noise
    train(tiny_config(tmp_path, fer_folder, name="loud", train={"epochs": 1}), progress=False, verbose=True)
    loud = "".join(capfd.readouterr())
    assert "Total params" in loud and "Total FLOPs" in loud  # the model summary, among the rest


def test_the_python_api_mirrors_the_command(tmp_path, fer_folder, monkeypatch):
    import vitfer

    assert {"train", "evaluate", "explain", "compare", "benchmark", "data_stats", "Predictor"} <= set(dir(vitfer))
    monkeypatch.chdir(tmp_path)
    run = vitfer.train(data=fer_folder, model="cnn3", epochs=1, name="api",
                       overrides={"data.cache_dir": None, "model.img_size": 24, "train.batch_size": 8,
                                  "train.threads": 1},
                       progress=False)
    assert run == Path("runs") / "api" and (run / "model.pt").is_file()
    assert load_model(run / "model.pt").preprocess.img_size == 24
    assert vitfer.evaluate(run, fer_folder)["split"] == "val"
    with pytest.raises(ConfigError, match="unknown config key 'train.lrr'"):
        vitfer.train(data=fer_folder, overrides={"train.lrr": 1})


def test_missing_pretrained_weights_fail_at_once_naming_the_option(tmp_path, fer_folder):
    from vitfer.errors import WeightImportError

    cfg = tiny_config(tmp_path, fer_folder, model={"name": "hybrid_vit_tiny", "pretrained": "nope/mobilenet.tflite"})
    with pytest.raises(WeightImportError, match=r"model.pretrained \(--pretrained\) nope/mobilenet.tflite: no such "
                                                r"file, and not a name vitfer can download"):
        train(cfg, progress=False)
    assert not (tmp_path / "runs" / "t").exists()  # no half-made run folder


@pytest.mark.slow
def test_two_process_ddp_on_the_cpu_trains_on_every_face_once(tmp_path, fer_folder):
    """Lightning's DDP with gloo, two processes launched as `vitfer train` launches them (as torchrun would)."""
    import os
    import subprocess
    import sys

    single = train(tiny_config(tmp_path, fer_folder, name="single", train={"epochs": 1, "batch_size": 7}),
                   progress=False)
    command = [sys.executable, "-m", "vitfer.cli", "train", "--data", str(fer_folder), "--model", "cnn3",
               "--epochs", "1", "--name", "ddp", "--set", "model.img_size=24", "--set", "train.batch_size=7",
               "--set", "data.cache_dir=null", "--set", "train.strategy=ddp", "--set", "train.devices=2",
               "--set", "train.accelerator=cpu", "--set", "train.threads=1", "--set", f"runs_dir={tmp_path / 'runs'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("run folder:") == 1  # the second process stays quiet
    ddp, one = pd.read_csv(tmp_path / "runs" / "ddp" / "metrics.csv"), pd.read_csv(single / "metrics.csv")
    assert ddp["train_images"].tolist() == one["train_images"].tolist() == [42.0]  # 2 x 21 faces, 3 steps each
    assert ddp["step"].item() < one["step"].item()  # each process took half the steps
    assert load_model(tmp_path / "runs" / "ddp" / "model.pt").name == "cnn3"


def test_training_again_under_a_used_name_makes_a_new_run_folder(tmp_path, fer_folder):
    first = train(tiny_config(tmp_path, fer_folder, train={"epochs": 1}), progress=False)
    stamp = (first / "model.pt").stat().st_mtime
    second = train(tiny_config(tmp_path, fer_folder, train={"epochs": 1}), progress=False)
    assert second == first.with_name("t-2") and (second / "model.pt").is_file()
    assert (first / "model.pt").stat().st_mtime == stamp  # the first run is untouched
    assert load_config(second / "config.yaml").name == "t-2"


def test_a_full_disk_stops_training_in_one_line_and_keeps_the_run_files_whole(fer_folder, tmp_path, monkeypatch):
    import lightning

    import vitfer
    from vitfer.errors import OutputError

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lightning.Trainer, "fit", disk_full)
    with pytest.raises(OutputError, match="training stopped: cannot write to .*No space left on device"):
        vitfer.train(data=fer_folder, model="cnn3", epochs=1, name="full",
                     overrides={"runs_dir": str(tmp_path), "train.batch_size": 8})
    assert not list(tmp_path.rglob("*.partial"))  # nothing half-written left behind


def test_offline_teacher_targets_mix_into_the_training_faces_only(tmp_path, fer_folder, tiny_checkpoint):
    import numpy as np

    from vitfer.data.cache import build_cache
    from vitfer.data.readers import read_dataset
    from vitfer.data.teacher_targets import join_teacher_targets
    from vitfer.errors import DataError, OutputError
    from vitfer.training.distill import write_teacher_targets

    out = write_teacher_targets([str(tiny_checkpoint), "ferplus"], fer_folder, tmp_path / "t.npz")
    saved = np.load(out)
    assert saved["probabilities"].shape == (42, 7) and np.allclose(saved["probabilities"].sum(1), 1, atol=1e-5)
    assert list(saved["teachers"]) == [str(tiny_checkpoint), "ferplus"]  # the 8-class teacher, contempt folded away
    with pytest.raises(OutputError, match="never replace"):
        write_teacher_targets(["ferplus"], fer_folder, out)
    cache = build_cache(read_dataset(fer_folder), size=48, channels=1)
    join_teacher_targets(cache, out, alpha=0.5, label_smoothing=0.1)
    training, val = cache.indices("train"), cache.indices("val")
    row = {item: k for k, item in enumerate(saved["items"])}[str(cache.items[training[0]])]
    expected = 0.5 * (np.eye(7)[int(cache.labels[training[0]])] * 0.9 + 0.1 / 7) + 0.5 * saved["probabilities"][row]
    assert cache.soft[training[0]].numpy() == pytest.approx(expected, abs=1e-6)
    assert torch.equal(cache.soft[val], torch.nn.functional.one_hot(cache.labels[val], 7).float())
    partial = tmp_path / "partial.npz"
    np.savez(partial, items=saved["items"][1:], probabilities=saved["probabilities"][1:], classes=saved["classes"],
             teachers=saved["teachers"])
    with pytest.raises(DataError, match="no target for 1 of 42 training faces"):
        join_teacher_targets(cache, partial, alpha=0.5)
    run = train(tiny_config(tmp_path, fer_folder, name="student", data={"teacher_targets": str(out)},
                            train={"epochs": 1}), progress=False)
    assert (run / "model.pt").is_file()
    from typer.testing import CliRunner

    from vitfer.cli import app

    result = CliRunner().invoke(app, ["teacher-targets", str(run), "--data", str(fer_folder),
                                      "--out", str(tmp_path / "cli.npz")])
    assert result.exit_code == 0 and np.load(tmp_path / "cli.npz")["probabilities"].shape == (42, 7)
    result = CliRunner().invoke(app, ["teacher-targets", str(run), "--data", str(fer_folder),
                                      "--out", str(tmp_path / "cli.npz")])
    assert result.exit_code != 0 and "cli.npz exists" in result.output and len(result.output.splitlines()) == 1


def test_focal_alpha_warm_up_start_and_offline_copies(tmp_path, fer_folder):
    import pandas as pd

    from vitfer.data.cache import build_cache
    from vitfer.data.expand import expand_training_split
    from vitfer.data.readers import read_dataset
    from vitfer.training.losses import FERLoss
    from vitfer.training.module import warmup_factor

    logits, target = torch.randn(16, 7), torch.randint(0, 7, (16,))
    full = FERLoss(7, "focal", 2.0)(logits, target)
    assert FERLoss(7, "focal", 2.0, alpha=0.25)(logits, target) == pytest.approx(0.25 * float(full))
    assert FERLoss(7, "ce", alpha=0.25)(logits, target) == pytest.approx(float(FERLoss(7, "ce")(logits, target)))
    assert warmup_factor(0, 10, 0.1) == pytest.approx(0.19) and warmup_factor(9, 10, 0.1) == 1.0
    cache = build_cache(read_dataset(fer_folder), size=48, channels=1)
    expanded = expand_training_split(cache, 0, copies=5)
    assert len(expanded.indices("train")) == 6 * len(cache.indices("train"))
    assert len(expanded.indices("val")) == len(cache.indices("val"))  # copies of training faces only
    # ReduceLROnPlateau with a warm-up: the first epoch ends part way up the ramp from lr/10
    run = train(tiny_config(tmp_path, fer_folder, train={"epochs": 1, "scheduler": "plateau", "warmup_epochs": 2,
                                                        "warmup_start_factor": 0.1, "lr": 1e-3}), progress=False)
    lr = pd.read_csv(run / "metrics.csv")["lr"].dropna().iloc[0]
    steps = 42 // 8  # one epoch of batches of 8 (drop_last)
    assert lr == pytest.approx(1e-3 * warmup_factor(steps - 1, 2 * steps, 0.1), rel=1e-4)
