"""Distillation from a trained teacher: hard (DeiT: the teacher's predicted labels train the student's
distillation token, the true labels its class token) or soft (Hinton: the student's main head also matches the
teacher's probabilities softened by a temperature)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vitfer.models.checkpoint import LoadedModel
from vitfer.errors import ModelError
from vitfer.files import atomic_write
from vitfer.labels import EMOTIONS_7
from vitfer.preprocess import Preprocess
from vitfer.models.inputs import finish, in_batches, unfinish


@dataclass
class Teacher:
    """A frozen model and the conversion from the student's inputs to its own (size, channels, normalisation).

    Not an ``nn.Module``, so the student's checkpoints never carry the teacher's weights.
    """

    loaded: LoadedModel
    student: Preprocess

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for each student input."""
        if next(self.loaded.model.parameters()).device != x.device:
            self.loaded.model.to(x.device)
        faces = unfinish(self.student, x)
        return self.loaded.model(finish(self.loaded.preprocess, faces))

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's predicted class for each student input."""
        return self.logits(x).argmax(dim=-1)


def soft_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the distributions softened by ``temperature``, times its square (Hinton et al.
    2015), so the gradients keep their scale whatever the temperature."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature ** 2


def load_teacher(path: str, student: Preprocess, class_names: tuple[str, ...]) -> Teacher:
    """A model file, run folder or shipped model name, checked to predict the student's classes in its order."""
    from vitfer.models.checkpoint import load_model
    from vitfer.shipped import resolve_model

    loaded = load_model(resolve_model(path))
    if tuple(loaded.labels) != tuple(class_names):
        raise ModelError(f"teacher {path} predicts {list(loaded.labels)}, the student learns "
                              f"{list(class_names)}; a teacher must share the student's classes and their order")
    loaded.model = loaded.model.plain().eval()
    for parameter in loaded.model.parameters():
        parameter.requires_grad = False
    return Teacher(loaded, student)


def write_teacher_targets(teachers: list[str], data: str | Path, out: str | Path,
                          classes: tuple[str, ...] = EMOTIONS_7, split: str = "train", batch_size: int = 256,
                          seed: int = 0) -> Path:
    """The teachers' mean probabilities for every face of ``split`` of ``data``, each teacher on the face and its
    mirror image, over ``classes`` (an 8-class teacher's contempt is folded away: the rest renormalised), saved
    as ``out`` (.npz: items, probabilities, classes, teachers) for ``data.teacher_targets``. Never over a file."""
    from vitfer.data.cache import build_cache
    from vitfer.data.readers import read_dataset
    from vitfer.errors import OutputError
    from vitfer.runtime.backends import create_backend
    from vitfer.shipped import resolve_model

    out = Path(out)
    if out.exists():
        raise OutputError(f"{out} exists; teacher targets never replace a file")
    manifest = read_dataset(data, seed=seed)
    manifest = manifest[(manifest["split"] == split) & manifest["label"].isin(classes)]
    if manifest.empty:
        raise ModelError(f"{data} has no faces of {list(classes)} in split {split!r}")
    total, faces = None, {}
    for name in teachers:
        # PyTorch's full-precision answers (an .onnx teacher runs in ONNX Runtime)
        backend = create_backend(name, backend="onnx" if resolve_model(name).suffix == ".onnx" else "torch")
        missing = [c for c in classes if c not in backend.labels]
        if missing:
            raise ModelError(f"teacher {name} has no output for {missing}")
        p = backend.preprocess
        key = (p.decode_size, p.grayscale)
        if key not in faces:
            faces[key] = build_cache(manifest, size=p.decode_size, channels=1 if p.grayscale else 3, num_classes=8)
        cache = faces[key]
        images = cache.images.numpy()
        columns = [list(backend.labels).index(c) for c in classes]
        mean = 0
        for view in (images, np.ascontiguousarray(images[..., ::-1])):
            probs = in_batches(backend.probabilities, view, batch_size)[:, columns]
            mean = mean + probs / probs.sum(axis=1, keepdims=True) / 2
        total = mean if total is None else total + mean
    items = np.array([str(item) for item in next(iter(faces.values())).items])
    with atomic_write(out) as partial:
        with open(partial, "wb") as handle:
            np.savez(handle, items=items, probabilities=(total / len(teachers)).astype(np.float32),
                     classes=np.array(classes), teachers=np.array([str(t) for t in teachers]))
    return out
