"""Sharpness-Aware Minimisation (Foret et al., 2021) wrapping any torch optimiser."""

from __future__ import annotations

from collections.abc import Callable

import torch
from vitfer.errors import ConfigError


class SAM(torch.optim.Optimizer):
    """Two-step SAM: ``first_step`` climbs to the worst nearby weights, ``second_step`` descends from there.

    The wrapped optimiser (AdamW, SGD, ...) does the actual update with the gradient taken at the perturbed point.
    """

    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05,
                 adaptive: bool = False, **kwargs) -> None:
        if rho <= 0:
            raise ConfigError(f"SAM rho must be positive, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2)
                 for group in self.param_groups for p in group["params"] if p.grad is not None]
        return torch.norm(torch.stack(norms), p=2) if norms else torch.tensor(0.0)

    @torch.no_grad()
    def first_step(self) -> None:
        scale_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (scale_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                p.add_((torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale)

    @torch.no_grad()
    def second_step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and "old_p" in self.state[p]:
                    p.data = self.state[p]["old_p"]
        self.base_optimizer.step()

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """One full SAM step; ``closure`` must recompute the loss and gradients."""
        if closure is None:
            raise ValueError("SAM.step needs a closure that recomputes loss and gradients")
        self.first_step()
        with torch.enable_grad():
            closure()
        self.second_step()

    def state_dict(self):
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
