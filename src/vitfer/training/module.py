"""The LightningModule: what to compute (loss, optimiser, schedule, metrics, EMA); the Trainer runs it."""

from __future__ import annotations

import math

import lightning as L
import torch
from timm.data import Mixup
from timm.utils import ModelEmaV3
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from vitfer.config import TrainSection
from vitfer.models.freeze import apply_freeze, backbone_stages, gradual_unfreeze_mode
from vitfer.models.distilled import TwoTokenHead
from vitfer.training.distill import Teacher, soft_distillation_loss
from vitfer.training.losses import FERLoss
from vitfer.training.sam import SAM
from vitfer.errors import ConfigError


def param_groups(model: nn.Module, lr: float, weight_decay: float, layer_decay: float | None) -> list[dict]:
    """Parameter groups: no decay on biases/norms; optional layer-wise lr decay over backbone blocks."""
    scale_of: dict[int, float] = {}
    if layer_decay:
        embed, blocks = backbone_stages(model)
        depth = len(blocks) + 1
        for module in embed:
            for p in module.parameters():
                scale_of[id(p)] = layer_decay ** depth
        for i, block in enumerate(blocks):
            for p in block.parameters():
                scale_of[id(p)] = layer_decay ** (depth - 1 - i)
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = 0.0 if p.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name or "cls_token" in name else weight_decay
        groups.setdefault((scale_of.get(id(p), 1.0), decay), []).append(p)
    return [{"params": ps, "lr": lr * s, "weight_decay": d, "lr_scale": s} for (s, d), ps in groups.items()]


