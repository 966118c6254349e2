"""Per-phase optimizers and the step-based learning-rate schedule.

The schedule is a pure function of the step, so a resumed run uses exactly the learning rates of an uninterrupted
one (the official NICE-GAN resume subtracted the decay a second time). ``linear``: constant until
``decay_start * max_steps``, then linear to 0 at ``max_steps`` (NICE-GAN/U-GAT-IT; CycleGAN's epoch schedule is
the same shape in steps).
"""

from __future__ import annotations

import torch

from nicegan.config import TrainConfig
from nicegan.models.base import TranslationModel


def lr_factor(step: int, train: TrainConfig) -> float:
    """Multiplier of the base LR for the update of (1-indexed) ``step``."""
    if train.lr_decay == "none":
        return 1.0
    start = int(train.max_steps * train.decay_start)
    if step <= start or train.max_steps == start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / (train.max_steps - start))


def build_optimizers(model: TranslationModel, train: TrainConfig,
                     fused: bool | None = None) -> dict[str, torch.optim.Optimizer]:
    """One Adam per phase over that phase's parameters (official NICE-GAN: coupled weight decay)."""
    return {
        phase: torch.optim.Adam(model.phase_parameters(phase), lr=train.lr, betas=tuple(train.betas),
                                weight_decay=train.weight_decay, fused=fused)
        for phase in model.phases
    }


def set_lr(optimizers: dict[str, torch.optim.Optimizer], step: int, train: TrainConfig) -> float:
    """Set every group's LR for ``step``; returns the LR."""
    lr = train.lr * lr_factor(step, train)
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = lr
    return lr
