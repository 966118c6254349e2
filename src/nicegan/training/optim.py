"""Per-phase optimizers and the step-based learning-rate schedule.

The schedule is a pure function of the step, so a resumed run uses exactly the learning rates of an uninterrupted
one (the official NICE-GAN resume subtracted the decay a second time). ``linear``: constant until
``decay_start * max_steps``, then linear to 0 at ``max_steps`` (NICE-GAN/U-GAT-IT; CycleGAN's epoch schedule is
the same shape in steps). ``step``: times ``decay_gamma`` every ``decay_every`` steps (MUNIT's StepLR).
"""

from __future__ import annotations

import torch

from nicegan.configs.schema import TrainConfig
from nicegan.models.base import TranslationModel


def lr_factor(step: int, train: TrainConfig) -> float:
    """Multiplier of the base LR for the update of (1-indexed) ``step``."""
    if train.lr_decay == "none":
        return 1.0
    if train.lr_decay == "step":  # MUNIT steps its StepLR before each iteration: update k uses gamma ** (k // every)
        return train.decay_gamma ** (step // train.decay_every)
    start = int(train.max_steps * train.decay_start)
    if step <= start or train.max_steps == start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / (train.max_steps - start))


def build_optimizers(model: TranslationModel, train: TrainConfig,
                     fused: bool | None = None) -> dict[str, torch.optim.Optimizer]:
    """One Adam per phase over that phase's parameters (official NICE-GAN: coupled weight decay).

    Phases naming the same ``Phase.optimizer`` share one Adam over the union of their parameters, keyed by that
    name. Adam is elementwise and skips parameters without a gradient, so a phase stepping the shared optimizer
    moves only its own parameters, with the moments the other phases' steps left (one Adam per network, as
    DRIT's official code steps them). The phases' ``lr_scale`` is kept on the optimizer as ``lr_scale`` (read by
    ``set_lr``; derived from the model, never from a checkpoint).
    """
    members: dict[str, list[str]] = {}
    for phase, spec in model.phases.items():
        members.setdefault(spec.optimizer or phase, []).append(phase)
    optimizers = {}
    for key, phases in members.items():
        scales = {model.phases[p].lr_scale for p in phases}
        if len(scales) > 1:
            raise ValueError(f"phases {phases} share the optimizer {key!r} but not one lr_scale: {sorted(scales)}")
        scale = scales.pop()
        params, seen = [], set()
        for p in (p for phase in phases for p in model.phase_parameters(phase)):
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        opt = torch.optim.Adam(params, lr=train.lr * scale, betas=tuple(train.betas),
                               weight_decay=train.weight_decay, fused=fused)
        opt.lr_scale = scale  # type: ignore[attr-defined]
        optimizers[key] = opt
    return optimizers


def set_lr(optimizers: dict[str, torch.optim.Optimizer], step: int, train: TrainConfig) -> float:
    """Set every group's LR for ``step`` (times the optimizer's ``lr_scale``, if it has one); returns the base LR."""
    lr = train.lr * lr_factor(step, train)
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = lr * getattr(opt, "lr_scale", 1.0)
    return lr