class FERModule(L.LightningModule):
    """Trains a FERNet; validation uses the EMA weights when EMA is on."""

    def __init__(self, model: nn.Module, train: TrainSection, class_weights: torch.Tensor | None = None,
                 mixup: float = 0.0, cutmix: float = 0.0, freeze: str = "none", gradual_unfreeze_every: int = 0,
                 steps_per_epoch: int = 1, soft_protocol: str = "crossentropy", teacher: Teacher | None = None) -> None:
        """``soft_protocol`` says how soft targets (FER+ votes) train: crossentropy (against the distribution),
        probability (a hard label drawn from it at every step), multi_target (any accepted class), majority.
        ``teacher``: hard distillation into the model's distillation token (DeiT), half the loss each; for a
        model without one, soft distillation of the main head (``train.distill_alpha``, ``distill_temperature``)."""
        super().__init__()
        self.model = model
        self.teacher = teacher
        self.cfg = train
        self.freeze = freeze
        self.unfreeze_every = gradual_unfreeze_every
        self.steps_per_epoch = max(steps_per_epoch, 1)
        num_classes = model.config.num_classes
        self.soft_protocol = soft_protocol
        multi = soft_protocol == "multi_target"
        self.criterion = FERLoss(num_classes, train.loss, train.focal_gamma, class_weights, train.label_smoothing,
                                 multi_target=multi, alpha=train.focal_alpha)
        self.eval_criterion = nn.CrossEntropyLoss()
        self.mixup = (Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=train.label_smoothing,
                            num_classes=num_classes) if (mixup > 0 or cutmix > 0) else None)
        self.ema = ModelEmaV3(model, decay=train.ema_decay) if train.ema_decay > 0 else None
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")
        aux_classes = getattr(model.config, "aux_classes", 0)
        self.aux_criterion = (FERLoss(aux_classes, train.loss, train.focal_gamma, multi_target=multi)
                              if aux_classes else None)
        self.val_aux_acc = MulticlassAccuracy(aux_classes, average="micro") if aux_classes else None
        self.automatic_optimization = not train.sam

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        if self.unfreeze_every > 0:
            _, blocks = backbone_stages(self.model)
            mode = gradual_unfreeze_mode(self.current_epoch, len(blocks), self.unfreeze_every)
            apply_freeze(self.model, mode)
            self.log("unfrozen_mode_blocks", float(len(blocks) if mode == "head" else
                                                   (0 if mode == "none" else int(mode.split(":")[1]))))

    def _loss(self, x: torch.Tensor, y: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        if self.teacher is not None and isinstance(self.model.head, TwoTokenHead):  # hard distillation (DeiT)
            logits, distilled = self.model.head.both(self.model.backbone(x))
            return 0.5 * self.criterion(logits, y) + 0.5 * nn.functional.cross_entropy(distilled,
                                                                                      self.teacher.labels(x))
        logits, aux_logits = self.model.forward_both(x)
        loss = self.criterion(logits, y)
        if self.teacher is not None:  # soft distillation of the main head
            alpha = self.cfg.distill_alpha
            loss = (1 - alpha) * loss + alpha * soft_distillation_loss(logits, self.teacher.logits(x),
                                                                       self.cfg.distill_temperature)
        if aux_logits is not None and aux is not None and aux.shape[1] > 0 and aux.sum() > 0:
            # faces without an auxiliary label carry a zero row and add nothing
            loss = loss + self.cfg.aux_weight * self.aux_criterion(aux_logits, aux)
        return loss

    def _targets(self, y: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        """Soft targets where the data has them (e.g. FER+ votes), else the hard labels."""
        if soft is None or soft.shape[1] == 0:
            return y
        if self.soft_protocol == "probability":  # a fresh hard label drawn from each distribution, every step
            return torch.multinomial(soft.clamp(min=0) + 1e-12, 1).squeeze(1)
        return soft

    def training_step(self, batch, batch_idx: int):
        x, y, soft, aux = (*batch, None, None)[:4]
        y = self._targets(y, soft)
        if aux is not None and aux.shape[1] > 0 and self.soft_protocol == "probability":
            labelled = aux.sum(dim=1, keepdim=True) > 0
            aux = torch.nn.functional.one_hot(self._targets(y, aux), aux.shape[1]).float() * labelled
        if self.mixup is not None and len(x) % 2 == 0:
            x, y, aux = self._mix(x, y, aux)
        if self.automatic_optimization:
            loss = self._loss(x, y, aux)
        else:  # SAM: two forward/backward passes per step
            optimizer = self.optimizers()
            loss = self._loss(x, y, aux)
            optimizer.zero_grad()
            self.manual_backward(loss)

            def perturbed_closure() -> torch.Tensor:  # loss and gradients at SAM's perturbed weights
                optimizer.zero_grad()
                perturbed = self._loss(x, y, aux)
                self.manual_backward(perturbed)
                return perturbed

            optimizer.step(closure=perturbed_closure)  # through Lightning, so global_step advances
            optimizer.zero_grad()
            scheduler = self.lr_schedulers()
            if scheduler is not None and self.cfg.scheduler != "plateau":
                scheduler.step()
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def _mix(self, x: torch.Tensor, y: torch.Tensor, aux: torch.Tensor | None):
        """Mixup/CutMix (timm's) of the images, with every target mixed by the same weight and pairing."""
        lam = self.mixup._mix_batch(x)  # in place; face i is mixed with face B-1-i, as timm's batch mode does
        if y.ndim == 1:
            y = self.criterion.soft_targets(y)
        y = y * lam + y.flip(0) * (1.0 - lam)
        if aux is not None and aux.shape[1] > 0:
            aux = aux * lam + aux.flip(0) * (1.0 - lam)
        return x, y, aux

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # ReduceLROnPlateau has no warm-up of its own: ramp the learning rates here until warm-up ends
        warmup = int(self.cfg.warmup_epochs * self.steps_per_epoch)
        if self.cfg.scheduler == "plateau" and self.global_step < warmup:
            factor = warmup_factor(self.global_step, warmup, self.cfg.warmup_start_factor)
            for group, base in zip(self.trainer.optimizers[0].param_groups, self.base_lrs):
                group["lr"] = base * factor

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y, _, aux = (*batch, None, None)[:4]
        if self.val_aux_acc is not None and aux is not None and aux.shape[1] > 0:
            logits, aux_logits = self.eval_model.forward_both(x)
            labelled = aux.sum(dim=1) > 0  # the auxiliary label set's own (majority) labels, where it has one
            if labelled.any():
                self.val_aux_acc.update(aux_logits[labelled], aux[labelled].argmax(dim=1))
        else:
            logits = self.eval_model(x)
        self.val_acc.update(logits, y)
        self.val_f1.update(logits, y)
        self.log("val_loss", self.eval_criterion(logits, y), prog_bar=True, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        self.log("val_acc", self.val_acc.compute(), prog_bar=True)
        self.log("val_f1", self.val_f1.compute())
        self.val_acc.reset()
        self.val_f1.reset()
        if self.val_aux_acc is not None and self.val_aux_acc.update_count > 0:
            self.log("val_aux_acc", self.val_aux_acc.compute(), prog_bar=True)
            self.val_aux_acc.reset()

    def on_train_epoch_end(self) -> None:
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"])
        if not self.automatic_optimization and self.cfg.scheduler == "plateau":
            scheduler = self.lr_schedulers()
            metric = self.trainer.callback_metrics.get(self.cfg.monitor)
            if scheduler is not None and metric is not None:
                scheduler.step(metric)

    def configure_optimizers(self):
        cfg = self.cfg
        groups = param_groups(self.model, cfg.lr, cfg.weight_decay, cfg.layer_decay)
        if cfg.optimizer == "adamw":
            base, kwargs = torch.optim.AdamW, dict(lr=cfg.lr)
        elif cfg.optimizer == "sgd":
            base, kwargs = torch.optim.SGD, dict(lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
        else:
            raise ConfigError(f"unknown optimizer {cfg.optimizer!r}; use adamw or sgd")
        optimizer = SAM(groups, base, rho=cfg.sam_rho, **kwargs) if cfg.sam else base(groups, **kwargs)
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        scheduler = build_scheduler(optimizer, cfg, self.steps_per_epoch)
        if scheduler is None:
            return optimizer
        if cfg.scheduler == "plateau":
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": cfg.monitor,
                                                             "interval": "epoch"}}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def warmup_factor(step: int, warmup: int, start: float = 0.0) -> float:
    """The lr factor at ``step`` of a linear warm-up over ``warmup`` steps from ``start`` to 1."""
    return start + (1 - start) * (step + 1) / warmup


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainSection, steps_per_epoch: int):
    """cosine / step / none as a per-step LambdaLR with linear warm-up; plateau as ReduceLROnPlateau."""
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    total = max(cfg.epochs * steps_per_epoch, 1)
    floor = cfg.min_lr / cfg.lr if cfg.lr > 0 else 0.0
    if cfg.scheduler == "plateau":
        mode = "min" if cfg.monitor == "val_loss" else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=cfg.plateau_factor,
                                                          patience=cfg.plateau_patience, min_lr=cfg.min_lr)
    if cfg.scheduler not in ("cosine", "step", "none"):
        raise ConfigError(f"unknown scheduler {cfg.scheduler!r}; use cosine, step, plateau or none")
    if cfg.scheduler == "none" and warmup == 0:
        return None

    def factor(step: int) -> float:
        if step < warmup:
            return warmup_factor(step, warmup, cfg.warmup_start_factor)
        if cfg.scheduler == "cosine":
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.scheduler == "step":
            return cfg.step_gamma ** ((step // steps_per_epoch) // max(cfg.step_size, 1))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
