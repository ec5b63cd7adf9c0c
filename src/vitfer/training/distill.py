"""Distillation from a trained teacher: hard (DeiT: the teacher's predicted labels train the student's
distillation token, the true labels its class token) or soft (Hinton: the student's main head also matches the
teacher's probabilities softened by a temperature)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vitfer.models.checkpoint import LoadedModel
from vitfer.errors import ModelError
from vitfer.preprocess import Preprocess
from vitfer.models.inputs import finish, unfinish


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
