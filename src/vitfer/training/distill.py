"""Hard distillation from a trained teacher (DeiT): the teacher's predicted labels train the student's
distillation token, the true labels its class token."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vitfer.models.checkpoint import CheckpointError, LoadedModel
from vitfer.preprocess import Preprocess


@dataclass
class Teacher:
    """A frozen model and the conversion from the student's inputs to its own (size, channels, normalisation).

    Not an ``nn.Module``, so the student's checkpoints never carry the teacher's weights.
    """

    loaded: LoadedModel
    student: Preprocess

    @torch.no_grad()
    def labels(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's predicted class for each student input."""
        if next(self.loaded.model.parameters()).device != x.device:
            self.loaded.model.to(x.device)
        faces = self.student.unfinish(x)
        return self.loaded.model(self.loaded.preprocess.finish(faces)).argmax(dim=-1)


def load_teacher(path: str, student: Preprocess, class_names: tuple[str, ...]) -> Teacher:
    """A model file, run folder or shipped model name, checked to predict the student's classes in its order."""
    from vitfer.models.checkpoint import load_model, resolve_model

    loaded = load_model(resolve_model(path))
    if tuple(loaded.labels) != tuple(class_names):
        raise CheckpointError(f"teacher {path} predicts {list(loaded.labels)}, the student learns "
                              f"{list(class_names)}; a teacher must share the student's classes and their order")
    loaded.model = loaded.model.plain().eval()
    for parameter in loaded.model.parameters():
        parameter.requires_grad = False
    return Teacher(loaded, student)
